//! The projection rules over memory: a site's log folded into what it says now — subjects,
//! each item's heads and the value shown, users, signatures and locks.
//!
//! Rules (the same the laptop's store applies in SQL at save and sync time): subjects come from
//! `subject.create` (first one wins); an item's heads are the values no later change names in
//! its `base` (a change without `base` replaces whatever the item held); the value shown is the
//! head with the greatest change id, none when that head cleared it; two heads or more are a
//! conflict; users come from `user.add` of every device and their later role changes; a
//! signature holds while the values of its scope hash as when it was signed; a lock holds from
//! `lock.set` until the matching `lock.release`; a query is open from `query.raise` and takes the
//! state of each later step that names it; a device's envelopes come from its `lease.load` and
//! are opened by its own `subject.randomize`, which records the arm (a slot taken from the server online opens none, and
//! an opening that names no sealed envelope of its device changes nothing: the server flags it).
//! Invariant: folding is a pure function of the changes in the order given.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ecrf_core::query::QueryState;
use ecrf_core::signature::{SignatureScope, values_hash};
use ecrf_core::{FormKey, Role, Value};

use crate::body::{Body, BodyError, Lock, Signed};
use crate::change::Change;
use crate::kind::ChangeKind;
use crate::record::{Query, Signature};

/// `(subject, form instance, item)`.
pub type ItemKey = (String, String, String);

/// An item's values that no later change replaced, sorted by change id: (change id, value as
/// JSON; `None` = cleared). Almost every item has one head: a vector of one is one small
/// allocation where a map would take a node of eleven slots for each of millions of items.
pub type Heads = Vec<(String, Option<String>)>;

/// A subject and its site (from `subject.create`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectedSubject {
    /// Subject number.
    pub subject: String,
    /// Site code.
    pub site: String,
}

/// A user as the log describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectedUser {
    /// Full name.
    pub name: String,
    /// Current role.
    pub role: Role,
    /// False once deactivated.
    pub active: bool,
}

/// A lock in force: its body, subject and form as the `lock.set` named them, and its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectedLock {
    /// `site`, `subject` or `form`, and the site for a site lock.
    pub lock: Lock,
    /// Subject (subject and form locks).
    pub subject: Option<String>,
    /// Form instance (form locks).
    pub form: Option<String>,
    /// Why.
    pub reason: String,
}

/// A sealed envelope leased to a device, and the subject it was opened for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectedEnvelope {
    /// The device that holds it.
    pub device: String,
    /// The lease it came in (the `lease.load` change's item).
    pub lease: String,
    /// Stratum key.
    pub stratum: String,
    /// Position in the stratum's list.
    pub seq: u32,
    /// Hex of the commitment to its arm (none in leases loaded before envelopes were sealed).
    pub commitment: Option<String>,
    /// Arm code, known once opened (the opening records it); none while sealed, except in
    /// leases loaded before envelopes were sealed.
    pub arm: Option<String>,
    /// The subject it was opened for; none while sealed.
    pub subject: Option<String>,
}

/// What a log says now.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    /// Subjects in order of creation.
    pub subjects: Vec<ProjectedSubject>,
    /// Each item's heads (changed only by [`Projection::apply`]: the conflict set follows it).
    pub heads: BTreeMap<ItemKey, Heads>,
    /// Users by login name.
    pub users: BTreeMap<String, ProjectedUser>,
    /// Signing events in order, with their bodies (see [`Projection::signatures`]).
    signed: Vec<(Change, Signed)>,
    /// Locks in force by scope key.
    pub locks: BTreeMap<String, ProjectedLock>,
    /// Queries by id (the change id of the raise).
    pub queries: BTreeMap<String, Query>,
    /// Envelopes by id.
    pub envelopes: BTreeMap<String, ProjectedEnvelope>,
    /// Definition versions received, by version (the first `study.publish` of a version wins:
    /// a version never changes once approved).
    pub versions: BTreeMap<String, crate::body::StudyPublished>,
    /// The version each form instance was started under, by (subject, instance); absent =
    /// the base version. The first `form.version` of an instance wins.
    pub instance_versions: BTreeMap<(String, String), String>,
    superseded: HashSet<String>,
    subject_seen: HashSet<String>,
    /// Items with two heads or more, kept by [`Projection::apply`] so that counting conflicts
    /// does not walk every item (5 million in a 10× trial).
    conflicted: BTreeSet<ItemKey>,
}

