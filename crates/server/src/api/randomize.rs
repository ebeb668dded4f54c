//! The site's allocation list online: `POST /api/v1/sites/{site}/lease` (whole blocks leased
//! to a device, for randomizing offline) and `POST /api/v1/sites/{site}/randomize` (the next
//! free slot opened for a subject there and then), and the envelopes a push says were opened
//! from a lease.
//!
//! Invariants: every change to the list happens under the site's row lock; a slot is opened
//! once, for one subject, on one device, never reused; a lease is asked by a request signed by
//! an active administrator of the site's registry ([`rules::lease_request`]) and sealed to the device's registered X25519
//! key, each slot with a fresh nonce and commitment kept in the list, so its arms leave the
//! server readable only by that device (never in a reply, log or flag); a pushed opening of a
//! leased slot must carry the listed arm and nonce ([`rules::proven_arm`], else the push is
//! refused whole and the attempt flagged); an opening the list disagrees with otherwise
//! ([`rules::opening`]), or one that skips sealed envelopes before it, is kept (nothing is
//! lost) and flagged for review.

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

/// Leases whole blocks of the site's list to the calling device, asked by one of its
/// administrators: the lowest blocks whose slots are all free, sealed to the device's key, in
/// one transaction under the site's row lock.
pub(super) async fn lease(
    State(pool): State<PgPool>,
    SiteRequest { at: c, body: req }: SiteRequest<LeaseRequest>,
) -> Result<Response, ApiError> {
    let site = c.site.as_str();
    let mut tx = c.transaction(&pool).await?;
    let registry =
        db::users::registry_of(&mut tx, site, std::slice::from_ref(&req.administrator)).await?;
    rules::lease_request(
        &req,
        (&c.device, site),
        chrono::Utc::now(),
        registry.get(&req.administrator),
    )?;
    let device_key = db::device::sealing_key(&mut tx, &c.device)
        .await?
        .ok_or_else(|| {
            ApiError(
                StatusCode::CONFLICT,
                format!(
                    "device {} registered no sealing key when it enrolled: enrol it under a new device id with a new code to receive leases",
                    c.device
                ),
            )
        })?;
    let device_key = ecrf_randomize::seal::key_bytes(&device_key, "sealing key")
        .map_err(|e| ApiError(StatusCode::CONFLICT, e.to_string()))?;
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
    let random = || -> Result<[u8; 32], ApiError> {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b)
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok(b)
    };
    let nonces = slots
        .iter()
        .map(|_| random())
        .collect::<Result<Vec<_>, _>>()?;
    let sealed = ecrf_randomize::seal::seal(&slots, &device_key, random()?, &nonces)
        .map_err(|e| ApiError(StatusCode::CONFLICT, format!("sealing key: {e}")))?;
    db::allocation::set_commitments(
        &mut tx,
        site,
        &slots.iter().map(|s| s.seq as i32).collect::<Vec<_>>(),
        &nonces.iter().map(hex::encode).collect::<Vec<_>>(),
        &sealed
            .envelopes
            .iter()
            .map(|e| e.commitment.clone())
            .collect::<Vec<_>>(),
        &req.administrator,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(device = %c.device, site = %site, envelopes = slots.len(),
        administrator = %req.administrator, "lease sealed to the device");
    reply(&wire::LeaseReply {
        envelopes: sealed.envelopes.len(),
        lease: sealed,
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

/// The arm code a pushed `item.set` of RND.ARM records, if it is one.
fn rnd_arm(ch: &Change) -> Option<String> {
    if ch.kind != ChangeKind::ItemSet
        || ch.form.as_deref() != Some("RND")
        || ch.item.as_deref() != Some("ARM")
    {
        return None;
    }
    match ch.body() {
        Ok(Body::ItemSet {
            new: Some(ecrf_core::Value::Code(arm)),
            ..
        }) => Some(arm),
        _ => None,
    }
}

/// A pushed opening that failed its proof ([`rules::proven_arm`]): the push is refused whole
/// (its transaction rolled back), so the flag is written on its own, naming no stored change.
pub(super) struct Tampered {
    /// The refusal sent to the device.
    pub refusal: ApiError,
    /// The flag's text.
    pub detail: String,
}

/// Marks the slots a pushed `subject.randomize` opened from a lease; flags one that was not
/// this device's to open, and one opened while envelopes before it in its list were still
/// sealed on the device (the change is kept: nothing is lost, the flag is for review). An
/// opening whose arm does not prove against the list is [`Tampered`].
pub(super) async fn record_openings(
    tx: &mut PgConnection,
    site: &str,
    device: &str,
    pushed: &[Change],
    fresh: &[&Change],
) -> Result<Result<Vec<String>, Tampered>, ApiError> {
    let mut flags = Vec::new();
    let index = |ch: &Change| {
        pushed
            .iter()
            .position(|p| p.change_id == ch.change_id)
            .unwrap_or_default()
    };
    for ch in fresh {
        if let Some(arm) = rnd_arm(ch)
            && let Some(subject) = ch.subject.as_deref()
            && let Some((slot, _)) = db::allocation::slot_of_subject(tx, site, subject).await?
            && let Err(refusal) =
                rules::recorded_arm(index(ch), ch, &slot.envelope, &arm, &slot.arm)
        {
            tracing::warn!(site, device, change = %ch.change_id, "RND ARM refused: not the arm opened");
            return Ok(Err(Tampered {
                detail: refusal.to_string(),
                refusal: refusal.into(),
            }));
        }
        if ch.kind != ChangeKind::Randomized {
            continue;
        }
        let Ok(Body::Randomized(o)) = ch.body() else {
            continue;
        };
        // A slot the server does not hold came from a lease file: nothing to mark.
        let Some(listed) = db::allocation::slot_for_update(tx, site, &o.envelope).await? else {
            continue;
        };
        let (state, holder, subject) = (&listed.state, &listed.device, &listed.subject);
        if !o.server
            && listed.state == "leased"
            && listed.device.as_deref() == Some(device)
            && let Err(refusal) = rules::proven_arm(
                index(ch),
                ch,
                &o.envelope,
                (&o.arm, o.nonce.as_deref()),
                (&listed.arm, listed.nonce.as_deref()),
            )
        {
            let detail = refusal.to_string();
            tracing::warn!(site, device, change = %ch.change_id, envelope = %o.envelope,
                "opening refused: arm does not match the commitment");
            return Ok(Err(Tampered {
                refusal: refusal.into(),
                detail,
            }));
        }
        let slot = SlotState {
            state,
            holder: holder.as_deref(),
            subject: subject.as_deref(),
        };
        match rules::opening(&slot, device, ch.subject.as_deref(), o.server) {
            Opening::Mark => {
                let skipped =
                    db::allocation::sealed_before(tx, &listed.stratum, listed.seq, device).await?;
                if !skipped.is_empty() {
                    let detail = format!(
                        "change {} opened envelope {} for {} while envelope(s) {} before it in \
                         the list were still sealed on device {device}: opened out of order",
                        ch.change_id,
                        o.envelope,
                        ch.subject.as_deref().unwrap_or("?"),
                        skipped.join(", ")
                    );
                    tracing::warn!(site, device, change = %ch.change_id, "envelope opened out of order");
                    db::changes::record_flag(
                        tx,
                        site,
                        device,
                        &ch.change_id,
                        "envelope_order",
                        &detail,
                    )
                    .await?;
                    flags.push(detail);
                }
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
    Ok(Ok(flags))
}
