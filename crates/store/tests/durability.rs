//! The open-time tail check and the full check find a log cut or changed behind the app's back;
//! the durability settings are those the store promises.

use ecrf_store::{Store, StoreError};
use ecrf_testkit::{NURSE, Site, User, open_as, study};

/// The nurse of these stores.
const LI: User = User {
    username: "li",
    name: "Li",
    ..NURSE
}
.with_password("nurse-password-1");

/// Site 01 with the nurse `li` and two subjects; returns its path and its key pragmas.
fn store(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let path = dir.join("w.ecrf");
    let admin = Site::new("01").with(LI).create(&path);
    let key = admin.key_pragmas().to_string();
    drop(admin);
    let mut li = open_as(&path, &LI);
    li.new_subject().unwrap();
    li.new_subject().unwrap();
    (path, key)
}

fn raw(path: &std::path::Path, key: &str) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(key).unwrap();
    let triggers: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in triggers {
        conn.execute_batch(&format!("DROP TRIGGER {t}")).unwrap();
    }
    conn
}

#[test]
fn new_stores_have_the_page_size_their_key_file_records() {
    let dir = tempfile::tempdir().unwrap();
    let (path, key) = store(dir.path());
    assert!(key.contains("cipher_page_size = 2048"), "{key}");
    let conn = raw(&path, &key);
    let size: String = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    assert_eq!(size, ecrf_store::keyring::NEW_STORE_PAGE_SIZE.to_string());
    drop(conn);
    // The file really has 2 KiB pages: read as SQLCipher's default 4 KiB, no page checks out.
    let wrong = rusqlite::Connection::open(&path).unwrap();
    wrong
        .execute_batch(&key.replace("cipher_page_size = 2048", "cipher_page_size = 4096"))
        .unwrap();
    assert!(
        wrong
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r
                .get::<_, i64>(0))
            .is_err()
    );
    let keys = std::fs::read_to_string(ecrf_store::keyring::keyring_path(&path)).unwrap();
    assert!(keys.contains("\"page_size\": 2048"), "{keys}");
}

#[test]
fn a_store_from_before_the_page_size_was_recorded_opens_with_4_kib_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (path, key) = store(dir.path());
    // Rewrite the file as earlier builds made it (SQLCipher's 4 KiB pages) and take the setting
    // out of its key file, as those builds wrote it.
    let legacy = dir.path().join("legacy.ecrf");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&key).unwrap();
        let hex = key
            .split("x'")
            .nth(1)
            .and_then(|k| k.split('\'').next())
            .unwrap();
        conn.execute_batch(&format!(
            "ATTACH DATABASE '{}' AS legacy KEY \"x'{hex}'\"; \
             PRAGMA legacy.cipher_hmac_algorithm = HMAC_SHA256; \
             PRAGMA legacy.cipher_page_size = 4096;",
            legacy.display()
        ))
        .unwrap();
        conn.query_row("SELECT sqlcipher_export('legacy')", [], |_| Ok(()))
            .unwrap();
        // The export copies tables, not the schema version the migrations count in.
        let version: i64 = conn
            .query_row("PRAGMA main.user_version", [], |r| r.get(0))
            .unwrap();
        conn.execute_batch(&format!(
            "PRAGMA legacy.user_version = {version}; DETACH DATABASE legacy"
        ))
        .unwrap();
    }
    std::fs::rename(&legacy, &path).unwrap();
    let keys_path = ecrf_store::keyring::keyring_path(&path);
    let mut keys: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&keys_path).unwrap()).unwrap();
    assert!(keys.as_object_mut().unwrap().remove("page_size").is_some());
    std::fs::write(&keys_path, keys.to_string()).unwrap();

    let li = open_as(&path, &LI);
    assert_eq!(li.subjects().unwrap().len(), 2);
    let report = li.check().unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert!(li.key_pragmas().contains("cipher_page_size = 4096"));
}

#[test]
fn durability_settings_are_explicit() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = store(dir.path());
    let li = open_as(&path, &LI);
    let report = li.check().unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.changes, 5);
    let settings = li.durability_settings().unwrap();
    assert_eq!(settings.journal_mode, "wal");
    assert_eq!(settings.synchronous, 2, "synchronous = FULL");
    assert!(settings.busy_timeout_ms >= 1000);
}

#[test]
fn a_cut_log_is_refused_at_open_and_reported_by_the_full_check() {
    let dir = tempfile::tempdir().unwrap();
    let (path, key) = store(dir.path());
    raw(&path, &key)
        .execute_batch("DELETE FROM change_log WHERE seq = (SELECT max(seq) FROM change_log)")
        .unwrap();
    let e = Store::open(&path, study(), LI.username, LI.password)
        .err()
        .unwrap();
    assert!(matches!(e, StoreError::Damaged(_)), "{e}");
    assert!(e.to_string().contains("ecrf store check"), "{e}");
    // The full check still opens it and says what is wrong.
    let checked = Store::open_for_check(&path, study(), LI.username, LI.password).unwrap();
    let report = checked.check().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("changes at the end were deleted")),
        "{:?}",
        report.problems
    );
}

#[test]
fn an_altered_last_change_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (path, key) = store(dir.path());
    raw(&path, &key)
        .execute_batch(
            "UPDATE change_log SET new_value = '\"01\"' WHERE seq = (SELECT max(seq) FROM change_log)",
        )
        .unwrap();
    let e = Store::open(&path, study(), LI.username, LI.password)
        .err()
        .unwrap();
    assert!(e.to_string().contains("does not match its hash"), "{e}");
}

#[test]
fn projections_edited_behind_the_log_fail_the_full_check() {
    let dir = tempfile::tempdir().unwrap();
    let (path, key) = store(dir.path());
    raw(&path, &key)
        .execute_batch("DELETE FROM subjects WHERE subject = '01-0002'")
        .unwrap();
    let li = open_as(&path, &LI);
    let report = li.check().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("projections differ")),
        "{:?}",
        report.problems
    );
    // The check wrote nothing: the edited projection is still as it was.
    assert_eq!(li.subjects().unwrap(), ["01-0001"]);
}

#[test]
fn the_backup_reminder_comes_when_unprotected_changes_grow_old() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = store(dir.path());
    let li = open_as(&path, &LI);
    let now = chrono::Utc::now();
    let later = now + chrono::Duration::hours(25);
    assert!(!li.backup_status(24, now).unwrap().remind);
    let status = li.backup_status(24, later).unwrap();
    assert!(status.remind && status.last_backup_utc.is_none());
    li.backup(&dir.path().join("b.ecrfbak")).unwrap();
    let status = li.backup_status(24, later).unwrap();
    assert!(!status.remind, "a backup covers every change");
    assert!(status.last_backup_utc.is_some());
}
