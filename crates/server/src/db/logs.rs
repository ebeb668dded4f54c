//! Every site's change log as the server holds it, read whole for exports (`ecrf export
//! --database-url`, the web view's downloads).
//!
//! Invariant: one read-only, repeatable-read transaction, so the sites and their logs are one
//! moment's; each site's changes in its commit order, each change's `seq` the server's
//! `changes.seq`.

use ecrf_log::Change;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

use crate::ServerError;

/// Sites (all, or those of `only`) and each one's log, in commit order.
#[allow(clippy::type_complexity)]
pub async fn site_logs(
    conn: &mut PgConnection,
    only: Option<&[String]>,
) -> Result<(Vec<String>, Vec<(String, Vec<Change>)>), ServerError> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let sites: Vec<String> = sqlx::query_scalar(
        "SELECT code FROM sites WHERE $1::text[] IS NULL OR code = ANY($1) ORDER BY code",
    )
    .bind(only)
    .fetch_all(&mut *tx)
    .await?;
    let rows = sqlx::query(
        "SELECT site, seq, body FROM changes WHERE $1::text[] IS NULL OR site = ANY($1) \
         ORDER BY site, seq",
    )
    .bind(only)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut logs: Vec<(String, Vec<Change>)> = Vec::new();
    for r in rows {
        let site: String = r.get(0);
        let seq: i64 = r.get(1);
        let body: &str = r.get(2);
        let mut change: Change = serde_json::from_str(body).map_err(|e| {
            ServerError::Internal(format!("server change #{seq} of site {site}: {e}"))
        })?;
        change.seq = seq;
        match logs.last_mut() {
            Some((s, log)) if *s == site => log.push(change),
            _ => logs.push((site, vec![change])),
        }
    }
    Ok((sites, logs))
}
