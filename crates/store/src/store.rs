//! The store: one SQLCipher file per ward laptop, opened by a logged-in user.
//!
//! Owns opening (key slot → SQLCipher key → page check), users, subjects, saving form values and
//! reading them back, the audit trail, and rebuilding projections. Invariants: every write goes
//! through [`Store::commit_changes`], which appends to the change log and applies the same
//! changes to the projections with [`apply`] in one transaction; a rebuild replays the log
//! through that same [`apply`], so rebuilt and incremental projections cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{FixedOffset, Local, SecondsFormat, Utc};
use ecrf_core::check::{check_save, parse_input};
use ecrf_core::signature::SigningSession;
use ecrf_core::study::Entry;
use ecrf_core::{Action, Finding, FormKey, Role, Study, Value};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, config::DbConfig,
    params,
};
use serde::Serialize;

use crate::error::StoreError;
use crate::keyring::{KdfParams, Keyring, RecoveryKey, StoreKey};
use ecrf_log::{Body, Change, ChangeKind, GENESIS, ItemState, User, VerifyReport, body};

use crate::log::{self, COLUMNS};
use crate::schema;

/// What `ecrf init` asks for. Its `Debug` hides the password.
#[derive(Clone)]
pub struct CreateOptions {
    /// Site code, e.g. `01`.
    pub site: String,
    /// The first user, an administrator.
    pub admin_user: String,
    /// Their full name.
    pub admin_name: String,
    /// Their password.
    pub admin_password: String,
}

impl std::fmt::Debug for CreateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateOptions")
            .field("site", &self.site)
            .field("admin_user", &self.admin_user)
            .field("admin_name", &self.admin_name)
            .field("admin_password", &"(hidden)")
            .finish()
    }
}

impl Drop for CreateOptions {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.admin_password);
    }
}

/// The logged-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    /// User name.
    pub user: String,
    /// Role.
    pub role: Role,
}

/// Options of a save.
#[derive(Debug, Clone, Default)]
pub struct SaveOptions {
    /// Why saved values change (required when one does).
    pub reason: Option<String>,
    /// The user confirmed the soft warnings.
    pub confirm_warnings: bool,
}

/// What a save did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SaveOutcome {
    /// Changes written (items whose value changed).
    pub changes: usize,
    /// Confirmed warnings kept with the save.
    pub warnings: Vec<Finding>,
}

/// An open store with a logged-in user.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    study: Arc<Study>,
    key: StoreKey,
    keyring: Keyring,
    session: Session,
    device: String,
    site: String,
    head_seq: i64,
    head_hash: String,
    device_seq: i64,
    saves_since_checkpoint: u32,
    signing: SigningSession,
}

/// Saves after which a save checkpoints by itself when nobody called [`Store::idle`].
pub const WAL_SAVES_BEFORE_CHECKPOINT: u32 = 1000;

/// Saves after which [`Store::idle`] checkpoints (about 5 MB of WAL for daily logs).
pub const IDLE_CHECKPOINT_AFTER_SAVES: u32 = 50;

/// Checks that a user name is usable: 2–32 of a-z, 0-9, `.`, `_`, `-`.
fn check_username(name: &str) -> Result<(), StoreError> {
    let ok = (2..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "user name {name:?}: use 2 to 32 lower-case letters, digits, '.', '_' or '-'"
        )))
    }
}

fn check_password(password: &str) -> Result<(), StoreError> {
    if password.chars().count() < 8 {
        return Err(StoreError::Invalid(
            "password: at least 8 characters".into(),
        ));
    }
    Ok(())
}

