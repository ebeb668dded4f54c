//! What a change does: [`ChangeKind`], one variant per kind of change the log holds.
//!
//! Invariants: each kind has exactly one name on the wire and in the store (`item.set`), which
//! is part of every change's hash, so a name never changes once released; a name this version
//! does not know is refused when parsed (never kept as an unknown kind). Every `match` on a
//! kind is exhaustive: a new kind does not compile until every place that decides on kinds
//! (permission, projections, exports, printouts, the server) has decided on it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a change does.
/// The serde names are [`ChangeKind::as_str`]'s (a test keeps them equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum ChangeKind {
    /// The store was created (new value = [`crate::body::StoreCreated`]).
    #[serde(rename = "store.create")]
    StoreCreated,
    /// A user was added (item = user name, new value = [`crate::body::UserAdded`]).
    #[serde(rename = "user.add")]
    UserAdded,
    /// A subject was created (subject = its number, new value = its site code).
    #[serde(rename = "subject.create")]
    SubjectCreated,
    /// An item's value was set, changed or cleared (old and new value = JSON of
    /// [`ecrf_core::Value`]; `None` = empty).
    #[serde(rename = "item.set")]
    ItemSet,
    /// Sealed envelopes were leased to this device (item = lease id, new value = the
    /// envelopes, [`crate::body::LeasedEnvelope`]).
    #[serde(rename = "lease.load")]
    LeaseLoaded,
    /// A subject was randomized: the next envelope opened and bound to it (item = envelope
    /// id, new value = [`crate::body::Opened`]). Irreversible.
    #[serde(rename = "subject.randomize")]
    Randomized,
    /// Data were exported (new value = what, in words).
    #[serde(rename = "data.export")]
    DataExported,
    /// A login failed on this device (new value = [`crate::body::LoginFailed`]).
    #[serde(rename = "login.failed")]
    LoginFailed,
    /// A query raised on an item (new value = [`crate::body::QueryStep`]).
    #[serde(rename = "query.raise")]
    QueryRaised,
    /// A query answered.
    #[serde(rename = "query.answer")]
    QueryAnswered,
    /// A query closed.
    #[serde(rename = "query.close")]
    QueryClosed,
    /// A query reopened.
    #[serde(rename = "query.reopen")]
    QueryReopened,
    /// An item marked verified against the source (new value = the value verified).
    #[serde(rename = "sdv.mark")]
    SdvMarked,
    /// An electronic signature (form = scope, new value = [`crate::body::Signed`]).
    #[serde(rename = "signature.sign")]
    Signed,
    /// A lock taken (new value = [`crate::body::Lock`], reason required).
    #[serde(rename = "lock.set")]
    Locked,
    /// A lock released.
    #[serde(rename = "lock.release")]
    Unlocked,
    /// A user's role changed (item = user name, new value = the role).
    #[serde(rename = "user.role")]
    UserRole,
    /// A user deactivated (item = user name). Users are never deleted.
    #[serde(rename = "user.deactivate")]
    UserDeactivated,
    /// An administrator reset a user's password (item = user name).
    #[serde(rename = "user.password_reset")]
    PasswordReset,
    /// A user chose a new password (item = user name).
    #[serde(rename = "user.password_change")]
    PasswordChanged,
    /// Written only by the server: a data change it received for a form under a lock (made
    /// offline before the lock reached that device). Subject, form and item are the held
    /// change's; new value = [`crate::body::Held`]. The change stays in the log, is never a
    /// value, and is listed for the data manager.
    #[serde(rename = "lock.held")]
    LockHeld,
    /// Written only by the server: an approved study definition version reaching a site
    /// (item = the version, new value = [`crate::body::StudyPublished`]: every file's text).
    #[serde(rename = "study.publish")]
    StudyPublished,
    /// Written only by the server: a site switches to a definition version from a date
    /// (item = the version, new value = [`crate::body::SiteActivated`]).
    #[serde(rename = "site.activate")]
    SiteActivated,
    /// A form instance was started under a definition version (subject, form = the instance,
    /// new value = the version). Written with an instance's first values when the version in force
    /// is not the base version; an instance without one is the base version's.
    #[serde(rename = "form.version")]
    FormVersioned,
}

