//! The store's side of sync: what this device has to push, applying pages of other devices'
//! changes, and item conflicts.
//!
//! Owns the items' heads (`item_values` with its `head_id`, and `item_heads`), the
//! `superseded` and `conflicted` projections (written only by [`apply_item`], called by
//! `store::apply`) and the sync cursors in `meta`. Invariants:
//! - a change received is appended byte for byte (same id, device, device sequence, hashes), only
//!   after its hash and its device's chain check out, and at most once (by `change_id`);
//! - a page of received changes (or several in a row) is one transaction, together with the
//!   pull cursor that follows it: after a cut, the page is either all there with its cursor or
//!   not there at all;
//! - conflicts are decided from the set of changes alone, never from their arrival order: an
//!   `item.set` names (in `base`) the item values its writer saw; the item's **heads** are its
//!   values that no change names; one head is the value, two or more are a conflict that keeps
//!   every value, shows the one with the greatest change id and is resolved by a change naming
//!   them all. Every replica holding the same changes has the same heads.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use ecrf_log::{Change, ChangeKind, GENESIS, HashChecked};

use crate::log::COLUMNS;
use crate::store::{Draft, Store, apply, get_meta, set_meta};

/// This device's last `device_seq` and hash (0 and [`GENESIS`] before its first change).
pub(crate) fn device_head(conn: &Connection, device: &str) -> Result<(i64, String), StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT device_seq, hash FROM change_log WHERE device = ?1 \
             ORDER BY device_seq DESC LIMIT 1",
        )?
        .query_row([device], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, GENESIS.to_string())))
}

/// One head of an item: a value no change replaced (`value` None = the item was cleared).
struct Head {
    change_id: String,
    value: Option<String>,
    warning: Option<String>,
    change_seq: i64,
}

/// An item's heads as kept (schema 14): an item with exactly one head holding a value (nearly
/// every item) has it only in `item_values` (its `head_id`); any other set of heads (a cleared
/// item, a conflict) is kept whole in `item_heads`, and `item_values` holds the value shown, if
/// any. So an ordinary `item.set` writes one projection row, in place. This reads the
/// `item_values` row and whether `item_heads` holds the item, in one statement whatever the
/// number of heads (a row with a NULL id says it does).
const HEADS: &str = "SELECT head_id, value, warning, change_seq FROM item_values \
        WHERE subject = ?1 AND form = ?2 AND item = ?3 \
    UNION ALL SELECT NULL, NULL, NULL, 0 WHERE EXISTS (SELECT 1 FROM item_heads \
        WHERE subject = ?1 AND form = ?2 AND item = ?3)";

/// The item's `item_values` row as a head, and whether its heads are kept in `item_heads`.
fn read_heads(
    tx: &Connection,
    subject: &str,
    form: &str,
    item: &str,
) -> Result<(Option<Head>, bool), StoreError> {
    let (mut single, mut kept) = (None, false);
    let mut stmt = tx.prepare_cached(HEADS)?;
    let mut rows = stmt.query([subject, form, item])?;
    while let Some(r) = rows.next()? {
        match r.get::<_, Option<String>>(0)? {
            None => kept = true,
            Some(change_id) => {
                single = Some(Head {
                    change_id,
                    value: r.get(1)?,
                    warning: r.get(2)?,
                    change_seq: r.get(3)?,
                })
            }
        }
    }
    Ok((single, kept))
}

