//! The API's statements on `changes`, `flags` and `locks`: a site's transaction, storing and
//! reading a site's change log, the flags a push raises, the site's lock table.
//!
//! Invariants: a site's changes are written only in [`site_transaction`] (the site's row lock
//! held), so `changes.seq` is commit order within a site; a change id is stored once.

use std::collections::HashMap;

use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Postgres, Row, Transaction};

/// A transaction holding the site's row lock. Every write to a site's changes and allocation
/// list goes through one: the lock orders a site's changes by commit, so `changes.seq` is commit
/// order within a site, which pull cursors (and the head a last page carries) rely on.
pub(crate) async fn site_transaction(
    pool: &PgPool,
    site: &str,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT 1 FROM sites WHERE code = $1 FOR UPDATE")
        .bind(site)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// [`site_transaction`] for a push: the site's row lock and the pushing device's row (its chain
/// head: last change acknowledged and its hash) locked and read in the same statement. Every
/// push of a site waits for the site's lock, so each round trip saved under it is saved for the
/// whole queue. Locks are taken site first, then device, as in every other transaction.
pub(crate) async fn push_transaction(
    pool: &PgPool,
    site: &str,
    device: &str,
) -> Result<PushStart, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(PUSH_HEAD)
        .bind(site)
        .bind(device)
        .fetch_one(&mut *tx)
        .await?;
    Ok(PushStart {
        acked: row.get(0),
        last_hash: row.get(1),
        server_seed: row.get(2),
        lock_bodies: row.get::<Option<Vec<String>>, _>(3).unwrap_or_default(),
        tx,
    })
}

/// A push's transaction as [`push_transaction`] opens it.
pub(crate) struct PushStart {
    /// The transaction, holding the site's and the device's rows.
    pub tx: Transaction<'static, Postgres>,
    /// The device's last change the server holds (0 before its first).
    pub acked: i64,
    /// That change's hash.
    pub last_hash: String,
    /// The seed of the server's signing key for the push's receipt, read in the same round
    /// trip (`None` before the server's first key: `users::server_key` makes it).
    pub server_seed: Option<String>,
    /// The site's locks in force when the push began: their `lock.set` changes as JSON.
    pub lock_bodies: Vec<String>,
}

/// The hash of a device's change ($1 device, $2 device_seq).
pub(crate) const HELD_HASH: &str = "SELECT hash FROM changes WHERE device = $1 AND device_seq = $2";

/// A push's locks and the device's chain head ($1 site, $2 device), with the seed of the
/// server's key its receipt is signed with and the site's locks in force (their `lock.set`
/// changes as JSON; read under the site's lock, which every change to them takes).
pub(crate) const PUSH_HEAD: &str = "SELECT d.acked, d.last_hash, \
     (SELECT seed FROM server_key WHERE id = 1), \
     (SELECT array_agg(body) FROM locks WHERE site = $1) FROM sites s, devices d \
     WHERE s.code = $1 AND d.device = $2 FOR UPDATE OF s, d";

/// A pull's page and the site's head ($1 site, $2 after, $3 device, $4 limit + 1). The page is
/// asked as a range of `(site, seq)` rows, which only the `changes_site_seq` index serves in
/// order (the primary key since migration 0009): asked as `site = $1 AND seq > $2`, the generic
/// plan of a trial with few sites walked the key on `seq` from `after` through every later
/// site's changes (`bench-scale`: a device in step at site 01 read 430,000 rows of other
/// sites per pull, and 500 such devices kept PostgreSQL busy for 33 s). The head likewise: `max(seq) … WHERE site = $1` walked the key on
/// `seq` backwards through the later sites. The device is compared as an expression: PostgreSQL
/// estimated `device <> $3` as matching no row when a site's changes came from one device
/// (n_distinct 1: a site with one laptop), and the generic plan then read the site's whole rest
/// by a bitmap scan and sorted it at every page (`bench-scale --only first-sync`: 40 ms a page
/// instead of 1 ms, 4 s of PostgreSQL's CPU for a site's 107 pages).
pub(crate) const PULL_PAGE: &str = "(SELECT seq, body FROM changes \
     WHERE (site, seq) > ($1::text, $2::bigint) AND (site, seq) <= ($1::text, 9223372036854775807) \
     AND (device || '') <> $3 ORDER BY site, seq LIMIT $4) \
     UNION ALL SELECT coalesce((SELECT seq FROM changes \
     WHERE (site, seq) >= ($1::text, 0) AND (site, seq) <= ($1::text, 9223372036854775807) \
     ORDER BY site DESC, seq DESC LIMIT 1), 0), NULL";

/// The times of changes a push names as replaced ($1 change ids).
pub(crate) const TIMES_OF: &str =
    "SELECT change_id, (body::jsonb) ->> 'utc' FROM changes WHERE change_id = ANY($1)";

/// The hash of change `device_seq` of `device`, if the server holds it.
pub(crate) async fn held_hash(
    tx: &mut PgConnection,
    device: &str,
    device_seq: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(HELD_HASH)
        .bind(device)
        .bind(device_seq)
        .fetch_optional(tx)
        .await
}

/// A page of one device's changes to store, column by column.
#[derive(Default)]
pub(crate) struct NewChanges {
    /// Change ids.
    pub ids: Vec<String>,
    /// The device's sequence numbers.
    pub seqs: Vec<i64>,
    /// Hashes.
    pub hashes: Vec<String>,
    /// Each change as JSON.
    pub bodies: Vec<String>,
    /// The subject each is about, if any (the subject page's index).
    pub subjects: Vec<Option<String>>,
}

