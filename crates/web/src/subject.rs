//! One subject's casebook as the server holds it: the subject's own changes (indexed by
//! subject), folded by `ecrf_log::Projection` into its values, queries, SDV marks and
//! signatures, with core's derived values and flags, and each item's audit trail.
//!
//! Invariant: read-only; a subject is found only under its own site (`/web/sites/01/…` never
//! shows a subject of another site).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use ecrf_core::Value;
use ecrf_core::outcome::{SubjectOutcome, SubjectValues, derive_instance, subject_outcome};
use ecrf_core::query::QueryState;
use ecrf_log::{Change, ChangeKind, Projection, Signature};
use sqlx::PgPool;

use crate::WebError;

/// A step of a query: raised, answered, closed, reopened.
#[derive(Debug, Clone)]
pub struct QueryStepView {
    /// The step's kind.
    pub kind: ChangeKind,
    /// Who.
    pub user: String,
    /// Their role.
    pub role: String,
    /// When (UTC).
    pub utc: String,
    /// The question, answer or note.
    pub text: String,
}

/// A query with its thread.
#[derive(Debug, Clone)]
pub struct QueryView {
    /// The query id.
    pub id: String,
    /// Form instance.
    pub form: String,
    /// Item.
    pub item: String,
    /// Where it stands.
    pub state: QueryState,
    /// Every step, in order.
    pub steps: Vec<QueryStepView>,
}

/// One subject's record.
#[derive(Debug, Clone)]
pub struct SubjectView {
    /// Screening number.
    pub subject: String,
    /// Site.
    pub site: String,
    /// Values shown per form instance.
    pub values: SubjectValues,
    /// Derived values per form instance.
    pub derived: BTreeMap<String, BTreeMap<String, Value>>,
    /// Outcome and flags.
    pub outcome: SubjectOutcome,
    /// Its changes in the server's order (each item's audit trail).
    pub changes: Vec<Change>,
    /// Queries.
    pub queries: Vec<QueryView>,
    /// Items whose source was verified (form instance, item).
    pub verified: BTreeSet<(String, String)>,
    /// Signatures, with validity.
    pub signatures: Vec<Signature>,
    /// The subject's queries as the fold holds them (for the printout).
    pub query_records: Vec<ecrf_log::Query>,
}

impl SubjectView {
    /// The changes of one item, oldest first.
    pub fn trail<'a>(&'a self, form: &'a str, item: &'a str) -> impl Iterator<Item = &'a Change> {
        self.changes.iter().filter(move |c| {
            c.kind == ChangeKind::ItemSet
                && c.form.as_deref() == Some(form)
                && c.item.as_deref() == Some(item)
        })
    }
}

/// Reads `subject` of `site`; 404 when the site holds no such subject.
pub async fn load(
    pool: &PgPool,
    study: &ecrf_core::Study,
    site: &str,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<SubjectView, WebError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(ecrf_server::db::logs::SUBJECT_CHANGES)
        .bind(site)
        .bind(subject)
        .fetch_all(pool)
        .await?;
    let mut changes = Vec::with_capacity(rows.len());
    for (seq, b) in rows {
        let mut c: Change = serde_json::from_str(&b)
            .map_err(|e| WebError::Internal(format!("a stored change is unreadable: {e}")))?;
        // Its place in the server's log (a laptop numbers its own copy in its own order).
        c.seq = seq;
        changes.push(c);
    }
    let projection =
        Projection::of(&changes).map_err(|e| WebError::Internal(format!("{subject}: {e}")))?;
    if !projection.subjects.iter().any(|s| s.subject == subject) {
        return Err(WebError::NotFound(format!(
            "site {site} has no subject {subject}"
        )));
    }
    let values = projection
        .subject_values(subject)
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let outcome = subject_outcome(&values, now);
    let mut derived = BTreeMap::new();
    for instance in values.keys() {
        let form_id = instance.split('#').next().unwrap_or(instance);
        if let Some(form) = study.form(form_id) {
            let d = derive_instance(form, instance, &values, &outcome);
            if !d.is_empty() {
                derived.insert(instance.clone(), d);
            }
        }
    }
    let mut queries: Vec<QueryView> = projection
        .queries
        .values()
        .map(|q| QueryView {
            id: q.id.clone(),
            form: q.form.clone(),
            item: q.item.clone(),
            state: q.state,
            steps: Vec::new(),
        })
        .collect();
    // Verified = marked after the value it shows was set (a later change undoes the mark).
    let mut marks: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for (i, c) in changes.iter().enumerate() {
        let key = (
            c.form.clone().unwrap_or_default(),
            c.item.clone().unwrap_or_default(),
        );
        match c.kind {
            ChangeKind::SdvMarked => marks.entry(key).or_default().1 = i + 1,
            ChangeKind::ItemSet => marks.entry(key).or_default().0 = i + 1,
            _ => {}
        }
    }
    let verified: BTreeSet<(String, String)> = marks
        .into_iter()
        .filter(|(_, (set, mark))| mark > set)
        .map(|(k, _)| k)
        .collect();
    for c in &changes {
        let is_step = matches!(
            c.kind,
            ChangeKind::QueryRaised
                | ChangeKind::QueryAnswered
                | ChangeKind::QueryClosed
                | ChangeKind::QueryReopened
        );
        if !is_step {
            continue;
        }
        if let Ok(
            ecrf_log::Body::QueryRaised(step)
            | ecrf_log::Body::QueryAnswered(step)
            | ecrf_log::Body::QueryClosed(step)
            | ecrf_log::Body::QueryReopened(step),
        ) = c.body()
            && let Some(q) = queries.iter_mut().find(|q| q.id == step.query)
        {
            q.steps.push(QueryStepView {
                kind: c.kind,
                user: c.user.clone(),
                role: c.role.clone(),
                utc: c.utc.clone(),
                text: step.text,
            });
        }
    }
    // Open first, then answered, then closed; each in raise order.
    queries.sort_by_key(|q| match q.state {
        QueryState::Open => 0,
        QueryState::Answered => 1,
        QueryState::Closed => 2,
    });
    let signatures = projection
        .signatures()
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(SubjectView {
        subject: subject.to_string(),
        site: site.to_string(),
        values,
        derived,
        outcome,
        changes,
        queries,
        verified,
        signatures,
        query_records: projection.queries.values().cloned().collect(),
    })
}

