//! `GET /api/v1/device`: what the server holds of the calling device (its site, how many of
//! its changes), and how far its clock is from the server's.
//!
//! Invariants: a laptop states the hash of its last change it knows pushed
//! ([`wire::HISTORY_HEADER`]); if the server holds another change there, the laptop's history
//! was rewritten after it was pushed: the request is refused (409) and a `history_rewritten`
//! flag recorded. A device clock more than
//! [`MAX_CLOCK_SKEW_SECONDS`](ecrf_wire::wire::MAX_CLOCK_SKEW_SECONDS) off ([`rules::clock`])
//! is recorded as a `clock` flag and said in the reply; the request is still answered, since
//! the device cannot fix its clock without knowing.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use ecrf_wire::wire::{self, DeviceReply};
use sqlx::postgres::PgPool;

use super::extract::Caller;
use super::{ApiError, reply};
use crate::db;
use crate::rules;

pub(super) async fn device(
    State(pool): State<PgPool>,
    c: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    reply(&standing(&pool, c, &headers).await?)
}

/// What the server holds of the calling device, after its history and clock checks (also the
/// first part of `POST /sites/{site}/sync`).
pub(super) async fn standing(
    pool: &PgPool,
    c: Caller,
    headers: &HeaderMap,
) -> Result<DeviceReply, ApiError> {
    let acked = c.acked;
    if let Some(v) = headers.get(wire::HISTORY_HEADER) {
        let said = v.to_str().ok().and_then(|t| t.split_once(':'));
        let (seq, hash) = said
            .and_then(|(seq, hash)| Some((seq.parse::<i64>().ok()?, hash)))
            .ok_or_else(|| {
                ApiError::bad(format!(
                    "{}: must be <device_seq>:<hash>",
                    wire::HISTORY_HEADER
                ))
            })?;
        let mut conn = pool.acquire().await?;
        let held = db::changes::held_hash(&mut conn, &c.device, seq).await?;
        if let Some(detail) = rules::history(seq, hash, held.as_deref()) {
            tracing::error!(device = %c.device, site = %c.site, seq, "history rewritten");
            db::changes::record_refused_flag(
                pool,
                &c.site,
                &c.device,
                "history_rewritten",
                &detail,
            )
            .await?;
            return Err(rules::Refusal::Conflict(detail).into());
        }
    }
    let (clock_offset_seconds, clock_flag) = match headers.get(wire::DEVICE_TIME_HEADER) {
        None => (None, None),
        Some(v) => {
            let said = v.to_str().ok();
            let stated = said
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .ok_or_else(|| {
                    ApiError::bad(format!(
                        "{}: must be a UTC time in RFC 3339, like 2026-03-01T08:00:00Z",
                        wire::DEVICE_TIME_HEADER
                    ))
                })?;
            let now = chrono::Utc::now();
            let (offset, flag) = rules::clock(stated, now, wire::MAX_CLOCK_SKEW_SECONDS);
            if let Some(f) = &flag {
                tracing::warn!(device = %c.device, site = %c.site, offset_seconds = offset, "clock off");
                let detail = format!(
                    "{f} (device said {}, server {})",
                    said.unwrap_or("?"),
                    now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                );
                db::device::record_clock_flag(pool, &c.site, &c.device, &detail).await?;
            }
            (Some(offset), flag)
        }
    };
    Ok(DeviceReply {
        device: c.device,
        site: c.site,
        acked,
        clock_offset_seconds,
        clock_flag,
    })
}