/// Stores a page of a device's changes and moves its chain head to `acked` / `last_hash`, in
/// one statement (one round trip under the site's lock). Returns the rows stored: fewer than
/// the page means a change id already held, which the caller refuses (the transaction, head
/// included, is then rolled back).
pub(crate) async fn insert_page_and_head(
    tx: &mut PgConnection,
    site: &str,
    device: &str,
    page: &NewChanges,
    acked: i64,
    last_hash: &str,
) -> Result<u64, sqlx::Error> {
    let stored: i64 = sqlx::query_scalar(
        "WITH stored AS ( \
           INSERT INTO changes (site, device, change_id, device_seq, hash, body, subject) \
           SELECT $1, $2, * FROM UNNEST($3::text[], $4::bigint[], $5::text[], $6::text[], \
             $7::text[]) \
           ON CONFLICT (change_id) DO NOTHING RETURNING 1), \
         head AS (UPDATE devices SET acked = $8, last_hash = $9 WHERE device = $2) \
         SELECT count(*) FROM stored",
    )
    .bind(site)
    .bind(device)
    .bind(&page.ids)
    .bind(&page.seqs)
    .bind(&page.hashes)
    .bind(&page.bodies)
    .bind(&page.subjects)
    .bind(acked)
    .bind(last_hash)
    .fetch_one(tx)
    .await?;
    Ok(stored.max(0) as u64)
}

/// Stores one change (the server's own).
pub(crate) async fn insert_one(
    tx: &mut PgConnection,
    site: &str,
    device: &str,
    change: &ecrf_log::Change,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO changes (site, device, change_id, device_seq, hash, body, subject) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(site)
    .bind(device)
    .bind(&change.change_id)
    .bind(change.device_seq)
    .bind(&change.hash)
    .bind(body)
    .bind(&change.subject)
    .execute(tx)
    .await?;
    Ok(())
}

/// The `utc` of each of these changes the server holds, by change id (`""` when a body has
/// none).
pub(crate) async fn times_of(
    tx: &mut PgConnection,
    ids: &[String],
) -> Result<HashMap<String, String>, sqlx::Error> {
    let rows = sqlx::query(TIMES_OF).bind(ids).fetch_all(tx).await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<String, _>(0),
                r.get::<Option<String>, _>(1).unwrap_or_default(),
            )
        })
        .collect())
}

/// Records one flag on a pushed change (in the push's transaction), for the audit review.
pub(crate) async fn record_flag(
    tx: &mut PgConnection,
    site: &str,
    device: &str,
    change_id: &str,
    flag: &str,
    detail: &str,
) -> Result<(), sqlx::Error> {
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

/// Records a flag about a push that was refused whole (no change of it stored, so none named).
pub(crate) async fn record_refused_flag(
    pool: &PgPool,
    site: &str,
    device: &str,
    flag: &str,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO flags (site, device, flag, detail) VALUES ($1, $2, $3, $4)")
        .bind(site)
        .bind(device)
        .bind(flag)
        .bind(detail)
        .execute(pool)
        .await?;
    Ok(())
}

/// A pull's page: up to `limit` + 1 changes of the site after `after` not made by `device`
/// (`seq`, the change as JSON; one more than asked tells whether more follow), and the site's
/// head (its last `seq`, 0 when empty).
///
/// One statement, one snapshot: the page and the site's last change as this page saw it (the
/// last row, without a body).
pub(crate) async fn pull_page(
    pool: &PgPool,
    site: &str,
    device: &str,
    after: i64,
    limit: i64,
) -> Result<(Vec<(i64, String)>, Option<i64>), sqlx::Error> {
    let mut rows = sqlx::query(PULL_PAGE)
        .bind(site)
        .bind(after)
        .bind(device)
        .bind(limit + 1)
        .fetch_all(pool)
        .await?;
    let head = rows.pop().map(|r| r.get::<i64, _>(0));
    let page = rows
        .iter()
        .map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1)))
        .collect();
    Ok((page, head))
}

/// Notes that `device` asked for its site's changes after `after` (device health on the web
/// view: when it last synced and what is still waiting for it). Not trial data: its commit
/// does not wait for the disk (`synchronous_commit` off for this statement's own transaction,
/// set inside it), so a pull does not wait for a WAL flush of its own; a power cut may take
/// back the last notes, which the device's next pull writes again.
pub(crate) async fn note_pull(pool: &PgPool, device: &str, after: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH telemetry AS (SELECT set_config('synchronous_commit', 'off', true)) \
         UPDATE devices SET last_sync = now(), pulled_seq = greatest(pulled_seq, $2) \
         FROM telemetry WHERE device = $1",
    )
    .bind(device)
    .bind(after)
    .execute(pool)
    .await?;
    Ok(())
}

/// Keeps a lock (its scope as text, its `lock.set` change as JSON), replacing one of the same
/// scope.
pub(crate) async fn set_lock(
    tx: &mut PgConnection,
    site: &str,
    scope: &str,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO locks (site, scope, body) VALUES ($1, $2, $3) \
         ON CONFLICT (site, scope) DO UPDATE SET body = EXCLUDED.body",
    )
    .bind(site)
    .bind(scope)
    .bind(body)
    .execute(tx)
    .await?;
    Ok(())
}

/// Drops a lock.
pub(crate) async fn release_lock(
    tx: &mut PgConnection,
    site: &str,
    scope: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM locks WHERE site = $1 AND scope = $2")
        .bind(site)
        .bind(scope)
        .execute(tx)
        .await?;
    Ok(())
}
