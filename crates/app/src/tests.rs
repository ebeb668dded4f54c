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
    app.add_user("li", "Li Na", "nurse", "nurse-password")
        .unwrap();
    app.lock();
    assert_eq!(app.subjects().unwrap_err().code, ErrorCode::NotLoggedIn);
    let s = app.login("li", "nurse-password").unwrap();
    assert_eq!(
        (s.role.as_str(), s.lang.as_str(), s.lock_minutes),
        ("nurse", "en", 15)
    );
    assert_eq!(app.set_lang("zh").unwrap().lang, "zh");

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
    assert_eq!(h[1].old.as_deref(), Some("172"));
    assert_eq!(h[1].new.as_deref(), Some("171"));
    assert_eq!(h[1].reason.as_deref(), Some("misread tape"));
    assert_eq!(h[1].user, "li");

    // The language choice is remembered for the user.
    app.lock();
    assert_eq!(app.login("li", "nurse-password").unwrap().lang, "zh");
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
    assert_eq!(rows.len(), 3);
    assert!(rows[0].day0.is_some());
    let page = app.subject(&rows[0].subject).unwrap();
    let dly1 = page.schedule.iter().find(|r| r.key == "DLY#1").unwrap();
    assert_ne!(dly1.status, StatusDto::NotStarted);
    assert!(
        page.schedule
            .iter()
            .any(|r| r.key == "D30" && r.due.is_some())
    );
}
