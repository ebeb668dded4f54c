//! The write path and the projections: committing changes, applying each to the projections,
//! replaying the whole log, and checking the whole file.
//!
//! Owns [`apply`], the only code that writes projections, and [`Store::commit_with`], the only
//! code that appends to the log. Invariants: a commit numbers, hashes (chained per device) and
//! appends its changes and applies each to the projections in one IMMEDIATE transaction, all or
//! nothing, and the in-memory head moves only after it committed; a rebuild replays the log
//! through the same [`apply`], so rebuilt and incremental projections cannot drift apart
//! ([`Store::projection_snapshot`] compares them).

use ecrf_log::{Body, Change, ChangeKind, GENESIS, VerifyReport};
use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use super::{Draft, Store, WAL_SAVES_BEFORE_CHECKPOINT, body_of, get_meta, now_stamp, set_meta};
use crate::error::StoreError;
use crate::log::{self, COLUMNS};

/// Applies one change to the projections. The only code that writes projections.
pub(crate) fn apply(tx: &Connection, c: &Change) -> Result<(), StoreError> {
    if (c.kind.alters_users() || c.kind == ChangeKind::PasswordChanged)
        && !governs_users_here(tx, c)?
    {
        // Another laptop's user changes (received by sync) stay in the log as its audit and
        // never alter a user here: users change here only by this device's own changes (made
        // before it was enrolled) or the server's (its user registry).
        return Ok(());
    }
    match c.kind {
        ChangeKind::UserAdded => {
            let Body::UserAdded(user) = body_of(c)? else {
                return Ok(());
            };
            tx.prepare_cached(
                "INSERT OR REPLACE INTO users (username, name, role, created_seq) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![c.item, user.name, user.role.as_str(), c.seq])?;
        }
        ChangeKind::SubjectCreated => {
            let site = c.new_value.clone().unwrap_or_default();
            tx.prepare_cached(
                "INSERT OR IGNORE INTO subjects (subject, site, created_utc, created_seq) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![c.subject, site, c.utc, c.seq])?;
        }
        // Read without parsing the values: the hot path of saves and pulls.
        ChangeKind::ItemSet => crate::replica::apply_item(tx, c)?,
        ChangeKind::LeaseLoaded | ChangeKind::Randomized => crate::randomization::apply(tx, c)?,
        ChangeKind::QueryRaised
        | ChangeKind::QueryAnswered
        | ChangeKind::QueryClosed
        | ChangeKind::QueryReopened
        | ChangeKind::SdvMarked
        | ChangeKind::Signed
        | ChangeKind::Locked
        | ChangeKind::Unlocked
        | ChangeKind::LockHeld
        | ChangeKind::UserRole
        | ChangeKind::UserDeactivated
        | ChangeKind::PasswordReset
        | ChangeKind::PasswordChanged => crate::oversight::apply(tx, c)?,
        ChangeKind::StudyPublished | ChangeKind::SiteActivated | ChangeKind::FormVersioned => {
            crate::versions::apply(tx, c)?
        }
        // Audit only: no projection holds them.
        ChangeKind::StoreCreated | ChangeKind::DataExported | ChangeKind::LoginFailed => {}
    }
    Ok(())
}

/// True when `c` was written by this device or by the server's device of this site.
fn governs_users_here(tx: &Connection, c: &Change) -> Result<bool, StoreError> {
    if get_meta(tx, "device")?.as_deref() == Some(c.device.as_str()) {
        return Ok(true);
    }
    let site = get_meta(tx, "site")?.unwrap_or_default();
    Ok(c.device == format!("server-{site}"))
}

impl Store {
    /// Numbers, hashes and appends changes, and applies them to the projections: one
    /// transaction, all or nothing. Returns the changes as written.
    pub(super) fn commit_changes(&mut self, drafts: Vec<Draft>) -> Result<Vec<Change>, StoreError> {
        self.commit_with(|_| Ok((drafts, ()))).map(|(c, ())| c)
    }

    /// Like [`Store::commit_changes`], with the changes decided by `build` inside the same
    /// IMMEDIATE transaction: the write lock is held from the first read, so what `build` read
    /// (e.g. the next unopened envelope) cannot be taken by another process before the commit.
    /// The log head is re-read inside the lock, so several processes may write one store.
    pub(crate) fn commit_with<T>(
        &mut self,
        build: impl FnOnce(&Connection) -> Result<(Vec<Draft>, T), StoreError>,
    ) -> Result<(Vec<Change>, T), StoreError> {
        let (utc, offset) = now_stamp();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut seq: i64 =
            tx.query_row("SELECT coalesce(max(seq), 0) FROM change_log", [], |r| {
                r.get(0)
            })?;
        // The chain is per device: this device's last change, not the log's last row.
        let (mut dseq, mut prev) = crate::replica::device_head(&tx, &self.device)?;
        let (drafts, out) = build(&tx)?;
        let mut written = Vec::with_capacity(drafts.len());
        for d in drafts {
            seq += 1;
            dseq += 1;
            let base = match (d.kind, d.base) {
                (ChangeKind::ItemSet, None) => Some(crate::replica::current_heads(
                    &tx,
                    d.subject.as_deref().unwrap_or_default(),
                    d.form.as_deref().unwrap_or_default(),
                    d.item.as_deref().unwrap_or_default(),
                )?),
                (_, b) => b,
            };
            let mut c = Change {
                seq,
                change_id: uuid::Uuid::now_v7().to_string(),
                device: self.device.clone(),
                device_seq: dseq,
                kind: d.kind,
                subject: d.subject,
                form: d.form,
                item: d.item,
                old_value: d.old_value,
                new_value: d.new_value,
                user: self.session.user.clone(),
                role: self.session.role.to_string(),
                utc: utc.clone(),
                local_offset: offset.clone(),
                reason: d.reason,
                warning: d.warning,
                prev_hash: prev,
                hash: String::new(),
                base,
                source: d.source,
                signature: None,
            };
            c.hash = c.compute_hash();
            if let Some(author) = &self.author {
                author.sign(&mut c);
            }
            log::append(&tx, &c)?;
            apply(&tx, &c)?;
            prev = c.hash.clone();
            written.push(c);
        }
        let head_hash: String = match written.last() {
            Some(c) => c.hash.clone(),
            None => tx.query_row(
                "SELECT coalesce((SELECT hash FROM change_log ORDER BY seq DESC LIMIT 1), ?1)",
                [GENESIS],
                |r| r.get(0),
            )?,
        };
        set_meta(&tx, "head_seq", &seq.to_string())?;
        set_meta(&tx, "head_hash", &head_hash)?;
        tx.commit()?;
        // Only after the commit: a failed transaction leaves the counters as they were.
        self.head_seq = seq;
        self.head_hash = head_hash;
        self.device_seq = dseq;
        self.saves_since_checkpoint += 1;
        if self.saves_since_checkpoint >= WAL_SAVES_BEFORE_CHECKPOINT {
            self.checkpoint_now()?;
        }
        Ok((written, out))
    }

    /// Checks every page of the file (SQLCipher's HMAC and SQLite's structure) and the whole
    /// hash chain. Page damage is reported as a problem, not a panic.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut page_problems = Vec::new();
        let mut stmt = self.conn.prepare("PRAGMA cipher_integrity_check")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            page_problems.push(format!("page check: {}", r.get::<_, String>(0)?));
        }
        let integrity: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .unwrap_or_else(|e| e.to_string());
        if integrity != "ok" {
            page_problems.push(format!("structure check: {integrity}"));
        }
        let mut report = log::verify_chain(&self.conn)?;
        page_problems.append(&mut report.problems);
        page_problems.append(&mut crate::oversight::verify_signatures(
            &self.conn,
            &self.study,
        )?);
        report.problems = page_problems;
        Ok(report)
    }

    /// A snapshot of every projection table, for comparing rebuilt with incremental state.
    pub fn projection_snapshot(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for sql in [
            "SELECT username || '|' || name || '|' || role || '|' || created_seq FROM users ORDER BY username",
            "SELECT subject || '|' || site || '|' || created_utc || '|' || created_seq FROM subjects ORDER BY subject",
            "SELECT subject || '|' || form || '|' || item || '|' || value || '|' || coalesce(warning, '') || '|' || change_seq || '|' || head_id FROM item_values ORDER BY subject, form, item",
            "SELECT subject || '|' || form || '|' || item || '|' || change_id || '|' || coalesce(value, '∅') || '|' || coalesce(warning, '') || '|' || change_seq FROM item_heads ORDER BY subject, form, item, change_id",
            "SELECT change_id FROM superseded ORDER BY change_id",
            "SELECT subject || '|' || form || '|' || item FROM conflicted ORDER BY subject, form, item",
            "SELECT envelope || '|' || stratum || '|' || seq || '|' || block || '|' || block_size || '|' || coalesce(commitment, '') || '|' || coalesce(arm, '') || '|' || lease || '|' || coalesce(subject, '') || '|' || coalesce(opened_seq, '') FROM envelopes ORDER BY envelope",
            "SELECT username || '|' || active || '|' || password_reset_pending FROM users ORDER BY username",
            "SELECT query_id || '|' || subject || '|' || form || '|' || item || '|' || state || '|' || text || '|' || raised_by || '|' || updated_seq FROM queries ORDER BY query_id",
            "SELECT subject || '|' || form || '|' || item || '|' || verified_by || '|' || verified_seq FROM sdv ORDER BY subject, form, item",
            "SELECT change_id || '|' || subject || '|' || scope || '|' || values_hash || '|' || seq FROM signatures ORDER BY change_id",
            "SELECT scope || '|' || reason || '|' || locked_seq FROM locks ORDER BY scope",
            "SELECT version || '|' || sha256 || '|' || seq FROM study_versions ORDER BY version",
            "SELECT site || '|' || from_date || '|' || version || '|' || seq FROM site_activations ORDER BY site, from_date",
            "SELECT subject || '|' || form || '|' || version || '|' || seq FROM instance_versions ORDER BY subject, form",
        ] {
            let mut stmt = self.conn.prepare(sql)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            for r in rows {
                out.push(r?);
            }
        }
        Ok(out)
    }

    /// Throws the projections away and replays the whole log into them, in one transaction.
    pub fn rebuild_projections(&mut self) -> Result<(), StoreError> {
        let tx: Transaction<'_> = self.conn.transaction()?;
        replay(&tx)?;
        tx.commit()?;
        Ok(())
    }
}

/// Empties the projections and replays the whole log into them (the caller holds the
/// transaction or savepoint).
pub(crate) fn replay(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "DELETE FROM users; DELETE FROM subjects; DELETE FROM item_values; DELETE FROM item_heads; \
         DELETE FROM superseded; DELETE FROM conflicted; DELETE FROM envelopes; DELETE FROM queries; DELETE FROM sdv; \
         DELETE FROM signatures; DELETE FROM locks; DELETE FROM held; \
         DELETE FROM study_versions; DELETE FROM site_activations; DELETE FROM instance_versions;",
    )?;
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM change_log ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        apply(conn, &crate::log::from_row(r)?)?;
    }
    Ok(())
}
