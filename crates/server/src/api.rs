//! The HTTP API: `GET /health` and `/api/v1/…` (enrol, device, push, pull).
//!
//! Invariants: every `/api/v1` request but enrolment carries a device token, and a revoked or
//! unknown token is refused (401); a device reads and writes only its own site (403 otherwise,
//! checked on the path and on every change pushed); bodies are limited to
//! [`MAX_BODY_BYTES`](ecrf_sync::wire::MAX_BODY_BYTES), must be `application/json`, and are
//! parsed and validated before any database work, so a bad body is a 4xx with a reason and the
//! database is unchanged; a push is one transaction that stores only the changes that continue
//! the device's chain, skipping replays.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ecrf_store::log::GENESIS;
use ecrf_sync::wire::{
    self, DeviceReply, EnrolReply, EnrolRequest, ErrorReply, MAX_BODY_BYTES, MAX_PAGE, PushReply,
    PushRequest,
};
use sqlx::postgres::PgPool;
use sqlx::{Executor, Row};

use crate::db::{random_secret, secret_hash};

/// What a handler refuses with: a status and a reason (sent as `{"error": …}`).
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    fn bad(reason: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, reason.into())
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

/// The routes over a database pool.
pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/api/v1/enrol", axum::routing::post(enrol))
        .route("/api/v1/device", get(device))
        .route("/api/v1/sites/{site}/changes", get(pull).post(push))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(pool)
}

async fn health(State(pool): State<PgPool>) -> Result<Response, ApiError> {
    pool.execute("SELECT 1").await?;
    Ok(json("{\"status\":\"ok\"}".into()))
}

/// The body, if it is JSON within the size limit.
fn body_of(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be application/json, not {ct:?}"),
        ));
    }
    body.map_err(|e| {
        let status = e.status();
        let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("body larger than {MAX_BODY_BYTES} bytes")
        } else {
            format!("body could not be read: {e}")
        };
        ApiError(status, reason)
    })
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    wire::parse(bytes).map_err(|e| ApiError::bad(e.to_string()))
}

/// The calling device, from its token.
struct Caller {
    device: String,
    site: String,
}

async fn caller(pool: &PgPool, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let unauthorized = |r: &str| ApiError(StatusCode::UNAUTHORIZED, r.to_string());
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("a device token is required (Authorization: Bearer …)"))?;
    let row =
        sqlx::query("SELECT device, site, revoked IS NOT NULL FROM devices WHERE token_hash = $1")
            .bind(secret_hash(token.trim()))
            .fetch_optional(pool)
            .await?
            .ok_or_else(|| unauthorized("unknown device token"))?;
    if row.get::<bool, _>(2) {
        return Err(unauthorized(
            "this device was revoked; ask the administrator to enrol it again",
        ));
    }
    Ok(Caller {
        device: row.get(0),
        site: row.get(1),
    })
}

fn same_site(caller: &Caller, site: &str) -> Result<(), ApiError> {
    if caller.site != site {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "this device belongs to site {}, not site {site}",
                caller.site
            ),
        ));
    }
    Ok(())
}

