//! Laboratory import on the laptop: the site's subject identification log, results a nurse
//! rejected, and saving accepted values with their provenance.
//!
//! Invariants: a hospital record number lives only in `subject_ids` of this encrypted file —
//! never a change, so it is never synced, exported, or printed by the trial's outputs; one
//! number belongs to one subject. Accepted values go through the same checks as typed ones
//! ([`Store::prepare_save`]: types, ranges, rules, locks, reasons for changes) and are written
//! with the rejections in one transaction: an import saves everything accepted or nothing.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use ecrf_core::{Action, FormKey};
use ecrf_log::body::Provenance;

use crate::error::StoreError;
use crate::store::{SaveOptions, SaveOutcome, Store};

/// The longest hospital record number accepted.
pub const MRN_MAX: usize = 64;

/// A value a nurse accepted.
#[derive(Debug, Clone)]
pub struct LabValue {
    /// Subject.
    pub subject: String,
    /// Form instance.
    pub form: FormKey,
    /// Item id.
    pub item: String,
    /// The value as typed text (the item's unit).
    pub value: String,
    /// Where it came from.
    pub provenance: Provenance,
}

/// A result a nurse rejected: remembered so that no later import asks again.
#[derive(Debug, Clone)]
pub struct LabRejection {
    /// The result's identity.
    pub key: String,
    /// Subject, form instance, item and value it would have filled.
    pub subject: String,
    /// Form instance.
    pub form: String,
    /// Item id.
    pub item: String,
    /// The value it would have saved.
    pub value: String,
    /// SHA-256 of the file it came in.
    pub file: String,
}

impl Store {
    /// Records the hospital record number of `subject` in the site's identification log (or
    /// replaces it).
    pub fn set_subject_mrn(&mut self, subject: &str, mrn: &str) -> Result<(), StoreError> {
        self.require(Action::EnterData)?;
        self.require_subject(subject)?;
        let mrn = mrn.trim();
        if mrn.is_empty() || mrn.chars().count() > MRN_MAX || mrn.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "hospital record number: 1 to {MRN_MAX} characters without control characters"
            )));
        }
        let user = self.session().user.clone();
        let holder: Option<String> = self
            .conn()
            .query_row(
                "SELECT subject FROM subject_ids WHERE mrn = ?1",
                [mrn],
                |r| r.get(0),
            )
            .ok();
        if let Some(other) = holder.filter(|o| o != subject) {
            return Err(StoreError::Invalid(format!(
                "hospital record number {mrn} is already the number of subject {other}"
            )));
        }
        self.conn().execute(
            "INSERT INTO subject_ids (subject, mrn, utc, user) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (subject) DO UPDATE SET mrn = excluded.mrn, utc = excluded.utc, \
             user = excluded.user",
            rusqlite::params![subject, mrn, Utc::now().to_rfc3339(), user],
        )?;
        Ok(())
    }

    /// The identification log: (subject, hospital record number), by subject.
    pub fn subject_mrns(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.require(Action::Read)?;
        let mut stmt = self
            .conn()
            .prepare("SELECT subject, mrn FROM subject_ids ORDER BY subject")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Saves a laboratory table mapping (JSON) of this site's laptop under `name`.
    pub fn set_lab_mapping(&mut self, name: &str, json: &str) -> Result<(), StoreError> {
        self.require(Action::EnterData)?;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        {
            return Err(StoreError::Invalid(
                "mapping name: letters, digits, - and _ only".into(),
            ));
        }
        crate::store::set_meta(self.conn(), &format!("lab.mapping.{name}"), json)
    }

    /// A saved laboratory table mapping (JSON).
    pub fn lab_mapping(&self, name: &str) -> Result<Option<String>, StoreError> {
        crate::store::get_meta(self.conn(), &format!("lab.mapping.{name}"))
    }

    /// Keys of the results rejected before.
    pub fn lab_rejected(&self) -> Result<BTreeSet<String>, StoreError> {
        let mut stmt = self.conn().prepare("SELECT result FROM lab_rejected")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Keys of the results saved by earlier imports (from the provenance of the log's
    /// changes).
    pub fn lab_imported(&self) -> Result<BTreeSet<String>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare("SELECT source FROM change_log WHERE source IS NOT NULL")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = BTreeSet::new();
        for s in rows {
            if let Some(p) = Provenance::from_json(&s?) {
                out.insert(p.key);
            }
        }
        Ok(out)
    }

    /// Saves the accepted values and remembers the rejections, all in one transaction; any
    /// refusal (a range, a rule, a lock, a change without a reason, an unconfirmed warning)
    /// is returned naming its subject and form, and nothing is written.
    pub fn save_lab(
        &mut self,
        accepted: &[LabValue],
        rejected: &[LabRejection],
        opts: &SaveOptions,
    ) -> Result<SaveOutcome, StoreError> {
        self.require(Action::EnterData)?;
        let mut by_instance: BTreeMap<(String, String), Vec<&LabValue>> = BTreeMap::new();
        for v in accepted {
            by_instance
                .entry((v.subject.clone(), v.form.to_string()))
                .or_default()
                .push(v);
        }
        let mut drafts = Vec::new();
        let mut outcome = SaveOutcome::default();
        for ((subject, form), values) in &by_instance {
            let entries: Vec<(&str, &str)> = values
                .iter()
                .map(|v| (v.item.as_str(), v.value.as_str()))
                .collect();
            let sources: BTreeMap<String, String> = values
                .iter()
                .map(|v| (v.item.clone(), v.provenance.to_json()))
                .collect();
            let key = &values[0].form;
            let (mut d, o) = self
                .prepare_save(subject, key, &entries, opts, &sources)
                .map_err(|e| StoreError::InInstance {
                    subject: subject.clone(),
                    form: form.clone(),
                    error: Box::new(e),
                })?;
            drafts.append(&mut d);
            outcome.changes += o.changes;
            outcome.warnings.extend(o.warnings);
        }
        let user = self.session().user.clone();
        let now = Utc::now().to_rfc3339();
        self.commit_with(|tx| {
            for r in rejected {
                tx.execute(
                    "INSERT OR IGNORE INTO lab_rejected \
                     (result, subject, form, item, value, file, utc, user) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    rusqlite::params![r.key, r.subject, r.form, r.item, r.value, r.file, now, user],
                )?;
            }
            Ok((drafts, ()))
        })?;
        Ok(outcome)
    }
}
