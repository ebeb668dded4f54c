//! The API's statements on `allocation`, the site's randomization list: leasing blocks,
//! opening a slot online, marking a slot a pushed change opened from a lease.
//!
//! Invariants: each runs in a site transaction (the site's row lock held), so two devices never
//! get the same slot; the online list is the stratum named like the site.

use ecrf_wire::ServerSlot;
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgRow};

/// The lowest `n` blocks of the site's list whose slots are all free.
pub(crate) async fn free_blocks(
    tx: &mut PgConnection,
    site: &str,
    n: u32,
) -> Result<Vec<i32>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT block FROM allocation WHERE site = $1 AND stratum = $1 GROUP BY block \
         HAVING bool_and(state = 'free') ORDER BY block LIMIT $2",
    )
    .bind(site)
    .bind(i64::from(n))
    .fetch_all(tx)
    .await
}

/// A slot leased, as the list holds it (the arm as its code).
pub(crate) struct LeasedSlot {
    /// Stratum key.
    pub stratum: String,
    /// Position in the stratum's list.
    pub seq: i32,
    /// Block number.
    pub block: i32,
    /// Block size.
    pub block_size: i32,
    /// Arm code.
    pub arm: String,
}

/// Leases these blocks of the site's list to `device`; returns their slots.
pub(crate) async fn lease_blocks(
    tx: &mut PgConnection,
    site: &str,
    blocks: &[i32],
    device: &str,
) -> Result<Vec<LeasedSlot>, sqlx::Error> {
    let rows = sqlx::query(
        "UPDATE allocation SET state = 'leased', device = $3 \
         WHERE site = $1 AND stratum = $1 AND block = ANY($2) \
         RETURNING stratum, seq, block, block_size, arm",
    )
    .bind(site)
    .bind(blocks)
    .bind(device)
    .fetch_all(tx)
    .await?;
    Ok(rows
        .iter()
        .map(|r| LeasedSlot {
            stratum: r.get(0),
            seq: r.get(1),
            block: r.get(2),
            block_size: r.get(3),
            arm: r.get(4),
        })
        .collect())
}

/// A slot as the online reply gives it, from `envelope, stratum, seq, arm`.
fn server_slot(r: &PgRow) -> ServerSlot {
    ServerSlot {
        envelope: r.get(0),
        stratum: r.get(1),
        seq: r.get::<i32, _>(2) as u32,
        arm: r.get(3),
    }
}

/// The slot opened for a subject of the site already, if any, with the device that opened it.
pub(crate) async fn slot_of_subject(
    tx: &mut PgConnection,
    site: &str,
    subject: &str,
) -> Result<Option<(ServerSlot, Option<String>)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT envelope, stratum, seq, arm, device FROM allocation \
         WHERE site = $1 AND subject = $2",
    )
    .bind(site)
    .bind(subject)
    .fetch_optional(tx)
    .await?;
    Ok(row.map(|r| (server_slot(&r), r.get(4))))
}

/// Opens the site's next free slot for a subject on a device; `None` when none is free.
pub(crate) async fn open_next_free(
    tx: &mut PgConnection,
    site: &str,
    device: &str,
    subject: &str,
) -> Result<Option<ServerSlot>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE allocation SET state = 'opened', device = $2, subject = $3, opened = now() \
         WHERE (stratum, seq) = (SELECT stratum, seq FROM allocation \
            WHERE site = $1 AND stratum = $1 AND state = 'free' ORDER BY seq LIMIT 1) \
         RETURNING envelope, stratum, seq, arm",
    )
    .bind(site)
    .bind(device)
    .bind(subject)
    .fetch_optional(tx)
    .await?;
    Ok(row.as_ref().map(server_slot))
}

/// Keeps each leased slot's nonce and commitment (hex) and who asked for the lease.
pub(crate) async fn set_commitments(
    tx: &mut PgConnection,
    site: &str,
    seqs: &[i32],
    nonces: &[String],
    commitments: &[String],
    leased_by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE allocation a SET nonce = n.nonce, commitment = n.commitment, leased_by = $5 \
         FROM unnest($2::int[], $3::text[], $4::text[]) AS n(seq, nonce, commitment) \
         WHERE a.site = $1 AND a.stratum = $1 AND a.seq = n.seq",
    )
    .bind(site)
    .bind(seqs)
    .bind(nonces)
    .bind(commitments)
    .bind(leased_by)
    .execute(tx)
    .await?;
    Ok(())
}

/// A slot of the list as an opening pushed from a lease is checked against it.
pub(crate) struct ListedSlot {
    /// `free`, `leased`, `opened` or `withdrawn`.
    pub state: String,
    /// The device it is leased to or was opened on.
    pub device: Option<String>,
    /// The subject it was opened for.
    pub subject: Option<String>,
    /// Stratum key.
    pub stratum: String,
    /// Position in the stratum's list.
    pub seq: i32,
    /// Arm code.
    pub arm: String,
    /// Hex of the nonce given when leased (none before sealing).
    pub nonce: Option<String>,
}

/// A slot of the site's list by envelope, locked.
pub(crate) async fn slot_for_update(
    tx: &mut PgConnection,
    site: &str,
    envelope: &str,
) -> Result<Option<ListedSlot>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT state, device, subject, stratum, seq, arm, nonce FROM allocation \
         WHERE site = $1 AND envelope = $2 FOR UPDATE",
    )
    .bind(site)
    .bind(envelope)
    .fetch_optional(tx)
    .await?;
    Ok(row.map(|r| ListedSlot {
        state: r.get(0),
        device: r.get(1),
        subject: r.get(2),
        stratum: r.get(3),
        seq: r.get(4),
        arm: r.get(5),
        nonce: r.get(6),
    }))
}

/// Envelopes of the stratum leased to `device`, still sealed, before position `seq`: an
/// opening at `seq` skipped them.
pub(crate) async fn sealed_before(
    tx: &mut PgConnection,
    stratum: &str,
    seq: i32,
    device: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT envelope FROM allocation WHERE stratum = $1 AND seq < $2 AND device = $3 \
         AND state = 'leased' ORDER BY seq",
    )
    .bind(stratum)
    .bind(seq)
    .bind(device)
    .fetch_all(tx)
    .await
}

/// Marks a leased slot opened for a subject.
pub(crate) async fn mark_opened(
    tx: &mut PgConnection,
    site: &str,
    envelope: &str,
    subject: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE allocation SET state = 'opened', subject = $3, opened = now() \
         WHERE site = $1 AND envelope = $2",
    )
    .bind(site)
    .bind(envelope)
    .bind(subject)
    .execute(tx)
    .await?;
    Ok(())
}
