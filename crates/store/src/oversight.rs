//! Oversight of the data: queries, source-data verification (SDV), electronic signatures, locks,
//! and the user-account events around them (role change, deactivation, password reset).
//!
//! Each step is a change in the same hash-chained log as the data, so it is audited, synced and
//! printed like any value; the rules come from `ecrf_core` ([`QueryState::after`],
//! [`signature::may_sign`], [`Locks`], the permission table). Owns the `queries`, `sdv`,
//! `signatures` and `locks` projections, written only by [`apply`].
//!
//! Invariants:
//! - an SDV mark holds while the item's value is the one verified: an item whose value changed
//!   after the mark (`item_values.change_seq > sdv.verified_seq`) reads as not verified;
//! - a signature stores the hash of the exact values it covers; [`Store::signatures`] recomputes
//!   it from the current values, so any later change shows the signature as broken, and
//!   [`verify_signatures`] checks every signature row against its event in the log;
//! - nothing under a lock changes: [`Store::check_not_locked`] is called by every data write.

use std::collections::BTreeMap;

use ecrf_core::lock::{LockScope, Locks};
use ecrf_core::query::{QueryState, QueryStep};
use ecrf_core::signature::{self, SignCredentials, SignatureMeaning, SignatureScope};
use ecrf_core::{Action, FormKey};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::error::StoreError;
use ecrf_log::body::{self, Body};
use ecrf_log::project::lock_key;
use ecrf_log::{Change, ChangeKind, Query, Signature};

use crate::log::COLUMNS;
use crate::store::{Draft, Store};

/// A data change held back by a lock, for the data manager to decide on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldChange {
    /// The held change.
    pub change_id: String,
    /// Subject.
    pub subject: String,
    /// Form instance.
    pub form: String,
    /// Item.
    pub item: String,
    /// The value it would have set (JSON of `Value`; `None` = clear).
    pub value: Option<String>,
    /// Who made it.
    pub user: String,
    /// On which device.
    pub device: String,
    /// When (UTC).
    pub utc: String,
    /// Reason given with it.
    pub reason: Option<String>,
    /// The lock that held it.
    pub lock: String,
}

/// SDV progress of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct SdvProgress {
    /// Items with a value.
    pub items: i64,
    /// Of those, verified and unchanged since.
    pub verified: i64,
}

/// Applies this module's changes to its projections.
pub(crate) fn apply(tx: &Connection, c: &Change) -> Result<(), StoreError> {
    match crate::store::body_of(c)? {
        Body::QueryRaised(q) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO queries (query_id, subject, form, item, state, text, raised_by, raised_utc, updated_seq) \
                 VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?7, ?8)",
            )?
            .execute(params![q.query, c.subject, c.form, c.item, q.text, c.user, c.utc, c.seq])?;
        }
        Body::QueryAnswered(q) => set_query_state(tx, c, &q.query, QueryState::Answered)?,
        Body::QueryClosed(q) => set_query_state(tx, c, &q.query, QueryState::Closed)?,
        Body::QueryReopened(q) => set_query_state(tx, c, &q.query, QueryState::Open)?,
        Body::SdvMarked { .. } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO sdv (subject, form, item, verified_by, verified_seq) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![c.subject, c.form, c.item, c.user, c.seq])?;
        }
        Body::Signed(s) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO signatures (change_id, subject, scope, meaning, signer, signer_name, utc, local_offset, values_hash, seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                c.change_id,
                c.subject,
                c.form,
                serde_json::to_string(&s.meaning)
                    .map_err(|e| StoreError::Invalid(format!("{}: {e}", c.describe())))?,
                c.user,
                s.name,
                c.utc,
                c.local_offset,
                s.values_hash,
                c.seq
            ])?;
        }
        Body::Locked(l) => {
            let key = lock_key(&l, c.subject.as_deref(), c.form.as_deref());
            tx.prepare_cached(
                "INSERT OR REPLACE INTO locks (scope, kind, site, subject, form, reason, locked_seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![key, l.scope, l.site, c.subject, c.form, c.reason.clone().unwrap_or_default(), c.seq])?;
        }
        Body::Unlocked(l) => {
            let key = lock_key(&l, c.subject.as_deref(), c.form.as_deref());
            tx.prepare_cached("DELETE FROM locks WHERE scope = ?1")?
                .execute([key])?;
        }
        Body::LockHeld(h) => {
            let (subject, form, item) = (
                c.subject.as_deref().unwrap_or_default(),
                c.form.as_deref().unwrap_or_default(),
                c.item.as_deref().unwrap_or_default(),
            );
            tx.prepare_cached(
                "INSERT OR REPLACE INTO held (change_id, subject, form, item, lock, held_seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![h.change, subject, form, item, h.lock, c.seq])?;
            crate::replica::replay_item(tx, subject, form, item)?;
        }
        Body::UserRole { role } => {
            tx.prepare_cached("UPDATE users SET role = ?1 WHERE username = ?2")?
                .execute(params![role.as_str(), c.item])?;
        }
        Body::UserDeactivated => {
            tx.prepare_cached("UPDATE users SET active = 0 WHERE username = ?1")?
                .execute([&c.item])?;
        }
        Body::PasswordReset(_) | Body::PasswordChanged(_) => {
            tx.prepare_cached("UPDATE users SET password_reset_pending = ?1 WHERE username = ?2")?
                .execute(params![c.kind == ChangeKind::PasswordReset, c.item])?;
        }
        // Applied by the store's other modules (see `store::apply`, which sends only the kinds
        // above here).
        Body::StoreCreated(_)
        | Body::UserAdded(_)
        | Body::SubjectCreated { .. }
        | Body::ItemSet { .. }
        | Body::LeaseLoaded(_)
        | Body::Randomized(_)
        | Body::DataExported(_)
        | Body::LoginFailed(_)
        | Body::StudyPublished(_)
        | Body::SiteActivated(_)
        | Body::FormVersioned { .. } => {}
    }
    Ok(())
}

