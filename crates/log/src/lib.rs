//! `ecrf-log`: the change record every crate speaks. Pure: no I/O, no SQL, no network.
//!
//! - [`change`]: [`Change`], the one record that is hashed, chained, stored and synced;
//! - [`kind`]: [`ChangeKind`], what a change does (every `match` on it is exhaustive);
//! - [`author`]: each change's Ed25519 signature by its author, and the key list that checks
//!   them offline;
//! - [`body`]: one typed body per kind, read with [`Change::body`];
//! - [`chain`]: the per-device hash-chain rules and their check;
//! - [`permission`]: which action of core's permission table a change takes;
//! - [`project`]: the projection rules as a fold over changes (values, heads and conflicts,
//!   users, signatures, locks);
//! - [`record`]: what screens, printouts and exports read (item states, queries, signatures,
//!   a casebook).
//!
//! Architecture invariant: the store (SQLCipher), the sync client, the server, exports and
//! printouts depend on this crate and `ecrf-core` for the log; none of them depends on another
//! for its types.
#![deny(missing_docs)]

pub mod author;
pub mod body;
pub mod chain;
pub mod change;
pub mod kind;
pub mod permission;
pub mod project;
pub mod record;

pub use author::{AuthorError, AuthorKey, KeyList};
pub use body::{Body, BodyError};
pub use chain::{ChainCheck, DeviceHead, HashChecked, HashMismatch, VerifyReport};
pub use change::{BadRecord, Change, GENESIS, StoredRecords};
pub use kind::ChangeKind;
pub use permission::{Permission, permission};
pub use project::Projection;
pub use record::{
    Casebook, CasebookForm, ExportSubject, ExportValue, ExportView, ItemState, Query, Signature,
    User,
};
