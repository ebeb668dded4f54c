//! The change log in the store's file: appending [`Change`]s and reading them back, and the
//! whole-file chain check behind `ecrf audit verify`.
//!
//! The record, its hash and the chain rules are `ecrf_log`'s; this module owns their SQL.
//! Invariants: rows are only ever appended (SQL triggers refuse UPDATE and DELETE); `seq` runs
//! 1, 2, 3… in local append order; `meta.head_seq/head_hash` name the last row, so a row cut
//! off the end is found too.

use ecrf_log::author::SERVER_AUTHOR;
use ecrf_log::{ChainCheck, Change, KeyList, VerifyReport};
use rusqlite::{Connection, OptionalExtension, Row, Statement, params};

use crate::error::StoreError;

/// A change read from a row in [`COLUMNS`] order. A kind this version does not know is an
/// error, never a change of no kind.
pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Change> {
    let kind: String = r.get(4)?;
    Ok(Change {
        seq: r.get(0)?,
        change_id: r.get(1)?,
        device: r.get(2)?,
        device_seq: r.get(3)?,
        kind: kind.parse().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
        })?,
        subject: r.get(5)?,
        form: r.get(6)?,
        item: r.get(7)?,
        old_value: r.get(8)?,
        new_value: r.get(9)?,
        user: r.get(10)?,
        role: r.get(11)?,
        utc: r.get(12)?,
        local_offset: r.get(13)?,
        reason: r.get(14)?,
        warning: r.get(15)?,
        prev_hash: r.get(16)?,
        hash: r.get(17)?,
        base: r.get(18)?,
        signature: r.get(19)?,
        source: r.get(20)?,
    })
}

/// Columns in [`from_row`] order.
pub(crate) const COLUMNS: &str = "seq, change_id, device, device_seq, kind, subject, form, item, \
    old_value, new_value, user, role, utc, local_offset, reason, warning, prev_hash, hash, base, \
    signature, source";

/// Column `i` of a row as text, borrowed from the row (no copy).
pub(crate) fn text<'r>(r: &'r Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    r.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Column `i` of a row as text, borrowed from the row; `None` when NULL.
pub(crate) fn optional_text<'r>(r: &'r Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    r.get_ref(i)?.as_str_or_null().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// The statement that appends one change ([`insert`] binds it).
pub(crate) const APPEND: &str = "INSERT INTO change_log (seq, change_id, device, device_seq, \
     kind, subject, form, item, old_value, new_value, user, role, utc, local_offset, reason, \
     warning, prev_hash, hash, base, signature, source) \
     VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21)";

/// Appends one change inside the caller's transaction.
pub(crate) fn append(conn: &Connection, c: &Change) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(APPEND)?;
    insert(&mut stmt, c)?;
    Ok(())
}

/// Appends one change through a prepared [`APPEND`] (a pulled page reuses one for all its
/// changes). A change id already held fails the `change_id` UNIQUE constraint.
pub(crate) fn insert(stmt: &mut Statement<'_>, c: &Change) -> rusqlite::Result<()> {
    stmt.execute(params![
        c.seq,
        c.change_id,
        c.device,
        c.device_seq,
        c.kind.as_str(),
        c.subject,
        c.form,
        c.item,
        c.old_value,
        c.new_value,
        c.user,
        c.role,
        c.utc,
        c.local_offset,
        c.reason,
        c.warning,
        c.prev_hash,
        c.hash,
        c.base,
        c.signature,
        c.source
    ])?;
    Ok(())
}

