//! Randomization through the server, against the real `ecrf server`, a real PostgreSQL and real
//! stores over HTTP: online slots taken from the site's list in one server transaction, whole
//! blocks leased as sealed envelopes for offline use, envelopes taken back when a device is
//! revoked; devices randomizing at once never share a slot, and every replica agrees after sync.

mod server;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use ecrf_randomize::{ListSpec, Stratum, generate, to_csv};
use ecrf_store::{Randomization, Store};
use ecrf_sync::{Client, SyncError};
use server::{Device, NURSE_PW, Server, fresh_database, psql, server_log, study};

/// A new subject, screened eligible and consented.
fn eligible_subject(d: &mut Device) -> String {
    let id = ecrf_testkit::eligible_subject(&mut d.store, "01-001");
    // Randomized now: within the 6-hour window after ECMO start.
    ecrf_testkit::ecmo_started_ago(&mut d.store, &id, 60);
    id
}

fn count(db: &str, sql: &str) -> usize {
    psql(db, sql).parse().unwrap()
}

/// Randomizes `subjects` after the barrier; returns each randomization and whether it was
/// online.
fn randomize_all(
    mut d: Device,
    client: Client,
    subjects: Vec<String>,
    start: Arc<Barrier>,
) -> std::thread::JoinHandle<(Device, Vec<(Randomization, bool)>)> {
    std::thread::spawn(move || {
        start.wait();
        let done = subjects
            .iter()
            .map(|s| ecrf_app::sync::randomize(&mut d.store, Some(&client), s).unwrap())
            .collect();
        (d, done)
    })
}