impl ChangeKind {
    /// Every kind, in the order above.
    pub const ALL: [ChangeKind; 24] = [
        ChangeKind::StoreCreated,
        ChangeKind::UserAdded,
        ChangeKind::SubjectCreated,
        ChangeKind::ItemSet,
        ChangeKind::LeaseLoaded,
        ChangeKind::Randomized,
        ChangeKind::DataExported,
        ChangeKind::LoginFailed,
        ChangeKind::QueryRaised,
        ChangeKind::QueryAnswered,
        ChangeKind::QueryClosed,
        ChangeKind::QueryReopened,
        ChangeKind::SdvMarked,
        ChangeKind::Signed,
        ChangeKind::Locked,
        ChangeKind::Unlocked,
        ChangeKind::UserRole,
        ChangeKind::UserDeactivated,
        ChangeKind::PasswordReset,
        ChangeKind::PasswordChanged,
        ChangeKind::LockHeld,
        ChangeKind::StudyPublished,
        ChangeKind::SiteActivated,
        ChangeKind::FormVersioned,
    ];

    /// The kind's name in the log, on the wire and in every hash.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChangeKind::StoreCreated => "store.create",
            ChangeKind::UserAdded => "user.add",
            ChangeKind::SubjectCreated => "subject.create",
            ChangeKind::ItemSet => "item.set",
            ChangeKind::LeaseLoaded => "lease.load",
            ChangeKind::Randomized => "subject.randomize",
            ChangeKind::DataExported => "data.export",
            ChangeKind::LoginFailed => "login.failed",
            ChangeKind::QueryRaised => "query.raise",
            ChangeKind::QueryAnswered => "query.answer",
            ChangeKind::QueryClosed => "query.close",
            ChangeKind::QueryReopened => "query.reopen",
            ChangeKind::SdvMarked => "sdv.mark",
            ChangeKind::Signed => "signature.sign",
            ChangeKind::Locked => "lock.set",
            ChangeKind::Unlocked => "lock.release",
            ChangeKind::UserRole => "user.role",
            ChangeKind::UserDeactivated => "user.deactivate",
            ChangeKind::PasswordReset => "user.password_reset",
            ChangeKind::PasswordChanged => "user.password_change",
            ChangeKind::LockHeld => "lock.held",
            ChangeKind::StudyPublished => "study.publish",
            ChangeKind::SiteActivated => "site.activate",
            ChangeKind::FormVersioned => "form.version",
        }
    }

    /// True for the kinds that create or change a user's account on an administrator's word
    /// (`user.add`, `user.role`, `user.deactivate`, `user.password_reset`): once a laptop has a
    /// server, only the server makes them. A user's own password change is not one.
    pub const fn alters_users(self) -> bool {
        match self {
            ChangeKind::UserAdded
            | ChangeKind::UserRole
            | ChangeKind::UserDeactivated
            | ChangeKind::PasswordReset => true,
            ChangeKind::StoreCreated
            | ChangeKind::SubjectCreated
            | ChangeKind::ItemSet
            | ChangeKind::LeaseLoaded
            | ChangeKind::Randomized
            | ChangeKind::DataExported
            | ChangeKind::LoginFailed
            | ChangeKind::QueryRaised
            | ChangeKind::QueryAnswered
            | ChangeKind::QueryClosed
            | ChangeKind::QueryReopened
            | ChangeKind::SdvMarked
            | ChangeKind::Signed
            | ChangeKind::Locked
            | ChangeKind::Unlocked
            | ChangeKind::PasswordChanged
            | ChangeKind::LockHeld
            | ChangeKind::StudyPublished
            | ChangeKind::SiteActivated
            | ChangeKind::FormVersioned => false,
        }
    }

    /// Every kind's name, comma-separated (for messages).
    pub fn names() -> String {
        ChangeKind::ALL.map(ChangeKind::as_str).join(", ")
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind name this version does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown change kind {0:?} (known: {names})", names = ChangeKind::names())]
pub struct UnknownKind(pub String);

impl FromStr for ChangeKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChangeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_and_names_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for k in ChangeKind::ALL {
            assert_eq!(k.as_str().parse::<ChangeKind>(), Ok(k));
            assert!(seen.insert(k.as_str()), "{k} twice");
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(serde_json::from_str::<ChangeKind>(&json).unwrap(), k);
        }
    }

    #[test]
    fn an_unknown_name_is_refused_naming_it() {
        let e = "made.up".parse::<ChangeKind>().unwrap_err();
        assert!(e.to_string().contains("\"made.up\""), "{e}");
        assert!(e.to_string().contains("item.set"), "{e}");
        assert!(serde_json::from_str::<ChangeKind>("\"made.up\"").is_err());
    }
}
