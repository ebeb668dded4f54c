//! Electronic signatures (21 CFR Part 11 §11.50, §11.70, §11.200): what a signature covers, how
//! it is bound to the exact values it covers, when signing is allowed, and which credentials a
//! signature asks for.
//!
//! Invariants:
//! - A signature stores [`values_hash`] of the subject, its scope and every value it covers. The
//!   subject and scope are inside the hash, so a signature copied onto another record never
//!   verifies, and any later change to a covered value makes the hash differ ("needs re-signing").
//! - The first signature after a login, an unlock or a restart asks for user id and password;
//!   later ones in the same continuous session ask for the password ([`SigningSession`]).

use std::fmt;

use sha2::{Digest, Sha256};

use crate::instance::FormKey;

/// What one signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SignatureScope {
    /// One form instance of the subject.
    Form(FormKey),
    /// The subject's whole casebook.
    Casebook,
}

impl fmt::Display for SignatureScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureScope::Form(key) => write!(f, "{key}"),
            SignatureScope::Casebook => f.write_str("casebook"),
        }
    }
}

impl SignatureScope {
    /// Does a value of form instance `form` fall under this scope?
    pub fn covers(&self, form: &str) -> bool {
        match self {
            SignatureScope::Form(key) => key.to_string() == form,
            SignatureScope::Casebook => true,
        }
    }
}

/// The meanings an investigator may give a signature (§11.50(a)(3)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum SignatureMeaning {
    /// "I approve the data in this form/casebook."
    Approval,
    /// "I have reviewed the data in this form/casebook."
    Review,
}

impl SignatureMeaning {
    /// Every meaning, in the order the signing dialog offers them.
    pub const ALL: [SignatureMeaning; 2] = [SignatureMeaning::Approval, SignatureMeaning::Review];

    /// The statement shown beside the signature, in English and Chinese.
    pub fn statement(self) -> (&'static str, &'static str) {
        match self {
            SignatureMeaning::Approval => (
                "I approve the data in this record",
                "本人确认本记录中的数据",
            ),
            SignatureMeaning::Review => (
                "I have reviewed the data in this record",
                "本人已审阅本记录中的数据",
            ),
        }
    }
}

/// The hash that binds a signature to the values it covers: SHA-256 over the subject, the scope
/// and each `(form instance, item, value)` in sorted order, every field length-prefixed so no
/// two different inputs give the same bytes. `values` are the stored (JSON) texts.
pub fn values_hash<'a>(
    subject: &str,
    scope: &SignatureScope,
    values: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> String {
    let mut rows: Vec<(&str, &str, &str)> = values.into_iter().collect();
    rows.sort_unstable();
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(b"ecrf-signature-v1");
    field(subject.as_bytes());
    field(scope.to_string().as_bytes());
    for (form, item, value) in rows {
        field(form.as_bytes());
        field(item.as_bytes());
        field(value.as_bytes());
    }
    let digest = h.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a signature may not be given now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignRefusal {
    /// Required items are still empty.
    #[error("cannot sign {scope}: required items are empty ({})", .items.join(", "))]
    RequiredEmpty {
        /// What was to be signed.
        scope: String,
        /// `FORM#N.ITEM` of each empty required item.
        items: Vec<String>,
    },
    /// Queries are open on what would be signed.
    #[error("cannot sign {scope}: {count} open quer{} must be closed first", if *.count == 1 { "y" } else { "ies" })]
    OpenQueries {
        /// What was to be signed.
        scope: String,
        /// How many.
        count: usize,
    },
    /// The password was reset by an administrator and not yet changed by its owner.
    #[error("cannot sign: your password was reset by an administrator; choose a new one first")]
    PasswordResetPending,
}

/// Decides whether `scope` may be signed now: nothing required empty, no open query on it,
/// and no pending administrator password reset.
pub fn may_sign(
    scope: &SignatureScope,
    required_empty: &[String],
    open_queries: usize,
    password_reset_pending: bool,
) -> Result<(), SignRefusal> {
    if password_reset_pending {
        return Err(SignRefusal::PasswordResetPending);
    }
    if !required_empty.is_empty() {
        return Err(SignRefusal::RequiredEmpty {
            scope: scope.to_string(),
            items: required_empty.to_vec(),
        });
    }
    if open_queries > 0 {
        return Err(SignRefusal::OpenQueries {
            scope: scope.to_string(),
            count: open_queries,
        });
    }
    Ok(())
}

/// Which components of the signer's credentials a signature asks for (§11.200(a)(1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignCredentials {
    /// User id and password: the first signature of a continuous session.
    UserIdAndPassword,
    /// The password alone: a later signature in the same continuous session.
    Password,
}

