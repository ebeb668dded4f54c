//! Encrypted backups of a store and restoring them.
//!
//! Owns the backup file format and both directions. A backup is one file:
//!
//! ```text
//! ECRF-BACKUP 1\n
//! {header JSON: store id, site, time, last change (seq, hash), size and SHA-256 of the
//!  database, the key slots}\n
//! <the SQLCipher database, still encrypted with the store key>
//! ```
//!
//! The database part is taken with SQLite's online backup API in one step (one read
//! transaction), so it is consistent while others save: it holds exactly the changes committed
//! before the copy began. It stays encrypted (same key); the key slots ride along so the copy
//! opens with the same passwords or the recovery key. Invariants: a backup file is written to a
//! temporary name, fsynced and renamed, so a half-written backup never looks like one; a restore
//! checks the checksum, opens the copy as an administrator and runs the full [`Store::check`]
//! *before* anything is replaced, and keeps the current file aside rather than deleting it; a
//! backup of another store (its store id differs from the one in the current key file) replaces
//! nothing unless the administrator forces it. Backup files and key files are written
//! owner-only and new ([`crate::secret_file`]).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use ecrf_core::{Role, Study};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::keyring::keyring_path;
use crate::store::Store;

/// The first line of every backup file.
pub const MAGIC: &str = "ECRF-BACKUP 1";

/// Longest header accepted when reading a backup (the key slots of a few hundred users).
const MAX_HEADER: u64 = 1 << 20;

/// What a backup holds, from its header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    /// The store's id.
    pub store_id: String,
    /// Site code.
    pub site: String,
    /// When the copy was taken (UTC).
    pub taken_utc: String,
    /// Changes in the copy (the last change's seq).
    pub head_seq: i64,
    /// The last change's hash.
    pub head_hash: String,
    /// Size of the database part in bytes.
    pub db_bytes: u64,
    /// SHA-256 of the database part, hex.
    pub db_sha256: String,
    /// The key slot file (`<store>.keys`) as it was.
    pub keys: String,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The backup's header.
    pub header: BackupHeader,
    /// Where the store that was replaced now lies (`None` when there was none).
    pub kept_aside: Option<PathBuf>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::io(path, e)
}

fn bad(path: &Path, what: &str) -> StoreError {
    StoreError::Invalid(format!(
        "{} is not a usable eCRF backup: {what}",
        path.display()
    ))
}

/// Appends `suffix` to a path's file name (`ward.ecrf` + `-wal` = `ward.ecrf-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(not(windows))]
fn sync_dir(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Windows cannot flush a folder (see `keyring::sync_folder`); NTFS journals the renames.
#[cfg(windows)]
fn sync_dir(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// Reads and checks a backup's header: magic line, JSON, sizes. The database part follows at
/// the returned offset. Any malformed input is an `Invalid` error naming the file, never a panic.
pub fn read_header(path: &Path, file: &mut impl Read) -> Result<(BackupHeader, u64), StoreError> {
    let mut reader = BufReader::new(file.take(MAX_HEADER + MAGIC.len() as u64 + 2));
    let mut magic = Vec::new();
    reader.read_until(b'\n', &mut magic).map_err(io(path))?;
    if magic.strip_suffix(b"\n") != Some(MAGIC.as_bytes()) {
        return Err(bad(path, "it does not start with the eCRF backup mark"));
    }
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).map_err(io(path))?;
    if line.last() != Some(&b'\n') {
        return Err(bad(path, "its header is cut off or too long"));
    }
    let header: BackupHeader = serde_json::from_slice(&line[..line.len() - 1])
        .map_err(|e| bad(path, &format!("its header is unreadable ({e})")))?;
    if header.db_sha256.len() != 64 || !header.db_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(path, "its checksum is malformed"));
    }
    Ok((header, (magic.len() + line.len()) as u64))
}

