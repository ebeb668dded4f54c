//! The user registry's statements (`users`, `user_keys`, `user_roles`) and the server's own
//! signing key (`server_key`).
//!
//! Invariants: a user is one person of one site, never deleted; their role history only grows
//! (a role change or deactivation is a new row from its time); keys are only added; the
//! server's key is made once, by the first server that needs it, and never changes.

use std::collections::HashMap;

use ecrf_core::Role;
use ecrf_log::author::SERVER_AUTHOR;
use ecrf_log::body::{self, Body};
use ecrf_log::{AuthorKey, Change, ChangeKind};
use ecrf_wire::wire::EnrolUser;
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgPool};

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
    key_of_seed(&seed)
}

/// The server's signing key from its seed as kept (64 hex digits).
pub(crate) fn key_of_seed(seed: &str) -> Result<AuthorKey, ServerError> {
    let bytes: [u8; 32] = hex::decode(seed)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ServerError::Internal("the server's signing key is damaged".into()))?;
    Ok(AuthorKey::from_seed(&bytes))
}

/// A push's authors' keys and roles ($1 site, $2 usernames), in one round trip under the site's
/// lock: a key row has only `public_key`, a role row `from_utc` and `role`; the roles in time
/// order, after the keys (whose `from_utc` is NULL).
pub(crate) const REGISTRY: &str = "SELECT username, public_key, from_utc, role FROM ( \
     SELECT username, public_key, NULL::text AS from_utc, NULL::text AS role, 0::bigint AS id \
       FROM user_keys WHERE site = $1 AND username = ANY($2) \
     UNION ALL SELECT username, NULL, from_utc, role, id \
       FROM user_roles WHERE site = $1 AND username = ANY($2)) r \
     ORDER BY from_utc NULLS FIRST, id";

/// The registry's keys and role history of `users` of `site` (users not registered are
/// absent).
pub(crate) async fn registry_of(
    conn: &mut PgConnection,
    site: &str,
    users: &[String],
) -> Result<HashMap<String, Registered>, sqlx::Error> {
    let mut out: HashMap<String, Registered> = HashMap::new();
    let rows = sqlx::query(REGISTRY)
        .bind(site)
        .bind(users)
        .fetch_all(&mut *conn)
        .await?;
    for r in rows {
        let entry = out.entry(r.get(0)).or_default();
        match (r.get::<Option<String>, _>(1), r.get::<Option<String>, _>(2)) {
            (Some(key), _) => entry.keys.push(key),
            (None, Some(from_utc)) => entry.roles.push((from_utc, r.get(3))),
            (None, None) => {}
        }
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

/// The server's own device of a site: it writes its own changes (held changes, the user
/// registry's) in its own hash chain, signed with the server's key, so every replica verifies
/// them like any device's. It has no usable token.
pub fn server_device(site: &str) -> String {
    format!("server-{site}")
}

/// Appends a change the server makes itself to its chain of `site` (the caller holds the
/// site's row lock): numbered, chained, hashed, signed with the server's key and stored.
/// `kind`, `subject`, `form`, `item`, `new_value` and `reason` come from `template`.
pub(crate) async fn append_own(
    tx: &mut PgConnection,
    site: &str,
    template: Change,
) -> Result<Change, ServerError> {
    let key = server_key(tx).await?;
    let me = server_device(site);
    super::device::ensure_server_device(tx, &me, site).await?;
    append_in_chain(
        tx,
        (site, &me),
        template,
        (SERVER_AUTHOR, SERVER_AUTHOR, &key),
    )
    .await
}

/// The web view's device of a site: the chain of what people do on the web (queries, SDV,
/// locks), each change signed by its author's own key. Apart from the server's own chain,
/// whose changes laptops take only with the server's key (they change users).
pub fn web_device(site: &str) -> String {
    format!("web-{site}")
}

/// Someone who writes a change on the server: their name, the role they write as, and their
/// own signing key (a web user's, opened from the escrow with the password they logged in
/// with), so every laptop checks the change as theirs.
pub type Author<'a> = (&'a str, &'a str, &'a AuthorKey);

/// Appends a change a person made on the web view (a query raised, an SDV mark, a lock) to
/// the web view's chain of `site` ([`web_device`]), in one transaction that holds the site's
/// row lock: numbered, chained, hashed and signed with the author's own key. The caller has
/// checked the role.
pub async fn append_as(
    pool: &PgPool,
    site: &str,
    template: Change,
    author: Author<'_>,
) -> Result<Change, ServerError> {
    let mut tx = super::changes::site_transaction(pool, site).await?;
    let me = web_device(site);
    super::device::ensure_tokenless_device(&mut tx, &me, site, -1).await?;
    let c = append_in_chain(&mut tx, (site, &me), template, author).await?;
    // A lock set or released on the web is kept like a pushed one: later data under it is held.
    for step in crate::rules::lock_plan(site, &[], &[&c]).steps {
        match step {
            crate::rules::LockStep::Set(scope, ch) => {
                let json =
                    serde_json::to_string(ch).map_err(|e| ServerError::Internal(e.to_string()))?;
                super::changes::set_lock(&mut tx, site, &scope, &json).await?;
            }
            crate::rules::LockStep::Release(scope) => {
                super::changes::release_lock(&mut tx, site, &scope).await?
            }
        }
    }
    tx.commit().await?;
    Ok(c)
}

async fn append_in_chain(
    tx: &mut PgConnection,
    (site, me): (&str, &str),
    template: Change,
    (user, role, key): Author<'_>,
) -> Result<Change, ServerError> {
    let (seq, prev) = super::device::head_for_update(tx, me).await?;
    let mut c = Change {
        seq: 0,
        change_id: uuid::Uuid::now_v7().to_string(),
        device: me.to_string(),
        device_seq: seq + 1,
        user: user.into(),
        role: role.into(),
        utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        local_offset: "+00:00".into(),
        prev_hash: prev,
        hash: String::new(),
        signature: None,
        ..template
    };
    c.hash = c.compute_hash();
    key.sign(&mut c);
    let json = serde_json::to_string(&c).map_err(|e| ServerError::Internal(e.to_string()))?;
    super::changes::insert_one(tx, site, me, &c, &json).await?;
    super::device::set_head(tx, me, c.device_seq, &c.hash).await?;
    Ok(c)
}

/// A change of `kind` about user `username` for [`append_own`].
fn user_change(
    kind: ChangeKind,
    username: &str,
    new_value: Option<String>,
    reason: &str,
) -> Change {
    Change {
        item: Some(username.to_string()),
        new_value,
        reason: Some(reason.to_string()),
        ..Change::blank(kind)
    }
}

/// A new user's credentials, made where the password was typed (`ecrf server user add`):
/// the server keeps the verifier and the escrowed signing key, never the password.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Password verifier (`ecrf_identity::Verifier` as text).
    pub verifier: String,
    /// The signing key wrapped by the password (`ecrf_identity::Escrow` as text).
    pub escrow: String,
    /// Its public half.
    pub public_key: String,
}

