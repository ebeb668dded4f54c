//! Trust in what the server receives, against the real `ecrf server`, a real PostgreSQL and
//! real stores: TLS with a site's own CA (and an untrusted certificate refused), the permission
//! table applied to every pushed change, the server's receipt time, a device clock that is off
//! and an event dated before the change it modifies.

mod server;

use ecrf_core::lock::LockScope;
use ecrf_core::{FormKey, Role};
use ecrf_log::{Change, ChangeKind};
use ecrf_store::Store;
use ecrf_sync::SyncError;
use server::{Device, NURSE_PW, Server, fresh_database, psql, server_log, study};

fn setup(site: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&fresh_database(), dir.path());
    server.add_site(site);
    (dir, server)
}

/// The device's next change after its last one, with the same author as `last` unless changed
/// by `edit`, hashed and chained as a store would (what a tampered or buggy app could send).
fn next_change(last: &Change, key: &ecrf_log::AuthorKey, edit: impl FnOnce(&mut Change)) -> Change {
    let mut c = last.clone();
    c.device_seq = last.device_seq + 1;
    c.prev_hash = last.hash.clone();
    c.change_id = uuid_like(last.device_seq + 1);
    c.kind = ChangeKind::ItemSet;
    c.old_value = None;
    c.reason = None;
    c.warning = None;
    c.base = Some("[]".into());
    edit(&mut c);
    c.hash = c.compute_hash();
    key.sign(&mut c);
    c
}

/// The password [`device_as`] gives `user`: long and unguessable enough for the store's rule.
fn password_of(user: &str) -> String {
    format!("{user}-ward-kestrel-1")
}

/// An enrolled laptop of `site` with a user of `role` logged in (added by its administrator
/// before enrolment, so the server registered them when it enrolled).
fn device_as(dir: &std::path::Path, name: &str, server: &Server, user: &str, role: Role) -> Device {
    let d = Device::new(dir, name, "01");
    drop(d.store);
    let pw = password_of(user);
    let mut admin = Store::open(&d.path, study(), "admin", "admin-password").unwrap();
    admin.add_user(user, user, role, &pw).unwrap();
    ecrf_sync::enrol(
        &admin,
        &server.url(),
        &server.enrol_code("01", admin.device_id()),
        None,
    )
    .unwrap();
    drop(admin);
    Device {
        store: Store::open(&d.path, study(), user, &pw).unwrap(),
        path: d.path,
    }
}

fn uuid_like(n: i64) -> String {
    format!("01a2f000-0000-7000-8000-{n:012}")
}

#[test]
fn a_laptop_syncs_over_https_trusting_the_sites_own_ca() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_tls(&fresh_database(), dir.path());
    assert!(server.url().starts_with("https://"));
    server.add_site("01");

    // One laptop through the library, one through the command line with --ca.
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let subject = a.store.new_subject().unwrap();
    a.save(&subject, "DLY#1", &[("HR", "84")]);
    let sent = a.sync();
    assert!(sent.pushed > 0);

    let b = Device::new(dir.path(), "b", "01");
    let b_device = b.store.device_id().to_string();
    drop(b.store);
    let ca_file = server.tls.as_ref().unwrap().0.with_file_name("ca.pem");
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(server::ecrf_bin())
            .args(args)
            .env("ECRF_STORE", &b.path)
            .env("ECRF_USER", "nurse")
            .env("ECRF_PASSWORD", NURSE_PW)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let code = server.enrol_code("01", &b_device);
    let (ok, said) = cli(&[
        "enrol",
        "--server",
        &server.url(),
        "--code",
        &code,
        "--ca",
        ca_file.to_str().unwrap(),
    ]);
    assert!(ok, "{said}");
    let (ok, said) = cli(&["sync"]);
    assert!(ok, "{said}");
    assert!(said.contains("received"), "{said}");
    let b = Store::open(&b.path, study(), "nurse", NURSE_PW).unwrap();
    let key = FormKey::parse(&study(), "DLY#1").unwrap();
    let hr = b
        .form_values(&subject, &key)
        .unwrap()
        .into_iter()
        .find(|i| i.item == "HR")
        .map(|i| i.value.to_string());
    assert_eq!(hr.as_deref(), Some("84"), "the value crossed over HTTPS");
}

