//! The clinical views of a subject: derived outcomes and protocol flags (`core::outcome`), the
//! trend charts' daily values, and the next daily log prefilled with the last one's device
//! settings. Owns no rule: every value comes from core; this only shapes it for the UI.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Local, NaiveDate, Utc};
use ecrf_core::FormKey;
use ecrf_core::Value;
use ecrf_core::outcome::{Answer, Day30Status, SubjectValues, subject_outcome};
use ecrf_core::schedule::day_zero;

use crate::dto::{
    Entry, ErrorCode, FlagView, FormPage, OutcomeView, TrendMark, TrendPoint, Trends,
};
use crate::{App, AppResult, convert::txt, err};

/// Items of the daily log copied from the day before, to confirm or change: the devices'
/// status and settings.
pub const DEVICE_SETTINGS: &[&str] = &[
    "ECMO_STATUS",
    "IABP_STATUS",
    "IABP_RATIO",
    "FLOW",
    "RPM",
    "SWEEP",
    "FIO2",
];

fn answer(a: Answer) -> String {
    match a {
        Answer::Yes => "yes",
        Answer::No => "no",
        Answer::Unknown => "unknown",
    }
    .into()
}

fn small(v: Option<i64>) -> Option<i32> {
    v.and_then(|v| i32::try_from(v).ok())
}

fn number(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_decimal).map(|d| d.to_f64())
}

/// Study day of a moment, with the time of day as a fraction.
fn fractional_day(day0: NaiveDate, t: DateTime<FixedOffset>) -> f64 {
    let start = day0.and_hms_opt(0, 0, 0).unwrap_or_default();
    (t.naive_local() - start).num_minutes() as f64 / 1440.0
}

impl App {
    fn whole(&self, subject: &str) -> AppResult<SubjectValues> {
        Ok(self.store()?.subject_value_map(subject)?)
    }

    /// A subject's derived outcomes and protocol flags.
    pub fn outcome_view(&self, subject: &str) -> AppResult<OutcomeView> {
        let o = self.store()?.subject_outcome(subject)?;
        Ok(OutcomeView {
            iabp_delay_min: small(o.iabp_delay_min),
            iabp_delay_hours: o.iabp_delay_hours.map(|d| d.to_string()),
            iabp_deviation: o.iabp_deviation,
            crossover: o.crossover,
            days_on_ecmo: o.days_on_ecmo.map(|d| d.to_string()),
            days_on_iabp: o.days_on_iabp.map(|d| d.to_string()),
            icu_los_days: small(o.icu_los_days),
            hospital_los_days: small(o.hospital_los_days),
            successful_weaning: o.successful_weaning.map(answer),
            death_date: o.death_date.map(|d| d.to_string()),
            day30_status: match o.day30_status {
                Day30Status::Alive => "alive",
                Day30Status::Dead => "dead",
                Day30Status::Unknown => "unknown",
            }
            .into(),
            primary_endpoint: answer(o.primary_endpoint),
            days_alive_to_day30: small(o.days_alive_to_day30),
            flags: o
                .flags
                .iter()
                .map(|f| FlagView {
                    code: f.code.clone(),
                    form: f.form.clone(),
                    item: f.item.clone(),
                    message: txt(&f.message),
                })
                .collect(),
        })
    }

