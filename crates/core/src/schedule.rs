//! The visit schedule and the status of each form instance: what is due, done, in progress,
//! flagged, overdue or missing for a subject, from screening to day 30.
//!
//! Owns day 0 (the randomization date, or the ECMO start while randomization is not recorded),
//! the due date of each form and the status words. Pure: the caller passes today's date.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};

use crate::check::missing_required;
use crate::instance::FormKey;
use crate::study::{FormDef, Repeat, Study};
use crate::value::Value;

/// Where a form instance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum FormStatus {
    /// Nothing entered yet, not yet due.
    NotStarted,
    /// Nothing entered yet, due today.
    Due,
    /// Some values entered, required ones still missing.
    InProgress,
    /// Every required item entered.
    Complete,
    /// Complete or in progress, with confirmed warnings to review.
    Warnings,
    /// Due date passed and not complete.
    Overdue,
    /// Due date passed and nothing entered at all.
    Missing,
}

/// The status of one instance: `values` are its current values, `warned` whether any value
/// carries a confirmed warning, `due` its due date if it has one.
pub fn instance_status(
    form: &FormDef,
    values: &BTreeMap<String, Value>,
    warned: bool,
    due: Option<NaiveDate>,
    today: NaiveDate,
) -> FormStatus {
    let complete = !values.is_empty() && missing_required(form, values).is_empty();
    if values.is_empty() && due.is_some_and(|d| d < today) {
        FormStatus::Missing
    } else if values.is_empty() && due.is_some_and(|d| d == today) {
        FormStatus::Due
    } else if !complete && due.is_some_and(|d| d < today) {
        FormStatus::Overdue
    } else if warned && !values.is_empty() {
        FormStatus::Warnings
    } else if complete {
        FormStatus::Complete
    } else if values.is_empty() {
        FormStatus::NotStarted
    } else {
        FormStatus::InProgress
    }
}

/// Day 0 of a subject: the local date of randomization (`RND.RND_DT`), or of the ECMO start
/// (`ECMO.START_DT`) while randomization is not recorded.
pub fn day_zero(values: &BTreeMap<String, BTreeMap<String, Value>>) -> Option<NaiveDate> {
    let date_of = |form: &str, item: &str| {
        values
            .get(form)
            .and_then(|v| v.get(item))
            .and_then(Value::as_local_time)
            .map(|(d, _)| d)
    };
    date_of("RND", "RND_DT").or_else(|| date_of("ECMO", "START_DT"))
}

/// One row of a subject's schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleEntry {
    /// The form instance.
    pub key: FormKey,
    /// When it is due, if that is known.
    pub due: Option<NaiveDate>,
}

/// The schedule from screening to day 30: once-only forms in study order, the daily logs from
/// day 0 to today (at most day 30) plus any entered later, and every event entered so far.
/// `existing` lists the instances that have values.
pub fn schedule(
    study: &Study,
    day0: Option<NaiveDate>,
    existing: &[FormKey],
    today: NaiveDate,
) -> Vec<ScheduleEntry> {
    let mut out = Vec::new();
    let due_day = |n: i64| day0.map(|d| d + Duration::days(n));
    for form in &study.forms {
        match form.repeat {
            Repeat::Once => {
                let due = match form.id.as_str() {
                    "BAS" | "ECMO" => due_day(0),
                    "D30" => due_day(30),
                    _ => None,
                };
                out.push(ScheduleEntry {
                    key: FormKey {
                        form: form.id.clone(),
                        repeat: None,
                    },
                    due,
                });
            }
            Repeat::ByDay => {
                let elapsed = day0.map(|d| (today - d).num_days()).unwrap_or(-1);
                let last_entered = existing
                    .iter()
                    .filter(|k| k.form == form.id)
                    .filter_map(|k| k.repeat)
                    .max();
                let last_due = elapsed.clamp(-1, i64::from(form.max_repeats));
                let last = last_due.max(last_entered.map(i64::from).unwrap_or(-1));
                for day in 0..=last {
                    out.push(ScheduleEntry {
                        key: FormKey {
                            form: form.id.clone(),
                            repeat: Some(day as u32),
                        },
                        due: due_day(day),
                    });
                }
            }
            Repeat::ByEvent => {
                let mut events: Vec<&FormKey> =
                    existing.iter().filter(|k| k.form == form.id).collect();
                events.sort();
                out.extend(events.into_iter().map(|k| ScheduleEntry {
                    key: k.clone(),
                    due: None,
                }));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trial::definition;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn daily_logs_are_listed_up_to_today_and_overdue_when_past() {
        let study = definition().unwrap();
        let rows = schedule(&study, Some(date("2026-03-01")), &[], date("2026-03-04"));
        let days: Vec<_> = rows
            .iter()
            .filter(|r| r.key.form == "DLY")
            .map(|r| r.key.to_string())
            .collect();
        assert_eq!(days, ["DLY#0", "DLY#1", "DLY#2", "DLY#3"]);
        let d30 = rows.iter().find(|r| r.key.form == "D30").unwrap();
        assert_eq!(d30.due, Some(date("2026-03-31")));

        let dly = study.form("DLY").unwrap();
        let empty = BTreeMap::new();
        let today = date("2026-03-04");
        assert_eq!(
            instance_status(dly, &empty, false, Some(date("2026-03-02")), today),
            FormStatus::Missing
        );
        assert_eq!(
            instance_status(dly, &empty, false, Some(today), today),
            FormStatus::Due
        );
        assert_eq!(
            instance_status(dly, &empty, false, Some(date("2026-03-05")), today),
            FormStatus::NotStarted
        );
        let mut some = BTreeMap::new();
        some.insert("HR".to_string(), Value::Int(80));
        assert_eq!(
            instance_status(dly, &some, false, Some(date("2026-03-02")), today),
            FormStatus::Overdue
        );
        assert_eq!(
            instance_status(dly, &some, false, Some(today), today),
            FormStatus::InProgress
        );
        assert_eq!(
            instance_status(dly, &some, true, Some(today), today),
            FormStatus::Warnings
        );
    }

    #[test]
    fn day_zero_prefers_randomization_over_ecmo_start() {
        let t = |s: &str| Value::DateTime(crate::value::parse_datetime(s, None).unwrap());
        let mut v: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        v.entry("ECMO".into())
            .or_default()
            .insert("START_DT".into(), t("2026-03-01T23:30+08:00"));
        assert_eq!(day_zero(&v), Some(date("2026-03-01")));
        v.entry("RND".into())
            .or_default()
            .insert("RND_DT".into(), t("2026-03-02T01:10+08:00"));
        assert_eq!(day_zero(&v), Some(date("2026-03-02")));
    }
}
