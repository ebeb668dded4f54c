//! The first screen, setting a laptop up (its secrets wiped once dropped) and the logged-in session with its rights.

use ecrf_core::{Lang, Role};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use zeroize::Zeroize;

/// What the first screen needs to know.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Welcome {
    /// A store exists at the configured path (else: first-run set-up).
    pub store_exists: bool,
    /// Where the store is.
    pub store_path: String,
    /// The demo store is the one in use.
    pub demo: bool,
    /// A logged-in session, if any.
    pub session: Option<SessionDto>,
}

/// First-run set-up.
#[derive(Clone, Deserialize, TS)]
pub struct SetupInput {
    /// Site code.
    pub site: String,
    /// Administrator's login name.
    pub admin_user: String,
    /// Administrator's full name.
    pub admin_name: String,
    /// Administrator's password.
    pub password: String,
}

/// The result of set-up: the recovery key, shown once.
#[derive(Clone, Serialize, TS)]
pub struct SetupDone {
    /// Recovery key.
    pub recovery_key: String,
}

// Secrets that cross the UI boundary are wiped from memory once dropped and never printed.
impl Drop for SetupInput {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

impl std::fmt::Debug for SetupInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupInput")
            .field("site", &self.site)
            .field("admin_user", &self.admin_user)
            .field("admin_name", &self.admin_name)
            .field("password", &"(hidden)")
            .finish()
    }
}

impl Drop for SetupDone {
    fn drop(&mut self) {
        self.recovery_key.zeroize();
    }
}

impl std::fmt::Debug for SetupDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupDone")
            .field("recovery_key", &"(hidden)")
            .finish()
    }
}

/// The logged-in user.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SessionDto {
    /// Login name.
    pub user: String,
    /// Full name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The language, remembered per user.
    pub lang: Lang,
    /// Minutes of inactivity before the screen locks.
    pub lock_minutes: u32,
    /// Site code.
    pub site: String,
    /// May enter data (`Role::may`, like every right below: the UI never compares roles).
    pub may_enter: bool,
    /// May add users, change roles, deactivate users and reset passwords.
    pub may_manage_users: bool,
    /// May export data.
    pub may_export: bool,
    /// The folder the user chose for printouts and audit CSVs (none yet: printing asks).
    pub print_folder: Option<String>,
}
