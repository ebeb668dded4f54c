//! Laboratory results from the hospital's files, read and matched to the trial's record as
//! candidate values for a nurse to adjudicate. Pure: no store, no network, no clock of its own.
//!
//! - [`fhir`]: a FHIR R4 `Bundle` of `Observation`s (JSON), LOINC-coded;
//! - [`hl7`]: HL7 v2.x `ORU^R01` messages (one file may hold several);
//! - [`table`]: a laboratory system's CSV or Excel export, read through a [`TableMapping`]
//!   saved per site (which column is the record number, code, value, unit, time);
//! - [`plan`]: results → candidates per subject, form instance and item: matched by hospital
//!   record number (the site's identification log), placed by specimen time in the subject's
//!   local time, converted by the study's units, the worst of each day chosen (core::lab).
//!
//! Invariants: a file that cannot be read as its format is refused whole ([`ReadError`]); a
//! result that cannot be used (no value, no time, cancelled, preliminary) is a [`Problem`]
//! line, never dropped silently; nothing here converts a unit the study does not list.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod fhir;
pub mod hl7;
pub mod plan;
pub mod table;

/// The format of a laboratory file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// FHIR R4 Bundle (JSON).
    Fhir,
    /// HL7 v2.x ORU^R01.
    Hl7,
    /// CSV through a table mapping.
    Csv,
    /// Excel (.xlsx) through a table mapping.
    Xlsx,
}

impl Format {
    /// Its name in reports and provenance.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Fhir => "fhir",
            Format::Hl7 => "hl7",
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }

    /// The format a file's name and first bytes say: `.json` or `{` → FHIR, `MSH|` → HL7,
    /// `.xlsx` or a zip header → Excel, anything else CSV.
    pub fn detect(name: &str, bytes: &[u8]) -> Format {
        let lower = name.to_ascii_lowercase();
        let start = bytes
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(bytes)
            .iter()
            // MLLP framing (0x0B) may open an HL7 file.
            .skip_while(|b| b.is_ascii_whitespace() || **b == 0x0B)
            .take(4)
            .copied()
            .collect::<Vec<u8>>();
        if lower.ends_with(".xlsx") || start.starts_with(b"PK\x03\x04") {
            Format::Xlsx
        } else if lower.ends_with(".json") || start.first() == Some(&b'{') {
            Format::Fhir
        } else if lower.ends_with(".hl7") || start.starts_with(b"MSH|") {
            Format::Hl7
        } else {
            Format::Csv
        }
    }
}

/// When the specimen was taken, as the source states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// With its UTC offset.
    Zoned(DateTime<FixedOffset>),
    /// Without one: read in the subject's local time.
    Local(NaiveDateTime),
}

impl Taken {
    /// The time, with a local one read in `offset` (the subject's).
    pub fn at(&self, offset: FixedOffset) -> Option<DateTime<FixedOffset>> {
        match self {
            Taken::Zoned(t) => Some(*t),
            Taken::Local(t) => t.and_local_timezone(offset).single(),
        }
    }
}

impl std::fmt::Display for Taken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Taken::Zoned(t) => write!(f, "{}", t.format("%Y-%m-%d %H:%M%:z")),
            Taken::Local(t) => write!(f, "{}", t.format("%Y-%m-%d %H:%M")),
        }
    }
}

/// One result as a file states it, before any mapping to the trial.
#[derive(Debug, Clone, PartialEq)]
pub struct LabResult {
    /// The result's own identifier in its source (FHIR `Observation.id`, else its first
    /// identifier; HL7 `MSH-10` + `/` + `OBX-1`; a table's id column, else `row N`).
    pub id: String,
    /// The patient's hospital record number (FHIR subject identifier value, else the id of a
    /// `Patient/…` reference; HL7 `PID-3.1`; the table's record-number column).
    pub patient: String,
    /// LOINC code, when the source gives one (FHIR coding of `http://loinc.org`; HL7 `OBX-3.1`
    /// when `OBX-3.3` is `LN`, else `OBX-3.4` when `OBX-3.6` is `LN`; a table's code column,
    /// through the mapping's local codes).
    pub loinc: Option<String>,
    /// The result's name as written (for the report).
    pub name: String,
    /// The value as written, exactly.
    pub value: String,
    /// The unit as written (empty when none).
    pub unit: String,
    /// The specimen time.
    pub taken: Taken,
    /// Where in the file, in words: `entry 3`, `message 2, OBX 4`, `row 17`.
    pub place: String,
}

