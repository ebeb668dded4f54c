//! The app's use cases on a real store, without a window.

use super::*;

fn app() -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(dir.path().join("ward.ecrf"), dir.path().join("demo.ecrf")).unwrap();
    (dir, app)
}

fn entry(item: &str, text: &str) -> Entry {
    Entry {
        item: item.into(),
        text: text.into(),
    }
}

#[test]
fn generated_bindings_are_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/bindings.ts");
    let fresh = bindings::typescript();
    if std::env::var("UPDATE_BINDINGS").is_ok() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "ui/src/bindings.ts is out of date: run UPDATE_BINDINGS=1 cargo test -p ecrf-app bindings"
    );
}

#[test]
fn setup_login_enter_change_and_history() {
    let (_dir, mut app) = app();
    assert!(!app.welcome().unwrap().store_exists);
    let done = app
        .setup(SetupInput {
            site: "01".into(),
            admin_user: "admin".into(),
            admin_name: "Admin".into(),
            password: "admin-password".into(),
        })
        .unwrap();
    assert_eq!(done.recovery_key.len(), 64);
    app.add_user("li", "Li Na", Role::Nurse, "nurse-password")
        .unwrap();
    app.lock();
    assert_eq!(app.subjects().unwrap_err().code, ErrorCode::NotLoggedIn);
    let s = app.login("li", "nurse-password").unwrap();
    assert_eq!(
        (s.role, s.lang, s.lock_minutes),
        (Role::Nurse, Lang::En, 15)
    );
    assert_eq!(app.set_lang(Lang::Zh).unwrap().lang, Lang::Zh);

    let subject = app.new_subject().unwrap();
    let reply = app
        .save_form(
            &subject,
            "BAS",
            &[entry("HEIGHT", "300"), entry("WEIGHT", "70")],
            None,
            false,
        )
        .unwrap();
    match reply {
        SaveReply::Refused { errors } => {
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].item, "HEIGHT");
            assert!(errors[0].message.zh.contains("超出可能范围"));
        }
        other => panic!("expected refusal, got {other:?}"),
    }
    assert!(app.form(&subject, "BAS").unwrap().values.is_empty());

    let reply = app
        .save_form(
            &subject,
            "BAS",
            &[entry("HEIGHT", "172"), entry("WEIGHT", "70")],
            None,
            false,
        )
        .unwrap();
    assert!(
        matches!(reply, SaveReply::Saved { changes: 2, .. }),
        "{reply:?}"
    );
    let page = app.form(&subject, "BAS").unwrap();
    let bmi = page
        .derived
        .iter()
        .find(|d| d.item == "BMI")
        .map(|d| d.text.as_str());
    assert_eq!(
        bmi,
        Some("23.7"),
        "70 kg / 1.72 m² shown as the derived BMI"
    );

    let reply = app
        .save_form(&subject, "BAS", &[entry("HEIGHT", "171")], None, false)
        .unwrap();
    match reply {
        SaveReply::Reason { items } => assert_eq!(items[0].old, "172"),
        other => panic!("expected a reason prompt, got {other:?}"),
    }
    let reply = app
        .save_form(
            &subject,
            "BAS",
            &[entry("HEIGHT", "171")],
            Some("misread tape".into()),
            false,
        )
        .unwrap();
    assert!(matches!(reply, SaveReply::Saved { changes: 1, .. }));
    let h = app.history(&subject, "BAS", "HEIGHT").unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[1].old_shown.as_deref(), Some("172"));
    assert_eq!(h[1].new_shown.as_deref(), Some("171"));
    assert_eq!(h[1].change.reason.as_deref(), Some("misread tape"));
    assert_eq!(h[1].change.user, "li");

    // The language choice is remembered for the user.
    app.lock();
    assert_eq!(app.login("li", "nurse-password").unwrap().lang, Lang::Zh);
}

#[test]
fn drafts_survive_a_new_session_and_go_after_saving() {
    let (_dir, mut app) = app();
    app.use_demo().unwrap();
    app.login("nurse", demo::DEMO_PASSWORD).unwrap();
    let subject = app.subjects().unwrap()[0].subject.clone();
    app.save_draft(&subject, "DLY#2", &[entry("HR", "77")])
        .unwrap();
    app.lock();
    app.login("nurse", demo::DEMO_PASSWORD).unwrap();
    let page = app.form(&subject, "DLY#2").unwrap();
    assert_eq!(page.draft, Some(vec![entry("HR", "77")]));
    app.save_form(
        &subject,
        "DLY#2",
        &[entry("HR", "77")],
        Some("x".into()),
        false,
    )
    .unwrap();
    assert_eq!(app.form(&subject, "DLY#2").unwrap().draft, None);
}

