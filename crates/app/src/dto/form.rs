//! A form instance on screen: entries typed, values saved, findings of the edit checks, save replies, history.

use ecrf_core::Severity;
use ecrf_core::schedule::FormStatus;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::Txt;

/// A value typed (or to be typed) into an item, as text (`@ND` for missing codes).
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
pub struct Entry {
    /// Item id.
    pub item: String,
    /// Text.
    pub text: String,
}

/// A saved value.
#[derive(Debug, Clone, Serialize, TS)]
pub struct FieldValue {
    /// Item id.
    pub item: String,
    /// The value as text that the field shows and that parses back.
    pub text: String,
    /// A confirmed warning kept with it.
    pub warning: Option<Txt>,
}

/// A form instance as the form page shows it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct FormPage {
    /// Subject number.
    pub subject: String,
    /// Instance key.
    pub key: String,
    /// Form id.
    pub form: String,
    /// Saved values.
    pub values: Vec<FieldValue>,
    /// Values the app computes from them (BMI, VIS, pulse pressure), never typed.
    pub derived: Vec<FieldValue>,
    /// Status.
    pub status: FormStatus,
    /// Required items still empty.
    pub missing: Vec<String>,
    /// Unsaved entries kept from an earlier visit.
    pub draft: Option<Vec<Entry>>,
    /// When `draft` was prefilled from an earlier daily log: its key (`DLY#2`), to confirm
    /// or change.
    pub prefilled_from: Option<String>,
}

/// A broken edit check.
#[derive(Debug, Clone, Serialize, TS)]
pub struct FindingDto {
    /// Item shown beside.
    pub item: String,
    /// Rule.
    pub rule: String,
    /// Refused (hard) or needs confirming (soft).
    pub severity: Severity,
    /// Message.
    pub message: Txt,
}

/// A saved value about to change.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ReasonItem {
    /// Item id.
    pub item: String,
    /// Its saved value.
    pub old: String,
}

/// What a save did or needs.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SaveReply {
    /// Saved.
    Saved {
        /// The form as it now is.
        page: FormPage,
        /// Changes written.
        changes: u32,
    },
    /// Refused: hard errors, shown beside their fields. Nothing written.
    Refused {
        /// Errors.
        errors: Vec<FindingDto>,
    },
    /// Needs the user to confirm these warnings. Nothing written yet.
    Confirm {
        /// Warnings.
        warnings: Vec<FindingDto>,
    },
    /// Needs a reason for changing saved values. Nothing written yet.
    Reason {
        /// Items changed.
        items: Vec<ReasonItem>,
    },
}
