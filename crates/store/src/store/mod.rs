//! The store: one SQLCipher file per ward laptop, opened by a logged-in user.
//!
//! Owns opening (key slot → SQLCipher key → page check), users, subjects, saving form values and
//! reading them back, the audit trail, and rebuilding projections. Invariants: every write goes
//! through [`Store::commit_changes`], which appends to the change log and applies the same
//! changes to the projections with [`apply`] in one transaction; a rebuild replays the log
//! through that same [`apply`], so rebuilt and incremental projections cannot drift apart.
//!
//! This file holds [`Store`] itself (its fields, the session, the log head, accessors for the
//! crate's other modules, checkpoints), the `meta` table and [`Draft`]; the rest is split by use:
//! - `open`: creating a store and opening one (key slot → SQLCipher key → page and tail checks);
//! - `users`: user names, passwords and key slots, roles, deactivation;
//! - `save`: subjects, saving a form instance (parse → edit checks → one transaction), reading
//!   values and the audit trail back;
//! - `apply`: the one write path (number, hash, append, apply), the projections' [`apply`],
//!   rebuild and the whole-file verification;
//! - `prefs`: a user's preferences and unsaved drafts (never in the log).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Local, SecondsFormat, Utc};
use ecrf_core::signature::SigningSession;
use ecrf_core::{Action, Role, Study, Value};
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::error::StoreError;
use crate::keyring::{Keyring, StoreKey};
use ecrf_log::{Body, Change, ChangeKind};

mod apply;
mod open;
mod prefs;
mod save;
mod users;

pub(crate) use apply::{apply, replay};
pub use open::CreateOptions;
// `store::open_connection`: the connection settings, named so by the crate's other modules.
use open::open_connection;
pub use save::{AllSubjectValues, SaveOptions, SaveOutcome};
pub use users::check_password;

/// The logged-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    /// User name.
    pub user: String,
    /// Role.
    pub role: Role,
}

/// An open store with a logged-in user.
pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    study: Arc<Study>,
    /// The definition versions known here, with the log position they were read at
    /// (`crate::versions`).
    pub(crate) definitions:
        std::cell::RefCell<Option<(i64, Arc<ecrf_core::study::versions::Definitions>)>>,
    pub(crate) key: StoreKey,
    pub(crate) keyring: Keyring,
    session: Session,
    device: String,
    site: String,
    head_seq: i64,
    head_hash: String,
    device_seq: i64,
    saves_since_checkpoint: u32,
    signing: SigningSession,
    /// The logged-in user's signing key, which signs every change they commit; `None` when
    /// their slot predates signing or the store was opened with the recovery key.
    pub(crate) author: Option<ecrf_log::AuthorKey>,
}

/// Saves after which a save checkpoints by itself when nobody called [`Store::idle`].
pub const WAL_SAVES_BEFORE_CHECKPOINT: u32 = 1000;

/// Saves after which [`Store::idle`] checkpoints (about 5 MB of WAL for daily logs).
pub const IDLE_CHECKPOINT_AFTER_SAVES: u32 = 50;

fn now_stamp() -> (String, String) {
    let now = Local::now();
    (
        now.with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        now.offset().to_string(),
    )
}

/// Reads a stored value (JSON of [`Value`]); an unreadable one names its form and item.
pub(crate) fn decode_value(form: &str, item: &str, json: &str) -> Result<Value, StoreError> {
    Value::from_json(json).map_err(|e| {
        StoreError::Invalid(format!("stored value of {form} {item} is unreadable: {e}"))
    })
}

pub(crate) fn get_meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute([key, value])?;
    Ok(())
}

/// A change still to be numbered, hashed and appended.
pub(crate) struct Draft {
    pub(crate) kind: ChangeKind,
    pub(crate) subject: Option<String>,
    pub(crate) form: Option<String>,
    pub(crate) item: Option<String>,
    pub(crate) old_value: Option<String>,
    pub(crate) new_value: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) warning: Option<String>,
    /// For `item.set`: the values replaced (JSON list of change ids); `None` = the item's
    /// current values, read inside the commit.
    pub(crate) base: Option<String>,
    /// Where a value came from when it was not typed (JSON of `ecrf_log::body::Provenance`).
    pub(crate) source: Option<String>,
}

impl Draft {
    /// A draft of a change with this body.
    pub(crate) fn of(body: Body) -> Self {
        let mut d = Draft::new(body.kind());
        d.new_value = body.new_value();
        d
    }

    pub(crate) fn new(kind: ChangeKind) -> Self {
        Draft {
            kind,
            subject: None,
            form: None,
            item: None,
            old_value: None,
            new_value: None,
            reason: None,
            warning: None,
            base: None,
            source: None,
        }
    }
}

