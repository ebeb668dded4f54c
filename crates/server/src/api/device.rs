//! `GET /api/v1/device`: what the server holds of the calling device (its site, how many of
//! its changes), and how far its clock is from the server's.
//!
//! Invariant: a clock more than [`MAX_CLOCK_SKEW_SECONDS`](ecrf_wire::wire::MAX_CLOCK_SKEW_SECONDS)
//! off is recorded as a `clock` flag and said in the reply; the request is still answered.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use ecrf_wire::wire::{self, DeviceReply};
use sqlx::postgres::PgPool;

use super::extract::Caller;
use super::{ApiError, reply};

pub(super) async fn device(
    State(pool): State<PgPool>,
    c: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let acked: i64 = sqlx::query_scalar("SELECT acked FROM devices WHERE device = $1")
        .bind(&c.device)
        .fetch_one(&pool)
        .await?;
    let (clock_offset_seconds, clock_flag) = match headers.get(wire::DEVICE_TIME_HEADER) {
        None => (None, None),
        Some(v) => {
            let stated = v
                .to_str()
                .ok()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .ok_or_else(|| {
                    ApiError::bad(format!(
                        "{}: must be a UTC time in RFC 3339, like 2026-03-01T08:00:00Z",
                        wire::DEVICE_TIME_HEADER
                    ))
                })?;
            let now = chrono::Utc::now();
            let ms = (stated.with_timezone(&chrono::Utc) - now).num_milliseconds();
            let offset = (ms as f64 / 1000.0).round() as i64;
            let flag = (offset.abs() > wire::MAX_CLOCK_SKEW_SECONDS).then(|| {
                format!(
                    "this device's clock is {} {} the server's (more than {} minutes): \
                     times of its changes may be wrong; set the clock right",
                    words_of_seconds(offset.abs()),
                    if offset > 0 { "ahead of" } else { "behind" },
                    wire::MAX_CLOCK_SKEW_SECONDS / 60
                )
            });
            if let Some(f) = &flag {
                tracing::warn!(device = %c.device, site = %c.site, offset_seconds = offset, "clock off");
                sqlx::query(
                    "INSERT INTO flags (site, device, flag, detail) VALUES ($1, $2, 'clock', $3)",
                )
                .bind(&c.site)
                .bind(&c.device)
                .bind(format!(
                    "{f} (device said {}, server {})",
                    v.to_str().unwrap_or("?"),
                    now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                ))
                .execute(&pool)
                .await?;
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

/// `3 h 12 min`, `7 min 5 s`.
fn words_of_seconds(s: i64) -> String {
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec} s"),
        (0, min, sec) => format!("{min} min {sec} s"),
        (h, min, _) => format!("{h} h {min} min"),
    }
}
