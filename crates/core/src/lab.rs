//! Laboratory results as the study takes them: which LOINC codes fill an item, which source
//! units are accepted and how each converts to the item's unit, which value of a day counts,
//! and the study day of a specimen time. Pure; `ecrf_lab` reads the files and applies these
//! rules, the store saves what a nurse accepts.
//!
//! Invariants: a value is converted only from a unit the study lists (the item's own unit with
//! factor 1, or a `from` entry); anything else is [`LabRefusal::UnknownUnit`], never a guess.
//! Units are compared after [`unit_key`] (case, spaces and the two µ characters only). A
//! converted value is rounded to the item's precision (integer, or its `decimals`) and then
//! passes the same edit checks as a typed one when it is saved.

use std::fmt;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate};

use crate::study::{ItemDef, ItemType};
use crate::value::{Decimal, Value};

/// How an item is filled from laboratory results (`[items.lab]` in a form file).
#[derive(Debug, Clone, PartialEq)]
pub struct LabSource {
    /// LOINC codes whose results fill the item (check digits verified at load).
    pub loinc: Vec<String>,
    /// Accepted source units: the item's own first (factor 1), then the `from` entries.
    pub units: Vec<LabUnit>,
    /// Which result of a day counts in a daily log.
    pub worst: Worst,
}

/// One accepted source unit and how a value in it becomes the item's.
#[derive(Debug, Clone, PartialEq)]
pub struct LabUnit {
    /// As written in the study (shown to the nurse).
    pub unit: String,
    /// The conversion as the study writes it (kept exact, so the definition reads back the
    /// same from ODM).
    pub conversion: Conversion,
}

/// How a source unit converts to the item's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// Value × this (`multiply = 88.4`).
    Multiply(Decimal),
    /// Value ÷ this (`divide = 9.01`).
    Divide(Decimal),
}

impl LabUnit {
    /// The multiplier to the item's unit.
    pub fn factor(&self) -> f64 {
        match self.conversion {
            Conversion::Multiply(m) => m.to_f64(),
            Conversion::Divide(d) => 1.0 / d.to_f64(),
        }
    }
}

/// Which of a day's results counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Worst {
    /// The highest (lactate, creatinine…).
    Max,
    /// The lowest (pH, platelets, haemoglobin).
    Min,
}

impl Worst {
    /// From the study file's word.
    pub fn from_word(w: &str) -> Option<Worst> {
        match w {
            "max" => Some(Worst::Max),
            "min" => Some(Worst::Min),
            _ => None,
        }
    }

    /// The study file's word.
    pub fn word(self) -> &'static str {
        match self {
            Worst::Max => "max",
            Worst::Min => "min",
        }
    }

    /// True when `a` is worse than `b`.
    pub fn worse(self, a: f64, b: f64) -> bool {
        match self {
            Worst::Max => a > b,
            Worst::Min => a < b,
        }
    }
}

/// Why a result cannot become a value of its item.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LabRefusal {
    /// The unit is not one the study lists for the item.
    #[error("unit \"{unit}\" is not one the study accepts for {item} ({accepted}): not converted")]
    UnknownUnit {
        /// Item id.
        item: String,
        /// The source's unit.
        unit: String,
        /// The accepted units, comma-separated.
        accepted: String,
    },
    /// The source value is not a number.
    #[error("value \"{0}\" is not a number")]
    NotANumber(String),
}

