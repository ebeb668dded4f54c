//! The HTTP API: `GET /health` and `/api/v1/…` (enrol, device, push, pull).
//!
//! Invariants: every `/api/v1` request but enrolment carries a device token, and a revoked or
//! unknown token is refused (401); a device reads and writes only its own site (403 otherwise,
//! checked on the path and on every change pushed); bodies are limited to
//! [`MAX_BODY_BYTES`](ecrf_wire::wire::MAX_BODY_BYTES), must be `application/json`, and are
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
use ecrf_log::body::{self, Body};
use ecrf_log::{Change, ChangeKind, GENESIS, Permission, permission};
use ecrf_wire::wire::{
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
        .route("/api/v1/sites/{site}/lease", axum::routing::post(lease))
        .route(
            "/api/v1/sites/{site}/randomize",
            axum::routing::post(take_slot),
        )
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

/// A transaction holding the site's row lock. Every write to a site's changes and allocation
/// list goes through one: the lock orders a site's changes by commit, so `changes.seq` is commit
/// order within a site, which pull cursors (and the head a last page carries) rely on.
async fn site_transaction(
    pool: &PgPool,
    site: &str,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, ApiError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT 1 FROM sites WHERE code = $1 FOR UPDATE")
        .bind(site)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
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

/// Refuses a page holding a change its author's role may not make (the permission table of
/// `ecrf-core`, through [`ecrf_log::permission`]), naming the change and the rule.
fn check_permissions(changes: &[Change]) -> Result<(), ApiError> {
    for (i, ch) in changes.iter().enumerate() {
        let forbidden = |rule: String| {
            ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "changes[{i}] (change {}, {}{} by {} as {}): {rule}; nothing of this push \
                     was stored",
                    ch.change_id,
                    ch.kind,
                    [&ch.subject, &ch.form, &ch.item]
                        .into_iter()
                        .flatten()
                        .fold(String::new(), |acc, p| acc + " " + p),
                    ch.user,
                    ch.role
                ),
            )
        };
        let role: ecrf_core::Role = ch.role.parse().map_err(|e: String| forbidden(e))?;
        match permission(ch) {
            Permission::Anyone => {}
            Permission::Needs(action) if role.may(action) => {}
            Permission::Needs(action) => {
                let roles: Vec<&str> = action.roles().iter().map(|r| r.as_str()).collect();
                return Err(forbidden(format!(
                    "the role {role} may not {action} (permission table: {action} is for {})",
                    roles.join(", ")
                )));
            }
            Permission::ServerOnly => {
                return Err(forbidden(
                    "only the server makes this kind of change".into(),
                ));
            }
        }
    }
    Ok(())
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
    check_permissions(&req.changes)?;
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
        if ch.kind == ChangeKind::SubjectCreated && ch.new_value.as_deref() != Some(site.as_str()) {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!("changes[{i}].new_value: a subject of site {site} must be created there"),
            ));
        }
    }
    let mut tx = site_transaction(&pool, &site).await?;
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
    let fresh: Vec<&Change> = req
        .changes
        .iter()
        .filter(|ch| ids.contains(&ch.change_id))
        .collect();
    let mut flags = dated_before_base(&mut tx, &site, &c.device, &fresh).await?;
    flags.extend(record_openings(&mut tx, &site, &c.device, &fresh).await?);
    flags.extend(hold_under_locks(&mut tx, &site, &c.device, &fresh).await?);
    tx.commit().await?;
    tracing::info!(device = %c.device, site = %site, stored, acked, "push");
    reply(&PushReply {
        acked,
        stored,
        flags,
    })
}

