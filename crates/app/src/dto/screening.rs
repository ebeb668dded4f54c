//! The Screening log page: every screened patient with eligibility and its reasons, and the
//! site's CONSORT counts (see [`crate::screening`]).

use serde::Serialize;
use ts_rs::TS;

use super::Txt;

/// Where a screened patient stands (core's `eligibility::Outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ScreeningStatus {
    /// Randomized.
    Randomized,
    /// Eligible and consented, not randomized yet.
    Pending,
    /// Eligible, consent not obtained (or withdrawn before randomization).
    NoConsent,
    /// Not eligible.
    NotEligible,
}

/// One reason a patient is not eligible.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ReasonDto {
    /// The criterion: `I1`..`I4`, `E1`..`E10`.
    pub criterion: String,
    /// The criterion's label (its SCR item).
    pub label: Txt,
    /// What is wrong (core's words, in English).
    pub text: String,
}

/// One screened patient.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ScreenedPatient {
    /// Screening number.
    pub subject: String,
    /// Screening date-time as stored.
    pub screened_at: Option<String>,
    /// Age in years.
    pub age: Option<String>,
    /// Sex.
    pub sex: Option<Txt>,
    /// The screening checklist shows every inclusion and no exclusion criterion.
    pub eligible: bool,
    /// Why not (empty when eligible).
    pub reasons: Vec<ReasonDto>,
    /// Where the patient stands.
    pub status: ScreeningStatus,
    /// Why consent is not counted (core's words, in English), when eligible without consent.
    pub consent_note: Option<String>,
    /// The screen-failure reason recorded on SCR.
    pub screen_failure: Option<Txt>,
    /// The arm, once randomized.
    pub arm: Option<Txt>,
}

/// Patients counted under one exclusion or inclusion criterion.
#[derive(Debug, Clone, Serialize, TS)]
pub struct CriterionCount {
    /// `I1`..`E10`.
    pub criterion: String,
    /// Its label.
    pub label: Txt,
    /// Patients (one patient may count under several criteria).
    pub count: u32,
}

/// Randomized patients of one arm.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ArmCount {
    /// Arm code.
    pub arm: String,
    /// Its label.
    pub label: Txt,
    /// Patients.
    pub count: u32,
}

/// A site's CONSORT counts.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ConsortDto {
    /// Site code.
    pub site: String,
    /// Patients screened.
    pub screened: u32,
    /// Not eligible.
    pub not_eligible: u32,
    /// Not eligible, by criterion.
    pub by_criterion: Vec<CriterionCount>,
    /// Eligible (screened − not eligible).
    pub eligible: u32,
    /// Eligible, consent not obtained.
    pub consent_not_obtained: u32,
    /// Eligible and consented (randomized or waiting).
    pub consented: u32,
    /// Eligible and consented, not randomized yet.
    pub pending: u32,
    /// Randomized.
    pub randomized: u32,
    /// Randomized, by arm.
    pub by_arm: Vec<ArmCount>,
}

/// The Screening log page.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ScreeningLog {
    /// Every screened patient, in screening-number order.
    pub patients: Vec<ScreenedPatient>,
    /// CONSORT counts per site.
    pub sites: Vec<ConsortDto>,
}
