//! Values of CRF items: what a nurse can enter, and how it is written down.
//!
//! Owns [`Value`] (one per item type plus the CDASH missing-data codes), the exact [`Decimal`]
//! used for measurements, and parsing typed text into a value for a given item.
//! Invariant: a `Value` is stored and hashed through its serde JSON form, which is canonical
//! (one spelling per value), so never change the serde names of a released variant.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

/// CDASH-style missing-data codes: why an item has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MissingCode {
    /// Not done: the measurement was not taken.
    #[serde(rename = "ND")]
    NotDone,
    /// Unknown: it happened or exists, but the value is not known.
    #[serde(rename = "UNK")]
    Unknown,
    /// Not applicable to this patient.
    #[serde(rename = "NA")]
    NotApplicable,
}

impl MissingCode {
    /// All codes, in display order.
    pub const ALL: [MissingCode; 3] = [Self::NotDone, Self::Unknown, Self::NotApplicable];

    /// The short code used in files and on the command line (after `@`).
    pub fn code(self) -> &'static str {
        match self {
            Self::NotDone => "ND",
            Self::Unknown => "UNK",
            Self::NotApplicable => "NA",
        }
    }

    /// Reads a short code (`ND`, `UNK`, `NA`), any case.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.code().eq_ignore_ascii_case(code))
    }

    /// English label.
    pub fn label_en(self) -> &'static str {
        match self {
            Self::NotDone => "Not done",
            Self::Unknown => "Unknown",
            Self::NotApplicable => "Not applicable",
        }
    }

    /// Chinese label.
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::NotDone => "未做",
            Self::Unknown => "不详",
            Self::NotApplicable => "不适用",
        }
    }
}

/// An exact decimal number: `mantissa × 10^-scale`. Measurements are never floats, so a value
/// entered as `7.35` is stored, compared and exported as exactly `7.35`.
#[derive(Debug, Clone, Copy)]
pub struct Decimal {
    mantissa: i128,
    scale: u32,
}

/// The most digits after the point a [`Decimal`] keeps.
pub const MAX_SCALE: u32 = 9;

impl Decimal {
    /// A whole number.
    pub fn from_int(v: i64) -> Self {
        Decimal {
            mantissa: v as i128,
            scale: 0,
        }
    }

    /// Digits after the decimal point as written.
    pub fn scale(&self) -> u32 {
        self.scale
    }

    /// Nearest float, for derived scores and display only (never for storage).
    pub fn to_f64(&self) -> f64 {
        self.mantissa as f64 / 10f64.powi(self.scale as i32)
    }

    /// The decimal closest to a float, rounded to `scale` digits (for derived values).
    pub fn from_f64_rounded(v: f64, scale: u32) -> Option<Self> {
        if !v.is_finite() || scale > MAX_SCALE {
            return None;
        }
        let m = (v * 10f64.powi(scale as i32)).round();
        if m.abs() > 1e30 {
            return None;
        }
        Some(Decimal {
            mantissa: m as i128,
            scale,
        })
    }

    fn rescaled(&self, scale: u32) -> i128 {
        self.mantissa * 10i128.pow(scale - self.scale)
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Decimal {}
impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let s = self.scale.max(other.scale);
        self.rescaled(s).cmp(&other.rescaled(s))
    }
}

/// Why a text is not a decimal number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a number (write digits with an optional sign and decimal point, like 7.35)")]
pub struct DecimalParseError;

impl FromStr for Decimal {
    type Err = DecimalParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (neg, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty())
            || !all_digits(int)
            || !all_digits(frac)
            || frac.len() > MAX_SCALE as usize
            || int.len() > 18
        {
            return Err(DecimalParseError);
        }
        let mut mantissa: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            mantissa = mantissa * 10 + i128::from(b - b'0');
        }
        Ok(Decimal {
            mantissa: if neg { -mantissa } else { mantissa },
            scale: frac.len() as u32,
        })
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.mantissa < 0;
        let digits = self.mantissa.unsigned_abs().to_string();
        let scale = self.scale as usize;
        let padded = if digits.len() <= scale {
            format!("{}{}", "0".repeat(scale + 1 - digits.len()), digits)
        } else {
            digits
        };
        let (int, frac) = padded.split_at(padded.len() - scale);
        if neg {
            f.write_str("-")?;
        }
        if frac.is_empty() {
            write!(f, "{int}")
        } else {
            write!(f, "{int}.{frac}")
        }
    }
}

impl Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One item's value. The serde form is the stored, hashed and synced form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Value {
    /// A whole number.
    Int(i64),
    /// An exact decimal; the unit is the item's.
    Dec(Decimal),
    /// A calendar date.
    Date(NaiveDate),
    /// A local date-time with its UTC offset, as read off the bedside clock.
    #[serde(rename = "dt")]
    DateTime(DateTime<FixedOffset>),
    /// One code of a code list (also yes/no and yes/no/unknown answers).
    Code(String),
    /// Several codes of a code list, in code-list order.
    Codes(Vec<String>),
    /// Free text.
    Text(String),
    /// No value, with the reason why.
    Missing(MissingCode),
}

