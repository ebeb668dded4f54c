//! A subject's values as a whole, for the rules and derivations that span forms.
//!
//! Owns reading every form instance of a subject into [`SubjectValues`] and handing it to
//! [`ecrf_core::outcome`]. The outcome is computed on demand (never stored), so it always
//! follows the current values.

use std::collections::BTreeMap;

use chrono::Utc;
use ecrf_core::outcome::{
    SUBJECT_ITEMS_IGNORE_FORM, SubjectOutcome, SubjectValues, derive_instance, derived_range_flags,
    subject_outcome,
};
use ecrf_core::{FormKey, Value};

use crate::error::StoreError;
use crate::store::Store;

impl Store {
    /// Every form instance of a subject (`RND`, `DLY#3`) with its current values.
    pub fn subject_value_map(&self, subject: &str) -> Result<SubjectValues, StoreError> {
        self.require_subject(subject)?;
        self.read_value_map(subject, None)
    }

    /// The subject's derived outcomes and protocol flags as of now, with a flag for each
    /// derived value outside its item's usual range (`outcome::derived_range_flags`).
    pub fn subject_outcome(&self, subject: &str) -> Result<SubjectOutcome, StoreError> {
        let values = self.subject_value_map(subject)?;
        let mut outcome = subject_outcome(&values, Utc::now());
        outcome
            .flags
            .extend(derived_range_flags(self.study(), &values));
        Ok(outcome)
    }

    /// The derived items of one form instance as every output shows them: the value, or the
    /// missing-data code when it cannot be computed (`ecrf_core::outcome::derive_instance`,
    /// over the subject's current values and outcome). The form page and `ecrf form show` read
    /// them here; the casebook (PDF) and the exports make the same call.
    pub fn derived_values(
        &self,
        subject: &str,
        key: &FormKey,
    ) -> Result<BTreeMap<String, Value>, StoreError> {
        let Some(form) = self.study().form(&key.form) else {
            return Ok(BTreeMap::new());
        };
        let values = self.subject_value_map(subject)?;
        let outcome = subject_outcome(&values, Utc::now());
        Ok(derive_instance(form, &key.to_string(), &values, &outcome))
    }

    /// The subject's outcome as the rules' `SUBJECT.*` items need it (`ecrf_core::outcome::
    /// subject_item`), read without the daily logs, which those items never depend on
    /// ([`SUBJECT_ITEMS_IGNORE_FORM`]). Its flags are incomplete: only for the rules of a save.
    pub(crate) fn outcome_for_subject_items(
        &self,
        subject: &str,
    ) -> Result<SubjectOutcome, StoreError> {
        let values = self.read_value_map(subject, Some(SUBJECT_ITEMS_IGNORE_FORM))?;
        Ok(subject_outcome(&values, Utc::now()))
    }

    /// The subject's values by form instance, all of them or without the instances of the
    /// repeating form `skip` (`DLY#…`).
    fn read_value_map(
        &self,
        subject: &str,
        skip: Option<&str>,
    ) -> Result<SubjectValues, StoreError> {
        let mut stmt;
        let mut rows = match skip {
            None => {
                stmt = self.conn().prepare_cached(
                    "SELECT form, item, value FROM item_values WHERE subject = ?1",
                )?;
                stmt.query([subject])?
            }
            Some(form) => {
                // Two ranges of the primary key (subject, form, item) around `FORM#…` (`#` is
                // followed by `$` in byte order), so the skipped instances' pages are not read.
                stmt = self.conn().prepare_cached(
                    "SELECT form, item, value FROM item_values WHERE subject = ?1 AND form < ?2 \
                     UNION ALL \
                     SELECT form, item, value FROM item_values WHERE subject = ?1 AND form >= ?3",
                )?;
                stmt.query([subject, &format!("{form}#"), &format!("{form}$")])?
            }
        };
        let mut values = SubjectValues::new();
        while let Some(r) = rows.next()? {
            let form: String = r.get(0)?;
            let item: String = r.get(1)?;
            let json: String = r.get(2)?;
            let value = crate::store::decode_value(&form, &item, &json)?;
            values.entry(form).or_default().insert(item, value);
        }
        Ok(values)
    }
}
