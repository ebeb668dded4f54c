//! The server's PostgreSQL: connecting, migrations, and the administrator's operations
//! (sites, enrolment codes, revoking devices) that `ecrf site|device` call.
//!
//! Invariants: migrations live in `crates/server/migrations`, run in order, each once, in one
//! transaction under an advisory lock (two servers starting at once do not race); tokens and
//! enrolment codes are stored only as SHA-256 hashes.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Executor, Row};

use crate::ServerError;

/// Migrations, in order (name, SQL).
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_sites_devices_changes",
        include_str!("../migrations/0001_sites_devices_changes.sql"),
    ),
    (
        "0002_flags_locks",
        include_str!("../migrations/0002_flags_locks.sql"),
    ),
    (
        "0003_allocation",
        include_str!("../migrations/0003_allocation.sql"),
    ),
];

/// Connects (a pool of `max` connections) and brings the schema up to date.
pub async fn connect(url: &str, max: u32) -> Result<PgPool, ServerError> {
    let bad_url =
        |e: sqlx::Error| ServerError::Database(format!("cannot connect to the database: {e}"));
    // Generic plans: every statement here is keyed by site, device or sequence. A plan made for
    // one pull's values (PostgreSQL's first five runs of a prepared statement) read a whole site's
    // changes to return one page while the table's statistics still described it empty.
    let options = url
        .parse::<PgConnectOptions>()
        .map_err(bad_url)?
        .options([("plan_cache_mode", "force_generic_plan")]);
    let pool = PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(bad_url)?;
    migrate(&pool).await?;
    Ok(pool)
}

async fn migrate(pool: &PgPool) -> Result<(), ServerError> {
    let mut tx = pool.begin().await?;
    tx.execute("SELECT pg_advisory_xact_lock(7305001)").await?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, \
         applied TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await?;
    for (name, sql) in MIGRATIONS {
        let done: Option<String> =
            sqlx::query_scalar("SELECT name FROM schema_migrations WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_none() {
            tx.execute(*sql).await?;
            sqlx::query("INSERT INTO schema_migrations (name) VALUES ($1)")
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// SHA-256 as hex: how tokens and codes are kept.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A random secret of `n` characters from an alphabet without look-alikes.
pub fn random_secret(n: usize) -> Result<String, ServerError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTVWXYZ23456789";
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| ServerError::Internal(e.to_string()))?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

fn check_site_code(code: &str) -> Result<(), ServerError> {
    if code.is_empty() || code.len() > 8 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ServerError::Invalid(format!(
            "site code {code:?}: use 1 to 8 letters or digits"
        )));
    }
    Ok(())
}

/// Creates a site.
pub async fn add_site(pool: &PgPool, code: &str, name: &str) -> Result<(), ServerError> {
    check_site_code(code)?;
    let done = sqlx::query("INSERT INTO sites (code, name) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(code)
        .bind(name)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ServerError::Invalid(format!("site {code} already exists")));
    }
    Ok(())
}

/// Makes a one-time enrolment code for a site, valid for `hours`.
pub async fn enrol_code(pool: &PgPool, site: &str, hours: i64) -> Result<String, ServerError> {
    let found: Option<String> = sqlx::query_scalar("SELECT code FROM sites WHERE code = $1")
        .bind(site)
        .fetch_optional(pool)
        .await?;
    if found.is_none() {
        return Err(ServerError::Invalid(format!(
            "no site {site} (add it with `ecrf site add`)"
        )));
    }
    let code = random_secret(12)?;
    sqlx::query(
        "INSERT INTO enrol_codes (code_hash, site, expires) \
         VALUES ($1, $2, now() + make_interval(hours => $3::int))",
    )
    .bind(secret_hash(&code))
    .bind(site)
    .bind(hours as i32)
    .execute(pool)
    .await?;
    Ok(code)
}

/// Revokes a device: its token is refused from now on, and the envelopes leased to it and not
/// opened are taken back (withdrawn: never opened by anyone). Returns its site and how many
/// envelopes were taken back.
pub async fn revoke_device(pool: &PgPool, device: &str) -> Result<(String, u64), ServerError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "UPDATE devices SET revoked = coalesce(revoked, now()) WHERE device = $1 AND device_no > 0 \
         RETURNING site",
    )
    .bind(device)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(ServerError::Invalid(format!("no device {device}")));
    };
    let taken = sqlx::query(
        "UPDATE allocation SET state = 'withdrawn' WHERE device = $1 AND state = 'leased'",
    )
    .bind(device)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok((row.get::<String, _>(0), taken))
}

/// Loads an allocation list (the CSV `ecrf randomization generate` writes) into the server,
/// all or nothing: every stratum's site must exist and no slot may be loaded already.
/// Returns how many slots were loaded.
pub async fn upload_allocation(pool: &PgPool, csv: &str) -> Result<usize, ServerError> {
    let slots =
        ecrf_randomize::parse_csv(csv).map_err(|e| ServerError::Invalid(format!("--list: {e}")))?;
    let mut tx = pool.begin().await?;
    for s in &slots {
        let stratum = ecrf_randomize::Stratum::from_key(&s.stratum)
            .map_err(|e| ServerError::Invalid(format!("--list: {e}")))?;
        let site: Option<String> = sqlx::query_scalar("SELECT code FROM sites WHERE code = $1")
            .bind(&stratum.site)
            .fetch_optional(&mut *tx)
            .await?;
        if site.is_none() {
            return Err(ServerError::Invalid(format!(
                "--list: slot {} is for site {}, which the server does not have; nothing loaded",
                s.envelope(),
                stratum.site
            )));
        }
        let done = sqlx::query(
            "INSERT INTO allocation (stratum, seq, site, envelope, block, block_size, arm) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&s.stratum)
        .bind(s.seq as i32)
        .bind(&stratum.site)
        .bind(s.envelope())
        .bind(s.block as i32)
        .bind(s.block_size as i32)
        .bind(s.arm.code())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(ServerError::Invalid(format!(
                "--list: slot {} is loaded already; nothing loaded",
                s.envelope()
            )));
        }
    }
    tx.commit().await?;
    Ok(slots.len())
}

/// Slots of a site's list by state: (state, count).
pub async fn allocation_counts(
    pool: &PgPool,
    site: &str,
) -> Result<Vec<(String, i64)>, ServerError> {
    let rows = sqlx::query(
        "SELECT state, count(*) FROM allocation WHERE site = $1 GROUP BY state ORDER BY state",
    )
    .bind(site)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Devices of a site: (device, number, changes held, revoked).
pub async fn devices(
    pool: &PgPool,
    site: &str,
) -> Result<Vec<(String, i32, i64, bool)>, ServerError> {
    let rows = sqlx::query(
        "SELECT device, device_no, acked, revoked IS NOT NULL FROM devices WHERE site = $1 \
         AND device_no > 0 ORDER BY device_no",
    )
    .bind(site)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}
