//! Login, sessions, CSRF and the web audit.
//!
//! A person logs in with the user name and password of the server's user registry. They may be
//! registered at several sites (a monitor of sites 01 and 03); the session holds each site where
//! the password verifies and a role is held, with that role and the person's signing key opened
//! from its escrow by the same password, so what they do on the web is signed as theirs. The
//! session lives in memory only (a restart logs everyone out); its cookie carries a random token
//! of which only the SHA-256 is kept.
//!
//! Invariants: cookies are `HttpOnly; Secure; SameSite=Strict; Path=/web`; every POST carries
//! the session's CSRF token (the login form a pre-session one, double-submitted); a session
//! ends after [`crate::WebOptions::idle`] without a request; a user name is locked after
//! [`crate::WebOptions::max_failures`] failures within [`crate::WebOptions::lockout`]; one
//! address has [`crate::WebOptions::logins_per_minute`] attempts; every login, failure,
//! refusal, logout and timeout is a row of `web_audit`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use ecrf_core::Role;
use ecrf_log::AuthorKey;
use ecrf_server::api::limits::RateLimiter;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::{Web, WebError, WebOptions, pages};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "ecrf_web";
/// The login form's pre-session cookie.
pub const LOGIN_COOKIE: &str = "ecrf_login";

/// What a person may do at one site.
pub struct Access {
    /// Their role there.
    pub role: Role,
    /// Their signing key there (opened from the escrow at login).
    pub key: AuthorKey,
}

/// A logged-in person.
pub struct Session {
    /// Login name.
    pub username: String,
    /// Full name.
    pub name: String,
    /// Sites they may see, with their role and key.
    pub sites: BTreeMap<String, Access>,
    /// The token every form of this session carries.
    pub csrf: String,
}

impl Session {
    /// Their access to `site`, or 403 naming it.
    pub fn at(&self, site: &str) -> Result<&Access, WebError> {
        self.sites.get(site).ok_or_else(|| {
            WebError::Forbidden(format!(
                "{} is not assigned to site {site}: ask the coordinating centre",
                self.username
            ))
        })
    }

    /// Checks a posted CSRF token.
    pub fn check_csrf(&self, posted: &str) -> Result<(), WebError> {
        if !posted.is_empty() && same(posted, &self.csrf) {
            Ok(())
        } else {
            Err(WebError::Forbidden(
                "the form has no valid security token (csrf): reload the page and try again".into(),
            ))
        }
    }
}

/// Sessions in memory and the login limits.
pub struct Auth {
    sessions: Mutex<HashMap<String, (Arc<Session>, Instant)>>,
    limiter: RateLimiter,
    idle: Duration,
}

impl Auth {
    /// Empty, with the options' limits.
    pub fn new(options: &WebOptions) -> Auth {
        Auth {
            sessions: Mutex::new(HashMap::new()),
            limiter: RateLimiter::new(options.logins_per_minute, Duration::from_secs(60)),
            idle: options.idle,
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Arc<Session>, Instant)>> {
        // A panic while holding the lock leaves the map as it was: keep using it.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Constant-time equality of two tokens.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn token() -> Result<String, WebError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(hex::encode(bytes))
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/web; HttpOnly; Secure; SameSite=Strict{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("ecrf=; Path=/web"))
}

/// Appends a row to the web audit.
pub async fn audit(
    pool: &PgPool,
    username: &str,
    address: &str,
    event: &str,
    detail: &str,
) -> Result<(), WebError> {
    sqlx::query("INSERT INTO web_audit (username, address, event, detail) VALUES ($1, $2, $3, $4)")
        .bind(username)
        .bind(address)
        .bind(event)
        .bind(detail)
        .execute(pool)
        .await?;
    Ok(())
}

/// The session of a request, refreshed; [`WebError::LogIn`] without one (an idle one ends here,
/// audited).
pub async fn session(web: &Web, headers: &HeaderMap) -> Result<Arc<Session>, WebError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Err(WebError::LogIn);
    };
    let key = token_hash(token);
    let now = Instant::now();
    let ended = {
        let mut table = web.auth.table();
        match table.get_mut(&key) {
            None => return Err(WebError::LogIn),
            Some((s, seen)) if now.duration_since(*seen) <= web.auth.idle => {
                *seen = now;
                return Ok(Arc::clone(s));
            }
            Some(_) => table.remove(&key).map(|(s, _)| s),
        }
    };
    if let Some(s) = ended {
        audit(&web.pool, &s.username, "", "timeout", "idle").await?;
    }
    Err(WebError::LogIn)
}

/// The login form's fields.
#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    /// User name.
    #[serde(default)]
    pub username: String,
    /// Password.
    #[serde(default)]
    pub password: String,
    /// The pre-session token.
    #[serde(default)]
    pub csrf: String,
}

