//! Queries, source-data verification, signatures, locks and user-account events, through the
//! store API on real SQLCipher files.

use std::path::Path;

use ecrf_core::lock::LockScope;
use ecrf_core::query::{QueryState, QueryStep};
use ecrf_core::signature::{SignCredentials, SignatureMeaning};
use ecrf_core::{FormKey, Role};
use ecrf_store::{SaveOptions, Store, StoreError};

use ecrf_testkit::{DATA_MANAGER, INVESTIGATOR, MONITOR, Site, study};

fn key(text: &str) -> FormKey {
    FormKey::parse(&study(), text).unwrap()
}

fn open(path: &Path, user: &str) -> Store {
    ecrf_testkit::open_as(path, &ecrf_testkit::fixed_user(user))
}

fn reason(r: &str) -> SaveOptions {
    SaveOptions {
        reason: Some(r.into()),
        confirm_warnings: true,
    }
}

/// Site 07 with a nurse, investigator, monitor and data manager, and one subject with a
/// complete end-of-study form and a day-1 MAP. Returns the path and the subject.
fn trial(dir: &Path) -> (std::path::PathBuf, String) {
    let path = dir.join("site.ecrf");
    drop(
        Site::new("07")
            .with_nurse()
            .with(INVESTIGATOR)
            .with(MONITOR)
            .with(DATA_MANAGER)
            .create(&path),
    );
    let mut nurse = open(&path, "nurse");
    let subject = nurse.new_subject().unwrap();
    nurse
        .save(
            &subject,
            &key("EOS"),
            &[("EOS_STATUS", "COMPLETED"), ("EOS_DATE", "2026-04-01")],
            &SaveOptions::default(),
        )
        .unwrap();
    nurse
        .save(
            &subject,
            &key("DLY#1"),
            &[("MAP", "72")],
            &SaveOptions::default(),
        )
        .unwrap();
    (path, subject)
}

#[test]
fn a_query_is_raised_answered_by_a_change_with_a_reason_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (path, subject) = trial(dir.path());
    let mut monitor = open(&path, "monitor");
    let id = monitor
        .raise_query(&subject, &key("DLY#1"), "MAP", "Source shows 62 mmHg")
        .unwrap();
    // A monitor never edits data.
    let e = monitor
        .save(&subject, &key("DLY#1"), &[("MAP", "62")], &reason("x"))
        .unwrap_err();
    assert!(e.to_string().contains("may not enter data"), "{e}");
    drop(monitor);

    let mut nurse = open(&path, "nurse");
    let e = nurse
        .raise_query(&subject, &key("DLY#1"), "MAP", "?")
        .unwrap_err();
    assert!(e.to_string().contains("may not raise queries"), "{e}");
    nurse
        .save(
            &subject,
            &key("DLY#1"),
            &[("MAP", "62")],
            &reason("transcription error"),
        )
        .unwrap();
    nurse
        .query_step(&id, QueryStep::Answer, "Corrected from the chart")
        .unwrap();
    let e = nurse.query_step(&id, QueryStep::Close, "done").unwrap_err();
    assert!(e.to_string().contains("may not close queries"), "{e}");
    drop(nurse);

    let mut monitor = open(&path, "monitor");
    assert_eq!(
        monitor.queries(Some(&subject)).unwrap()[0].state,
        QueryState::Answered
    );
    monitor.query_step(&id, QueryStep::Close, "Agreed").unwrap();
    let e = monitor.query_step(&id, QueryStep::Answer, "x").unwrap_err();
    assert!(e.to_string().contains("may not answer"), "{e}");
    let q = &monitor.queries(Some(&subject)).unwrap()[0];
    assert_eq!(
        (q.state, q.item.as_str(), q.raised_by.as_str()),
        (QueryState::Closed, "MAP", "monitor")
    );
    // Every step is in the subject's audit trail, with who and the text.
    let trail: Vec<(String, String)> = monitor
        .audit_log(&subject)
        .unwrap()
        .into_iter()
        .filter(|c| c.kind.as_str().starts_with("query."))
        .map(|c| (c.kind.to_string(), c.user))
        .collect();
    assert_eq!(
        trail,
        [
            ("query.raise".to_string(), "monitor".to_string()),
            ("query.answer".into(), "nurse".into()),
            ("query.close".into(), "monitor".into())
        ]
    );
}

