//! Secrets: failed logins are recorded in the audit log (via a side file holding no password),
//! and no password appears in debug output or next to the store.

use std::sync::Arc;

use ecrf_store::login_audit::pending_path;
use ecrf_store::{Store, StoreError};
use ecrf_testkit::{ADMIN, Site};

const WRONG: &str = "guessed-Secret-42";

#[test]
fn failed_logins_end_up_in_the_audit_log_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.ecrf");
    let study = ecrf_testkit::study();
    let opts = Site::new("01")
        .admin(ADMIN.with_password("admin-password-1"))
        .options();
    let shown = format!("{opts:?}");
    assert!(!shown.contains("admin-password-1"), "{shown}");
    let (store, _) = Store::create(&path, Arc::clone(&study), opts).unwrap();
    let head_before = store.head().0;
    drop(store);

    for user in ["admin", "admin", "mallory"] {
        let e = Store::open(&path, Arc::clone(&study), user, WRONG)
            .err()
            .unwrap();
        assert!(matches!(
            e,
            StoreError::WrongPassword(_) | StoreError::UnknownUser(_)
        ));
    }
    let noted = std::fs::read_to_string(pending_path(&path)).unwrap();
    assert_eq!(noted.lines().count(), 3);
    assert!(!noted.contains(WRONG), "a tried password was written down");

    let store = Store::open(&path, Arc::clone(&study), "admin", "admin-password-1").unwrap();
    assert!(
        !pending_path(&path).exists(),
        "noted attempts moved into the log"
    );
    assert_eq!(store.head().0, head_before + 3);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&store.key_pragmas()).unwrap();
    let mut stmt = conn
        .prepare("SELECT item, new_value, user FROM change_log WHERE kind = ?1 ORDER BY seq")
        .unwrap();
    let rows: Vec<(String, String, String)> = stmt
        .query_map([ecrf_log::ChangeKind::LoginFailed.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let tried: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(tried, ["admin", "admin", "mallory"]);
    assert!(rows[0].1.contains("wrong password"), "{}", rows[0].1);
    assert!(rows[2].1.contains("no user mallory"), "{}", rows[2].1);
    assert!(rows.iter().all(|r| !r.1.contains(WRONG)));
    assert!(store.check().unwrap().ok());
    // Nothing beside the store holds the password.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(WRONG.len()).any(|w| w == WRONG.as_bytes()));
        assert!(!bytes.windows(16).any(|w| w == b"admin-password-1"));
    }
}
