//! Sync acceptance tests against the real `ecrf server`, a real PostgreSQL and real stores,
//! over real HTTP: merging, conflicts, site scoping, revoked tokens, hostile bodies.

mod server;

use std::time::Duration;

use ecrf_log::ChangeKind;
use ecrf_sync::SyncError;
use server::{Device, Server, fresh_database, psql, server_log};

fn setup(site: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&fresh_database(), dir.path());
    server.add_site(site);
    (dir, server)
}

#[test]
fn two_devices_merge_items_and_resolve_a_conflict_once_everywhere() {
    let (dir, server) = setup("01");
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let mut b = Device::enrolled(dir.path(), "b", "01", &server);
    let subject = a.store.new_subject().unwrap();
    assert_eq!(
        subject, "01-D1-0001",
        "subject numbers carry the device's prefix"
    );
    a.sync();
    b.sync();
    assert_eq!(b.store.subjects().unwrap(), vec![subject.clone()]);

    // Offline, different items of one form.
    a.save(&subject, "DLY#1", &[("HR", "80")]);
    b.save(&subject, "DLY#1", &[("MAP", "65")]);
    a.sync();
    b.sync();
    a.sync();
    for d in [&a, &b] {
        assert_eq!(d.value(&subject, "DLY#1", "HR").as_deref(), Some("80"));
        assert_eq!(d.value(&subject, "DLY#1", "MAP").as_deref(), Some("65"));
        assert!(d.store.conflicts().unwrap().is_empty());
    }

    // Offline, the same item: a conflict with both values on every replica.
    a.save(&subject, "DLY#1", &[("HR", "90")]);
    b.save(&subject, "DLY#1", &[("HR", "100")]);
    let ra = a.sync();
    let rb = b.sync();
    a.sync();
    assert_eq!((ra.conflicts, rb.conflicts), (0, 1));
    let ca = a.store.conflicts().unwrap();
    assert_eq!(ca, b.store.conflicts().unwrap());
    assert_eq!(ca.len(), 1);
    let mut values: Vec<String> = ca[0]
        .values
        .iter()
        .filter_map(|v| v.value.clone())
        .collect();
    values.sort();
    assert_eq!(values, vec!["{\"int\":100}", "{\"int\":90}"]);
    assert_eq!(
        a.value(&subject, "DLY#1", "HR"),
        b.value(&subject, "DLY#1", "HR"),
        "every replica shows the same value while in conflict"
    );

    // Listed on either laptop by `ecrf conflict list`, each value with who wrote it.
    let listed = a.ecrf(&["conflict", "list"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{listed:?}");
    assert!(text.contains(&format!("{subject} DLY#1 HR:")), "{text}");
    assert!(text.contains("  90  by nurse on "), "{text}");
    assert!(text.contains("  100  by nurse on "), "{text}");

    // Resolved once on B (`ecrf conflict resolve`); the resolution reaches A and the server.
    let unreasoned = b.ecrf(&[
        "conflict", "resolve", &subject, "DLY#1", "HR", "95", "--reason", " ",
    ]);
    assert_eq!(
        unreasoned.status.code(),
        Some(1),
        "a resolution needs a reason"
    );
    let resolved = b.ecrf(&[
        "conflict",
        "resolve",
        &subject,
        "DLY#1",
        "HR",
        "95",
        "--reason",
        "checked the bedside chart",
    ]);
    assert!(resolved.status.success(), "{resolved:?}");
    let listed = b.ecrf(&["conflict", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("No conflicts."));
    b.sync();
    a.sync();
    for d in [&a, &b] {
        assert!(d.store.conflicts().unwrap().is_empty());
        assert_eq!(d.value(&subject, "DLY#1", "HR").as_deref(), Some("95"));
        let report = d.store.verify().unwrap();
        assert!(report.ok(), "{:?}", report.problems);
    }
    // A third laptop enrolled later receives exactly the same log; so does the server.
    let mut c = Device::enrolled(dir.path(), "c", "01", &server);
    c.sync();
    let own_c: usize = c.store.own_changes_after(0, 1000).unwrap().len();
    assert_eq!(a.log(), b.log());
    assert_eq!(c.log().len(), a.log().len() + own_c);
    assert!(a.log().iter().all(|l| c.log().contains(l)));
    c.sync();
    let mut server_has = server_log(&server.database_url, "01");
    server_has.sort();
    let mut all = c.log();
    all.sort();
    assert_eq!(server_has, all, "the server holds each change exactly once");
    assert_eq!(c.value(&subject, "DLY#1", "HR").as_deref(), Some("95"));
}

#[test]
fn a_pull_cursor_moves_past_the_devices_own_changes() {
    let (dir, server) = setup("01");
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let mut b = Device::enrolled(dir.path(), "b", "01", &server);
    let from_b = b.store.new_subject().unwrap();
    b.save(&from_b, "DLY#1", &[("HR", "70")]);
    b.sync();
    // A's own changes come after B's on the server.
    let from_a = a.store.new_subject().unwrap();
    a.save(&from_a, "DLY#1", &[("HR", "80"), ("MAP", "65")]);
    a.sync();
    let head: i64 = psql(
        &server.database_url,
        "SELECT max(seq) FROM changes WHERE site = '01'",
    )
    .parse()
    .unwrap();
    let page = a.client().pull("01", 0, 100).unwrap();
    let subjects: Vec<_> = page
        .changes
        .iter()
        .filter_map(|c| c.subject.clone())
        .collect();
    assert!(subjects.iter().all(|s| *s == from_b), "{subjects:?}");
    assert!(!page.more);
    assert_eq!(
        page.cursor, head,
        "the last page's cursor is the site's head, past A's own changes"
    );
    let next = a.client().pull("01", page.cursor, 100).unwrap();
    assert!(next.changes.is_empty() && next.cursor == head);
    // A page that is not the last stops at its last change.
    let first = a.client().pull("01", 0, 1).unwrap();
    assert!(first.more);
    assert!(first.cursor < head);
}

#[test]
fn a_device_stays_in_its_site_and_a_revoked_token_is_refused() {
    let (dir, server) = setup("01");
    server.add_site("02");
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let mut other = Device::enrolled(dir.path(), "b", "02", &server);
    let s2 = other.store.new_subject().unwrap();
    other.sync();
    a.sync();
    assert!(
        a.store.subjects().unwrap().is_empty(),
        "nothing of site 02 reached site 01"
    );

    let client = a.client();
    match client.pull("02", 0, 100) {
        Err(SyncError::Refused {
            status: 403,
            reason,
        }) => {
            assert!(reason.contains("site 01"), "{reason}")
        }
        other => panic!("pulling site 02: {other:?}"),
    }
    // A change about a subject of site 02, well formed and correctly hashed, pushed to site 01
    // or to site 02: refused either way, and nothing stored.
    let before = psql(&server.database_url, "SELECT count(*) FROM changes");
    let last = a.last_own();
    let mut c = last.clone();
    c.device_seq = last.device_seq + 1;
    c.prev_hash = last.hash.clone();
    c.change_id = "01a2f000-0000-7000-8000-000000000001".into();
    c.kind = ChangeKind::ItemSet;
    // A nurse's change, so only the site rule refuses it (an admin's would break the
    // permission table first).
    c.user = "nurse".into();
    c.role = "nurse".into();
    c.subject = Some(s2.clone());
    c.form = Some("DLY#1".into());
    c.item = Some("HR".into());
    c.new_value = Some("{\"int\":70}".into());
    c.base = Some("[]".into());
    c.hash = c.compute_hash();
    for site in ["01", "02"] {
        match client.push(site, vec![c.clone()]) {
            Err(SyncError::Refused {
                status: 403,
                reason,
            }) => {
                assert!(
                    reason.contains("not of site 01") || reason.contains("belongs to site 01"),
                    "{reason}"
                )
            }
            other => panic!("pushing a site-02 subject to {site}: {other:?}"),
        }
    }
    assert_eq!(
        psql(&server.database_url, "SELECT count(*) FROM changes"),
        before
    );

    // Revoked: every request refused with the reason.
    let device = a.store.device_id().to_string();
    server.admin(&["device", "revoke", &device]);
    match ecrf_sync::sync(&mut a.store, &client, &mut |_| {}) {
        Err(SyncError::Refused {
            status: 401,
            reason,
        }) => {
            assert!(reason.contains("revoked"), "{reason}")
        }
        other => panic!("revoked device: {other:?}"),
    }
    // A wrong token too.
    let forged = ecrf_sync::Client::new(&server.url(), None)
        .unwrap()
        .with_token("NOT-A-TOKEN");
    assert!(matches!(
        forged.device(),
        Err(SyncError::Refused { status: 401, .. })
    ));
    // An enrolment code works once.
    let d = Device::new(dir.path(), "d", "01");
    let code = server.enrol_code("01", d.store.device_id());
    ecrf_sync::enrol(&d.store, &server.url(), &code, None).unwrap();
    let e = Device::new(dir.path(), "e", "01");
    let again = ecrf_sync::enrol(&e.store, &server.url(), &code, None).unwrap_err();
    assert!(again.to_string().contains("used already"), "{again}");
    // A code of site 02 does not enrol a site-01 laptop.
    let wrong = ecrf_sync::enrol(
        &e.store,
        &server.url(),
        &server.enrol_code("02", e.store.device_id()),
        None,
    )
    .unwrap_err();
    assert!(wrong.to_string().contains("site 02"), "{wrong}");
}

/// A hostile request: name, URL, content type, body, the status expected.
type Case<'a> = (&'a str, &'a str, Option<&'a str>, Vec<u8>, u16);

/// Sends raw bytes over HTTP; returns (status, body).
fn raw(
    url: &str,
    method: &str,
    token: Option<&str>,
    ct: Option<&str>,
    body: Vec<u8>,
) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let resp = if method == "GET" {
        let mut r = agent.get(url);
        if let Some(t) = token {
            r = r.header("Authorization", &format!("Bearer {t}"));
        }
        r.call()
    } else {
        let mut r = agent.post(url);
        if let Some(t) = token {
            r = r.header("Authorization", &format!("Bearer {t}"));
        }
        if let Some(ct) = ct {
            r = r.header("Content-Type", ct);
        }
        r.send(&body[..])
    };
    match resp {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let text = r.body_mut().read_to_string().unwrap_or_default();
            (status, text)
        }
        // The server may close the connection on an oversized body before reading it all.
        Err(e) => (413, format!("connection closed: {e}")),
    }
}

