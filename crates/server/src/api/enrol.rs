//! `POST /api/v1/enrol`: a laptop trades a one-time enrolment code for a device token.
//!
//! Invariants: a code is good once, before it expires, and only for its own site; a device
//! keeps its number (and so its subject prefix `D<n>`) when enrolled again, and is never moved
//! to another site; the code is spent in the same transaction that issues the token.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use ecrf_log::GENESIS;
use ecrf_wire::wire::{EnrolReply, EnrolRequest};
use sqlx::Row;
use sqlx::postgres::PgPool;

use super::extract::Valid;
use super::{ApiError, reply};
use crate::db::{random_secret, secret_hash};

pub(super) async fn enrol(
    State(pool): State<PgPool>,
    Valid(req): Valid<EnrolRequest>,
) -> Result<Response, ApiError> {
    let mut tx = pool.begin().await?;
    let code = sqlx::query(
        "SELECT site, used_by IS NOT NULL, expires < now() FROM enrol_codes \
         WHERE code_hash = $1 FOR UPDATE",
    )
    .bind(secret_hash(&req.code.to_uppercase()))
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "unknown enrolment code".into()))?;
    let (site, used, expired): (String, bool, bool) = (code.get(0), code.get(1), code.get(2));
    if used {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "this enrolment code was used already; ask for a new one".into(),
        ));
    }
    if expired {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "this enrolment code has expired; ask for a new one".into(),
        ));
    }
    if site != req.site {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "this code is for site {site}, but this laptop's store was made for site {}",
                req.site
            ),
        ));
    }
    let token = random_secret(40).map_err(|e| ApiError::bad(e.to_string()))?;
    let existing = sqlx::query("SELECT site, device_no FROM devices WHERE device = $1 FOR UPDATE")
        .bind(&req.device)
        .fetch_optional(&mut *tx)
        .await?;
    let device_no: i32 = match existing {
        Some(row) => {
            if row.get::<String, _>(0) != site {
                return Err(ApiError(
                    StatusCode::FORBIDDEN,
                    "this device is enrolled with another site".into(),
                ));
            }
            sqlx::query("UPDATE devices SET token_hash = $2, revoked = NULL WHERE device = $1")
                .bind(&req.device)
                .bind(secret_hash(&token))
                .execute(&mut *tx)
                .await?;
            row.get(1)
        }
        None => {
            let n: i32 = sqlx::query_scalar(
                "UPDATE sites SET next_device_no = next_device_no + 1 WHERE code = $1 \
                 RETURNING next_device_no - 1",
            )
            .bind(&site)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO devices (device, site, device_no, token_hash, last_hash) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&req.device)
            .bind(&site)
            .bind(n)
            .bind(secret_hash(&token))
            .bind(GENESIS)
            .execute(&mut *tx)
            .await?;
            n
        }
    };
    sqlx::query("UPDATE enrol_codes SET used_by = $2, used_at = now() WHERE code_hash = $1")
        .bind(secret_hash(&req.code.to_uppercase()))
        .bind(&req.device)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(device = %req.device, site = %site, device_no, "enrolled");
    reply(&EnrolReply {
        device: req.device,
        site,
        token,
        subject_prefix: format!("D{device_no}"),
    })
}
