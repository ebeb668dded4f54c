//! `ecrf-sync`: the sync protocol between ward laptops and the central server.
//!
//! - [`wire`]: the JSON bodies of `/api/v1/…`, their limits and validation (shared with the
//!   server, so both ends hold a body to the same rules);
//! - [`client`]: enrolment and one sync (push, then pull) over HTTP(S), resumable after any cut.
#![deny(missing_docs)]

pub mod client;
pub mod wire;

pub use client::{Client, Progress, SyncError, SyncReport, enrol, sync};
pub use wire::{Invalid, WireChange};