/// The change ids of the heads kept in `item_heads`, in order.
fn kept_ids(
    tx: &Connection,
    subject: &str,
    form: &str,
    item: &str,
) -> Result<Vec<String>, StoreError> {
    let ids = tx
        .prepare_cached(
            "SELECT change_id FROM item_heads WHERE subject = ?1 AND form = ?2 AND item = ?3 \
             ORDER BY change_id",
        )?
        .query_map([subject, form, item], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// The change ids of an item's heads, in order.
fn head_ids(
    tx: &Connection,
    subject: &str,
    form: &str,
    item: &str,
) -> Result<Vec<String>, StoreError> {
    match read_heads(tx, subject, form, item)? {
        (_, true) => kept_ids(tx, subject, form, item),
        (single, false) => Ok(single.into_iter().map(|h| h.change_id).collect()),
    }
}

/// The change ids of an item's current values, as the JSON list a new change names in `base`.
pub(crate) fn current_heads(
    conn: &Connection,
    subject: &str,
    form: &str,
    item: &str,
) -> Result<String, StoreError> {
    let ids = head_ids(conn, subject, form, item)?;
    Ok(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()))
}

/// Applies an `item.set` to the heads (`item_values`, `item_heads`), `superseded`,
/// `conflicted`. A change the server held back under a lock (`held`) is kept in the log only.
pub(crate) fn apply_item(tx: &Connection, c: &Change) -> Result<(), StoreError> {
    // Held back by the server, or named by a change received before it (arrival order is
    // free): one read for both.
    let (held, named_already): (bool, bool) = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM held WHERE change_id = ?1), \
                    EXISTS (SELECT 1 FROM superseded WHERE change_id = ?1)",
        )?
        .query_row([&c.change_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if held {
        return Ok(());
    }
    let (subject, form, item) = (
        c.subject.as_deref().unwrap_or_default(),
        c.form.as_deref().unwrap_or_default(),
        c.item.as_deref().unwrap_or_default(),
    );
    let (single, kept) = read_heads(tx, subject, form, item)?;
    let replaced: Vec<String> = match &c.base {
        // Written before sync: it replaced whatever the item held on its only device.
        None if kept => kept_ids(tx, subject, form, item)?,
        None => single.iter().map(|h| h.change_id.clone()).collect(),
        Some(b) => serde_json::from_str(b).map_err(|e| {
            StoreError::Invalid(format!(
                "{}: its base is not a list of ids: {e}",
                c.describe()
            ))
        })?,
    };
    for id in &replaced {
        tx.prepare_cached("INSERT OR IGNORE INTO superseded (change_id) VALUES (?1)")?
            .execute([id])?;
    }
    // A change some change names is never a head.
    let new_head = (!named_already && !replaced.contains(&c.change_id)).then(|| Head {
        change_id: c.change_id.clone(),
        value: c.new_value.clone(),
        warning: c.warning.clone(),
        change_seq: c.seq,
    });
    let key = params![subject, form, item];
    if kept {
        // Heads kept whole (as many as devices wrote without seeing each other): changed row
        // by row, and the value shown and the number of heads read back.
        for id in &replaced {
            tx.prepare_cached(
                "DELETE FROM item_heads WHERE subject = ?1 AND form = ?2 AND item = ?3 \
                 AND change_id = ?4",
            )?
            .execute(params![subject, form, item, id])?;
        }
        if let Some(h) = &new_head {
            insert_kept(tx, subject, form, item, h)?;
        }
        let shown: Option<(Head, i64)> = tx
            .prepare_cached(
                "SELECT change_id, value, warning, change_seq, (SELECT count(*) FROM item_heads \
                    WHERE subject = ?1 AND form = ?2 AND item = ?3) FROM item_heads \
                 WHERE subject = ?1 AND form = ?2 AND item = ?3 ORDER BY change_id DESC LIMIT 1",
            )?
            .query_row(key, |r| {
                Ok((
                    Head {
                        change_id: r.get(0)?,
                        value: r.get(1)?,
                        warning: r.get(2)?,
                        change_seq: r.get(3)?,
                    },
                    r.get(4)?,
                ))
            })
            .optional()?;
        let heads = shown.as_ref().map_or(0, |s| s.1);
        if heads > 1 {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO conflicted (subject, form, item) VALUES (?1, ?2, ?3)",
            )?
            .execute(key)?;
        } else {
            tx.prepare_cached(
                "DELETE FROM conflicted WHERE subject = ?1 AND form = ?2 AND item = ?3",
            )?
            .execute(key)?;
        }
        let shown = shown.map(|s| s.0);
        if heads == 1 && shown.as_ref().is_some_and(|h| h.value.is_some()) {
            // Back to one value: kept in `item_values` alone.
            tx.prepare_cached(
                "DELETE FROM item_heads WHERE subject = ?1 AND form = ?2 AND item = ?3",
            )?
            .execute(key)?;
        }
        return write_shown(tx, subject, form, item, shown.as_ref());
    }
    let mut after: Vec<Head> = single
        .into_iter()
        .filter(|h| !replaced.contains(&h.change_id) && h.change_id != c.change_id)
        .collect();
    after.extend(new_head);
    if after.len() > 1 || after.iter().any(|h| h.value.is_none()) {
        for h in &after {
            insert_kept(tx, subject, form, item, h)?;
        }
    }
    if after.len() > 1 {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO conflicted (subject, form, item) VALUES (?1, ?2, ?3)",
        )?
        .execute(key)?;
    }
    // The value shown: the head with the greatest change id (the same on every replica).
    let shown = after.iter().max_by(|a, b| a.change_id.cmp(&b.change_id));
    write_shown(tx, subject, form, item, shown)
}

