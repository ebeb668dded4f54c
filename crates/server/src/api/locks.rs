//! What a pushed lock does: the site's locks kept in server order (`locks`), and each stored
//! `item.set` for a form a lock covered when it arrived held back by a `lock.held` change the
//! server writes in its own chain.
//!
//! Invariant: a held change stays in the log (nothing is lost); the `lock.held` change names
//! it, so every replica applies the same outcome (the locked value stands).

use axum::http::StatusCode;
use ecrf_log::body::{self, Body};
use ecrf_log::{Change, ChangeKind, GENESIS};
use sqlx::Row;

use super::ApiError;
use super::changes::record_flag;

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
pub(super) async fn hold_under_locks(
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