fn check_user_name(username: &str) -> Result<(), ServerError> {
    let ok = (2..=32).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok && username != SERVER_AUTHOR {
        Ok(())
    } else {
        Err(ServerError::Invalid(format!(
            "user name {username:?}: use 2 to 32 lower-case letters, digits, '.', '_' or '-' \
             (not \"{SERVER_AUTHOR}\")"
        )))
    }
}

/// Creates a user of `site` (administrators, `ecrf server user add`): in the registry with
/// their role from now, verifier, escrowed key and public key, and as a `user.add` change in
/// the server's chain of the site, which every laptop of the site receives at its next sync.
pub async fn add_user(
    pool: &PgPool,
    site: &str,
    username: &str,
    name: &str,
    role: Role,
    cred: &Credentials,
) -> Result<(), ServerError> {
    check_user_name(username)?;
    let mut tx = super::changes::site_transaction(pool, site).await?;
    let known: Option<String> = sqlx::query_scalar("SELECT code FROM sites WHERE code = $1")
        .bind(site)
        .fetch_optional(&mut *tx)
        .await?;
    if known.is_none() {
        return Err(ServerError::Invalid(format!("--site: no site {site}")));
    }
    if current_role(&mut tx, site, username).await?.is_some() {
        return Err(ServerError::Invalid(format!(
            "user {username} exists already at site {site}; a user is never made twice (use \
             `ecrf server user reset` for a new password)"
        )));
    }
    sqlx::query(
        "INSERT INTO users (site, username, name, verifier, escrow) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(site)
    .bind(username)
    .bind(name)
    .bind(&cred.verifier)
    .bind(&cred.escrow)
    .execute(&mut *tx)
    .await?;
    let added = append_own(
        &mut tx,
        site,
        user_change(
            ChangeKind::UserAdded,
            username,
            Body::UserAdded(body::UserAdded {
                name: name.to_string(),
                role,
                public_key: Some(cred.public_key.clone()),
            })
            .new_value(),
            "user created on the server",
        ),
    )
    .await?;
    add_role(&mut tx, site, username, role.as_str(), &added.utc).await?;
    add_key(&mut tx, site, username, &cred.public_key, "server").await?;
    tx.commit().await?;
    Ok(())
}

async fn require_user(
    conn: &mut PgConnection,
    site: &str,
    username: &str,
) -> Result<String, ServerError> {
    match current_role(conn, site, username).await? {
        Some(role) if role.is_empty() => Err(ServerError::Invalid(format!(
            "user {username} of site {site} is deactivated"
        ))),
        Some(role) => Ok(role),
        None => Err(ServerError::Invalid(format!(
            "no user {username} at site {site}"
        ))),
    }
}

/// Gives a user another role from now (`ecrf server user role`).
pub async fn set_role(
    pool: &PgPool,
    site: &str,
    username: &str,
    role: Role,
) -> Result<(), ServerError> {
    let mut tx = super::changes::site_transaction(pool, site).await?;
    require_user(&mut tx, site, username).await?;
    let c = append_own(
        &mut tx,
        site,
        user_change(
            ChangeKind::UserRole,
            username,
            Body::UserRole { role }.new_value(),
            "role changed on the server",
        ),
    )
    .await?;
    add_role(&mut tx, site, username, role.as_str(), &c.utc).await?;
    tx.commit().await?;
    Ok(())
}

/// Deactivates a user from now (`ecrf server user deactivate`): the server refuses their later
/// changes, and each laptop of the site removes their key slot and changes its store key at
/// its next sync.
pub async fn deactivate(pool: &PgPool, site: &str, username: &str) -> Result<(), ServerError> {
    let mut tx = super::changes::site_transaction(pool, site).await?;
    require_user(&mut tx, site, username).await?;
    let c = append_own(
        &mut tx,
        site,
        user_change(
            ChangeKind::UserDeactivated,
            username,
            None,
            "deactivated on the server",
        ),
    )
    .await?;
    add_role(&mut tx, site, username, "", &c.utc).await?;
    sqlx::query("UPDATE users SET active = FALSE WHERE site = $1 AND username = $2")
        .bind(site)
        .bind(username)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Resets a user's password (`ecrf server user reset`): a new verifier and a new signing key
/// (nobody but its owner could unwrap the old one); laptops remove the user's old key slot at
/// their next sync, so the next login there is online with the new password.
pub async fn reset(
    pool: &PgPool,
    site: &str,
    username: &str,
    cred: &Credentials,
) -> Result<(), ServerError> {
    let mut tx = super::changes::site_transaction(pool, site).await?;
    require_user(&mut tx, site, username).await?;
    sqlx::query("UPDATE users SET verifier = $3, escrow = $4 WHERE site = $1 AND username = $2")
        .bind(site)
        .bind(username)
        .bind(&cred.verifier)
        .bind(&cred.escrow)
        .execute(&mut *tx)
        .await?;
    append_own(
        &mut tx,
        site,
        user_change(
            ChangeKind::PasswordReset,
            username,
            Body::PasswordReset(body::KeyBody {
                public_key: Some(cred.public_key.clone()),
            })
            .new_value(),
            "password reset on the server",
        ),
    )
    .await?;
    add_key(&mut tx, site, username, &cred.public_key, "server reset").await?;
    tx.commit().await?;
    Ok(())
}

/// A user's first login on a laptop: their name, current role (`""` = deactivated), password
/// verifier and escrowed key, `None` when not registered or made before the server kept them.
pub(crate) async fn login_record(
    pool: &PgPool,
    site: &str,
    username: &str,
) -> Result<Option<(String, String, String, String)>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let role = current_role(&mut conn, site, username).await?;
    let row = sqlx::query(
        "SELECT name, verifier, escrow FROM users WHERE site = $1 AND username = $2 \
         AND verifier IS NOT NULL AND escrow IS NOT NULL",
    )
    .bind(site)
    .bind(username)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row
        .zip(role)
        .map(|(r, role)| (r.get(0), role, r.get(1), r.get(2))))
}

