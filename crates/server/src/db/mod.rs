//! The server's PostgreSQL: every SQL statement of the server is in this module, each in a
//! named function, so the API's handlers read as rules and steps. This file connects and
//! migrates; [`admin`] holds the administrator's operations (re-exported here), [`users`] the
//! user registry and the server's signing key, `devices`,
//! `changes` and `allocation` the API's statements, one table group each.
//!
//! Invariants: migrations live in `crates/server/migrations`, run in order, each once, in one
//! transaction under an advisory lock (two servers starting at once do not race); tokens and
//! enrolment codes are stored only as SHA-256 hashes; a statement that must run inside a
//! transaction takes the transaction's connection (`&mut PgConnection`), one that stands alone
//! takes the pool.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::Executor;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::ServerError;

pub mod admin;
pub(crate) mod allocation;
pub(crate) mod changes;
pub(crate) mod device;
pub mod logs;
pub mod plans;
pub mod users;
pub mod versions;

pub use admin::{
    Flag, add_site, allocation_counts, devices, enrol_code, flags, revoke_device, upload_allocation,
};

/// Migrations, in order (name, SQL).
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_sites_devices_changes",
        include_str!("../../migrations/0001_sites_devices_changes.sql"),
    ),
    (
        "0002_flags_locks",
        include_str!("../../migrations/0002_flags_locks.sql"),
    ),
    (
        "0003_allocation",
        include_str!("../../migrations/0003_allocation.sql"),
    ),
    (
        "0004_sealed_envelopes",
        include_str!("../../migrations/0004_sealed_envelopes.sql"),
    ),
    (
        "0005_enrol_code_device",
        include_str!("../../migrations/0005_enrol_code_device.sql"),
    ),
    (
        "0006_user_registry",
        include_str!("../../migrations/0006_user_registry.sql"),
    ),
    (
        "0007_web_view",
        include_str!("../../migrations/0007_web_view.sql"),
    ),
    (
        "0008_study_versions",
        include_str!("../../migrations/0008_study_versions.sql"),
    ),
    (
        "0009_changes_insert_cost",
        include_str!("../../migrations/0009_changes_insert_cost.sql"),
    ),
];

/// Connects (a pool of `max` connections) and brings the schema up to date.
pub async fn connect(url: &str, max: u32) -> Result<PgPool, ServerError> {
    let bad_url =
        |e: sqlx::Error| ServerError::Database(format!("cannot connect to the database: {e}"));
    // Generic plans: every statement here is keyed by site, device or sequence. A plan made for
    // one pull's values (PostgreSQL's first five runs of a prepared statement) read a whole site's
    // changes to return one page while the table's statistics still described it empty.
    // No JIT: every statement here is short, and a generic plan's cost estimate over a large
    // `changes` table crosses the JIT thresholds, so PostgreSQL compiled the web view's device
    // health query with LLVM on every request (214 ms of a 229 ms run at 10×; 0.5 ms without).
    let options = url
        .parse::<PgConnectOptions>()
        .map_err(bad_url)?
        .options([("plan_cache_mode", "force_generic_plan"), ("jit", "off")]);
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

/// The database answers (`GET /health`).
pub(crate) async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    pool.execute("SELECT 1").await?;
    Ok(())
}
