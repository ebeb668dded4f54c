//! One typed body per change kind: what a change's `new_value` (and `old_value`) hold.
//!
//! Owns the shapes of the bodies and their reading ([`Change::body`]) and writing
//! ([`Body::new_value`]). Invariants: a change keeps the exact text it was hashed with, so a
//! body is read from that text, never re-encoded in place; reading a body never panics, and a
//! body that does not fit its kind is an error naming the change.

use ecrf_core::lock::LockScope;
use ecrf_core::signature::SignatureMeaning;
use ecrf_core::{Role, Value};
use serde::{Deserialize, Serialize};

use crate::change::Change;
use crate::kind::ChangeKind;

/// Body of `store.create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCreated {
    /// The site the store was created for.
    pub site: String,
    /// The store's id.
    pub store_id: String,
}

/// Body of `user.add` (the user name is the change's item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAdded {
    /// Full name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The user's public signing key (64 hex characters); `None` in changes written before
    /// changes were signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// Body of `user.password_reset` and `user.password_change`: the public key of the signing key
/// wrapped in the new slot, when a new key was made with it (a reset always makes one: the
/// administrator cannot unwrap the old). Empty in changes written before changes were signed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBody {
    /// 64 hex characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// One sealed envelope of a `lease.load`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeasedEnvelope {
    /// Envelope id, `01-E0007`.
    pub envelope: String,
    /// Stratum key.
    pub stratum: String,
    /// Position in the stratum's list.
    pub seq: u32,
    /// Block number.
    pub block: u32,
    /// Block size.
    pub block_size: u32,
    /// Hex of the commitment to its arm (`ecrf_randomize::seal::commitment`): all the log shows
    /// of an envelope until it is opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment: Option<String>,
    /// Arm code: only in leases loaded before envelopes were sealed (those logs already showed
    /// it); never written now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
}

/// Body of `subject.randomize`: the envelope (or server slot) opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opened {
    /// Envelope id.
    pub envelope: String,
    /// Arm code.
    pub arm: String,
    /// Subject number given, `01-R0007`.
    pub subject_no: String,
    /// Stratum key.
    pub stratum: String,
    /// The slot came from the server's allocation online, not from an envelope of the device.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub server: bool,
    /// Hex of the envelope's nonce: with the arm it opens the lease's commitment, so anyone can
    /// check the arm recorded is the one sealed (absent for server slots and old leases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// Body of `data.export`: what was exported, where to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exported {
    /// Formats written (`csv`, `stata`…).
    pub formats: Vec<String>,
    /// Forms exported (`all` when every form).
    pub forms: Vec<String>,
    /// The one site exported, if only one.
    pub site: Option<String>,
    /// `store` or `server` (what the data were read from); absent in exports from the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// With the audit trail.
    pub include_audit: bool,
    /// The folder written.
    pub out: String,
    /// Files written.
    pub files: usize,
    /// Subjects exported.
    pub subjects: usize,
}

/// Body of `login.failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFailed {
    /// When the attempt was made (UTC), when the record was readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempted_utc: Option<String>,
    /// What failed, in words.
    pub failed: String,
}

/// Where an `item.set` value came from when it was not typed: a result of a laboratory file
/// (`Change::source`, hashed). `key` identifies the result across files (the same result in a
/// later export is not imported twice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// SHA-256 of the file, hex.
    pub file: String,
    /// Its format (`fhir`, `hl7`, `csv`, `xlsx`).
    pub format: String,
    /// The result's id in the file (FHIR Observation id, HL7 `MSH-10/OBX-1`, a row).
    pub result: String,
    /// The result's identity (`ecrf_lab::plan::result_key`).
    pub key: String,
    /// The value and unit as the file wrote them.
    pub value: String,
    /// The source's unit.
    pub unit: String,
    /// The specimen time as the file wrote it.
    pub taken: String,
}