/// A change the fold cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectError {
    /// Its body does not fit its kind.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// Its `base` is not a list of change ids.
    #[error("{0}: its base is not a list of ids: {1}")]
    Base(String, String),
    /// A stored value cannot be read.
    #[error("{0} {1} {2}: stored value is unreadable: {3}")]
    Value(String, String, String, String),
}

impl Projection {
    /// Folds one change in.
    pub fn apply(&mut self, c: &Change) -> Result<(), ProjectError> {
        match c.kind {
            ChangeKind::SubjectCreated => {
                let Some(subject) = c.subject.clone() else {
                    return Ok(());
                };
                if self.subject_seen.insert(subject.clone()) {
                    self.subjects.push(ProjectedSubject {
                        subject,
                        site: c.new_value.clone().unwrap_or_default(),
                    });
                }
            }
            ChangeKind::ItemSet => {
                // The ids this change replaces; a save's usual `[]` is not parsed.
                let replaced: Vec<String> = match c.base.as_deref() {
                    None | Some("[]") => Vec::new(),
                    Some(b) => serde_json::from_str(b)
                        .map_err(|e| ProjectError::Base(c.describe(), e.to_string()))?,
                };
                let key = (
                    c.subject.clone().unwrap_or_default(),
                    c.form.clone().unwrap_or_default(),
                    c.item.clone().unwrap_or_default(),
                );
                // One lookup of the item (its key is built once); the conflict set is touched
                // only when the item has or had two heads.
                match self.heads.entry(key) {
                    Entry::Vacant(v) => {
                        self.superseded.extend(replaced);
                        let mut item_heads = Heads::new();
                        if !self.superseded.contains(&c.change_id) {
                            item_heads.push((c.change_id.clone(), c.new_value.clone()));
                        }
                        v.insert(item_heads);
                    }
                    Entry::Occupied(mut o) => {
                        let item_heads = o.get_mut();
                        if c.base.is_none() {
                            self.superseded
                                .extend(item_heads.drain(..).map(|(id, _)| id));
                        }
                        for id in replaced {
                            if let Some(i) = item_heads.iter().position(|(h, _)| *h == id) {
                                item_heads.remove(i);
                            }
                            self.superseded.insert(id);
                        }
                        if !self.superseded.contains(&c.change_id) {
                            let value = c.new_value.clone();
                            match item_heads.binary_search_by(|(h, _)| h.cmp(&c.change_id)) {
                                Ok(i) => item_heads[i].1 = value,
                                Err(i) => item_heads.insert(i, (c.change_id.clone(), value)),
                            }
                        }
                        if o.get().len() > 1 {
                            self.conflicted.insert(o.key().clone());
                        } else if !self.conflicted.is_empty() {
                            self.conflicted.remove(o.key());
                        }
                    }
                }
            }
            ChangeKind::UserAdded => {
                let Body::UserAdded(added) = c.body()? else {
                    return Ok(());
                };
                self.users.insert(
                    c.item.clone().unwrap_or_default(),
                    ProjectedUser {
                        name: added.name,
                        role: added.role,
                        active: true,
                    },
                );
            }
            ChangeKind::UserRole => {
                if let Body::UserRole { role } = c.body()?
                    && let Some(u) = c.item.as_deref().and_then(|n| self.users.get_mut(n))
                {
                    u.role = role;
                }
            }
            ChangeKind::UserDeactivated => {
                if let Some(u) = c.item.as_deref().and_then(|n| self.users.get_mut(n)) {
                    u.active = false;
                }
            }
            ChangeKind::Signed => {
                if let Body::Signed(body) = c.body()? {
                    self.signed.push((c.clone(), body));
                }
            }
            ChangeKind::Locked | ChangeKind::Unlocked => {
                let (Body::Locked(lock) | Body::Unlocked(lock)) = c.body()? else {
                    return Ok(());
                };
                let key = lock_key(&lock, c.subject.as_deref(), c.form.as_deref());
                if c.kind == ChangeKind::Locked {
                    self.locks.insert(
                        key,
                        ProjectedLock {
                            lock,
                            subject: c.subject.clone(),
                            form: c.form.clone(),
                            reason: c.reason.clone().unwrap_or_default(),
                        },
                    );
                } else {
                    self.locks.remove(&key);
                }
            }
            ChangeKind::QueryRaised => {
                if let Body::QueryRaised(q) = c.body()? {
                    self.queries.insert(
                        q.query.clone(),
                        Query {
                            id: q.query,
                            subject: c.subject.clone().unwrap_or_default(),
                            form: c.form.clone().unwrap_or_default(),
                            item: c.item.clone().unwrap_or_default(),
                            state: QueryState::Open,
                            text: q.text,
                            raised_by: c.user.clone(),
                            raised_utc: c.utc.clone(),
                        },
                    );
                }
            }
            ChangeKind::QueryAnswered => self.step_query(c, QueryState::Answered)?,
            ChangeKind::QueryClosed => self.step_query(c, QueryState::Closed)?,
            ChangeKind::QueryReopened => self.step_query(c, QueryState::Open)?,
            ChangeKind::LeaseLoaded => {
                if let Body::LeaseLoaded(list) = c.body()? {
                    for e in list {
                        self.envelopes.insert(
                            e.envelope,
                            ProjectedEnvelope {
                                device: c.device.clone(),
                                lease: c.item.clone().unwrap_or_default(),
                                stratum: e.stratum,
                                seq: e.seq,
                                commitment: e.commitment,
                                arm: e.arm,
                                subject: None,
                            },
                        );
                    }
                }
            }
            ChangeKind::Randomized => {
                if let Body::Randomized(o) = c.body()?
                    && !o.server
                    && let Some(e) = self.envelopes.get_mut(&o.envelope)
                    && e.device == c.device
                    && e.subject.is_none()
                {
                    e.subject = c.subject.clone();
                    e.arm = Some(o.arm);
                }
            }
            // Kept in the log as audit; nothing of theirs is a value, user, signature, lock,
            // query or envelope.
            ChangeKind::StoreCreated
            | ChangeKind::DataExported
            | ChangeKind::LoginFailed
            | ChangeKind::SdvMarked
            | ChangeKind::PasswordReset
            | ChangeKind::PasswordChanged
            | ChangeKind::LockHeld
            // Which version a site uses decides how saves are checked, never what the data
            // say: exports read each instance's own version (`form.version`).
            | ChangeKind::SiteActivated => {}
            ChangeKind::StudyPublished => {
                if let Body::StudyPublished(p) = c.body()? {
                    self.versions.entry(p.version.clone()).or_insert(p);
                }
            }
            ChangeKind::FormVersioned => {
                if let (Body::FormVersioned { version }, Some(subject), Some(form)) =
                    (c.body()?, c.subject.clone(), c.form.clone())
                {
                    self.instance_versions
                        .entry((subject, form))
                        .or_insert(version);
                }
            }
        }
        Ok(())
    }

