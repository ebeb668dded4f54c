//! Results → candidate values: what an import would save, for a nurse to accept or reject.
//!
//! Rules, in order (each refusal is a [`Problem`] line, never a silent drop):
//! 1. a result's patient is found by hospital record number in the site's identification log
//!    (`Context::subjects`); unknown numbers are one line each;
//! 2. its LOINC code must be one a lab item of the study takes (`[items.lab]`); other codes are
//!    one line per code;
//! 3. the same result twice with different values, or two results of one patient, code and
//!    time with different values, are all refused (a person must look at the source);
//! 4. its specimen time places it (core::lab::specimen_day, in the subject's local time): the
//!    24 hours before the ECMO start → BAS, then day 0–30 → DLY#n; before, after or in the
//!    future is refused;
//! 5. its unit must be one the study lists for the item (converted by the study's factor);
//! 6. of a day's results for one item the worst counts (`worst = "max" | "min"`), of the
//!    baseline window the one closest before the ECMO start; the others are counted.
//!
//! A candidate's [`CandidateStatus`] says what accepting it would do: a new value, a change of
//! an entered one (a reason is needed), nothing (the same value is entered, the result was
//! already imported, or a nurse rejected it before).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset, NaiveDate};
use ecrf_core::lab::{SpecimenDay, Worst, specimen_day};
use ecrf_core::study::{ItemDef, Study};
use ecrf_core::value::Value;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{LabFile, LabResult, Problem};

/// What the plan needs to know of one subject of the site.
#[derive(Debug, Clone, Default)]
pub struct SubjectRecord {
    /// Screening number.
    pub subject: String,
    /// ECMO start (`ECMO.START_DT`), whose offset is the subject's local time.
    pub ecmo_start: Option<DateTime<FixedOffset>>,
    /// Day 0 (core::schedule::day_zero).
    pub day0: Option<NaiveDate>,
    /// Values entered now: form instance → item → value.
    pub values: BTreeMap<String, BTreeMap<String, Value>>,
}

/// Everything outside the file that the plan reads.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The study definition (its `[items.lab]`).
    pub study: &'a Study,
    /// The site's identification log: hospital record number → subject.
    pub subjects: BTreeMap<String, SubjectRecord>,
    /// Keys of results a nurse rejected before.
    pub rejected: BTreeSet<String>,
    /// Keys of results already saved from an earlier import (the `source` of changes).
    pub imported: BTreeSet<String>,
    /// Now, for "dated in the future".
    pub now: DateTime<FixedOffset>,
}

/// What accepting a candidate would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateStatus {
    /// The item is empty: the value would be saved.
    New,
    /// Another value is entered: it would be changed (with a reason).
    Differs,
    /// The same value is entered: nothing to do.
    Same,
    /// This result was saved by an earlier import: nothing to do.
    Imported,
    /// A nurse rejected this result before: not asked again.
    Rejected,
}

impl CandidateStatus {
    /// True when the nurse has something to decide.
    pub fn open(self) -> bool {
        matches!(self, CandidateStatus::New | CandidateStatus::Differs)
    }
}

/// One value an import would save.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Short id the nurse names it by (`--accept`, `--reject`): the key's first 10 digits.
    pub id: String,
    /// The result's identity: SHA-256 of patient, code, time, value and unit (the same
    /// result in a later export has the same key).
    pub key: String,
    /// Subject.
    pub subject: String,
    /// Form instance (`BAS`, `DLY#3`).
    pub form: String,
    /// Item id.
    pub item: String,
    /// The value that would be saved (the item's unit), as typed text.
    pub value: String,
    /// The source's value and unit, as written.
    pub source_value: String,
    /// The source's unit ("" when none).
    pub source_unit: String,
    /// LOINC code.
    pub loinc: String,
    /// Specimen time as the source states it.
    pub taken: String,
    /// The result's id in its file.
    pub result: String,
    /// Where in the file.
    pub place: String,
    /// The value entered now, if any.
    pub entered: Option<String>,
    /// Other results of that item and day, not the worst.
    pub others: usize,
    /// What accepting it would do.
    pub status: CandidateStatus,
}

/// What an import of one file would do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    /// Results read from the file.
    pub results: usize,
    /// Candidates by subject, form instance (in study-day order) and item.
    pub candidates: Vec<Candidate>,
    /// Everything not used, with where and why (the file's own problems first).
    pub problems: Vec<Problem>,
}

impl Plan {
    /// Candidates a nurse has to decide on.
    pub fn open(&self) -> impl Iterator<Item = &Candidate> {
        self.candidates.iter().filter(|c| c.status.open())
    }
}