impl fmt::Display for Value {
    /// The canonical text a person reads (audit trail, command line): the same text parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Dec(v) => write!(f, "{v}"),
            Value::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Value::DateTime(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M%:z")),
            Value::Code(c) => write!(f, "{c}"),
            Value::Codes(cs) => write!(f, "{}", cs.join(",")),
            Value::Text(t) => write!(f, "{t}"),
            Value::Missing(m) => write!(f, "@{}", m.code()),
        }
    }
}

impl Value {
    /// The stored JSON form (canonical).
    pub fn to_json(&self) -> String {
        // Serializing this enum cannot fail: every variant is plain data.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the stored JSON form.
    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }

    /// A number for range checks and comparisons, if this value is one.
    pub fn as_decimal(&self) -> Option<Decimal> {
        match self {
            Value::Int(v) => Some(Decimal::from_int(*v)),
            Value::Dec(d) => Some(*d),
            _ => None,
        }
    }

    /// A point in time for date-order checks: (local date, local date-time if known).
    pub fn as_local_time(&self) -> Option<(NaiveDate, Option<NaiveDateTime>)> {
        match self {
            Value::Date(d) => Some((*d, None)),
            Value::DateTime(t) => Some((t.date_naive(), Some(t.naive_local()))),
            _ => None,
        }
    }

    /// True for a missing-data code.
    pub fn is_missing(&self) -> bool {
        matches!(self, Value::Missing(_))
    }
}

/// Reads a date-time: `2026-03-01T08:30+08:00`, with seconds, or with a space for the `T`.
/// Without an offset, `default_offset` is used when given.
pub fn parse_datetime(
    s: &str,
    default_offset: Option<FixedOffset>,
) -> Result<DateTime<FixedOffset>, String> {
    let s = s.trim();
    let norm = s.replacen(' ', "T", 1);
    if let Ok(t) = DateTime::parse_from_rfc3339(&norm) {
        return Ok(t);
    }
    for fmt in ["%Y-%m-%dT%H:%M%:z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(t) = DateTime::parse_from_str(&norm, fmt) {
            return Ok(t);
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(&norm, fmt) {
            return match default_offset {
                Some(off) => naive
                    .and_local_timezone(off)
                    .single()
                    .ok_or_else(|| "not a valid local time".to_string()),
                None => Err("needs its UTC offset, like 2026-03-01T08:30+08:00".into()),
            };
        }
    }
    Err("not a date-time (write it like 2026-03-01T08:30+08:00)".into())
}

/// Reads a date written `2026-03-01`.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| "not a date (write it like 2026-03-01)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_what_was_typed() {
        for s in ["7.35", "-0.5", "0.05", "120", "0"] {
            let d: Decimal = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
        }
        assert_eq!("+3".parse::<Decimal>().unwrap().to_string(), "3");
        assert_eq!(".5".parse::<Decimal>().unwrap().to_string(), "0.5");
    }

    #[test]
    fn decimals_compare_by_value_not_spelling() {
        let a: Decimal = "7.50".parse().unwrap();
        let b: Decimal = "7.5".parse().unwrap();
        assert_eq!(a, b);
        assert!("7.49".parse::<Decimal>().unwrap() < b);
        assert!("-1".parse::<Decimal>().unwrap() < "0.001".parse().unwrap());
    }

    #[test]
    fn bad_decimals_are_refused() {
        for s in ["", ".", "1e3", "abc", "1.2.3", "--1", "1,5", "0.1234567891"] {
            assert!(s.parse::<Decimal>().is_err(), "{s} should be refused");
        }
    }

    #[test]
    fn values_round_trip_through_json_and_text() {
        let t = parse_datetime("2026-03-01T08:30+08:00", None).unwrap();
        let vals = [
            Value::Int(72),
            Value::Dec("1.75".parse().unwrap()),
            Value::Date(parse_date("2026-03-01").unwrap()),
            Value::DateTime(t),
            Value::Code("Y".into()),
            Value::Codes(vec!["A".into(), "B".into()]),
            Value::Text("发热 fever".into()),
            Value::Missing(MissingCode::NotDone),
        ];
        for v in vals {
            assert_eq!(Value::from_json(&v.to_json()).unwrap(), v);
        }
        assert_eq!(Value::DateTime(t).to_string(), "2026-03-01T08:30+08:00");
        assert_eq!(Value::Missing(MissingCode::Unknown).to_string(), "@UNK");
    }

    #[test]
    fn datetimes_need_an_offset_unless_one_is_given() {
        assert!(parse_datetime("2026-03-01 08:30", None).is_err());
        let off = FixedOffset::east_opt(8 * 3600).unwrap();
        let t = parse_datetime("2026-03-01 08:30", Some(off)).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-01T08:30:00+08:00");
    }
}
