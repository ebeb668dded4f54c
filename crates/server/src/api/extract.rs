//! The preamble every handler shares, as axum extractors, so a handler starts at its own rule:
//!
//! - [`Caller`]: the calling device and its site, from its token (401 without a valid one);
//! - [`OwnSite`]: a caller on a `/sites/{site}/…` path of its own site (403 otherwise), and the
//!   site's transaction ([`OwnSite::transaction`]);
//! - [`Valid`]: the body, `application/json` within the size limit, parsed and validated;
//! - [`SiteRequest`]: both, for the site endpoints that take a body.
//!
//! Invariant: the checks run in one order: the path, the token (401), the site (403), and only
//! then is the body read: the content type (415), the body's size or reading (413/400), its
//! parsing and its validation (400). A caller without a valid token never has its body read
//! (the connection is closed after the refusal rather than drained), and a rejected request does
//! no database work beyond reading the token's device.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ecrf_wire::wire::{
    self, EnrolRequest, LeaseRequest, LoginRequest, MAX_BODY_BYTES, PushRequest, SlotRequest,
    UserRequest,
};
use sqlx::postgres::PgPool;

use super::ApiError;
use crate::db::{self, secret_hash};
use crate::rules;

/// The calling device, from its token.
pub struct Caller {
    /// The device's name.
    pub device: String,
    /// The site it is enrolled with.
    pub site: String,
    /// How many of its changes the server held when its token was read.
    pub acked: i64,
}

impl Caller {
    async fn of(pool: &PgPool, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let unauthorized = |r: &str| ApiError(StatusCode::UNAUTHORIZED, r.to_string());
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("a device token is required (Authorization: Bearer …)"))?;
        let found = db::device::by_token(pool, &secret_hash(token.trim()))
            .await?
            .ok_or_else(|| unauthorized("unknown device token"))?;
        if found.revoked {
            return Err(unauthorized(
                "this device was revoked and can no longer sync; ask the coordinating centre",
            ));
        }
        Ok(Caller {
            device: found.device,
            site: found.site,
            acked: found.acked,
        })
    }
}

impl FromRequestParts<PgPool> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, pool: &PgPool) -> Result<Self, ApiError> {
        Caller::of(pool, &parts.headers).await
    }
}

/// A caller on its own site's path: `site` is both the path's `{site}` and the device's.
pub struct OwnSite {
    /// The calling device.
    pub device: String,
    /// Its site, the one the path names.
    pub site: String,
    /// How many of its changes the server held when its token was read.
    pub acked: i64,
}

impl OwnSite {
    async fn check(pool: &PgPool, headers: &HeaderMap, site: String) -> Result<Self, ApiError> {
        let caller = Caller::of(pool, headers).await?;
        rules::own_site(&caller.site, &site)?;
        Ok(OwnSite {
            device: caller.device,
            site,
            acked: caller.acked,
        })
    }

    /// The site's transaction for a push, with the caller's chain head locked and read with
    /// the site's lock (`db::changes::push_transaction`).
    pub(crate) async fn push_transaction(
        &self,
        pool: &PgPool,
    ) -> Result<db::changes::PushStart, ApiError> {
        Ok(db::changes::push_transaction(pool, &self.site, &self.device).await?)
    }

    /// The site's transaction (`db::changes::site_transaction`: the site's row lock held),
    /// which every write to the site's changes and allocation list goes through.
    pub async fn transaction(
        &self,
        pool: &PgPool,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, ApiError> {
        Ok(db::changes::site_transaction(pool, &self.site).await?)
    }
}

/// The path's `{site}`; a path that does not decode is axum's own rejection, as before.
async fn path_site(parts: &mut Parts, pool: &PgPool) -> Result<String, Response> {
    let Path(site) = Path::<String>::from_request_parts(parts, pool)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(site)
}

impl FromRequestParts<PgPool> for OwnSite {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, pool: &PgPool) -> Result<Self, Response> {
        let site = path_site(parts, pool).await?;
        OwnSite::check(pool, &parts.headers, site)
            .await
            .map_err(IntoResponse::into_response)
    }
}

/// A request body the server accepts: JSON with its own validation (naming the field and rule).
pub trait Checked: serde::de::DeserializeOwned {
    /// The body's own checks ([`ecrf_wire::wire`]).
    fn check(&self) -> Result<(), wire::Invalid>;
}

impl Checked for EnrolRequest {
    fn check(&self) -> Result<(), wire::Invalid> {
        self.validate()
    }
}

impl Checked for LoginRequest {
    fn check(&self) -> Result<(), wire::Invalid> {
        self.validate()
    }
}

impl Checked for UserRequest {
    fn check(&self) -> Result<(), wire::Invalid> {
        self.validate()
    }
}

impl Checked for PushRequest {
    fn check(&self) -> Result<(), wire::Invalid> {
        self.validate()
    }
}

impl Checked for LeaseRequest {
    fn check(&self) -> Result<(), wire::Invalid> {
        self.validate()
    }
}

impl Checked for SlotRequest {
    fn check(&self) -> Result<(), wire::Invalid> {
        self.validate()
    }
}

/// A body that is JSON within the size limit, parsed and validated.
pub struct Valid<T>(pub T);

impl<T: Checked> Valid<T> {
    fn of(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Self, ApiError> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Type must be application/json, not {ct:?}"),
            ));
        }
        let bytes = body.map_err(|e| {
            let status = e.status();
            let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("body larger than {MAX_BODY_BYTES} bytes")
            } else {
                format!("body could not be read: {e}")
            };
            ApiError(status, reason)
        })?;
        let v: T = wire::parse(&bytes).map_err(|e| ApiError::bad(e.to_string()))?;
        v.check().map_err(|e| ApiError::bad(e.to_string()))?;
        Ok(Valid(v))
    }
}

impl<T: Checked> FromRequest<PgPool> for Valid<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, pool: &PgPool) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, pool).await;
        Valid::of(&headers, body)
    }
}

/// A device's request to its own site with a valid body: [`OwnSite`] and [`Valid`] in one.
pub struct SiteRequest<T> {
    /// The caller, on its own site.
    pub at: OwnSite,
    /// The body.
    pub body: T,
}

impl<T: Checked> FromRequest<PgPool> for SiteRequest<T> {
    type Rejection = Response;

    async fn from_request(req: Request, pool: &PgPool) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let site = path_site(&mut parts, pool).await?;
        let headers = parts.headers.clone();
        // The token and the site first: an unknown caller's body is never read.
        let at = OwnSite::check(pool, &headers, site)
            .await
            .map_err(IntoResponse::into_response)?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), pool).await;
        let Valid(body) = Valid::of(&headers, bytes).map_err(IntoResponse::into_response)?;
        Ok(SiteRequest { at, body })
    }
}
