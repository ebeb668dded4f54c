//! The API's statements on `devices` and `enrol_codes`: a token's device, enrolment, a
//! device's chain head, and the server's own device of a site.
//!
//! Invariants: tokens and codes are looked up by hash only; a device's chain head (`acked`,
//! `last_hash`) is read `FOR UPDATE` and written back in the transaction that stores the
//! changes it counts.

use sqlx::Row;
use sqlx::postgres::{PgConnection, PgPool};

use crate::rules::EnrolCode;

/// A device as its token finds it.
pub(crate) struct TokenDevice {
    /// The device's name.
    pub device: String,
    /// Its site.
    pub site: String,
    /// Revoked by the administrator.
    pub revoked: bool,
    /// How many of its changes the server held when the token was read (`GET /device`'s
    /// answer, read here rather than in a round trip of its own).
    pub acked: i64,
}

/// Every request's device, by its token's hash ($1).
pub(crate) const BY_TOKEN: &str =
    "SELECT device, site, revoked IS NOT NULL, acked FROM devices WHERE token_hash = $1";

/// The device whose token hashes to `token_hash`.
pub(crate) async fn by_token(
    pool: &PgPool,
    token_hash: &str,
) -> Result<Option<TokenDevice>, sqlx::Error> {
    let row = sqlx::query(BY_TOKEN)
        .bind(token_hash)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| TokenDevice {
        device: r.get(0),
        site: r.get(1),
        revoked: r.get(2),
        acked: r.get(3),
    }))
}

/// Records a `clock` flag for a device (outside any push).
pub(crate) async fn record_clock_flag(
    pool: &PgPool,
    site: &str,
    device: &str,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO flags (site, device, flag, detail) VALUES ($1, $2, 'clock', $3)")
        .bind(site)
        .bind(device)
        .bind(detail)
        .execute(pool)
        .await?;
    Ok(())
}

/// The enrolment code hashing to `code_hash`, locked for the enrolment's transaction.
pub(crate) async fn code_for_update(
    tx: &mut PgConnection,
    code_hash: &str,
) -> Result<Option<EnrolCode>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT site, device, used_by IS NOT NULL, expires < now() FROM enrol_codes \
         WHERE code_hash = $1 FOR UPDATE",
    )
    .bind(code_hash)
    .fetch_optional(tx)
    .await?;
    Ok(row.map(|r| EnrolCode {
        site: r.get(0),
        device: r.get(1),
        used: r.get(2),
        expired: r.get(3),
    }))
}

/// True when the server knows the device id already (enrolled, revoked, or its own).
pub(crate) async fn exists(tx: &mut PgConnection, device: &str) -> Result<bool, sqlx::Error> {
    let found: Option<String> = sqlx::query_scalar("SELECT device FROM devices WHERE device = $1")
        .bind(device)
        .fetch_optional(tx)
        .await?;
    Ok(found.is_some())
}

/// Adds a device to a site with the site's next device number (from 1), its chain empty.
/// Returns that number.
pub(crate) async fn add(
    tx: &mut PgConnection,
    device: &str,
    site: &str,
    token_hash: &str,
) -> Result<i32, sqlx::Error> {
    let n: i32 = sqlx::query_scalar(
        "UPDATE sites SET next_device_no = next_device_no + 1 WHERE code = $1 \
         RETURNING next_device_no - 1",
    )
    .bind(site)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO devices (device, site, device_no, token_hash, last_hash) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(device)
    .bind(site)
    .bind(n)
    .bind(token_hash)
    .bind(ecrf_log::GENESIS)
    .execute(tx)
    .await?;
    Ok(n)
}

/// Registers the device's X25519 public key (hex), to which its leases are sealed.
pub(crate) async fn set_sealing_key(
    tx: &mut PgConnection,
    device: &str,
    key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE devices SET sealing_key = $2 WHERE device = $1")
        .bind(device)
        .bind(key)
        .execute(tx)
        .await?;
    Ok(())
}

/// The device's registered X25519 public key (hex), if it has one.
pub(crate) async fn sealing_key(
    tx: &mut PgConnection,
    device: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT sealing_key FROM devices WHERE device = $1")
        .bind(device)
        .fetch_one(tx)
        .await
}

/// Marks an enrolment code spent by a device.
pub(crate) async fn spend_code(
    tx: &mut PgConnection,
    code_hash: &str,
    device: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE enrol_codes SET used_by = $2, used_at = now() WHERE code_hash = $1")
        .bind(code_hash)
        .bind(device)
        .execute(tx)
        .await?;
    Ok(())
}

/// A device's chain head the server holds (`acked`, last hash), locked until the transaction
/// ends.
pub(crate) async fn head_for_update(
    tx: &mut PgConnection,
    device: &str,
) -> Result<(i64, String), sqlx::Error> {
    let row = sqlx::query("SELECT acked, last_hash FROM devices WHERE device = $1 FOR UPDATE")
        .bind(device)
        .fetch_one(tx)
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// Moves a device's chain head.
pub(crate) async fn set_head(
    tx: &mut PgConnection,
    device: &str,
    acked: i64,
    last_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE devices SET acked = $2, last_hash = $3 WHERE device = $1")
        .bind(device)
        .bind(acked)
        .bind(last_hash)
        .execute(tx)
        .await?;
    Ok(())
}

/// Adds the server's own device of a site if it is not there: number 0, revoked, with a
/// token hash no token has, so it can never be used to call the API.
pub(crate) async fn ensure_server_device(
    tx: &mut PgConnection,
    device: &str,
    site: &str,
) -> Result<(), sqlx::Error> {
    ensure_tokenless_device(tx, device, site, 0).await
}

/// [`ensure_server_device`] for any device the server writes for (its own: number 0; the web
/// view's: number -1).
pub(crate) async fn ensure_tokenless_device(
    tx: &mut PgConnection,
    device: &str,
    site: &str,
    number: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO devices (device, site, device_no, token_hash, last_hash, revoked) \
         VALUES ($1, $2, $5, $3, $4, now()) ON CONFLICT (device) DO NOTHING",
    )
    .bind(device)
    .bind(site)
    .bind(format!("no token: {device}"))
    .bind(ecrf_log::GENESIS)
    .bind(number)
    .execute(tx)
    .await?;
    Ok(())
}

/// Records how many changes a device had made when it enrolled.
pub(crate) async fn set_enrolled_seq(
    tx: &mut PgConnection,
    device: &str,
    seq: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE devices SET enrolled_seq = $2 WHERE device = $1")
        .bind(device)
        .bind(seq)
        .execute(tx)
        .await?;
    Ok(())
}

/// How many changes a device had made when it enrolled (`None`: not recorded).
pub(crate) async fn enrolled_seq(
    tx: &mut PgConnection,
    device: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT enrolled_seq FROM devices WHERE device = $1")
        .bind(device)
        .fetch_one(tx)
        .await
}

/// Keeps the secret that opens a device's slot for first logins.
pub(crate) async fn set_unlock_secret(
    tx: &mut PgConnection,
    device: &str,
    secret: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE devices SET unlock_secret = $2 WHERE device = $1")
        .bind(device)
        .bind(secret)
        .execute(tx)
        .await?;
    Ok(())
}

/// A device's site, whether it is revoked, and its unlock secret.
pub(crate) async fn unlock_secret(
    pool: &PgPool,
    device: &str,
) -> Result<Option<(String, bool, Option<String>)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT site, revoked IS NOT NULL, unlock_secret FROM devices WHERE device = $1",
    )
    .bind(device)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
}