impl Provenance {
    /// The JSON kept in `Change::source`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The provenance as a person reads it, after "laboratory file" in their language:
    /// `(fhir, SHA-256 1a2b3c4d…) result obs-7: 38 mg/dL @ 2026-03-02 14:00+08:00`.
    pub fn summary(&self) -> String {
        format!(
            "({}, SHA-256 {}…) result {}: {} {} @ {}",
            self.format,
            self.file.get(..8).unwrap_or(&self.file),
            self.result,
            self.value,
            self.unit,
            self.taken
        )
    }

    /// Reads a change's `source`.
    pub fn from_json(s: &str) -> Option<Provenance> {
        serde_json::from_str(s).ok()
    }
}

/// Body of a query step (`query.raise`, `.answer`, `.close`, `.reopen`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryStep {
    /// Query id (the change id of the raise).
    pub query: String,
    /// The question, answer or note.
    pub text: String,
    /// Raised by a save (a soft warning confirmed without a comment), not by a person asking:
    /// part of entering data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto: bool,
}

/// Body of `signature.sign`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// Meaning stated.
    pub meaning: SignatureMeaning,
    /// Signer's printed name.
    pub name: String,
    /// Hash of the values covered ([`ecrf_core::signature::values_hash`]).
    pub values_hash: String,
}

/// Body of `lock.set` and `lock.release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// `site`, `subject` or `form`.
    pub scope: String,
    /// Site code for a site lock.
    pub site: Option<String>,
}

impl Lock {
    /// The scope this lock change names, given the change's subject and form.
    pub fn scope(&self, subject: Option<&str>, form: Option<&str>) -> Option<LockScope> {
        lock_scope(
            &self.scope,
            self.site.clone(),
            subject.map(str::to_string),
            form.map(str::to_string),
        )
    }
}

/// A lock's scope from its kind (`site`, `subject`, `form`) and what it names; `None` when
/// the kind is unknown or a name it needs is missing.
pub fn lock_scope(
    kind: &str,
    site: Option<String>,
    subject: Option<String>,
    form: Option<String>,
) -> Option<LockScope> {
    match kind {
        "site" => site.map(LockScope::Site),
        "subject" => subject.map(LockScope::Subject),
        "form" => Some(LockScope::Form {
            subject: subject?,
            form: form?,
        }),
        _ => None,
    }
}

/// Body of `lock.held`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The change id held back.
    pub change: String,
    /// The lock that covered it, in words (`DLY#1 of 01-D1-0001`).
    pub lock: String,
}

/// Body of `study.publish`: an approved definition version, as the files it is written in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyPublished {
    /// The version (`1.2.0`), as in its `study.toml`.
    pub version: String,
    /// `(path, text)` of `study.toml` and every form file, as `ecrf_core` loads them.
    pub files: Vec<(String, String)>,
    /// SHA-256 (hex) of the files, as `ecrf_core::study::versions::files_sha256` computes it.
    pub sha256: String,
}

impl StudyPublished {
    /// SHA-256 (hex) of a definition's files: each path and text, NUL-terminated, in order.
    pub fn files_sha256(files: &[(String, String)]) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (p, t) in files {
            h.update(p.as_bytes());
            h.update([0]);
            h.update(t.as_bytes());
            h.update([0]);
        }
        hex::encode(h.finalize())
    }
}

/// Body of `site.activate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteActivated {
    /// The site.
    pub site: String,
    /// The version in force from `from`.
    pub version: String,
    /// First day (the site's local date, `YYYY-MM-DD`) the version is in force.
    pub from: String,
}