/// The continuous session as far as signing is concerned. A new one starts at login, unlock and
/// restart ([`SigningSession::default`] / [`SigningSession::interrupt`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SigningSession {
    signed_once: bool,
}

impl SigningSession {
    /// What the next signature asks for.
    pub fn required(&self) -> SignCredentials {
        if self.signed_once {
            SignCredentials::Password
        } else {
            SignCredentials::UserIdAndPassword
        }
    }

    /// A signature was given with the credentials asked for.
    pub fn signed(&mut self) {
        self.signed_once = true;
    }

    /// The session was interrupted (lock, logout): the next signature asks for both again.
    pub fn interrupt(&mut self) {
        self.signed_once = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(f: &str, n: u32) -> SignatureScope {
        SignatureScope::Form(FormKey {
            form: f.into(),
            repeat: Some(n),
        })
    }

    #[test]
    fn the_hash_changes_with_any_value_subject_or_scope_and_not_with_order() {
        let v = [("DLY#1", "MAP", "\"65\""), ("DLY#1", "LACT", "\"2.1\"")];
        let h = values_hash("07-0001", &form("DLY", 1), v);
        let reordered = values_hash("07-0001", &form("DLY", 1), [v[1], v[0]]);
        assert_eq!(h, reordered);
        let changed = values_hash(
            "07-0001",
            &form("DLY", 1),
            [("DLY#1", "MAP", "\"66\""), v[1]],
        );
        assert_ne!(h, changed);
        assert_ne!(h, values_hash("07-0002", &form("DLY", 1), v));
        assert_ne!(h, values_hash("07-0001", &form("DLY", 2), v));
        assert_ne!(h, values_hash("07-0001", &SignatureScope::Casebook, v));
        // Length prefixes: moving a character between fields changes the hash.
        assert_ne!(
            values_hash("07-0001", &SignatureScope::Casebook, [("A", "BC", "1")]),
            values_hash("07-0001", &SignatureScope::Casebook, [("AB", "C", "1")])
        );
    }

    #[test]
    fn signing_is_refused_while_required_items_are_empty_or_queries_open() {
        let scope = form("DLY", 3);
        let err = may_sign(&scope, &["DLY#3.MAP".into()], 0, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot sign DLY#3: required items are empty (DLY#3.MAP)"
        );
        let err = may_sign(&scope, &[], 2, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot sign DLY#3: 2 open queries must be closed first"
        );
        assert_eq!(
            may_sign(&scope, &[], 0, true),
            Err(SignRefusal::PasswordResetPending)
        );
        assert_eq!(may_sign(&scope, &[], 0, false), Ok(()));
    }

    #[test]
    fn first_signature_of_a_session_asks_for_user_id_and_password_later_ones_the_password() {
        let mut s = SigningSession::default();
        assert_eq!(s.required(), SignCredentials::UserIdAndPassword);
        s.signed();
        assert_eq!(s.required(), SignCredentials::Password);
        s.signed();
        assert_eq!(s.required(), SignCredentials::Password);
        s.interrupt();
        assert_eq!(s.required(), SignCredentials::UserIdAndPassword);
    }

    #[test]
    fn a_casebook_covers_every_form_and_a_form_only_itself() {
        assert!(SignatureScope::Casebook.covers("BAS"));
        assert!(form("DLY", 2).covers("DLY#2"));
        assert!(!form("DLY", 2).covers("DLY#20"));
    }
}
