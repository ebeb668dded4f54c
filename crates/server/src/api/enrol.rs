//! `POST /api/v1/enrol`: a laptop trades a one-time enrolment code for a device token.
//!
//! Invariants: a code is good once, before it expires, only for its own site and for the one
//! device id it was made for ([`rules::enrol_code`]); it enrols only a new device: an id the
//! server knows (enrolled, revoked, or its own `server-<site>`) is never given a new token, so
//! no code can take over another device's chain; the code is spent in the same transaction
//! that issues the token, and only the token's hash is kept. Enrolment is rate-limited per
//! address ([`super::limits`]). The device's X25519 public key (leases are sealed to it) is
//! registered with the token. The users the laptop already had are registered in the site's
//! user registry (or checked against it: same role) in the same transaction, and the reply
//! carries the server's public key for the laptop to pin.

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
    rules::enrol_code(code.as_ref(), &req.site, &req.device)?;
    rules::new_device_id(&req.device)?;
    if db::device::exists(&mut tx, &req.device).await? {
        return Err(rules::Refusal::Conflict(format!(
            "device {} is enrolled already: a code enrols only a new device",
            req.device
        ))
        .into());
    }
    let site = req.site.clone();
    let token = random_secret(40).map_err(|e| ApiError::bad(e.to_string()))?;
    let device_no = db::device::add(&mut tx, &req.device, &site, &secret_hash(&token)).await?;
    if let Some(key) = &req.sealing_key {
        db::device::set_sealing_key(&mut tx, &req.device, key).await?;
    }
    db::users::adopt(&mut tx, &site, &req.device, &req.users).await??;
    db::device::set_enrolled_seq(&mut tx, &req.device, req.head_seq).await?;
    if let Some(secret) = &req.unlock_secret {
        db::device::set_unlock_secret(&mut tx, &req.device, secret).await?;
    }
    let server_key = db::users::server_key(&mut tx).await?.public_hex();
    db::device::spend_code(&mut tx, &code_hash, &req.device).await?;
    tx.commit().await?;
    tracing::info!(device = %req.device, site = %site, device_no, "enrolled");
    reply(&EnrolReply {
        device: req.device,
        site,
        token,
        subject_prefix: format!("D{device_no}"),
        server_key,
    })
}
