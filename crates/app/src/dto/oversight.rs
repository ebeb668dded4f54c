//! Queries, source-data verification, signatures, locks and the audit trail review.

use ecrf_core::signature::SignatureMeaning;
use ecrf_log::Change;
use ecrf_log::record::Query;
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use zeroize::Zeroize;

use super::Txt;

/// A signature as the UI shows it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SignatureDto {
    /// `DLY#3` or `casebook`.
    pub scope: String,
    /// Printed name.
    pub name: String,
    /// User name.
    pub signer: String,
    /// UTC time.
    pub utc: String,
    /// Device offset at signing (`+08:00`).
    pub offset: String,
    /// The stated meaning, in both languages.
    pub meaning: Txt,
    /// False once a signed value changed: needs re-signing.
    pub valid: bool,
}

/// What the logged-in user may do about a form's oversight.
#[derive(Debug, Clone, Serialize, TS)]
pub struct OversightRights {
    /// Raise, close and reopen queries.
    pub query: bool,
    /// Answer queries.
    pub answer: bool,
    /// Mark source data verified.
    pub verify: bool,
    /// Sign.
    pub sign: bool,
    /// Lock and unlock.
    pub lock: bool,
}

/// Queries, SDV marks, signatures and the lock of one form instance.
#[derive(Debug, Clone, Serialize, TS)]
pub struct FormOversight {
    /// Queries on the form, open first.
    pub queries: Vec<Query>,
    /// Items verified against the source and unchanged since.
    pub verified: Vec<String>,
    /// Signatures covering the form (its own and the casebook's).
    pub signatures: Vec<SignatureDto>,
    /// The lock that covers the form, in words, if any.
    pub locked: Option<String>,
    /// The next signature asks for the user id too (first in this session).
    pub sign_needs_user: bool,
    /// What this user may do.
    pub rights: OversightRights,
}

/// An investigator's signature request.
#[derive(Clone, Deserialize, TS)]
pub struct SignInput {
    /// Subject.
    pub subject: String,
    /// Form instance; none signs the whole casebook.
    pub key: Option<String>,
    /// What the signature means.
    pub meaning: SignatureMeaning,
    /// User id (the first signature of a session).
    pub user: Option<String>,
    /// Password.
    pub password: String,
}

impl Drop for SignInput {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

impl std::fmt::Debug for SignInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInput")
            .field("subject", &self.subject)
            .field("key", &self.key)
            .field("meaning", &self.meaning)
            .field("user", &self.user)
            .field("password", &"(hidden)")
            .finish()
    }
}

/// Which changes the Audit trail page shows; each field narrows it (empty = any).
#[derive(Debug, Clone, Default, Deserialize, TS)]
pub struct AuditFilterDto {
    /// One subject.
    pub subject: Option<String>,
    /// One form instance (`DLY#3`) or every instance of a form (`DLY`).
    pub form: Option<String>,
    /// One item.
    pub item: Option<String>,
    /// One user.
    pub user: Option<String>,
}

/// One change as the Audit trail page and an item's history show it: the change as recorded,
/// and its values as a reader sees them (a query's text, not its JSON body).
#[derive(Debug, Clone, Serialize, TS)]
pub struct AuditRow {
    /// Log sequence number (the change's place in this store's log).
    pub seq: u32,
    /// The change, every field as hashed.
    pub change: Change,
    /// The value before, as shown.
    pub old_shown: Option<String>,
    /// The value after, as shown.
    pub new_shown: Option<String>,
    /// Where the value came from when it was not typed (a laboratory file's result), in words.
    pub source_shown: Option<String>,
}

/// A page of the audit trail: the newest rows that match, and how many match in all.
#[derive(Debug, Clone, Serialize, TS)]
pub struct AuditPage {
    /// Newest first, at most [`AUDIT_PAGE_ROWS`].
    pub rows: Vec<AuditRow>,
    /// Changes that match the filter.
    pub total: u32,
}

/// Rows the Audit trail page shows at once (the CSV holds them all).
pub const AUDIT_PAGE_ROWS: usize = 500;

/// The audit trail written as CSV.
#[derive(Debug, Clone, Serialize, TS)]
pub struct AuditCsvDone {
    /// Where it was saved.
    pub path: String,
    /// Changes written.
    pub rows: u32,
}
