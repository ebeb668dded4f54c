//! Durability checks: what the store verifies when it opens, and the full check on demand.
//!
//! Owns the open-time fast path ([`check_tail`]: the last change's hash, its link to the one
//! before it, and the recorded head agree — a cost independent of the store's size) and
//! [`Store::check`] (`ecrf store check`): every page (SQLCipher HMAC), SQLite's full
//! `integrity_check`, the whole hash chain, and projections equal to a rebuild from the log.
//! Invariant: a check never writes; the rebuild comparison runs in a transaction that is rolled
//! back.
//!
//! The settings that make a save durable are set once in `store::open_connection`: WAL journal,
//! `synchronous = FULL` (a commit returns only after its WAL frames are fsynced), a 5-second
//! busy timeout for other processes holding the write lock, and checkpoints off the save path.

use rusqlite::{Connection, OptionalExtension};

use crate::error::StoreError;
use ecrf_log::{Change, GENESIS, VerifyReport};

use crate::log::COLUMNS;
use crate::store::Store;

/// The open-time check: the chain's tail is whole. Reads the last change, the one before it
/// in the log and the one before it from the same device (each device chains its own changes;
/// with one device the two are the same), by index: a cost independent of the store's size.
pub(crate) fn check_tail(conn: &Connection) -> Result<(), StoreError> {
    // One read transaction, one snapshot: another process may append (and move the recorded
    // head) between these reads, which would look like a damaged tail.
    let tx = conn.unchecked_transaction()?;
    let checked = check_tail_in(&tx);
    tx.rollback()?;
    checked
}

fn check_tail_in(conn: &Connection) -> Result<(), StoreError> {
    let last: Option<Change> = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM change_log ORDER BY seq DESC LIMIT 1"),
            [],
            crate::log::from_row,
        )
        .optional()?;
    let meta = |key: &str| -> Result<Option<String>, StoreError> {
        Ok(conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    };
    let (head_seq, head_hash) = (meta("head_seq")?, meta("head_hash")?);
    let damaged = |what: String| {
        Err(StoreError::Damaged(format!(
            "{what}; run `ecrf store check` for the full report"
        )))
    };
    let Some(last) = last else {
        return match head_seq.as_deref() {
            None | Some("0") => Ok(()),
            Some(s) => damaged(format!(
                "the change log is empty but the store recorded #{s}"
            )),
        };
    };
    if last.compute_hash() != last.hash {
        return damaged(format!(
            "the last change #{} does not match its hash",
            last.seq
        ));
    }
    let device_prev: Option<String> = if last.device_seq <= 1 {
        Some(GENESIS.to_string())
    } else {
        conn.query_row(
            "SELECT hash FROM change_log WHERE device = ?1 AND device_seq = ?2",
            rusqlite::params![last.device, last.device_seq - 1],
            |r| r.get(0),
        )
        .optional()?
    };
    let before_exists = last.seq == 1
        || conn
            .query_row(
                "SELECT 1 FROM change_log WHERE seq = ?1",
                [last.seq - 1],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
    if device_prev.as_deref() != Some(last.prev_hash.as_str()) || !before_exists {
        return damaged(format!(
            "the last change #{} does not follow the one before it",
            last.seq
        ));
    }
    if head_seq.as_deref() != Some(last.seq.to_string().as_str())
        || head_hash.as_deref() != Some(last.hash.as_str())
    {
        return damaged(format!(
            "the log ends at #{} but the store recorded #{} as its last change",
            last.seq,
            head_seq.unwrap_or_default()
        ));
    }
    Ok(())
}

impl Store {
    /// The full check (`ecrf store check`): every page, SQLite's `integrity_check`, the whole
    /// chain, and projections equal to a rebuild from the log. Writes nothing.
    pub fn check(&self) -> Result<VerifyReport, StoreError> {
        let mut report = self.verify()?;
        let conn = self.conn();
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let lines: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if lines != ["ok"] {
            for l in lines {
                report.problems.push(format!("integrity check: {l}"));
            }
        }
        let before = self.projection_snapshot()?;
        // The rebuild stays in memory (no cache spill) and is rolled back: the check needs no
        // disk space and leaves no trace, even on a full disk.
        conn.execute_batch("PRAGMA cache_spill = OFF; BEGIN")?;
        let rebuilt = crate::store::replay(conn).and_then(|()| self.projection_snapshot());
        conn.execute_batch("ROLLBACK; PRAGMA cache_spill = ON")?;
        let rebuilt = rebuilt?;
        if rebuilt != before {
            let differ = before.iter().zip(&rebuilt).filter(|(a, b)| a != b).count()
                + before.len().abs_diff(rebuilt.len());
            report.problems.push(format!(
                "projections differ from a rebuild from the log in {differ} row(s); \
                 rebuilding them from the log repairs that"
            ));
        }
        Ok(report)
    }
}

/// The durability settings in force on the store's connection (`ecrf store check` prints them).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DurabilitySettings {
    /// `wal`.
    pub journal_mode: String,
    /// 2 = FULL: a commit returns once its WAL frames are fsynced.
    pub synchronous: i64,
    /// How long a save waits for another process's write lock.
    pub busy_timeout_ms: i64,
}

impl Store {
    /// The journal mode, synchronous level and busy timeout of the connection.
    pub fn durability_settings(&self) -> Result<DurabilitySettings, StoreError> {
        let conn = self.conn();
        Ok(DurabilitySettings {
            journal_mode: conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
            synchronous: conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
            busy_timeout_ms: conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?,
        })
    }
}