async fn enrol(
    State(pool): State<PgPool>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: EnrolRequest = parse(&body_of(&headers, body)?)?;
    req.validate().map_err(|e| ApiError::bad(e.to_string()))?;
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

async fn device(State(pool): State<PgPool>, headers: HeaderMap) -> Result<Response, ApiError> {
    let c = caller(&pool, &headers).await?;
    let acked: i64 = sqlx::query_scalar("SELECT acked FROM devices WHERE device = $1")
        .bind(&c.device)
        .fetch_one(&pool)
        .await?;
    reply(&DeviceReply {
        device: c.device,
        site: c.site,
        acked,
    })
}

fn conflict(reason: String) -> ApiError {
    ApiError(StatusCode::CONFLICT, reason)
}

async fn push(
    State(pool): State<PgPool>,
    Path(site): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&pool, &headers).await?;
    same_site(&c, &site)?;
    let req: PushRequest = parse(&body_of(&headers, body)?)?;
    req.validate().map_err(|e| ApiError::bad(e.to_string()))?;
    let prefix = format!("{site}-");
    for (i, ch) in req.changes.iter().enumerate() {
        if ch.device != c.device {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!("changes[{i}].device: a device pushes only its own changes"),
            ));
        }
        if let Some(subject) = &ch.subject
            && !subject.starts_with(&prefix)
        {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!("changes[{i}].subject: subject {subject} is not of site {site}"),
            ));
        }
        if ch.kind == ecrf_store::log::kind::SUBJECT_CREATED
            && ch.new_value.as_deref() != Some(site.as_str())
        {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!("changes[{i}].new_value: a subject of site {site} must be created there"),
            ));
        }
    }
    let mut tx = pool.begin().await?;
    // The site's row lock orders the site's changes by commit, which pull cursors rely on.
    sqlx::query("SELECT 1 FROM sites WHERE code = $1 FOR UPDATE")
        .bind(&site)
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query("SELECT acked, last_hash FROM devices WHERE device = $1 FOR UPDATE")
        .bind(&c.device)
        .fetch_one(&mut *tx)
        .await?;
    let (mut acked, mut last_hash): (i64, String) = (row.get(0), row.get(1));
    let mut ids = Vec::new();
    let mut seqs = Vec::new();
    let mut hashes = Vec::new();
    let mut bodies = Vec::new();
    for (i, ch) in req.changes.iter().enumerate() {
        if ch.device_seq <= acked {
            let held: Option<String> = sqlx::query_scalar(
                "SELECT hash FROM changes WHERE device = $1 AND device_seq = $2",
            )
            .bind(&c.device)
            .bind(ch.device_seq)
            .fetch_optional(&mut *tx)
            .await?;
            if held.as_deref() != Some(ch.hash.as_str()) {
                return Err(conflict(format!(
                    "changes[{i}]: the server holds another change #{} of this device",
                    ch.device_seq
                )));
            }
            continue;
        }
        if ch.device_seq != acked + 1 || ch.prev_hash != last_hash {
            return Err(conflict(format!(
                "changes[{i}]: change #{} does not follow change #{acked} the server holds \
                 of this device",
                ch.device_seq
            )));
        }
        acked = ch.device_seq;
        last_hash = ch.hash.clone();
        ids.push(ch.change_id.clone());
        seqs.push(ch.device_seq);
        hashes.push(ch.hash.clone());
        bodies.push(serde_json::to_string(ch).map_err(|e| ApiError::bad(e.to_string()))?);
    }
    let stored = ids.len();
    if stored > 0 {
        let done = sqlx::query(
            "INSERT INTO changes (site, device, change_id, device_seq, hash, body) \
             SELECT $1, $2, * FROM UNNEST($3::text[], $4::bigint[], $5::text[], $6::text[]) \
             ON CONFLICT (change_id) DO NOTHING",
        )
        .bind(&site)
        .bind(&c.device)
        .bind(&ids)
        .bind(&seqs)
        .bind(&hashes)
        .bind(&bodies)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() as usize != stored {
            return Err(conflict(
                "a change id of this page is already held for another change".into(),
            ));
        }
        sqlx::query("UPDATE devices SET acked = $2, last_hash = $3 WHERE device = $1")
            .bind(&c.device)
            .bind(acked)
            .bind(&last_hash)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    tracing::info!(device = %c.device, site = %site, stored, acked, "push");
    reply(&PushReply { acked, stored })
}

async fn pull(
    State(pool): State<PgPool>,
    Path(site): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = caller(&pool, &headers).await?;
    same_site(&c, &site)?;
    let (mut after, mut limit) = (0i64, MAX_PAGE as i64);
    for pair in query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let n: i64 = v
            .parse()
            .map_err(|_| ApiError::bad(format!("{k}: must be a whole number, not {v:?}")))?;
        match k {
            "after" if n >= 0 => after = n,
            "limit" if (1..=MAX_PAGE as i64).contains(&n) => limit = n,
            "after" => return Err(ApiError::bad("after: must be 0 or more")),
            "limit" => return Err(ApiError::bad(format!("limit: must be 1 to {MAX_PAGE}"))),
            _ => return Err(ApiError::bad(format!("{k}: unknown parameter"))),
        }
    }
    let rows = sqlx::query(
        "SELECT seq, body FROM changes WHERE site = $1 AND seq > $2 AND device <> $3 \
         ORDER BY seq LIMIT $4",
    )
    .bind(&site)
    .bind(after)
    .bind(&c.device)
    .bind(limit + 1)
    .fetch_all(&pool)
    .await?;
    let more = rows.len() as i64 > limit;
    let mut cursor = after;
    let mut out = String::with_capacity(rows.len() * 420 + 64);
    out.push_str("{\"changes\":[");
    for (i, r) in rows.iter().take(limit as usize).enumerate() {
        if i > 0 {
            out.push(',');
        }
        cursor = r.get(0);
        out.push_str(r.get::<&str, _>(1));
    }
    out.push_str(&format!("],\"cursor\":{cursor},\"more\":{more}}}"));
    Ok(json(out))
}
