//! `POST /api/v1/enrol`: a laptop trades a one-time enrolment code for a device token.
//!
//! Invariants: a code is good once, before it expires, and only for its own site
//! ([`rules::enrol_code`]); a device keeps its number (and so its subject prefix `D<n>`) when
//! enrolled again, and is never moved to another site ([`rules::re_enrol`]); the code is spent
//! in the same transaction that issues the token, and only the token's hash is kept; the
//! device's X25519 public key (leases are sealed to it) is registered with the token.

use axum::extract::State;
use axum::response::Response;
use ecrf_wire::wire::{EnrolReply, EnrolRequest};
use sqlx::postgres::PgPool;

use super::extract::Valid;
use super::{ApiError, reply};
use crate::db::{self, random_secret, secret_hash};
use crate::rules;

pub(super) async fn enrol(
    State(pool): State<PgPool>,
    Valid(req): Valid<EnrolRequest>,
) -> Result<Response, ApiError> {
    // Codes are shown in capitals, and typed however.
    let code_hash = secret_hash(&req.code.to_uppercase());
    let mut tx = pool.begin().await?;
    let code = db::device::code_for_update(&mut tx, &code_hash).await?;
    rules::enrol_code(code.as_ref(), &req.site)?;
    let site = req.site.clone();
    let token = random_secret(40).map_err(|e| ApiError::bad(e.to_string()))?;
    let device_no = match db::device::enrolled_for_update(&mut tx, &req.device).await? {
        Some((enrolled_with, n)) => {
            rules::re_enrol(&enrolled_with, &site)?;
            db::device::renew_token(&mut tx, &req.device, &secret_hash(&token)).await?;
            n
        }
        None => db::device::add(&mut tx, &req.device, &site, &secret_hash(&token)).await?,
    };
    if let Some(key) = &req.sealing_key {
        db::device::set_sealing_key(&mut tx, &req.device, key).await?;
    }
    db::device::spend_code(&mut tx, &code_hash, &req.device).await?;
    tx.commit().await?;
    tracing::info!(device = %req.device, site = %site, device_no, "enrolled");
    reply(&EnrolReply {
        device: req.device,
        site,
        token,
        subject_prefix: format!("D{device_no}"),
    })
}
