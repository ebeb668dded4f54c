//! What an export reads from a local store: one consistent, read-only snapshot of the site's
//! subjects, current values, users and change log, plus the audited `data.export` event.
//!
//! Owns the SQL of exports, so the export crate never touches the file. Invariants: the snapshot
//! is read inside one read transaction (values, subjects and log agree with each other); only
//! roles that may [`Action::Export`] get it; recording an export is a change in the log like any
//! other (who, when, what), never a side table.

use ecrf_core::{Action, Value};
use rusqlite::TransactionBehavior;

use crate::error::StoreError;
use crate::log::{COLUMNS, Change, kind};
use crate::store::{Draft, Store, User, decode_value};

/// A subject as the export sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSubject {
    /// Screening number (the store's key).
    pub subject: String,
    /// Site code.
    pub site: String,
    /// When the subject was created (UTC, RFC 3339).
    pub created_utc: String,
}

/// One current value.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportValue {
    /// Subject number.
    pub subject: String,
    /// Form instance, like `DLY#3`.
    pub form: String,
    /// Item id.
    pub item: String,
    /// The value.
    pub value: Value,
    /// Sequence of the change that set it.
    pub change_seq: i64,
}

/// A consistent snapshot of one store for exporting.
#[derive(Debug, Clone)]
pub struct ExportView {
    /// The store's site code.
    pub site: String,
    /// The store's id.
    pub store_id: String,
    /// Subjects in order of creation.
    pub subjects: Vec<ExportSubject>,
    /// Current values, by subject, form instance and item.
    pub values: Vec<ExportValue>,
    /// Users of the store.
    pub users: Vec<User>,
    /// The whole change log, in append order (empty when not asked for).
    pub changes: Vec<Change>,
}

impl Store {
    /// Reads everything an export needs in one read transaction; the change log only when
    /// `with_changes` (exports with the audit trail). Data managers only (core::role).
    pub fn export_view(&mut self, with_changes: bool) -> Result<ExportView, StoreError> {
        self.require(Action::Export)?;
        let users = self.users()?;
        let site = self.site().to_string();
        let conn = self.conn_mut();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let store_id: String = tx
            .query_row("SELECT value FROM meta WHERE key = 'store_id'", [], |r| {
                r.get(0)
            })
            .unwrap_or_default();
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
        let mut changes = Vec::new();
        if with_changes {
            let mut stmt = tx.prepare(&format!("SELECT {COLUMNS} FROM change_log ORDER BY seq"))?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                changes.push(Change::from_row(r)?);
            }
        }
        tx.commit()?;
        Ok(ExportView {
            site,
            store_id,
            subjects,
            values,
            users,
            changes,
        })
    }

    /// Appends a `data.export` change saying who exported what (format, forms, site, audit or
    /// not, where to), so every export is in the audit trail. Data managers only.
    pub fn record_export(&mut self, description: &str) -> Result<Change, StoreError> {
        self.require(Action::Export)?;
        let (mut written, ()) = self.commit_with(|_| {
            let mut d = Draft::new(kind::DATA_EXPORTED);
            d.new_value = Some(description.to_string());
            Ok((vec![d], ()))
        })?;
        written
            .pop()
            .ok_or_else(|| StoreError::Invalid("the export event was not written".into()))
    }
}