#[test]
fn a_client_refuses_a_certificate_it_does_not_trust_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_tls(&fresh_database(), dir.path());
    server.add_site("01");
    // The public roots only: the site's own CA is not among them.
    let d = Device::new(dir.path(), "a", "01");
    let code = server.enrol_code("01", d.store.device_id());
    let err = ecrf_sync::enrol(&d.store, &server.url(), &code, None).unwrap_err();
    assert!(matches!(err, SyncError::Untrusted(_)), "{err:?}");
    let words = err.to_string();
    assert!(words.contains("certificate is not trusted"), "{words}");
    assert!(words.contains("--ca"), "says what to do: {words}");
    assert!(!err.is_retryable(), "trying again will not help");

    // Another CA (a certificate made by someone else for the same name): refused too.
    let other = server::make_certificates(dir.path());
    let pem = std::fs::read(&other.ca).unwrap();
    let err = ecrf_sync::enrol(&d.store, &server.url(), &code, Some(&pem)).unwrap_err();
    assert!(matches!(err, SyncError::Untrusted(_)), "{err:?}");

    // Nothing was kept: the code is still unused and enrols with the right CA.
    assert_eq!(d.store.sync_setting("token").unwrap(), None);
    ecrf_sync::enrol(&d.store, &server.url(), &code, server.ca.as_deref()).unwrap();
}

#[test]
fn the_server_refuses_a_change_the_authors_role_may_not_make_and_stores_nothing_of_that_push() {
    let (dir, server) = setup("01");
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let subject = a.store.new_subject().unwrap();
    a.save(&subject, "DLY#1", &[("HR", "80")]);
    a.sync();

    // A monitor's session on another laptop raises a query: allowed, and it travels.
    let mut m = device_as(dir.path(), "m", &server, "mon", Role::Monitor);
    m.sync();
    let key = FormKey::parse(&study(), "DLY#1").unwrap();
    m.store
        .raise_query(&subject, &key, "HR", "Please check against the chart")
        .unwrap();
    let r = m.sync();
    assert_eq!(r.pushed, 1, "the query reached the server");
    a.sync();
    assert_eq!(a.store.queries(Some(&subject)).unwrap().len(), 1);

    // The monitor's laptop sends a data change (a tampered app): a legitimate change first in
    // the same page, then the monitor editing HR.
    let last = m.last_own();
    let before = psql(&server.database_url, "SELECT count(*) FROM changes");
    let query = last.clone();
    let client = m.client();
    // Page = [the query again (already held), a new legitimate change, the forbidden edit].
    let mon_key = m.author_key("mon", &password_of("mon"));
    let fine = next_change(&last, &mon_key, |c| {
        c.kind = ChangeKind::SdvMarked;
        c.subject = Some(subject.clone());
        c.form = Some("DLY#1".into());
        c.item = Some("MAP".into());
        c.new_value = None;
        c.base = None;
    });
    let edit = next_change(&fine, &mon_key, |c| {
        c.subject = Some(subject.clone());
        c.form = Some("DLY#1".into());
        c.item = Some("HR".into());
        c.old_value = Some("{\"int\":80}".into());
        c.new_value = Some("{\"int\":120}".into());
        c.reason = Some("monitor thinks so".into());
    });
    assert_eq!((edit.user.as_str(), edit.role.as_str()), ("mon", "monitor"));
    match client.push("01", vec![query, fine, edit.clone()]) {
        Err(SyncError::Refused {
            status: 403,
            reason,
        }) => {
            assert!(reason.contains("changes[2]"), "{reason}");
            assert!(
                reason.contains(&edit.change_id),
                "names the change: {reason}"
            );
            assert!(
                reason.contains("the role monitor may not change saved data"),
                "names the rule: {reason}"
            );
            assert!(reason.contains("nurse, investigator"), "{reason}");
            assert!(
                reason.contains("nothing of this push was stored"),
                "{reason}"
            );
        }
        other => panic!("a monitor's data change: {other:?}"),
    }
    assert_eq!(
        psql(&server.database_url, "SELECT count(*) FROM changes"),
        before,
        "not even the allowed change of that page was stored"
    );
    // An unknown role is refused the same way.
    let nobody = next_change(&last, &mon_key, |c| {
        c.role = "superuser".into();
        c.subject = Some(subject.clone());
        c.form = Some("DLY#1".into());
        c.item = Some("HR".into());
        c.new_value = Some("{\"int\":99}".into());
    });
    match client.push("01", vec![nobody]) {
        Err(SyncError::Refused {
            status: 403,
            reason,
        }) => assert!(reason.contains("unknown role superuser"), "{reason}"),
        other => panic!("an unknown role: {other:?}"),
    }
    // And the nurse's value stands everywhere.
    a.sync();
    assert_eq!(a.value(&subject, "DLY#1", "HR").as_deref(), Some("80"));
    assert_eq!(
        psql(
            &server.database_url,
            "SELECT count(*) FROM changes WHERE body LIKE '%monitor thinks so%'"
        ),
        "0"
    );
}

