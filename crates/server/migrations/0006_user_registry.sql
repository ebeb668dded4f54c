-- The user registry: one identity per person and site. Users are created here by an
-- administrator (`ecrf server user add`) or registered once when a laptop that already had them
-- enrols. Each user has public signing keys (every change they write is signed) and a role
-- history (a change is accepted only from a user who held its stated role at its time; a row
-- with an empty role means deactivated from then). `verifier` is an Argon2id PHC string of the
-- password (first login on a laptop is checked against it) and `escrow` the user's signing key
-- wrapped by a key derived from that password: the server can read neither.
CREATE TABLE users (
    site     TEXT NOT NULL REFERENCES sites (code),
    username TEXT NOT NULL,
    name     TEXT NOT NULL,
    active   BOOLEAN NOT NULL DEFAULT TRUE,
    verifier TEXT,
    escrow   TEXT,
    created  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (site, username)
);

CREATE TABLE user_keys (
    site       TEXT NOT NULL,
    username   TEXT NOT NULL,
    public_key TEXT NOT NULL,
    source     TEXT NOT NULL,
    added      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (site, username, public_key),
    FOREIGN KEY (site, username) REFERENCES users (site, username)
);

CREATE TABLE user_roles (
    id       BIGSERIAL PRIMARY KEY,
    site     TEXT NOT NULL,
    username TEXT NOT NULL,
    role     TEXT NOT NULL,
    from_utc TEXT NOT NULL,
    FOREIGN KEY (site, username) REFERENCES users (site, username)
);
CREATE INDEX user_roles_user ON user_roles (site, username, from_utc);

-- The server's own Ed25519 signing key (its seed, hex): signs the changes the server writes
-- and its receipts; laptops pin its public half at enrolment.
CREATE TABLE server_key (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seed TEXT NOT NULL
);

-- How many changes a laptop had made when it enrolled: its user changes up to there (made
-- before it had a server) are history; after, users change only on the server. NULL for
-- devices enrolled before this was recorded.
ALTER TABLE devices ADD COLUMN enrolled_seq BIGINT;

-- The secret that opens a laptop's device slot, given back only at a registered user's first
-- login there (after their password is checked against the verifier).
ALTER TABLE devices ADD COLUMN unlock_secret TEXT;
