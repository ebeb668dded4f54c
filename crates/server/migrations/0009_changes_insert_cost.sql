-- What storing a pushed page costs PostgreSQL (1,000 changes, `make bench-sync`, durable):
-- 26 ms with the subject index on an expression and the two foreign keys, 9 ms without. The
-- expression index parsed every body as JSON once more; each foreign key ran a trigger and an
-- index probe per row; each index costs about 2 ms a page. So:
--
-- A change's place is its site and `seq`: that is the primary key. Every read of `changes` by
-- `seq` names the site (a pull's page, the exports, the web view), so the key on `seq` alone
-- was one more index written per row and read by nothing.
ALTER TABLE changes DROP CONSTRAINT changes_pkey;
DROP INDEX changes_site_seq;
ALTER TABLE changes ADD CONSTRAINT changes_site_seq PRIMARY KEY (site, seq);
--
-- The subject is a column, set by the server from the change it has parsed already, and the
-- subject page reads `changes` by (site, subject, seq) as before.
ALTER TABLE changes ADD COLUMN subject TEXT;
UPDATE changes SET subject = (body::jsonb) ->> 'subject';
CREATE INDEX changes_site_subject ON changes (site, subject, seq);
DROP INDEX changes_subject;

-- A change's site and device are not checked row by row: every push reads and locks the
-- device's row and its site's row before it stores (`PUSH_HEAD`), as the server's own changes
-- do (`head_for_update`), and neither row can go: sites and devices are never deleted or
-- renamed (a revoked device keeps its row), which these triggers hold.
ALTER TABLE changes DROP CONSTRAINT changes_site_fkey;
ALTER TABLE changes DROP CONSTRAINT changes_device_fkey;

CREATE FUNCTION refuse_removal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never deleted or renamed: changes name them', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER sites_kept BEFORE DELETE OR TRUNCATE OR UPDATE OF code ON sites
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_removal();
CREATE TRIGGER devices_kept BEFORE DELETE OR TRUNCATE OR UPDATE OF device ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_removal();
