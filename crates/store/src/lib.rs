//! `ecrf-store`: the encrypted local store of a ward laptop.
//!
//! - [`keyring`]: the random store key wrapped per user (Argon2id) and for the recovery key;
//! - [`log`]: the append-only, hash-chained change log and its verification;
//! - [`store`]: opening, users, subjects, saving and reading forms, audit, rebuilds;
//! - [`replica`]: sync on the store side: this device's changes to push, other devices' changes
//!   applied page by page, item conflicts and their resolution;
//! - [`randomization`]: sealed envelopes (leases) and randomizing a subject;
//! - [`schema`](crate::schema): migrations.
//!
//! Architecture invariant: this is the only crate that writes SQL for the local file, and every
//! write is a change in the log applied to projections in the same transaction.
#![deny(missing_docs)]

pub mod error;
pub mod keyring;
pub mod log;
pub mod randomization;
pub mod replica;
pub mod schema;
pub mod store;

pub use error::StoreError;
pub use keyring::{Keyring, RecoveryKey};
pub use log::{Change, VerifyReport};
pub use randomization::{EnvelopeCount, Randomization, Refusal};
pub use replica::{ApplyReport, Conflict, ConflictValue, SyncState};
pub use store::{CreateOptions, ItemState, SaveOptions, SaveOutcome, Session, Store, User};