    /// A query's answer, close or reopen: the query it names takes `state`.
    fn step_query(&mut self, c: &Change, state: QueryState) -> Result<(), ProjectError> {
        if let Body::QueryAnswered(step) | Body::QueryClosed(step) | Body::QueryReopened(step) =
            c.body()?
            && let Some(q) = self.queries.get_mut(&step.query)
        {
            q.state = state;
        }
        Ok(())
    }

    /// Folds a whole log, in the order given.
    pub fn of<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Result<Self, ProjectError> {
        let mut p = Projection::default();
        for c in changes {
            p.apply(c)?;
        }
        Ok(p)
    }

    /// The value shown of each item that has one: the head with the greatest change id (none
    /// when that head cleared it), as stored (JSON of the value).
    pub fn shown(&self) -> BTreeMap<ItemKey, String> {
        self.heads
            .iter()
            .filter_map(|(k, h)| shown_of(h).map(|v| (k.clone(), v.to_string())))
            .collect()
    }

    /// The values shown, read: subject → form instance → item → value.
    ///
    /// Walks the heads in their (subject, instance, item) order and builds each map from its
    /// sorted entries; a log's half a million values are a few thousand distinct JSON texts,
    /// each read once.
    #[allow(clippy::type_complexity)]
    pub fn values(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>>, ProjectError> {
        let mut read: HashMap<&str, Value> = HashMap::new();
        let mut subjects: Vec<(String, BTreeMap<String, BTreeMap<String, Value>>)> = Vec::new();
        let mut forms: Vec<(String, BTreeMap<String, Value>)> = Vec::new();
        let mut items: Vec<(String, Value)> = Vec::new();
        let mut at: Option<(&str, &str)> = None;
        for ((subject, form, item), heads) in &self.heads {
            let Some(json) = shown_of(heads) else {
                continue;
            };
            let value = match read.get(json) {
                Some(v) => v.clone(),
                None => {
                    let v = Value::from_json(json).map_err(|e| {
                        ProjectError::Value(
                            subject.clone(),
                            form.clone(),
                            item.clone(),
                            e.to_string(),
                        )
                    })?;
                    read.insert(json, v.clone());
                    v
                }
            };
            match at {
                Some((s, f)) if s == subject && f == form => {}
                Some((s, f)) => {
                    forms.push((f.to_string(), items.drain(..).collect()));
                    if s != subject {
                        subjects.push((s.to_string(), forms.drain(..).collect()));
                    }
                    at = Some((subject, form));
                }
                None => at = Some((subject, form)),
            }
            items.push((item.clone(), value));
        }
        if let Some((s, f)) = at {
            forms.push((f.to_string(), items.into_iter().collect()));
            subjects.push((s.to_string(), forms.into_iter().collect()));
        }
        Ok(subjects.into_iter().collect())
    }

    /// One subject's values shown, read: form instance → item → value (a range of the
    /// heads, so a page of one subject costs no more than its own items).
    pub fn subject_values(
        &self,
        subject: &str,
    ) -> Result<BTreeMap<String, BTreeMap<String, Value>>, ProjectError> {
        let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        let from = (subject.to_string(), String::new(), String::new());
        for ((s, form, item), heads) in self.heads.range(from..) {
            if s != subject {
                break;
            }
            let Some(json) = shown_of(heads) else {
                continue;
            };
            let value = Value::from_json(json).map_err(|e| {
                ProjectError::Value(s.clone(), form.clone(), item.clone(), e.to_string())
            })?;
            out.entry(form.clone())
                .or_default()
                .insert(item.clone(), value);
        }
        Ok(out)
    }

    /// [`Projection::signatures`] of one subject only (reads only that subject's items).
    pub fn subject_signatures(&self, subject: &str) -> Result<Vec<Signature>, ProjectError> {
        self.signed
            .iter()
            .filter(|(c, _)| c.subject.as_deref() == Some(subject))
            .map(|(c, body)| signature(c, body, &self.heads))
            .collect()
    }

    /// Items with two heads or more (two devices changed them without seeing each other).
    pub fn conflicts(&self) -> impl Iterator<Item = (&ItemKey, &Heads)> {
        self.conflicted
            .iter()
            .filter_map(|k| self.heads.get_key_value(k))
    }

    /// Every signature in signing order, each valid while the values of its scope hash as
    /// when it was signed (each reads only the items of its scope).
    pub fn signatures(&self) -> Result<Vec<Signature>, ProjectError> {
        self.signed
            .iter()
            .map(|(c, body)| signature(c, body, &self.heads))
            .collect()
    }
}

/// The key a lock is held under: one lock per scope.
pub fn lock_key(lock: &Lock, subject: Option<&str>, form: Option<&str>) -> String {
    format!(
        "{}:{}:{}:{}",
        lock.scope,
        lock.site.as_deref().unwrap_or_default(),
        subject.unwrap_or_default(),
        form.unwrap_or_default()
    )
}

/// The value shown of an item: its head with the greatest change id, none when that head
/// cleared it.
fn shown_of(heads: &Heads) -> Option<&str> {
    heads.last().and_then(|(_, v)| v.as_deref())
}

/// A signing event as a signature, valid while the values shown of its scope (a form instance's
/// items, or all of the subject's for a casebook) hash as the signer saw them.
fn signature(
    c: &Change,
    body: &Signed,
    heads: &BTreeMap<ItemKey, Heads>,
) -> Result<Signature, ProjectError> {
    let subject = c.subject.clone().unwrap_or_default();
    let scope_text = c.form.clone().unwrap_or_default();
    let scope = if scope_text == "casebook" {
        SignatureScope::Casebook
    } else {
        let (form, repeat) = match scope_text.split_once('#') {
            Some((f, n)) => (
                f,
                Some(n.parse::<u32>().map_err(|e| {
                    ProjectError::Body(BodyError {
                        change: c.describe(),
                        kind: c.kind,
                        why: format!("scope {scope_text}: {e}"),
                    })
                })?),
            ),
            None => (scope_text.as_str(), None),
        };
        SignatureScope::Form(FormKey {
            form: form.to_string(),
            repeat,
        })
    };
    let casebook = scope_text == "casebook";
    // A form instance's items are one range of the heads; a casebook's, the subject's range.
    let from = if casebook {
        String::new()
    } else {
        scope_text.clone()
    };
    let covered = heads
        .range((subject.clone(), from, String::new())..)
        .take_while(|((s, f, _), _)| *s == subject && (casebook || *f == scope_text))
        .filter_map(|((_, f, i), h)| Some((f.as_str(), i.as_str(), shown_of(h)?)));
    let valid = values_hash(&subject, &scope, covered) == body.values_hash;
    Ok(Signature {
        id: c.change_id.clone(),
        subject,
        scope: scope_text,
        meaning: body.meaning,
        signer: c.user.clone(),
        name: body.name.clone(),
        utc: c.utc.clone(),
        local_offset: c.local_offset.clone(),
        valid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::tests::change;

    fn set(id: &str, item: &str, value: Option<&str>, base: Option<&[&str]>) -> Change {
        let mut c = change(ChangeKind::ItemSet, None, value);
        c.change_id = id.into();
        c.subject = Some("01-0001".into());
        c.form = Some("DLY#1".into());
        c.item = Some(item.into());
        c.base = base.map(|b| serde_json::to_string(b).unwrap());
        c
    }

    #[test]
    fn heads_conflicts_and_their_resolution() {
        let log = [
            set("a1", "MAP", Some("{\"int\":60}"), Some(&[])),
            // Two devices each replace a1 without seeing each other: a conflict.
            set("b1", "MAP", Some("{\"int\":61}"), Some(&["a1"])),
            set("c1", "MAP", Some("{\"int\":62}"), Some(&["a1"])),
        ];
        let p = Projection::of(&log).unwrap();
        assert_eq!(p.conflicts().count(), 1);
        let key = ("01-0001".into(), "DLY#1".into(), "MAP".into());
        // The greatest change id is shown.
        assert_eq!(p.shown()[&key], "{\"int\":62}");
        let mut resolved = log.to_vec();
        resolved.push(set("d1", "MAP", Some("{\"int\":61}"), Some(&["b1", "c1"])));
        let p = Projection::of(&resolved).unwrap();
        assert_eq!(p.conflicts().count(), 0);
        assert_eq!(p.shown()[&key], "{\"int\":61}");
        // A clear hides the value; a change without base replaces every head.
        let mut cleared = resolved.clone();
        cleared.push(set("e1", "MAP", None, None));
        assert!(!Projection::of(&cleared).unwrap().shown().contains_key(&key));
    }

    #[test]
    fn users_roles_and_locks_follow_the_log() {
        let mut add = change(
            ChangeKind::UserAdded,
            None,
            Some(r#"{"name":"Li Na","role":"nurse"}"#),
        );
        add.item = Some("li".into());
        let mut role = change(ChangeKind::UserRole, None, Some("investigator"));
        role.item = Some("li".into());
        let mut lock = change(
            ChangeKind::Locked,
            None,
            Some(r#"{"scope":"site","site":"01"}"#),
        );
        lock.reason = Some("database lock".into());
        let p = Projection::of(&[add.clone(), role, lock.clone()]).unwrap();
        assert_eq!(p.users["li"].role, Role::Investigator);
        assert_eq!(p.locks.len(), 1);
        let mut release = lock.clone();
        release.kind = ChangeKind::Unlocked;
        let p = Projection::of(&[add, lock, release]).unwrap();
        assert_eq!(p.users["li"].role, Role::Nurse);
        assert!(p.locks.is_empty());
    }

    #[test]
    fn queries_take_each_step_and_envelopes_open_only_on_their_device() {
        let mut raise = change(
            ChangeKind::QueryRaised,
            None,
            Some(r#"{"query":"q1","text":"MAP 300?"}"#),
        );
        raise.subject = Some("01-0001".into());
        raise.form = Some("DLY#1".into());
        raise.item = Some("MAP".into());
        let answer = change(
            ChangeKind::QueryAnswered,
            None,
            Some(r#"{"query":"q1","text":"typo, 30"}"#),
        );
        let close = change(
            ChangeKind::QueryClosed,
            None,
            Some(r#"{"query":"q1","text":"ok"}"#),
        );
        let stray = change(
            ChangeKind::QueryClosed,
            None,
            Some(r#"{"query":"q9","text":"?"}"#),
        );
        let p = Projection::of(&[raise.clone(), answer.clone()]).unwrap();
        assert_eq!(p.queries["q1"].state, QueryState::Answered);
        assert_eq!(p.queries["q1"].item, "MAP");
        let p = Projection::of(&[raise, answer, close, stray]).unwrap();
        assert_eq!(p.queries["q1"].state, QueryState::Closed);
        assert_eq!(p.queries.len(), 1, "a step naming no query raises none");

        let mut lease = change(
            ChangeKind::LeaseLoaded,
            None,
            Some(
                r#"[{"envelope":"01-E0001","stratum":"01","seq":1,"block":1,"block_size":4,"commitment":"c1"},
                    {"envelope":"01-E0002","stratum":"01","seq":2,"block":1,"block_size":4,"commitment":"c2"}]"#,
            ),
        );
        lease.item = Some("lease-1".into());
        let open = |device: &str, envelope: &str, subject: &str| {
            let mut c = change(
                ChangeKind::Randomized,
                None,
                Some(&format!(
                    r#"{{"envelope":"{envelope}","arm":"IABP","subject_no":"01-R0001","stratum":"01"}}"#
                )),
            );
            c.device = device.into();
            c.subject = Some(subject.into());
            c
        };
        let p = Projection::of(&[
            lease.clone(),
            open("d", "01-E0001", "01-0001"),
            // Another device cannot open this device's envelope, nor can it be opened twice.
            open("other", "01-E0002", "01-0002"),
            open("d", "01-E0001", "01-0003"),
        ])
        .unwrap();
        assert_eq!(p.envelopes.len(), 2);
        assert_eq!(p.envelopes["01-E0001"].subject.as_deref(), Some("01-0001"));
        assert_eq!(p.envelopes["01-E0001"].arm.as_deref(), Some("IABP"));
        assert_eq!(p.envelopes["01-E0002"].subject, None);
        assert_eq!(p.envelopes["01-E0002"].arm, None, "sealed: no arm");
        assert_eq!(p.envelopes["01-E0002"].commitment.as_deref(), Some("c2"));
        assert_eq!(p.envelopes["01-E0002"].lease, "lease-1");
    }
}
