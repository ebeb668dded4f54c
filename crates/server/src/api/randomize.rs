//! The site's allocation list online: `POST /api/v1/sites/{site}/lease` (whole blocks leased
//! to a device, for randomizing offline) and `POST /api/v1/sites/{site}/randomize` (the next
//! free slot opened for a subject there and then), and the envelopes a push says were opened
//! from a lease.
//!
//! Invariants: every change to the list happens under the site's row lock; a slot is opened
//! once, for one subject, on one device, never reused; a pushed opening the list disagrees
//! with ([`rules::opening`]) is kept (nothing is lost) and flagged for review.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use ecrf_log::body::Body;
use ecrf_log::{Change, ChangeKind};
use ecrf_wire::wire::{self, LeaseRequest, SlotRequest};
use sqlx::PgConnection;
use sqlx::postgres::PgPool;

use super::extract::SiteRequest;
use super::{ApiError, reply};
use crate::db;
use crate::rules::{self, Opening, SlotState};

/// Leases whole blocks of the site's list to the calling device: the lowest blocks whose slots
/// are all free, in one transaction under the site's row lock.
pub(super) async fn lease(
    State(pool): State<PgPool>,
    SiteRequest { at: c, body: req }: SiteRequest<LeaseRequest>,
) -> Result<Response, ApiError> {
    let site = c.site.as_str();
    let mut tx = c.transaction(&pool).await?;
    let blocks = db::allocation::free_blocks(&mut tx, site, req.blocks).await?;
    rules::enough_blocks(blocks.len(), req.blocks, site)?;
    let leased = db::allocation::lease_blocks(&mut tx, site, &blocks, &c.device).await?;
    let mut slots = Vec::with_capacity(leased.len());
    for s in leased {
        // The list was checked when it was loaded: an unknown arm is the server's fault.
        let arm = ecrf_randomize::Arm::from_code(&s.arm).ok_or_else(|| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "unknown arm in the list".into(),
            )
        })?;
        slots.push(ecrf_randomize::Slot {
            stratum: s.stratum,
            seq: s.seq as u32,
            block: s.block as u32,
            block_size: s.block_size as u32,
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
    let site = c.site.as_str();
    rules::slot_subject(&req.subject, site)?;
    let mut tx = c.transaction(&pool).await?;
    if let Some((slot, holder)) =
        db::allocation::slot_of_subject(&mut tx, site, &req.subject).await?
    {
        rules::same_slot(&req.subject, &slot.envelope, holder.as_deref(), &c.device)?;
        return reply(&slot);
    }
    let slot = db::allocation::open_next_free(&mut tx, site, &c.device, &req.subject)
        .await?
        .ok_or_else(|| {
            ApiError(
                StatusCode::CONFLICT,
                format!(
                    "the server has no free slot of site {site}'s list (none loaded, or all used)"
                ),
            )
        })?;
    tx.commit().await?;
    tracing::info!(device = %c.device, site = %site, envelope = %slot.envelope, "randomized online");
    reply(&slot)
}

/// Marks the slots a pushed `subject.randomize` opened from a lease; flags one that was not
/// this device's to open (the change is kept: nothing is lost, the flag is for review).
pub(super) async fn record_openings(
    tx: &mut PgConnection,
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
        // A slot the server does not hold came from a lease file: nothing to mark.
        let Some((state, holder, subject)) =
            db::allocation::slot_for_update(tx, site, &o.envelope).await?
        else {
            continue;
        };
        let slot = SlotState {
            state: &state,
            holder: holder.as_deref(),
            subject: subject.as_deref(),
        };
        match rules::opening(&slot, device, ch.subject.as_deref(), o.server) {
            Opening::Mark => {
                db::allocation::mark_opened(tx, site, &o.envelope, ch.subject.as_deref()).await?;
            }
            Opening::Agrees => {}
            Opening::Flag => {
                let detail = format!(
                    "change {} opened envelope {} for {}, but the server's list has it {state}{}",
                    ch.change_id,
                    o.envelope,
                    ch.subject.as_deref().unwrap_or("?"),
                    holder
                        .as_deref()
                        .map(|d| format!(" for device {d}"))
                        .unwrap_or_default()
                );
                tracing::warn!(site, device, change = %ch.change_id, "envelope not this device's");
                db::changes::record_flag(tx, site, device, &ch.change_id, "envelope", &detail)
                    .await?;
                flags.push(detail);
            }
        }
    }
    Ok(flags)
}
