//! Laboratory import, the use case the desktop's adjudication screen and `ecrf lab import`
//! share: read a file (`ecrf_lab`), gather what the plan needs from the store (the site's
//! identification log, each subject's ECMO start, day 0 and entered values, results rejected
//! or imported before), and save a nurse's decisions in one transaction.
//!
//! Invariant: only candidates of the plan of this very file are saved, each with the
//! provenance of its result; a decision naming an id the plan does not have is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, FixedOffset, Local};
use ecrf_core::FormKey;
use ecrf_core::schedule::day_zero;
use ecrf_core::value::Value;
use ecrf_lab::plan::{Candidate, Context, Plan, SubjectRecord, plan};
use ecrf_lab::{Format, LabFile, TableMapping};
use ecrf_log::body::Provenance;
use ecrf_store::error::StoreError;
use ecrf_store::lab::{LabRejection, LabValue};
use ecrf_store::{SaveOptions, SaveOutcome, Store};

/// Why an import cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum LabImportError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a readable laboratory file: nothing of it is used.
    #[error(transparent)]
    Read(#[from] ecrf_lab::ReadError),
    /// A saved mapping is missing or unreadable.
    #[error("mapping {0}: {1}")]
    Mapping(String, String),
    /// A decision names a candidate this file's plan does not have, or has nothing to decide.
    #[error("{0}")]
    Decision(String),
    /// The store refused (nothing saved).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads a laboratory file; CSV and Excel through the mapping saved under `mapping`.
pub fn read_file(
    store: &Store,
    path: &Path,
    mapping: Option<&str>,
) -> Result<LabFile, LabImportError> {
    let bytes = std::fs::read(path).map_err(|source| LabImportError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let format = Format::detect(name, &bytes);
    let table = match (format, mapping) {
        (Format::Csv | Format::Xlsx, Some(m)) => Some(saved_mapping(store, m)?),
        _ => None,
    };
    Ok(ecrf_lab::read(format, &bytes, table.as_ref())?)
}

/// A mapping saved on this laptop.
pub fn saved_mapping(store: &Store, name: &str) -> Result<TableMapping, LabImportError> {
    let json = store.lab_mapping(name)?.ok_or_else(|| {
        LabImportError::Mapping(name.into(), "no mapping of that name on this laptop".into())
    })?;
    serde_json::from_str(&json).map_err(|e| LabImportError::Mapping(name.into(), e.to_string()))
}

/// Saves a mapping after checking it reads as one.
pub fn save_mapping(store: &mut Store, name: &str, m: &TableMapping) -> Result<(), LabImportError> {
    let json = serde_json::to_string(m)
        .map_err(|e| LabImportError::Mapping(name.into(), e.to_string()))?;
    Ok(store.set_lab_mapping(name, &json)?)
}

/// What importing `file` would do now.
pub fn plan_import(store: &Store, file: &LabFile) -> Result<Plan, LabImportError> {
    let mut subjects = BTreeMap::new();
    for (subject, mrn) in store.subject_mrns()? {
        let values = store.subject_value_map(&subject)?;
        let ecmo_start = values
            .get("ECMO")
            .and_then(|f| f.get("START_DT"))
            .and_then(|v| match v {
                Value::DateTime(t) => Some(*t),
                _ => None,
            });
        let day0 = day_zero(&values);
        subjects.insert(
            mrn,
            SubjectRecord {
                subject,
                ecmo_start,
                day0,
                values,
            },
        );
    }
    let now: DateTime<FixedOffset> = Local::now().fixed_offset();
    let ctx = Context {
        study: store.study(),
        subjects,
        rejected: store.lab_rejected()?,
        imported: store.lab_imported()?,
        now,
    };
    Ok(plan(file, &ctx))
}

/// A nurse's decisions on a plan's open candidates, by candidate id.
#[derive(Debug, Clone, Default)]
pub struct Decisions {
    /// Accept every open candidate not rejected.
    pub accept_all: bool,
    /// Accepted ids.
    pub accept: BTreeSet<String>,
    /// Rejected ids (remembered).
    pub reject: BTreeSet<String>,
}

/// What an import saved.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportOutcome {
    /// Values saved (changes written).
    pub saved: usize,
    /// Results rejected (remembered).
    pub rejected: usize,
    /// Open candidates left undecided.
    pub undecided: usize,
}

/// Saves the accepted candidates of `plan` (made from `file`) and remembers the rejected ones,
/// in one transaction.
pub fn apply_import(
    store: &mut Store,
    file: &LabFile,
    plan: &Plan,
    decisions: &Decisions,
    opts: &SaveOptions,
) -> Result<ImportOutcome, LabImportError> {
    let by_id: BTreeMap<&str, &Candidate> = plan.open().map(|c| (c.id.as_str(), c)).collect();
    for id in decisions.accept.iter().chain(&decisions.reject) {
        if !by_id.contains_key(id.as_str()) {
            return Err(LabImportError::Decision(format!(
                "{id} is not an open candidate of this file (see the dry run's ids)"
            )));
        }
        if decisions.accept.contains(id) && decisions.reject.contains(id) {
            return Err(LabImportError::Decision(format!(
                "{id} is both accepted and rejected"
            )));
        }
    }
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    for c in plan.open() {
        if decisions.reject.contains(&c.id) {
            rejected.push(LabRejection {
                key: c.key.clone(),
                subject: c.subject.clone(),
                form: c.form.clone(),
                item: c.item.clone(),
                value: c.value.clone(),
                file: file.sha256.clone(),
            });
        } else if decisions.accept_all || decisions.accept.contains(&c.id) {
            let form = FormKey::parse(store.study(), &c.form).map_err(LabImportError::Decision)?;
            accepted.push(LabValue {
                subject: c.subject.clone(),
                form,
                item: c.item.clone(),
                value: c.value.clone(),
                provenance: Provenance {
                    file: file.sha256.clone(),
                    format: file.format.as_str().to_string(),
                    result: c.result.clone(),
                    key: c.key.clone(),
                    value: c.source_value.clone(),
                    unit: c.source_unit.clone(),
                    taken: c.taken.clone(),
                },
            });
        }
    }
    let undecided = by_id.len() - accepted.len() - rejected.len();
    if accepted.is_empty() && rejected.is_empty() {
        return Ok(ImportOutcome {
            undecided,
            ..ImportOutcome::default()
        });
    }
    let SaveOutcome { changes, .. } = store.save_lab(&accepted, &rejected, opts)?;
    Ok(ImportOutcome {
        saved: changes,
        rejected: rejected.len(),
        undecided,
    })
}

/// The desktop's laboratory import screen: thin calls into the use case above.
impl crate::App {
    /// What importing the file at `path` would do (CSV and Excel through a saved mapping).
    pub fn lab_preview(
        &self,
        path: &str,
        mapping: Option<&str>,
    ) -> crate::AppResult<crate::dto::LabPreview> {
        let store = self.store()?;
        let file = read_file(store, Path::new(path), mapping).map_err(lab_error)?;
        let plan = plan_import(store, &file).map_err(lab_error)?;
        Ok(preview_dto(store, path, &file, &plan))
    }

    /// Saves the decisions on the file at `path`, which must still be the file previewed
    /// (`sha256`): the accepted values and the rejections, in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn lab_apply(
        &mut self,
        path: &str,
        mapping: Option<&str>,
        sha256: &str,
        accept: &[String],
        reject: &[String],
        reason: Option<String>,
        confirm: bool,
    ) -> crate::AppResult<crate::dto::LabApplied> {
        let store = self.store_mut()?;
        let file = read_file(store, Path::new(path), mapping).map_err(lab_error)?;
        if file.sha256 != sha256 {
            return Err(crate::err(
                crate::dto::ErrorCode::Invalid,
                "the file changed since it was read: read it again and decide again; nothing saved",
            ));
        }
        let plan = plan_import(store, &file).map_err(lab_error)?;
        let decisions = Decisions {
            accept_all: false,
            accept: accept.iter().cloned().collect(),
            reject: reject.iter().cloned().collect(),
        };
        let opts = SaveOptions {
            reason,
            confirm_warnings: confirm,
        };
        let out = apply_import(store, &file, &plan, &decisions, &opts).map_err(lab_error)?;
        Ok(crate::dto::LabApplied {
            saved: out.saved as u32,
            rejected: out.rejected as u32,
            undecided: out.undecided as u32,
        })
    }

    /// The site's identification log.
    pub fn subject_mrns(&self) -> crate::AppResult<Vec<crate::dto::SubjectMrn>> {
        Ok(self
            .store()?
            .subject_mrns()?
            .into_iter()
            .map(|(subject, mrn)| crate::dto::SubjectMrn { subject, mrn })
            .collect())
    }

    /// Records a subject's hospital record number; returns the log.
    pub fn set_subject_mrn(
        &mut self,
        subject: &str,
        mrn: &str,
    ) -> crate::AppResult<Vec<crate::dto::SubjectMrn>> {
        self.store_mut()?.set_subject_mrn(subject, mrn)?;
        self.subject_mrns()
    }
}