impl Store {
    /// Writes an encrypted, consistent copy of the store to `out` (see the module docs) while
    /// others may keep saving. Returns the header written.
    pub fn backup(&self, out: &Path) -> Result<BackupHeader, StoreError> {
        if out.exists() {
            return Err(StoreError::AlreadyExists(out.to_path_buf()));
        }
        let part_db = with_suffix(out, ".part-db");
        let part = with_suffix(out, ".part");
        let result = self.write_backup(out, &part_db, &part);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = fs::remove_file(with_suffix(&part_db, suffix));
        }
        if result.is_err() {
            let _ = fs::remove_file(&part);
        }
        result
    }

    fn write_backup(
        &self,
        out: &Path,
        part_db: &Path,
        part: &Path,
    ) -> Result<BackupHeader, StoreError> {
        let _ = fs::remove_file(part_db);
        let key_pragma = zeroize::Zeroizing::new(format!(
            "PRAGMA cipher_log_level = NONE; {}",
            *self.key_pragmas()
        ));
        let keys = fs::read_to_string(keyring_path(self.path()))
            .map_err(io(&keyring_path(self.path())))?;
        {
            let mut dst = Connection::open_with_flags(
                part_db,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            )?;
            dst.execute_batch(&key_pragma)?;
            let backup = rusqlite::backup::Backup::new(self.conn(), &mut dst)?;
            // One step copies every page inside one read transaction: a consistent snapshot.
            loop {
                match backup.step(-1)? {
                    rusqlite::backup::StepResult::Done => break,
                    // Another connection holds a lock: wait a little and try again.
                    _ => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
            drop(backup);
            // The copy carries the WAL flag of its source; a backup is one self-contained file.
            dst.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
        }
        let (head_seq, head_hash, store_id, site) = {
            let copy = Connection::open_with_flags(part_db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            copy.execute_batch(&key_pragma)?;
            copy.query_row(
                "SELECT coalesce(max(seq), 0), \
                 coalesce((SELECT hash FROM change_log ORDER BY seq DESC LIMIT 1), ''), \
                 (SELECT value FROM meta WHERE key = 'store_id'), \
                 (SELECT value FROM meta WHERE key = 'site') FROM change_log",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?
        };
        let mut hasher = Sha256::new();
        let mut src = fs::File::open(part_db).map_err(io(part_db))?;
        let mut buf = vec![0u8; 1 << 16];
        let mut db_bytes = 0u64;
        loop {
            let n = src.read(&mut buf).map_err(io(part_db))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            db_bytes += n as u64;
        }
        let header = BackupHeader {
            store_id,
            site,
            taken_utc: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            head_seq,
            head_hash,
            db_bytes,
            db_sha256: hex::encode(hasher.finalize()),
            keys,
        };
        let json =
            serde_json::to_string(&header).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            let mut f = std::io::BufWriter::new(crate::secret_file::create_temporary(part)?);
            writeln!(f, "{MAGIC}")?;
            writeln!(f, "{json}")?;
            std::io::copy(&mut fs::File::open(part_db)?, &mut f)?;
            let f = f.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            fs::rename(part, out)
        };
        write().map_err(io(out))?;
        sync_dir(out)?;
        // Remembered for the reminder (not trial data, so not a change in the log).
        self.conn().execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('backup.last_utc', ?1), ('backup.last_seq', ?2)",
            rusqlite::params![header.taken_utc, header.head_seq.to_string()],
        )?;
        Ok(header)
    }

    /// Whether to remind the user to back up: some change made on this laptop is neither on
    /// the server (`sync.pushed`, this device's changes acknowledged by the server) nor in a
    /// backup, and is older than `remind_after_hours`.
    pub fn backup_status(
        &self,
        remind_after_hours: u32,
        now: chrono::DateTime<Utc>,
    ) -> Result<BackupStatus, StoreError> {
        let conn = self.conn();
        let meta = |key: &str| -> Result<Option<String>, StoreError> {
            Ok(conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()?)
        };
        let last_backup_utc = meta("backup.last_utc")?;
        let backup_seq: i64 = meta("backup.last_seq")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let pushed: i64 = meta("sync.pushed")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        // The first such change in the log's order. This device numbers its own changes in
        // the log's order (`seq` and `device_seq` rise together), so its first change not on
        // the server bounds the search, and the rows after that bound and after the backup are
        // read in order until one of this device's: a few rows, where the smallest time among
        // every matching change read the whole log (2 s for a site of 600 subjects, at each
        // screen that shows the reminder).
        let oldest: Option<String> = conn
            .query_row(
                "SELECT utc FROM change_log \
                 WHERE seq > max(?1, (SELECT seq FROM change_log \
                                      WHERE device = ?2 AND device_seq > ?3 \
                                      ORDER BY device_seq LIMIT 1) - 1) \
                   AND +device = ?2 \
                 ORDER BY seq LIMIT 1",
                rusqlite::params![backup_seq, self.device_id(), pushed],
                |r| r.get(0),
            )
            .optional()?;
        let remind = oldest
            .as_deref()
            .and_then(|u| chrono::DateTime::parse_from_rfc3339(u).ok())
            .is_some_and(|t| {
                now - t.with_timezone(&Utc) > chrono::Duration::hours(remind_after_hours.into())
            });
        Ok(BackupStatus {
            last_backup_utc,
            unprotected_since_utc: oldest,
            remind,
        })
    }
}

/// What the backup reminder needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupStatus {
    /// When the last backup was taken on this laptop.
    pub last_backup_utc: Option<String>,
    /// When the first change (in the log's order) neither on the server nor in a backup was
    /// made.
    pub unprotected_since_utc: Option<String>,
    /// That change is older than the reminder's hours.
    pub remind: bool,
}

