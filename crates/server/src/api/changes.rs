//! `POST` and `GET /api/v1/sites/{site}/changes`: push a page of a device's changes, pull the
//! site's changes made elsewhere.
//!
//! Invariants: a push is refused whole (nothing stored) if any change is not the caller's, not
//! of its site ([`rules::own_changes`]), or one its author's role may not make
//! ([`rules::permissions`]), or not signed by its author with a key the site's user registry
//! holds for them while they held its stated role ([`rules::authors`], checked on other
//! threads while the page is written: a refused page's transaction is never committed); it
//! stores, in one transaction under the site's row lock, only the changes that continue the
//! device's hash chain ([`rules::link`]: a replay of a change held already is skipped,
//! anything else out of order is 409); what the stored changes set off (flags, envelopes
//! opened, changes held under a lock) happens in that same transaction. A
//! pull's cursor is a site `seq`, and `seq` is commit order within a site. Every accepted push
//! returns a receipt signed with the server's key over the device's chain head it now holds.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use ecrf_log::Change;
use ecrf_wire::wire::{MAX_PAGE, PushReply, PushRequest, Receipt};
use sqlx::PgConnection;
use sqlx::postgres::PgPool;

use super::extract::{Caller, OwnSite, SiteRequest};
use super::{ApiError, conflict, json, reply};
use crate::db;
use crate::db::changes::NewChanges;
use crate::rules::{self, Link};

pub(super) async fn push(
    State(pool): State<PgPool>,
    SiteRequest { at: c, body: req }: SiteRequest<PushRequest>,
) -> Result<Response, ApiError> {
    reply(&push_page(&pool, &c, req.changes).await?)
}

/// `POST /api/v1/sites/{site}/sync?after=…&limit=…`: a whole sync of a device in step with the
/// server in one request: its standing (history and clock checked, as `GET /device`), its page
/// of changes pushed (as `POST …/changes`) when they follow what the server holds, and the
/// first page pulled from `after` (as `GET …/changes`). Changes that do not follow (the server
/// holds less than the laptop last knew) are not pushed: the reply's `acked` says where the
/// laptop goes on from with `POST …/changes`. Saves a device in step two requests of three.
pub(super) async fn sync(
    State(pool): State<PgPool>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    SiteRequest { at: c, body: req }: SiteRequest<PushRequest>,
) -> Result<Response, ApiError> {
    let page = rules::page(query.as_deref(), MAX_PAGE)?;
    let caller = Caller {
        device: c.device.clone(),
        site: c.site.clone(),
        acked: c.acked,
    };
    let standing = super::device::standing(&pool, caller, &headers).await?;
    let follows = req
        .changes
        .first()
        .is_some_and(|ch| ch.device_seq <= standing.acked + 1);
    let pushed = if follows {
        Some(push_page(&pool, &c, req.changes).await?)
    } else {
        None
    };
    let pulled = pull_json(&pool, &c, page).await?;
    let encode = |e: serde_json::Error| ApiError::internal(e.to_string());
    let standing = serde_json::to_string(&standing).map_err(encode)?;
    let pushed = serde_json::to_string(&pushed).map_err(encode)?;
    // The pulled changes are stored as JSON already: written around, not re-encoded.
    Ok(json(format!(
        "{{\"device\":{standing},\"push\":{pushed},\"pull\":{pulled}}}"
    )))
}