#[test]
fn a_soft_warning_confirmed_without_a_comment_raises_a_query() {
    let dir = tempfile::tempdir().unwrap();
    let (path, subject) = trial(dir.path());
    let mut nurse = open(&path, "nurse");
    nurse
        .save(
            &subject,
            &key("DLY#2"),
            &[("MAP", "35")],
            &SaveOptions {
                reason: None,
                confirm_warnings: true,
            },
        )
        .unwrap();
    let qs = nurse.queries(Some(&subject)).unwrap();
    assert_eq!(qs.len(), 1);
    assert_eq!((qs[0].form.as_str(), qs[0].item.as_str()), ("DLY#2", "MAP"));
    assert!(
        qs[0].text.starts_with("Confirmed without a comment"),
        "{}",
        qs[0].text
    );
    // With a comment, no query.
    nurse
        .save(
            &subject,
            &key("DLY#3"),
            &[("MAP", "35")],
            &reason("checked twice, patient on low flow"),
        )
        .unwrap();
    assert_eq!(nurse.queries(Some(&subject)).unwrap().len(), 1);
}

#[test]
fn sdv_marks_clear_themselves_when_the_verified_value_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (path, subject) = trial(dir.path());
    let mut monitor = open(&path, "monitor");
    assert_eq!(
        monitor.verify_source(&subject, &key("EOS"), &[]).unwrap(),
        2
    );
    assert_eq!(
        monitor
            .verify_source(&subject, &key("DLY#1"), &["MAP"])
            .unwrap(),
        1
    );
    let p = monitor.sdv_progress(Some(&subject)).unwrap();
    assert_eq!((p.items, p.verified), (3, 3));
    let e = monitor
        .verify_source(&subject, &key("DLY#1"), &["HR"])
        .unwrap_err();
    assert!(e.to_string().contains("HR has no value to verify"), "{e}");
    drop(monitor);
    let mut nurse = open(&path, "nurse");
    assert!(nurse.verify_source(&subject, &key("EOS"), &[]).is_err());
    nurse
        .save(
            &subject,
            &key("DLY#1"),
            &[("MAP", "70")],
            &reason("late lab"),
        )
        .unwrap();
    assert_eq!(
        nurse.verified_items(&subject, &key("DLY#1")).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        nurse.verified_items(&subject, &key("EOS")).unwrap(),
        ["EOS_DATE", "EOS_STATUS"]
    );
    let p = nurse.sdv_progress(None).unwrap();
    assert_eq!((p.items, p.verified), (3, 2));
}

