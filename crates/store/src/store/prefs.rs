//! What a user keeps between sessions that is not data: preferences (language, lock minutes…)
//! and drafts of forms typed but not saved.
//!
//! Invariants: both belong to the logged-in user only, are encrypted with the rest of the file,
//! and never enter the change log (they are not part of the audit trail nor of any export).

use ecrf_core::FormKey;
use rusqlite::{OptionalExtension, params};

use super::{Store, now_stamp};
use crate::error::StoreError;

impl Store {
    /// A preference of the logged-in user (language, lock minutes…).
    pub fn preference(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM preferences WHERE username = ?1 AND name = ?2",
                [&self.session.user, name],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Remembers a preference of the logged-in user.
    pub fn set_preference(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO preferences (username, name, value) VALUES (?1, ?2, ?3)",
            )?
            .execute([&self.session.user, name, value])?;
        Ok(())
    }

    /// Keeps what the user has typed but not saved (JSON from the UI), encrypted like all else,
    /// so it survives closing the window. Drafts are not data: they never enter the change log.
    pub fn save_draft(
        &self,
        subject: &str,
        key: &FormKey,
        entries_json: &str,
    ) -> Result<(), StoreError> {
        let (utc, _) = now_stamp();
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO drafts (username, subject, form, entries, utc) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![self.session.user, subject, key.to_string(), entries_json, utc])?;
        Ok(())
    }

    /// The logged-in user's draft of a form instance, if any.
    pub fn draft(&self, subject: &str, key: &FormKey) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT entries FROM drafts WHERE username = ?1 AND subject = ?2 AND form = ?3",
                params![self.session.user, subject, key.to_string()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Throws the logged-in user's draft of a form instance away (after a save, or on request).
    pub fn clear_draft(&self, subject: &str, key: &FormKey) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "DELETE FROM drafts WHERE username = ?1 AND subject = ?2 AND form = ?3",
            )?
            .execute(params![self.session.user, subject, key.to_string()])?;
        Ok(())
    }
}
