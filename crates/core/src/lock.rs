//! Locks: a data manager locks a form instance, a subject's casebook or a whole site, with a
//! reason; nothing under a lock may be changed by anyone until it is unlocked.
//!
//! Invariant: [`Locks::covering`] is the one test of whether a value may change; the store, the
//! app and the server all ask it (a change made offline before the lock arrived is then a
//! conflict for the data manager, never applied silently).

use std::collections::BTreeSet;
use std::fmt;

/// What a lock covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockScope {
    /// Every subject of a site.
    Site(String),
    /// One subject's casebook.
    Subject(String),
    /// One form instance (`DLY#3`) of one subject.
    Form {
        /// Subject number.
        subject: String,
        /// Form instance, like `DLY#3`.
        form: String,
    },
}

impl fmt::Display for LockScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockScope::Site(s) => write!(f, "site {s}"),
            LockScope::Subject(s) => write!(f, "casebook {s}"),
            LockScope::Form { subject, form } => write!(f, "{form} of {subject}"),
        }
    }
}

/// The locks in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locks {
    held: BTreeSet<LockScope>,
}

/// Why a lock or unlock was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// Already locked.
    #[error("{0} is already locked")]
    AlreadyLocked(LockScope),
    /// Not locked.
    #[error("{0} is not locked")]
    NotLocked(LockScope),
    /// No reason given.
    #[error("locking or unlocking {0} needs a reason")]
    NoReason(LockScope),
    /// A change under a lock.
    #[error("{item} of {form} of {subject} cannot change: {scope} is locked")]
    Locked {
        /// Subject.
        subject: String,
        /// Form instance.
        form: String,
        /// Item.
        item: String,
        /// The lock that covers it.
        scope: LockScope,
    },
}

impl Locks {
    /// Takes a lock.
    pub fn lock(&mut self, scope: LockScope, reason: &str) -> Result<(), LockError> {
        if reason.trim().is_empty() {
            return Err(LockError::NoReason(scope));
        }
        if self.held.contains(&scope) {
            return Err(LockError::AlreadyLocked(scope));
        }
        self.held.insert(scope);
        Ok(())
    }

    /// Releases a lock.
    pub fn unlock(&mut self, scope: &LockScope, reason: &str) -> Result<(), LockError> {
        if reason.trim().is_empty() {
            return Err(LockError::NoReason(scope.clone()));
        }
        if !self.held.remove(scope) {
            return Err(LockError::NotLocked(scope.clone()));
        }
        Ok(())
    }

    /// The lock, if any, that covers `form` of `subject` at `site` (the widest first).
    pub fn covering(&self, site: &str, subject: &str, form: &str) -> Option<&LockScope> {
        self.held.iter().find(|scope| match scope {
            LockScope::Site(s) => s == site,
            LockScope::Subject(s) => s == subject,
            LockScope::Form {
                subject: s,
                form: f,
            } => s == subject && f == form,
        })
    }

    /// Every scope locked now.
    pub fn scopes(&self) -> impl Iterator<Item = &LockScope> {
        self.held.iter()
    }

    /// `Ok` when `item` of `form` of `subject` may change, else the lock that forbids it.
    pub fn check_change(
        &self,
        site: &str,
        subject: &str,
        form: &str,
        item: &str,
    ) -> Result<(), LockError> {
        match self.covering(site, subject, form) {
            None => Ok(()),
            Some(scope) => Err(LockError::Locked {
                subject: subject.into(),
                form: form.into(),
                item: item.into(),
                scope: scope.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_covers_its_form_casebook_or_site_and_nothing_else() {
        let mut locks = Locks::default();
        locks
            .lock(
                LockScope::Form {
                    subject: "07-0001".into(),
                    form: "DLY#2".into(),
                },
                "cleaned",
            )
            .unwrap();
        assert!(locks.check_change("07", "07-0001", "DLY#2", "MAP").is_err());
        assert!(locks.check_change("07", "07-0001", "DLY#3", "MAP").is_ok());
        assert!(locks.check_change("07", "07-0002", "DLY#2", "MAP").is_ok());
        locks
            .lock(LockScope::Subject("07-0002".into()), "casebook done")
            .unwrap();
        assert_eq!(
            locks
                .check_change("07", "07-0002", "BAS", "AGE")
                .unwrap_err()
                .to_string(),
            "AGE of BAS of 07-0002 cannot change: casebook 07-0002 is locked"
        );
        locks.lock(LockScope::Site("08".into()), "interim").unwrap();
        assert!(locks.check_change("08", "08-0001", "BAS", "AGE").is_err());
        assert!(locks.check_change("07", "07-0003", "BAS", "AGE").is_ok());
    }

    #[test]
    fn locking_and_unlocking_need_a_reason_and_the_right_state() {
        let mut locks = Locks::default();
        let site = LockScope::Site("07".into());
        assert_eq!(
            locks.lock(site.clone(), " "),
            Err(LockError::NoReason(site.clone()))
        );
        locks.lock(site.clone(), "database lock").unwrap();
        assert_eq!(
            locks.lock(site.clone(), "again"),
            Err(LockError::AlreadyLocked(site.clone()))
        );
        locks.unlock(&site, "late query").unwrap();
        assert_eq!(
            locks.unlock(&site, "again"),
            Err(LockError::NotLocked(site.clone()))
        );
        assert!(locks.check_change("07", "07-0001", "BAS", "AGE").is_ok());
    }
}