/// `GET /web/login`: the form, with a fresh pre-session token.
pub async fn login_page(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let lang = pages::lang_of(&headers);
    let t = token()?;
    let mut res = pages::login_page(lang, &t, None).into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, &t, Some(1800)));
    let _ = web;
    Ok(res)
}

/// `POST /web/login`.
pub async fn login(
    State(web): State<Arc<Web>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let lang = pages::lang_of(&headers);
    let address = addr.ip().to_string();
    let again = |why: &str| -> Result<Response, WebError> {
        let t = token()?;
        let mut res = (
            axum::http::StatusCode::UNAUTHORIZED,
            pages::login_page(lang, &t, Some(why)),
        )
            .into_response();
        res.headers_mut()
            .append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, &t, Some(1800)));
        Ok(res)
    };
    let pre = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if pre.is_empty() || !same(pre, &form.csrf) {
        return Err(WebError::Forbidden(
            "the login form has no valid security token (csrf): reload the page".into(),
        ));
    }
    if let Err(wait) = web.auth.limiter.attempt(addr.ip(), Instant::now()) {
        audit(&web.pool, &form.username, &address, "login.refused", "rate").await?;
        return again(&format!(
            "Too many login attempts from this computer: wait {} seconds.",
            wait.as_secs().max(1)
        ));
    }
    let username = form.username.trim().to_string();
    if username.is_empty() || form.password.is_empty() {
        return again("Give your user name and password.");
    }
    let failures: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM web_audit WHERE username = $1 AND event = 'login.failed' \
         AND at > now() - make_interval(secs => $2) \
         AND at > coalesce((SELECT max(at) FROM web_audit WHERE username = $1 \
                            AND event = 'login'), '-infinity')",
    )
    .bind(&username)
    .bind(web.options.lockout.as_secs_f64())
    .fetch_one(&web.pool)
    .await?;
    if failures >= web.options.max_failures {
        audit(&web.pool, &username, &address, "login.refused", "locked").await?;
        return again(&format!(
            "This user name is locked after {failures} failed logins: try again in {} minutes \
             or ask the coordinating centre.",
            web.options.lockout.as_secs() / 60
        ));
    }
    let identities = ecrf_server::db::users::web_identities(&web.pool, &username).await?;
    let password = form.password.clone();
    // Argon2id takes a tenth of a second per identity: off the async threads.
    let opened = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for id in identities {
            let Some(role) = id.role else { continue };
            if ecrf_identity::verify(&id.verifier, &password).unwrap_or(false)
                && let Ok(key) = ecrf_identity::open_escrow(&id.escrow, &password)
            {
                out.push((id.site, id.name, role, key));
            }
        }
        out
    })
    .await
    .map_err(|e| WebError::Internal(e.to_string()))?;
    if opened.is_empty() {
        audit(&web.pool, &username, &address, "login.failed", "").await?;
        return again("The user name or password is wrong.");
    }
    let name = opened[0].1.clone();
    let sites: BTreeMap<String, Access> = opened
        .into_iter()
        .map(|(site, _, role, key)| (site, Access { role, key }))
        .collect();
    let detail = sites
        .iter()
        .map(|(s, a)| format!("{s}:{}", a.role))
        .collect::<Vec<_>>()
        .join(",");
    audit(&web.pool, &username, &address, "login", &detail).await?;
    let t = token()?;
    let session = Session {
        username,
        name,
        sites,
        csrf: token()?,
    };
    web.auth
        .table()
        .insert(token_hash(&t), (Arc::new(session), Instant::now()));
    let mut res = Redirect::to("/web/").into_response();
    let h = res.headers_mut();
    h.append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &t, None));
    h.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", Some(0)));
    Ok(res)
}

/// A form with only the CSRF token.
#[derive(Debug, serde::Deserialize)]
pub struct CsrfOnly {
    /// The session's token.
    #[serde(default)]
    pub csrf: String,
}

/// `POST /web/logout`.
pub async fn logout(
    State(web): State<Arc<Web>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    let s = session(&web, &headers).await?;
    s.check_csrf(&form.csrf)?;
    if let Some(t) = cookie(&headers, SESSION_COOKIE) {
        web.auth.table().remove(&token_hash(t));
    }
    audit(&web.pool, &s.username, &addr.ip().to_string(), "logout", "").await?;
    let mut res = Redirect::to("/web/login").into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Some(0)));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ecrf_web=abc; ecrf_login=x"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), Some("x"));
        assert_eq!(cookie(&h, "ecrf"), None);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abcd", "abcd"));
        assert!(!same("abcd", "abce"));
        assert!(!same("abc", "abcd"));
    }

    #[test]
    fn session_cookies_are_http_only_secure_and_strict() {
        let v = set_cookie(SESSION_COOKIE, "t", None);
        let v = v.to_str().unwrap();
        for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/web"] {
            assert!(v.contains(part), "{v} lacks {part}");
        }
    }
}
