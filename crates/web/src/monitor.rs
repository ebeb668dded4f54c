//! Remote monitoring from the web: raising and closing queries and marking source data
//! verified. Each is a change like a laptop's (same kind, same body), written into the server's
//! chain of the subject's site and signed with the person's own key (opened at login), so every
//! laptop of the site receives it at its next sync and checks it as theirs.
//!
//! Invariants: the role comes from the registry (the session), and core decides what it may
//! do (`QueryState::after`, `Role::may`); a form or item the study does not have, an unknown
//! subject, an empty or too long text are refused naming the field, and nothing is written.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use ecrf_core::FormKey;
use ecrf_core::query::{QueryState, QueryStep};
use ecrf_core::role::Action;
use ecrf_log::body::{Body, QueryStep as StepBody};
use ecrf_log::{Change, ChangeKind};

use crate::auth::{Session, session};
use crate::{Web, WebError};

/// Longest text of a query step, in characters.
pub const MAX_QUERY_TEXT: usize = 2000;

/// The fields of the monitoring forms.
#[derive(Debug, serde::Deserialize)]
pub struct MonitorForm {
    /// The session's token.
    #[serde(default)]
    pub csrf: String,
    /// Form instance (`DLY#3`).
    #[serde(default)]
    pub form: String,
    /// Item.
    #[serde(default)]
    pub item: String,
    /// The question or note.
    #[serde(default)]
    pub text: String,
}

/// A change of `kind` about one item, for `append_as` to number, sign and store.
fn template(kind: ChangeKind, subject: &str, form: &str, item: &str, body: Body) -> Change {
    Change {
        subject: Some(subject.into()),
        form: Some(form.into()),
        item: Some(item.into()),
        new_value: body.new_value(),
        ..Change::blank(kind)
    }
}

/// Writes `change` as the session's person at `site` (their role there, signed with their key).
async fn write(
    web: &Web,
    site: &str,
    s: &Session,
    access: &crate::auth::Access,
    change: Change,
) -> Result<(), WebError> {
    ecrf_server::db::users::append_as(
        &web.pool,
        site,
        change,
        (&s.username, access.role.as_str(), &access.key),
    )
    .await?;
    Ok(())
}

/// The session, its CSRF token checked, and its access to `site`.
async fn authorised(
    web: &Web,
    headers: &HeaderMap,
    csrf: &str,
    site: &str,
) -> Result<Arc<Session>, WebError> {
    let s = session(web, headers).await?;
    s.check_csrf(csrf)?;
    s.at(site)?;
    Ok(s)
}

/// The form instance and item named by a form, checked against the study.
fn item_of(web: &Web, form: &str, item: &str) -> Result<(String, String), WebError> {
    let key =
        FormKey::parse(&web.study, form.trim()).map_err(|e| WebError::Bad(format!("form: {e}")))?;
    let def = web
        .study
        .form(&key.form)
        .ok_or_else(|| WebError::Bad(format!("form: the study has no form {}", key.form)))?;
    if def.item(item.trim()).is_none() {
        return Err(WebError::Bad(format!(
            "item: form {} has no item {:?}",
            key.form,
            item.trim()
        )));
    }
    Ok((key.to_string(), item.trim().to_string()))
}

fn text_of(text: &str) -> Result<String, WebError> {
    let t = text.trim();
    if t.chars().count() > MAX_QUERY_TEXT {
        return Err(WebError::Bad(format!(
            "text: at most {MAX_QUERY_TEXT} characters (this one has {})",
            t.chars().count()
        )));
    }
    Ok(t.to_string())
}

async fn subject_exists(web: &Web, site: &str, subject: &str) -> Result<(), WebError> {
    let trial = web.trial.read(&web.pool, chrono::Utc::now()).await?;
    let known = trial
        .sites
        .get(site)
        .is_some_and(|s| s.subjects.contains_key(subject));
    if known {
        Ok(())
    } else {
        Err(WebError::NotFound(format!(
            "site {site} has no subject {subject}"
        )))
    }
}

fn back(site: &str, subject: &str, anchor: &str) -> Response {
    Redirect::to(&format!("/web/sites/{site}/subjects/{subject}#{anchor}")).into_response()
}

