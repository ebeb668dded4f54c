//! What a pushed lock does: the site's locks kept in server order (the `locks` table), and
//! each stored `item.set` for a form a lock covered when it arrived held back by a `lock.held`
//! change the server writes in its own chain ([`rules::lock_plan`] decides both).
//!
//! Invariants: a held change stays in the log (nothing is lost); the `lock.held` change names
//! it, so every replica applies the same outcome (the locked value stands); it is written in
//! the server's own chain of the site (`server-<site>`, [`db::users::append_own`]).

use axum::http::StatusCode;
use ecrf_log::body::{self, Body};
use ecrf_log::{Change, ChangeKind};
use sqlx::PgConnection;

use super::ApiError;
use crate::db;
use crate::rules::{self, LockStep};

/// A change as the JSON the server keeps. A `Change` is plain strings and numbers, so this
/// does not fail; if it did, that is the server's fault (500), and nothing is stored.
fn to_json(ch: &Change) -> Result<String, ApiError> {
    serde_json::to_string(ch)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The `lock.held` change the server writes for `ch` under `lock` (numbered, chained, dated
/// and signed by [`db::users::append_own`]).
fn held_change(ch: &Change, lock: &str) -> Change {
    Change {
        seq: 0,
        change_id: String::new(),
        device: String::new(),
        device_seq: 0,
        kind: ChangeKind::LockHeld,
        subject: ch.subject.clone(),
        form: ch.form.clone(),
        item: ch.item.clone(),
        old_value: None,
        new_value: Body::LockHeld(body::Held {
            change: ch.change_id.clone(),
            lock: lock.to_string(),
        })
        .new_value(),
        user: String::new(),
        role: String::new(),
        utc: String::new(),
        local_offset: String::new(),
        reason: Some(format!(
            "made while {lock} was locked; held for the data manager"
        )),
        warning: None,
        prev_hash: String::new(),
        hash: String::new(),
        base: None,
        source: None,
        signature: None,
    }
}

/// Keeps the site's locks (`lock.set` / `lock.release` in server order) and holds back each
/// stored `item.set` whose form a lock covers when it arrives: it was made on a device that had
/// not received the lock. The change stays in the log; the server appends a `lock.held` change
/// naming it, which every replica applies the same way (the locked value stands), and records
/// a flag for the data manager.
/// `lock_bodies`: the site's locks in force as the push began (`db::changes::PushStart`).
pub(super) async fn hold_under_locks(
    tx: &mut PgConnection,
    site: &str,
    device: &str,
    fresh: &[&Change],
    lock_bodies: &[String],
) -> Result<Vec<String>, ApiError> {
    if !rules::touches_locks(fresh) {
        return Ok(Vec::new());
    }
    let mut kept = Vec::new();
    for body in lock_bodies {
        // The server wrote these rows itself: one that does not read back is its fault.
        let ch: Change = serde_json::from_str(body)
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        kept.push(ch);
    }
    let plan = rules::lock_plan(site, &kept, fresh);
    for step in &plan.steps {
        match step {
            LockStep::Set(scope, ch) => {
                db::changes::set_lock(tx, site, scope, &to_json(ch)?).await?;
            }
            LockStep::Release(scope) => db::changes::release_lock(tx, site, scope).await?,
        }
    }
    if plan.held.is_empty() {
        return Ok(Vec::new());
    }
    let mut flags = Vec::new();
    for (ch, lock) in plan.held {
        db::users::append_own(tx, site, held_change(ch, &lock)).await?;
        let detail = format!(
            "change {} ({} of {} {}) was made while {lock} was locked: held for the data \
             manager, not applied",
            ch.change_id,
            ch.item.as_deref().unwrap_or("?"),
            ch.subject.as_deref().unwrap_or("?"),
            ch.form.as_deref().unwrap_or("?"),
        );
        db::changes::record_flag(tx, site, device, &ch.change_id, "held_under_lock", &detail)
            .await?;
        tracing::warn!(site, device, change = %ch.change_id, lock = %lock, "held under a lock");
        flags.push(detail);
    }
    Ok(flags)
}
