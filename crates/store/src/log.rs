//! The change log: every piece of data as an immutable, hash-chained change.
//!
//! Owns the [`Change`] record, its canonical hash, and the chain check behind `ecrf audit verify`.
//! Invariants: rows are only ever appended (SQL triggers refuse UPDATE and DELETE); `seq` runs
//! 1, 2, 3… in local append order; the log is one hash chain **per device**: each row's
//! `prev_hash` is the `hash` of the same device's previous change (`device_seq` − 1), so a replica
//! holding other devices' changes (sync) keeps them byte for byte and can verify every device's
//! chain; each device's `device_seq` runs 1, 2, 3… in append order; `meta.head_seq/head_hash`
//! name the last row, so a row cut off the end is found too.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StoreError;

/// `prev_hash` of the first change.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a change does.
pub mod kind {
    /// The store was created (site, device).
    pub const STORE_CREATED: &str = "store.create";
    /// A user was added (item = user name, new value = role and name).
    pub const USER_ADDED: &str = "user.add";
    /// A subject was created (subject = its number).
    pub const SUBJECT_CREATED: &str = "subject.create";
    /// An item's value was set, changed or cleared.
    pub const ITEM_SET: &str = "item.set";
    /// Sealed envelopes were leased to this device (item = lease id, new value = the envelopes).
    pub const LEASE_LOADED: &str = "lease.load";
    /// A subject was randomized: the next envelope opened and bound to it (item = envelope id,
    /// new value = envelope, arm, subject number, stratum). Irreversible.
    pub const RANDOMIZED: &str = "subject.randomize";
    /// Data were exported (new value = format, forms, site, audit or not, destination).
    pub const DATA_EXPORTED: &str = "data.export";
}

/// Who may make a change of some kind, in terms of the permission table
/// ([`ecrf_core::role::PERMISSIONS`], the one place roles are decided).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Any signed-in user (a failed login noted, one's own new password).
    Anyone,
    /// Only roles that may take this action.
    Needs(ecrf_core::Action),
    /// Only the server writes it; a device never does.
    ServerOnly,
    /// A kind this version does not know.
    Unknown,
}

/// The action a change takes, so its author's role can be checked against the permission table
/// (the server does it for every pushed change). Mirrors what the store's own commands
/// require: a value typed into an empty item is `EnterData`, a changed or cleared one
/// `ChangeData`; a query raised by a save (a warning confirmed without a comment, `"auto":
/// true` in its body) is part of entering data.
pub fn permission(c: &Change) -> Permission {
    use crate::login_audit::LOGIN_FAILED;
    use crate::oversight::kind as ov;
    use ecrf_core::Action as A;
    let needs = Permission::Needs;
    match c.kind.as_str() {
        kind::STORE_CREATED => needs(A::ManageDevices),
        kind::USER_ADDED | ov::USER_ROLE | ov::USER_DEACTIVATED | ov::PASSWORD_RESET => {
            needs(A::ManageUsers)
        }
        ov::PASSWORD_CHANGED | LOGIN_FAILED => Permission::Anyone,
        kind::SUBJECT_CREATED => needs(A::EnterData),
        kind::ITEM_SET if c.old_value.is_none() => needs(A::EnterData),
        kind::ITEM_SET => needs(A::ChangeData),
        kind::LEASE_LOADED => needs(A::LoadLease),
        kind::RANDOMIZED => needs(A::Randomize),
        kind::DATA_EXPORTED => needs(A::Export),
        ov::QUERY_RAISED => {
            let auto = c
                .new_value
                .as_deref()
                .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
                .is_some_and(|v| v["auto"] == serde_json::Value::Bool(true));
            needs(if auto { A::EnterData } else { A::RaiseQuery })
        }
        ov::QUERY_ANSWERED => needs(A::AnswerQuery),
        ov::QUERY_CLOSED | ov::QUERY_REOPENED => needs(A::CloseQuery),
        ov::SDV_MARKED => needs(A::VerifySource),
        ov::SIGNED => needs(A::Sign),
        ov::LOCKED => needs(A::Lock),
        ov::UNLOCKED => needs(A::Unlock),
        ov::LOCK_HELD => Permission::ServerOnly,
        _ => Permission::Unknown,
    }
}

/// One change, as stored. Values are the JSON of [`ecrf_core::Value`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Local append order, from 1.
    pub seq: i64,
    /// Globally unique id (UUID v7).
    pub change_id: String,
    /// Device that made the change.
    pub device: String,
    /// That device's own counter, from 1.
    pub device_seq: i64,
    /// See [`kind`].
    pub kind: String,
    /// Subject number.
    pub subject: Option<String>,
    /// Form instance, like `DLY#3`.
    pub form: Option<String>,
    /// Item id (or user name for `user.add`).
    pub item: Option<String>,
    /// Value before.
    pub old_value: Option<String>,
    /// Value after.
    pub new_value: Option<String>,
    /// Who.
    pub user: String,
    /// In which role.
    pub role: String,
    /// When, UTC, RFC 3339 with milliseconds.
    pub utc: String,
    /// The device's UTC offset at that moment, like `+08:00`.
    pub local_offset: String,
    /// Why (required when a saved value changes).
    pub reason: Option<String>,
    /// Soft warnings confirmed with this change (JSON list of findings).
    pub warning: Option<String>,
    /// Hash of the same device's previous change ([`GENESIS`] for its first).
    pub prev_hash: String,
    /// For `item.set`: JSON list of the change ids of the item's values this change replaces
    /// (the values its writer saw; two or more when it resolves a conflict). `None` in changes
    /// written before sync existed: they replace whatever the item held.
    #[serde(default)]
    pub base: Option<String>,
    /// Hash of this change.
    pub hash: String,
}