#[test]
fn a_signature_breaks_when_a_signed_value_changes_and_holds_again_after_re_signing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, subject) = trial(dir.path());
    let mut inv = open(&path, "investigator");
    // First signature of the session: user id and password.
    assert_eq!(
        inv.signing_credentials(),
        SignCredentials::UserIdAndPassword
    );
    let e = inv
        .sign(
            &subject,
            Some(&key("EOS")),
            SignatureMeaning::Approval,
            None,
            "investigator-password",
        )
        .unwrap_err();
    assert!(e.to_string().contains("user id and password"), "{e}");
    let e = inv
        .sign(
            &subject,
            Some(&key("EOS")),
            SignatureMeaning::Approval,
            Some("investigator"),
            "wrong-password",
        )
        .unwrap_err();
    assert!(matches!(e, StoreError::WrongPassword(_)), "{e}");
    let s = inv
        .sign(
            &subject,
            Some(&key("EOS")),
            SignatureMeaning::Approval,
            Some("investigator"),
            "investigator-password",
        )
        .unwrap();
    assert!(s.valid);
    assert_eq!(
        (s.name.as_str(), s.scope.as_str()),
        ("Dr investigator", "EOS")
    );
    assert!(s.utc.ends_with('Z') && !s.local_offset.is_empty());
    // Later signatures in the same session: the password alone.
    assert_eq!(inv.signing_credentials(), SignCredentials::Password);
    // A form with empty required items cannot be signed.
    let e = inv
        .sign(
            &subject,
            Some(&key("DLY#1")),
            SignatureMeaning::Approval,
            None,
            "investigator-password",
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("required items are empty (DLY#1.DATE"),
        "{e}"
    );
    // Change one signed value: the signature shows as broken.
    inv.save(
        &subject,
        &key("EOS"),
        &[("EOS_DATE", "2026-04-02")],
        &reason("wrong day"),
    )
    .unwrap();
    assert!(!inv.signatures(&subject).unwrap()[0].valid);
    let again = inv
        .sign(
            &subject,
            Some(&key("EOS")),
            SignatureMeaning::Approval,
            None,
            "investigator-password",
        )
        .unwrap();
    assert!(again.valid);
    // After a lock of the session, both credentials again.
    inv.interrupt_signing();
    assert_eq!(
        inv.signing_credentials(),
        SignCredentials::UserIdAndPassword
    );
    drop(inv);
    // After a restart, both again; and a nurse never signs.
    let inv = open(&path, "investigator");
    assert_eq!(
        inv.signing_credentials(),
        SignCredentials::UserIdAndPassword
    );
    let mut nurse = open(&path, "nurse");
    let e = nurse
        .sign(
            &subject,
            Some(&key("EOS")),
            SignatureMeaning::Approval,
            Some("nurse"),
            "nurse-password",
        )
        .unwrap_err();
    assert!(e.to_string().contains("may not sign"), "{e}");
    assert!(nurse.verify().unwrap().ok());
}

#[test]
fn signing_is_refused_while_a_query_is_open_on_what_is_signed() {
    let dir = tempfile::tempdir().unwrap();
    let (path, subject) = trial(dir.path());
    let mut monitor = open(&path, "monitor");
    let q = monitor
        .raise_query(&subject, &key("EOS"), "EOS_DATE", "Date on the chart?")
        .unwrap();
    drop(monitor);
    let mut inv = open(&path, "investigator");
    let e = inv
        .sign(
            &subject,
            Some(&key("EOS")),
            SignatureMeaning::Approval,
            Some("investigator"),
            "investigator-password",
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("1 open query must be closed first"),
        "{e}"
    );
    drop(inv);
    let mut monitor = open(&path, "monitor");
    monitor
        .query_step(&q, QueryStep::Close, "Seen in the chart")
        .unwrap();
    drop(monitor);
    let mut inv = open(&path, "investigator");
    let s = inv
        .sign(
            &subject,
            Some(&key("EOS")),
            SignatureMeaning::Review,
            Some("investigator"),
            "investigator-password",
        )
        .unwrap();
    assert!(s.valid);
}

#[test]
fn a_signature_row_copied_to_another_form_is_reported_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (path, subject) = trial(dir.path());
    let mut inv = open(&path, "investigator");
    inv.sign(
        &subject,
        Some(&key("EOS")),
        SignatureMeaning::Approval,
        Some("investigator"),
        "investigator-password",
    )
    .unwrap();
    assert!(inv.verify().unwrap().ok());
    let key = inv.key_pragmas();
    drop(inv);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&key).unwrap();
        // Copy the signature onto DLY#1 (a new id) and move the original onto DLY#1 too.
        conn.execute_batch(
            "INSERT INTO signatures SELECT change_id || '-copy', subject, 'DLY#1', meaning, signer, \
             signer_name, utc, local_offset, values_hash, seq FROM signatures;",
        )
        .unwrap();
    }
    let inv = open(&path, "investigator");
    let report = inv.verify().unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0].contains("has no signing event in the log"),
        "{:?}",
        report.problems
    );
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&key).unwrap();
        conn.execute_batch(
            "DELETE FROM signatures WHERE change_id LIKE '%-copy'; UPDATE signatures SET scope = 'DLY#1';",
        )
        .unwrap();
    }
    let report = inv.verify().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("was given on EOS")),
        "{:?}",
        report.problems
    );
}

