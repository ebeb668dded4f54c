//! `POST /api/v1/login`: a registered user's first login on an enrolled laptop of their site.
//!
//! Invariants: the password is checked against the registry's Argon2id verifier (on a blocking
//! thread: 64 MiB and ~0.3 s each) and never kept or logged; one answer for every failure
//! (unknown user, wrong password, deactivated, another site's device, a revoked device), so the
//! endpoint tells a guesser nothing; attempts are rate-limited per address like enrolment; the
//! reply gives the escrowed signing key (readable only with the password) and the device's
//! unlock secret (useful only with that laptop's files).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use ecrf_wire::wire::{LoginReply, LoginRequest};
use sqlx::postgres::PgPool;

use super::extract::Valid;
use super::{ApiError, reply};
use crate::db;

fn not_accepted() -> ApiError {
    ApiError(
        StatusCode::UNAUTHORIZED,
        "user name or password not accepted for this laptop's site".into(),
    )
}

pub(super) async fn login(
    State(pool): State<PgPool>,
    Valid(req): Valid<LoginRequest>,
) -> Result<Response, ApiError> {
    let Some((site, revoked, Some(secret))) = db::device::unlock_secret(&pool, &req.device).await?
    else {
        return Err(not_accepted());
    };
    if revoked || site != req.site {
        return Err(not_accepted());
    }
    let Some((name, role, verifier, escrow)) =
        db::users::login_record(&pool, &site, &req.username).await?
    else {
        return Err(not_accepted());
    };
    let password = req.password.clone();
    let ok = tokio::task::spawn_blocking(move || ecrf_identity::verify(&verifier, &password))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if !ok || role.is_empty() {
        tracing::info!(device = %req.device, site = %site, "first login refused");
        return Err(not_accepted());
    }
    tracing::info!(device = %req.device, site = %site, user = %req.username, "first login");
    reply(&LoginReply {
        name,
        role,
        escrow,
        unlock_secret: secret,
    })
}