fn open_connection(
    path: &Path,
    key: Option<&StoreKey>,
    create: bool,
) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn =
        Connection::open_with_flags(path, flags).map_err(|e| StoreError::Damaged(e.to_string()))?;
    // SQLCipher would otherwise print its own log lines to stderr on a failed page check.
    conn.execute_batch("PRAGMA cipher_log_level = NONE;")?;
    if let Some(key) = key {
        crate::page_crypto::install();
        conn.execute_batch(&key.pragmas())?;
    } else if create {
        // The benchmark's plain store: the same page size as an encrypted one, the same workload.
        conn.execute_batch(&format!(
            "PRAGMA page_size = {};",
            crate::keyring::NEW_STORE_PAGE_SIZE
        ))?;
    }
    // SQLite marks a statement for re-planning whenever a value bound to `column = ?` might
    // change its plan, and rusqlite's statement cache clears the bindings of every statement it
    // takes back: without the query planner stability guarantee, each cached statement would be
    // compiled again at every use (90 times in one daily-log save). Our plans never depend on values.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // SQLCipher accepts any key; the first read is where a wrong key or a damaged first page shows.
    let damaged = |e: rusqlite::Error| StoreError::Damaged(e.to_string());
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(damaged)?;
    // WAL + FULL: a save is acknowledged only once its WAL frames are on disk. Checkpoints are
    // taken off the save path (see `Store::checkpoint`) so a save never pays for copying the
    // WAL back into the file; closing the last connection checkpoints too.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA wal_autocheckpoint = 0; PRAGMA busy_timeout = 5000;",
    )
    .map_err(damaged)?;
    Ok(conn)
}

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
        }
    }
}

/// A change's typed body, or why it cannot be read.
pub(crate) fn body_of(c: &Change) -> Result<Body, StoreError> {
    c.body().map_err(|e| StoreError::Invalid(e.to_string()))
}

