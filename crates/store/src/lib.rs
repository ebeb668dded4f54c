//! `ecrf-store`: the encrypted local store of a ward laptop.
//!
//! - [`keyring`]: the random store key wrapped per user (Argon2id) and for the recovery key;
//! - [`log`]: the append-only, hash-chained change log and its verification;
//! - [`store`]: opening, users, subjects, saving and reading forms, audit, rebuilds;
//! - [`export_view`]: the read-only snapshot an export reads, and the audited export event;
//! - [`outcome`]: a subject's values as a whole and its derived outcomes (core::outcome);
//! - [`oversight`]: queries, source-data verification, signatures, locks, user-account events;
//! - [`randomization`]: sealed envelopes (leases) and randomizing a subject;
//! - [`schema`](crate::schema): migrations.
//!
//! Architecture invariant: this is the only crate that writes SQL for the local file, and every
//! write is a change in the log applied to projections in the same transaction.
#![deny(missing_docs)]

pub mod error;
pub mod export_view;
pub mod keyring;
pub mod log;
pub mod outcome;
pub mod oversight;
pub mod randomization;
pub mod schema;
pub mod store;

pub use error::StoreError;
pub use export_view::{ExportSubject, ExportValue, ExportView};
pub use keyring::{Keyring, RecoveryKey};
pub use log::{Change, VerifyReport};
pub use oversight::{AuditFilter, Query, SdvProgress, Signature};
pub use randomization::{EnvelopeCount, Randomization, Refusal};
pub use store::{CreateOptions, ItemState, SaveOptions, SaveOutcome, Session, Store, User};