/// A change's body, typed by its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// `store.create`.
    StoreCreated(StoreCreated),
    /// `user.add`.
    UserAdded(UserAdded),
    /// `subject.create`: the subject's site.
    SubjectCreated {
        /// Site code.
        site: String,
    },
    /// `item.set`: the value before and after (`None` = empty).
    ItemSet {
        /// Before.
        old: Option<Value>,
        /// After.
        new: Option<Value>,
    },
    /// `lease.load`: the envelopes.
    LeaseLoaded(Vec<LeasedEnvelope>),
    /// `subject.randomize`.
    Randomized(Opened),
    /// `data.export`.
    DataExported(Exported),
    /// `login.failed`.
    LoginFailed(LoginFailed),
    /// `query.raise`.
    QueryRaised(QueryStep),
    /// `query.answer`.
    QueryAnswered(QueryStep),
    /// `query.close`.
    QueryClosed(QueryStep),
    /// `query.reopen`.
    QueryReopened(QueryStep),
    /// `sdv.mark`: the value verified.
    SdvMarked {
        /// The value as verified (`None` = empty).
        value: Option<Value>,
    },
    /// `signature.sign`.
    Signed(Signed),
    /// `lock.set`.
    Locked(Lock),
    /// `lock.release`.
    Unlocked(Lock),
    /// `user.role`: the new role.
    UserRole {
        /// Role.
        role: Role,
    },
    /// `user.deactivate`.
    UserDeactivated,
    /// `user.password_reset`.
    PasswordReset(KeyBody),
    /// `user.password_change`.
    PasswordChanged(KeyBody),
    /// `lock.held`.
    LockHeld(Held),
    /// `study.publish`.
    StudyPublished(StudyPublished),
    /// `site.activate`.
    SiteActivated(SiteActivated),
    /// `form.version`: the version an instance is entered under.
    FormVersioned {
        /// The version.
        version: String,
    },
}

/// A body that does not fit its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{change}: its body does not fit {kind}: {why}")]
pub struct BodyError {
    /// The change, described.
    pub change: String,
    /// Its kind.
    pub kind: ChangeKind,
    /// What is wrong.
    pub why: String,
}

impl Body {
    /// The kind this body belongs to.
    pub fn kind(&self) -> ChangeKind {
        match self {
            Body::StoreCreated(_) => ChangeKind::StoreCreated,
            Body::UserAdded(_) => ChangeKind::UserAdded,
            Body::SubjectCreated { .. } => ChangeKind::SubjectCreated,
            Body::ItemSet { .. } => ChangeKind::ItemSet,
            Body::LeaseLoaded(_) => ChangeKind::LeaseLoaded,
            Body::Randomized(_) => ChangeKind::Randomized,
            Body::DataExported(_) => ChangeKind::DataExported,
            Body::LoginFailed(_) => ChangeKind::LoginFailed,
            Body::QueryRaised(_) => ChangeKind::QueryRaised,
            Body::QueryAnswered(_) => ChangeKind::QueryAnswered,
            Body::QueryClosed(_) => ChangeKind::QueryClosed,
            Body::QueryReopened(_) => ChangeKind::QueryReopened,
            Body::SdvMarked { .. } => ChangeKind::SdvMarked,
            Body::Signed(_) => ChangeKind::Signed,
            Body::Locked(_) => ChangeKind::Locked,
            Body::Unlocked(_) => ChangeKind::Unlocked,
            Body::UserRole { .. } => ChangeKind::UserRole,
            Body::UserDeactivated => ChangeKind::UserDeactivated,
            Body::PasswordReset(_) => ChangeKind::PasswordReset,
            Body::PasswordChanged(_) => ChangeKind::PasswordChanged,
            Body::LockHeld(_) => ChangeKind::LockHeld,
            Body::StudyPublished(_) => ChangeKind::StudyPublished,
            Body::SiteActivated(_) => ChangeKind::SiteActivated,
            Body::FormVersioned { .. } => ChangeKind::FormVersioned,
        }
    }

