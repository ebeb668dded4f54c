-- Flags and locks. What the server flags for review: a device clock more than five minutes
-- off the server's when it synced (`clock`), a change dated before a change it modifies
-- (`dated_before_base`), and a data change that arrived for a locked form and was held
-- (`held_under_lock`). Receipt time of every change is `changes.received`.
CREATE TABLE flags (
    id        BIGSERIAL PRIMARY KEY,
    site      TEXT NOT NULL REFERENCES sites (code),
    device    TEXT NOT NULL REFERENCES devices (device),
    change_id TEXT REFERENCES changes (change_id),
    flag      TEXT NOT NULL,
    detail    TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX flags_site ON flags (site, id);

-- The locks in force per site (the last `lock.set` change of each scope not released since,
-- in server order): a data change arriving for a locked form is held (`lock.held`).
CREATE TABLE locks (
    site  TEXT NOT NULL REFERENCES sites (code),
    scope TEXT NOT NULL,
    body  TEXT NOT NULL,
    PRIMARY KEY (site, scope)
);
