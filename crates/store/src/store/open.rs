//! Creating a store and opening one as a user, with a password, the recovery key, or (for
//! checks and benchmarks) without the tail check or without encryption.
//!
//! Owns the connection settings (`open_connection`: SQLCipher key and page settings, the query
//! planner stability guarantee, WAL + FULL sync, no automatic checkpoint). Invariants: a failed
//! open writes nothing to the store (a wrong password or unknown user is only noted beside it,
//! see [`crate::login_audit`]); the key file must belong to the store (same store id); a
//! deactivated user cannot open it; a new store's key file is saved last, so a crash leaves no key
//! without its store.

use std::path::Path;
use std::sync::Arc;

use ecrf_core::signature::SigningSession;
use ecrf_core::{Role, Study};
use ecrf_log::{Body, GENESIS, body};
use rusqlite::{Connection, OpenFlags, OptionalExtension, config::DbConfig};

use super::users::{check_password, check_username};
use super::{Draft, Session, Store, get_meta, set_meta};
use crate::error::StoreError;
use crate::keyring::{KdfParams, Keyring, RecoveryKey, StoreKey, new_author_key};
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

pub(super) fn open_connection(
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
    // 16 MiB of decrypted pages instead of SQLite's 2 MiB: on a site of 600 subjects (713 MB)
    // a daily-log save read back and decrypted index pages the small cache had dropped (`make
    // bench-laptop`: save p99 3.5 -> 2.5 ms, the subject list 480 -> 280 ms; 8 MiB was not
    // enough). A small site's store never fills it.
    conn.execute_batch("PRAGMA cache_size = -16384;")?;
    Ok(conn)
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
        check_password(&opts.admin_password, &opts.admin_user)?;
        let site = opts.site.trim().to_string();
        if site.is_empty() || site.len() > 8 || !site.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(StoreError::Invalid(format!(
                "site code {site:?}: use 1 to 8 letters or digits"
            )));
        }
        let key = StoreKey::generate()?;
        let store_id = uuid::Uuid::new_v4().to_string();
        let (mut keyring, recovery) = Keyring::create(path, &store_id, &key)?;
        let author = new_author_key()?;
        let admin_kek = keyring.set_user(
            &opts.admin_user,
            &opts.admin_password,
            &key,
            Some(&author),
            KdfParams::CURRENT,
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
            crate::rekey::keep_slot_key(&tx, Some(&opts.admin_user), &admin_kek)?;
            crate::rekey::keep_slot_key(&tx, None, &*keyring.recovery_wrapping_key(&recovery)?)?;
            tx.commit()?;
        }
        // Keys last: a crash before this leaves a store nobody can open, never a key with no store.
        keyring.save()?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            study,
            definitions: Default::default(),
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
            author: Some(author.clone()),
        };
        let created = Draft::of(Body::StoreCreated(body::StoreCreated {
            site: site.clone(),
            store_id: store_id.clone(),
        }));
        let mut admin = Draft::of(Body::UserAdded(body::UserAdded {
            name: opts.admin_name.clone(),
            role: Role::Admin,
            public_key: Some(author.public_hex()),
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
                // Best effort too: a slot left at an older, weaker cost is rewritten now that
                // its password is known; if that fails it opens as before and is tried again.
                let _ = store.strengthen_slot(password);
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
        let pending = Keyring::load_pending(path)?;
        let opened = keyring
            .unlock_author(user, password)
            .and_then(|(key, author)| {
                let mut store =
                    Self::open_with_key(path, Arc::clone(&study), keyring, Some(key), user, true)?;
                store.author = author;
                Ok(store)
            });
        match (opened, pending) {
            (Ok(store), Some(_)) => {
                // A rekey stopped before the store's key changed: the current file is true.
                Keyring::discard_pending(path);
                Ok(store)
            }
            (Ok(store), None) => Ok(store),
            // A rekey stopped after the store's key changed: the next key file is the true one.
            (Err(first), Some(next)) => {
                let Ok((key, author)) = next.unlock_author(user, password) else {
                    return Err(first);
                };
                let mut store = Self::open_with_key(path, study, next, Some(key), user, true)?;
                store.author = author;
                store.keyring.promote_pending()?;
                Ok(store)
            }
            (Err(e), None) => Err(e),
        }
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
        let (key, author) = keyring.unlock_author(user, password)?;
        let mut store = Self::open_with_key(path, study, keyring, Some(key), user, false)?;
        store.author = author;
        Ok(store)
    }

    fn open_with_key(
        path: &Path,
        study: Arc<Study>,
        keyring: Keyring,
        key: Option<StoreKey>,
        user: &str,
        tail_check: bool,
    ) -> Result<Store, StoreError> {
        Self::open_as_role(path, study, keyring, key, (user, None), tail_check)
    }

    /// [`Store::open_with_key`]; a user this store does not list yet opens with `role` when
    /// given (a first login the server vouched for, before its `user.add` has been pulled).
    pub(crate) fn open_as_role(
        path: &Path,
        study: Arc<Study>,
        keyring: Keyring,
        key: Option<StoreKey>,
        (user, role): (&str, Option<Role>),
        tail_check: bool,
    ) -> Result<Store, StoreError> {
        let fallback = role;
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
        let role: Role = match (found, fallback) {
            (Some((role, _)), _) => role.parse().map_err(StoreError::Invalid)?,
            (None, Some(role)) => role,
            (None, None) => return Err(StoreError::UnknownUser(user.to_string())),
        };
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
            definitions: Default::default(),
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
            author: None,
        })
    }
}