    /// The text a new change of this body carries as `new_value` (for `item.set`, the new
    /// value; its old value is the change's `old_value`).
    pub fn new_value(&self) -> Option<String> {
        fn json<T: Serialize>(t: &T) -> Option<String> {
            // Plain structs of strings, numbers and enums: serializing them cannot fail.
            serde_json::to_string(t).ok()
        }
        match self {
            Body::StoreCreated(b) => json(b),
            Body::UserAdded(b) => json(b),
            Body::SubjectCreated { site } => Some(site.clone()),
            Body::ItemSet { new, .. } => new.as_ref().map(Value::to_json),
            Body::LeaseLoaded(b) => json(b),
            Body::Randomized(b) => json(b),
            Body::DataExported(b) => json(b),
            Body::LoginFailed(b) => json(b),
            Body::QueryRaised(b)
            | Body::QueryAnswered(b)
            | Body::QueryClosed(b)
            | Body::QueryReopened(b) => json(b),
            Body::SdvMarked { value } => value.as_ref().map(Value::to_json),
            Body::Signed(b) => json(b),
            Body::Locked(b) | Body::Unlocked(b) => json(b),
            Body::UserRole { role } => Some(role.as_str().to_string()),
            Body::UserDeactivated => None,
            // Written as before signing existed when there is no key: the same text, hash.
            Body::PasswordReset(k) | Body::PasswordChanged(k) => {
                k.public_key.as_ref().and_then(|_| json(k))
            }
            Body::LockHeld(b) => json(b),
            Body::StudyPublished(b) => json(b),
            Body::SiteActivated(b) => json(b),
            Body::FormVersioned { version } => Some(version.clone()),
        }
    }
}