/// The comparable form of a unit: trimmed, lower case, without spaces, both micro signs as `u`.
pub fn unit_key(unit: &str) -> String {
    unit.trim()
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{00B5}' | '\u{03BC}' => 'u',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// True when `code` is a LOINC code (`NNNNN-C`) whose check digit (mod 10, as LOINC computes
/// it) holds: a mistyped code in the study file is caught at load.
pub fn loinc_is_valid(code: &str) -> bool {
    let Some((number, check)) = code.split_once('-') else {
        return false;
    };
    if number.is_empty()
        || number.len() > 7
        || check.len() != 1
        || !number.bytes().all(|b| b.is_ascii_digit())
        || !check.bytes().all(|b| b.is_ascii_digit())
    {
        return false;
    }
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let twice = d * 2;
                twice / 10 + twice % 10
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10 == u32::from(check.as_bytes()[0] - b'0')
}

impl LabSource {
    /// True when results coded `loinc` fill this item.
    pub fn takes(&self, loinc: &str) -> bool {
        self.loinc.iter().any(|l| l == loinc)
    }

    /// A source value in `unit` as the item's value: converted by the study's factor and
    /// rounded to the item's precision. The value is not range-checked here (the save does).
    pub fn convert(&self, item: &ItemDef, value: &str, unit: &str) -> Result<Value, LabRefusal> {
        let key = unit_key(unit);
        let Some(u) = self.units.iter().find(|u| unit_key(&u.unit) == key) else {
            return Err(LabRefusal::UnknownUnit {
                item: item.id.clone(),
                unit: unit.trim().to_string(),
                accepted: self
                    .units
                    .iter()
                    .map(|u| {
                        if u.unit.is_empty() {
                            "no unit".to_string()
                        } else {
                            u.unit.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let number = parse_number(value)?;
        let converted = number * u.factor();
        let not_number = || LabRefusal::NotANumber(value.to_string());
        match item.item_type {
            ItemType::Integer => {
                let r = converted.round();
                if !r.is_finite() || r.abs() > 1e15 {
                    return Err(not_number());
                }
                Ok(Value::Int(r as i64))
            }
            _ => Decimal::from_f64_rounded(converted, item.decimals.unwrap_or(2))
                .map(Value::Dec)
                .ok_or_else(not_number),
        }
    }
}

/// A laboratory number as written: `7.35`, `7,35` (decimal comma), ` 12 `; no `<`/`>` bounds
/// (a "<0.5" is not a value to save without a person reading it).
pub fn parse_number(text: &str) -> Result<f64, LabRefusal> {
    let t = text.trim().replace(',', ".");
    let ok = !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+')
        && t.bytes().filter(|b| *b == b'.').count() <= 1;
    match t.parse::<f64>() {
        Ok(v) if ok && v.is_finite() => Ok(v),
        _ => Err(LabRefusal::NotANumber(text.trim().to_string())),
    }
}

/// Where a specimen time falls for one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecimenDay {
    /// Within [`BASELINE_BEFORE_ECMO`] before the ECMO start: a baseline candidate.
    Baseline,
    /// Study day `n` (0–30), counted in the subject's local dates from day 0.
    Day(u32),
}

/// Why a specimen time has no place in the subject's record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecimenTimeProblem {
    /// Before the ECMO start, earlier than the baseline window.
    #[error(
        "taken {0} before the ECMO start (baseline takes only the {BASELINE_HOURS} hours before it)"
    )]
    BeforeEcmo(String),
    /// After the ECMO start but before day 0 (ECMO started the day before randomization).
    #[error("taken on {0}, before day 0 ({1}): no daily log for that day")]
    BeforeDayZero(NaiveDate, NaiveDate),
    /// After day 30.
    #[error("taken on {0}, after day 30")]
    AfterDay30(NaiveDate),
    /// Later than now.
    #[error("dated in the future ({0})")]
    Future(String),
}

/// Hours before the ECMO start in which a result is a baseline value ("closest before ECMO").
pub const BASELINE_HOURS: i64 = 24;

/// The baseline window before the ECMO start.
pub const BASELINE_BEFORE_ECMO: Duration = Duration::hours(BASELINE_HOURS);

/// The place of a specimen taken at `taken` for a subject whose ECMO started at `ecmo_start`
/// and whose day 0 is `day0`; dates are read in the ECMO start's offset (the subject's local
/// time); `now` rules out future times.
pub fn specimen_day(
    taken: DateTime<FixedOffset>,
    ecmo_start: DateTime<FixedOffset>,
    day0: NaiveDate,
    now: DateTime<FixedOffset>,
) -> Result<SpecimenDay, SpecimenTimeProblem> {
    if taken > now {
        return Err(SpecimenTimeProblem::Future(taken.to_rfc3339()));
    }
    if taken < ecmo_start {
        let before = ecmo_start - taken;
        if before > BASELINE_BEFORE_ECMO {
            return Err(SpecimenTimeProblem::BeforeEcmo(hours_text(before)));
        }
        return Ok(SpecimenDay::Baseline);
    }
    let local = taken.with_timezone(ecmo_start.offset()).date_naive();
    let day = (local - day0).num_days();
    match day {
        ..0 => Err(SpecimenTimeProblem::BeforeDayZero(local, day0)),
        0..=30 => Ok(SpecimenDay::Day(day as u32)),
        _ => Err(SpecimenTimeProblem::AfterDay30(local)),
    }
}

fn hours_text(d: Duration) -> String {
    let h = d.num_minutes() as f64 / 60.0;
    format!("{h:.1} h")
}

impl fmt::Display for SpecimenDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecimenDay::Baseline => f.write_str("BAS"),
            SpecimenDay::Day(n) => write!(f, "DLY#{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loinc_check_digits() {
        for ok in [
            "2524-7", "718-7", "2160-0", "777-3", "2744-1", "32693-4", "14682-9",
        ] {
            assert!(loinc_is_valid(ok), "{ok}");
        }
        for bad in [
            "2524-8",
            "718-1",
            "2160",
            "abc-1",
            "-1",
            "2160-00",
            "12345678-1",
        ] {
            assert!(!loinc_is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn units_compare_without_case_spaces_or_micro_sign_kind() {
        assert_eq!(unit_key(" µmol/L "), unit_key("umol/l"));
        assert_eq!(unit_key("μmol/L"), unit_key("UMOL / L"));
        assert_ne!(unit_key("mmol/L"), unit_key("mg/dL"));
    }

    #[test]
    fn numbers_with_bounds_or_text_are_not_numbers() {
        assert_eq!(parse_number(" 7,35 ").unwrap(), 7.35);
        assert!(parse_number("<0.5").is_err());
        assert!(parse_number("1.2.3").is_err());
        assert!(parse_number("positive").is_err());
        assert!(parse_number("").is_err());
        assert!(parse_number("1e400").is_err());
    }

    #[test]
    fn specimen_days_in_local_time() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap();
        let ecmo = t("2026-03-01T22:00:00+08:00");
        let day0 = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let now = t("2026-04-30T00:00:00+08:00");
        // 23:30 UTC on 1 March is 07:30 on 2 March in Beijing: day 1.
        assert_eq!(
            specimen_day(t("2026-03-01T23:30:00Z"), ecmo, day0, now),
            Ok(SpecimenDay::Day(1))
        );
        assert_eq!(
            specimen_day(t("2026-03-01T12:00:00+08:00"), ecmo, day0, now),
            Ok(SpecimenDay::Baseline)
        );
        assert!(matches!(
            specimen_day(t("2026-02-27T12:00:00+08:00"), ecmo, day0, now),
            Err(SpecimenTimeProblem::BeforeEcmo(_))
        ));
        assert!(matches!(
            specimen_day(t("2026-05-01T12:00:00+08:00"), ecmo, day0, now),
            Err(SpecimenTimeProblem::Future(_))
        ));
        assert!(matches!(
            specimen_day(t("2026-04-01T12:00:00+08:00"), ecmo, day0, now),
            Err(SpecimenTimeProblem::AfterDay30(_))
        ));
    }
}