/// Leases whole blocks of the site's list to the calling device: the lowest blocks whose slots
/// are all free, in one transaction under the site's row lock.
async fn lease(
    State(pool): State<PgPool>,
    Path(site): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&pool, &headers).await?;
    same_site(&c, &site)?;
    let req: wire::LeaseRequest = parse(&body_of(&headers, body)?)?;
    req.validate().map_err(|e| ApiError::bad(e.to_string()))?;
    let mut tx = site_transaction(&pool, &site).await?;
    let blocks: Vec<i32> = sqlx::query_scalar(
        "SELECT block FROM allocation WHERE site = $1 AND stratum = $1 GROUP BY block \
         HAVING bool_and(state = 'free') ORDER BY block LIMIT $2",
    )
    .bind(&site)
    .bind(i64::from(req.blocks))
    .fetch_all(&mut *tx)
    .await?;
    if (blocks.len() as u32) < req.blocks {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "blocks: the server has {} whole free blocks for site {site}, not {}",
                blocks.len(),
                req.blocks
            ),
        ));
    }
    let rows = sqlx::query(
        "UPDATE allocation SET state = 'leased', device = $3 \
         WHERE site = $1 AND stratum = $1 AND block = ANY($2) \
         RETURNING stratum, seq, block, block_size, arm",
    )
    .bind(&site)
    .bind(&blocks)
    .bind(&c.device)
    .fetch_all(&mut *tx)
    .await?;
    let mut slots = Vec::with_capacity(rows.len());
    for r in &rows {
        let arm = ecrf_randomize::Arm::from_code(r.get::<&str, _>(4)).ok_or_else(|| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "unknown arm in the list".into(),
            )
        })?;
        slots.push(ecrf_randomize::Slot {
            stratum: r.get(0),
            seq: r.get::<i32, _>(1) as u32,
            block: r.get::<i32, _>(2) as u32,
            block_size: r.get::<i32, _>(3) as u32,
            arm,
        });
    }
    slots.sort_by_key(|s| s.seq);
    tx.commit().await?;
    tracing::info!(device = %c.device, site = %site, envelopes = slots.len(), "lease");
    reply(&wire::LeaseReply {
        lease_csv: ecrf_randomize::to_csv(&slots),
        envelopes: slots.len(),
    })
}

/// Takes the next free slot of the site's list for a subject, online, in one transaction under
/// the site's row lock: it is opened for that subject there and then, never reused. The same
/// subject asking again (a retry after a cut) gets the slot it already has.
async fn take_slot(
    State(pool): State<PgPool>,
    Path(site): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&pool, &headers).await?;
    same_site(&c, &site)?;
    let req: wire::SlotRequest = parse(&body_of(&headers, body)?)?;
    req.validate().map_err(|e| ApiError::bad(e.to_string()))?;
    if !req.subject.starts_with(&format!("{site}-")) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("subject: subject {} is not of site {site}", req.subject),
        ));
    }
    let mut tx = site_transaction(&pool, &site).await?;
    let slot_of = |r: &sqlx::postgres::PgRow| ecrf_wire::ServerSlot {
        envelope: r.get(0),
        stratum: r.get(1),
        seq: r.get::<i32, _>(2) as u32,
        arm: r.get(3),
    };
    let had = sqlx::query(
        "SELECT envelope, stratum, seq, arm, device FROM allocation \
         WHERE site = $1 AND subject = $2",
    )
    .bind(&site)
    .bind(&req.subject)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(r) = had {
        if r.get::<Option<String>, _>(4).as_deref() != Some(c.device.as_str()) {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "subject: {} was randomized on another device, with envelope {}",
                    req.subject,
                    r.get::<String, _>(0)
                ),
            ));
        }
        return reply(&slot_of(&r));
    }
    let row = sqlx::query(
        "UPDATE allocation SET state = 'opened', device = $2, subject = $3, opened = now() \
         WHERE (stratum, seq) = (SELECT stratum, seq FROM allocation \
            WHERE site = $1 AND stratum = $1 AND state = 'free' ORDER BY seq LIMIT 1) \
         RETURNING envelope, stratum, seq, arm",
    )
    .bind(&site)
    .bind(&c.device)
    .bind(&req.subject)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| {
        ApiError(
            StatusCode::CONFLICT,
            format!("the server has no free slot of site {site}'s list (none loaded, or all used)"),
        )
    })?;
    tx.commit().await?;
    let slot = slot_of(&row);
    tracing::info!(device = %c.device, site = %site, envelope = %slot.envelope, "randomized online");
    reply(&slot)
}