impl Change {
    /// The change's body, read from the text it was hashed with.
    pub fn body(&self) -> Result<Body, BodyError> {
        let bad = |why: String| BodyError {
            change: self.describe(),
            kind: self.kind,
            why,
        };
        let text = || self.new_value.as_deref().unwrap_or_default();
        fn json<'a, T: Deserialize<'a>>(s: &'a str) -> Result<T, String> {
            serde_json::from_str(s).map_err(|e| e.to_string())
        }
        let value = |v: &Option<String>| -> Result<Option<Value>, String> {
            v.as_deref()
                .map(Value::from_json)
                .transpose()
                .map_err(|e| e.to_string())
        };
        let key_body = || match self.new_value.as_deref() {
            None => Ok(KeyBody::default()),
            Some(t) => json(t),
        };
        let body = match self.kind {
            ChangeKind::StoreCreated => json(text()).map(Body::StoreCreated),
            ChangeKind::UserAdded => json(text()).map(Body::UserAdded),
            ChangeKind::SubjectCreated => Ok(Body::SubjectCreated {
                site: text().to_string(),
            }),
            ChangeKind::ItemSet => value(&self.old_value)
                .and_then(|old| Ok((old, value(&self.new_value)?)))
                .map(|(old, new)| Body::ItemSet { old, new }),
            ChangeKind::LeaseLoaded => json(text()).map(Body::LeaseLoaded),
            ChangeKind::Randomized => json(text()).map(Body::Randomized),
            ChangeKind::DataExported => json(text()).map(Body::DataExported),
            ChangeKind::LoginFailed => json(text()).map(Body::LoginFailed),
            ChangeKind::QueryRaised => json(text()).map(Body::QueryRaised),
            ChangeKind::QueryAnswered => json(text()).map(Body::QueryAnswered),
            ChangeKind::QueryClosed => json(text()).map(Body::QueryClosed),
            ChangeKind::QueryReopened => json(text()).map(Body::QueryReopened),
            ChangeKind::SdvMarked => value(&self.new_value).map(|value| Body::SdvMarked { value }),
            ChangeKind::Signed => json(text()).map(Body::Signed),
            ChangeKind::Locked => json(text()).map(Body::Locked),
            ChangeKind::Unlocked => json(text()).map(Body::Unlocked),
            ChangeKind::UserRole => text()
                .parse::<Role>()
                .map(|role| Body::UserRole { role })
                .map_err(|e| e.to_string()),
            ChangeKind::UserDeactivated => Ok(Body::UserDeactivated),
            ChangeKind::PasswordReset => key_body().map(Body::PasswordReset),
            ChangeKind::PasswordChanged => key_body().map(Body::PasswordChanged),
            ChangeKind::LockHeld => json(text()).map(Body::LockHeld),
            ChangeKind::StudyPublished => json(text()).map(Body::StudyPublished),
            ChangeKind::SiteActivated => json(text()).map(Body::SiteActivated),
            ChangeKind::FormVersioned => match text() {
                "" => Err("no version".to_string()),
                v => Ok(Body::FormVersioned {
                    version: v.to_string(),
                }),
            },
        };
        body.map_err(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::tests::change;

    #[test]
    fn every_body_reads_back_what_it_wrote() {
        let step = QueryStep {
            query: "q1".into(),
            text: "Why?".into(),
            auto: false,
        };
        let lock = Lock {
            scope: "form".into(),
            site: None,
        };
        let bodies = [
            Body::StoreCreated(StoreCreated {
                site: "01".into(),
                store_id: "s".into(),
            }),
            Body::UserAdded(UserAdded {
                name: "李娜".into(),
                role: Role::Nurse,
                public_key: Some("ab".repeat(32)),
            }),
            Body::SubjectCreated { site: "01".into() },
            Body::ItemSet {
                old: None,
                new: Some(Value::Int(72)),
            },
            Body::LeaseLoaded(vec![LeasedEnvelope {
                envelope: "01-E0001".into(),
                stratum: "01".into(),
                seq: 1,
                block: 1,
                block_size: 4,
                commitment: Some("ab".repeat(32)),
                arm: None,
            }]),
            Body::Randomized(Opened {
                envelope: "01-E0001".into(),
                arm: "ECMO".into(),
                subject_no: "01-R0001".into(),
                stratum: "01".into(),
                server: false,
                nonce: Some("cd".repeat(32)),
            }),
            Body::DataExported(Exported {
                formats: vec!["csv".into()],
                forms: vec!["all".into()],
                site: None,
                source: Some("store".into()),
                include_audit: true,
                out: "/tmp/x".into(),
                files: 3,
                subjects: 2,
            }),
            Body::LoginFailed(LoginFailed {
                attempted_utc: None,
                failed: "unreadable record".into(),
            }),
            Body::QueryRaised(step.clone()),
            Body::QueryAnswered(step.clone()),
            Body::QueryClosed(step.clone()),
            Body::QueryReopened(step),
            Body::SdvMarked {
                value: Some(Value::Code("RUNNING".into())),
            },
            Body::Signed(Signed {
                meaning: SignatureMeaning::Review,
                name: "Dr Wang".into(),
                values_hash: "ab".into(),
            }),
            Body::Locked(lock.clone()),
            Body::Unlocked(lock),
            Body::UserRole {
                role: Role::DataManager,
            },
            Body::UserDeactivated,
            Body::PasswordReset(KeyBody {
                public_key: Some("cd".repeat(32)),
            }),
            Body::PasswordChanged(KeyBody::default()),
            Body::LockHeld(Held {
                change: "c9".into(),
                lock: "DLY#1 of 01-0001".into(),
            }),
            Body::StudyPublished(StudyPublished {
                version: "1.2.0".into(),
                files: vec![("study/study.toml".into(), "id = \"X\"".into())],
                sha256: "ef".repeat(32),
            }),
            Body::SiteActivated(SiteActivated {
                site: "01".into(),
                version: "1.2.0".into(),
                from: "2026-05-01".into(),
            }),
            Body::FormVersioned {
                version: "1.2.0".into(),
            },
        ];
        let kinds: Vec<ChangeKind> = bodies.iter().map(Body::kind).collect();
        assert_eq!(kinds, ChangeKind::ALL, "one body per kind, in order");
        for b in bodies {
            let c = change(b.kind(), None, b.new_value().as_deref());
            assert_eq!(c.body().unwrap(), b, "{}", b.kind());
        }
    }

    #[test]
    fn a_body_that_does_not_fit_names_the_change_and_kind() {
        let c = change(ChangeKind::Signed, None, Some("{\"meaning\":1}"));
        let e = c.body().unwrap_err();
        assert_eq!(e.kind, ChangeKind::Signed);
        assert!(e.to_string().contains("signature.sign"), "{e}");
        let c = change(ChangeKind::UserRole, None, Some("captain"));
        assert!(c.body().is_err());
        let c = change(ChangeKind::ItemSet, Some("not json"), None);
        assert!(c.body().is_err());
    }
}