#[test]
fn failed_logins_are_slowed() {
    let (_dir, mut app) = app();
    app.use_demo().unwrap();
    for _ in 0..3 {
        assert_eq!(
            app.login("nurse", "nope").unwrap_err().code,
            ErrorCode::BadLogin
        );
    }
    let e = app.login("nurse", demo::DEMO_PASSWORD).unwrap_err();
    assert_eq!(e.code, ErrorCode::Throttled, "{e:?}");
}

#[test]
fn subject_list_and_schedule_show_status() {
    let (_dir, mut app) = app();
    app.use_demo().unwrap();
    app.login("nurse", demo::DEMO_PASSWORD).unwrap();
    let rows = app.subjects().unwrap();
    // Three patients followed and one screen failure.
    assert_eq!(rows.len(), 4);
    assert!(rows[0].day0.is_some());
    let page = app.subject(&rows[0].subject).unwrap();
    let dly1 = page.schedule.iter().find(|r| r.key == "DLY#1").unwrap();
    assert_ne!(dly1.status, FormStatus::NotStarted);
    assert!(
        page.schedule
            .iter()
            .any(|r| r.key == "D30" && r.due.is_some())
    );
}

/// Two laptops change one item offline; on the first, whoever may change data sees the
/// conflict with both values, resolves it with a reason, and the item reads the chosen value.
#[test]
fn a_conflict_is_listed_and_resolved_from_the_sync_page() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = crate::test_kit::site_01(dir.path());
    let subject = app.new_subject().unwrap();
    // The other laptop: its own store of the same site and study.
    let study = Arc::clone(&app.study);
    let (mut other, _) = Store::create(
        &dir.path().join("other.ecrf"),
        study,
        CreateOptions {
            site: "01".into(),
            admin_user: "admin".into(),
            admin_name: "Admin".into(),
            admin_password: "admin-password".into(),
        },
    )
    .unwrap();
    other
        .add_user("wang", "Wang", Role::Nurse, "wang-password-1")
        .unwrap();
    let send = |from: &Store, to: &mut Store| {
        let page = from.own_changes_after(0, 10_000).unwrap();
        let cursor = to.sync_state().unwrap().pulled + 1;
        to.apply_remote(&page, cursor).unwrap();
    };
    send(app.store().unwrap(), &mut other);
    let mut other = {
        drop(other);
        Store::open(
            &dir.path().join("other.ecrf"),
            Arc::clone(&app.study),
            "wang",
            "wang-password-1",
        )
        .unwrap()
    };
    let why = |r: &str| SaveOptions {
        reason: Some(r.into()),
        confirm_warnings: true,
    };
    let day1 = FormKey::parse(app.store().unwrap().study(), "DLY#1").unwrap();
    app.store_mut()
        .unwrap()
        .save(&subject, &day1, &[("HR", "90")], &why("first"))
        .unwrap();
    other
        .save(&subject, &day1, &[("HR", "100")], &why("second"))
        .unwrap();
    send(&other, app.store_mut().unwrap());

    let status = app.sync_status().unwrap();
    assert!(status.may_resolve, "a nurse may resolve");
    assert_eq!(status.conflicts.len(), 1, "{:?}", status.conflicts);
    let c = &status.conflicts[0];
    assert_eq!((c.form.as_str(), c.item.as_str()), ("DLY#1", "HR"));
    let mut shown: Vec<_> = c.values.iter().filter_map(|v| v.value.clone()).collect();
    shown.sort();
    assert_eq!(shown, ["100", "90"]);

    // A reason is required; a value the item refuses names the rule; nothing is lost.
    let e = app
        .resolve_conflict(&subject, "DLY#1", "HR", "100", " ")
        .unwrap_err();
    assert!(e.message.contains("reason"), "{}", e.message);
    let e = app
        .resolve_conflict(&subject, "DLY#1", "HR", "ninety", "monitor strip")
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Invalid, "{}", e.message);
    assert!(e.message.contains("HR"), "{}", e.message);
    assert_eq!(app.sync_status().unwrap().conflicts.len(), 1);

    // A data manager reads the conflict but may not write a value.
    app.lock();
    app.login("zhou", "dm-password-1").unwrap();
    assert!(!app.sync_status().unwrap().may_resolve);
    assert_eq!(
        app.resolve_conflict(&subject, "DLY#1", "HR", "100", "monitor strip")
            .unwrap_err()
            .code,
        ErrorCode::NotAllowed
    );

    app.lock();
    app.login("li", "nurse-password").unwrap();
    let after = app
        .resolve_conflict(&subject, "DLY#1", "HR", "100", "monitor strip")
        .unwrap();
    assert!(after.conflicts.is_empty());
    let page = app.form(&subject, "DLY#1").unwrap();
    let hr = page.values.iter().find(|v| v.item == "HR").unwrap();
    assert_eq!(hr.text, "100");
}

