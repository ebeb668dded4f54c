//! The server vouches for history (issue 19, point 4), against the real `ecrf server`, a real
//! PostgreSQL and a real store: each accepted push returns a receipt signed with the server's
//! key (pinned at enrolment) over the laptop's chain head; the laptop keeps it. Someone holding
//! the store key and a user's password then rewrites history the way a careful forger would
//! (triggers dropped, a value changed, every later hash recomputed and re-signed, the recorded
//! head moved): the chain and every signature hold, yet `ecrf audit verify` reports the change
//! the server vouched for, and the next sync is refused and flagged on the server.

mod server;

use ecrf_log::Change;
use ecrf_sync::SyncError;
use ecrf_testkit::NURSE;
use server::{Device, NURSE_PW, Server, fresh_database, psql};

/// Rewrites HR of this device's first `item.set` to `forged` and re-chains, re-hashes and
/// re-signs every later change of the device; moves the recorded head. What the app's own
/// checks alone cannot tell from an honest log.
fn rewrite_history(d: &Device, forged: &str) {
    let key = d.author_key("nurse", NURSE_PW);
    let device = d.store.device_id().to_string();
    let conn = rusqlite::Connection::open(&d.path).unwrap();
    conn.execute_batch(&d.store.key_pragmas()).unwrap();
    conn.execute_batch("DROP TRIGGER change_log_no_update; DROP TRIGGER change_log_no_delete;")
        .unwrap();
    let mut own: Vec<Change> = d.store.own_changes_after(0, 100_000).unwrap();
    let first = own
        .iter()
        .position(|c| c.item.as_deref() == Some("HR"))
        .expect("an HR change");
    own[first].new_value = Some(forged.to_string());
    let mut prev = own[first].prev_hash.clone();
    for c in own.iter_mut().skip(first) {
        c.prev_hash = prev.clone();
        c.hash = c.compute_hash();
        key.sign(c);
        prev = c.hash.clone();
    }
    for c in &own[first..] {
        conn.execute(
            "UPDATE change_log SET new_value = ?1, prev_hash = ?2, hash = ?3, signature = ?4 \
             WHERE device = ?5 AND device_seq = ?6",
            rusqlite::params![
                c.new_value,
                c.prev_hash,
                c.hash,
                c.signature,
                device,
                c.device_seq
            ],
        )
        .unwrap();
    }
    let head: String = conn
        .query_row(
            "SELECT hash FROM change_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute("UPDATE meta SET value = ?1 WHERE key = 'head_hash'", [head])
        .unwrap();
}

#[test]
fn history_rewritten_with_the_store_key_is_caught_by_the_last_receipt_and_the_next_sync() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&fresh_database(), dir.path());
    server.add_site("01");
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let subject = a.store.new_subject().unwrap();
    a.save(&subject, "DLY#1", &[("HR", "84"), ("MAP", "70")]);
    a.sync();
    a.save(&subject, "DLY#2", &[("HR", "90")]);
    a.sync();
    let (receipts, last): (i64, i64) = {
        let conn = rusqlite::Connection::open(&a.path).unwrap();
        conn.execute_batch(&a.store.key_pragmas()).unwrap();
        conn.query_row("SELECT count(*), max(device_seq) FROM receipts", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    };
    assert!(receipts >= 2, "a receipt per accepted push: {receipts}");
    assert_eq!(
        last,
        a.last_own().device_seq,
        "the last receipt covers the head"
    );
    let verified = a.ecrf(&["audit", "verify"]);
    assert!(
        verified.status.success(),
        "an honest history verifies: {}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // The forger rewrites HR 84 → 48 and everything after it, signatures included.
    let path = a.path.clone();
    rewrite_history(&a, "{\"int\":48}");
    drop(a);
    let mut a = Device {
        store: ecrf_testkit::open_as(&path, &NURSE),
        path,
    };
    let report = a.store.verify().unwrap();
    let rewritten: Vec<&String> = report
        .problems
        .iter()
        .filter(|p| p.contains("history was rewritten after it was synced"))
        .collect();
    assert_eq!(
        rewritten.len(),
        1,
        "only the receipt gives it away: {:?}",
        report.problems
    );
    assert!(
        !report
            .problems
            .iter()
            .any(|p| p.contains("signature") || p.contains("chain")),
        "the forgery is otherwise perfect: {:?}",
        report.problems
    );
    let out = a.ecrf(&["audit", "verify"]);
    assert!(!out.status.success());
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("history was rewritten"), "{said}");

    // The next sync is refused, nothing of it taken, and the coordinating centre is told.
    let before = psql(&server.database_url, "SELECT count(*) FROM changes");
    a.save(&subject, "DLY#3", &[("HR", "77")]);
    let client = a.client();
    match ecrf_sync::sync(&mut a.store, &client, &mut |_| {}) {
        Err(SyncError::Refused {
            status: 409,
            reason,
        }) => assert!(reason.contains("history was rewritten"), "{reason}"),
        other => panic!("a rewritten history synced: {other:?}"),
    }
    assert_eq!(
        psql(&server.database_url, "SELECT count(*) FROM changes"),
        before
    );
    let flags = psql(
        &server.database_url,
        "SELECT count(*) FROM flags WHERE flag = 'history_rewritten'",
    );
    assert_eq!(flags.trim(), "1", "flagged once on the server");
}
