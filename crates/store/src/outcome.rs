//! A subject's values as a whole, for the rules and derivations that span forms.
//!
//! Owns reading every form instance of a subject into [`SubjectValues`] and handing it to
//! [`ecrf_core::outcome`]; no SQL of its own beyond [`Store::subject_values`]. The outcome is
//! computed on demand (never stored), so it always follows the current values.

use chrono::Utc;
use ecrf_core::outcome::{SubjectOutcome, SubjectValues, derived_range_flags, subject_outcome};

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
}
