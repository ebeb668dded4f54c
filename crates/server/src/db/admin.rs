//! The administrator's operations that `ecrf site|device|randomization` call: sites,
//! enrolment codes, revoking devices, loading and counting the allocation list.
//!
//! Invariants: codes are stored only as hashes, each bound to one new device id; revoking a device takes back the envelopes
//! leased to it and not opened, in the same transaction; a list is loaded all or nothing.

use sqlx::Row;
use sqlx::postgres::PgPool;

use super::{random_secret, secret_hash};
use crate::ServerError;

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

/// Makes a one-time enrolment code for a site, valid for `hours`, bound to the one new device
/// `device` (the laptop's device id, shown on its Sync page and by `ecrf sync status`): a
/// reserved id (`server-…`) or one the server knows already is refused.
pub async fn enrol_code(
    pool: &PgPool,
    site: &str,
    device: &str,
    hours: i64,
) -> Result<String, ServerError> {
    crate::rules::new_device_id(device)
        .map_err(|r| ServerError::Invalid(format!("--device: {r}")))?;
    let known: Option<String> = sqlx::query_scalar("SELECT site FROM devices WHERE device = $1")
        .bind(device)
        .fetch_optional(pool)
        .await?;
    if let Some(with) = known {
        return Err(ServerError::Invalid(format!(
            "--device: device {device} is enrolled already (site {with}); a code enrols only a \
             new device"
        )));
    }
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
        "INSERT INTO enrol_codes (code_hash, site, device, expires) \
         VALUES ($1, $2, $3, now() + make_interval(hours => $4::int))",
    )
    .bind(secret_hash(&code))
    .bind(site)
    .bind(device)
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

/// A flag the server raised for review, as the coordinating centre reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// Device whose push raised it.
    pub device: String,
    /// The change it is about, if that change was stored.
    pub change_id: Option<String>,
    /// Kind: `clock`, `dated_before_base`, `held_under_lock`, `envelope`, `envelope_order`,
    /// `envelope_tampered`.
    pub flag: String,
    /// What happened, in words.
    pub detail: String,
    /// When (UTC, RFC 3339).
    pub at: String,
}

/// Every flag of a site, oldest first.
pub async fn flags(pool: &PgPool, site: &str) -> Result<Vec<Flag>, ServerError> {
    let rows = sqlx::query(
        "SELECT device, change_id, flag, detail, \
         to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
         FROM flags WHERE site = $1 ORDER BY id",
    )
    .bind(site)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Flag {
            device: r.get(0),
            change_id: r.get(1),
            flag: r.get(2),
            detail: r.get(3),
            at: r.get(4),
        })
        .collect())
}