#[test]
fn online_and_offline_randomizations_at_once_never_share_a_slot_and_every_replica_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&fresh_database(), dir.path());
    server.add_site("01");
    let db = server.database_url.clone();

    // The site's list on the server: 6 blocks of 4.
    let list = generate(
        &ListSpec {
            stratum: Stratum::site("01").unwrap(),
            count: 24,
            block_sizes: vec![4],
        },
        &[7; 32],
    )
    .unwrap();
    let file = dir.path().join("list.csv");
    std::fs::write(&file, to_csv(&list)).unwrap();
    let said = server.admin(&["randomization", "upload", "--list", file.to_str().unwrap()]);
    assert!(said.contains("24 slots"), "{said}");
    // Loading it twice is refused whole.
    let again = std::process::Command::new(server::ecrf_bin())
        .args(["randomization", "upload", "--list", file.to_str().unwrap()])
        .args(["--database-url", &db])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("loaded already"));
    assert_eq!(count(&db, "SELECT count(*) FROM allocation"), 24);

    // Two laptops online, one that leases a block and then randomizes offline.
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let mut c = Device::enrolled(dir.path(), "c", "01", &server);
    let b0 = Device::enrolled(dir.path(), "b", "01", &server);
    drop(b0.store);
    let mut admin = Store::open(&b0.path, study(), "admin", "admin-password").unwrap();
    let admin_client = ecrf_sync::client::client_of(&admin).unwrap();
    assert_eq!(
        ecrf_app::sync::fetch_lease(&mut admin, &admin_client, 1).unwrap(),
        4
    );
    drop(admin);
    let mut b = Device {
        store: Store::open(&b0.path, study(), "nurse", NURSE_PW).unwrap(),
        path: b0.path,
    };
    let b_device = b.store.device_id().to_string();
    // A nurse does not load leases.
    let b_client = b.client();
    assert!(matches!(
        ecrf_app::sync::fetch_lease(&mut b.store, &b_client, 1),
        Err(SyncError::Store(_))
    ));
    let leased: BTreeSet<String> = psql(
        &db,
        &format!(
            "SELECT envelope FROM allocation WHERE state = 'leased' AND device = '{b_device}'"
        ),
    )
    .lines()
    .map(str::to_string)
    .collect();
    assert_eq!(leased.len(), 4);

    let sa: Vec<String> = (0..3).map(|_| eligible_subject(&mut a)).collect();
    let sb: Vec<String> = (0..3).map(|_| eligible_subject(&mut b)).collect();
    let sc: Vec<String> = (0..3).map(|_| eligible_subject(&mut c)).collect();
    // A refusal is decided before the server is asked: it uses no slot.
    let not_screened = a.store.new_subject().unwrap();
    let a_client = a.client();
    let refused = ecrf_app::sync::randomize(&mut a.store, Some(&a_client), &not_screened);
    assert!(matches!(refused, Err(SyncError::Store(_))), "{refused:?}");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM allocation WHERE state = 'opened'"
        ),
        0
    );

    // At once: A and C online, B with its network down (a server that does not answer).
    let start = Arc::new(Barrier::new(3));
    let (ca, cc) = (a.client(), c.client());
    let dead = Client::new(&format!("http://127.0.0.1:{}", server::free_port()), None)
        .unwrap()
        .with_token("no-network");
    let ta = randomize_all(a, ca, sa.clone(), Arc::clone(&start));
    let tb = randomize_all(b, dead, sb.clone(), Arc::clone(&start));
    let tc = randomize_all(c, cc, sc.clone(), Arc::clone(&start));
    let (mut a, ra) = ta.join().unwrap();
    let (mut b, rb) = tb.join().unwrap();
    let (mut c, rc) = tc.join().unwrap();
    assert!(ra.iter().chain(&rc).all(|(_, online)| *online));
    assert!(rb.iter().all(|(_, online)| !online));
    let envelopes: BTreeSet<String> = ra
        .iter()
        .chain(&rb)
        .chain(&rc)
        .map(|(r, _)| r.envelope.clone())
        .collect();
    assert_eq!(
        envelopes.len(),
        9,
        "nine randomizations, nine different slots"
    );
    let numbers: BTreeSet<String> = ra
        .iter()
        .chain(&rb)
        .chain(&rc)
        .map(|(r, _)| r.subject_no.clone())
        .collect();
    assert_eq!(numbers.len(), 9);
    assert!(rb.iter().all(|(r, _)| leased.contains(&r.envelope)));
    assert!(
        ra.iter()
            .chain(&rc)
            .all(|(r, _)| !leased.contains(&r.envelope)),
        "online slots never come from a block leased to a device"
    );
    // The server opened the online slots for their subjects, in one transaction each.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM allocation WHERE state = 'opened'"
        ),
        6
    );
    // Asking again for the same subject (a retry after a cut) gives the same slot.
    let again = a.client().take_slot("01", &sa[0]).unwrap();
    assert_eq!(again.envelope, ra[0].0.envelope);
    // Another device cannot take a slot for A's subject.
    assert!(matches!(
        c.client().take_slot("01", &sa[0]),
        Err(SyncError::Refused { status: 403, .. })
    ));

    // After sync every replica agrees on every randomization, and holds the same log.
    for _ in 0..2 {
        a.sync();
        b.sync();
        c.sync();
    }
    let all: Vec<&String> = sa.iter().chain(&sb).chain(&sc).collect();
    for s in &all {
        let seen = a.store.randomization(s).unwrap();
        assert!(seen.is_some(), "{s} randomized");
        assert_eq!(b.store.randomization(s).unwrap(), seen);
        assert_eq!(c.store.randomization(s).unwrap(), seen);
    }
    assert_eq!(a.log(), b.log());
    assert_eq!(a.log(), c.log());
    assert_eq!(server_log(&db, "01"), a.log());
    // The server marked B's opened envelopes when B pushed them; no envelope was disputed.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM allocation WHERE state = 'opened'"
        ),
        9
    );
    for (r, _) in &rb {
        let subject = psql(
            &db,
            &format!(
                "SELECT subject FROM allocation WHERE envelope = '{}'",
                r.envelope
            ),
        );
        assert_eq!(subject, r.subject);
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM flags WHERE flag = 'envelope'"),
        0
    );
    let report = a.store.verify().unwrap();
    assert!(report.ok(), "{:?}", report.problems);

    // Revoking B takes back its unopened envelope: nobody ever opens it.
    let said = server.admin(&["device", "revoke", &b_device]);
    assert!(said.contains("1 unopened envelopes"), "{said}");
    let withdrawn = psql(
        &db,
        "SELECT envelope FROM allocation WHERE state = 'withdrawn'",
    );
    assert_eq!(withdrawn.lines().count(), 1);
    assert!(leased.contains(withdrawn.trim()));
    let late = eligible_subject(&mut a);
    let (r, online) = ecrf_app::sync::randomize(&mut a.store, Some(&a_client), &late).unwrap();
    assert!(online);
    assert!(!envelopes.contains(&r.envelope) && r.envelope != withdrawn.trim());
    let _ = &mut b;
}
