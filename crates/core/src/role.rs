//! Roles and what each may do. The one place permissions are decided.

use std::fmt;
use std::str::FromStr;

/// A user's role in the trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Research nurse: screens, enters and corrects data.
    Nurse,
    /// Investigator: enters data and signs.
    Investigator,
    /// Monitor: reads, raises queries, verifies source data.
    Monitor,
    /// Data manager: queries, locks, corrections.
    DataManager,
    /// Administrator: users and devices; no clinical data entry.
    Admin,
}

/// Something a user may try to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create subjects and enter or change form data.
    EnterData,
    /// Add users.
    ManageUsers,
    /// Open the next sealed envelope for an eligible, consented subject.
    Randomize,
    /// Load leases of sealed envelopes into the store.
    LoadLease,
    /// Read data and the audit trail.
    Read,
    /// Export the trial's data and audit trail to files (CSV, statistics files, ODM).
    Export,
}

impl Role {
    /// All roles.
    pub const ALL: [Role; 5] = [
        Role::Nurse,
        Role::Investigator,
        Role::Monitor,
        Role::DataManager,
        Role::Admin,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Nurse => "nurse",
            Role::Investigator => "investigator",
            Role::Monitor => "monitor",
            Role::DataManager => "data_manager",
            Role::Admin => "admin",
        }
    }

    /// May this role do that?
    pub fn may(self, action: Action) -> bool {
        match action {
            Action::Read => true,
            Action::Export => matches!(self, Role::DataManager | Role::Admin),
            Action::EnterData => {
                matches!(self, Role::Nurse | Role::Investigator | Role::DataManager)
            }
            Action::ManageUsers | Action::LoadLease => self == Role::Admin,
            Action::Randomize => matches!(self, Role::Nurse | Role::Investigator),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim().to_ascii_lowercase().replace('-', "_"))
            .ok_or_else(|| {
                format!("unknown role {s} (nurse, investigator, monitor, data_manager, admin)")
            })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::EnterData => "enter data",
            Action::ManageUsers => "manage users",
            Action::Randomize => "randomize",
            Action::LoadLease => "load envelope leases",
            Action::Read => "read data",
            Action::Export => "export data",
        })
    }
}