/// Which questions the form asks is decided in Rust by the rule saving applies: the "other
/// cause" of shock only when the cause is "other", whatever the screen sends.
#[test]
fn unasked_items_follow_the_study_conditions() {
    let (_dir, app) = app();
    let form = app.study.form("BAS").unwrap();
    let cond = form
        .items
        .iter()
        .find_map(|i| i.ask_when.as_ref().map(|c| (i.id.clone(), c.clone())))
        .expect("the baseline form has a conditional item");
    let (asked_item, c) = cond;
    let hidden = app.unasked_items("BAS", &[]).unwrap();
    assert!(hidden.contains(&asked_item), "{hidden:?}");
    let yes = app
        .unasked_items("BAS", &[entry(&c.item, &c.is[0])])
        .unwrap();
    assert!(!yes.contains(&asked_item), "{yes:?}");
    // Text that is not one of the codes counts as no answer.
    let odd = app
        .unasked_items("BAS", &[entry(&c.item, "no such code")])
        .unwrap();
    assert!(odd.contains(&asked_item), "{odd:?}");
    assert_eq!(
        app.unasked_items("NOPE", &[]).unwrap_err().code,
        ErrorCode::Invalid
    );
}

#[test]
fn printouts_and_audit_csvs_go_only_to_the_folder_the_user_chose() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = crate::test_kit::site_01(dir.path());
    // No folder chosen: nothing is written anywhere, and the user is told why.
    let refused = app.print_blank(Some("BAS")).unwrap_err();
    assert_eq!(refused.code, ErrorCode::Invalid);
    assert!(
        refused.message.contains("printout folder") && refused.message.contains("not encrypted"),
        "{}",
        refused.message
    );
    assert!(
        refused.message.contains("打印文件夹"),
        "{}",
        refused.message
    );
    assert!(
        !dir.path().join("printouts").exists(),
        "no folder of the app's own"
    );
    let missing = dir.path().join("no-such-folder");
    let e = app
        .set_print_folder(&missing.display().to_string())
        .unwrap_err();
    assert!(
        e.message.contains("choose an existing folder"),
        "{}",
        e.message
    );

    let chosen = dir.path().join("chosen");
    std::fs::create_dir(&chosen).unwrap();
    let s = app.set_print_folder(&chosen.display().to_string()).unwrap();
    assert_eq!(s.print_folder.as_deref(), Some(chosen.to_str().unwrap()));
    let printed = app.print_blank(Some("BAS")).unwrap();
    assert!(
        Path::new(&printed.path).starts_with(&chosen),
        "{}",
        printed.path
    );
    assert!(Path::new(&printed.path).is_file());
    let leftovers: Vec<_> = std::fs::read_dir(&chosen)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // The choice is the user's own: another user chooses theirs.
    app.lock();
    app.login("zhou", "dm-password-1").unwrap();
    assert!(app.print_folder().unwrap().is_none());
    let all = AuditFilterDto {
        subject: None,
        form: None,
        item: None,
        user: None,
    };
    assert_eq!(app.audit_csv(&all).unwrap_err().code, ErrorCode::Invalid);
    app.set_print_folder(&chosen.display().to_string()).unwrap();
    let csv = app.audit_csv(&all).unwrap();
    assert!(Path::new(&csv.path).starts_with(&chosen), "{}", csv.path);
}
