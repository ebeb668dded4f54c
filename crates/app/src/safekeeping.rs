//! Backups from the desktop and the backup reminder.
//!
//! Owns where the app writes a backup (a folder the user picks, e.g. a USB stick: one file
//! `ecrf-<site>-<local time>.ecrfbak`) and the reminder rule: remind when a change made on this
//! laptop is neither on the server nor in a backup and is older than the user's
//! `backup_reminder_hours` preference (default [`DEFAULT_REMINDER_HOURS`]).

use std::path::Path;

use chrono::{Local, Utc};

use crate::dto::{BackupDone, BackupStatusDto, ErrorCode};
use crate::{App, AppResult, err};

/// Hours after which unprotected changes bring the reminder, unless the user set otherwise.
pub const DEFAULT_REMINDER_HOURS: u32 = 24;

const PREFERENCE: &str = "backup_reminder_hours";

impl App {
    /// Writes an encrypted backup of the store into `folder` while the app stays in use.
    pub fn backup(&mut self, folder: &str) -> AppResult<BackupDone> {
        let folder = Path::new(folder.trim());
        if folder.as_os_str().is_empty() || !folder.is_dir() {
            return Err(err(
                ErrorCode::Invalid,
                format!("backup folder {}: no such folder", folder.display()),
            ));
        }
        let store = self.store()?;
        let stamp = Local::now().format("%Y%m%d-%H%M%S");
        let path = folder.join(format!("ecrf-{}-{stamp}.ecrfbak", store.site()));
        let header = store.backup(&path)?;
        Ok(BackupDone {
            path: path.display().to_string(),
            changes: header.head_seq,
            sha256: header.db_sha256,
        })
    }

    /// Whether to show the backup reminder.
    pub fn backup_status(&self) -> AppResult<BackupStatusDto> {
        let store = self.store()?;
        let hours = store
            .preference(PREFERENCE)?
            .and_then(|h| h.parse().ok())
            .unwrap_or(DEFAULT_REMINDER_HOURS);
        let s = store.backup_status(hours, Utc::now())?;
        Ok(BackupStatusDto {
            remind: s.remind,
            reminder_hours: hours,
            last_backup_utc: s.last_backup_utc,
            unprotected_since_utc: s.unprotected_since_utc,
        })
    }

    /// Sets after how many hours unprotected changes bring the reminder (1 to 720).
    pub fn set_backup_reminder_hours(&mut self, hours: u32) -> AppResult<BackupStatusDto> {
        if !(1..=720).contains(&hours) {
            return Err(err(
                ErrorCode::Invalid,
                "backup reminder: between 1 and 720 hours",
            ));
        }
        self.store()?
            .set_preference(PREFERENCE, &hours.to_string())?;
        self.backup_status()
    }
}

#[cfg(test)]
mod tests {
    use crate::App;
    use crate::dto::SetupInput;

    #[test]
    fn backup_from_the_app_and_the_reminder() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = App::new(dir.path().join("w.ecrf"), dir.path().join("demo.ecrf")).unwrap();
        app.setup(SetupInput {
            site: "01".into(),
            admin_user: "admin".into(),
            admin_name: "A".into(),
            password: "admin-password-1".into(),
        })
        .unwrap();
        app.login("admin", "admin-password-1").unwrap();
        let status = app.backup_status().unwrap();
        // Fresh changes: nothing to remind of yet; never backed up.
        assert!(!status.remind);
        assert_eq!(status.reminder_hours, 24);
        assert!(status.last_backup_utc.is_none() && status.unprotected_since_utc.is_some());
        assert!(app.set_backup_reminder_hours(0).is_err());
        assert_eq!(app.set_backup_reminder_hours(6).unwrap().reminder_hours, 6);

        let usb = dir.path().join("usb");
        assert!(app.backup(usb.to_str().unwrap()).is_err(), "no such folder");
        std::fs::create_dir(&usb).unwrap();
        let done = app.backup(usb.to_str().unwrap()).unwrap();
        assert!(done.path.ends_with(".ecrfbak") && done.changes >= 2);
        let status = app.backup_status().unwrap();
        assert!(status.last_backup_utc.is_some());
        assert!(
            status.unprotected_since_utc.is_none(),
            "everything is in the backup"
        );
    }
}