/// A change's typed body, or why it cannot be read.
pub(crate) fn body_of(c: &Change) -> Result<Body, StoreError> {
    c.body().map_err(|e| StoreError::Invalid(e.to_string()))
}

impl Store {
    /// The connection, for the other modules of this crate.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Another connection to the same file with the same key, for reading the append-only log
    /// in parallel (exports). Fails on a plain benchmark store, whose key is not the file's.
    pub(crate) fn extra_connection(&self) -> Result<Connection, StoreError> {
        open_connection(&self.path, Some(&self.key), false)
    }

    /// The connection, mutable (for read transactions in the other modules of this crate).
    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Records the log head after another module of this crate committed changes to the log
    /// (a pulled page), so [`Store::head`] stays the head of the file.
    pub(crate) fn set_head(&mut self, seq: i64, hash: String) {
        self.head_seq = seq;
        self.head_hash = hash;
    }

    /// The signing state of this continuous session.
    pub(crate) fn signing(&self) -> &SigningSession {
        &self.signing
    }

    pub(crate) fn signing_mut(&mut self) -> &mut SigningSession {
        &mut self.signing
    }

    /// The session was interrupted (the app locked itself or the user logged out): the next
    /// signature asks for user id and password again.
    pub fn interrupt_signing(&mut self) {
        self.signing.interrupt();
    }

    /// This device's id (a UUID made when the store was created).
    pub fn device_id(&self) -> &str {
        &self.device
    }

    /// The logged-in user.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The base study definition (the one the app embeds and the store was opened with); the
    /// version in force and an instance's own version: [`Store::study_in_force`],
    /// [`Store::study_of_instance`].
    pub fn study(&self) -> &Study {
        &self.study
    }

    /// The site code.
    pub fn site(&self) -> &str {
        &self.site
    }

    /// Signs a request to the server (a lease) with the logged-in user's key: 128 hex digits.
    pub fn sign_request(&self, message: &[u8]) -> Result<String, StoreError> {
        self.author
            .as_ref()
            .map(|a| a.sign_bytes(message))
            .ok_or_else(|| {
                StoreError::Invalid(
                    "this session has no signing key (opened with the recovery key, or a key \
                     slot older than signatures): set a new password first"
                        .into(),
                )
            })
    }

    /// Stops signing this session's changes, **for benchmarks only** (`ecrf bench` times saves
    /// with and without the author's signature to report what signing costs).
    #[doc(hidden)]
    pub fn without_signing_for_benchmark(&mut self) {
        self.author = None;
    }

    /// The statements that open this store's file with plain SQLCipher (the raw key and the page
    /// settings), for forensic tools and tests. Only a logged-in store can give them.
    pub fn key_pragmas(&self) -> zeroize::Zeroizing<String> {
        self.key.pragmas()
    }

    /// The last change in the log: its sequence number and hash (acknowledged once a save
    /// returns).
    pub fn head(&self) -> (i64, &str) {
        (self.head_seq, &self.head_hash)
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// For benchmarks and bulk imports only: `false` turns fsync off until set back to `true`
    /// (a power cut may then lose the most recent saves).
    #[doc(hidden)]
    pub fn set_durable(&self, durable: bool) -> Result<(), StoreError> {
        self.conn.execute_batch(if durable {
            "PRAGMA synchronous = FULL;"
        } else {
            "PRAGMA synchronous = OFF;"
        })?;
        Ok(())
    }

    /// Copies the write-ahead log back into the store file, so the next save writes it again
    /// from its start (the file keeps its size: overwriting costs one fsync, growing two). Call when idle
    /// (after a bulk load, before a backup); a save also does it itself once
    /// [`WAL_SAVES_BEFORE_CHECKPOINT`] saves have piled up, so the log cannot grow without bound.
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        self.checkpoint_now()
    }

    /// What to call when the user is idle: checkpoints once [`IDLE_CHECKPOINT_AFTER_SAVES`]
    /// saves have gathered. Restarting the WAL makes the next save sync the WAL header too (a
    /// second fsync), so checkpointing after every save would double the cost of every save.
    pub fn idle(&mut self) -> Result<(), StoreError> {
        if self.saves_since_checkpoint >= IDLE_CHECKPOINT_AFTER_SAVES {
            self.checkpoint_now()?;
        }
        Ok(())
    }

    fn checkpoint_now(&mut self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        self.saves_since_checkpoint = 0;
        Ok(())
    }

    pub(crate) fn require(&self, action: Action) -> Result<(), StoreError> {
        if self.session.role.may(action) {
            Ok(())
        } else {
            Err(StoreError::NotAllowed {
                user: self.session.user.clone(),
                role: self.session.role.to_string(),
                action: action.to_string(),
            })
        }
    }
}