/// Stores a page of the caller's changes (see the module's invariants) and signs the receipt.
async fn push_page(
    pool: &PgPool,
    c: &OwnSite,
    changes: Vec<Change>,
) -> Result<PushReply, ApiError> {
    let (site, device) = (c.site.as_str(), c.device.as_str());
    rules::permissions(&changes)?;
    rules::own_changes(&changes, device, site)?;
    let _turn = super::limits::site_turn(site).await;
    let db::changes::PushStart {
        mut tx,
        mut acked,
        mut last_hash,
        server_seed,
        lock_bodies,
    } = c.push_transaction(pool).await?;
    let changes = Arc::new(changes);
    let mut page = NewChanges::default();
    // Where the changes new to the server are in the page.
    let mut fresh_at = Vec::new();
    for (i, ch) in changes.iter().enumerate() {
        match rules::link(i, ch, acked, &last_hash)? {
            Link::Held => {
                let held = db::changes::held_hash(&mut tx, device, ch.device_seq).await?;
                rules::replay(i, ch, held.as_deref())?;
            }
            Link::Next => {
                acked = ch.device_seq;
                last_hash = ch.hash.clone();
                fresh_at.push(i);
                page.ids.push(ch.change_id.clone());
                page.seqs.push(ch.device_seq);
                page.hashes.push(ch.hash.clone());
                page.subjects.push(ch.subject.clone());
                page.bodies
                    .push(serde_json::to_string(ch).map_err(|e| ApiError::bad(e.to_string()))?);
            }
        }
    }
    let stored = page.ids.len();
    // Authors are checked on what is new: a change stored already was checked when it came.
    let fresh: Vec<&Change> = fresh_at.iter().map(|&i| &changes[i]).collect();
    let mut names: Vec<String> = fresh.iter().map(|ch| ch.user.clone()).collect();
    names.sort();
    names.dedup();
    let registry = db::users::registry_of(&mut tx, site, &names).await?;
    if rules::touches_users(&fresh) {
        let enrolled = db::device::enrolled_seq(&mut tx, device).await?;
        rules::user_changes_before_enrolment(fresh.iter().copied(), enrolled)?;
    }
    // The signatures are checked on other threads while PostgreSQL stores the page (the two
    // costliest steps of a push, side by side): a page refused for them is rolled back whole
    // with the transaction, never committed.
    let signed = {
        let (changes, fresh_at) = (Arc::clone(&changes), fresh_at.clone());
        tokio::task::spawn_blocking(move || {
            rules::authors(fresh_at.iter().map(|&i| &changes[i]), &registry)
        })
    };
    let inserted = if stored > 0 {
        db::changes::insert_page_and_head(&mut tx, site, device, &page, acked, &last_hash)
            .await
            .map(Some)
    } else {
        Ok(None)
    };
    signed
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    // The chain was checked above, so a row not stored is a change id reused.
    if inserted?.is_some_and(|done| done as usize != stored) {
        return Err(conflict(
            "a change id of this page is already held for another change".into(),
        ));
    }
    let mut flags = dated_before_base(&mut tx, site, device, &fresh).await?;
    match super::randomize::record_openings(&mut tx, site, device, &changes, &fresh).await? {
        Ok(opened) => flags.extend(opened),
        Err(tampered) => {
            // Nothing of this push is stored; the attempt is recorded for the coordinating
            // centre on its own.
            tx.rollback().await?;
            db::changes::record_refused_flag(
                pool,
                site,
                device,
                "envelope_tampered",
                &tampered.detail,
            )
            .await?;
            return Err(tampered.refusal);
        }
    }
    flags
        .extend(super::locks::hold_under_locks(&mut tx, site, device, &fresh, &lock_bodies).await?);
    let receipt = receipt(&mut tx, server_seed.as_deref(), device, acked, &last_hash).await?;
    tx.commit().await?;
    tracing::info!(device = %device, site = %site, stored, acked, "push");
    Ok(PushReply {
        acked,
        stored,
        flags,
        receipt: Some(receipt),
    })
}

/// The server's signed word that it holds `device`'s chain up to `acked`, ending in `hash`,
/// with its key from `seed` (read with the push's locks) or, before its first, a new one.
async fn receipt(
    tx: &mut PgConnection,
    seed: Option<&str>,
    device: &str,
    acked: i64,
    hash: &str,
) -> Result<Receipt, ApiError> {
    let key = match seed {
        Some(seed) => db::users::key_of_seed(seed)?,
        None => db::users::server_key(tx).await?,
    };
    let utc = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let signature = key.sign_bytes(&Receipt::message(device, acked, hash, &utc));
    Ok(Receipt {
        device: device.to_string(),
        device_seq: acked,
        hash: hash.to_string(),
        utc,
        signature,
    })
}

/// Flags (and records) each stored `item.set` dated before a change it names as replaced
/// ([`rules::dated_before`]): one of the two devices' clocks was wrong, which the data manager
/// should know; the change is kept.
async fn dated_before_base(
    tx: &mut PgConnection,
    site: &str,
    device: &str,
    fresh: &[&Change],
) -> Result<Vec<String>, ApiError> {
    let named = rules::named_bases(fresh);
    if named.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = named.iter().map(|(_, id)| id.clone()).collect();
    let utc_of = db::changes::times_of(tx, &ids).await?;
    let mut flags = Vec::new();
    for (i, id) in named {
        let ch = fresh[i];
        let Some(detail) = utc_of
            .get(&id)
            .and_then(|utc| rules::dated_before(ch, &id, utc))
        else {
            continue;
        };
        tracing::warn!(site, device, change = %ch.change_id, "dated before the change it modifies");
        db::changes::record_flag(
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
    Ok(flags)
}

pub(super) async fn pull(
    State(pool): State<PgPool>,
    c: OwnSite,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let page = rules::page(query.as_deref(), MAX_PAGE)?;
    Ok(json(pull_json(&pool, &c, page).await?))
}

/// A page of the site's changes made elsewhere, as the JSON of a `PullReply`.
async fn pull_json(
    pool: &PgPool,
    c: &OwnSite,
    rules::Page { after, limit }: rules::Page,
) -> Result<String, ApiError> {
    // The note is a commit (a WAL flush on a durable server): made while the page is read, not
    // after it, on its own connection.
    let ((page, head), ()) = tokio::try_join!(
        db::changes::pull_page(pool, &c.site, &c.device, after, limit),
        db::changes::note_pull(pool, &c.device, after)
    )?;
    let more = page.len() as i64 > limit;
    let page = &page[..page.len().min(limit as usize)];
    let cursor = rules::cursor(
        after,
        page.last().map(|(seq, _)| *seq),
        head.unwrap_or(after),
        more,
    );
    // The changes are stored as JSON already: the reply is written around them, not re-encoded.
    let mut out = String::with_capacity(page.len() * 420 + 64);
    out.push_str("{\"changes\":[");
    for (i, (_, body)) in page.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(body);
    }
    out.push_str(&format!(
        "],\"cursor\":{cursor},\"more\":{more},\"server_version\":\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    ));
    Ok(out)
}