#[test]
fn nothing_locked_can_change_until_it_is_unlocked() {
    let dir = tempfile::tempdir().unwrap();
    let (path, subject) = trial(dir.path());
    let mut nurse = open(&path, "nurse");
    let e = nurse
        .lock(LockScope::Subject(subject.clone()), "casebook complete")
        .unwrap_err();
    assert!(e.to_string().contains("may not lock"), "{e}");
    drop(nurse);
    let mut dm = open(&path, "dm");
    dm.lock(
        LockScope::Form {
            subject: subject.clone(),
            form: "DLY#1".into(),
        },
        "cleaned",
    )
    .unwrap();
    drop(dm);
    let mut nurse = open(&path, "nurse");
    let e = nurse
        .save(&subject, &key("DLY#1"), &[("MAP", "80")], &reason("x"))
        .unwrap_err();
    assert!(
        e.to_string().contains("DLY#1 of") && e.to_string().contains("is locked"),
        "{e}"
    );
    // Other forms are open.
    nurse
        .save(
            &subject,
            &key("DLY#2"),
            &[("MAP", "80")],
            &SaveOptions::default(),
        )
        .unwrap();
    drop(nurse);
    let mut dm = open(&path, "dm");
    dm.lock(LockScope::Site("07".into()), "database lock")
        .unwrap();
    assert!(dm.unlock(LockScope::Site("07".into()), " ").is_err());
    drop(dm);
    let mut nurse = open(&path, "nurse");
    let e = nurse
        .save(&subject, &key("DLY#2"), &[("MAP", "81")], &reason("x"))
        .unwrap_err();
    assert!(e.to_string().contains("site 07 is locked"), "{e}");
    drop(nurse);
    let mut dm = open(&path, "dm");
    dm.unlock(LockScope::Site("07".into()), "query found after lock")
        .unwrap();
    dm.unlock(
        LockScope::Form {
            subject: subject.clone(),
            form: "DLY#1".into(),
        },
        "reopened",
    )
    .unwrap();
    drop(dm);
    let mut nurse = open(&path, "nurse");
    nurse
        .save(
            &subject,
            &key("DLY#1"),
            &[("MAP", "80")],
            &reason("late lab"),
        )
        .unwrap();
    // Rebuilt projections equal incremental ones with all these events in the log.
    let before = nurse.projection_snapshot().unwrap();
    nurse.rebuild_projections().unwrap();
    assert_eq!(before, nurse.projection_snapshot().unwrap());
}

#[test]
fn users_are_deactivated_not_deleted_and_a_reset_password_blocks_signing_until_changed() {
    let dir = tempfile::tempdir().unwrap();
    let (path, subject) = trial(dir.path());
    let mut admin = open(&path, "admin");
    admin
        .reset_password("investigator", "temporary-pass-1")
        .unwrap();
    admin.change_role("nurse", Role::Investigator).unwrap();
    admin.deactivate_user("monitor").unwrap();
    let e = admin
        .add_user("monitor", "Another", Role::Monitor, "monitor-password")
        .unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    let users = admin.users().unwrap();
    let monitor = users.iter().find(|u| u.username == "monitor").unwrap();
    assert!(!monitor.active);
    drop(admin);
    let e = Store::open(&path, study(), "monitor", "monitor-password")
        .err()
        .unwrap();
    assert!(e.to_string().contains("deactivated"), "{e}");
    let mut inv = Store::open(&path, study(), "investigator", "temporary-pass-1").unwrap();
    let e = inv
        .sign(
            &subject,
            Some(&key("EOS")),
            SignatureMeaning::Approval,
            Some("investigator"),
            "temporary-pass-1",
        )
        .unwrap_err();
    assert!(e.to_string().contains("choose a new one first"), "{e}");
    inv.set_password("investigator-new-7q").unwrap();
    inv.sign(
        &subject,
        Some(&key("EOS")),
        SignatureMeaning::Approval,
        Some("investigator"),
        "investigator-new-7q",
    )
    .unwrap();
}
