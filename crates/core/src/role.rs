//! Roles and what each may do. The one place permissions are decided.

use std::fmt;
use std::str::FromStr;

/// A user's role in the trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Role {
    /// Research nurse: screens, enters and corrects data.
    Nurse,
    /// Investigator: enters data and signs.
    Investigator,
    /// Monitor: reads, raises queries, verifies source data.
    Monitor,
    /// Data manager: queries, locks, corrections.
    DataManager,
    /// Trial statistician: reads and exports data, and alone sees results by arm (the closed
    /// report for the data monitoring committee).
    Statistician,
    /// Administrator: users and devices; no clinical data entry.
    Admin,
}

/// Something a user may try to do. Every action the app, the CLI or the server lets a user take
/// is one of these, and [`Role::may`] (through [`PERMISSIONS`]) is the only place that decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read data and the audit trail.
    Read,
    /// Screen patients: eligibility checklist, screening log, consent.
    Screen,
    /// Create subjects and enter values into empty items.
    EnterData,
    /// Change or clear a value already saved (with a reason).
    ChangeData,
    /// Open the next sealed envelope for an eligible, consented subject.
    Randomize,
    /// Sign a form or a casebook electronically.
    Sign,
    /// Raise a query on an item.
    RaiseQuery,
    /// Answer a query (site staff).
    AnswerQuery,
    /// Close or reopen a query.
    CloseQuery,
    /// Mark items or forms as verified against the source documents.
    VerifySource,
    /// Lock a form, a casebook or a site.
    Lock,
    /// Unlock it again.
    Unlock,
    /// Export data for analysis.
    Export,
    /// Add users, change roles, deactivate users, reset passwords.
    ManageUsers,
    /// Enrol and revoke devices, create sites.
    ManageDevices,
    /// Load leases of sealed envelopes into the store.
    LoadLease,
    /// See outcomes by arm: the closed report for the data monitoring committee (everyone
    /// else sees pooled figures only).
    ViewByArm,
}

/// The permission table: for each action, the roles allowed to take it. Read it as the trial's
/// delegation log: nurses screen, enter and answer queries; investigators do all of that and sign;
/// monitors read, query and verify but never edit; data managers run queries, locks and exports;
/// administrators manage users and devices and never touch clinical data.
pub const PERMISSIONS: &[(Action, &[Role])] = {
    use Role::*;
    &[
        (
            Action::Read,
            &[
                Nurse,
                Investigator,
                Monitor,
                DataManager,
                Statistician,
                Admin,
            ],
        ),
        (Action::Screen, &[Nurse, Investigator]),
        (Action::EnterData, &[Nurse, Investigator]),
        (Action::ChangeData, &[Nurse, Investigator]),
        (Action::Randomize, &[Nurse, Investigator]),
        (Action::Sign, &[Investigator]),
        (Action::RaiseQuery, &[Monitor, DataManager]),
        (Action::AnswerQuery, &[Nurse, Investigator]),
        (Action::CloseQuery, &[Monitor, DataManager]),
        (Action::VerifySource, &[Monitor]),
        (Action::Lock, &[DataManager]),
        (Action::Unlock, &[DataManager]),
        (Action::Export, &[DataManager, Statistician]),
        (Action::ManageUsers, &[Admin]),
        (Action::ManageDevices, &[Admin]),
        (Action::LoadLease, &[Admin]),
        (Action::ViewByArm, &[Statistician]),
    ]
};

impl Action {
    /// All actions, in the order of [`PERMISSIONS`].
    pub const ALL: [Action; 17] = [
        Action::Read,
        Action::Screen,
        Action::EnterData,
        Action::ChangeData,
        Action::Randomize,
        Action::Sign,
        Action::RaiseQuery,
        Action::AnswerQuery,
        Action::CloseQuery,
        Action::VerifySource,
        Action::Lock,
        Action::Unlock,
        Action::Export,
        Action::ManageUsers,
        Action::ManageDevices,
        Action::LoadLease,
        Action::ViewByArm,
    ];
}

impl Action {
    /// The roles [`PERMISSIONS`] allows to take this action.
    pub fn roles(self) -> &'static [Role] {
        PERMISSIONS
            .iter()
            .find(|(a, _)| *a == self)
            .map_or(&[], |(_, roles)| *roles)
    }
}

impl Role {
    /// All roles.
    pub const ALL: [Role; 6] = [
        Role::Nurse,
        Role::Investigator,
        Role::Monitor,
        Role::DataManager,
        Role::Statistician,
        Role::Admin,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Nurse => "nurse",
            Role::Investigator => "investigator",
            Role::Monitor => "monitor",
            Role::DataManager => "data_manager",
            Role::Statistician => "statistician",
            Role::Admin => "admin",
        }
    }

    /// May this role do that?
    pub fn may(self, action: Action) -> bool {
        PERMISSIONS
            .iter()
            .find(|(a, _)| *a == action)
            .is_some_and(|(_, roles)| roles.contains(&self))
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
                format!("unknown role {s} (nurse, investigator, monitor, data_manager, statistician, admin)")
            })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Read => "read data",
            Action::Screen => "screen patients",
            Action::EnterData => "enter data",
            Action::ChangeData => "change saved data",
            Action::Randomize => "randomize",
            Action::Sign => "sign",
            Action::RaiseQuery => "raise queries",
            Action::AnswerQuery => "answer queries",
            Action::CloseQuery => "close queries",
            Action::VerifySource => "verify source data",
            Action::Lock => "lock",
            Action::Unlock => "unlock",
            Action::Export => "export data",
            Action::ManageUsers => "manage users",
            Action::ManageDevices => "manage devices and sites",
            Action::LoadLease => "load envelope leases",
            Action::ViewByArm => "see results by arm (the closed report)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The matrix as the protocol's delegation log states it, written out cell by cell so a
    /// change to [`PERMISSIONS`] must be made twice on purpose.
    #[test]
    fn every_role_and_action_is_decided_as_the_delegation_log_says() {
        use Action::*;
        let expect: &[(Role, &[Action])] = &[
            (
                Role::Nurse,
                &[Read, Screen, EnterData, ChangeData, Randomize, AnswerQuery],
            ),
            (
                Role::Investigator,
                &[
                    Read,
                    Screen,
                    EnterData,
                    ChangeData,
                    Randomize,
                    Sign,
                    AnswerQuery,
                ],
            ),
            (Role::Monitor, &[Read, RaiseQuery, CloseQuery, VerifySource]),
            (
                Role::DataManager,
                &[Read, RaiseQuery, CloseQuery, Lock, Unlock, Export],
            ),
            (Role::Statistician, &[Read, Export, ViewByArm]),
            (Role::Admin, &[Read, ManageUsers, ManageDevices, LoadLease]),
        ];
        for (role, allowed) in expect {
            for action in Action::ALL {
                assert_eq!(
                    role.may(action),
                    allowed.contains(&action),
                    "{role} may {action}?"
                );
            }
        }
    }

    #[test]
    fn every_action_is_in_the_table_once() {
        for action in Action::ALL {
            let rows = PERMISSIONS.iter().filter(|(a, _)| *a == action).count();
            assert_eq!(rows, 1, "{action}");
        }
        assert_eq!(PERMISSIONS.len(), Action::ALL.len());
    }

    #[test]
    fn monitors_and_admins_never_edit_or_sign() {
        for role in [
            Role::Monitor,
            Role::Admin,
            Role::DataManager,
            Role::Statistician,
        ] {
            for action in [Action::EnterData, Action::ChangeData, Action::Sign] {
                assert!(!role.may(action), "{role} {action}");
            }
        }
    }
}
