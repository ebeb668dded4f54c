-- Sites, one-time enrolment codes, devices (tokens kept hashed) and the change log of every
-- site, as devices pushed it. `changes.seq` orders a site's changes in commit order (pushes of
-- one site take the site's row lock before numbering), which is what pull cursors count.
CREATE TABLE sites (
    code           TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    next_device_no INTEGER NOT NULL DEFAULT 1,
    created        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE enrol_codes (
    code_hash TEXT PRIMARY KEY,
    site      TEXT NOT NULL REFERENCES sites (code),
    expires   TIMESTAMPTZ NOT NULL,
    used_by   TEXT,
    used_at   TIMESTAMPTZ
);

CREATE TABLE devices (
    device     TEXT PRIMARY KEY,
    site       TEXT NOT NULL REFERENCES sites (code),
    device_no  INTEGER NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    acked      BIGINT NOT NULL DEFAULT 0,
    last_hash  TEXT NOT NULL,
    enrolled   TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked    TIMESTAMPTZ,
    UNIQUE (site, device_no)
);

CREATE TABLE changes (
    seq        BIGSERIAL PRIMARY KEY,
    site       TEXT NOT NULL REFERENCES sites (code),
    change_id  TEXT NOT NULL UNIQUE,
    device     TEXT NOT NULL REFERENCES devices (device),
    device_seq BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    body       TEXT NOT NULL,
    received   TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (device, device_seq)
);
CREATE INDEX changes_site_seq ON changes (site, seq);