/// Checks a backup without touching any store: the checksum, then the copy opened as `user`
/// with `password` and the full [`Store::check`]. Returns the header.
pub fn verify_backup(
    backup: &Path,
    study: Arc<Study>,
    user: &str,
    password: &str,
) -> Result<BackupHeader, StoreError> {
    let dir = tempfile_dir(backup)?;
    let copy = dir.join("check.ecrf");
    let result = unpack_and_check(backup, &copy, study, user, password).map(|(h, _)| h);
    let _ = fs::remove_dir_all(&dir);
    result
}

fn tempfile_dir(near: &Path) -> Result<PathBuf, StoreError> {
    let base = std::env::temp_dir();
    let name = format!(
        "ecrf-backup-check-{}-{}",
        std::process::id(),
        hex::encode(crate::keyring::random_bytes::<6>()?)
    );
    let dir = base.join(name);
    fs::create_dir_all(&dir).map_err(io(near))?;
    Ok(dir)
}

/// Writes the backup's database to `target` (and its key slots beside it), checking the
/// checksum; then opens it as `user` and runs the full check. The user must be an
/// administrator in the backup.
fn unpack_and_check(
    backup: &Path,
    target: &Path,
    study: Arc<Study>,
    user: &str,
    password: &str,
) -> Result<(BackupHeader, Store), StoreError> {
    let mut file = open_backup(backup)?;
    let (header, offset) = read_header(backup, &mut file)?;
    let mut file = fs::File::open(backup).map_err(io(backup))?;
    std::io::copy(&mut (&mut file).take(offset), &mut std::io::sink()).map_err(io(backup))?;
    let mut hasher = Sha256::new();
    {
        let mut out = fs::File::create(target).map_err(io(target))?;
        let mut buf = vec![0u8; 1 << 16];
        let mut left = header.db_bytes;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(buf.len()));
            let n = file.read(&mut buf[..want]).map_err(io(backup))?;
            if n == 0 {
                return Err(bad(backup, "it is cut off (shorter than its header says)"));
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io(target))?;
            left -= n as u64;
        }
        if file.read(&mut buf[..1]).map_err(io(backup))? != 0 {
            return Err(bad(backup, "it is longer than its header says"));
        }
        out.sync_all().map_err(io(target))?;
    }
    if hex::encode(hasher.finalize()) != header.db_sha256 {
        return Err(bad(
            backup,
            "its checksum does not match (the file was damaged)",
        ));
    }
    let keys = keyring_path(target);
    crate::secret_file::create_temporary(&keys)
        .and_then(|mut f| {
            f.write_all(header.keys.as_bytes())?;
            f.sync_all()
        })
        .map_err(io(&keys))?;
    let store = Store::open_unrecorded(target, study, user, password)?;
    if store.session().role != Role::Admin {
        return Err(StoreError::NotAllowed {
            user: user.to_string(),
            role: store.session().role.to_string(),
            action: "restore a backup".into(),
        });
    }
    let report = store.check()?;
    if !report.ok() {
        return Err(bad(
            backup,
            &format!("its copy fails the check: {}", report.problems.join("; ")),
        ));
    }
    if store.head() != (header.head_seq, header.head_hash.as_str()) {
        return Err(bad(
            backup,
            "its last change is not the one its header names",
        ));
    }
    Ok((header, store))
}

