//! `ecrf-sync`: the device's side of the sync protocol: enrolment and one sync (push, then
//! pull) over HTTP(S), resumable after any cut. It drives a device's store through
//! [`ecrf_wire::Replica`] and never links the store itself; the bodies and their rules are
//! [`ecrf_wire`]'s, shared with the server. [`guard`] holds what the client accepts: the
//! server address (plain HTTP only to this computer) and the bounds of every reply.
#![deny(missing_docs)]

pub mod client;
pub mod guard;

pub use client::{Client, Progress, SyncError, SyncReport, enrol, first_login_request, sync};
pub use ecrf_wire::{Invalid, wire};