#[test]
fn hostile_bodies_get_a_4xx_with_a_reason_and_change_nothing() {
    let (dir, mut server) = setup("01");
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    a.store.new_subject().unwrap();
    a.sync();
    let token = a.store.sync_setting("token").unwrap().unwrap();
    let snapshot = |s: &Server| {
        psql(
            &s.database_url,
            "SELECT (SELECT count(*) FROM changes) || '/' || (SELECT string_agg(device || acked || last_hash, ',') FROM devices) || '/' || (SELECT count(*) FROM enrol_codes WHERE used_by IS NULL)",
        )
    };
    let before = snapshot(&server);
    let good = {
        let page = a.store.own_changes_after(0, 3).unwrap();
        serde_json::json!({ "changes": page }).to_string()
    };
    let mut deep = "[".repeat(100_000);
    deep.push_str(&"]".repeat(100_000));
    let deep_field = format!("{{\"changes\":[{{\"change_id\":{}}}]}}", "[".repeat(50_000));
    let altered = good.replacen("\"admin\"", "\"root\"", 1);
    let many = serde_json::json!({ "changes": vec![serde_json::from_str::<serde_json::Value>(&good).unwrap()["changes"][0].clone(); 1001] }).to_string();
    let huge = vec![b'{'; 9 * 1024 * 1024];
    let long_value = good.replacen("\"store.create\"", &format!("\"{}\"", "x".repeat(100)), 1);
    let json = Some("application/json");
    let push = format!("{}/api/v1/sites/01/changes", server.url());
    let enrol = format!("{}/api/v1/enrol", server.url());
    let cases: Vec<Case> = vec![
        (
            "malformed",
            push.as_str(),
            json,
            b"{\"changes\": [".to_vec(),
            400,
        ),
        (
            "truncated",
            push.as_str(),
            json,
            good.as_bytes()[..good.len() / 2].to_vec(),
            400,
        ),
        (
            "not json",
            push.as_str(),
            json,
            b"<html>hello</html>".to_vec(),
            400,
        ),
        (
            "not utf-8",
            push.as_str(),
            json,
            vec![0xff, 0xfe, 0x00, 0x7b],
            400,
        ),
        ("empty", push.as_str(), json, vec![], 400),
        ("deeply nested", push.as_str(), json, deep.into_bytes(), 400),
        (
            "deeply nested field",
            push.as_str(),
            json,
            deep_field.into_bytes(),
            400,
        ),
        (
            "unknown field",
            push.as_str(),
            json,
            b"{\"changes\":[],\"drop\":1}".to_vec(),
            400,
        ),
        (
            "wrong type",
            push.as_str(),
            json,
            b"{\"changes\":\"all\"}".to_vec(),
            400,
        ),
        (
            "altered change",
            push.as_str(),
            json,
            altered.into_bytes(),
            400,
        ),
        (
            "bad kind",
            push.as_str(),
            json,
            long_value.into_bytes(),
            400,
        ),
        (
            "too many changes",
            push.as_str(),
            json,
            many.into_bytes(),
            400,
        ),
        ("oversized", push.as_str(), json, huge, 413),
        (
            "wrong content type",
            push.as_str(),
            Some("text/plain"),
            good.clone().into_bytes(),
            415,
        ),
        (
            "form content type",
            push.as_str(),
            Some("application/x-www-form-urlencoded"),
            b"a=1".to_vec(),
            415,
        ),
        (
            "no content type",
            push.as_str(),
            None,
            good.clone().into_bytes(),
            415,
        ),
        (
            "enrol malformed",
            enrol.as_str(),
            json,
            b"{\"code\":".to_vec(),
            400,
        ),
        (
            "enrol bad code",
            enrol.as_str(),
            json,
            br#"{"code":"NOPE","device":"x","site":"01"}"#.to_vec(),
            401,
        ),
        (
            "enrol long field",
            enrol.as_str(),
            json,
            format!(
                r#"{{"code":"{}","device":"x","site":"01"}}"#,
                "A".repeat(10_000)
            )
            .into_bytes(),
            400,
        ),
        (
            "enrol SQL",
            enrol.as_str(),
            json,
            br#"{"code":"'); DROP TABLE devices; --","device":"x","site":"01"}"#.to_vec(),
            401,
        ),
    ];
    for (name, url, ct, body, want) in cases {
        let (status, text) = raw(url, "POST", Some(&token), ct, body);
        assert_eq!(status, want, "{name}: {text}");
        if status != 413 || text.starts_with('{') {
            let reason: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{name}: reply is not JSON: {text}"));
            assert!(
                reason["error"].as_str().is_some_and(|r| r.len() > 5),
                "{name}: no reason: {text}"
            );
        }
        assert!(server.alive(), "{name}: the server died");
    }
    // Bad query strings and tokens on pull.
    for (q, want) in [
        ("after=-1", 400),
        ("after=abc", 400),
        ("limit=100000", 400),
        ("drop=1", 400),
        ("after=99999999999999999999", 400),
    ] {
        let (status, text) = raw(&format!("{push}?{q}"), "GET", Some(&token), None, vec![]);
        assert_eq!(status, want, "{q}: {text}");
        assert!(text.contains("error"), "{q}: {text}");
    }
    let (status, _) = raw(push.as_str(), "GET", None, None, vec![]);
    assert_eq!(status, 401);
    let (status, _) = raw(push.as_str(), "GET", Some("' OR 1=1 --"), None, vec![]);
    assert_eq!(status, 401);
    let (status, _) = raw(
        &format!("{}/api/v1/nothing", server.url()),
        "GET",
        None,
        None,
        vec![],
    );
    assert_eq!(status, 404);
    assert_eq!(snapshot(&server), before, "the database is unchanged");
    assert!(server.alive());
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
    // Still serving: a real sync works.
    a.store.new_subject().unwrap();
    let r = a.sync();
    assert_eq!(r.pushed, 1);
    server.kill();
}

