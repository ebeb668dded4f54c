//! Encrypted backup and restore with the real `ecrf` binary: a backup taken while another
//! process keeps saving restores to a store that verifies and holds every change acknowledged
//! before the backup began; restore is for administrators, checks the file before replacing
//! anything and keeps the replaced store aside; a damaged or cut backup is refused.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ecrf_store::Store;
use ecrf_testkit::study;

mod common;
use common::{ADMIN_PW, NURSE_PW, ecrf, err, ok, site_01};

fn new_store(path: &Path) {
    drop(site_01().create(path));
}

fn hash_at(store: &Store, seq: i64) -> Option<String> {
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    conn.execute_batch(&store.key_pragmas()).unwrap();
    conn.query_row("SELECT hash FROM change_log WHERE seq = ?1", [seq], |r| {
        r.get(0)
    })
    .ok()
}

#[test]
fn a_backup_taken_while_saving_restores_every_change_acknowledged_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ward.ecrf");
    new_store(&store);
    let mut writer = Command::new(env!("CARGO_BIN_EXE_ecrf"))
        .args(["crash-writer", "--admin", "admin", "--mode", "saves"])
        .env("ECRF_STORE", &store)
        .env("ECRF_USER", "nurse")
        .env("ECRF_PASSWORD", NURSE_PW)
        .env("ECRF_ADMIN_PASSWORD", ADMIN_PW)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(writer.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in out.lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut acked: Vec<(i64, String)> = Vec::new();
    let take = |acked: &mut Vec<(i64, String)>, wait: bool| {
        while let Ok(l) = if wait {
            rx.recv_timeout(Duration::from_secs(20))
        } else {
            rx.try_recv().map_err(|_| mpsc::RecvTimeoutError::Timeout)
        } {
            if let Some(rest) = l.strip_prefix("ACK ") {
                let (seq, hash) = rest.split_once(' ').unwrap();
                acked.push((seq.parse().unwrap(), hash.to_string()));
                if wait && acked.len() >= 20 {
                    break;
                }
            }
        }
    };
    take(&mut acked, true);
    assert!(acked.len() >= 20, "the writer saved too little: {acked:?}");
    // Everything read so far was acknowledged before the backup begins.
    take(&mut acked, false);
    let before_backup = acked.clone();
    let backup = dir.path().join("usb").join("ward-backup.ecrfbak");
    std::fs::create_dir_all(backup.parent().unwrap()).unwrap();
    let shown = ok(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["backup", "-o", backup.to_str().unwrap()],
    ));
    assert!(shown.contains("Backup written"), "{shown}");
    // The writer keeps saving after the backup; then it stops.
    std::thread::sleep(Duration::from_millis(300));
    writer.kill().unwrap();
    writer.wait().unwrap();
    take(&mut acked, false);
    assert!(
        acked.len() > before_backup.len(),
        "the writer was saving during and after the backup"
    );

    // The file is encrypted: nothing of the trial readable, no SQLite header.
    let bytes = std::fs::read(&backup).unwrap();
    assert!(!bytes.windows(15).any(|w| w == b"SQLite format 3"));
    assert!(!bytes.windows(7).any(|w| w == b"RUNNING"));

    // Restore into an empty place: verifies, holds every change acknowledged before the backup.
    let restored = dir.path().join("restored.ecrf");
    let shown = ok(&ecrf(
        &restored,
        "admin",
        ADMIN_PW,
        &["restore", backup.to_str().unwrap()],
    ));
    assert!(shown.starts_with("Restored"), "{shown}");
    let r = Store::open(&restored, study(), "nurse", NURSE_PW).unwrap();
    let report = r.check().unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    for (seq, hash) in &before_backup {
        assert_eq!(
            hash_at(&r, *seq).as_deref(),
            Some(hash.as_str()),
            "change #{seq}, acknowledged before the backup, is not in it"
        );
    }
    let (head, _) = r.head();
    assert!(
        head < acked.last().unwrap().0,
        "the backup is a snapshot, not the end"
    );
    drop(r);
}

