//! `POST /api/v1/sites/{site}/users`: a laptop's administrator, online, creates a user of the
//! site (the desktop's Users page on an enrolled laptop).
//!
//! Invariants: the request is signed by an active administrator of the site in the registry
//! ([`rules::signed_by_admin`]); the user is created exactly as `ecrf server user add` creates
//! one ([`db::users::add_user`]: registry rows and a signed `user.add` in the site's server
//! chain), so every laptop of the site receives them at its next sync; the server never sees
//! the password (the laptop sends its verifier and the escrowed key).

use axum::extract::State;
use axum::response::Response;
use ecrf_wire::wire::UserRequest;
use sqlx::postgres::PgPool;

use super::extract::SiteRequest;
use super::{ApiError, reply};
use crate::db;
use crate::rules::{self, AdminRequest, Refusal};

pub(super) async fn add(
    State(pool): State<PgPool>,
    SiteRequest { at: c, body: req }: SiteRequest<UserRequest>,
) -> Result<Response, ApiError> {
    let site = c.site.as_str();
    let registry = {
        let mut conn = pool.acquire().await?;
        db::users::registry_of(&mut conn, site, std::slice::from_ref(&req.administrator)).await?
    };
    let message = req.message(&c.device, site);
    rules::signed_by_admin(
        AdminRequest {
            what: "create users",
            administrator: &req.administrator,
            utc: &req.utc,
            signature: &req.signature,
            message: &message,
        },
        site,
        chrono::Utc::now(),
        registry.get(&req.administrator),
    )?;
    let role: ecrf_core::Role = req.role.parse().map_err(Refusal::Invalid)?;
    if ecrf_identity::escrow_public_key(&req.escrow)
        .ok()
        .as_deref()
        != Some(req.public_key.as_str())
    {
        return Err(Refusal::Invalid(
            "escrow: it does not hold the public key the request names".into(),
        )
        .into());
    }
    let cred = db::users::Credentials {
        verifier: req.verifier.clone(),
        escrow: req.escrow.clone(),
        public_key: req.public_key.clone(),
    };
    db::users::add_user(&pool, site, &req.username, &req.name, role, &cred)
        .await
        .map_err(|e| match e {
            crate::ServerError::Invalid(why) => Refusal::Conflict(why).into(),
            other => ApiError::from(other),
        })?;
    tracing::info!(site, device = %c.device, user = %req.username, by = %req.administrator, "user added");
    reply(&serde_json::json!({ "username": req.username }))
}
