//! Schema migrations of the store file, applied in order inside one transaction each and counted
//! in `PRAGMA user_version`. Invariant: a released migration is never edited; changes add one.

use rusqlite::Connection;

use crate::error::StoreError;

/// Migrations; index + 1 is the schema version they lead to.
const MIGRATIONS: &[&str] = &[
    // 1: the change log, its guards, and the projections rebuilt from it.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

    CREATE TABLE change_log (
        seq          INTEGER PRIMARY KEY,
        change_id    TEXT NOT NULL UNIQUE,
        device       TEXT NOT NULL,
        device_seq   INTEGER NOT NULL,
        kind         TEXT NOT NULL,
        subject      TEXT,
        form         TEXT,
        item         TEXT,
        old_value    TEXT,
        new_value    TEXT,
        user         TEXT NOT NULL,
        role         TEXT NOT NULL,
        utc          TEXT NOT NULL,
        local_offset TEXT NOT NULL,
        reason       TEXT,
        warning      TEXT,
        prev_hash    TEXT NOT NULL,
        hash         TEXT NOT NULL,
        UNIQUE (device, device_seq)
    );
    CREATE INDEX change_log_subject ON change_log (subject, form, item);
    CREATE TRIGGER change_log_no_update BEFORE UPDATE ON change_log
        BEGIN SELECT RAISE(ABORT, 'the change log is append-only'); END;
    CREATE TRIGGER change_log_no_delete BEFORE DELETE ON change_log
        BEGIN SELECT RAISE(ABORT, 'the change log is append-only'); END;

    CREATE TABLE users (
        username    TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        role        TEXT NOT NULL,
        created_seq INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE subjects (
        subject     TEXT PRIMARY KEY,
        site        TEXT NOT NULL,
        created_utc TEXT NOT NULL,
        created_seq INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE item_values (
        subject    TEXT NOT NULL,
        form       TEXT NOT NULL,
        item       TEXT NOT NULL,
        value      TEXT NOT NULL,
        warning    TEXT,
        change_seq INTEGER NOT NULL,
        PRIMARY KEY (subject, form, item)
    ) WITHOUT ROWID;
    "#,
    // 2: per-user preferences and unsaved drafts (not data: never in the change log).
    r#"
    CREATE TABLE preferences (
        username TEXT NOT NULL,
        name     TEXT NOT NULL,
        value    TEXT NOT NULL,
        PRIMARY KEY (username, name)
    ) WITHOUT ROWID;

    CREATE TABLE drafts (
        username TEXT NOT NULL,
        subject  TEXT NOT NULL,
        form     TEXT NOT NULL,
        entries  TEXT NOT NULL,
        utc      TEXT NOT NULL,
        PRIMARY KEY (username, subject, form)
    ) WITHOUT ROWID;
    "#,
    // 3: sealed envelopes leased to this device (a projection of `lease.load` and
    // `subject.randomize` changes). Unopened rows are never shown: only counts leave the store.
    r#"
    CREATE TABLE envelopes (
        envelope   TEXT PRIMARY KEY,
        stratum    TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        block      INTEGER NOT NULL,
        block_size INTEGER NOT NULL,
        arm        TEXT NOT NULL,
        lease      TEXT NOT NULL,
        subject    TEXT,
        opened_seq INTEGER,
        UNIQUE (stratum, seq)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX envelopes_subject ON envelopes (subject) WHERE subject IS NOT NULL;
    "#,
    // 4: oversight (queries, SDV marks, signatures, locks) and user-account states; projections
    // of the changes in `oversight::kind`.
    r#"
    ALTER TABLE users ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE users ADD COLUMN password_reset_pending INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE queries (
        query_id    TEXT PRIMARY KEY,
        subject     TEXT NOT NULL,
        form        TEXT NOT NULL,
        item        TEXT NOT NULL,
        state       TEXT NOT NULL,
        text        TEXT NOT NULL,
        raised_by   TEXT NOT NULL,
        raised_utc  TEXT NOT NULL,
        updated_seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX queries_subject ON queries (subject, form, item);
    CREATE TABLE sdv (
        subject      TEXT NOT NULL,
        form         TEXT NOT NULL,
        item         TEXT NOT NULL,
        verified_by  TEXT NOT NULL,
        verified_seq INTEGER NOT NULL,
        PRIMARY KEY (subject, form, item)
    ) WITHOUT ROWID;
    CREATE TABLE signatures (
        change_id    TEXT PRIMARY KEY,
        subject      TEXT NOT NULL,
        scope        TEXT NOT NULL,
        meaning      TEXT NOT NULL,
        signer       TEXT NOT NULL,
        signer_name  TEXT NOT NULL,
        utc          TEXT NOT NULL,
        local_offset TEXT NOT NULL,
        values_hash  TEXT NOT NULL,
        seq          INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE locks (
        scope      TEXT PRIMARY KEY,
        kind       TEXT NOT NULL,
        site       TEXT,
        subject    TEXT,
        form       TEXT,
        reason     TEXT NOT NULL,
        locked_seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 5: sync. `base` names the values an item change replaces; `item_heads` holds each item's
    // values that no later change replaced (two or more = a conflict), `superseded` the change
    // ids some change replaced (both projections of `item.set`). Existing values become heads.
    r#"
    ALTER TABLE change_log ADD COLUMN base TEXT;
    CREATE TABLE item_heads (
        subject    TEXT NOT NULL,
        form       TEXT NOT NULL,
        item       TEXT NOT NULL,
        change_id  TEXT NOT NULL,
        value      TEXT,
        warning    TEXT,
        change_seq INTEGER NOT NULL,
        PRIMARY KEY (subject, form, item, change_id)
    ) WITHOUT ROWID;
    CREATE TABLE superseded (change_id TEXT PRIMARY KEY) WITHOUT ROWID;
    INSERT INTO item_heads (subject, form, item, change_id, value, warning, change_seq)
        SELECT v.subject, v.form, v.item, c.change_id, v.value, v.warning, v.change_seq
        FROM item_values v JOIN change_log c ON c.seq = v.change_seq;
    "#,
    // 6: changes the server held back because they were made under a lock the device had not
    // received yet (`lock.held`): kept in the log, never a value, listed for the data manager.
    r#"
    CREATE TABLE held (
        change_id TEXT PRIMARY KEY,
        subject   TEXT NOT NULL,
        form      TEXT NOT NULL,
        item      TEXT NOT NULL,
        lock      TEXT NOT NULL,
        held_seq  INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 7: the items in conflict (two or more heads), kept with `item_heads` so that listing
    // conflicts after each sync does not read every item of the store.
    r#"
    CREATE TABLE conflicted (
        subject TEXT NOT NULL,
        form    TEXT NOT NULL,
        item    TEXT NOT NULL,
        PRIMARY KEY (subject, form, item)
    ) WITHOUT ROWID;
    INSERT INTO conflicted (subject, form, item)
        SELECT subject, form, item FROM item_heads GROUP BY subject, form, item HAVING count(*) > 1;
    "#,
    // 8: envelopes sealed. The projection keeps each envelope's commitment, and its arm only once
    // opened (or from a lease loaded before sealing, whose log shows it already). The sealed
    // arms live outside the log in `sealed_envelopes` (not a projection: a rebuild keeps it),
    // readable only with this device's X25519 secret in `sealing_key`; only `randomize` opens
    // one, the next, and checks it against the commitment first.
    r#"
    CREATE TABLE envelopes_v8 (
        envelope   TEXT PRIMARY KEY,
        stratum    TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        block      INTEGER NOT NULL,
        block_size INTEGER NOT NULL,
        commitment TEXT,
        arm        TEXT,
        lease      TEXT NOT NULL,
        subject    TEXT,
        opened_seq INTEGER,
        UNIQUE (stratum, seq)
    ) WITHOUT ROWID;
    INSERT INTO envelopes_v8 (envelope, stratum, seq, block, block_size, arm, lease, subject,
            opened_seq)
        SELECT envelope, stratum, seq, block, block_size, arm, lease, subject, opened_seq
        FROM envelopes;
    DROP TABLE envelopes;
    ALTER TABLE envelopes_v8 RENAME TO envelopes;
    CREATE UNIQUE INDEX envelopes_subject ON envelopes (subject) WHERE subject IS NOT NULL;
    CREATE TABLE sealed_envelopes (
        envelope TEXT PRIMARY KEY,
        sender   TEXT NOT NULL,
        sealed   TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE sealing_key (
        id     INTEGER PRIMARY KEY CHECK (id = 1),
        secret TEXT NOT NULL
    );
    "#,
    // 9: each change's author signature (over its hash, so not hashed itself).
    r#"
    ALTER TABLE change_log ADD COLUMN signature TEXT;
    "#,
    // 10: the server's signed receipts over this device's chain head (`audit verify` checks
    // the history against the last).
    r#"
    CREATE TABLE receipts (
        device_seq INTEGER PRIMARY KEY,
        hash       TEXT NOT NULL,
        utc        TEXT NOT NULL,
        signature  TEXT NOT NULL
    );
    "#,
    // 11: the keys that wrap each key slot, so a rekey can rewrap the slots of the users who
    // remain without their passwords (inside the encrypted file only).
    r#"
    CREATE TABLE slot_keys (
        slot TEXT PRIMARY KEY,
        kek  TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 12: laboratory import. Each change's provenance (`source`, hashed when present); the
    // site's subject identification log (hospital record number of each subject: only in this
    // encrypted file, never a change, so never synced, exported or printed by the trial's
    // outputs); results a nurse rejected, so the next import does not ask again.
    r#"
    ALTER TABLE change_log ADD COLUMN source TEXT;
    CREATE TABLE subject_ids (
        subject TEXT PRIMARY KEY,
        mrn     TEXT NOT NULL UNIQUE,
        utc     TEXT NOT NULL,
        user    TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE lab_rejected (
        result  TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        form    TEXT NOT NULL,
        item    TEXT NOT NULL,
        value   TEXT NOT NULL,
        file    TEXT NOT NULL,
        utc     TEXT NOT NULL,
        user    TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 13: protocol amendments. Definition versions received from the server (their files),
    // the sites' activations, and the version each form instance was started under (absent =
    // the base version). Projections of `study.publish`, `site.activate`, `form.version`.
    r#"
    CREATE TABLE study_versions (
        version TEXT PRIMARY KEY,
        files   TEXT NOT NULL,
        sha256  TEXT NOT NULL,
        seq     INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE site_activations (
        site      TEXT NOT NULL,
        from_date TEXT NOT NULL,
        version   TEXT NOT NULL,
        seq       INTEGER NOT NULL,
        PRIMARY KEY (site, from_date)
    ) WITHOUT ROWID;
    CREATE TABLE instance_versions (
        subject TEXT NOT NULL,
        form    TEXT NOT NULL,
        version TEXT NOT NULL,
        seq     INTEGER NOT NULL,
        PRIMARY KEY (subject, form)
    ) WITHOUT ROWID;
    "#,
    // 14: one row an ordinary item.set. An item whose heads are exactly one value (nearly
    // every item) keeps that head only in `item_values` (`head_id` = its change id); any other
    // set of heads (a cleared item, a conflict) stays whole in `item_heads`. See `replica`.
    r#"
    ALTER TABLE item_values ADD COLUMN head_id TEXT NOT NULL DEFAULT '';
    UPDATE item_values SET head_id = coalesce((SELECT h.change_id FROM item_heads h
        WHERE h.subject = item_values.subject AND h.form = item_values.form
          AND h.item = item_values.item
        ORDER BY h.change_id DESC LIMIT 1), '');
    DELETE FROM item_heads WHERE (subject, form, item) IN (
        SELECT subject, form, item FROM item_heads GROUP BY subject, form, item
        HAVING count(*) = 1 AND count(value) = 1);
    "#,
];

/// The schema version this build writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the file up to [`CURRENT_VERSION`]. A file newer than this build is refused.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > CURRENT_VERSION {
        return Err(StoreError::Invalid(format!(
            "this store was written by a newer version of the app (schema {version}); update the app"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Schema 14 keeps an item with exactly one value head only in `item_values` (with its
    /// change id), and every other set of heads whole in `item_heads`.
    #[test]
    fn migration_14_moves_single_value_heads_into_item_values() {
        let conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..13] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO item_heads VALUES ('S', 'DLY#1', 'HR', 'c1', '80', NULL, 1);
             INSERT INTO item_values VALUES ('S', 'DLY#1', 'HR', '80', NULL, 1);
             INSERT INTO item_heads VALUES ('S', 'DLY#1', 'MAP', 'c2', NULL, NULL, 2);
             INSERT INTO item_heads VALUES ('S', 'DLY#1', 'CRRT', 'c3', '\"Y\"', NULL, 3);
             INSERT INTO item_heads VALUES ('S', 'DLY#1', 'CRRT', 'c4', '\"N\"', 'w', 4);
             INSERT INTO item_values VALUES ('S', 'DLY#1', 'CRRT', '\"N\"', 'w', 4);",
        )
        .unwrap();
        conn.execute_batch(MIGRATIONS[13]).unwrap();
        let rows = |sql: &str| -> Vec<String> {
            let mut stmt = conn.prepare(sql).unwrap();
            stmt.query_map([], |r| r.get::<_, String>(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(
            rows("SELECT item || ' ' || head_id FROM item_values ORDER BY item"),
            ["CRRT c4", "HR c1"]
        );
        assert_eq!(
            rows("SELECT item || ' ' || change_id FROM item_heads ORDER BY item, change_id"),
            ["CRRT c3", "CRRT c4", "MAP c2"]
        );
    }
}
