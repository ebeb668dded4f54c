//! A full disk: the store on a 3 MB tmpfs mounted by the test (as root), filled until a save
//! fails. The save must fail with the typed disk-full error (the app's `disk_full` code and a
//! "disk full" line from `ecrf`), write nothing, leave every earlier save intact, and saving must
//! work again once space is freed. Where mounting is not permitted the test fails, saying why:
//! a check that cannot run must not pass (skip it by name where that is known and accepted:
//! `cargo test -- --skip a_full_disk`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use ecrf_core::FormKey;
use ecrf_store::{SaveOptions, Store, StoreError};
use ecrf_testkit::{open_as, study};

mod common;
use common::{NURSE_PW, NURSE_USER, ecrf, err, ok, site_01};

/// A mounted tmpfs; the folder it is mounted on is removed after unmounting.
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount_tmpfs(size: &str) -> Option<Tmpfs> {
    let dir = tempfile::tempdir().ok()?;
    let path = dir.path().to_path_buf();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    status.success().then_some(Tmpfs(path, dir))
}

/// Fills the file system with a filler file until it refuses; returns the filler's path.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let block = vec![0x5au8; 4096];
    loop {
        match f.write_all(&block) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let _ = f.sync_all();
    filler
}

fn save_day(store: &mut Store, subject: &str, day: u32) -> Result<(), StoreError> {
    let key = FormKey::parse(&study(), &format!("DLY#{day}")).unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    let values = ecrf_app::demo::daily_log(day as usize, start, day);
    let entries: Vec<(&str, &str)> = values
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    store
        .save(subject, &key, &entries, &SaveOptions::default())
        .map(|_| ())
}

#[test]
fn a_full_disk_refuses_the_save_cleanly_and_keeps_every_earlier_one() {
    let fs = mount_tmpfs("3m").expect(
        "cannot mount a 3 MB tmpfs here (needs root and mount permission): the full-disk check \
         did not run; run it as root, or skip it by name (--skip a_full_disk)",
    );
    let study = study();
    let path = fs.0.join("ward.ecrf");
    let mut nurse = site_01().create_as(&path, &NURSE_USER);
    let subject = nurse.new_subject().unwrap();
    let ecmo = FormKey::parse(&study, "ECMO").unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    ecrf_app::demo::save_sample(
        &mut nurse,
        &subject,
        &ecmo,
        &ecrf_app::demo::ecmo_form(start),
    )
    .unwrap();
    save_day(&mut nurse, &subject, 1).unwrap();

    let filler = fill(&fs.0);
    // Give back a little room, then save daily logs until the disk refuses one.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len - 512 * 1024).unwrap();
    drop(f);
    let mut day = 2;
    let failure = loop {
        assert!(day <= 60, "the disk never filled up");
        match save_day(&mut nurse, &subject, day) {
            Ok(()) => day += 1,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(failure, StoreError::DiskFull(_)),
        "expected the disk-full error, got {failure:?}"
    );
    let shown = failure.to_string();
    assert!(shown.starts_with("disk full: not saved"), "{shown}");
    let app = ecrf_app::dto::AppError::from(failure);
    assert_eq!(app.code, ecrf_app::dto::ErrorCode::DiskFull);
    let failed_day = day;
    assert!(
        failed_day > 2,
        "at least one save fitted before the disk was full"
    );

    // The command line says the same in one line, for the same daily log (a smaller save might
    // still fit in the pages the failed one could not fill).
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    let form = format!("DLY#{failed_day}");
    let mut args: Vec<String> = vec!["form".into(), "set".into(), subject.clone(), form];
    args.extend(
        ecrf_app::demo::daily_log(failed_day as usize, start, failed_day)
            .into_iter()
            .map(|(item, value)| format!("{item}={value}")),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ecrf(&path, "nurse", NURSE_PW, &args);
    let line = err(&out);
    assert!(line.contains("disk full"), "{line}");

    // Nothing half-written; every earlier save intact (also in a fresh session).
    let key = |d: u32| FormKey::parse(&study, &format!("DLY#{d}")).unwrap();
    assert!(
        nurse
            .form_values(&subject, &key(failed_day))
            .unwrap()
            .is_empty()
    );
    drop(nurse);
    let mut nurse = open_as(&path, &NURSE_USER);
    let report = nurse.check().unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    for d in 1..failed_day {
        let values = nurse.form_values(&subject, &key(d)).unwrap();
        assert!(values.len() > 40, "day {d} lost values: {}", values.len());
    }
    assert!(
        nurse
            .form_values(&subject, &key(failed_day))
            .unwrap()
            .is_empty()
    );

    // Free the space: the same save now works.
    std::fs::remove_file(&filler).unwrap();
    save_day(&mut nurse, &subject, failed_day).unwrap();
    assert!(nurse.form_values(&subject, &key(failed_day)).unwrap().len() > 40);
    assert!(nurse.check().unwrap().ok());
    drop(nurse);
    let shown = ok(&ecrf(&path, "nurse", NURSE_PW, &["store", "check"]));
    assert!(shown.starts_with("OK:"), "{shown}");
}
