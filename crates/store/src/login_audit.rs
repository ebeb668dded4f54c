//! Failed logins, recorded in the audit log.
//!
//! A failed login cannot write to the encrypted store (no key without the password), so it is
//! first noted in a small side file `<store>.failed-logins` (one JSON line each: the name tried,
//! UTC time, what failed; no password, no trial data) and moved into the change log as
//! `login.failed` changes at the next successful login, which then removes the file. Invariants:
//! the side file is bounded (at most [`MAX_PENDING`] attempts wait for the next login; the login
//! throttle makes reaching that take hours), and an unreadable line is still recorded (as
//! unreadable), never silently dropped.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use ecrf_log::ChangeKind;

use crate::store::{Draft, Store};

/// Failed attempts kept in the side file before the next successful login.
pub const MAX_PENDING: usize = 1000;

#[derive(Serialize, Deserialize)]
struct Attempt {
    user: String,
    utc: String,
    what: String,
}

/// Where failed attempts wait for the next successful login.
pub fn pending_path(store: &Path) -> PathBuf {
    let mut s = store.as_os_str().to_owned();
    s.push(".failed-logins");
    PathBuf::from(s)
}

/// Notes a failed login (best effort: a full or read-only disk must not turn a wrong password
/// into another error).
pub(crate) fn note_failure(store: &Path, user: &str, what: &str) {
    let path = pending_path(store);
    let lines = fs::read_to_string(&path)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    if lines >= MAX_PENDING {
        return;
    }
    let user: String = user.chars().take(64).collect();
    let line = serde_json::to_string(&Attempt {
        user,
        utc: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        what: what.into(),
    })
    .unwrap_or_default();
    let write = || -> std::io::Result<()> {
        // Owner-only; a link put in its place is refused, not followed.
        let mut f = crate::secret_file::append(&path)?;
        writeln!(f, "{line}")?;
        f.sync_all()
    };
    let _ = write();
}

impl Store {
    /// Moves noted failed logins into the change log (called after a successful login).
    pub(crate) fn record_failed_logins(&mut self) -> Result<(), StoreError> {
        let path = pending_path(self.path());
        let Ok(text) = fs::read_to_string(&path) else {
            return Ok(());
        };
        let mut drafts = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut d = Draft::new(ChangeKind::LoginFailed);
            match serde_json::from_str::<Attempt>(line) {
                Ok(a) => {
                    d.item = Some(a.user);
                    d.new_value = Some(
                        serde_json::json!({ "attempted_utc": a.utc, "failed": a.what }).to_string(),
                    );
                }
                Err(_) => {
                    d.new_value = Some(r#"{"failed":"unreadable record"}"#.into());
                }
            }
            drafts.push(d);
        }
        if !drafts.is_empty() {
            self.commit_failed_logins(drafts)?;
        }
        fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))
    }
}