    /// Lactate, MAP, pulse pressure, ECMO flow and VIS by study day, and the IABP insertions
    /// and removals, for the trend charts.
    pub fn trends(&self, subject: &str) -> AppResult<Trends> {
        let whole = self.whole(subject)?;
        let mut points = Vec::new();
        let mut marks = Vec::new();
        let Some(dly) = self.study.form("DLY") else {
            return Ok(Trends { points, marks });
        };
        let mut logs: Vec<(u32, &BTreeMap<String, Value>)> = whole
            .iter()
            .filter_map(|(k, v)| {
                let key = FormKey::parse(&self.study, k).ok()?;
                (key.form == "DLY").then_some((key.repeat?, v))
            })
            .collect();
        logs.sort_by_key(|(d, _)| *d);
        for (day, v) in logs {
            let derived = ecrf_core::derive::derive_form(dly, v);
            points.push(TrendPoint {
                day,
                lactate: number(v.get("LACTATE")),
                map: number(v.get("MAP")),
                pulse_pressure: number(derived.get("PULSE_PRESSURE")),
                flow: number(v.get("FLOW")),
                vis: number(derived.get("VIS")),
            });
        }
        if let Some(day0) = day_zero(&whole) {
            let o = subject_outcome(&whole, Utc::now());
            let mut add = |t: DateTime<FixedOffset>, kind: &str| {
                marks.push(TrendMark {
                    day: fractional_day(day0, t),
                    kind: kind.into(),
                })
            };
            if let Some(t) = o.iabp_inserted_at {
                add(t, "iabp_in");
            }
            for v in whole
                .iter()
                .filter(|(k, _)| k.starts_with("EVT#"))
                .map(|(_, v)| v)
            {
                let (Some(Value::Code(c)), Some(Value::DateTime(t))) =
                    (v.get("EVT_TYPE"), v.get("EVT_DT"))
                else {
                    continue;
                };
                match c.as_str() {
                    "IABP_REINSERTION" => add(*t, "iabp_in"),
                    "IABP_REMOVAL" => add(*t, "iabp_out"),
                    _ => {}
                }
            }
            marks.sort_by(|a, b| a.day.total_cmp(&b.day));
        }
        Ok(Trends { points, marks })
    }

    /// The next daily log to enter: the day after the latest one entered (else the earliest day
    /// without one), up to today and the day after the last device came out; its date filled in and the device settings of
    /// the last log before it offered to confirm or change. A draft already kept for that day
    /// wins over the prefill.
    pub fn next_daily_log(&self, subject: &str) -> AppResult<FormPage> {
        let whole = self.whole(subject)?;
        let day0 = day_zero(&whole).ok_or_else(|| {
            err(
                ErrorCode::Invalid,
                "Day 0 is not known yet: record the ECMO start or randomize first / 尚无第0天：请先记录ECMO启动时间或随机分组",
            )
        })?;
        let o = subject_outcome(&whole, Utc::now());
        let today = (Local::now().date_naive() - day0).num_days().clamp(0, 30);
        let last = o.last_log_day.unwrap_or(30).min(today);
        let has = |d: i64| {
            whole
                .get(&format!("DLY#{d}"))
                .is_some_and(|v| !v.is_empty())
        };
        // The day after the latest log (the nurse's "today"), else the earliest gap.
        let after_latest = (0..=30).rev().find(|d| has(*d)).map_or(0, |d| d + 1);
        let day = Some(after_latest)
            .filter(|d| *d <= last)
            .or_else(|| (0..=last).find(|d| !has(*d)))
            .ok_or_else(|| {
            err(
                ErrorCode::Invalid,
                format!(
                    "Every daily log up to day {last} is entered / 截至第{last}天的每日记录均已填写"
                ),
            )
        })?;
        let key = format!("DLY#{day}");
        let mut page = self.form(subject, &key)?;
        if page.draft.is_none() {
            let date = day0 + chrono::Duration::days(day);
            let mut entries = vec![Entry {
                item: "DATE".into(),
                text: date.to_string(),
            }];
            let before = (0..day).rev().find(|d| has(*d));
            if let Some(prev) = before {
                let v = &whole[&format!("DLY#{prev}")];
                entries.extend(DEVICE_SETTINGS.iter().filter_map(|item| {
                    v.get(*item).map(|value| Entry {
                        item: item.to_string(),
                        text: value.to_string(),
                    })
                }));
                page.prefilled_from = Some(format!("DLY#{prev}"));
            }
            page.draft = Some(entries);
        }
        Ok(page)
    }
}

#[cfg(test)]
#[path = "clinical_tests.rs"]
mod tests;
