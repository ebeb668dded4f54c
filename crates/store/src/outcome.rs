//! A subject's values as a whole, for the rules and derivations that span forms.
//!
//! Owns reading every form instance of a subject into [`SubjectValues`] and handing it to
//! [`ecrf_core::outcome`]. The outcome is computed on demand (never stored), so it always
//! follows the current values.

use chrono::Utc;
use ecrf_core::outcome::{
    SUBJECT_ITEMS_IGNORE_FORM, SubjectOutcome, SubjectValues, derived_range_flags, subject_outcome,
};

use crate::error::StoreError;
use crate::store::Store;

impl Store {
    /// Every form instance of a subject (`RND`, `DLY#3`) with its current values.
    pub fn subject_value_map(&self, subject: &str) -> Result<SubjectValues, StoreError> {
        Ok(self
            .subject_values(subject)?
            .into_iter()
            .map(|(instance, items)| {
                let values = items.into_iter().map(|s| (s.item, s.value)).collect();
                (instance, values)
            })
            .collect())
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

    /// The subject's outcome as the rules' `SUBJECT.*` items need it (`ecrf_core::outcome::
    /// subject_item`), read without the daily logs, which those items never depend on
    /// ([`SUBJECT_ITEMS_IGNORE_FORM`]). Its flags are incomplete: only for the rules of a save.
    pub(crate) fn outcome_for_subject_items(
        &self,
        subject: &str,
    ) -> Result<SubjectOutcome, StoreError> {
        // Two ranges of the primary key (subject, form, item) around the instances `DLY#…`
        // (`#` is followed by `$` in byte order), so the daily logs' pages are not read.
        let skip_from = format!("{SUBJECT_ITEMS_IGNORE_FORM}#");
        let skip_to = format!("{SUBJECT_ITEMS_IGNORE_FORM}$");
        let mut stmt = self.conn().prepare_cached(
            "SELECT form, item, value FROM item_values WHERE subject = ?1 AND form < ?2 \
             UNION ALL \
             SELECT form, item, value FROM item_values WHERE subject = ?1 AND form >= ?3",
        )?;
        let mut rows = stmt.query([subject, &skip_from, &skip_to])?;
        let mut values = SubjectValues::new();
        while let Some(r) = rows.next()? {
            let form: String = r.get(0)?;
            let item: String = r.get(1)?;
            let json: String = r.get(2)?;
            let value = crate::store::decode_value(&form, &item, &json)?;
            values.entry(form).or_default().insert(item, value);
        }
        Ok(subject_outcome(&values, Utc::now()))
    }
}
