//! The user registry's statements (`users`, `user_keys`, `user_roles`) and the server's own
//! signing key (`server_key`).
//!
//! Invariants: a user is one person of one site, never deleted; their role history only grows
//! (a role change or deactivation is a new row from its time); keys are only added; the
//! server's key is made once, by the first server that needs it, and never changes.

use std::collections::HashMap;

use ecrf_log::AuthorKey;
use ecrf_wire::wire::EnrolUser;
use sqlx::Row;
use sqlx::postgres::PgConnection;

use crate::ServerError;
use crate::rules::{Refusal, Registered};

/// The server's signing key, made on first use.
pub async fn server_key(conn: &mut PgConnection) -> Result<AuthorKey, ServerError> {
    let seed: Option<String> = sqlx::query_scalar("SELECT seed FROM server_key WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?;
    let seed = match seed {
        Some(s) => s,
        None => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| ServerError::Internal(e.to_string()))?;
            sqlx::query("INSERT INTO server_key (id, seed) VALUES (1, $1) ON CONFLICT DO NOTHING")
                .bind(hex::encode(bytes))
                .execute(&mut *conn)
                .await?;
            // Another server may have won the race: read what is kept.
            sqlx::query_scalar("SELECT seed FROM server_key WHERE id = 1")
                .fetch_one(&mut *conn)
                .await?
        }
    };
    let bytes: [u8; 32] = hex::decode(&seed)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ServerError::Internal("the server's signing key is damaged".into()))?;
    Ok(AuthorKey::from_seed(&bytes))
}

/// The registry's keys and role history of `users` of `site` (users not registered are
/// absent).
pub(crate) async fn registry_of(
    conn: &mut PgConnection,
    site: &str,
    users: &[String],
) -> Result<HashMap<String, Registered>, sqlx::Error> {
    let mut out: HashMap<String, Registered> = HashMap::new();
    let keys = sqlx::query(
        "SELECT username, public_key FROM user_keys WHERE site = $1 AND username = ANY($2)",
    )
    .bind(site)
    .bind(users)
    .fetch_all(&mut *conn)
    .await?;
    for r in keys {
        out.entry(r.get(0)).or_default().keys.push(r.get(1));
    }
    let roles = sqlx::query(
        "SELECT username, from_utc, role FROM user_roles WHERE site = $1 AND username = ANY($2) \
         ORDER BY from_utc, id",
    )
    .bind(site)
    .bind(users)
    .fetch_all(&mut *conn)
    .await?;
    for r in roles {
        out.entry(r.get(0))
            .or_default()
            .roles
            .push((r.get(1), r.get(2)));
    }
    Ok(out)
}

/// The current role of a user (`""` = deactivated), `None` when not registered.
pub(crate) async fn current_role(
    conn: &mut PgConnection,
    site: &str,
    username: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT role FROM user_roles WHERE site = $1 AND username = $2 \
         ORDER BY from_utc DESC, id DESC LIMIT 1",
    )
    .bind(site)
    .bind(username)
    .fetch_optional(&mut *conn)
    .await
}

/// Registers the users a laptop had when it enrolled: a new name is added with its role (held
/// since before any change) and keys; a name the registry has already must hold the same role
/// now, and only gains the laptop's keys (the same person set up on that laptop offline).
pub(crate) async fn adopt(
    conn: &mut PgConnection,
    site: &str,
    device: &str,
    users: &[EnrolUser],
) -> Result<Result<(), Refusal>, sqlx::Error> {
    for u in users {
        match current_role(conn, site, &u.username).await? {
            None => {
                sqlx::query("INSERT INTO users (site, username, name) VALUES ($1, $2, $3)")
                    .bind(site)
                    .bind(&u.username)
                    .bind(&u.name)
                    .execute(&mut *conn)
                    .await?;
                add_role(conn, site, &u.username, &u.role, "").await?;
            }
            Some(role) if role == u.role => {}
            Some(role) => {
                let now = if role.is_empty() {
                    "deactivated".to_string()
                } else {
                    format!("a {role}")
                };
                return Ok(Err(Refusal::Conflict(format!(
                    "user {} is {now} in the server's registry but a {} on this laptop: \
                     nothing was enrolled; ask the trial administrator to correct the user \
                     on the server or on the laptop",
                    u.username, u.role
                ))));
            }
        }
        for key in &u.public_keys {
            add_key(
                conn,
                site,
                &u.username,
                key,
                &format!("enrolment of {device}"),
            )
            .await?;
        }
    }
    Ok(Ok(()))
}

/// Adds a key to a registered user (kept once).
pub(crate) async fn add_key(
    conn: &mut PgConnection,
    site: &str,
    username: &str,
    key: &str,
    source: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO user_keys (site, username, public_key, source) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(site)
    .bind(username)
    .bind(key)
    .bind(source)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A role held by a user from `from_utc` (`""` = since before any change; role `""` =
/// deactivated).
pub(crate) async fn add_role(
    conn: &mut PgConnection,
    site: &str,
    username: &str,
    role: &str,
    from_utc: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO user_roles (site, username, role, from_utc) VALUES ($1, $2, $3, $4)")
        .bind(site)
        .bind(username)
        .bind(role)
        .bind(from_utc)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
