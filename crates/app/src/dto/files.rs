//! Files the app writes on request: printouts, backups and exports.

use ecrf_export::Format;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A PDF written to disk.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Printout {
    /// Where it was saved.
    pub path: String,
    /// Pages.
    pub pages: u32,
    /// It was handed to the desktop's PDF viewer.
    pub opened: bool,
}

/// A backup written from the app.
#[derive(Debug, Clone, Serialize, TS)]
pub struct BackupDone {
    /// The backup file.
    pub path: String,
    /// Changes it holds.
    #[ts(type = "number")]
    pub changes: i64,
    /// SHA-256 of its database part.
    pub sha256: String,
}

/// Whether to remind the user to back up.
#[derive(Debug, Clone, Serialize, TS)]
pub struct BackupStatusDto {
    /// Show the reminder.
    pub remind: bool,
    /// After how many hours unprotected changes bring the reminder.
    pub reminder_hours: u32,
    /// The last backup taken on this laptop (UTC).
    pub last_backup_utc: Option<String>,
    /// The oldest change neither on the server nor in a backup (UTC).
    pub unprotected_since_utc: Option<String>,
}

/// What the data manager asks to export (the Export page).
#[derive(Debug, Clone, Deserialize, TS)]
pub struct ExportRequest {
    /// The format (`csv` comes with the dictionary and the R script).
    pub format: Format,
    /// Form ids; empty = every form.
    pub forms: Vec<String>,
    /// Only this site; none = every site in the store.
    pub site: Option<String>,
    /// Also the audit trail.
    pub include_audit: bool,
    /// Folder to write into (created if needed).
    pub folder: String,
}

/// An export written (and recorded in the audit trail).
#[derive(Debug, Clone, Serialize, TS)]
pub struct ExportDone {
    /// The folder.
    pub folder: String,
    /// Files written.
    pub files: Vec<String>,
    /// Subjects exported.
    pub subjects: u32,
    /// Time taken, milliseconds.
    pub millis: u32,
}
