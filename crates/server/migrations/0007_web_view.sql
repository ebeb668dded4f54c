-- The coordinating centre's web view (crates/web).
-- Device health: when a laptop last asked for changes, and up to which of its site's changes it
-- had received then (what is still waiting for it is the site's changes after that).
ALTER TABLE devices ADD COLUMN last_sync TIMESTAMPTZ;
ALTER TABLE devices ADD COLUMN pulled_seq BIGINT NOT NULL DEFAULT 0;

-- The web view's own audit, append-only: every login (and failed or refused one), logout, idle
-- timeout and download, with who, from where and what.
CREATE TABLE web_audit (
    seq      BIGSERIAL PRIMARY KEY,
    at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    username TEXT NOT NULL,
    address  TEXT NOT NULL,
    event    TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX web_audit_user ON web_audit (username, event, at);

-- A subject's page reads that subject's changes only.
CREATE INDEX changes_subject ON changes (site, ((body::jsonb) ->> 'subject'), seq);
