//! The site's allocation list online: `POST /api/v1/sites/{site}/lease` (whole blocks leased
//! to a device, for randomizing offline) and `POST /api/v1/sites/{site}/randomize` (the next
//! free slot opened for a subject there and then), and the envelopes a push says were opened
//! from a lease.
//!
//! Invariants: every change to the list happens under the site's row lock; a slot is opened
//! once, for one subject, on one device, never reused; a pushed opening the list disagrees
//! with is kept (nothing is lost) and flagged for review.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use ecrf_log::body::Body;
use ecrf_log::{Change, ChangeKind};
use ecrf_wire::wire::{self, LeaseRequest, SlotRequest};
use sqlx::Row;
use sqlx::postgres::PgPool;

use super::changes::record_flag;
use super::extract::SiteRequest;
use super::{ApiError, reply};

/// Leases whole blocks of the site's list to the calling device: the lowest blocks whose slots
/// are all free, in one transaction under the site's row lock.
pub(super) async fn lease(
    State(pool): State<PgPool>,
    SiteRequest { at: c, body: req }: SiteRequest<LeaseRequest>,
) -> Result<Response, ApiError> {
    let site = c.site.clone();
    let mut tx = c.transaction(&pool).await?;
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
pub(super) async fn take_slot(
    State(pool): State<PgPool>,
    SiteRequest { at: c, body: req }: SiteRequest<SlotRequest>,
) -> Result<Response, ApiError> {
    let site = c.site.clone();
    if !req.subject.starts_with(&format!("{site}-")) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("subject: subject {} is not of site {site}", req.subject),
        ));
    }
    let mut tx = c.transaction(&pool).await?;
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

/// Marks the slots a pushed `subject.randomize` opened from a lease; flags one that was not
/// this device's to open (the change is kept: nothing is lost, the flag is for review).
pub(super) async fn record_openings(
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