#[test]
fn the_server_records_receipt_time_and_flags_a_clock_that_is_off() {
    let (dir, server) = setup("01");
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let subject = a.store.new_subject().unwrap();
    let t0 = chrono::Utc::now() - chrono::Duration::seconds(1);
    let r = a.sync();
    let t1 = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert!(
        r.flags.is_empty(),
        "a right clock is not flagged: {:?}",
        r.flags
    );

    // Receipt time of every change, by the server's clock.
    let times = psql(
        &server.database_url,
        "SELECT to_char(received AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') \
         FROM changes",
    );
    let n = a.store.own_changes_after(0, 1000).unwrap().len();
    assert_eq!(times.lines().count(), n);
    for t in times.lines() {
        let t = chrono::DateTime::parse_from_rfc3339(t).unwrap();
        assert!(t >= t0 && t <= t1, "received {t}, between {t0} and {t1}");
    }

    // Ten minutes ahead: flagged in the reply and recorded; two minutes: not.
    let client = a.client();
    let now = chrono::Utc::now();
    let ahead = client
        .device_at(now + chrono::Duration::minutes(10))
        .unwrap();
    let offset = ahead.clock_offset_seconds.unwrap();
    assert!((595..=605).contains(&offset), "{offset}");
    let flag = ahead.clock_flag.expect("flagged");
    assert!(flag.contains("ahead of the server's"), "{flag}");
    assert!(flag.contains("10 min"), "{flag}");
    let behind = client.device_at(now - chrono::Duration::hours(3)).unwrap();
    assert!(behind.clock_flag.unwrap().contains("3 h 0 min behind"));
    let close = client
        .device_at(now + chrono::Duration::minutes(2))
        .unwrap();
    assert_eq!(close.clock_flag, None);
    let device = a.store.device_id().to_string();
    assert_eq!(
        psql(
            &server.database_url,
            &format!("SELECT count(*) FROM flags WHERE flag = 'clock' AND device = '{device}'")
        ),
        "2"
    );
    // A time the server cannot read is refused, naming the header.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let bad = agent
        .get(format!("{}/api/v1/device", server.url()))
        .header("x-ecrf-device-time", "yesterday")
        .header(
            "Authorization",
            format!("Bearer {}", a.store.sync_setting("token").unwrap().unwrap()),
        )
        .call()
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let _ = subject;
}

#[test]
fn an_event_dated_before_the_change_it_modifies_is_flagged() {
    let (dir, server) = setup("01");
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let mut b = Device::enrolled(dir.path(), "b", "01", &server);
    let subject = a.store.new_subject().unwrap();
    a.save(&subject, "DLY#1", &[("HR", "80")]);
    a.sync();
    b.sync();

    // B changes HR, having seen A's value, but B's clock says an hour before A's change.
    let seen = a.last_own_item_set();
    let seen_at = chrono::DateTime::parse_from_rfc3339(&seen.utc).unwrap();
    let last = b.last_own();
    let early = next_change(&last, &b.author_key("nurse", NURSE_PW), |c| {
        c.user = "nurse".into();
        c.role = "nurse".into();
        c.subject = Some(subject.clone());
        c.form = Some("DLY#1".into());
        c.item = Some("HR".into());
        c.old_value = Some("{\"int\":80}".into());
        c.new_value = Some("{\"int\":82}".into());
        c.reason = Some("re-measured".into());
        c.base = Some(format!("[\"{}\"]", seen.change_id));
        c.utc = (seen_at - chrono::Duration::hours(1))
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    });
    let reply = b.client().push("01", vec![early.clone()]).unwrap();
    assert_eq!(reply.stored, 1, "flagged, not refused: nothing is lost");
    assert_eq!(reply.flags.len(), 1, "{:?}", reply.flags);
    assert!(
        reply.flags[0].contains(&early.change_id),
        "{}",
        reply.flags[0]
    );
    assert!(
        reply.flags[0].contains(&seen.change_id),
        "{}",
        reply.flags[0]
    );
    assert!(reply.flags[0].contains("is dated"), "{}", reply.flags[0]);
    assert_eq!(
        psql(
            &server.database_url,
            &format!(
                "SELECT count(*) FROM flags WHERE flag = 'dated_before_base' AND change_id = '{}'",
                early.change_id
            )
        ),
        "1"
    );
    // A change dated after what it modifies is not flagged.
    a.sync();
    assert_eq!(a.value(&subject, "DLY#1", "HR").as_deref(), Some("82"));
    a.save(&subject, "DLY#1", &[("HR", "83")]);
    let r = a.sync();
    assert!(r.flags.is_empty(), "{:?}", r.flags);
}