/// Applies one change to the projections. The only code that writes projections.
pub(crate) fn apply(tx: &Connection, c: &Change) -> Result<(), StoreError> {
    match c.kind {
        ChangeKind::UserAdded => {
            // Users log in here with key slots of this device: another device's users
            // (received by sync) stay in the log as its audit, never gain a role here.
            if get_meta(tx, "device")?.as_deref() != Some(c.device.as_str()) {
                return Ok(());
            }
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
        // Audit only: no projection holds them.
        ChangeKind::StoreCreated | ChangeKind::DataExported | ChangeKind::LoginFailed => {}
    }
    Ok(())
}

impl Store {
    /// Creates a new store at `path` for a site, with its first administrator. Returns the store
    /// and the recovery key, which must be shown once and never again.
    pub fn create(
        path: &Path,
        study: Arc<Study>,
        opts: CreateOptions,
    ) -> Result<(Store, RecoveryKey), StoreError> {
        Self::create_inner(path, study, opts, true)
    }

    /// Creates an unencrypted store, **for benchmarks only**: the same code path as
    /// [`Store::create`] without SQLCipher, to measure what encryption costs.
    #[doc(hidden)]
    pub fn create_unencrypted_for_benchmark(
        path: &Path,
        study: Arc<Study>,
        opts: CreateOptions,
    ) -> Result<Store, StoreError> {
        Self::create_inner(path, study, opts, false).map(|(s, _)| s)
    }

    fn create_inner(
        path: &Path,
        study: Arc<Study>,
        opts: CreateOptions,
        encrypt: bool,
    ) -> Result<(Store, RecoveryKey), StoreError> {
        if path.exists() {
            return Err(StoreError::AlreadyExists(path.to_path_buf()));
        }
        check_username(&opts.admin_user)?;
        check_password(&opts.admin_password)?;
        let site = opts.site.trim().to_string();
        if site.is_empty() || site.len() > 8 || !site.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(StoreError::Invalid(format!(
                "site code {site:?}: use 1 to 8 letters or digits"
            )));
        }
        let key = StoreKey::generate()?;
        let store_id = uuid::Uuid::new_v4().to_string();
        let (mut keyring, recovery) = Keyring::create(path, &store_id, &key)?;
        keyring.set_user(
            &opts.admin_user,
            &opts.admin_password,
            &key,
            KdfParams::default(),
        )?;
        let mut conn = open_connection(path, encrypt.then_some(&key), true)?;
        schema::migrate(&mut conn)?;
        let device = uuid::Uuid::new_v4().to_string();
        {
            let tx = conn.transaction()?;
            set_meta(&tx, "store_id", &store_id)?;
            set_meta(&tx, "device", &device)?;
            set_meta(&tx, "site", &site)?;
            set_meta(&tx, "study", &format!("{} {}", study.id, study.version))?;
            set_meta(&tx, "head_seq", "0")?;
            set_meta(&tx, "head_hash", GENESIS)?;
            tx.commit()?;
        }
        // Keys last: a crash before this leaves a store nobody can open, never a key with no store.
        keyring.save()?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            study,
            key,
            keyring,
            session: Session {
                user: opts.admin_user.clone(),
                role: Role::Admin,
            },
            device,
            site: site.clone(),
            head_seq: 0,
            head_hash: GENESIS.to_string(),
            device_seq: 0,
            saves_since_checkpoint: 0,
            signing: SigningSession::default(),
        };
        let created = Draft::of(Body::StoreCreated(body::StoreCreated {
            site: site.clone(),
            store_id: store_id.clone(),
        }));
        let mut admin = Draft::of(Body::UserAdded(body::UserAdded {
            name: opts.admin_name.clone(),
            role: Role::Admin,
        }));
        admin.item = Some(opts.admin_user.clone());
        store.commit_changes(vec![created, admin])?;
        Ok((store, recovery))
    }

    /// Opens a store as a user. A wrong password, an unknown user or a damaged file is a clear
    /// error; nothing is written by a failed open.
    pub fn open(
        path: &Path,
        study: Arc<Study>,
        user: &str,
        password: &str,
    ) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::NoStore(path.to_path_buf()));
        }
        match Self::open_unrecorded(path, study, user, password) {
            Err(e @ (StoreError::WrongPassword(_) | StoreError::UnknownUser(_))) => {
                crate::login_audit::note_failure(path, user, &e.to_string());
                Err(e)
            }
            Err(e) => Err(e),
            Ok(mut store) => {
                // Best effort: on a full disk the notes stay in their file for the next login.
                let _ = store.record_failed_logins();
                Ok(store)
            }
        }
    }

    /// [`Store::open`] without noting a failure or recording earlier ones (checking a copy).
    pub(crate) fn open_unrecorded(
        path: &Path,
        study: Arc<Study>,
        user: &str,
        password: &str,
    ) -> Result<Store, StoreError> {
        let keyring = Keyring::load(path)?;
        let key = keyring.unlock(user, password)?;
        Self::open_with_key(path, study, keyring, Some(key), user, true)
    }

    /// Appends `login.failed` changes (see [`crate::login_audit`]).
    pub(crate) fn commit_failed_logins(&mut self, drafts: Vec<Draft>) -> Result<(), StoreError> {
        self.commit_changes(drafts).map(|_| ())
    }

    /// Opens a store made by [`Store::create_unencrypted_for_benchmark`], **for benchmarks only**.
    #[doc(hidden)]
    pub fn open_unencrypted_for_benchmark(
        path: &Path,
        study: Arc<Study>,
        user: &str,
    ) -> Result<Store, StoreError> {
        let keyring = Keyring::load(path)?;
        Self::open_with_key(path, study, keyring, None, user, true)
    }

    /// Opens a store with the recovery key, as the given existing user (to reset a password).
    pub fn open_with_recovery(
        path: &Path,
        study: Arc<Study>,
        recovery: &RecoveryKey,
        user: &str,
    ) -> Result<Store, StoreError> {
        let keyring = Keyring::load(path)?;
        let key = keyring.unlock_with_recovery(recovery)?;
        Self::open_with_key(path, study, keyring, Some(key), user, true)
    }

    /// Opens a store without the open-time tail check, for `audit verify` and `store check`,
    /// which must be able to report on a damaged log. Nothing else may use it.
    pub fn open_for_check(
        path: &Path,
        study: Arc<Study>,
        user: &str,
        password: &str,
    ) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::NoStore(path.to_path_buf()));
        }
        let keyring = Keyring::load(path)?;
        let key = keyring.unlock(user, password)?;
        Self::open_with_key(path, study, keyring, Some(key), user, false)
    }

    fn open_with_key(
        path: &Path,
        study: Arc<Study>,
        keyring: Keyring,
        key: Option<StoreKey>,
        user: &str,
        tail_check: bool,
    ) -> Result<Store, StoreError> {
        let mut conn = open_connection(path, key.as_ref(), false)?;
        // A plain (benchmark) store still needs a key to wrap slots of users added later.
        let key = match key {
            Some(k) => k,
            None => StoreKey::generate()?,
        };
        schema::migrate(&mut conn)?;
        if tail_check {
            crate::durability::check_tail(&conn)?;
        }
        let store_id = get_meta(&conn, "store_id")?.unwrap_or_default();
        if store_id != keyring.store_id() {
            return Err(StoreError::Keyring(
                "the key file beside the store belongs to another store".into(),
            ));
        }
        let found: Option<(String, bool)> = conn
            .query_row(
                "SELECT role, active FROM users WHERE username = ?1",
                [user],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((_, false)) = found {
            return Err(StoreError::Invalid(format!(
                "user {user} was deactivated and can no longer log in"
            )));
        }
        let role: Role = found
            .map(|(role, _)| role)
            .ok_or_else(|| StoreError::UnknownUser(user.to_string()))?
            .parse()
            .map_err(StoreError::Invalid)?;
        let device = get_meta(&conn, "device")?.unwrap_or_default();
        let site = get_meta(&conn, "site")?.unwrap_or_default();
        let (head_seq, head_hash): (i64, String) = conn.query_row(
            "SELECT coalesce(max(seq), 0), coalesce((SELECT hash FROM change_log ORDER BY seq DESC LIMIT 1), ?1) FROM change_log",
            [GENESIS],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let device_seq: i64 = conn.query_row(
            "SELECT coalesce(max(device_seq), 0) FROM change_log WHERE device = ?1",
            [&device],
            |r| r.get(0),
        )?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            study,
            key,
            keyring,
            session: Session {
                user: user.to_string(),
                role,
            },
            device,
            site,
            head_seq,
            head_hash,
            device_seq,
            saves_since_checkpoint: 0,
            signing: SigningSession::default(),
        })
    }

    /// The connection, for the other modules of this crate.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The connection, mutable (for read transactions in the other modules of this crate).
    /// Another connection to the same file with the same key, for reading the append-only log
    /// in parallel (exports). Fails on a plain benchmark store, whose key is not the file's.
    pub(crate) fn extra_connection(&self) -> Result<Connection, StoreError> {
        open_connection(&self.path, Some(&self.key), false)
    }

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

    /// Checks the logged-in user's password against their key slot.
    pub(crate) fn check_password(&self, password: &str) -> Result<(), StoreError> {
        self.keyring
            .unlock(&self.session.user, password)
            .map(|_| ())
    }

    /// This device's id (a UUID made when the store was created).
    pub fn device_id(&self) -> &str {
        &self.device
    }

    /// The logged-in user.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The study definition the store was opened with.
    pub fn study(&self) -> &Study {
        &self.study
    }

    /// The site code.
    pub fn site(&self) -> &str {
        &self.site
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

    /// Numbers, hashes and appends changes, and applies them to the projections: one
    /// transaction, all or nothing. Returns the changes as written.
    fn commit_changes(&mut self, drafts: Vec<Draft>) -> Result<Vec<Change>, StoreError> {
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
            };
            c.hash = c.compute_hash();
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

    /// Adds a user with a role and password (administrators only).
    pub fn add_user(
        &mut self,
        username: &str,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<(), StoreError> {
        self.require(Action::ManageUsers)?;
        check_username(username)?;
        check_password(password)?;
        if self.users()?.iter().any(|u| u.username == username) {
            return Err(StoreError::Invalid(format!(
                "user {username} already exists"
            )));
        }
        let mut d = Draft::of(Body::UserAdded(body::UserAdded {
            name: name.to_string(),
            role,
        }));
        d.item = Some(username.to_string());
        self.commit_with_slot(d, username, password)
    }

    /// Commits `d` and writes `username`'s key slot for `password` inside the same write lock,
    /// from the key file as it is now, so a slot written meanwhile by another session or
    /// process is kept, not overwritten.
    fn commit_with_slot(
        &mut self,
        d: Draft,
        username: &str,
        password: &str,
    ) -> Result<(), StoreError> {
        let (path, key) = (self.path.clone(), self.key.clone());
        let (_, ring) = self.commit_with(|_| {
            let mut ring = Keyring::load(&path)?;
            ring.set_user(username, password, &key, KdfParams::default())?;
            ring.save()?;
            Ok((vec![d], ring))
        })?;
        self.keyring = ring;
        Ok(())
    }

    /// Sets a new password for the logged-in user (also after opening with the recovery key).
    /// Recorded in the log; it ends a pending administrator reset.
    pub fn set_password(&mut self, password: &str) -> Result<(), StoreError> {
        check_password(password)?;
        let mut d = Draft::new(ChangeKind::PasswordChanged);
        let user = self.session.user.clone();
        d.item = Some(user.clone());
        self.commit_with_slot(d, &user, password)
    }

    /// An administrator sets a temporary password for another user, who must choose a new one
    /// before their next signature.
    pub fn reset_password(&mut self, username: &str, password: &str) -> Result<(), StoreError> {
        self.require(Action::ManageUsers)?;
        check_password(password)?;
        self.require_user(username)?;
        let mut d = Draft::new(ChangeKind::PasswordReset);
        d.item = Some(username.to_string());
        self.commit_with_slot(d, username, password)
    }

    /// Changes a user's role (administrators only).
    pub fn change_role(&mut self, username: &str, role: Role) -> Result<(), StoreError> {
        self.require(Action::ManageUsers)?;
        self.require_user(username)?;
        let mut d = Draft::new(ChangeKind::UserRole);
        d.item = Some(username.to_string());
        d.new_value = Some(role.as_str().to_string());
        self.commit_changes(vec![d])?;
        Ok(())
    }

    /// Deactivates a user: they can no longer log in; their name stays on every record and is
    /// never given to anyone else.
    pub fn deactivate_user(&mut self, username: &str) -> Result<(), StoreError> {
        self.require(Action::ManageUsers)?;
        self.require_user(username)?;
        if username == self.session.user {
            return Err(StoreError::Invalid("you cannot deactivate yourself".into()));
        }
        let mut d = Draft::new(ChangeKind::UserDeactivated);
        d.item = Some(username.to_string());
        self.commit_changes(vec![d])?;
        Ok(())
    }

    fn require_user(&self, username: &str) -> Result<(), StoreError> {
        if self.users()?.iter().any(|u| u.username == username) {
            Ok(())
        } else {
            Err(StoreError::UnknownUser(username.to_string()))
        }
    }

    /// Users of the store.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT username, name, role, active FROM users ORDER BY username")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (username, name, role, active) = row?;
            out.push(User {
                username,
                name,
                role: role.parse().map_err(StoreError::Invalid)?,
                active,
            });
        }
        Ok(out)
    }

    /// Creates a subject and returns its screening number: site code and a sequence, `01-0007`.
    pub fn new_subject(&mut self) -> Result<String, StoreError> {
        self.require(Action::EnterData)?;
        let site = self.site.clone();
        // A device enrolled for sync numbers within its own prefix (`01-D2-0001`), so devices
        // of one site never hand out the same number offline.
        let prefix = match get_meta(&self.conn, "sync.setting.subject_prefix")? {
            Some(p) => format!("{site}-{p}-"),
            None => format!("{site}-"),
        };
        // Counted inside the write lock, so two processes never hand out the same number.
        let (_, number) = self.commit_with(|tx| {
            let n: i64 = tx.query_row(
                "SELECT count(*) FROM subjects WHERE substr(subject, 1, length(?1)) = ?1 \
                 AND length(subject) = length(?1) + 4",
                [&prefix],
                |r| r.get(0),
            )?;
            let number = format!("{prefix}{:04}", n + 1);
            let mut d = Draft::new(ChangeKind::SubjectCreated);
            d.subject = Some(number.clone());
            d.new_value = Some(site.clone());
            Ok((vec![d], number))
        })?;
        Ok(number)
    }

    /// Subject numbers, in order of creation.
    pub fn subjects(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT subject FROM subjects ORDER BY created_seq")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn require_subject(&self, subject: &str) -> Result<(), StoreError> {
        let found: Option<i64> = self
            .conn
            .query_row(
                "SELECT 1 FROM subjects WHERE subject = ?1",
                [subject],
                |r| r.get(0),
            )
            .optional()?;
        found
            .map(|_| ())
            .ok_or_else(|| StoreError::Invalid(format!("no subject {subject} in this store")))
    }

    fn instance_values(
        &self,
        subject: &str,
        form: &str,
    ) -> Result<BTreeMap<String, (Value, Option<String>)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT item, value, warning FROM item_values WHERE subject = ?1 AND form = ?2",
        )?;
        let mut rows = stmt.query([subject, form])?;
        let mut out = BTreeMap::new();
        while let Some(r) = rows.next()? {
            let item: String = r.get(0)?;
            let json: String = r.get(1)?;
            let value = decode_value(form, &item, &json)?;
            out.insert(item, (value, r.get(2)?));
        }
        Ok(out)
    }

    /// Saves typed values into a form instance: parse, edit checks, then one transaction.
    /// Nothing is written when any check fails, a warning is unconfirmed, or a saved value
    /// changes without a reason. Unchanged values write nothing.
    pub fn save(
        &mut self,
        subject: &str,
        key: &FormKey,
        entries: &[(&str, &str)],
        opts: &SaveOptions,
    ) -> Result<SaveOutcome, StoreError> {
        self.require(Action::EnterData)?;
        self.require_subject(subject)?;
        let study = Arc::clone(&self.study);
        let form = study
            .form(&key.form)
            .ok_or_else(|| StoreError::Invalid(format!("there is no form {}", key.form)))?;
        if form.entry == Entry::System {
            return Err(StoreError::Invalid(format!(
                "form {} is written by the app, not typed",
                form.id
            )));
        }
        let instance = key.to_string();
        let offset: FixedOffset = *Local::now().offset();
        let current = self.instance_values(subject, &instance)?;
        let mut proposed: BTreeMap<String, Value> = current
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect();
        let mut changed = BTreeSet::new();
        let mut errors = Vec::new();
        for (item_id, text) in entries {
            let Some(item) = form.item(item_id) else {
                return Err(StoreError::Invalid(format!(
                    "form {} has no item {item_id}",
                    form.id
                )));
            };
            match parse_input(&study, form, item, text, Some(offset)) {
                Err(f) => errors.push(f),
                Ok(new) => {
                    if new.as_ref() != current.get(*item_id).map(|(v, _)| v) {
                        changed.insert(item_id.to_string());
                        match new {
                            Some(v) => proposed.insert(item_id.to_string(), v),
                            None => proposed.remove(*item_id),
                        };
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(StoreError::Rejected(errors));
        }
        if changed.is_empty() {
            return Ok(SaveOutcome::default());
        }
        let changed_items: Vec<&str> = changed.iter().map(String::as_str).collect();
        self.check_not_locked(subject, &instance, &changed_items)?;
        let conn = &self.conn;
        // Subject-wide values (`SUBJECT.LOG_DATE`…) are read only when a rule asks for one.
        let whole = std::cell::OnceCell::new();
        let other = |f: &str, i: &str| -> Option<Value> {
            if f == ecrf_core::outcome::SUBJECT {
                let outcome = whole.get_or_init(|| self.outcome_for_subject_items(subject).ok());
                return ecrf_core::outcome::subject_item(i, &instance, outcome.as_ref()?);
            }
            conn.query_row(
                "SELECT value FROM item_values WHERE subject = ?1 AND form = ?2 AND item = ?3",
                [subject, f, i],
                |r| r.get::<_, String>(0),
            )
            .ok()
            .and_then(|s| Value::from_json(&s).ok())
        };
        let verdict = check_save(form, &proposed, &changed, &other, Utc::now());
        if !verdict.errors.is_empty() {
            return Err(StoreError::Rejected(verdict.errors));
        }
        if !verdict.warnings.is_empty() && !opts.confirm_warnings {
            return Err(StoreError::NeedsConfirmation(verdict.warnings));
        }
        let reason = opts
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if reason.is_none() {
            let needing: Vec<(String, String)> = changed
                .iter()
                .filter_map(|i| current.get(i).map(|(v, _)| (i.clone(), v.to_string())))
                .collect();
            if !needing.is_empty() {
                return Err(StoreError::ReasonRequired {
                    form: instance,
                    items: needing,
                });
            }
        }
        let mut drafts = Vec::with_capacity(changed.len());
        for item_id in &changed {
            let old = current.get(item_id).map(|(v, _)| v);
            let mine: Vec<&Finding> = verdict
                .warnings
                .iter()
                .filter(|w| &w.item == item_id)
                .collect();
            let mut d = Draft::new(ChangeKind::ItemSet);
            d.subject = Some(subject.to_string());
            d.form = Some(instance.clone());
            d.item = Some(item_id.clone());
            d.old_value = old.map(Value::to_json);
            d.new_value = proposed.get(item_id).map(Value::to_json);
            d.reason = reason.map(str::to_string);
            d.warning =
                (!mine.is_empty()).then(|| serde_json::to_string(&mine).unwrap_or_default());
            drafts.push(d);
        }
        let n = drafts.len();
        // A warning confirmed without a comment becomes a query for the monitor to look at.
        if reason.is_none() {
            for w in &verdict.warnings {
                let mut q = Draft::of(Body::QueryRaised(body::QueryStep {
                    query: uuid::Uuid::now_v7().to_string(),
                    text: format!("Confirmed without a comment: {}", w.message.en),
                    // Raised by the save itself, so it needs no right to raise queries.
                    auto: true,
                }));
                q.subject = Some(subject.to_string());
                q.form = Some(instance.clone());
                q.item = Some(w.item.clone());
                drafts.push(q);
            }
        }
        self.commit_changes(drafts)?;
        Ok(SaveOutcome {
            changes: n,
            warnings: verdict.warnings,
        })
    }

    /// Current values of a form instance, in the form's item order.
    pub fn form_values(&self, subject: &str, key: &FormKey) -> Result<Vec<ItemState>, StoreError> {
        self.require_subject(subject)?;
        let values = self.instance_values(subject, &key.to_string())?;
        let order: Vec<&str> = self
            .study
            .form(&key.form)
            .map(|f| f.items.iter().map(|i| i.id.as_str()).collect())
            .unwrap_or_default();
        let mut out: Vec<ItemState> = values
            .into_iter()
            .map(|(item, (value, warning))| ItemState {
                item,
                value,
                warning,
            })
            .collect();
        out.sort_by_key(|s| {
            order
                .iter()
                .position(|o| *o == s.item)
                .unwrap_or(usize::MAX)
        });
        Ok(out)
    }

    /// The audit trail of one subject, oldest first.
    pub fn audit_log(&self, subject: &str) -> Result<Vec<Change>, StoreError> {
        self.require_subject(subject)?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM change_log WHERE subject = ?1 ORDER BY seq"
        ))?;
        let rows = stmt.query_map([subject], crate::log::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
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

    /// Current values of every form instance of a subject, by instance (`BAS`, `DLY#3`).
    pub fn subject_values(
        &self,
        subject: &str,
    ) -> Result<BTreeMap<String, Vec<ItemState>>, StoreError> {
        self.require_subject(subject)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT form, item, value, warning FROM item_values WHERE subject = ?1",
        )?;
        let mut rows = stmt.query([subject])?;
        let mut out: BTreeMap<String, Vec<ItemState>> = BTreeMap::new();
        while let Some(r) = rows.next()? {
            let form: String = r.get(0)?;
            let item: String = r.get(1)?;
            let json: String = r.get(2)?;
            let value = decode_value(&form, &item, &json)?;
            out.entry(form).or_default().push(ItemState {
                item,
                value,
                warning: r.get(3)?,
            });
        }
        Ok(out)
    }

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

    /// A snapshot of every projection table, for comparing rebuilt with incremental state.
    pub fn projection_snapshot(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for sql in [
            "SELECT username || '|' || name || '|' || role || '|' || created_seq FROM users ORDER BY username",
            "SELECT subject || '|' || site || '|' || created_utc || '|' || created_seq FROM subjects ORDER BY subject",
            "SELECT subject || '|' || form || '|' || item || '|' || value || '|' || coalesce(warning, '') || '|' || change_seq FROM item_values ORDER BY subject, form, item",
            "SELECT subject || '|' || form || '|' || item || '|' || change_id || '|' || coalesce(value, '∅') || '|' || coalesce(warning, '') || '|' || change_seq FROM item_heads ORDER BY subject, form, item, change_id",
            "SELECT change_id FROM superseded ORDER BY change_id",
            "SELECT subject || '|' || form || '|' || item FROM conflicted ORDER BY subject, form, item",
            "SELECT envelope || '|' || stratum || '|' || seq || '|' || block || '|' || block_size || '|' || arm || '|' || lease || '|' || coalesce(subject, '') || '|' || coalesce(opened_seq, '') FROM envelopes ORDER BY envelope",
            "SELECT username || '|' || active || '|' || password_reset_pending FROM users ORDER BY username",
            "SELECT query_id || '|' || subject || '|' || form || '|' || item || '|' || state || '|' || text || '|' || raised_by || '|' || updated_seq FROM queries ORDER BY query_id",
            "SELECT subject || '|' || form || '|' || item || '|' || verified_by || '|' || verified_seq FROM sdv ORDER BY subject, form, item",
            "SELECT change_id || '|' || subject || '|' || scope || '|' || values_hash || '|' || seq FROM signatures ORDER BY change_id",
            "SELECT scope || '|' || reason || '|' || locked_seq FROM locks ORDER BY scope",
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
         DELETE FROM signatures; DELETE FROM locks; DELETE FROM held;",
    )?;
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM change_log ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        apply(conn, &crate::log::from_row(r)?)?;
    }
    Ok(())
}