fn set_query_state(
    tx: &Connection,
    c: &Change,
    query: &str,
    state: QueryState,
) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE queries SET state = ?1, updated_seq = ?2 WHERE query_id = ?3")?
        .execute(params![state.to_string(), c.seq, query])?;
    Ok(())
}

/// The locks in force, read from the projection.
pub(crate) fn locks(conn: &Connection) -> Result<Locks, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT kind, site, subject, form, reason FROM locks")?;
    let mut rows = stmt.query([])?;
    let mut out = Locks::default();
    while let Some(r) = rows.next()? {
        if let Some(scope) =
            ecrf_log::body::lock_scope(&r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)
        {
            // The projection holds each scope once, so this cannot refuse.
            let _ = out.lock(scope, &r.get::<_, String>(4)?);
        }
    }
    Ok(out)
}

/// The stored values a signature of `scope` covers now: `(form, item, value)`.
pub(crate) fn covered_values(
    conn: &Connection,
    subject: &str,
    scope: &str,
) -> Result<Vec<(String, String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT form, item, value FROM item_values WHERE subject = ?1 AND (?2 = 'casebook' OR form = ?2)",
    )?;
    let rows = stmt.query_map([subject, scope], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn scope_of(
    scope: &str,
    study: &ecrf_core::Study,
) -> Result<SignatureScope, StoreError> {
    if scope == "casebook" {
        Ok(SignatureScope::Casebook)
    } else {
        FormKey::parse(study, scope)
            .map(SignatureScope::Form)
            .map_err(StoreError::Invalid)
    }
}

pub(crate) fn hash_of(
    subject: &str,
    scope: &SignatureScope,
    values: &[(String, String, String)],
) -> String {
    signature::values_hash(
        subject,
        scope,
        values
            .iter()
            .map(|(f, i, v)| (f.as_str(), i.as_str(), v.as_str())),
    )
}

/// Checks every signature row against its signing event in the log and the values as they were
/// when it was signed. A row not made by a signing event there (copied, moved, altered) is named.
pub(crate) fn verify_signatures(
    conn: &Connection,
    study: &ecrf_core::Study,
) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    let mut stmt =
        conn.prepare("SELECT change_id, subject, scope, values_hash FROM signatures ORDER BY seq")?;
    let rows: Vec<(String, String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    for (id, subject, scope, hash) in rows {
        let event: Option<Change> = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM change_log WHERE change_id = ?1 AND kind = ?2"),
                params![id, ChangeKind::Signed.as_str()],
                crate::log::from_row,
            )
            .optional()?;
        let Some(event) = event else {
            problems.push(format!(
                "signature {id} on {scope} of {subject} has no signing event in the log: it was added behind the app's back"
            ));
            continue;
        };
        let body = match event.body() {
            Ok(Body::Signed(b)) => Some(b),
            _ => None,
        };
        if event.subject.as_deref() != Some(subject.as_str())
            || event.form.as_deref() != Some(scope.as_str())
            || body.as_ref().map(|b| b.values_hash.as_str()) != Some(hash.as_str())
        {
            problems.push(format!(
                "signature {id} is shown on {scope} of {subject} but was given on {} of {}: it was copied or moved behind the app's back",
                event.form.as_deref().unwrap_or("?"),
                event.subject.as_deref().unwrap_or("?")
            ));
            continue;
        }
        // The values as they were just before the signature: replay the covered items' changes.
        let mut then: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut stmt = conn.prepare_cached(
            "SELECT form, item, new_value FROM change_log WHERE kind = 'item.set' AND subject = ?1 \
             AND (?2 = 'casebook' OR form = ?2) AND seq < ?3 ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![subject, scope, event.seq])?;
        while let Some(r) = rows.next()? {
            let key = (r.get::<_, String>(0)?, r.get::<_, String>(1)?);
            match r.get::<_, Option<String>>(2)? {
                Some(v) => then.insert(key, v),
                None => then.remove(&key),
            };
        }
        let values: Vec<(String, String, String)> =
            then.into_iter().map(|((f, i), v)| (f, i, v)).collect();
        let scope_def = scope_of(&scope, study)?;
        if hash_of(&subject, &scope_def, &values) != hash {
            problems.push(format!(
                "signature {id} on {scope} of {subject} does not match the values it was given on"
            ));
        }
    }
    Ok(problems)
}

impl Store {
    /// Refuses a change to `items` of `form` of `subject` when a lock covers it.
    pub(crate) fn check_not_locked(
        &self,
        subject: &str,
        form: &str,
        items: &[&str],
    ) -> Result<(), StoreError> {
        let locks = locks(self.conn())?;
        for item in items {
            locks
                .check_change(self.site(), subject, form, item)
                .map_err(|e| StoreError::Invalid(format!("not saved: {e}")))?;
        }
        Ok(())
    }

    fn query_state(
        &self,
        query: &str,
    ) -> Result<Option<(QueryState, String, String, String)>, StoreError> {
        let row: Option<(String, String, String, String)> = self
            .conn()
            .query_row(
                "SELECT state, subject, form, item FROM queries WHERE query_id = ?1",
                [query],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        row.map(|(s, subject, form, item)| {
            let state: QueryState = serde_json::from_value(serde_json::Value::String(s))
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            Ok((state, subject, form, item))
        })
        .transpose()
    }

    /// Raises a query on an item; returns its id.
    pub fn raise_query(
        &mut self,
        subject: &str,
        key: &FormKey,
        item: &str,
        text: &str,
    ) -> Result<String, StoreError> {
        self.require_subject(subject)?;
        let form = self
            .study()
            .form(&key.form)
            .ok_or_else(|| StoreError::Invalid(format!("there is no form {}", key.form)))?;
        if form.item(item).is_none() {
            return Err(StoreError::Invalid(format!(
                "form {} has no item {item}",
                form.id
            )));
        }
        self.require(Action::RaiseQuery)?;
        QueryState::after(None, QueryStep::Raise, self.session().role, text)
            .map_err(query_error)?;
        let id = uuid::Uuid::now_v7().to_string();
        let mut d = Draft::new(ChangeKind::QueryRaised);
        d.subject = Some(subject.into());
        d.form = Some(key.to_string());
        d.item = Some(item.into());
        d.new_value = Body::QueryRaised(body::QueryStep {
            query: id.clone(),
            text: text.trim().into(),
            auto: false,
        })
        .new_value();
        self.commit_with(|_| Ok((vec![d], ())))?;
        Ok(id)
    }

    /// Answers, closes or reopens a query.
    pub fn query_step(
        &mut self,
        query: &str,
        step: QueryStep,
        text: &str,
    ) -> Result<(), StoreError> {
        self.require(step.action())?;
        let (state, subject, form, item) = self
            .query_state(query)?
            .ok_or_else(|| StoreError::Invalid(format!("no query {query} in this store")))?;
        QueryState::after(Some(state), step, self.session().role, text).map_err(query_error)?;
        let kind = match step {
            QueryStep::Answer => ChangeKind::QueryAnswered,
            QueryStep::Close => ChangeKind::QueryClosed,
            QueryStep::Reopen => ChangeKind::QueryReopened,
            QueryStep::Raise => {
                return Err(StoreError::Invalid(
                    "a query is raised once; reopen it instead".into(),
                ));
            }
        };
        let mut d = Draft::new(kind);
        d.subject = Some(subject);
        d.form = Some(form);
        d.item = Some(item);
        d.new_value = serde_json::to_string(&body::QueryStep {
            query: query.into(),
            text: text.trim().into(),
            auto: false,
        })
        .ok();
        self.commit_with(|_| Ok((vec![d], ())))?;
        Ok(())
    }

    /// Queries, optionally of one subject, with open ones first.
    pub fn queries(&self, subject: Option<&str>) -> Result<Vec<Query>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT query_id, subject, form, item, state, text, raised_by, raised_utc FROM queries \
             WHERE ?1 IS NULL OR subject = ?1 ORDER BY state = 'closed', raised_utc",
        )?;
        let rows = stmt.query_map([subject], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, subject, form, item, state, text, raised_by, raised_utc) = row?;
            out.push(Query {
                id,
                subject,
                form,
                item,
                state: serde_json::from_value(serde_json::Value::String(state))
                    .map_err(|e| StoreError::Invalid(e.to_string()))?,
                text,
                raised_by,
                raised_utc,
            });
        }
        Ok(out)
    }

    /// Marks items of a form instance verified against the source (all items with a value when
    /// `items` is empty). Returns how many were marked.
    pub fn verify_source(
        &mut self,
        subject: &str,
        key: &FormKey,
        items: &[&str],
    ) -> Result<usize, StoreError> {
        self.require(Action::VerifySource)?;
        self.require_subject(subject)?;
        let form = key.to_string();
        let present: Vec<String> = {
            let mut stmt = self.conn().prepare_cached(
                "SELECT item FROM item_values WHERE subject = ?1 AND form = ?2 ORDER BY item",
            )?;
            stmt.query_map([subject, &form], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let chosen: Vec<String> = if items.is_empty() {
            present
        } else {
            for i in items {
                if !present.iter().any(|p| p == i) {
                    return Err(StoreError::Invalid(format!(
                        "{form} {i} has no value to verify"
                    )));
                }
            }
            items.iter().map(|s| s.to_string()).collect()
        };
        let drafts: Vec<Draft> = chosen
            .iter()
            .map(|item| {
                let mut d = Draft::new(ChangeKind::SdvMarked);
                d.subject = Some(subject.into());
                d.form = Some(form.clone());
                d.item = Some(item.clone());
                d
            })
            .collect();
        let n = drafts.len();
        self.commit_with(|_| Ok((drafts, ())))?;
        Ok(n)
    }

    /// SDV progress of one subject (or the whole store).
    pub fn sdv_progress(&self, subject: Option<&str>) -> Result<SdvProgress, StoreError> {
        Ok(self.conn().query_row(
            "SELECT count(*), count(s.item) FROM item_values v LEFT JOIN sdv s \
             ON s.subject = v.subject AND s.form = v.form AND s.item = v.item AND s.verified_seq > v.change_seq \
             WHERE ?1 IS NULL OR v.subject = ?1",
            [subject],
            |r| Ok(SdvProgress { items: r.get(0)?, verified: r.get(1)? }),
        )?)
    }

    /// Items of a form instance verified and unchanged since.
    pub fn verified_items(&self, subject: &str, key: &FormKey) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT v.item FROM item_values v JOIN sdv s ON s.subject = v.subject AND s.form = v.form \
             AND s.item = v.item AND s.verified_seq > v.change_seq WHERE v.subject = ?1 AND v.form = ?2 ORDER BY v.item",
        )?;
        let rows = stmt.query_map([subject, &key.to_string()], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// What the next signature in this session asks for.
    pub fn signing_credentials(&self) -> SignCredentials {
        self.signing().required()
    }

    /// Signs a form instance or the casebook (`key` none) with a meaning. `username` is needed
    /// for the first signature of a session; `password` always.
    pub fn sign(
        &mut self,
        subject: &str,
        key: Option<&FormKey>,
        meaning: SignatureMeaning,
        username: Option<&str>,
        password: &str,
    ) -> Result<Signature, StoreError> {
        self.require(Action::Sign)?;
        self.require_subject(subject)?;
        let me = self.session().user.clone();
        if self.signing().required() == SignCredentials::UserIdAndPassword
            && username != Some(me.as_str())
        {
            return Err(StoreError::Invalid(
                "the first signature of a session needs your user id and password".into(),
            ));
        }
        self.check_password(password)?;
        let scope = key.map_or(SignatureScope::Casebook, |k| {
            SignatureScope::Form(k.clone())
        });
        let scope_text = scope.to_string();
        let (name, reset_pending): (String, bool) = self.conn().query_row(
            "SELECT name, password_reset_pending FROM users WHERE username = ?1",
            [&me],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let empty = self.required_empty(subject, key)?;
        let open = self
            .queries(Some(subject))?
            .iter()
            .filter(|q| q.state != QueryState::Closed && scope.covers(&q.form))
            .count();
        signature::may_sign(&scope, &empty, open, reset_pending)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let values = covered_values(self.conn(), subject, &scope_text)?;
        let mut d = Draft::new(ChangeKind::Signed);
        d.subject = Some(subject.into());
        d.form = Some(scope_text);
        d.new_value = Body::Signed(body::Signed {
            meaning,
            name,
            values_hash: hash_of(subject, &scope, &values),
        })
        .new_value();
        let (written, ()) = self.commit_with(|_| Ok((vec![d], ())))?;
        self.signing_mut().signed();
        let id = written
            .first()
            .map(|c| c.change_id.clone())
            .unwrap_or_default();
        self.signatures(subject)?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| StoreError::Invalid("the signature was not recorded".into()))
    }

    fn required_empty(
        &self,
        subject: &str,
        key: Option<&FormKey>,
    ) -> Result<Vec<String>, StoreError> {
        let values = self.subject_values(subject)?;
        let mut empty = Vec::new();
        for (instance, items) in &values {
            if key.is_some_and(|k| k.to_string() != *instance) {
                continue;
            }
            let Ok(k) = FormKey::parse(self.study(), instance) else {
                continue;
            };
            let Some(form) = self.study().form(&k.form) else {
                continue;
            };
            // The same completeness rule as the form's status: conditions decide what is asked.
            let current: BTreeMap<String, ecrf_core::Value> = items
                .iter()
                .map(|s| (s.item.clone(), s.value.clone()))
                .collect();
            for item in ecrf_core::check::missing_required(form, &current) {
                empty.push(format!("{instance}.{}", item.id));
            }
        }
        if let Some(k) = key
            && !values.contains_key(&k.to_string())
        {
            return Err(StoreError::Invalid(format!(
                "{k} of {subject} has no data to sign"
            )));
        }
        Ok(empty)
    }

    /// Signatures of a subject, each with whether it still holds.
    pub fn signatures(&self, subject: &str) -> Result<Vec<Signature>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT change_id, scope, meaning, signer, signer_name, utc, local_offset, values_hash \
             FROM signatures WHERE subject = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([subject], |r| {
            let meaning: String = r.get(2)?;
            let signature = Signature {
                id: r.get(0)?,
                subject: subject.into(),
                scope: r.get(1)?,
                meaning: serde_json::from_str(&meaning).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        2,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })?,
                signer: r.get(3)?,
                name: r.get(4)?,
                utc: r.get(5)?,
                local_offset: r.get(6)?,
                valid: false,
            };
            Ok((signature, r.get::<_, String>(7)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut signature, hash) = row?;
            let scope = scope_of(&signature.scope, self.study())?;
            let now = covered_values(self.conn(), subject, &signature.scope)?;
            signature.valid = hash_of(subject, &scope, &now) == hash;
            out.push(signature);
        }
        Ok(out)
    }

    /// Locks a form instance, a casebook or the site, with a reason.
    pub fn lock(&mut self, scope: LockScope, reason: &str) -> Result<(), StoreError> {
        self.lock_step(scope, reason, true)
    }

    /// Unlocks it again, with a reason.
    pub fn unlock(&mut self, scope: LockScope, reason: &str) -> Result<(), StoreError> {
        self.lock_step(scope, reason, false)
    }

    fn lock_step(&mut self, scope: LockScope, reason: &str, lock: bool) -> Result<(), StoreError> {
        self.require(if lock { Action::Lock } else { Action::Unlock })?;
        let mut locks = locks(self.conn())?;
        let checked = if lock {
            locks.lock(scope.clone(), reason)
        } else {
            locks.unlock(&scope, reason)
        };
        checked.map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut d = Draft::new(if lock {
            ChangeKind::Locked
        } else {
            ChangeKind::Unlocked
        });
        let (kind_name, site) = match &scope {
            LockScope::Site(s) => ("site", Some(s.clone())),
            LockScope::Subject(s) => {
                self.require_subject(s)?;
                d.subject = Some(s.clone());
                ("subject", None)
            }
            LockScope::Form { subject, form } => {
                self.require_subject(subject)?;
                d.subject = Some(subject.clone());
                d.form = Some(form.clone());
                ("form", None)
            }
        };
        d.new_value = serde_json::to_string(&body::Lock {
            scope: kind_name.into(),
            site,
        })
        .ok();
        d.reason = Some(reason.trim().into());
        self.commit_with(|_| Ok((vec![d], ())))?;
        Ok(())
    }

    /// The locks in force.
    pub fn locks(&self) -> Result<Locks, StoreError> {
        locks(self.conn())
    }

    /// Data changes the server held back because a lock covered their form when they arrived
    /// (made offline before the lock reached their device), oldest first: kept in the log,
    /// never applied, for the data manager to decide on (unlock and re-enter, or leave).
    pub fn held_changes(&self) -> Result<Vec<HeldChange>, StoreError> {
        // `held` first (CROSS JOIN keeps the order): it is small; the other way round reads the
        // whole log after every sync.
        let mut stmt = self.conn().prepare(
            "SELECT h.change_id, h.subject, h.form, h.item, c.new_value, c.user, c.device, \
             c.utc, c.reason, h.lock FROM held h CROSS JOIN change_log c ON c.change_id = h.change_id \
             ORDER BY h.held_seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(HeldChange {
                change_id: r.get(0)?,
                subject: r.get(1)?,
                form: r.get(2)?,
                item: r.get(3)?,
                value: r.get(4)?,
                user: r.get(5)?,
                device: r.get(6)?,
                utc: r.get(7)?,
                reason: r.get(8)?,
                lock: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn query_error(e: ecrf_core::query::QueryError) -> StoreError {
    StoreError::Invalid(format!("not done: {e}"))
}

/// Which changes an audit review shows; every field narrows it (none = everything).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// One subject.
    pub subject: Option<String>,
    /// One form instance (`DLY#3`) or every instance of a form (`DLY`).
    pub form: Option<String>,
    /// One item.
    pub item: Option<String>,
    /// One user.
    pub user: Option<String>,
}

impl Store {
    /// The audit trail filtered by subject, form, item and user, oldest first.
    pub fn audit_review(&self, filter: &AuditFilter) -> Result<Vec<Change>, StoreError> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {COLUMNS} FROM change_log WHERE (?1 IS NULL OR subject = ?1) \
             AND (?2 IS NULL OR form = ?2 OR form LIKE ?2 || '#%') \
             AND (?3 IS NULL OR item = ?3) AND (?4 IS NULL OR user = ?4) ORDER BY seq"
        ))?;
        let rows = stmt.query_map(
            params![filter.subject, filter.form, filter.item, filter.user],
            crate::log::from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The audit trail as CSV (RFC 4180, UTF-8), one row per change, oldest first: what
/// `ecrf audit export` and the app's Audit trail page write.
pub fn audit_csv(changes: &[Change]) -> String {
    let mut out = String::from(
        "seq,change_id,device,device_seq,kind,subject,form,item,old_value,new_value,user,role,utc,local_offset,reason\n",
    );
    for c in changes {
        let fields = [
            c.seq.to_string(),
            c.change_id.clone(),
            c.device.clone(),
            c.device_seq.to_string(),
            c.kind.to_string(),
            c.subject.clone().unwrap_or_default(),
            c.form.clone().unwrap_or_default(),
            c.item.clone().unwrap_or_default(),
            c.old_value.clone().unwrap_or_default(),
            c.new_value.clone().unwrap_or_default(),
            c.user.clone(),
            c.role.clone(),
            c.utc.clone(),
            c.local_offset.clone(),
            c.reason.clone().unwrap_or_default(),
        ];
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// RFC 4180: quoted when it holds a comma, quote or line break; quotes doubled.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