/// A result or a part of a file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where in the file (or which subject and day).
    pub place: String,
    /// What is wrong, in words a nurse can act on.
    pub message: String,
}

/// What a file held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadReport {
    /// Results that can be matched.
    pub results: Vec<LabResult>,
    /// Results (or segments, rows) that cannot be used.
    pub problems: Vec<Problem>,
}

/// A file that cannot be read as its format: nothing of it is used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Not the format it claims, or broken where no result can be trusted.
    #[error("{format} file is malformed at {place}: {message}")]
    Malformed {
        /// Format name.
        format: &'static str,
        /// Where.
        place: String,
        /// What.
        message: String,
    },
    /// A table mapping names a column the file does not have.
    #[error("the file has no column \"{column}\" (the mapping's {role}); its columns: {found}")]
    MissingColumn {
        /// The mapping's name for it.
        column: String,
        /// What the column is for (record number, code, value…).
        role: &'static str,
        /// The columns found.
        found: String,
    },
}

/// How a site's CSV or Excel export is read: the header of each column (as written, Chinese
/// headers welcome), the time format, and local test codes translated to LOINC. Saved per site
/// on the laptop under a name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableMapping {
    /// Column of the hospital record number.
    pub patient: String,
    /// Column of the test code (LOINC, or a local code listed in `codes`).
    pub code: String,
    /// Column of the test name (optional, for the report).
    #[serde(default)]
    pub name: Option<String>,
    /// Column of the value.
    pub value: String,
    /// Column of the unit.
    pub unit: String,
    /// Column of the specimen time.
    pub taken: String,
    /// Column of the result's own id (optional; else the row number is used).
    #[serde(default)]
    pub id: Option<String>,
    /// chrono format of the time column (default: `%Y-%m-%d %H:%M`, also with seconds, and
    /// RFC 3339 with an offset).
    #[serde(default)]
    pub time_format: Option<String>,
    /// Local test codes (as in the code column) → LOINC.
    #[serde(default)]
    pub codes: BTreeMap<String, String>,
    /// Excel: the sheet to read (default: the first).
    #[serde(default)]
    pub sheet: Option<String>,
}

/// A file read: its format, SHA-256 (hex) and what it held.
#[derive(Debug, Clone, PartialEq)]
pub struct LabFile {
    /// Format read.
    pub format: Format,
    /// SHA-256 of the bytes, hex: the provenance of every value taken from it.
    pub sha256: String,
    /// Results and problems.
    pub report: ReadReport,
}

/// Reads a file's bytes as `format` (CSV and Excel need a mapping).
pub fn read(
    format: Format,
    bytes: &[u8],
    mapping: Option<&TableMapping>,
) -> Result<LabFile, ReadError> {
    let no_mapping = || ReadError::Malformed {
        format: format.as_str(),
        place: "the whole file".into(),
        message: "a CSV or Excel export needs a column mapping (ecrf lab mapping set …)".into(),
    };
    let report = match format {
        Format::Fhir => fhir::read(&text_of(format, bytes)?)?,
        Format::Hl7 => hl7::read(&text_of(format, bytes)?)?,
        Format::Csv => table::read_csv(bytes, mapping.ok_or_else(no_mapping)?)?,
        Format::Xlsx => table::read_xlsx(bytes, mapping.ok_or_else(no_mapping)?)?,
    };
    Ok(LabFile {
        format,
        sha256: hex::encode(Sha256::digest(bytes)),
        report,
    })
}

/// UTF-8 text without a byte-order mark.
fn text_of(format: Format, bytes: &[u8]) -> Result<String, ReadError> {
    let b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    String::from_utf8(b.to_vec()).map_err(|e| ReadError::Malformed {
        format: format.as_str(),
        place: format!("byte {}", e.utf8_error().valid_up_to()),
        message: "not UTF-8 text".into(),
    })
}
