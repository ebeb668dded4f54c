//! Form instances: reading one with its values and draft, which questions are asked, saving with
//! the edit checks and reasons decided in core and the store, drafts, and an item's history.

use super::*;

impl App {
    pub(crate) fn key(&self, key: &str) -> AppResult<FormKey> {
        FormKey::parse(&self.study, key).map_err(|e| err(ErrorCode::Invalid, e))
    }

    /// The items of a form that are not asked given the texts on screen: their `ask_when`
    /// condition (decided by `ecrf_core::check::is_asked`, the rule saving applies) does not
    /// hold. The form page hides them. A text that does not parse counts as empty.
    pub fn unasked_items(&self, key: &str, entries: &[Entry]) -> AppResult<Vec<String>> {
        let key = self.key(key)?;
        let form = self
            .study
            .form(&key.form)
            .ok_or_else(|| err(ErrorCode::Invalid, format!("there is no form {}", key.form)))?;
        let values: BTreeMap<String, Value> = entries
            .iter()
            .filter_map(|e| {
                let item = form.item(&e.item)?;
                let value = ecrf_core::check::parse_input(&self.study, form, item, &e.text, None)
                    .ok()??;
                Some((e.item.clone(), value))
            })
            .collect();
        Ok(form
            .items
            .iter()
            .filter(|i| !ecrf_core::check::is_asked(i, &values))
            .map(|i| i.id.clone())
            .collect())
    }

    /// The definition of a form instance's own version (the one it was started under, or the
    /// version in force for a new one): the page draws exactly the items its rules check.
    pub fn form_definition(&self, subject: &str, key: &str) -> AppResult<FormVersionDto> {
        let key = self.key(key)?;
        let store = self.store()?;
        let (version, _) = store.instance_version(subject, &key.to_string())?;
        let study = store.definitions()?.version(&version)?;
        let form = study_dto(&study)
            .forms
            .into_iter()
            .find(|f| f.id == key.form)
            .ok_or_else(|| {
                err(
                    ErrorCode::Invalid,
                    format!(
                        "there is no form {} in study definition {version}",
                        key.form
                    ),
                )
            })?;
        Ok(FormVersionDto { version, form })
    }

    /// A form instance with its values, status and any draft.
    pub fn form(&self, subject: &str, key: &str) -> AppResult<FormPage> {
        let key = self.key(key)?;
        let store = self.store()?;
        let states = store.form_values(subject, &key)?;
        let form = self
            .study
            .form(&key.form)
            .ok_or_else(|| err(ErrorCode::Invalid, format!("no form {}", key.form)))?;
        let values: BTreeMap<String, Value> = states
            .iter()
            .map(|s| (s.item.clone(), s.value.clone()))
            .collect();
        let warned = states.iter().any(|s| s.warning.is_some());
        let today = Local::now().date_naive();
        let status = instance_status(form, &values, warned, None, today);
        let draft = match store.draft(subject, &key)? {
            Some(json) => serde_json::from_str(&json).ok(),
            None => None,
        };
        Ok(FormPage {
            subject: subject.to_string(),
            key: key.to_string(),
            form: key.form.clone(),
            values: states
                .iter()
                .map(|s| FieldValue {
                    item: s.item.clone(),
                    text: s.value.to_string(),
                    warning: s.warning.as_deref().and_then(warning_text),
                })
                .collect(),
            derived: store
                .derived_values(subject, &key)?
                .into_iter()
                .map(|(item, v)| FieldValue {
                    item,
                    text: v.to_string(),
                    warning: None,
                })
                .collect(),
            status,
            missing: ecrf_core::check::missing_required(form, &values)
                .iter()
                .map(|i| i.id.clone())
                .collect(),
            draft,
            prefilled_from: None,
        })
    }

    /// Saves entries. Returns what is needed next when the save cannot go through yet
    /// (errors to fix, warnings to confirm, a reason to give); nothing is written then.
    pub fn save_form(
        &mut self,
        subject: &str,
        key: &str,
        entries: &[Entry],
        reason: Option<String>,
        confirm: bool,
    ) -> AppResult<SaveReply> {
        let fkey = self.key(key)?;
        let pairs: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.item.as_str(), e.text.as_str()))
            .collect();
        let opts = SaveOptions {
            reason,
            confirm_warnings: confirm,
        };
        let store = self.store_mut()?;
        match store.save(subject, &fkey, &pairs, &opts) {
            Ok(outcome) => {
                store.clear_draft(subject, &fkey)?;
                store.idle()?;
                Ok(SaveReply::Saved {
                    page: self.form(subject, key)?,
                    changes: outcome.changes as u32,
                })
            }
            Err(StoreError::Rejected(errors)) => Ok(SaveReply::Refused {
                errors: errors.iter().map(finding_dto).collect(),
            }),
            Err(StoreError::NeedsConfirmation(warnings)) => Ok(SaveReply::Confirm {
                warnings: warnings.iter().map(finding_dto).collect(),
            }),
            Err(StoreError::ReasonRequired { items, .. }) => Ok(SaveReply::Reason {
                items: items
                    .into_iter()
                    .map(|(item, old)| ReasonItem { item, old })
                    .collect(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Keeps unsaved entries so they survive closing the window.
    pub fn save_draft(&self, subject: &str, key: &str, entries: &[Entry]) -> AppResult<()> {
        let fkey = self.key(key)?;
        let json =
            serde_json::to_string(entries).map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
        Ok(self.store()?.save_draft(subject, &fkey, &json)?)
    }

    /// Throws a draft away.
    pub fn discard_draft(&self, subject: &str, key: &str) -> AppResult<()> {
        let fkey = self.key(key)?;
        Ok(self.store()?.clear_draft(subject, &fkey)?)
    }

    /// The history of one field: who, when, old, new, why.
    pub fn history(&self, subject: &str, key: &str, item: &str) -> AppResult<Vec<AuditRow>> {
        let fkey = self.key(key)?.to_string();
        Ok(self
            .store()?
            .audit_log(subject)?
            .iter()
            .filter(|c| c.form.as_deref() == Some(&fkey) && c.item.as_deref() == Some(item))
            .map(crate::oversight::audit_row)
            .collect())
    }
}
