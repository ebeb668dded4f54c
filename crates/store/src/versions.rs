//! Protocol amendments in the local file: the definition versions the server published to this
//! site, the site's activations, and the version each form instance was started under.
//!
//! Owns the projections of `study.publish`, `site.activate` and `form.version` ([`apply`]) and
//! the choice of the definition a save is checked under ([`Store::study_of_instance`]).
//! Invariants: only the server's device of a site may publish or activate (a device's own
//! change of those kinds is never projected; the server refuses them at push); a published
//! version's files must hash to its SHA-256; an instance's version never changes once recorded
//! (the first `form.version` wins); an instance with values but no record is the base
//! version's; a new instance takes the version in force at the site today, or is refused
//! when this app cannot use that version.

use std::sync::Arc;

use chrono::{Local, NaiveDate};
use ecrf_core::Study;
use ecrf_core::study::versions::{Activation, Definitions};
use ecrf_log::body::StudyPublished;
use ecrf_log::{Body, Change};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::StoreError;
use crate::store::{Store, body_of};

/// Applies one `study.publish`, `site.activate` or `form.version`.
pub(crate) fn apply(tx: &Connection, c: &Change) -> Result<(), StoreError> {
    match body_of(c)? {
        Body::StudyPublished(p) if c.device.starts_with("server-") => {
            if StudyPublished::files_sha256(&p.files) != p.sha256 {
                return Err(StoreError::Invalid(format!(
                    "{}: the files of study definition {} do not match their SHA-256",
                    c.describe(),
                    p.version
                )));
            }
            let files =
                serde_json::to_string(&p.files).map_err(|e| StoreError::Invalid(e.to_string()))?;
            tx.prepare_cached(
                "INSERT OR IGNORE INTO study_versions (version, files, sha256, seq) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![p.version, files, p.sha256, c.seq])?;
        }
        Body::SiteActivated(a) if c.device.starts_with("server-") => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO site_activations (site, from_date, version, seq) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![a.site, a.from, a.version, c.seq])?;
        }
        Body::FormVersioned { version } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO instance_versions (subject, form, version, seq) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![c.subject, c.form, version, c.seq])?;
        }
        _ => {}
    }
    Ok(())
}

/// A definition version and its files (`(path, text)`).
type Published = (String, Vec<(String, String)>);

/// Every definition version the file holds.
pub(crate) fn published(conn: &Connection) -> Result<Vec<Published>, StoreError> {
    let mut out = Vec::new();
    let mut stmt = conn.prepare("SELECT version, files FROM study_versions")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let version: String = r.get(0)?;
        let files: Vec<(String, String)> = serde_json::from_str(&r.get::<_, String>(1)?)
            .map_err(|e| StoreError::Invalid(format!("study definition {version}: {e}")))?;
        out.push((version, files));
    }
    Ok(out)
}

/// Reads every version and activation the file holds.
fn read(conn: &Connection, base: Arc<Study>) -> Result<Definitions, StoreError> {
    let mut d = Definitions::new(base);
    for (version, files) in published(conn)? {
        d.add(&version, &files);
    }
    let mut stmt = conn.prepare("SELECT site, from_date, version FROM site_activations")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let from: String = r.get(1)?;
        let from = NaiveDate::parse_from_str(&from, "%Y-%m-%d")
            .map_err(|e| StoreError::Invalid(format!("activation date {from}: {e}")))?;
        d.activate(Activation {
            site: r.get(0)?,
            version: r.get(2)?,
            from,
        });
    }
    Ok(d)
}

impl Store {
    /// Every definition version known here and the activations (read again only when a
    /// version or activation arrived since the last call; a save asks once).
    pub fn definitions(&self) -> Result<Arc<Definitions>, StoreError> {
        let mark: i64 = self.conn.query_row(
            "SELECT coalesce(max(seq), 0) FROM (SELECT seq FROM study_versions UNION ALL SELECT seq FROM site_activations)",
            [],
            |r| r.get(0),
        )?;
        let mut cache = self.definitions.borrow_mut();
        if let Some((m, d)) = cache.as_ref()
            && *m == mark
        {
            return Ok(Arc::clone(d));
        }
        let d = Arc::new(read(&self.conn, Arc::new(self.study().clone()))?);
        *cache = Some((mark, Arc::clone(&d)));
        Ok(d)
    }

    /// The version in force at this store's site today (local date), by name.
    pub fn version_in_force(&self) -> Result<String, StoreError> {
        Ok(self
            .definitions()?
            .in_force(self.site(), Local::now().date_naive()))
    }

    /// The definition in force at this store's site today; an error when this app cannot use
    /// it (too old) — then nothing new may be entered.
    pub fn study_in_force(&self) -> Result<Arc<Study>, StoreError> {
        Ok(self
            .definitions()?
            .in_force_study(self.site(), Local::now().date_naive())?)
    }

    /// The version recorded for a form instance, if any.
    pub fn recorded_version(
        &self,
        subject: &str,
        instance: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT version FROM instance_versions WHERE subject = ?1 AND form = ?2",
            )?
            .query_row([subject, instance], |r| r.get(0))
            .optional()?)
    }

    /// The version a form instance is (or would be) entered under, and whether a new
    /// `form.version` must record it: its recorded version; the base version when it has
    /// values but no record (entered before amendments existed); else the version in force.
    pub fn instance_version(
        &self,
        subject: &str,
        instance: &str,
    ) -> Result<(String, bool), StoreError> {
        let defs = self.definitions()?;
        self.instance_version_in(&defs, subject, instance)
    }

    /// [`Store::instance_version`] with the definitions already read (a save reads them once).
    pub(crate) fn instance_version_in(
        &self,
        defs: &Definitions,
        subject: &str,
        instance: &str,
    ) -> Result<(String, bool), StoreError> {
        if let Some(v) = self.recorded_version(subject, instance)? {
            return Ok((v, false));
        }
        let started: bool = self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM item_values WHERE subject = ?1 AND form = ?2) \
                 OR EXISTS (SELECT 1 FROM item_heads WHERE subject = ?1 AND form = ?2)",
            )?
            .query_row([subject, instance], |r| r.get(0))?;
        let base = self.study().version.clone();
        if started {
            return Ok((base, false));
        }
        let v = defs.in_force(self.site(), Local::now().date_naive());
        let record = v != base;
        Ok((v, record))
    }

    /// The definition of a form instance's version (see [`Store::instance_version`]).
    pub fn study_of_instance(
        &self,
        subject: &str,
        instance: &str,
    ) -> Result<Arc<Study>, StoreError> {
        let (v, _) = self.instance_version(subject, instance)?;
        Ok(self.definitions()?.version(&v)?)
    }
}
