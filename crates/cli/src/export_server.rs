//! The central server's PostgreSQL as an export source (`ecrf export … --database-url URL
//! [--site S]`): every site's change log as the devices pushed it (`changes.body` holds each
//! change's full record), read in one read-only, repeatable-read transaction and replayed by
//! `ecrf_export::logs` into the same projections a store makes. Nothing is written to the
//! server's database (no migration is run: an export reads the schema as it is).

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
        let (sites, logs) = runtime.block_on(read(&self.url, self.site.as_deref()))?;
        ecrf_export::logs::from_logs(&sites, logs, with_changes)
    }
}

/// Sites and each site's log in the server's commit order (`changes.seq`, which becomes each
/// change's `seq` in the export), read by `ecrf_server::db::logs` (the web view's downloads
/// read the same).
async fn read(
    url: &str,
    site: Option<&str>,
) -> Result<(Vec<String>, Vec<(String, Vec<ecrf_log::Change>)>), ExportError> {
    let mut conn = sqlx::PgConnection::connect(url).await.map_err(db)?;
    let only = site.map(|s| vec![s.to_string()]);
    let (sites, logs) = ecrf_server::db::logs::site_logs(&mut conn, only.as_deref())
        .await
        .map_err(db)?;
    if let Some(s) = site
        && sites.is_empty()
    {
        return Err(ExportError::Options(format!(
            "--site {s}: the server has no such site"
        )));
    }
    Ok((sites, logs))
}
