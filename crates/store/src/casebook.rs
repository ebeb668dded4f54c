//! A subject's whole record in one read, as a printout or a casebook view needs it
//! ([`ecrf_log::Casebook`]): every form instance with data (typed and derived values, the
//! items verified against the source), the subject's audit trail, users' full names, queries
//! and signatures.
//!
//! Invariants: only reads; the instances are exactly those the audit trail has changes for and
//! the current definition knows, in schedule order then repeat number (an instance it does not
//! know is still in the audit trail); derived values are computed here by `ecrf_core`, never
//! stored.

use ecrf_core::FormKey;
use ecrf_log::{Casebook, CasebookForm, ItemState};

use crate::error::StoreError;
use crate::store::Store;

impl Store {
    /// The subject's casebook.
    pub fn casebook(&self, subject: &str) -> Result<Casebook, StoreError> {
        let study = self.study();
        let audit = self.audit_log(subject)?;
        let mut keys: Vec<FormKey> = Vec::new();
        for c in &audit {
            let Some(form) = &c.form else { continue };
            if let Ok(key) = FormKey::parse(study, form)
                && !keys.contains(&key)
            {
                keys.push(key);
            }
        }
        let order = |k: &FormKey| (study.forms.iter().position(|f| f.id == k.form), k.repeat);
        keys.sort_by_key(order);
        // Derived values (BMI, IABP delay, primary endpoint…) beside the typed ones, as the
        // form shows them.
        let whole = self.subject_value_map(subject)?;
        let outcome = self.subject_outcome(subject)?;
        let mut forms = Vec::with_capacity(keys.len());
        for key in keys {
            let mut values = self.form_values(subject, &key)?;
            if let Some(form) = study.form(&key.form) {
                let derived =
                    ecrf_core::outcome::derive_instance(form, &key.to_string(), &whole, &outcome);
                for (item, value) in derived {
                    if !values.iter().any(|v| v.item == item) {
                        values.push(ItemState {
                            item,
                            value,
                            warning: None,
                        });
                    }
                }
            }
            let verified = self.verified_items(subject, &key)?;
            let (version, _) = self.instance_version(subject, &key.to_string())?;
            forms.push(CasebookForm {
                key,
                values,
                verified,
                version,
            });
        }
        let names = self
            .users()?
            .into_iter()
            .map(|u| (u.username, u.name))
            .collect();
        Ok(Casebook {
            subject: subject.to_string(),
            site: self.site().to_string(),
            forms,
            audit,
            names,
            queries: self.queries(Some(subject))?,
            signatures: self.signatures(subject)?,
        })
    }
}