fn insert_kept(
    tx: &Connection,
    subject: &str,
    form: &str,
    item: &str,
    h: &Head,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO item_heads (subject, form, item, change_id, value, warning, \
         change_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        subject,
        form,
        item,
        h.change_id,
        h.value,
        h.warning,
        h.change_seq
    ])?;
    Ok(())
}

/// Writes the value shown (with its head's id), or removes it when the head shown is a clear.
fn write_shown(
    tx: &Connection,
    subject: &str,
    form: &str,
    item: &str,
    shown: Option<&Head>,
) -> Result<(), StoreError> {
    match shown {
        Some(Head {
            change_id,
            value: Some(value),
            warning,
            change_seq,
        }) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO item_values (subject, form, item, value, warning, \
                 change_seq, head_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                subject, form, item, value, warning, change_seq, change_id
            ])?;
        }
        _ => {
            tx.prepare_cached(
                "DELETE FROM item_values WHERE subject = ?1 AND form = ?2 AND item = ?3",
            )?
            .execute([subject, form, item])?;
        }
    }
    Ok(())
}

/// Recomputes one item's heads, superseded ids and value from its `item.set` changes in the log
/// (skipping held ones), in log order: what applying them afresh gives, so a change held after
/// it was applied leaves no trace in the projections.
pub(crate) fn replay_item(
    tx: &Connection,
    subject: &str,
    form: &str,
    item: &str,
) -> Result<(), StoreError> {
    let changes: Vec<Change> = tx
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM change_log WHERE subject = ?1 AND form = ?2 AND item = ?3 \
             AND kind = ?4 ORDER BY seq"
        ))?
        .query_map(
            params![subject, form, item, ChangeKind::ItemSet.as_str()],
            crate::log::from_row,
        )?
        .collect::<Result<_, _>>()?;
    for c in &changes {
        tx.prepare_cached("DELETE FROM superseded WHERE change_id = ?1")?
            .execute([&c.change_id])?;
    }
    tx.prepare_cached("DELETE FROM item_heads WHERE subject = ?1 AND form = ?2 AND item = ?3")?
        .execute([subject, form, item])?;
    tx.prepare_cached("DELETE FROM conflicted WHERE subject = ?1 AND form = ?2 AND item = ?3")?
        .execute([subject, form, item])?;
    tx.prepare_cached("DELETE FROM item_values WHERE subject = ?1 AND form = ?2 AND item = ?3")?
        .execute([subject, form, item])?;
    for c in &changes {
        apply_item(tx, c)?;
    }
    Ok(())
}

/// Where this device stands with the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// This device's last `device_seq` the server acknowledged.
    pub pushed: i64,
    /// The server's cursor after the last page pulled.
    pub pulled: i64,
    /// When the last sync finished without error (UTC, RFC 3339), if ever.
    pub last_success: Option<String>,
}

/// What applying a page did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// Changes appended.
    pub applied: usize,
    /// Changes already held (replays).
    pub already_held: usize,
    /// Users whose key slot was removed here (deactivated or password reset on the server).
    pub slots_removed: Vec<String>,
}

/// One value of an item in conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictValue {
    /// The change that wrote it.
    pub change_id: String,
    /// The value (JSON of `Value`), `None` when the item was cleared.
    pub value: Option<String>,
    /// Who wrote it, on which device, when.
    pub user: String,
    /// Device id.
    pub device: String,
    /// UTC time.
    pub utc: String,
}

/// An item two devices changed without seeing each other's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// Subject.
    pub subject: String,
    /// Form instance.
    pub form: String,
    /// Item id.
    pub item: String,
    /// Every value kept, by change id.
    pub values: Vec<ConflictValue>,
}

/// True when the change's id is held here with the same hash (a replay); an error when it is
/// held with another content.
fn held_same(tx: &Connection, c: &Change) -> Result<bool, StoreError> {
    let held: Option<String> = tx
        .prepare_cached("SELECT hash FROM change_log WHERE change_id = ?1")?
        .query_row([&c.change_id], |r| r.get(0))
        .optional()?;
    match held {
        Some(hash) if hash == c.hash => Ok(true),
        Some(_) => Err(StoreError::Invalid(format!(
            "received {} differs from the change with the same id held here; nothing of this \
             page was applied",
            c.describe()
        ))),
        None => Ok(false),
    }
}

