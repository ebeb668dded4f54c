//! The HTTP API: `GET /health` and `/api/v1/…` (enrol, device, push, pull, lease, randomize).
//!
//! Invariants: every `/api/v1` request but enrolment carries a device token, and a revoked or
//! unknown token is refused (401) before any body is read; a device reads and writes only its
//! own site (403 otherwise, checked on the path and on every change pushed); bodies are limited
//! to [`MAX_BODY_BYTES`](ecrf_wire::wire::MAX_BODY_BYTES) for a push and [`SMALL_BODY_BYTES`]
//! elsewhere, must be `application/json`, and are parsed and validated before any database
//! work, so a bad body is a 4xx with a reason and the database is unchanged; a push is one
//! transaction that stores only the changes that continue the device's chain, skipping
//! replays; every request has a deadline and waits for one of a bounded number of places, and
//! enrolment is rate-limited per address ([`limits`]).
//!
//! One file per endpoint group: [`extract`] (the preamble every handler shares: token, site,
//! body), `enrol`, `device`, `changes` (push, pull), `randomize` (lease, online slot, envelopes
//! opened from a lease), `locks` (what a pushed lock does to later data). This file holds the
//! router and how a handler answers ([`ApiError`], JSON replies).

mod changes;
mod device;
mod enrol;
pub mod extract;
pub mod limits;
mod locks;
mod login;
mod randomize;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ecrf_wire::wire::{ErrorReply, MAX_BODY_BYTES};
use sqlx::postgres::PgPool;

use crate::db;
use crate::rules::Refusal;
pub use limits::Limits;

/// What a handler refuses with: a status and a reason (sent as `{"error": …}`).
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    fn bad(reason: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, reason.into())
    }

    /// The server's own failure (500), logged.
    fn internal(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        tracing::error!(error = %reason, "internal");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, reason)
    }
}

impl From<crate::ServerError> for ApiError {
    fn from(e: crate::ServerError) -> Self {
        match e {
            crate::ServerError::Database(d) => {
                tracing::error!(error = %d, "database");
                ApiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is not available; try again".into(),
                )
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "database");
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is not available; try again".into(),
        )
    }
}

/// A rule's refusal, with the status of its kind and its text unchanged.
impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Unauthorized(why) => ApiError(StatusCode::UNAUTHORIZED, why),
            Refusal::Forbidden(why) => ApiError(StatusCode::FORBIDDEN, why),
            Refusal::Conflict(why) => ApiError(StatusCode::CONFLICT, why),
            Refusal::Invalid(why) => ApiError(StatusCode::BAD_REQUEST, why),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.0.is_client_error() {
            tracing::info!(status = self.0.as_u16(), reason = %self.1, "refused");
        }
        let body = serde_json::to_string(&ErrorReply { error: self.1 })
            .unwrap_or_else(|_| "{\"error\":\"?\"}".into());
        (self.0, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

fn json(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

fn reply<T: serde::Serialize>(v: &T) -> Result<Response, ApiError> {
    serde_json::to_string(v)
        .map(json)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn conflict(reason: String) -> ApiError {
    ApiError(StatusCode::CONFLICT, reason)
}

/// Largest body of the requests that are not a push (enrolment, lease, randomize): a few
/// short fields.
pub const SMALL_BODY_BYTES: usize = 16 * 1024;

/// The routes over a database pool, with the server's limits.
pub fn router(pool: PgPool, limits: Limits) -> Router {
    let small = || DefaultBodyLimit::max(SMALL_BODY_BYTES);
    let enrol_rate = Arc::new(limits::RateLimiter::new(
        limits.enrol_per_minute,
        std::time::Duration::from_secs(60),
    ));
    Router::new()
        .route("/health", get(health))
        .route(
            "/api/v1/enrol",
            post(enrol::enrol).layer(small()).layer(from_fn_with_state(
                Arc::clone(&enrol_rate),
                limits::enrol_rate,
            )),
        )
        .route(
            "/api/v1/login",
            post(login::login).layer(small()).layer(from_fn_with_state(
                Arc::clone(&enrol_rate),
                limits::enrol_rate,
            )),
        )
        .route("/api/v1/device", get(device::device))
        .route(
            "/api/v1/sites/{site}/changes",
            get(changes::pull).post(changes::push),
        )
        .route("/api/v1/sites/{site}/sync", post(changes::sync))
        .route(
            "/api/v1/sites/{site}/lease",
            post(randomize::lease).layer(small()),
        )
        .route(
            "/api/v1/sites/{site}/users",
            post(users::add).layer(small()),
        )
        .route(
            "/api/v1/sites/{site}/randomize",
            post(randomize::take_slot).layer(small()),
        )
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(pool)
        // Outermost last: the deadline covers the wait for a place as well as the handling.
        .layer(from_fn_with_state(
            limits::InFlight::new(&limits),
            limits::in_flight,
        ))
        .layer(from_fn_with_state(limits.request_timeout, limits::deadline))
}

async fn health(State(pool): State<PgPool>) -> Result<Response, ApiError> {
    db::ping(&pool).await?;
    Ok(json("{\"status\":\"ok\"}".into()))
}
