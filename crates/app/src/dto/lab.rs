//! The laboratory import screen: what a file would give (candidates per subject and day, with
//! their source and what is entered), what cannot be used, and what an import saved.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// One candidate value (see `ecrf_lab::plan::Candidate`).
#[derive(Debug, Clone, Serialize, TS)]
pub struct LabCandidateDto {
    /// The id a decision names.
    pub id: String,
    /// Subject.
    pub subject: String,
    /// Form instance (`BAS`, `DLY#3`).
    pub form: String,
    /// Item id.
    pub item: String,
    /// The item's label.
    pub label: super::Txt,
    /// The value that would be saved, in the item's unit.
    pub value: String,
    /// The item's unit.
    pub unit: String,
    /// The source's value and unit as written.
    pub source: String,
    /// Specimen time as the source states it.
    pub taken: String,
    /// The result's id in the file.
    pub result: String,
    /// The value entered now.
    pub entered: Option<String>,
    /// Other results that day (not the worst).
    pub others: u32,
    /// `new`, `differs`, `same`, `imported`, `rejected`.
    pub status: String,
}

/// A result that cannot be used, where and why.
#[derive(Debug, Clone, Serialize, TS)]
pub struct LabProblemDto {
    /// Where (entry, message, row, subject).
    pub place: String,
    /// Why.
    pub message: String,
}

/// What importing a file would do.
#[derive(Debug, Clone, Serialize, TS)]
pub struct LabPreview {
    /// The file.
    pub path: String,
    /// `fhir`, `hl7`, `csv`, `xlsx`.
    pub format: String,
    /// SHA-256 of the file (the decisions are applied only to this very file).
    pub sha256: String,
    /// Results read.
    pub results: u32,
    /// Candidates by subject and day.
    pub candidates: Vec<LabCandidateDto>,
    /// What cannot be used.
    pub problems: Vec<LabProblemDto>,
}

/// What an import saved.
#[derive(Debug, Clone, Serialize, TS)]
pub struct LabApplied {
    /// Values saved.
    pub saved: u32,
    /// Results rejected (remembered).
    pub rejected: u32,
    /// Left undecided.
    pub undecided: u32,
}

/// A subject's hospital record number in the site's identification log.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct SubjectMrn {
    /// Subject.
    pub subject: String,
    /// Hospital record number.
    pub mrn: String,
}
