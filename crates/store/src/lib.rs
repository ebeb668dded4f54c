//! `ecrf-store`: the encrypted local store of a ward laptop.
//!
//! - [`keyring`]: the random store key wrapped per user (Argon2id) and for the recovery key;
//! - [`casebook`]: a subject's whole record in one read, for printouts;
//! - [`backup`]: encrypted backup files and restoring them (checked before anything is replaced);
//! - [`durability`]: the tail check at open and the full check on demand;
//! - [`login_audit`]: failed logins noted beside the store, moved into the log at the next login;
//! - [`log`]: the change log's SQL (appending and reading `ecrf_log::Change`s) and the
//!   whole-file chain check;
//! - [`store`]: opening, users, subjects, saving and reading forms, audit, rebuilds;
//! - [`first_login`]: the device slot made at enrolment and a registered user's first login;
//! - [`export_view`]: the read-only snapshot an export reads, and the audited export event;
//! - [`outcome`]: a subject's values as a whole and its derived outcomes (core::outcome);
//! - [`oversight`]: queries, source-data verification, signatures, locks, user-account events;
//! - [`replica`]: sync on the store side: this device's changes to push, other devices' changes
//!   applied page by page, item conflicts and their resolution;
//! - [`randomization`]: sealed envelopes (leases) and randomizing a subject;
//! - [`rekey`]: changing the store key, removing the slots the server takes away;
//! - [`schema`](crate::schema): migrations;
//! - [`secret_file`]: key, backup and failed-login files, created owner-only and new, never
//!   through a link;
//! - `page_crypto`: SQLCipher's page AES-CBC and HMAC through RustCrypto (same bytes as its
//!   OpenSSL provider, without a lookup and allocation per page).
//!
//! Architecture invariant: this is the only crate that writes SQL for the local file, and every
//! write is a change in the log applied to projections in the same transaction.
#![deny(missing_docs)]

pub mod backup;
pub mod casebook;
pub mod durability;
pub mod error;
pub mod export_view;
pub mod first_login;
pub mod keyring;
pub mod lab;
pub mod log;
pub mod login_audit;
pub mod outcome;
pub mod oversight;
mod page_crypto;
pub mod randomization;
pub mod rekey;
pub mod replica;
pub mod schema;
pub mod secret_file;
pub mod store;
pub mod versions;

pub use ecrf_log::{
    Change, ExportSubject, ExportValue, ExportView, ItemState, Query, Signature, User, VerifyReport,
};
pub use error::StoreError;
pub use keyring::{Keyring, RecoveryKey};
pub use oversight::{AuditFilter, HeldChange, SdvProgress, audit_csv};
pub use randomization::{EnvelopeCount, Randomization, Refusal};
pub use rekey::Rekeyed;
pub use replica::{ApplyReport, Conflict, ConflictValue, SyncState};
pub use store::{
    AllSubjectValues, CreateOptions, SaveOptions, SaveOutcome, Session, Store, check_password,
};
