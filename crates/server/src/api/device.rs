//! `GET /api/v1/device`: what the server holds of the calling device (its site, how many of
//! its changes), and how far its clock is from the server's.
//!
//! Invariant: a device clock more than
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
    let acked = db::device::acked(&pool, &c.device).await?;
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
                db::device::record_clock_flag(&pool, &c.site, &c.device, &detail).await?;
            }
            (Some(offset), flag)
        }
    };
    reply(&DeviceReply {
        device: c.device,
        site: c.site,
        acked,
        clock_offset_seconds,
        clock_flag,
    })
}
