//! Durability checks: what the store verifies when it opens, and the full check on demand.
//!
//! Owns the open-time fast path ([`check_tail`]: the last change's hash, its link to the one
//! before, and the recorded head agree — a cost independent of the store's size) and
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
use crate::log::{COLUMNS, Change, GENESIS, VerifyReport};
use crate::store::Store;

/// The open-time check: the chain's tail is whole. Reads at most two changes.
pub(crate) fn check_tail(conn: &Connection) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM change_log ORDER BY seq DESC LIMIT 2"
    ))?;
    let tail: Vec<Change> = stmt
        .query_map([], Change::from_row)?
        .collect::<Result<_, _>>()?;
    let head_seq: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'head_seq'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let head_hash: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'head_hash'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let damaged = |what: String| {
        Err(StoreError::Damaged(format!(
            "{what}; run `ecrf store check` for the full report"
        )))
    };
    let Some(last) = tail.first() else {
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
    let expected_prev = tail.get(1).map_or(GENESIS, |c| c.hash.as_str());
    let expected_seq = tail.get(1).map_or(0, |c| c.seq) + 1;
    if last.prev_hash != expected_prev || last.seq != expected_seq {
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
