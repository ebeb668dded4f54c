//! `ecrf-app`: what the desktop app does, without Tauri.
//!
//! Each public method of [`App`] is one Tauri command's whole body, so the shell in `src-tauri`
//! stays a list of one-line calls and everything here can be tested without a window. Owns the
//! session (which store, who is logged in, failed-login throttling) and the conversion of store
//! and core types into the UI's types ([`dto`]). Invariants: no data is read or written without
//! a logged-in store; locking drops the open store (and with it the key) from memory.

#![deny(missing_docs)]

pub mod bindings;
// The trial's own types the shell's commands take, so the shell needs no other crate.
pub use ecrf_core::query::QueryStep;
pub use ecrf_core::{Lang, Role};
pub use ecrf_log::record::{Query, User};
mod clinical;
#[cfg(test)]
mod command_bindings;
mod convert;
pub mod demo;
pub mod dto;
mod envelopes;
mod export;
mod forms;
pub mod lab;
mod oversight;
mod print;
mod safekeeping;
pub mod screening;
mod session;
mod subjects;
pub mod sync;
mod throttle;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Local;
use ecrf_core::schedule::{FormStatus, day_zero, instance_status, schedule};
use ecrf_core::study::{Entry as EntryKind, ItemType};
use ecrf_core::{Finding, FormKey, MissingCode, Study, Value};
use ecrf_store::{CreateOptions, SaveOptions, Store, StoreError};

pub use crate::convert::study_dto;
use crate::convert::*;
use crate::dto::*;
use crate::throttle::Throttle;

/// Result of an app call.
pub type AppResult<T> = Result<T, AppError>;

fn err(code: ErrorCode, message: impl Into<String>) -> AppError {
    AppError {
        code,
        message: message.into(),
    }
}

impl From<ecrf_core::study::versions::VersionError> for AppError {
    fn from(e: ecrf_core::study::versions::VersionError) -> Self {
        err(ErrorCode::Invalid, e.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::NoStore(_) => ErrorCode::NoStore,
            StoreError::WrongPassword(_) | StoreError::UnknownUser(_) => ErrorCode::BadLogin,
            StoreError::NotAllowed { .. } => ErrorCode::NotAllowed,
            StoreError::Damaged(_) => ErrorCode::Damaged,
            StoreError::DiskFull(_) => ErrorCode::DiskFull,
            StoreError::Invalid(_)
            | StoreError::Refused(_)
            | StoreError::AlreadyExists(_)
            | StoreError::Rejected(_)
            | StoreError::NeedsConfirmation(_)
            | StoreError::ReasonRequired { .. }
            | StoreError::InInstance { .. }
            | StoreError::Definition(_) => ErrorCode::Invalid,
            _ => ErrorCode::Internal,
        };
        err(code, e.to_string())
    }
}

/// A form instance of a subject's schedule: its key, due date and status.
type ScheduleState = (FormKey, Option<chrono::NaiveDate>, FormStatus);

/// Default minutes of inactivity before the screen locks.
pub const DEFAULT_LOCK_MINUTES: u32 = 15;

/// The desktop app's state: which store, and the logged-in session if any.
pub struct App {
    study: Arc<Study>,
    store_path: PathBuf,
    demo_path: PathBuf,
    using_demo: bool,
    store: Option<Store>,
    throttle: Throttle,
    printer: Option<ecrf_pdf::Printer>,
}

impl App {
    /// An app on the store at `store_path`; the demo store, if chosen, lives at `demo_path`.
    pub fn new(store_path: PathBuf, demo_path: PathBuf) -> AppResult<App> {
        let study =
            ecrf_core::trial::definition().map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
        Ok(App {
            study: Arc::new(study),
            store_path,
            demo_path,
            using_demo: false,
            store: None,
            throttle: Throttle::default(),
            printer: None,
        })
    }

    fn path(&self) -> &Path {
        if self.using_demo {
            &self.demo_path
        } else {
            &self.store_path
        }
    }

    fn store(&self) -> AppResult<&Store> {
        self.store
            .as_ref()
            .ok_or_else(|| err(ErrorCode::NotLoggedIn, "locked: log in to continue"))
    }

    fn store_mut(&mut self) -> AppResult<&mut Store> {
        self.store
            .as_mut()
            .ok_or_else(|| err(ErrorCode::NotLoggedIn, "locked: log in to continue"))
    }
}

#[cfg(test)]
mod test_kit;
#[cfg(test)]
mod tests;
