//! What can go wrong with the store, in words a user can act on.

use std::path::{Path, PathBuf};

use ecrf_core::Finding;

/// Every store error. Messages are one line and say what to do where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No store (or no key file) at this path.
    #[error("no store at {0} (create one with `ecrf init`)")]
    NoStore(PathBuf),
    /// Refused to overwrite.
    #[error("a store already exists at {0}; choose another path")]
    AlreadyExists(PathBuf),
    /// No such user in the key slots.
    #[error("no user {0} in this store")]
    UnknownUser(String),
    /// The password did not unwrap the user's key slot.
    #[error("wrong password for user {0}")]
    WrongPassword(String),
    /// The recovery key did not unwrap the recovery slot.
    #[error("that is not this store's recovery key")]
    WrongRecoveryKey,
    /// The key was right but SQLCipher's page check failed: the file was damaged or changed.
    #[error(
        "the store file is damaged or was changed outside the app ({0}); restore it from a backup"
    )]
    Damaged(String),
    /// Key slot file problems.
    #[error("key slots: {0}")]
    Keyring(String),
    /// File-system error.
    #[error("{path}: {source}")]
    Io {
        /// Path involved.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The disk is full: the save was not written (nothing half-written; earlier saves intact).
    #[error("disk full: not saved ({0}); free some space on the disk, then save again")]
    DiskFull(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// The user's role may not do this.
    #[error("{user} ({role}) may not {action}")]
    NotAllowed {
        /// User.
        user: String,
        /// Role.
        role: String,
        /// What was attempted.
        action: String,
    },
    /// Bad request naming what is wrong (unknown subject, form, item, user name…).
    #[error("{0}")]
    Invalid(String),
    /// The study definition version needed cannot be used by this app (too old) or has not
    /// arrived: nothing was saved.
    #[error("not saved: {0}")]
    Definition(#[from] ecrf_core::study::versions::VersionError),
    /// Hard edit-check failures: nothing was saved.
    #[error("not saved: {}", join(.0))]
    Rejected(Vec<Finding>),
    /// Soft edit-check warnings not confirmed: nothing was saved.
    #[error("not saved, please confirm: {}", join(.0))]
    NeedsConfirmation(Vec<Finding>),
    /// Randomization refused, with the reason to show.
    #[error("not randomized: {0}")]
    Refused(crate::randomization::Refusal),
    /// One form instance of a batch (a laboratory import) refused: nothing of the batch was
    /// saved.
    #[error("{subject} {form}: {error}")]
    InInstance {
        /// Subject.
        subject: String,
        /// Form instance.
        form: String,
        /// Why.
        error: Box<StoreError>,
    },
    /// Saved values are being changed without a reason.
    #[error("not saved: {form} {} already saved; changing it needs a reason", reason_items(.items))]
    ReasonRequired {
        /// Form instance.
        form: String,
        /// Each item changed, with its saved value.
        items: Vec<(String, String)>,
    },
}

fn reason_items(items: &[(String, String)]) -> String {
    items
        .iter()
        .map(|(item, old)| format!("{item} has the value {old}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn join(f: &[Finding]) -> String {
    f.iter()
        .map(|f| f.message.en.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::StorageFull {
            return StoreError::DiskFull(format!("{}: {source}", path.display()));
        }
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    /// A page that fails SQLCipher's check surfaces as "corrupt" or "not a database" wherever
    /// it is read; either way the user is told the file is damaged, not a database detail.
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{DatabaseCorrupt, DiskFull, NotADatabase};
        match e.sqlite_error_code() {
            Some(DatabaseCorrupt | NotADatabase) => StoreError::Damaged(e.to_string()),
            Some(DiskFull) => StoreError::DiskFull(e.to_string()),
            _ => StoreError::Sqlite(e),
        }
    }
}
