//! The one error type every command returns: a code the UI can act on and a sentence for the user.

use serde::Serialize;
use ts_rs::TS;

/// Error codes the UI can act on without reading messages.
#[derive(Debug, Clone, Copy, Serialize, TS, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No store yet.
    NoStore,
    /// Wrong user name or password.
    BadLogin,
    /// Too many failed attempts: wait.
    Throttled,
    /// Not logged in (locked).
    NotLoggedIn,
    /// The role may not.
    NotAllowed,
    /// The store file is damaged.
    Damaged,
    /// The disk is full: nothing was saved; free space and save again.
    DiskFull,
    /// Bad input, explained.
    Invalid,
    /// The server cannot be reached now: nothing is lost, try again later.
    Offline,
    /// Anything else.
    Internal,
}

/// An error for the UI: a code and a sentence.
#[derive(Debug, Clone, Serialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// What kind.
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
}