/// `POST /web/sites/{site}/subjects/{subject}/queries`: raises a query on an item.
pub async fn raise_query(
    State(web): State<Arc<Web>>,
    Path((site, subject)): Path<(String, String)>,
    ConnectInfo(_addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<MonitorForm>,
) -> Result<Response, WebError> {
    let s = authorised(&web, &headers, &f.csrf, &site).await?;
    let access = s.at(&site)?;
    let text = text_of(&f.text)?;
    QueryState::after(None, QueryStep::Raise, access.role, &text)
        .map_err(|e| WebError::Forbidden(e.to_string()))?;
    let (form, item) = item_of(&web, &f.form, &f.item)?;
    subject_exists(&web, &site, &subject).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let body = Body::QueryRaised(StepBody {
        query: id.clone(),
        text,
        auto: false,
    });
    let c = template(ChangeKind::QueryRaised, &subject, &form, &item, body);
    write(&web, &site, &s, access, c).await?;
    Ok(back(&site, &subject, &format!("q-{id}")))
}

/// `POST /web/sites/{site}/subjects/{subject}/queries/{query}/close`: closes a query.
pub async fn close_query(
    State(web): State<Arc<Web>>,
    Path((site, subject, query)): Path<(String, String, String)>,
    headers: HeaderMap,
    Form(f): Form<MonitorForm>,
) -> Result<Response, WebError> {
    let s = authorised(&web, &headers, &f.csrf, &site).await?;
    let access = s.at(&site)?;
    let text = text_of(&f.text)?;
    let view =
        crate::subject::load(&web.pool, &web.study, &site, &subject, chrono::Utc::now()).await?;
    let q = view
        .queries
        .iter()
        .find(|q| q.id == query)
        .ok_or_else(|| WebError::NotFound(format!("subject {subject} has no query {query}")))?;
    QueryState::after(Some(q.state), QueryStep::Close, access.role, &text)
        .map_err(|e| WebError::Forbidden(e.to_string()))?;
    let body = Body::QueryClosed(StepBody {
        query: query.clone(),
        text,
        auto: false,
    });
    let c = template(ChangeKind::QueryClosed, &subject, &q.form, &q.item, body);
    write(&web, &site, &s, access, c).await?;
    Ok(back(&site, &subject, &format!("q-{query}")))
}

/// `POST /web/sites/{site}/subjects/{subject}/sdv`: marks an item's value verified against
/// the source.
pub async fn mark_sdv(
    State(web): State<Arc<Web>>,
    Path((site, subject)): Path<(String, String)>,
    headers: HeaderMap,
    Form(f): Form<MonitorForm>,
) -> Result<Response, WebError> {
    let s = authorised(&web, &headers, &f.csrf, &site).await?;
    let access = s.at(&site)?;
    if !access.role.may(Action::VerifySource) {
        return Err(WebError::Forbidden(format!(
            "a {} may not {}",
            access.role,
            Action::VerifySource
        )));
    }
    let (form, item) = item_of(&web, &f.form, &f.item)?;
    let view =
        crate::subject::load(&web.pool, &web.study, &site, &subject, chrono::Utc::now()).await?;
    let value = view.values.get(&form).and_then(|v| v.get(&item)).cloned();
    if value.is_none() {
        return Err(WebError::Bad(format!(
            "item: {form} {item} has no value to verify"
        )));
    }
    let c = template(
        ChangeKind::SdvMarked,
        &subject,
        &form,
        &item,
        Body::SdvMarked { value },
    );
    write(&web, &site, &s, access, c).await?;
    Ok(back(&site, &subject, &format!("i-{form}-{item}")))
}

/// The fields of the lock form.
#[derive(Debug, serde::Deserialize)]
pub struct LockForm {
    /// The session's token.
    #[serde(default)]
    pub csrf: String,
    /// `site`, `subject` or `form`.
    #[serde(default)]
    pub scope: String,
    /// The subject (subject and form locks).
    #[serde(default)]
    pub subject: String,
    /// The form instance (form locks).
    #[serde(default)]
    pub form: String,
    /// `lock` or `unlock`.
    #[serde(default)]
    pub action: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// `POST /web/sites/{site}/locks`: a data manager locks or unlocks a form instance, a
/// casebook or the whole site. Laptops receive it at their next sync; data a laptop saved
/// under the lock before receiving it is held by the server, as for a lock made on a laptop.
pub async fn lock(
    State(web): State<Arc<Web>>,
    Path(site): Path<String>,
    headers: HeaderMap,
    Form(f): Form<LockForm>,
) -> Result<Response, WebError> {
    let s = authorised(&web, &headers, &f.csrf, &site).await?;
    let access = s.at(&site)?;
    let (kind, action) = match f.action.as_str() {
        "lock" => (ChangeKind::Locked, Action::Lock),
        "unlock" => (ChangeKind::Unlocked, Action::Unlock),
        other => {
            return Err(WebError::Bad(format!(
                "action: lock or unlock, not {other:?}"
            )));
        }
    };
    if !access.role.may(action) {
        return Err(WebError::Forbidden(format!(
            "a {} may not {action}",
            access.role
        )));
    }
    let reason = f.reason.trim();
    if reason.is_empty() {
        return Err(WebError::Bad(
            "reason: say why (it goes in the audit trail)".into(),
        ));
    }
    if reason.chars().count() > MAX_QUERY_TEXT {
        return Err(WebError::Bad(format!(
            "reason: at most {MAX_QUERY_TEXT} characters"
        )));
    }
    let (subject, form) = match f.scope.as_str() {
        "site" => (None, None),
        "subject" => (Some(f.subject.trim().to_string()), None),
        "form" => {
            let key = FormKey::parse(&web.study, f.form.trim())
                .map_err(|e| WebError::Bad(format!("form: {e}")))?;
            (Some(f.subject.trim().to_string()), Some(key.to_string()))
        }
        other => {
            return Err(WebError::Bad(format!(
                "scope: site, subject or form, not {other:?}"
            )));
        }
    };
    if let Some(subject) = &subject {
        subject_exists(&web, &site, subject).await?;
    }
    let lock = ecrf_log::body::Lock {
        scope: f.scope.clone(),
        site: (f.scope == "site").then(|| site.clone()),
    };
    let body = if kind == ChangeKind::Locked {
        Body::Locked(lock)
    } else {
        Body::Unlocked(lock)
    };
    let mut c = template(kind, subject.as_deref().unwrap_or(""), "", "", body);
    c.subject = subject.clone();
    c.form = form.clone();
    c.item = None;
    c.reason = Some(reason.to_string());
    write(&web, &site, &s, access, c).await?;
    Ok(match subject {
        Some(subject) => back(&site, &subject, "locks"),
        None => Redirect::to(&format!("/web/sites/{site}")).into_response(),
    })
}
