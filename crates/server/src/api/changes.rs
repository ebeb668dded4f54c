//! `POST` and `GET /api/v1/sites/{site}/changes`: push a page of a device's changes, pull the
//! site's changes made elsewhere.
//!
//! Invariants: a push is refused whole (nothing stored) if any change is not the caller's, not
//! of its site, or one its author's role may not make; it stores, in one transaction under the
//! site's row lock, only the changes that continue the device's hash chain (a replay of a
//! change held already is skipped, anything else out of order is 409); what the stored changes
//! set off (flags, envelopes opened, changes held under a lock) happens in that transaction.
//! A pull's cursor is a site `seq`, and `seq` is commit order within a site.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use ecrf_log::{Change, ChangeKind, Permission, permission};
use ecrf_wire::wire::{MAX_PAGE, PushReply, PushRequest};
use sqlx::Row;
use sqlx::postgres::PgPool;

use super::extract::{OwnSite, SiteRequest};
use super::{ApiError, conflict, json, reply};

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

pub(super) async fn push(
    State(pool): State<PgPool>,
    SiteRequest { at: c, body: req }: SiteRequest<PushRequest>,
) -> Result<Response, ApiError> {
    let site = c.site.clone();
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
    let mut tx = c.transaction(&pool).await?;
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
    flags.extend(super::randomize::record_openings(&mut tx, &site, &c.device, &fresh).await?);
    flags.extend(super::locks::hold_under_locks(&mut tx, &site, &c.device, &fresh).await?);
    tx.commit().await?;
    tracing::info!(device = %c.device, site = %site, stored, acked, "push");
    reply(&PushReply {
        acked,
        stored,
        flags,
    })
}

/// Records one flag on a pushed change (in the push's transaction), for the audit review.
pub(super) async fn record_flag(
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

pub(super) async fn pull(
    State(pool): State<PgPool>,
    c: OwnSite,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let site = &c.site;
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
    .bind(site)
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