/// `POST …/sync`: a device in step asks where it stands, pushes its page and pulls the first
/// page in one request; a page that does not follow what the server holds is not pushed, and
/// the reply's `acked` says where to go on from (what `ecrf_sync::sync` does next).
#[test]
fn a_device_in_step_syncs_in_one_request_and_a_page_that_does_not_follow_is_not_pushed() {
    let (dir, server) = setup("01");
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let mut b = Device::enrolled(dir.path(), "b", "01", &server);
    b.store.new_subject().unwrap();
    b.sync();
    a.store.new_subject().unwrap();
    let (a_client, site) = (a.client(), a.store.site().to_string());
    let own = a.store.own_changes_after(0, 100).unwrap();
    let last = own.last().unwrap().device_seq;

    // Not following: the page starts after a change the server never got.
    let (standing, push, pulled) = a_client
        .sync_step(&site, chrono::Utc::now(), None, &own[1..], 0, 1000)
        .unwrap();
    assert_eq!(standing.acked, 0);
    assert!(push.is_none(), "a page that does not follow is not pushed");
    assert_eq!(
        psql(
            &server.database_url,
            &format!(
                "SELECT count(*) FROM changes WHERE device = '{}'",
                a.store.device_id()
            )
        ),
        "0"
    );
    let from_b = b.store.own_changes_after(0, 100).unwrap();
    let ids = |cs: &[ecrf_log::Change]| cs.iter().map(|c| c.change_id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&pulled.changes),
        ids(&from_b),
        "the pull is answered all the same"
    );

    // In step: all in one request, the receipt for the last change pushed.
    let (standing, push, pulled) = a_client
        .sync_step(&site, chrono::Utc::now(), None, &own, pulled.cursor, 1000)
        .unwrap();
    assert_eq!(standing.acked, 0, "where it stood before the push");
    let push = push.expect("pushed");
    assert_eq!((push.acked, push.stored), (last, own.len()));
    assert_eq!(push.receipt.unwrap().device_seq, last);
    assert!(pulled.changes.is_empty() && !pulled.more);

    // The laptop did not record that push: its next sync sends the page again (replays), the
    // server stores nothing twice, and b receives every change once.
    assert_eq!(a.store.sync_state().unwrap().pushed, 0);
    let report = a.sync();
    assert_eq!(report.pushed, 0, "replays are not stored again");
    assert_eq!(a.store.sync_state().unwrap().pushed, last);
    let report = b.sync();
    assert_eq!(report.pulled, own.len());
}