/// The subject's record as the laptop's printout reads it (`ecrf_log::Casebook`): each form
/// instance with data in schedule order, its values in the form's item order then derived
/// values, the items verified, every change, the names of `names`, queries and signatures;
/// `ecrf_pdf` prints it exactly as it prints a laptop's.
pub fn casebook(
    study: &ecrf_core::Study,
    v: &SubjectView,
    names: BTreeMap<String, String>,
) -> ecrf_log::Casebook {
    let mut keys: Vec<ecrf_core::FormKey> = Vec::new();
    for c in &v.changes {
        let Some(form) = &c.form else { continue };
        if let Ok(key) = ecrf_core::FormKey::parse(study, form)
            && !keys.contains(&key)
        {
            keys.push(key);
        }
    }
    let order =
        |k: &ecrf_core::FormKey| (study.forms.iter().position(|f| f.id == k.form), k.repeat);
    keys.sort_by_key(order);
    let forms = keys
        .into_iter()
        .map(|key| {
            let instance = key.to_string();
            let own = v.values.get(&instance);
            let mut values: Vec<ecrf_log::ItemState> = Vec::new();
            if let Some(form) = study.form(&key.form) {
                for item in &form.items {
                    if let Some(value) = own.and_then(|o| o.get(&item.id)) {
                        let warning = v
                            .trail(&instance, &item.id)
                            .last()
                            .and_then(|c| c.warning.clone());
                        values.push(ecrf_log::ItemState {
                            item: item.id.clone(),
                            value: value.clone(),
                            warning,
                        });
                    }
                }
            }
            for (item, value) in v.derived.get(&instance).into_iter().flatten() {
                if !values.iter().any(|x| &x.item == item) {
                    values.push(ecrf_log::ItemState {
                        item: item.clone(),
                        value: value.clone(),
                        warning: None,
                    });
                }
            }
            let verified = v
                .verified
                .iter()
                .filter(|(f, _)| *f == instance)
                .map(|(_, i)| i.clone())
                .collect();
            ecrf_log::CasebookForm {
                // The first `form.version` of the instance; none = the base version.
                version: v
                    .changes
                    .iter()
                    .find(|c| {
                        c.kind == ChangeKind::FormVersioned
                            && c.form.as_deref() == Some(instance.as_str())
                    })
                    .and_then(|c| c.new_value.clone())
                    .unwrap_or_else(|| ecrf_core::trial::BASE_VERSION.to_string()),
                key,
                values,
                verified,
            }
        })
        .collect();
    ecrf_log::Casebook {
        subject: v.subject.clone(),
        site: v.site.clone(),
        forms,
        audit: v.changes.clone(),
        names,
        queries: v.query_records.clone(),
        signatures: v.signatures.clone(),
    }
}
