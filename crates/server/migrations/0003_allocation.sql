-- The allocation list of each stratum (one stratum per site today), loaded by an administrator
-- (`ecrf randomization upload`). A slot is `free`; `leased` to one device as a sealed envelope
-- for randomizing offline; `opened` for one subject (online by the server, or from a lease when
-- the device pushes its `subject.randomize`); or `withdrawn` (leased to a device revoked before
-- opening it: its arm may be known outside, so nobody opens it). A slot is never reused.
CREATE TABLE allocation (
    stratum    TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    site       TEXT NOT NULL REFERENCES sites (code),
    envelope   TEXT NOT NULL UNIQUE,
    block      INTEGER NOT NULL,
    block_size INTEGER NOT NULL,
    arm        TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'free'
               CHECK (state IN ('free', 'leased', 'opened', 'withdrawn')),
    device     TEXT REFERENCES devices (device),
    subject    TEXT,
    opened     TIMESTAMPTZ,
    PRIMARY KEY (stratum, seq)
);
CREATE UNIQUE INDEX allocation_subject ON allocation (site, subject) WHERE subject IS NOT NULL;
