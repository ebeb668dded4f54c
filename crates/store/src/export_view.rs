//! What an export reads from a local store: one consistent, read-only snapshot of the site's
//! subjects, current values, users and change log, plus the audited `data.export` event.
//!
//! Owns the SQL of exports, so the export crate never touches the file. Invariants: the snapshot
//! is read inside one read transaction (values, subjects and log agree with each other); only
//! roles that may [`Action::Export`] get it; recording an export is a change in the log like any
//! other (who, when, what), never a side table.

use std::collections::{BTreeMap, HashMap};

use ecrf_core::{Action, Value};
use ecrf_log::body::{Body, Exported};
use ecrf_log::record::{ChangeTexts, PackedLog};
use ecrf_log::{Change, ChangeKind, ExportSubject, ExportView, Signature};
use rusqlite::TransactionBehavior;

use crate::error::StoreError;
use crate::log::{optional_text, text};
use crate::oversight::{covered_values, hash_of, scope_of};
use crate::store::{Draft, Store, decode_value};

/// The changes with `from <= seq <= to`, in order, packed: each row's texts are appended to
/// the log's one buffer as read, without a string of their own. What no export shows (the
/// confirmed warnings, the previous hash and the base of a change) is not read.
fn read_changes(conn: &rusqlite::Connection, from: i64, to: i64) -> Result<PackedLog, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT seq, change_id, device, device_seq, kind, subject, form, item, old_value, \
         new_value, user, role, utc, local_offset, reason, hash, signature, source \
         FROM change_log WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq",
    )?;
    let mut rows = stmt.query([from, to])?;
    let mut out = PackedLog::with_capacity(usize::try_from(to - from + 1).unwrap_or(0));
    // Changes come in runs of one kind (a save's `item.set`s): the name is compared with the
    // last kind's before it is looked up among all kinds.
    let mut last: Option<ChangeKind> = None;
    while let Some(r) = rows.next()? {
        let name = text(r, 4)?;
        let kind = match last {
            Some(k) if k.as_str() == name => k,
            _ => name.parse::<ChangeKind>().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    4,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?,
        };
        last = Some(kind);
        let texts = ChangeTexts {
            change_id: text(r, 1)?,
            device: text(r, 2)?,
            subject: optional_text(r, 5)?,
            form: optional_text(r, 6)?,
            item: optional_text(r, 7)?,
            old_value: optional_text(r, 8)?,
            new_value: optional_text(r, 9)?,
            user: text(r, 10)?,
            role: text(r, 11)?,
            utc: text(r, 12)?,
            local_offset: text(r, 13)?,
            reason: optional_text(r, 14)?,
            hash: text(r, 15)?,
            signature: optional_text(r, 16)?,
            source: optional_text(r, 17)?,
        };
        out.push(r.get(0)?, r.get(3)?, kind, texts)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
    }
    Ok(out)
}

/// A signature as read, with the hash it signed and the values it covers now.
type SignatureRow = (Signature, String, Vec<(String, String, String)>);

/// A subject's current values: form instance → item → value.
type Forms = BTreeMap<String, BTreeMap<String, Value>>;

/// Current values: subject → form instance → item → value.
type Values = BTreeMap<String, Forms>;

/// Everything of a snapshot but the log: subjects, current values, signatures.
type SnapshotRest = (Vec<ExportSubject>, Values, Vec<SignatureRow>);

/// The current values of the snapshot `tx` reads.
///
/// The rows come sorted by subject, instance and item: each subject's and instance's name is
/// taken once and each map built from its sorted entries, and a trial's half a million values
/// are a few thousand distinct JSON texts, each read once.
fn read_values(tx: &rusqlite::Connection) -> Result<Values, StoreError> {
    let mut stmt = tx.prepare(
        "SELECT subject, form, item, value FROM item_values ORDER BY subject, form, item",
    )?;
    let mut rows = stmt.query([])?;
    let mut read: HashMap<String, Value> = HashMap::new();
    let mut subjects: Vec<(String, Forms)> = Vec::new();
    let mut forms: Vec<(String, BTreeMap<String, Value>)> = Vec::new();
    let mut items: Vec<(String, Value)> = Vec::new();
    // The subject and instance whose values are being gathered.
    let mut at: Option<(String, String)> = None;
    while let Some(r) = rows.next()? {
        let (subject, form, item, json) = (text(r, 0)?, text(r, 1)?, text(r, 2)?, text(r, 3)?);
        match &mut at {
            Some((s, f)) if s == subject && f == form => {}
            Some((s, f)) => {
                forms.push((
                    std::mem::replace(f, form.to_string()),
                    items.drain(..).collect(),
                ));
                if s != subject {
                    let s = std::mem::replace(s, subject.to_string());
                    subjects.push((s, forms.drain(..).collect()));
                }
            }
            None => at = Some((subject.to_string(), form.to_string())),
        }
        let value = match read.get(json) {
            Some(v) => v.clone(),
            None => {
                let v = decode_value(form, item, json)?;
                read.insert(json.to_string(), v.clone());
                v
            }
        };
        items.push((item.to_string(), value));
    }
    if let Some((s, f)) = at {
        forms.push((f, items.into_iter().collect()));
        subjects.push((s, forms.into_iter().collect()));
    }
    Ok(subjects.into_iter().collect())
}