/// Records one flag on a pushed change (in the push's transaction), for the audit review.
async fn record_flag(
    tx: &mut sqlx::PgConnection,
    site: &str,
    device: &str,
    change_id: &str,
    flag: &str,
    detail: &str,
) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO flags (site, device, change_id, flag, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(site)
    .bind(device)
    .bind(change_id)
    .bind(flag)
    .bind(detail)
    .execute(tx)
    .await?;
    Ok(())
}

/// Marks the slots a pushed `subject.randomize` opened from a lease; flags one that was not
/// this device's to open (the change is kept: nothing is lost, the flag is for review).
async fn record_openings(
    tx: &mut sqlx::PgConnection,
    site: &str,
    device: &str,
    fresh: &[&Change],
) -> Result<Vec<String>, ApiError> {
    let mut flags = Vec::new();
    for ch in fresh {
        if ch.kind != ChangeKind::Randomized {
            continue;
        }
        let Ok(Body::Randomized(o)) = ch.body() else {
            continue;
        };
        let row = sqlx::query(
            "SELECT state, device, subject FROM allocation WHERE site = $1 AND envelope = $2 \
             FOR UPDATE",
        )
        .bind(site)
        .bind(&o.envelope)
        .fetch_optional(&mut *tx)
        .await?;
        // A slot the server does not hold came from a lease file: nothing to mark.
        let Some(row) = row else { continue };
        let (state, holder, subject): (String, Option<String>, Option<String>) =
            (row.get(0), row.get(1), row.get(2));
        let mine = holder.as_deref() == Some(device);
        let ok = match state.as_str() {
            "leased" if mine && !o.server => {
                sqlx::query(
                    "UPDATE allocation SET state = 'opened', subject = $3, opened = now() \
                     WHERE site = $1 AND envelope = $2",
                )
                .bind(site)
                .bind(&o.envelope)
                .bind(&ch.subject)
                .execute(&mut *tx)
                .await?;
                true
            }
            "opened" => mine && subject == ch.subject,
            _ => false,
        };
        if !ok {
            let detail = format!(
                "change {} opened envelope {} for {}, but the server's list has it {state}{}",
                ch.change_id,
                o.envelope,
                ch.subject.as_deref().unwrap_or("?"),
                holder
                    .map(|d| format!(" for device {d}"))
                    .unwrap_or_default()
            );
            tracing::warn!(site, device, change = %ch.change_id, "envelope not this device's");
            record_flag(tx, site, device, &ch.change_id, "envelope", &detail).await?;
            flags.push(detail);
        }
    }
    Ok(flags)
}

/// The server's own device of a site: it writes `lock.held` changes in its own hash chain, so
/// every replica verifies them like any device's. It has no token (revoked, hash unusable).
fn server_device(site: &str) -> String {
    format!("server-{site}")
}

