//! The central server's PostgreSQL as an export source (`ecrf export … --database-url URL
//! [--site S]`): every site's change log as the devices pushed it (`changes.body` holds each
//! change's full record), read in one read-only, repeatable-read transaction and replayed by
//! `ecrf_export::logs` into the same projections a store makes, each site folded on another
//! core while the next is read. Nothing is written to the
//! server's database (no migration is run: an export reads the schema as it is).

use ecrf_export::logs::LogFolder;
use ecrf_export::{DataSource, ExportError, TrialData};
use sqlx::Connection;

/// The server's database, all sites or one.
pub struct ServerDb {
    /// `postgres://…`
    pub url: String,
    /// Only this site's log.
    pub site: Option<String>,
}

fn db(e: impl std::fmt::Display) -> ExportError {
    ExportError::Source(format!("server database: {e}"))
}

impl DataSource for ServerDb {
    fn trial_data(&mut self, with_changes: bool) -> Result<TrialData, ExportError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(db)?;
        let mut folder = LogFolder::new(with_changes)?;
        let sites = runtime.block_on(read(&self.url, self.site.as_deref(), &mut folder))?;
        folder.finish(&sites)
    }
}

/// Every site (all, or `site`), each site's log handed to `folder` as soon as it is read (in
/// the server's commit order: `changes.seq` becomes each change's `seq` in the export), by
/// `ecrf_server::db::logs` (the web view's downloads read the same).
async fn read(
    url: &str,
    site: Option<&str>,
    folder: &mut LogFolder,
) -> Result<Vec<String>, ExportError> {
    let mut conn = sqlx::PgConnection::connect(url).await.map_err(db)?;
    let only = site.map(|s| vec![s.to_string()]);
    let sites = ecrf_server::db::logs::each_site_log(&mut conn, only.as_deref(), |raw| {
        folder
            .add_records(raw.site, raw.changes)
            .map_err(|e| ecrf_server::ServerError::Internal(e.to_string()))
    })
    .await
    .map_err(db)?;
    if let Some(s) = site
        && sites.is_empty()
    {
        return Err(ExportError::Options(format!(
            "--site {s}: the server has no such site"
        )));
    }
    Ok(sites)
}
