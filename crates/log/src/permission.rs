//! Who may make a change: each kind mapped once to an action of the permission table
//! ([`ecrf_core::role::PERMISSIONS`], the one place roles are decided).
//!
//! The server asks it for every pushed change; the store's commands each require the same
//! action of the session (`Store::require`), and a test holds both to the table for every
//! role (`crates/store/tests/permissions.rs`, `crates/cli/tests/permissions_server.rs`).

use ecrf_core::Action;

use crate::body::Body;
use crate::change::Change;
use crate::kind::ChangeKind;

/// Who may make a change of some kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Any signed-in user (a failed login noted, one's own new password).
    Anyone,
    /// Only roles that may take this action.
    Needs(Action),
    /// Only the server writes it; a device never does.
    ServerOnly,
}

/// The action a change takes, so its author's role can be checked against the permission
/// table. Mirrors what the store's own commands require: a value typed into an empty item is
/// `EnterData`, a changed or cleared one `ChangeData`; a query raised by a save (a warning
/// confirmed without a comment, `auto` in its body) is part of entering data.
pub fn permission(c: &Change) -> Permission {
    use Action as A;
    let needs = Permission::Needs;
    match c.kind {
        ChangeKind::StoreCreated => needs(A::ManageDevices),
        ChangeKind::UserAdded
        | ChangeKind::UserRole
        | ChangeKind::UserDeactivated
        | ChangeKind::PasswordReset => needs(A::ManageUsers),
        ChangeKind::PasswordChanged | ChangeKind::LoginFailed => Permission::Anyone,
        ChangeKind::SubjectCreated => needs(A::EnterData),
        ChangeKind::ItemSet if c.old_value.is_none() => needs(A::EnterData),
        ChangeKind::ItemSet => needs(A::ChangeData),
        ChangeKind::LeaseLoaded => needs(A::LoadLease),
        ChangeKind::Randomized => needs(A::Randomize),
        ChangeKind::DataExported => needs(A::Export),
        ChangeKind::QueryRaised => {
            let auto = matches!(c.body(), Ok(Body::QueryRaised(q)) if q.auto);
            needs(if auto { A::EnterData } else { A::RaiseQuery })
        }
        ChangeKind::QueryAnswered => needs(A::AnswerQuery),
        ChangeKind::QueryClosed | ChangeKind::QueryReopened => needs(A::CloseQuery),
        ChangeKind::SdvMarked => needs(A::VerifySource),
        ChangeKind::Signed => needs(A::Sign),
        ChangeKind::Locked => needs(A::Lock),
        ChangeKind::Unlocked => needs(A::Unlock),
        ChangeKind::LockHeld | ChangeKind::StudyPublished | ChangeKind::SiteActivated => {
            Permission::ServerOnly
        }
        // Part of entering an instance's first values.
        ChangeKind::FormVersioned => needs(A::EnterData),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::tests::change;

    /// Only `lock.held` is the server's.
    #[test]
    fn every_kind_has_a_rule_and_only_the_server_holds_changes() {
        for k in ChangeKind::ALL {
            let p = permission(&change(k, None, None));
            assert_eq!(
                p == Permission::ServerOnly,
                matches!(
                    k,
                    ChangeKind::LockHeld | ChangeKind::StudyPublished | ChangeKind::SiteActivated
                ),
                "{k}"
            );
        }
    }

    #[test]
    fn entering_changing_and_automatic_queries_map_to_their_actions() {
        let set = |old| permission(&change(ChangeKind::ItemSet, old, Some("{\"int\":1}")));
        assert_eq!(set(None), Permission::Needs(Action::EnterData));
        assert_eq!(
            set(Some("{\"int\":2}")),
            Permission::Needs(Action::ChangeData)
        );
        let raise = |body: &str| permission(&change(ChangeKind::QueryRaised, None, Some(body)));
        assert_eq!(
            raise(r#"{"query":"q","text":"why?"}"#),
            Permission::Needs(Action::RaiseQuery)
        );
        assert_eq!(
            raise(r#"{"auto":true,"query":"q","text":"Confirmed without a comment"}"#),
            Permission::Needs(Action::EnterData)
        );
        assert_eq!(
            raise(r#"{"auto":"yes","query":"q","text":"not a flag"}"#),
            Permission::Needs(Action::RaiseQuery)
        );
        assert_eq!(
            permission(&change(ChangeKind::Locked, None, None)),
            Permission::Needs(Action::Lock)
        );
    }
}