/// The identity of a result across files.
pub fn result_key(r: &LabResult) -> String {
    let mut h = Sha256::new();
    for part in [
        r.patient.as_str(),
        r.loinc.as_deref().unwrap_or_default(),
        &r.taken.to_string(),
        r.value.trim(),
        r.unit.trim(),
    ] {
        h.update((part.len() as u32).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// One usable result, placed and converted.
struct Placed<'r> {
    result: &'r LabResult,
    record: &'r SubjectRecord,
    key: String,
    worst: Worst,
    form: String,
    item: &'r str,
    value: Value,
    number: f64,
    taken: DateTime<FixedOffset>,
}

/// The plan of importing `file` into the record described by `ctx`.
pub fn plan(file: &LabFile, ctx: &Context<'_>) -> Plan {
    let mut out = Plan {
        results: file.report.results.len(),
        problems: file.report.problems.clone(),
        ..Plan::default()
    };
    let items = lab_items(ctx.study);
    let results = without_conflicting_duplicates(&file.report.results, &mut out.problems);

    let mut unknown_patients: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unknown_codes: BTreeMap<String, (usize, &str)> = BTreeMap::new();
    let mut unplaceable: BTreeMap<&str, usize> = BTreeMap::new();
    let mut placed: Vec<Placed<'_>> = Vec::new();
    for r in results {
        let Some(record) = ctx.subjects.get(r.patient.trim()) else {
            *unknown_patients.entry(r.patient.trim()).or_default() += 1;
            continue;
        };
        let Some(loinc) = r.loinc.as_deref().filter(|l| items.contains_key(*l)) else {
            let code = r.loinc.clone().unwrap_or_else(|| "(no LOINC code)".into());
            unknown_codes.entry(code).or_insert((0, r.name.as_str())).0 += 1;
            continue;
        };
        let (Some(ecmo), Some(day0)) = (record.ecmo_start, record.day0) else {
            *unplaceable.entry(record.subject.as_str()).or_default() += 1;
            continue;
        };
        let refuse = |message: String| Problem {
            place: format!("{} ({} {})", r.place, record.subject, r.name),
            message,
        };
        let Some(taken) = r.taken.at(*ecmo.offset()) else {
            out.problems.push(refuse(format!(
                "specimen time {} does not exist in the subject's local time",
                r.taken
            )));
            continue;
        };
        let day = match specimen_day(taken, ecmo, day0, ctx.now) {
            Ok(d) => d,
            Err(e) => {
                out.problems.push(refuse(e.to_string()));
                continue;
            }
        };
        let form_id = match day {
            SpecimenDay::Baseline => "BAS",
            SpecimenDay::Day(_) => "DLY",
        };
        let Some(item) = items[loinc]
            .iter()
            .find(|(f, _)| *f == form_id)
            .map(|(_, i)| *i)
        else {
            out.problems.push(refuse(format!(
                "LOINC {loinc} has no item in {form_id}: not imported for {day}"
            )));
            continue;
        };
        let Some(source) = &item.lab else { continue };
        let value = match source.convert(item, &r.value, &r.unit) {
            Ok(v) => v,
            Err(e) => {
                out.problems.push(refuse(format!("{day} {}: {e}", item.id)));
                continue;
            }
        };
        let number = match &value {
            Value::Int(i) => *i as f64,
            Value::Dec(d) => d.to_f64(),
            _ => continue,
        };
        placed.push(Placed {
            result: r,
            record,
            key: result_key(r),
            worst: source.worst,
            form: day.to_string(),
            item: item.id.as_str(),
            value,
            number,
            taken,
        });
    }
    for (patient, n) in unknown_patients {
        out.problems.push(Problem {
            place: format!("record number {patient}"),
            message: format!(
                "not in this site's subject identification log ({n} result(s)): not imported"
            ),
        });
    }
    for (code, (n, name)) in unknown_codes {
        out.problems.push(Problem {
            place: format!("code {code} {name}"),
            message: format!("no item of the study takes this code ({n} result(s)): ignored"),
        });
    }
    for (subject, n) in unplaceable {
        out.problems.push(Problem {
            place: subject.to_string(),
            message: format!(
                "no ECMO start or day 0 recorded yet, so its {n} result(s) cannot be placed on a day"
            ),
        });
    }

    // The worst of each (subject, form instance, item); the baseline's closest before ECMO.
    let mut groups: BTreeMap<(String, u32, String, &str), Vec<Placed<'_>>> = BTreeMap::new();
    for p in placed {
        let order = match p.form.strip_prefix("DLY#") {
            Some(n) => n.parse::<u32>().map(|n| n + 1).unwrap_or(u32::MAX),
            None => 0,
        };
        groups
            .entry((p.record.subject.clone(), order, p.form.clone(), p.item))
            .or_default()
            .push(p);
    }
    for ((subject, _, form, item), list) in groups {
        let mut best = 0;
        for (i, p) in list.iter().enumerate() {
            let b = &list[best];
            let better = if form == "BAS" {
                p.taken > b.taken
            } else {
                p.worst.worse(p.number, b.number) || (p.number == b.number && p.taken < b.taken)
            };
            if better {
                best = i;
            }
        }
        let others = list.len() - 1;
        let Some(p) = list.into_iter().nth(best) else {
            continue;
        };
        // The record the result was matched to (not searched for again).
        let entered = p
            .record
            .values
            .get(&form)
            .and_then(|v| v.get(item))
            .cloned();
        let status = if ctx.imported.contains(&p.key) {
            CandidateStatus::Imported
        } else if ctx.rejected.contains(&p.key) {
            CandidateStatus::Rejected
        } else {
            match &entered {
                None => CandidateStatus::New,
                Some(v) if *v == p.value => CandidateStatus::Same,
                Some(_) => CandidateStatus::Differs,
            }
        };
        out.candidates.push(Candidate {
            id: p.key[..10].to_string(),
            key: p.key.clone(),
            subject,
            form,
            item: item.to_string(),
            value: p.value.to_string(),
            source_value: p.result.value.trim().to_string(),
            source_unit: p.result.unit.trim().to_string(),
            loinc: p.result.loinc.clone().unwrap_or_default(),
            taken: p.result.taken.to_string(),
            result: p.result.id.clone(),
            place: p.result.place.clone(),
            entered: entered.map(|v| v.to_string()),
            others,
            status,
        });
    }
    out
}

/// LOINC code → the lab items that take it, with their form (`BAS`, `DLY`).
fn lab_items(study: &Study) -> BTreeMap<&str, Vec<(&str, &ItemDef)>> {
    let mut out: BTreeMap<&str, Vec<(&str, &ItemDef)>> = BTreeMap::new();
    for form in &study.forms {
        for item in &form.items {
            if let Some(lab) = &item.lab {
                for code in &lab.loinc {
                    out.entry(code.as_str())
                        .or_default()
                        .push((form.id.as_str(), item));
                }
            }
        }
    }
    out
}

/// The results without exact repeats; results whose id repeats with another value, or whose
/// patient, code and time repeat with another value, are refused with a line each.
fn without_conflicting_duplicates<'r>(
    results: &'r [LabResult],
    problems: &mut Vec<Problem>,
) -> Vec<&'r LabResult> {
    // Compared by address: the same result object, not an equal one.
    let same = |a: &LabResult, b: &LabResult| {
        a.value.trim() == b.value.trim() && a.unit.trim() == b.unit.trim()
    };
    let mut by_id: BTreeMap<&str, Vec<&LabResult>> = BTreeMap::new();
    let mut by_moment: BTreeMap<(String, String, String), Vec<&LabResult>> = BTreeMap::new();
    for r in results {
        by_id.entry(r.id.as_str()).or_default().push(r);
        by_moment
            .entry((
                r.patient.trim().to_string(),
                r.loinc.clone().unwrap_or_default(),
                r.taken.to_string(),
            ))
            .or_default()
            .push(r);
    }
    let mut refused: BTreeSet<*const LabResult> = BTreeSet::new();
    let mut refuse_all =
        |list: &[&LabResult], what: String, refused: &mut BTreeSet<*const LabResult>| {
            let values: Vec<String> = list
                .iter()
                .map(|r| format!("{} {} at {}", r.value.trim(), r.unit.trim(), r.place))
                .collect();
            problems.push(Problem {
                place: what,
                message: format!(
                    "{} results disagree ({}): none imported, check the laboratory system",
                    list.len(),
                    values.join("; ")
                ),
            });
            for r in list {
                refused.insert(*r as *const LabResult);
            }
        };
    for (id, list) in &by_id {
        if list.iter().any(|r| !same(r, list[0])) {
            refuse_all(list, format!("result {id}"), &mut refused);
        }
    }
    for ((patient, code, taken), list) in &by_moment {
        let fresh = list
            .iter()
            .any(|r| !refused.contains(&(*r as *const LabResult)));
        if fresh && list.iter().any(|r| !same(r, list[0])) {
            refuse_all(
                list,
                format!("record number {patient}, code {code}, taken {taken}"),
                &mut refused,
            );
        }
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    results
        .iter()
        .filter(|r| !refused.contains(&(*r as *const LabResult)))
        // An exact repeat (same identity) counts once.
        .filter(|r| seen.insert(result_key(r)))
        .collect()
}