/// A received change that does not follow its device's last change held here (`dseq`).
fn not_following(c: &Change, dseq: i64) -> StoreError {
    StoreError::Invalid(format!(
        "received {} (device {} #{}) does not follow that device's change #{dseq} held here; \
         nothing of this page was applied",
        c.describe(),
        c.device,
        c.device_seq
    ))
}

fn check_received(c: &Change) -> Result<(), StoreError> {
    if c.compute_hash() != c.hash {
        return Err(StoreError::Invalid(format!(
            "received {}: its content does not match its hash; nothing of this page was applied",
            c.describe()
        )));
    }
    Ok(())
}

impl Store {
    /// This device's changes with `device_seq` above `after`, oldest first, at most `limit`.
    pub fn own_changes_after(&self, after: i64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {COLUMNS} FROM change_log WHERE device = ?1 AND device_seq > ?2 \
             ORDER BY device_seq LIMIT ?3"
        ))?;
        let rows = stmt.query_map(
            params![self.device_id(), after, limit as i64],
            crate::log::from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many of this device's changes have `device_seq` above `after`. A device numbers its
    /// own changes 1, 2, 3… without gaps (the chain rule, `ecrf_log::chain`), so this is its
    /// last number minus `after`: one index lookup, where counting the rows read a whole
    /// index (0.3 s for a site of 600 subjects that never synced, at every sync badge).
    pub fn own_change_count_after(&self, after: i64) -> Result<usize, StoreError> {
        let head: i64 = self.conn().query_row(
            "SELECT coalesce(max(device_seq), 0) FROM change_log WHERE device = ?1",
            params![self.device_id()],
            |r| r.get(0),
        )?;
        Ok(usize::try_from(head - after).unwrap_or(0))
    }

    /// Every change of the log in local order (for comparing replicas).
    pub fn all_changes(&self) -> Result<Vec<Change>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare(&format!("SELECT {COLUMNS} FROM change_log ORDER BY seq"))?;
        let rows = stmt.query_map([], crate::log::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The sync cursors.
    pub fn sync_state(&self) -> Result<SyncState, StoreError> {
        let num = |k: &str| -> Result<i64, StoreError> {
            Ok(get_meta(self.conn(), k)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0))
        };
        Ok(SyncState {
            pushed: num("sync.pushed")?,
            pulled: num("sync.pulled")?,
            last_success: get_meta(self.conn(), "sync.last_success")?,
        })
    }

    /// Records what the server acknowledged of this device's changes.
    pub fn set_pushed(&self, device_seq: i64) -> Result<(), StoreError> {
        set_meta(self.conn(), "sync.pushed", &device_seq.to_string())
    }

    /// Records a sync that finished without error.
    pub fn set_sync_success(&self, utc: &str) -> Result<(), StoreError> {
        set_meta(self.conn(), "sync.last_success", utc)
    }

    /// A setting of the sync client (server URL, device token…), kept in the encrypted file.
    pub fn sync_setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        get_meta(self.conn(), &format!("sync.setting.{name}"))
    }

    /// Sets a setting of the sync client.
    pub fn set_sync_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        set_meta(self.conn(), &format!("sync.setting.{name}"), value)
    }

    /// Applies a page of other devices' changes in one transaction, with the pull cursor that
    /// follows it. Changes already held are skipped; each new one must match its hash and follow
    /// its device's previous change, or nothing of the page is applied.
    ///
    /// The commit does not wait for the disk (WAL with `synchronous = NORMAL` for this one
    /// transaction): a page is the server's to send again, so a power cut may take the last
    /// pages back, each whole with its cursor, never half of one, and the next sync pulls them
    /// again. The next commit under the store's own setting (the sync's end, any save) flushes
    /// them with it. Waiting for the disk at every page was a third of a first full sync
    /// (905 pages of a site of 600 subjects: ~9 s of 26 s).
    pub fn apply_remote(
        &mut self,
        changes: &[Change],
        cursor: i64,
    ) -> Result<ApplyReport, StoreError> {
        self.apply_received(changes.to_vec(), false, cursor)
    }

    /// [`Store::apply_remote`] for changes whose hashes were checked already (the sync client
    /// checks each page on the thread that fetches it): one or more consecutive pages, in one
    /// transaction with the cursor after the last.
    pub fn apply_checked(
        &mut self,
        pages: HashChecked,
        cursor: i64,
    ) -> Result<ApplyReport, StoreError> {
        self.apply_received(pages.into_changes(), true, cursor)
    }

    /// Received changes are numbered here (their `seq` set to this log's) as they are
    /// appended: taken by value, not copied.
    fn apply_received(
        &mut self,
        changes: Vec<Change>,
        hashes_checked: bool,
        cursor: i64,
    ) -> Result<ApplyReport, StoreError> {
        let setting: i64 = self
            .conn()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))?;
        // 0 OFF (benchmarks' bulk loads), 1 NORMAL, 2 FULL (the store's), 3 EXTRA.
        let relaxed = setting > 1;
        if relaxed {
            self.conn().execute_batch("PRAGMA synchronous = NORMAL")?;
        }
        let applied = self.apply_page(changes, hashes_checked, cursor);
        if relaxed {
            self.conn()
                .execute_batch(&format!("PRAGMA synchronous = {setting}"))?;
        }
        let (report, head, mut deactivated, mut reset) = applied?;
        if let Some((seq, hash)) = head {
            self.set_head(seq, hash);
        }
        // A reset password opens nothing here any more (the next login is online, with the new
        // one); a deactivated user's slot goes and the store key changes.
        let rekey = !deactivated.is_empty();
        deactivated.append(&mut reset);
        self.remove_slots(&deactivated, rekey)?;
        Ok(ApplyReport {
            slots_removed: deactivated,
            ..report
        })
    }

    /// [`Store::apply_remote`]'s transaction: the report, the new log head, and the users the
    /// server deactivated and whose password it reset.
    #[allow(clippy::type_complexity)]
    fn apply_page(
        &mut self,
        mut changes: Vec<Change>,
        hashes_checked: bool,
        cursor: i64,
    ) -> Result<(ApplyReport, Option<(i64, String)>, Vec<String>, Vec<String>), StoreError> {
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut report = ApplyReport::default();
        let mut seq: i64 =
            tx.query_row("SELECT coalesce(max(seq), 0) FROM change_log", [], |r| {
                r.get(0)
            })?;
        let server_device = format!("server-{}", get_meta(&tx, "site")?.unwrap_or_default());
        let server_key = get_meta(&tx, "sync.setting.server_key")?;
        // Slots the server's user registry takes away: removed after the page is applied.
        let (mut deactivated, mut reset) = (Vec::new(), Vec::new());
        // Each device's last change here (device_seq, hash), read once a page and moved along
        // as its changes are appended.
        let mut heads: HashMap<String, (i64, String)> = HashMap::new();
        let mut insert = tx.prepare_cached(crate::log::APPEND)?;
        for c in changes.iter_mut() {
            if !heads.contains_key(c.device.as_str()) {
                heads.insert(c.device.clone(), device_head(&tx, &c.device)?);
            }
            let Some((dseq, prev)) = heads.get_mut(c.device.as_str()) else {
                continue;
            };
            // Only a change that is not the next of its device here can be held already (a
            // replay): the next one is new unless its id is taken, which the insert's UNIQUE
            // `change_id` index finds without a lookup of its own.
            if c.device_seq != *dseq + 1 {
                if held_same(&tx, c)? {
                    report.already_held += 1;
                    continue;
                }
                return Err(not_following(c, *dseq));
            }
            if !hashes_checked {
                check_received(c)?;
            }
            if c.prev_hash != *prev {
                return Err(not_following(c, *dseq));
            }
            if c.device == server_device {
                // The server's own changes change users here: only with the pinned key's word.
                if let Some(key) = &server_key {
                    ecrf_log::author::check(c, std::slice::from_ref(key)).map_err(|e| {
                        StoreError::Invalid(format!(
                            "{e}: not the server this laptop enrolled with; nothing of this \
                             page was applied"
                        ))
                    })?;
                }
                let user = c.item.clone().unwrap_or_default();
                match c.kind {
                    ChangeKind::UserDeactivated => deactivated.push(user),
                    ChangeKind::PasswordReset => reset.push(user),
                    _ => {}
                }
            }
            c.seq = seq + 1;
            match crate::log::insert(&mut insert, c) {
                Ok(()) => {}
                Err(e)
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) =>
                {
                    if held_same(&tx, c)? {
                        report.already_held += 1;
                        continue;
                    }
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            }
            seq += 1;
            apply(&tx, c)?;
            (*dseq, *prev) = (c.device_seq, c.hash.clone());
            report.applied += 1;
        }
        drop(insert);
        let mut head = None;
        if report.applied > 0 {
            let hash: String = tx.query_row(
                "SELECT hash FROM change_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )?;
            set_meta(&tx, "head_seq", &seq.to_string())?;
            set_meta(&tx, "head_hash", &hash)?;
            head = Some((seq, hash));
        }
        set_meta(&tx, "sync.pulled", &cursor.to_string())?;
        tx.commit()?;
        Ok((report, head, deactivated, reset))
    }

    /// Items in conflict, with every value kept.
    pub fn conflicts(&self) -> Result<Vec<Conflict>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT h.subject, h.form, h.item, h.change_id, h.value, c.user, c.device, c.utc \
             FROM conflicted k \
             CROSS JOIN item_heads h \
                ON h.subject = k.subject AND h.form = k.form AND h.item = k.item \
             CROSS JOIN change_log c ON c.change_id = h.change_id \
             ORDER BY h.subject, h.form, h.item, h.change_id",
        )?;
        let mut rows = stmt.query([])?;
        let mut out: Vec<Conflict> = Vec::new();
        while let Some(r) = rows.next()? {
            let (subject, form, item): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let value = ConflictValue {
                change_id: r.get(3)?,
                value: r.get(4)?,
                user: r.get(5)?,
                device: r.get(6)?,
                utc: r.get(7)?,
            };
            match out.last_mut() {
                Some(last) if last.subject == subject && last.form == form && last.item == item => {
                    last.values.push(value)
                }
                _ => out.push(Conflict {
                    subject,
                    form,
                    item,
                    values: vec![value],
                }),
            }
        }
        Ok(out)
    }

    /// Resolves a conflict: writes the chosen value, typed as on the form (empty clears it), as
    /// a change that names every value of the item, with the reason. Refused when the item is
    /// not in conflict or the value does not pass the item's type and hard-range checks.
    pub fn resolve_conflict(
        &mut self,
        subject: &str,
        form: &str,
        item: &str,
        typed: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        // The resolving change replaces saved values: ChangeData, as the server reads it.
        self.require(ecrf_core::Action::ChangeData)?;
        if reason.trim().is_empty() {
            return Err(StoreError::Invalid(format!(
                "resolving {form} {item} of {subject} needs a reason"
            )));
        }
        let key = ecrf_core::FormKey::parse(self.study(), form).map_err(StoreError::Invalid)?;
        let def = self
            .study()
            .form(&key.form)
            .ok_or_else(|| StoreError::Invalid(format!("there is no form {}", key.form)))?;
        let item_def = def
            .item(item)
            .ok_or_else(|| StoreError::Invalid(format!("form {} has no item {item}", def.id)))?;
        let offset = *chrono::Local::now().offset();
        let value = ecrf_core::check::parse_input(self.study(), def, item_def, typed, Some(offset))
            .map_err(|f| StoreError::Rejected(vec![f]))?
            .map(|v| v.to_json());
        let (subject, form, item) = (subject.to_string(), form.to_string(), item.to_string());
        let reason = reason.trim().to_string();
        self.commit_with(move |tx| {
            let heads: Vec<String> =
                serde_json::from_str(&current_heads(tx, &subject, &form, &item)?)
                    .unwrap_or_default();
            if heads.len() < 2 {
                return Err(StoreError::Invalid(format!(
                    "{form} {item} of {subject} is not in conflict"
                )));
            }
            let old: Option<String> = tx
                .query_row(
                    "SELECT value FROM item_values WHERE subject = ?1 AND form = ?2 AND item = ?3",
                    [&subject, &form, &item],
                    |r| r.get(0),
                )
                .optional()?;
            let mut d = Draft::new(ChangeKind::ItemSet);
            d.subject = Some(subject);
            d.form = Some(form);
            d.item = Some(item);
            d.old_value = old;
            d.new_value = value;
            d.reason = Some(reason);
            Ok((vec![d], ()))
        })?;
        Ok(())
    }
}