/// Keeps the site's locks (`lock.set` / `lock.release` in server order) and holds back each
/// stored `item.set` whose form a lock covers when it arrives: it was made on a device that had
/// not received the lock. The change stays in the log; the server appends a `lock.held` change
/// naming it, which every replica applies the same way (the locked value stands), and records
/// a flag for the data manager. The test of "covered" is [`ecrf_core::lock::Locks::covering`].
async fn hold_under_locks(
    tx: &mut sqlx::PgConnection,
    site: &str,
    device: &str,
    fresh: &[&Change],
) -> Result<Vec<String>, ApiError> {
    let is_lock = |ch: &Change| matches!(ch.kind, ChangeKind::Locked | ChangeKind::Unlocked);
    let touches_locks = fresh.iter().any(|ch| is_lock(ch));
    let has_data = fresh.iter().any(|ch| ch.kind == ChangeKind::ItemSet);
    if !touches_locks && !has_data {
        return Ok(Vec::new());
    }
    let rows = sqlx::query("SELECT body FROM locks WHERE site = $1")
        .bind(site)
        .fetch_all(&mut *tx)
        .await?;
    let mut locks = ecrf_core::lock::Locks::default();
    let scope_of = |ch: &Change| match ch.body() {
        Ok(Body::Locked(b) | Body::Unlocked(b)) => {
            b.scope(ch.subject.as_deref(), ch.form.as_deref())
        }
        _ => None,
    };
    for r in &rows {
        let ch: Change = serde_json::from_str(r.get::<&str, _>(0))
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        if let Some(scope) = scope_of(&ch) {
            let _ = locks.lock(scope, "held");
        }
    }
    let mut held = Vec::new();
    for ch in fresh {
        if is_lock(ch) {
            let Some(scope) = scope_of(ch) else { continue };
            let key = scope.to_string();
            if ch.kind == ChangeKind::Locked {
                let _ = locks.lock(scope, "locked");
                sqlx::query(
                    "INSERT INTO locks (site, scope, body) VALUES ($1, $2, $3) \
                     ON CONFLICT (site, scope) DO UPDATE SET body = EXCLUDED.body",
                )
                .bind(site)
                .bind(&key)
                .bind(serde_json::to_string(ch).unwrap_or_default())
                .execute(&mut *tx)
                .await?;
            } else {
                let _ = locks.unlock(&scope, "unlocked");
                sqlx::query("DELETE FROM locks WHERE site = $1 AND scope = $2")
                    .bind(site)
                    .bind(&key)
                    .execute(&mut *tx)
                    .await?;
            }
        } else if ch.kind == ChangeKind::ItemSet
            && let (Some(subject), Some(form)) = (&ch.subject, &ch.form)
            && let Some(scope) = locks.covering(site, subject, form)
        {
            held.push((*ch, scope.to_string()));
        }
    }
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let me = server_device(site);
    sqlx::query(
        "INSERT INTO devices (device, site, device_no, token_hash, last_hash, revoked) \
         VALUES ($1, $2, 0, $3, $4, now()) ON CONFLICT (device) DO NOTHING",
    )
    .bind(&me)
    .bind(site)
    .bind(format!("no token: {me}"))
    .bind(GENESIS)
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query("SELECT acked, last_hash FROM devices WHERE device = $1 FOR UPDATE")
        .bind(&me)
        .fetch_one(&mut *tx)
        .await?;
    let (mut seq, mut prev): (i64, String) = (row.get(0), row.get(1));
    let mut flags = Vec::new();
    for (ch, lock) in held {
        seq += 1;
        let mut c = Change {
            seq: 0,
            change_id: uuid::Uuid::now_v7().to_string(),
            device: me.clone(),
            device_seq: seq,
            kind: ChangeKind::LockHeld,
            subject: ch.subject.clone(),
            form: ch.form.clone(),
            item: ch.item.clone(),
            old_value: None,
            new_value: Body::LockHeld(body::Held {
                change: ch.change_id.clone(),
                lock: lock.clone(),
            })
            .new_value(),
            user: "server".into(),
            role: "server".into(),
            utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            local_offset: "+00:00".into(),
            reason: Some(format!(
                "made while {lock} was locked; held for the data manager"
            )),
            warning: None,
            prev_hash: prev.clone(),
            hash: String::new(),
            base: None,
        };
        c.hash = c.compute_hash();
        sqlx::query(
            "INSERT INTO changes (site, device, change_id, device_seq, hash, body) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(site)
        .bind(&me)
        .bind(&c.change_id)
        .bind(seq)
        .bind(&c.hash)
        .bind(serde_json::to_string(&c).unwrap_or_default())
        .execute(&mut *tx)
        .await?;
        let detail = format!(
            "change {} ({} of {} {}) was made while {lock} was locked: held for the data \
             manager, not applied",
            ch.change_id,
            ch.item.as_deref().unwrap_or("?"),
            ch.subject.as_deref().unwrap_or("?"),
            ch.form.as_deref().unwrap_or("?"),
        );
        record_flag(tx, site, device, &ch.change_id, "held_under_lock", &detail).await?;
        tracing::warn!(site, device, change = %ch.change_id, lock = %lock, "held under a lock");
        flags.push(detail);
        prev = c.hash;
    }
    sqlx::query("UPDATE devices SET acked = $2, last_hash = $3 WHERE device = $1")
        .bind(&me)
        .bind(seq)
        .bind(&prev)
        .execute(&mut *tx)
        .await?;
    Ok(flags)
}

/// Flags (and records) each stored `item.set` dated before a change it names as replaced.
async fn dated_before_base(
    tx: &mut sqlx::PgConnection,
    site: &str,
    device: &str,
    fresh: &[&Change],
) -> Result<Vec<String>, ApiError> {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let mut named: Vec<(usize, String)> = Vec::new();
    for (i, ch) in fresh.iter().enumerate() {
        if ch.kind != ChangeKind::ItemSet {
            continue;
        }
        let base: Vec<String> = ch
            .base
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or_default();
        named.extend(base.into_iter().map(|id| (i, id)));
    }
    if named.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = named.iter().map(|(_, id)| id.clone()).collect();
    let rows = sqlx::query(
        "SELECT change_id, (body::jsonb) ->> 'utc' FROM changes WHERE change_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let utc_of: std::collections::HashMap<String, String> = rows
        .iter()
        .map(|r| {
            (
                r.get::<String, _>(0),
                r.get::<Option<String>, _>(1).unwrap_or_default(),
            )
        })
        .collect();
    let mut flags = Vec::new();
    for (i, id) in named {
        let ch = fresh[i];
        let (Some(at), Some(Some(before))) = (parse(&ch.utc), utc_of.get(&id).map(|t| parse(t)))
        else {
            continue;
        };
        if at < before {
            let detail = format!(
                "change {} ({} of {} {}) is dated {} but modifies change {id} dated {}",
                ch.change_id,
                ch.item.as_deref().unwrap_or("?"),
                ch.subject.as_deref().unwrap_or("?"),
                ch.form.as_deref().unwrap_or("?"),
                ch.utc,
                before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            );
            tracing::warn!(site, device, change = %ch.change_id, "dated before the change it modifies");
            record_flag(
                tx,
                site,
                device,
                &ch.change_id,
                "dated_before_base",
                &detail,
            )
            .await?;
            flags.push(detail);
        }
    }
    Ok(flags)
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
    // One statement, one snapshot: the page and the site's last change as this page saw it
    // (the last row, without a body). Pushes commit a site's changes in `seq` order under the
    // site's row lock, so once the page is the last one, everything up to that head is either in
    // it or the device's own: the cursor moves there and the next pull does not read this
    // device's own changes again.
    let rows = sqlx::query(
        "(SELECT seq, body FROM changes WHERE site = $1 AND seq > $2 AND device <> $3 \
          ORDER BY seq LIMIT $4) \
         UNION ALL SELECT coalesce(max(seq), 0), NULL FROM changes WHERE site = $1",
    )
    .bind(&site)
    .bind(after)
    .bind(&c.device)
    .bind(limit + 1)
    .fetch_all(&pool)
    .await?;
    let (page, head) = rows.split_at(rows.len().saturating_sub(1));
    let head: i64 = head.first().map(|r| r.get(0)).unwrap_or(after);
    let more = page.len() as i64 > limit;
    let mut cursor = after;
    let mut out = String::with_capacity(page.len() * 420 + 64);
    out.push_str("{\"changes\":[");
    for (i, r) in page.iter().take(limit as usize).enumerate() {
        if i > 0 {
            out.push(',');
        }
        cursor = r.get(0);
        out.push_str(r.get::<&str, _>(1));
    }
    if !more {
        cursor = cursor.max(head);
    }
    out.push_str(&format!("],\"cursor\":{cursor},\"more\":{more}}}"));
    Ok(json(out))
}