/// One registry identity of a person who logs in to the web view: a user of one site.
#[derive(Debug, Clone)]
pub struct WebIdentity {
    /// The site.
    pub site: String,
    /// Full name.
    pub name: String,
    /// Current role (`None` = deactivated).
    pub role: Option<Role>,
    /// Password verifier (`ecrf_identity`).
    pub verifier: String,
    /// The escrowed signing key.
    pub escrow: String,
}

/// Every active site identity of `username` that has a verifier (a monitor assigned to sites
/// 01 and 03 is registered at both), in site order.
pub async fn web_identities(
    pool: &PgPool,
    username: &str,
) -> Result<Vec<WebIdentity>, ServerError> {
    let rows = sqlx::query(
        "SELECT u.site, u.name, u.verifier, u.escrow, \
           (SELECT role FROM user_roles r WHERE r.site = u.site AND r.username = u.username \
            ORDER BY from_utc DESC, id DESC LIMIT 1) \
         FROM users u WHERE u.username = $1 AND u.active \
           AND u.verifier IS NOT NULL AND u.escrow IS NOT NULL ORDER BY u.site",
    )
    .bind(username)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| WebIdentity {
            site: r.get(0),
            name: r.get(1),
            verifier: r.get(2),
            escrow: r.get(3),
            role: r
                .get::<Option<String>, _>(4)
                .and_then(|role| role.parse().ok()),
        })
        .collect())
}
