//! `ecrf-web`: the coordinating centre's web view, served by `ecrf server` beside the sync API
//! (same process, port, TLS and PostgreSQL). Server-rendered HTML (`maud`, which escapes every
//! value it prints) and SVG drawn here; no script at all.
//!
//! - [`auth`]: login against the server's user registry (Argon2id verifier), sessions in
//!   memory (cookie `HttpOnly; Secure; SameSite=Strict`, idle timeout), CSRF tokens, lockout
//!   and rate limit, and the web audit (`web_audit`: every login, failure, logout, timeout);
//! - [`model`]: the trial as the server holds it, folded from every site's change log by
//!   `ecrf_log::Projection` and kept in memory, advanced by the changes that arrived since the
//!   last request; one summary per subject (screening, outcome, schedule), recomputed only
//!   for the subjects that changed;
//! - [`dashboard`]: the numbers of the dashboard from those summaries (enrolment, CONSORT,
//!   balance, protocol flags, overdue work), pure; [`svg`] draws the plot and the diagram;
//! - [`subject`]: one subject's casebook read from its own changes (printed by `ecrf_pdf` as a
//!   laptop prints it); [`monitor`]: queries,
//!   SDV and locks from the web, written as changes signed with the user's own key into the server's
//!   chain of the site, which laptops receive at their next sync;
//! - [`dmc`]: the closed report by arm (statistician only) and the pooled figures for all;
//! - [`downloads`]: exports of the user's sites in every format, started and fetched from the
//!   web, each audited;
//! - [`pages`]: the HTML; [`words`]: the words of the pages in English and Chinese.
//!
//! Invariants: every page but the login needs a session; a user sees and acts on only the
//! sites where the registry gives them a role (403 elsewhere); every POST carries the
//! session's CSRF token (403 without); every response forbids inline script and framing
//! (Content-Security-Policy) and caching.
#![deny(missing_docs)]

pub mod auth;
pub mod dashboard;
pub mod dmc;
pub mod downloads;
pub mod model;
pub mod monitor;
pub mod pages;
pub mod subject;
pub mod svg;
pub mod words;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sqlx::PgPool;

/// How the web view behaves.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// A session ends after this long without a request.
    pub idle: Duration,
    /// Failed logins of one user name, within [`WebOptions::lockout`], that lock it.
    pub max_failures: i64,
    /// How long failures count and a lock lasts.
    pub lockout: Duration,
    /// Login attempts per minute from one address.
    pub logins_per_minute: u32,
    /// The trial's target sample size (the dashboard's goal line).
    pub target: usize,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            idle: Duration::from_secs(15 * 60),
            max_failures: 5,
            lockout: Duration::from_secs(15 * 60),
            logins_per_minute: 20,
            target: 358,
        }
    }
}

/// What every handler shares.
pub struct Web {
    /// The server's database.
    pub pool: PgPool,
    /// Sessions and login limits.
    pub auth: auth::Auth,
    /// The trial folded from the change logs.
    pub trial: Arc<model::TrialCache>,
    /// Exports started from the web, and their files.
    pub downloads: downloads::Downloads,
    /// The printer (its font loaded on first use).
    pub printer: std::sync::OnceLock<Result<ecrf_pdf::Printer, String>>,
    /// Options.
    pub options: WebOptions,
    /// The study definition (labels, forms, code lists).
    pub study: Arc<ecrf_core::Study>,
}

/// Why a web request is refused.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No session (or it ended): the login page.
    #[error("please log in")]
    LogIn,
    /// Not allowed here, with the reason.
    #[error("{0}")]
    Forbidden(String),
    /// No such page or record.
    #[error("{0}")]
    NotFound(String),
    /// A bad form or value, naming the field and the rule.
    #[error("{0}")]
    Bad(String),
    /// The database or the server failed.
    #[error("{0}")]
    Internal(String),
}

impl From<sqlx::Error> for WebError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "database");
        WebError::Internal("the database is not available; try again".into())
    }
}

impl From<ecrf_server::ServerError> for WebError {
    fn from(e: ecrf_server::ServerError) -> Self {
        match e {
            ecrf_server::ServerError::Invalid(why) => WebError::Bad(why),
            other => {
                tracing::error!(error = %other, "server");
                WebError::Internal("the server failed; try again".into())
            }
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = match &self {
            WebError::LogIn => return Redirect::to("/web/login").into_response(),
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::Bad(_) => StatusCode::BAD_REQUEST,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_client_error() {
            tracing::info!(status = status.as_u16(), reason = %self, "web refused");
        }
        (status, pages::error_page(status, &self.to_string())).into_response()
    }
}

/// The web view's routes over the server's pool, under `/web`.
pub fn router(pool: PgPool, options: WebOptions, study: Arc<ecrf_core::Study>) -> Router {
    let trial = Arc::new(model::TrialCache::default());
    trial.warm_up(pool.clone());
    let web = Arc::new(Web {
        auth: auth::Auth::new(&options),
        trial,
        downloads: downloads::Downloads::new(),
        printer: std::sync::OnceLock::new(),
        pool,
        options,
        study,
    });
    Router::new()
        .route("/web", get(|| async { Redirect::to("/web/") }))
        .route("/web/", get(pages::dashboard))
        .route("/web/login", get(auth::login_page).post(auth::login))
        .route("/web/logout", post(auth::logout))
        .route("/web/consort.svg", get(pages::consort_svg))
        .route("/web/enrolment.svg", get(pages::enrolment_svg))
        .route("/web/static/app.css", get(pages::stylesheet))
        .route("/web/sites/{site}", get(pages::site))
        .route("/web/sites/{site}/subjects/{subject}", get(pages::subject))
        .route(
            "/web/sites/{site}/subjects/{subject}/casebook.pdf",
            get(pages::casebook_pdf),
        )
        .route(
            "/web/sites/{site}/subjects/{subject}/queries",
            post(monitor::raise_query),
        )
        .route(
            "/web/sites/{site}/subjects/{subject}/queries/{query}/close",
            post(monitor::close_query),
        )
        .route(
            "/web/sites/{site}/subjects/{subject}/sdv",
            post(monitor::mark_sdv),
        )
        .route("/web/sites/{site}/locks", post(monitor::lock))
        .route("/web/exports", get(downloads::page).post(downloads::start))
        .route("/web/exports/{id}", get(downloads::job))
        .route("/web/exports/{id}/{file}", get(downloads::file))
        .route("/web/api/sites/{site}/subjects", get(pages::site_json))
        .route("/web/api/consort", get(pages::consort_json))
        .route("/web/dmc", get(pages::dmc))
        .route("/web/study", get(pages::study_versions))
        .route("/web/api/dmc", get(pages::dmc_json))
        .layer(middleware::from_fn(security_headers))
        .with_state(web)
}

/// Headers of every web response: no inline script or style, no framing, no caching, no
/// sniffing, no referrer.
async fn security_headers(req: axum::extract::Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
