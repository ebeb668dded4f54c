//! Protocol amendments on the server: approved definition versions (`study_versions`) and the
//! sites' activations (`site_activations`).
//!
//! Invariants: a version is published once and never changes (publishing the same files again
//! is a no-op, other files under the same version are refused); an activation names a version
//! the server holds (or the base version) and reaches the site's laptops as the server's own
//! signed changes in the site's chain: the version's files (`study.publish`, once per site)
//! before the activation (`site.activate`), in one transaction under the site's lock.

use std::sync::Arc;

use chrono::NaiveDate;
use ecrf_core::Study;
use ecrf_core::study::versions::{Activation, Definitions, check_files};
use ecrf_log::body::{SiteActivated, StudyPublished};
use ecrf_log::{Body, Change};
use sqlx::Row;
use sqlx::postgres::PgPool;

use crate::ServerError;

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Newly stored.
    New,
    /// The same files were already published under this version.
    Already,
}

/// Publishes a definition version from its files (`study.toml` and `forms/*.toml`): checked
/// as the app checks its own, and its `version` must be `version`.
pub async fn publish(
    pool: &PgPool,
    version: &str,
    files: Vec<(String, String)>,
    base: &Study,
) -> Result<Published, ServerError> {
    let study = check_files(&files).map_err(|e| {
        ServerError::Invalid(format!("study definition {version} is not valid: {e}"))
    })?;
    if study.version != version {
        return Err(ServerError::Invalid(format!(
            "--version {version} does not match the folder's study.toml (version = \"{}\")",
            study.version
        )));
    }
    if version == base.version {
        return Err(ServerError::Invalid(format!(
            "{version} is the base version every app embeds; publish a new version"
        )));
    }
    if study.id != base.id {
        return Err(ServerError::Invalid(format!(
            "the folder defines study {}, not {}",
            study.id, base.id
        )));
    }
    let sha256 = StudyPublished::files_sha256(&files);
    let json = serde_json::to_string(&files).map_err(|e| ServerError::Internal(e.to_string()))?;
    let mut tx = pool.begin().await?;
    let held: Option<String> =
        sqlx::query_scalar("SELECT sha256 FROM study_versions WHERE version = $1 FOR UPDATE")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
    match held {
        Some(h) if h == sha256 => return Ok(Published::Already),
        Some(_) => {
            return Err(ServerError::Invalid(format!(
                "version {version} was already published with other files; a version never \
                 changes: publish the amendment under a new version"
            )));
        }
        None => {}
    }
    sqlx::query("INSERT INTO study_versions (version, files, sha256) VALUES ($1, $2, $3)")
        .bind(version)
        .bind(json)
        .bind(&sha256)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Published::New)
}

/// Files of a published version.
async fn files_of(
    conn: &mut sqlx::PgConnection,
    version: &str,
) -> Result<Option<(Vec<(String, String)>, String)>, ServerError> {
    let row = sqlx::query("SELECT files, sha256 FROM study_versions WHERE version = $1")
        .bind(version)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let files: Vec<(String, String)> = serde_json::from_str(&row.get::<String, _>(0))
        .map_err(|e| ServerError::Internal(format!("study definition {version}: {e}")))?;
    Ok(Some((files, row.get(1))))
}

/// Activates `version` at `site` from the site's local date `from`: its laptops receive the
/// version (if they do not have it) and the activation at their next sync, and switch that day.
pub async fn activate(
    pool: &PgPool,
    site: &str,
    version: &str,
    from: NaiveDate,
    base: &Study,
) -> Result<(), ServerError> {
    let mut tx = super::changes::site_transaction(pool, site).await?;
    let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sites WHERE code = $1)")
        .bind(site)
        .fetch_one(&mut *tx)
        .await?;
    if !known {
        return Err(ServerError::Invalid(format!("there is no site {site}")));
    }
    if version != base.version {
        let Some((files, sha256)) = files_of(&mut tx, version).await? else {
            return Err(ServerError::Invalid(format!(
                "version {version} has not been published (ecrf study publish <folder> --version {version})"
            )));
        };
        let sent: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM study_sent WHERE site = $1 AND version = $2)",
        )
        .bind(site)
        .bind(version)
        .fetch_one(&mut *tx)
        .await?;
        if !sent {
            let body = Body::StudyPublished(StudyPublished {
                version: version.to_string(),
                files,
                sha256,
            });
            let c = Change {
                item: Some(version.to_string()),
                new_value: body.new_value(),
                reason: Some(format!("study definition {version} approved")),
                ..Change::blank(body.kind())
            };
            super::users::append_own(&mut tx, site, c).await?;
            sqlx::query("INSERT INTO study_sent (site, version) VALUES ($1, $2)")
                .bind(site)
                .bind(version)
                .execute(&mut *tx)
                .await?;
        }
    }
    let from_text = from.format("%Y-%m-%d").to_string();
    let body = Body::SiteActivated(SiteActivated {
        site: site.to_string(),
        version: version.to_string(),
        from: from_text.clone(),
    });
    let c = Change {
        item: Some(version.to_string()),
        new_value: body.new_value(),
        reason: Some(format!(
            "site {site} uses study definition {version} from {from_text}"
        )),
        ..Change::blank(body.kind())
    };
    super::users::append_own(&mut tx, site, c).await?;
    sqlx::query(
        "INSERT INTO site_activations (site, from_date, version) VALUES ($1, $2, $3) \
         ON CONFLICT (site, from_date) DO UPDATE SET version = EXCLUDED.version, activated = now()",
    )
    .bind(site)
    .bind(&from_text)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Every version the server holds and every site's activations, over the base version.
pub async fn definitions(pool: &PgPool, base: Arc<Study>) -> Result<Definitions, ServerError> {
    let mut d = Definitions::new(base);
    let rows = sqlx::query("SELECT version, files FROM study_versions ORDER BY published")
        .fetch_all(pool)
        .await?;
    for r in rows {
        let version: String = r.get(0);
        let files: Vec<(String, String)> = serde_json::from_str(&r.get::<String, _>(1))
            .map_err(|e| ServerError::Internal(format!("study definition {version}: {e}")))?;
        d.add(&version, &files);
    }
    let rows = sqlx::query("SELECT site, from_date, version FROM site_activations")
        .fetch_all(pool)
        .await?;
    for r in rows {
        let from: String = r.get(1);
        let from = NaiveDate::parse_from_str(&from, "%Y-%m-%d")
            .map_err(|e| ServerError::Internal(format!("activation date {from}: {e}")))?;
        d.activate(Activation {
            site: r.get(0),
            from,
            version: r.get(2),
        });
    }
    Ok(d)
}