impl Change {
    /// The canonical hash: SHA-256 over every field but `seq` and `hash`, each length-prefixed
    /// so no two different changes encode the same bytes.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |v: Option<&str>| match v {
            None => h.update(u32::MAX.to_be_bytes()),
            Some(s) => {
                h.update((s.len() as u32).to_be_bytes());
                h.update(s.as_bytes());
            }
        };
        let device_seq = self.device_seq.to_string();
        field(Some("ecrf-change-v1"));
        field(Some(&self.change_id));
        field(Some(&self.device));
        field(Some(&device_seq));
        field(Some(&self.kind));
        field(self.subject.as_deref());
        field(self.form.as_deref());
        field(self.item.as_deref());
        field(self.old_value.as_deref());
        field(self.new_value.as_deref());
        field(Some(&self.user));
        field(Some(&self.role));
        field(Some(&self.utc));
        field(Some(&self.local_offset));
        field(self.reason.as_deref());
        field(self.warning.as_deref());
        field(Some(&self.prev_hash));
        // Appended only when present, so changes written before it existed keep their hash
        // (length-prefixed fields: 17 and 18 fields never encode the same bytes).
        if let Some(base) = &self.base {
            field(Some(base));
        }
        hex::encode(h.finalize())
    }

    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Change> {
        Ok(Change {
            seq: r.get(0)?,
            change_id: r.get(1)?,
            device: r.get(2)?,
            device_seq: r.get(3)?,
            kind: r.get(4)?,
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
        })
    }

    /// A short description for messages: `#12 (subject 01-0001, DLY#3 MAP)`.
    pub fn describe(&self) -> String {
        let mut s = format!("change #{} [{}", self.seq, self.kind);
        for part in [&self.subject, &self.form, &self.item]
            .into_iter()
            .flatten()
        {
            s.push(' ');
            s.push_str(part);
        }
        s.push_str(&format!(", id {}]", self.change_id));
        s
    }
}

/// Columns in [`Change::from_row`] order.
pub(crate) const COLUMNS: &str = "seq, change_id, device, device_seq, kind, subject, form, item, \
    old_value, new_value, user, role, utc, local_offset, reason, warning, prev_hash, hash, base";

/// Appends one change inside the caller's transaction.
pub(crate) fn append(conn: &Connection, c: &Change) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO change_log (seq, change_id, device, device_seq, kind, subject, form, item, \
         old_value, new_value, user, role, utc, local_offset, reason, warning, prev_hash, hash, base) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)",
    )?
    .execute(params![
        c.seq,
        c.change_id,
        c.device,
        c.device_seq,
        c.kind,
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
        c.base
    ])?;
    Ok(())
}

/// What `audit verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Changes read.
    pub changes: i64,
    /// Problems, each naming the change concerned. Empty means the log is intact.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Walks the whole chain and says exactly where it breaks.
pub(crate) fn verify_chain(conn: &Connection) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport::default();
    let mut last_hash = GENESIS.to_string();
    let mut last_seq = 0i64;
    // Per device: (last device_seq, last hash, its description).
    let mut devices: std::collections::HashMap<String, (i64, String, String)> = Default::default();
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM change_log ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let c = Change::from_row(row)?;
        report.changes += 1;
        let desc = c.describe();
        if c.seq != last_seq + 1 {
            report.problems.push(format!(
                "changes #{} to #{} are missing: the log jumps from #{last_seq} to #{} (deleted)",
                last_seq + 1,
                c.seq - 1,
                c.seq
            ));
        }
        let (dseq, dprev, ddesc) = devices.entry(c.device.clone()).or_insert_with(|| {
            (
                0,
                GENESIS.to_string(),
                "the start of its device's log".to_string(),
            )
        });
        if c.prev_hash != *dprev {
            report.problems.push(format!(
                "{desc}: does not follow {ddesc} (its previous hash does not match): \
                 a change before it was deleted, inserted or moved"
            ));
        }
        let actual = c.compute_hash();
        if actual != c.hash {
            report.problems.push(format!(
                "{desc}: its content does not match its hash: it was altered after it was \
                 written (now reads {} → {}, by {}, at {})",
                c.old_value.as_deref().unwrap_or("∅"),
                c.new_value.as_deref().unwrap_or("∅"),
                c.user,
                c.utc
            ));
        }
        if c.device_seq != *dseq + 1 {
            report.problems.push(format!(
                "{desc}: device {} sequence goes from {} to {} (a change of that device was \
                 deleted or moved)",
                c.device, *dseq, c.device_seq
            ));
        }
        *dseq = c.device_seq;
        *dprev = c.hash.clone();
        *ddesc = desc;
        last_hash = c.hash.clone();
        last_seq = c.seq;
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
    match head {
        Some((seq, hash)) if seq == last_seq && hash == last_hash => {}
        Some((seq, _)) if seq != last_seq => report.problems.push(format!(
            "the log ends at #{last_seq} but the store recorded #{seq} as its last change: \
             changes at the end were deleted or added behind the app's back"
        )),
        Some(_) => report.problems.push(format!(
            "the last change #{last_seq} is not the one the store recorded as its last: it was \
             replaced behind the app's back"
        )),
        None => report
            .problems
            .push("the store's record of its last change is missing".into()),
    }
    Ok(report)
}