fn lab_error(e: LabImportError) -> crate::AppError {
    match e {
        LabImportError::Store(s) => s.into(),
        other => crate::err(crate::dto::ErrorCode::Invalid, other.to_string()),
    }
}

fn preview_dto(store: &Store, path: &str, file: &LabFile, plan: &Plan) -> crate::dto::LabPreview {
    let study = store.study();
    crate::dto::LabPreview {
        path: path.to_string(),
        format: file.format.as_str().to_string(),
        sha256: file.sha256.clone(),
        results: plan.results as u32,
        candidates: plan
            .candidates
            .iter()
            .map(|c| {
                let form_id = if c.form == "BAS" { "BAS" } else { "DLY" };
                let item = study.form(form_id).and_then(|f| f.item(&c.item));
                crate::dto::LabCandidateDto {
                    id: c.id.clone(),
                    subject: c.subject.clone(),
                    form: c.form.clone(),
                    item: c.item.clone(),
                    label: item
                        .map(|i| crate::convert::txt(&i.label))
                        .unwrap_or_else(|| crate::dto::Txt {
                            en: c.item.clone(),
                            zh: c.item.clone(),
                        }),
                    value: c.value.clone(),
                    unit: item.and_then(|i| i.unit.clone()).unwrap_or_default(),
                    source: format!("{} {}", c.source_value, c.source_unit)
                        .trim()
                        .to_string(),
                    taken: c.taken.clone(),
                    result: c.result.clone(),
                    entered: c.entered.clone(),
                    others: c.others as u32,
                    status: serde_json::to_value(c.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                }
            })
            .collect(),
        problems: plan
            .problems
            .iter()
            .map(|p| crate::dto::LabProblemDto {
                place: p.place.clone(),
                message: p.message.clone(),
            })
            .collect(),
    }
}