/// Subjects, current values and signatures of the snapshot `tx` reads.
fn read_rest(tx: &rusqlite::Connection) -> Result<SnapshotRest, StoreError> {
    let mut subjects = Vec::new();
    {
        let mut stmt =
            tx.prepare("SELECT subject, site, created_utc FROM subjects ORDER BY created_seq")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            subjects.push(ExportSubject {
                subject: r.get(0)?,
                site: r.get(1)?,
                created_utc: r.get(2)?,
            });
        }
    }
    let values = read_values(tx)?;
    let mut signatures = Vec::new();
    {
        let mut stmt = tx.prepare(
            "SELECT change_id, subject, scope, meaning, signer, signer_name, utc, local_offset, \
                 values_hash FROM signatures ORDER BY seq",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let meaning: String = r.get(3)?;
            let s = Signature {
                id: r.get(0)?,
                subject: r.get(1)?,
                scope: r.get(2)?,
                meaning: serde_json::from_str(&meaning).map_err(|e| {
                    StoreError::Invalid(format!("signature {}: meaning: {e}", meaning))
                })?,
                signer: r.get(4)?,
                name: r.get(5)?,
                utc: r.get(6)?,
                local_offset: r.get(7)?,
                valid: false,
            };
            let hash: String = r.get(8)?;
            let now = covered_values(tx, &s.subject, &s.scope)?;
            signatures.push((s, hash, now));
        }
    }
    Ok((subjects, values, signatures))
}

impl Store {
    /// Reads everything an export needs in one read transaction; the change log only when
    /// `with_changes` (exports with the audit trail). Data managers only (core::role).
    pub fn export_view(&mut self, with_changes: bool) -> Result<ExportView, StoreError> {
        self.require(Action::Export)?;
        let users = self.users()?;
        let site = self.site().to_string();
        let extra = if with_changes {
            self.extra_connection()
                .and_then(|a| Ok((a, self.extra_connection()?)))
                .ok()
        } else {
            None
        };
        let conn = self.conn_mut();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let store_id: String = tx
            .query_row("SELECT value FROM meta WHERE key = 'store_id'", [], |r| {
                r.get(0)
            })
            .unwrap_or_default();
        // The log is append-only: its rows up to this snapshot's last seq are the same on any
        // connection, so two more connections read its two halves while this one reads the
        // rest of the snapshot (one connection reads it all when they cannot be opened).
        let (first, last): (i64, i64) = if with_changes {
            tx.query_row(
                "SELECT coalesce(min(seq), 0), coalesce(max(seq), -1) FROM change_log",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
        } else {
            (0, -1)
        };
        let mid = first + (last - first) / 2;
        let (subjects, values, signatures, changes) = std::thread::scope(|scope| {
            let halves = extra.map(|(a, b)| {
                (
                    scope.spawn(move || read_changes(&a, first, mid)),
                    scope.spawn(move || read_changes(&b, mid + 1, last)),
                )
            });
            let rest = read_rest(&tx);
            let stopped = |_| StoreError::Invalid("reading the change log stopped (a bug)".into());
            let changes = match halves {
                Some((lo, hi)) => vec![lo.join().map_err(stopped)??, hi.join().map_err(stopped)??],
                None if with_changes => vec![read_changes(&tx, first, last)?],
                None => Vec::new(),
            };
            let (subjects, values, signatures) = rest?;
            Ok::<_, StoreError>((subjects, values, signatures, changes))
        })?;
        tx.commit()?;
        // A signature holds while the values it covers hash as they did when signed.
        let signatures = signatures
            .into_iter()
            .map(|(mut s, hash, now)| {
                let scope = scope_of(&s.scope, self.study())?;
                s.valid = hash_of(&s.subject, &scope, &now) == hash;
                Ok(s)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let definitions = crate::versions::published(&self.conn)?;
        let instance_versions = self
            .conn
            .prepare("SELECT subject, form, version FROM instance_versions")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ExportView {
            site,
            store_id,
            subjects,
            values,
            users,
            signatures,
            changes,
            definitions,
            instance_versions,
        })
    }

    /// Refuses unless the logged-in role may export (data managers): for exports that read
    /// another source (the central server's database) but are recorded here.
    pub fn require_export(&self) -> Result<(), StoreError> {
        self.require(Action::Export)
    }

    /// Appends a `data.export` change saying who exported what (format, forms, site, audit or
    /// not, where to), so every export is in the audit trail. Data managers only.
    pub fn record_export(&mut self, exported: Exported) -> Result<Change, StoreError> {
        self.require(Action::Export)?;
        let (mut written, ()) =
            self.commit_with(|_| Ok((vec![Draft::of(Body::DataExported(exported))], ())))?;
        written
            .pop()
            .ok_or_else(|| StoreError::Invalid("the export event was not written".into()))
    }
}
