//! `ecrf-wire`: the sync protocol between ward laptops and the central server. Pure: no I/O.
//!
//! - [`wire`]: the JSON bodies of `/api/v1/…`, their limits and validation (shared by the
//!   client and the server, so both ends hold a body to the same rules);
//! - [`replica`]: what a sync needs of a device's store ([`Replica`]), so the client drives any
//!   store through it and never links the store itself.
#![deny(missing_docs)]

pub mod replica;
pub mod wire;

pub use replica::Replica;
pub use wire::{Invalid, ServerSlot, validate_change};