#[test]
fn restore_is_for_administrators_checks_first_and_keeps_the_old_store_aside() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ward.ecrf");
    new_store(&store);
    let nurse = |args: &[&str]| ecrf(&store, "nurse", NURSE_PW, args);
    assert_eq!(ok(&nurse(&["subject", "new"])).trim(), "01-0001");
    let backup = dir.path().join("b.ecrfbak");
    let b = backup.to_str().unwrap();
    ok(&ecrf(&store, "admin", ADMIN_PW, &["backup", "-o", b]));
    // A second backup to the same file is refused, not overwritten.
    let line = err(&ecrf(&store, "admin", ADMIN_PW, &["backup", "-o", b]));
    assert!(line.contains("already exists"), "{line}");
    // Later work, then the restore goes back to the backup.
    assert_eq!(ok(&nurse(&["subject", "new"])).trim(), "01-0002");

    let line = err(&nurse(&["restore", b]));
    assert!(line.contains("may not restore"), "{line}");
    let line = err(&ecrf(&store, "admin", "wrong-password", &["restore", b]));
    assert!(line.contains("wrong password"), "{line}");

    // Damaged and cut copies are refused and nothing is replaced.
    let bytes = std::fs::read(&backup).unwrap();
    let damaged = dir.path().join("damaged.ecrfbak");
    let mut d = bytes.clone();
    let n = d.len();
    d[n - 5000] ^= 0x01;
    std::fs::write(&damaged, &d).unwrap();
    let line = err(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["restore", damaged.to_str().unwrap()],
    ));
    assert!(line.contains("checksum does not match"), "{line}");
    let cut = dir.path().join("cut.ecrfbak");
    std::fs::write(&cut, &bytes[..n - 4096]).unwrap();
    let line = err(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["restore", cut.to_str().unwrap()],
    ));
    assert!(line.contains("cut off"), "{line}");
    let not_backup = dir.path().join("ward.ecrf.keys");
    let line = err(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["restore", not_backup.to_str().unwrap()],
    ));
    assert!(line.contains("not a usable eCRF backup"), "{line}");
    assert_eq!(ok(&nurse(&["subject", "list"])).lines().count(), 2);
    let entries = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    };
    assert!(!entries().iter().any(|e| e.contains("before-restore")));

    let shown = ok(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["restore", "--check-only", b],
    ));
    assert!(shown.starts_with("OK: backup of site 01"), "{shown}");
    let shown = ok(&ecrf(&store, "admin", ADMIN_PW, &["restore", b]));
    assert!(shown.contains("is kept as"), "{shown}");
    assert_eq!(ok(&nurse(&["subject", "list"])).trim(), "01-0001");
    assert!(ok(&nurse(&["store", "check"])).starts_with("OK:"));
    // The replaced store is kept whole beside it, with its key slots, and still opens.
    let aside = entries()
        .into_iter()
        .find(|e| e.contains("before-restore") && !e.ends_with(".keys"))
        .unwrap();
    let old = Store::open(&dir.path().join(aside), study(), "nurse", NURSE_PW).unwrap();
    assert_eq!(old.subjects().unwrap(), ["01-0001", "01-0002"]);
}

#[test]
fn a_backup_of_another_store_replaces_this_one_only_when_an_administrator_forces_it() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.ecrf");
    let theirs = dir.path().join("theirs.ecrf");
    new_store(&ours);
    new_store(&theirs);
    ok(&ecrf(&ours, "nurse", NURSE_PW, &["subject", "new"]));
    let backup = dir.path().join("theirs.ecrfbak");
    let b = backup.to_str().unwrap();
    ok(&ecrf(&theirs, "admin", ADMIN_PW, &["backup", "-o", b]));

    let line = err(&ecrf(&ours, "admin", ADMIN_PW, &["restore", b]));
    assert!(
        line.contains("backup of another store") && line.contains("--force"),
        "{line}"
    );
    assert_eq!(
        ok(&ecrf(&ours, "nurse", NURSE_PW, &["subject", "list"])).trim(),
        "01-0001",
        "nothing was replaced"
    );
    let shown = ok(&ecrf(&ours, "admin", ADMIN_PW, &["restore", "--force", b]));
    assert!(shown.contains("is kept as"), "{shown}");
    assert_eq!(
        ok(&ecrf(&ours, "nurse", NURSE_PW, &["subject", "list"])).trim(),
        "",
        "the other store's copy is in place"
    );
}