#[test]
fn an_edit_made_offline_under_a_lock_taken_meanwhile_is_held_for_the_data_manager() {
    let (dir, server) = setup("01");
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let mut dm = device_as(dir.path(), "dm", &server, "zhou", Role::DataManager);
    let subject = a.store.new_subject().unwrap();
    a.save(&subject, "DLY#1", &[("HR", "80"), ("MAP", "65")]);
    a.sync();
    dm.sync();

    // The laptop is offline and corrects HR; meanwhile the data manager locks the form.
    a.save(&subject, "DLY#1", &[("HR", "95")]);
    assert_eq!(a.value(&subject, "DLY#1", "HR").as_deref(), Some("95"));
    let scope = LockScope::Form {
        subject: subject.clone(),
        form: "DLY#1".into(),
    };
    dm.store
        .lock(scope, "cleaned for the interim analysis")
        .unwrap();
    dm.sync();
    // Back online: the edit reaches the server, which holds it back.
    let r = a.sync();
    assert_eq!(r.held, 1, "{r:?}");
    assert!(
        r.flags
            .iter()
            .any(|f| f.contains("held for the data manager")),
        "{:?}",
        r.flags
    );
    dm.sync();
    let edit = a.last_own_item_set();
    for d in [&mut a, &mut dm] {
        assert_eq!(
            d.value(&subject, "DLY#1", "HR").as_deref(),
            Some("80"),
            "the locked value stands"
        );
        assert_eq!(d.value(&subject, "DLY#1", "MAP").as_deref(), Some("65"));
        let held = d.store.held_changes().unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].change_id, edit.change_id);
        assert_eq!(held[0].value.as_deref(), Some("{\"int\":95}"));
        assert_eq!(held[0].user, "nurse");
        assert_eq!(held[0].lock, format!("DLY#1 of {subject}"));
        assert!(d.store.conflicts().unwrap().is_empty());
        let report = d.store.verify().unwrap();
        assert!(report.ok(), "{:?}", report.problems);
        // A rebuild from the log gives the same: the hold is part of the log.
        d.store.rebuild_projections().unwrap();
        assert_eq!(d.value(&subject, "DLY#1", "HR").as_deref(), Some("80"));
        assert_eq!(d.store.held_changes().unwrap().len(), 1);
    }
    // Nothing lost: every replica and the server hold the same log, the edit included.
    assert_eq!(a.log(), dm.log());
    assert_eq!(server_log(&server.database_url, "01"), a.log());
    assert!(a.log().iter().any(|l| l.starts_with(&edit.change_id)));
    assert_eq!(
        psql(
            &server.database_url,
            &format!(
                "SELECT count(*) FROM flags WHERE flag = 'held_under_lock' AND change_id = '{}'",
                edit.change_id
            )
        ),
        "1"
    );
    // Now that the laptop has the lock, it refuses the edit itself.
    let key = FormKey::parse(&study(), "DLY#1").unwrap();
    let refused = a
        .store
        .save(
            &subject,
            &key,
            &[("HR", "96")],
            &ecrf_store::SaveOptions {
                reason: Some("again".into()),
                confirm_warnings: true,
            },
        )
        .unwrap_err();
    assert!(refused.to_string().contains("locked"), "{refused}");
    // A device cannot write a hold itself.
    let last = a.last_own();
    let forged = next_change(&last, &a.author_key("nurse", NURSE_PW), |c| {
        c.kind = ChangeKind::LockHeld;
        c.base = None;
    });
    match a.client().push("01", vec![forged]) {
        Err(SyncError::Refused {
            status: 403,
            reason,
        }) => {
            assert!(reason.contains("only the server"), "{reason}")
        }
        other => panic!("a device writing lock.held: {other:?}"),
    }
}
