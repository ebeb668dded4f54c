//! The monitor's, investigator's and data manager's steps on a form: queries, source-data
//! verification, signatures and locks. Thin calls into `ecrf_store::oversight`; the rules and
//! permissions live in `ecrf_core` (role.rs, query.rs, signature.rs, lock.rs).

use ecrf_core::lock::LockScope;
use ecrf_core::query::QueryStep;
use ecrf_core::signature::SignCredentials;
use ecrf_core::{Action, FormKey};
use ecrf_log::ChangeKind;
use ecrf_store::{AuditFilter, Change, Query, Signature};

use crate::dto::{
    AUDIT_PAGE_ROWS, AuditCsvDone, AuditFilterDto, AuditPage, AuditRow, FormOversight,
    OversightRights, SignInput, SignatureDto, Txt,
};
use crate::{App, AppResult, ErrorCode, err};

fn signature_dto(s: Signature) -> SignatureDto {
    let (en, zh) = s.meaning.statement();
    SignatureDto {
        scope: s.scope,
        name: s.name,
        signer: s.signer,
        utc: s.utc,
        offset: s.local_offset,
        meaning: Txt {
            en: en.into(),
            zh: zh.into(),
        },
        valid: s.valid,
    }
}

fn form_scope(subject: &str, key: &FormKey) -> LockScope {
    LockScope::Form {
        subject: subject.to_string(),
        form: key.to_string(),
    }
}

impl App {
    /// Queries, SDV marks, signatures and the lock of a form instance.
    pub fn form_oversight(&self, subject: &str, key: &str) -> AppResult<FormOversight> {
        let key = self.key(key)?;
        let instance = key.to_string();
        let store = self.store()?;
        let role = store.session().role;
        let locked = store
            .locks()?
            .covering(store.site(), subject, &instance)
            .map(|s| s.to_string());
        Ok(FormOversight {
            queries: store
                .queries(Some(subject))?
                .into_iter()
                .filter(|q| q.form == instance)
                .collect(),
            verified: store.verified_items(subject, &key)?,
            signatures: store
                .signatures(subject)?
                .into_iter()
                .filter(|s| s.scope == instance || s.scope == "casebook")
                .map(signature_dto)
                .collect(),
            locked,
            sign_needs_user: store.signing_credentials() == SignCredentials::UserIdAndPassword,
            rights: OversightRights {
                query: role.may(Action::RaiseQuery),
                answer: role.may(Action::AnswerQuery),
                verify: role.may(Action::VerifySource),
                sign: role.may(Action::Sign),
                lock: role.may(Action::Lock),
            },
        })
    }

    /// Every query of the site (or of one subject), open first.
    pub fn queries(&self, subject: Option<&str>) -> AppResult<Vec<Query>> {
        Ok(self.store()?.queries(subject)?.into_iter().collect())
    }

    /// Raises a query on an item.
    pub fn raise_query(
        &mut self,
        subject: &str,
        key: &str,
        item: &str,
        text: &str,
    ) -> AppResult<FormOversight> {
        let fkey = self.key(key)?;
        self.store_mut()?.raise_query(subject, &fkey, item, text)?;
        self.form_oversight(subject, key)
    }

    /// Answers, closes or reopens a query.
    pub fn query_step(&mut self, id: &str, step: QueryStep, text: &str) -> AppResult<()> {
        Ok(self.store_mut()?.query_step(id, step, text)?)
    }

    /// Marks every item of the form with a value verified against the source.
    pub fn verify_form(&mut self, subject: &str, key: &str) -> AppResult<FormOversight> {
        let fkey = self.key(key)?;
        self.store_mut()?.verify_source(subject, &fkey, &[])?;
        self.form_oversight(subject, key)
    }

    /// Signs a form instance or the casebook.
    pub fn sign(&mut self, input: SignInput) -> AppResult<SignatureDto> {
        let key = input.key.as_deref().map(|k| self.key(k)).transpose()?;
        let meaning = input.meaning;
        let signed = self.store_mut()?.sign(
            &input.subject,
            key.as_ref(),
            meaning,
            input.user.as_deref().map(str::trim),
            &input.password,
        )?;
        Ok(signature_dto(signed))
    }

    /// Locks (`lock` true) or unlocks a form instance, with a reason.
    pub fn lock_form(
        &mut self,
        subject: &str,
        key: &str,
        reason: &str,
        lock: bool,
    ) -> AppResult<FormOversight> {
        let scope = form_scope(subject, &self.key(key)?);
        let store = self.store_mut()?;
        if lock {
            store.lock(scope, reason)?;
        } else {
            store.unlock(scope, reason)?;
        }
        self.form_oversight(subject, key)
    }
}

/// An empty filter field means "any".
fn filter(f: &AuditFilterDto) -> AuditFilter {
    let some = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    AuditFilter {
        subject: some(&f.subject),
        form: some(&f.form),
        item: some(&f.item),
        user: some(&f.user),
    }
}

/// A value as the audit page shows it: an oversight step's text (a query's question, an
/// answer) rather than its JSON record; an item's value as entered.
fn audit_value(kind: ChangeKind, v: &Option<String>) -> Option<String> {
    if matches!(
        kind,
        ChangeKind::QueryRaised
            | ChangeKind::QueryAnswered
            | ChangeKind::QueryClosed
            | ChangeKind::QueryReopened
    ) {
        let text = v
            .as_deref()
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
            .and_then(|j| j.get("text").and_then(|t| t.as_str()).map(str::to_string));
        if text.is_some() {
            return text;
        }
    }
    crate::shown_value(v)
}

/// A change as the audit trail and an item's history show it.
pub(crate) fn audit_row(c: &Change) -> AuditRow {
    AuditRow {
        seq: c.seq as u32,
        old_shown: audit_value(c.kind, &c.old_value),
        new_shown: audit_value(c.kind, &c.new_value),
        source_shown: c.source.as_deref().map(source_shown),
        change: c.clone(),
    }
}

/// A change's provenance in words (`Provenance::summary`).
pub(crate) fn source_shown(json: &str) -> String {
    match ecrf_log::body::Provenance::from_json(json) {
        Some(p) => format!("laboratory file {}", p.summary()),
        None => json.to_string(),
    }
}

impl App {
    /// The audit trail filtered by subject, form, item and user: the newest rows first.
    pub fn audit_review(&self, f: &AuditFilterDto) -> AppResult<AuditPage> {
        let changes = self.store()?.audit_review(&filter(f))?;
        Ok(AuditPage {
            total: changes.len() as u32,
            rows: changes
                .iter()
                .rev()
                .take(AUDIT_PAGE_ROWS)
                .map(audit_row)
                .collect(),
        })
    }

    /// Writes every change that matches the filter as CSV into the user's printout folder.
    pub fn audit_csv(&self, f: &AuditFilterDto) -> AppResult<AuditCsvDone> {
        let changes = self.store()?.audit_review(&filter(f))?;
        let path = self.printouts_dir()?.join(format!(
            "audit-trail-{}.csv",
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        ));
        std::fs::write(&path, ecrf_store::audit_csv(&changes))
            .map_err(|e| err(ErrorCode::Internal, format!("{}: {e}", path.display())))?;
        Ok(AuditCsvDone {
            path: path.display().to_string(),
            rows: changes.len() as u32,
        })
    }
}
