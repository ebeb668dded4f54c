//! What an export reads from a local store: one consistent, read-only snapshot of the site's
//! subjects, current values, users and change log, plus the audited `data.export` event.
//!
//! Owns the SQL of exports, so the export crate never touches the file. Invariants: the snapshot
//! is read inside one read transaction (values, subjects and log agree with each other); only
//! roles that may [`Action::Export`] get it; recording an export is a change in the log like any
//! other (who, when, what), never a side table.

use ecrf_core::Action;
use ecrf_log::body::{Body, Exported};
use ecrf_log::{Change, ExportSubject, ExportValue, ExportView, Signature};
use rusqlite::TransactionBehavior;

use crate::error::StoreError;
use crate::oversight::{covered_values, hash_of, scope_of};
use crate::store::{Draft, Store, decode_value};

/// The changes with `from <= seq <= to`, in order; what no export shows (the confirmed
/// warnings, the previous hash and the base of a change) is left empty, which saves reading and
/// holding ~150 bytes of each of hundreds of thousands of rows.
fn read_changes(
    conn: &rusqlite::Connection,
    from: i64,
    to: i64,
) -> Result<Vec<Change>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT seq, change_id, device, device_seq, kind, subject, form, item, old_value, \
         new_value, user, role, utc, local_offset, reason, NULL, '', hash, NULL, signature, source \
         FROM change_log WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq",
    )?;
    let mut rows = stmt.query([from, to])?;
    let mut out = Vec::with_capacity(usize::try_from(to - from + 1).unwrap_or(0));
    while let Some(r) = rows.next()? {
        out.push(crate::log::from_row(r)?);
    }
    Ok(out)
}

/// A signature as read, with the hash it signed and the values it covers now.
type SignatureRow = (Signature, String, Vec<(String, String, String)>);

/// Everything of a snapshot but the log: subjects, current values, signatures.
type SnapshotRest = (Vec<ExportSubject>, Vec<ExportValue>, Vec<SignatureRow>);

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
    let mut values = Vec::new();
    {
        let mut stmt = tx.prepare(
                "SELECT subject, form, item, value, change_seq FROM item_values ORDER BY subject, form, item",
            )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let form: String = r.get(1)?;
            let item: String = r.get(2)?;
            let json: String = r.get(3)?;
            let value = decode_value(&form, &item, &json)?;
            values.push(ExportValue {
                subject: r.get(0)?,
                form,
                item,
                value,
                change_seq: r.get(4)?,
            });
        }
    }
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