/// Refuses a backup of another store in place of the store at `store_path`: the store id in
/// its header must be the one in the current key file. Nothing to compare with (no store
/// there, or a key file that cannot be read, the case a restore is for) passes; so does
/// `force` (the administrator's `--force`).
fn check_same_store(
    backup: &Path,
    header: &BackupHeader,
    store_path: &Path,
    force: bool,
) -> Result<(), StoreError> {
    if force {
        return Ok(());
    }
    let Ok(current) = crate::keyring::Keyring::load(store_path) else {
        return Ok(());
    };
    if current.store_id() != header.store_id {
        return Err(StoreError::Invalid(format!(
            "{} is a backup of another store (store id {}, site {}), not of {} (store id {}); \
             nothing was replaced. An administrator who means to replace this store with it \
             restores with --force",
            backup.display(),
            header.store_id,
            header.site,
            store_path.display(),
            current.store_id()
        )));
    }
    Ok(())
}

/// Replaces the store at `store_path` with the backup, as `user` (an administrator in the
/// backup). Everything is checked first, and the backup must be of this store unless `force`
/// ([`check_same_store`]); the current store (file, WAL, key slots, noted failed logins) is
/// kept aside as `<store>.before-restore-<UTC time>` rather than deleted.
pub fn restore(
    backup: &Path,
    store_path: &Path,
    study: Arc<Study>,
    user: &str,
    password: &str,
    force: bool,
) -> Result<Restored, StoreError> {
    {
        let mut file = open_backup(backup)?;
        let (header, _) = read_header(backup, &mut file)?;
        check_same_store(backup, &header, store_path, force)?;
    }
    let incoming = with_suffix(store_path, ".restoring");
    for p in [&incoming, &keyring_path(&incoming)] {
        let _ = fs::remove_file(p);
    }
    let checked = unpack_and_check(backup, &incoming, study, user, password);
    let header = match checked {
        Ok((header, store)) => {
            drop(store); // closing checkpoints the WAL back into the file
            header
        }
        Err(e) => {
            for p in [&incoming, &keyring_path(&incoming)] {
                let _ = fs::remove_file(p);
            }
            return Err(e);
        }
    };
    let kept_aside = if store_path.exists() {
        let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
        let mut aside = with_suffix(store_path, &format!(".before-restore-{stamp}"));
        let mut n = 1;
        while aside.exists() {
            n += 1;
            aside = with_suffix(store_path, &format!(".before-restore-{stamp}-{n}"));
        }
        for suffix in ["-wal", "-shm", ".keys", ".failed-logins", ""] {
            let from = with_suffix(store_path, suffix);
            if from.exists() {
                fs::rename(&from, with_suffix(&aside, suffix)).map_err(io(&from))?;
            }
        }
        Some(aside)
    } else {
        None
    };
    fs::rename(&incoming, store_path).map_err(io(store_path))?;
    fs::rename(keyring_path(&incoming), keyring_path(store_path))
        .map_err(io(&keyring_path(store_path)))?;
    sync_dir(store_path)?;
    Ok(Restored { header, kept_aside })
}

/// Opens a backup file to read; a missing one is named as such.
fn open_backup(backup: &Path) -> Result<fs::File, StoreError> {
    fs::File::open(backup).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            bad(backup, "there is no such file")
        } else {
            StoreError::io(backup, e)
        }
    })
}