/// The sync client drives the store through this (`ecrf_sync::sync`).
impl ecrf_wire::Replica for Store {
    type Error = StoreError;

    fn site(&self) -> &str {
        Store::site(self)
    }
    fn device_id(&self) -> &str {
        Store::device_id(self)
    }
    fn sealing_key(&self) -> Result<String, StoreError> {
        Store::sealing_public_key(self)
    }
    fn sync_setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        Store::sync_setting(self, name)
    }
    fn new_device_slot(&self, server: &str, ca_pem: Option<&str>) -> Result<String, StoreError> {
        Store::new_device_slot(self, server, ca_pem)
    }
    fn enrolment_users(&self) -> Result<Vec<ecrf_wire::wire::EnrolUser>, StoreError> {
        Ok(self
            .users_with_keys()?
            .into_iter()
            .map(|(u, public_keys)| ecrf_wire::wire::EnrolUser {
                username: u.username,
                name: u.name,
                role: u.role.as_str().to_string(),
                public_keys,
            })
            .collect())
    }
    fn set_sync_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        Store::set_sync_setting(self, name, value)
    }
    fn own_change_count_after(&self, device_seq: i64) -> Result<usize, StoreError> {
        Store::own_change_count_after(self, device_seq)
    }
    fn own_changes_after(&self, device_seq: i64, limit: usize) -> Result<Vec<Change>, StoreError> {
        Store::own_changes_after(self, device_seq, limit)
    }
    fn set_pushed(&self, device_seq: i64) -> Result<(), StoreError> {
        Store::set_pushed(self, device_seq)
    }
    fn pushed_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        let pushed = self.sync_state()?.pushed;
        if pushed == 0 {
            return Ok(None);
        }
        let hash: Option<String> = self
            .conn()
            .query_row(
                "SELECT hash FROM change_log WHERE device = ?1 AND device_seq = ?2",
                rusqlite::params![self.device_id(), pushed],
                |r| r.get(0),
            )
            .optional()?;
        // A pushed change missing here is a rewritten history too: state a hash no change has.
        Ok(Some((pushed, hash.unwrap_or_else(|| "missing".into()))))
    }
    fn keep_receipt(&self, r: &ecrf_wire::wire::Receipt) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT OR REPLACE INTO receipts (device_seq, hash, utc, signature) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(rusqlite::params![r.device_seq, r.hash, r.utc, r.signature])?;
        Ok(())
    }
    fn pulled(&self) -> Result<i64, StoreError> {
        Ok(self.sync_state()?.pulled)
    }
    fn apply_pulled(&mut self, pages: HashChecked, cursor: i64) -> Result<usize, StoreError> {
        Ok(self.apply_checked(pages, cursor)?.applied)
    }
    fn conflict_count(&self) -> Result<usize, StoreError> {
        Ok(self.conflicts()?.len())
    }
    fn held_count(&self) -> Result<usize, StoreError> {
        Ok(self.held_changes()?.len())
    }
    fn set_sync_success(&self, utc: &str) -> Result<(), StoreError> {
        Store::set_sync_success(self, utc)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ecrf_core::FormKey;

    use crate::{CreateOptions, SaveOptions, Store};

    /// A save runs the item statements once per item; compiling them again at each use would
    /// cost more than the rest of the save (see `store::open_connection`).
    #[test]
    fn cached_item_statements_are_not_compiled_again_at_each_save() {
        let dir = tempfile::tempdir().unwrap();
        let study = Arc::new(ecrf_core::trial::definition().unwrap());
        let path = dir.path().join("s.ecrf");
        let (mut admin, _) = Store::create(
            &path,
            Arc::clone(&study),
            CreateOptions {
                site: "07".into(),
                admin_user: "admin".into(),
                admin_name: "A".into(),
                admin_password: "admin-password".into(),
            },
        )
        .unwrap();
        admin
            .add_user("nurse", "N", ecrf_core::Role::Nurse, "nurse-password")
            .unwrap();
        drop(admin);
        let mut store = Store::open(&path, study, "nurse", "nurse-password").unwrap();
        let subject = store.new_subject().unwrap();
        let day1 = FormKey {
            form: "DLY".into(),
            repeat: Some(1),
        };
        let why = SaveOptions {
            reason: Some("test".into()),
            confirm_warnings: true,
        };
        for hr in ["80", "81", "82"] {
            store
                .save(&subject, &day1, &[("HR", hr), ("MAP", "65")], &why)
                .unwrap();
        }
        let stmt = store.conn().prepare_cached(super::HEADS).unwrap();
        assert_eq!(
            stmt.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "the statement for an item's heads was compiled again after it was cached"
        );
    }
}
