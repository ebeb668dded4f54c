//! The study files as written: the TOML shapes serde reads, before any check.
//!
//! Owns nothing but shapes. Invariant: every text is optional here (`RawText`), so a missing
//! language is reported by the loader as a definition problem naming file and item, not as a
//! serde error; unknown fields are refused (`deny_unknown_fields`), so a misspelt key is an
//! error, never silently ignored. Ranges are read as numbers as written (`RawNumber`) and become
//! exact decimals only through `RawNumber::to_decimal`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Condition, Entry, ItemType, Repeat, Severity};
use crate::value::Decimal;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawText {
    pub(super) en: Option<String>,
    pub(super) zh: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStudy {
    pub(super) id: String,
    pub(super) version: String,
    pub(super) registry: String,
    pub(super) requires_app: Option<String>,
    pub(super) title: Option<RawText>,
    pub(super) forms: Vec<String>,
    #[serde(default)]
    pub(super) codelists: BTreeMap<String, RawCodeList>,
    pub(super) randomization: Option<RawRandomization>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRandomization {
    pub(super) latest_after_ecmo_start_min: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCodeList {
    pub(super) label: Option<RawText>,
    pub(super) codes: Vec<RawCode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCode {
    pub(super) code: String,
    pub(super) en: Option<String>,
    pub(super) zh: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForm {
    pub(super) id: String,
    pub(super) name: Option<RawText>,
    pub(super) when: Option<RawText>,
    pub(super) repeat: Repeat,
    pub(super) max_repeats: Option<u32>,
    #[serde(default = "default_entry")]
    pub(super) entry: Entry,
    #[serde(default)]
    pub(super) sections: Vec<RawSection>,
    #[serde(default)]
    pub(super) items: Vec<RawItem>,
    #[serde(default)]
    pub(super) rules: Vec<RawRule>,
}

fn default_entry() -> Entry {
    Entry::User
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSection {
    pub(super) id: String,
    pub(super) label: Option<RawText>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
pub(super) enum RawNumber {
    Int(i64),
    Float(f64),
}

impl RawNumber {
    pub(super) fn to_decimal(self) -> Option<Decimal> {
        match self {
            RawNumber::Int(i) => Some(Decimal::from_int(i)),
            // f64's shortest round-trip text is what was written in the file.
            RawNumber::Float(f) => f.to_string().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawItem {
    pub(super) id: String,
    pub(super) section: Option<String>,
    pub(super) label: Option<RawText>,
    pub(super) help: Option<RawText>,
    #[serde(rename = "type")]
    pub(super) item_type: ItemType,
    pub(super) unit: Option<String>,
    pub(super) hard: Option<[RawNumber; 2]>,
    pub(super) soft: Option<[RawNumber; 2]>,
    pub(super) decimals: Option<u32>,
    pub(super) codelist: Option<String>,
    pub(super) max_length: Option<usize>,
    #[serde(default)]
    pub(super) required: bool,
    #[serde(default)]
    pub(super) missing: Vec<String>,
    pub(super) ask_when: Option<Condition>,
    pub(super) derived: Option<String>,
    pub(super) lab: Option<RawLab>,
}

/// `[items.lab]`: the LOINC codes that fill the item, which result of a day counts, and the
/// source units accepted besides the item's own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLab {
    pub(super) loinc: Vec<String>,
    pub(super) worst: String,
    #[serde(default)]
    pub(super) from: Vec<RawLabUnit>,
}

/// One accepted source unit: exactly one of `multiply` and `divide` converts it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLabUnit {
    pub(super) unit: String,
    pub(super) multiply: Option<RawNumber>,
    pub(super) divide: Option<RawNumber>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) id: String,
    pub(super) kind: String,
    pub(super) left: Option<String>,
    pub(super) op: Option<String>,
    pub(super) right: Option<String>,
    pub(super) item: Option<String>,
    pub(super) when: Option<Condition>,
    pub(super) severity: Severity,
    pub(super) message: Option<RawText>,
}