/// This device's history against the last receipt the server signed for it: the change it
/// vouched for must still have the hash it vouched for (chained, that covers every earlier
/// change), and the receipt must verify against the server key pinned at enrolment.
fn check_last_receipt(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let last: Option<(i64, String, String, String)> = conn
        .query_row(
            "SELECT device_seq, hash, utc, signature FROM receipts ORDER BY device_seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((seq, hash, utc, signature)) = last else {
        return Ok(Vec::new());
    };
    let device = crate::store::get_meta(conn, "device")?.unwrap_or_default();
    let mut problems = Vec::new();
    if let Some(key) = crate::store::get_meta(conn, "sync.setting.server_key")? {
        let r = ecrf_wire::wire::Receipt {
            device: device.clone(),
            device_seq: seq,
            hash: hash.clone(),
            utc: utc.clone(),
            signature,
        };
        if !r.verifies(&key) {
            problems.push(format!(
                "the server's receipt for change #{seq} of this laptop does not verify against \
                 the server key pinned at enrolment: it was altered"
            ));
        }
    }
    let now: Option<String> = conn
        .query_row(
            "SELECT hash FROM change_log WHERE device = ?1 AND device_seq = ?2",
            params![device, seq],
            |r| r.get(0),
        )
        .optional()?;
    match now {
        Some(h) if h == hash => {}
        Some(h) => problems.push(format!(
            "the server vouched at {utc} for this laptop's change #{seq} with hash {hash}, but \
             the log now has {h} there: the history was rewritten after it was synced"
        )),
        None => problems.push(format!(
            "the server vouched at {utc} for this laptop's change #{seq}, which is no longer in \
             the log: the history was cut after it was synced"
        )),
    }
    Ok(problems)
}

/// Signature problems listed one by one before the rest are counted.
const MAX_LISTED: usize = 50;

/// Walks the whole chain and says exactly where it breaks, and checks every change's author
/// signature against the keys its log registers (and the server's key pinned at enrolment).
pub(crate) fn verify_chain(conn: &Connection) -> Result<VerifyReport, StoreError> {
    let mut check = ChainCheck::new();
    let mut keys = KeyList::default();
    if let Some(server) = crate::store::get_meta(conn, "sync.setting.server_key")? {
        keys.add(SERVER_AUTHOR, &server);
    }
    let mut unsigned = Vec::new();
    let mut later = Vec::new();
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM change_log ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let c = from_row(row)?;
        check.push(&c);
        // A change registering a key may be signed with it (a new password after recovery).
        keys.learn(&c);
        match keys.check(&c) {
            Ok(()) => {}
            // Its author's key may come later in the log (a device's `store.create` precedes
            // its administrator's `user.add`): checked again at the end, against every key.
            Err(ecrf_log::AuthorError::NoKey { .. } | ecrf_log::AuthorError::Forged { .. }) => {
                later.push(c)
            }
            Err(e) => unsigned.push(e.to_string()),
        }
    }
    for c in later {
        if let Err(e) = keys.check(&c) {
            unsigned.push(e.to_string());
        }
    }
    let n = unsigned.len();
    for p in unsigned.into_iter().take(MAX_LISTED) {
        check.problem(p);
    }
    if n > MAX_LISTED {
        check.problem(format!(
            "… and {} more changes whose author signature does not hold",
            n - MAX_LISTED
        ));
    }
    let head: Option<(i64, String)> = conn
        .query_row(
            "SELECT (SELECT value FROM meta WHERE key = 'head_seq'), \
                    (SELECT value FROM meta WHERE key = 'head_hash')",
            [],
            |r| {
                let s: Option<String> = r.get(0)?;
                let h: Option<String> = r.get(1)?;
                Ok(s.zip(h).and_then(|(s, h)| s.parse().ok().map(|s| (s, h))))
            },
        )
        .optional()?
        .flatten();
    for p in check_last_receipt(conn)? {
        check.problem(p);
    }
    let (last_seq, last_hash) = check.last();
    let last_hash = last_hash.to_string();
    match head {
        Some((seq, hash)) if seq == last_seq && hash == last_hash => {}
        Some((seq, _)) if seq != last_seq => check.problem(format!(
            "the log ends at #{last_seq} but the store recorded #{seq} as its last change: \
             changes at the end were deleted or added behind the app's back"
        )),
        Some(_) => check.problem(format!(
            "the last change #{last_seq} is not the one the store recorded as its last: it was \
             replaced behind the app's back"
        )),
        None => check.problem("the store's record of its last change is missing".into()),
    }
    Ok(check.finish())
}
