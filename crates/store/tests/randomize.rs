//! Randomization in the store: refusals write nothing, an envelope is never opened twice even
//! by two processes (here: two connections on two threads) randomizing at once, and the
//! envelopes projection rebuilds to the same state.

use std::sync::{Arc, Barrier};

use ecrf_core::FormKey;
use ecrf_core::sample::{consent_by_spouse, eligible_screening};
use ecrf_randomize::{ListSpec, Stratum, generate};
use ecrf_store::{Refusal, SaveOptions, Store, StoreError};

use ecrf_testkit::{NURSE, Site, User, lease_csv, open_as, study};

/// A second nurse, with the first one's password.
const NURSE2: User = User {
    username: "nurse2",
    name: "M",
    ..NURSE
};

/// An eligible male patient's SCR entries.
fn scr() -> Vec<(&'static str, &'static str)> {
    eligible_screening("07-001")
}

fn confirm() -> SaveOptions {
    SaveOptions {
        reason: None,
        confirm_warnings: true,
    }
}

fn form(id: &str) -> FormKey {
    FormKey::parse(&study(), id).expect("form key")
}

/// A store for site 07 with `envelopes` slots leased, and an admin and two nurses.
fn setup(dir: &std::path::Path, envelopes: usize) -> std::path::PathBuf {
    let path = dir.join("r.ecrf");
    let mut admin = Site::new("07").with_nurse().with(NURSE2).create(&path);
    if envelopes > 0 {
        let lease = lease_csv("07", envelopes, [42; 32]);
        assert_eq!(admin.load_lease(&lease).unwrap(), envelopes);
        // The same envelopes twice are refused, whole.
        assert!(
            admin
                .load_lease(&lease)
                .unwrap_err()
                .to_string()
                .contains("already")
        );
    }
    path
}

/// An eligible, consented subject whose ECMO started an hour ago: randomizable now.
fn eligible_subject(s: &mut Store) -> String {
    let id = ecrf_testkit::eligible_subject(s, "07-001");
    ecrf_testkit::ecmo_started_ago(s, &id, 60);
    id
}

fn refusal(e: StoreError) -> Refusal {
    match e {
        StoreError::Refused(r) => r,
        other => panic!("expected a refusal, got {other}"),
    }
}

#[test]
fn refusals_write_nothing_and_randomizing_is_irreversible() {
    let dir = tempfile::tempdir().unwrap();
    let path = setup(dir.path(), 0);
    let mut s = open_as(&path, &NURSE);
    let id = s.new_subject().unwrap();
    // Nothing on the checklist.
    assert!(matches!(
        refusal(s.randomize(&id).unwrap_err()),
        Refusal::NotEligible(_)
    ));
    // An exclusion criterion present.
    let mut with_ecpr = scr();
    with_ecpr.retain(|(i, _)| *i != "EXC5_ECPR");
    with_ecpr.push(("EXC5_ECPR", "Y"));
    s.save(&id, &form("SCR"), &with_ecpr, &confirm()).unwrap();
    let r = refusal(s.randomize(&id).unwrap_err());
    assert!(r.to_string().contains("E5: present"), "{r}");
    let reason = SaveOptions {
        reason: Some("checked again".into()),
        confirm_warnings: true,
    };
    s.save(&id, &form("SCR"), &[("EXC5_ECPR", "N")], &reason)
        .unwrap();
    // Eligible, but no consent.
    assert!(matches!(
        refusal(s.randomize(&id).unwrap_err()),
        Refusal::NoConsent(_)
    ));
    s.save(&id, &form("CON"), &consent_by_spouse(), &confirm())
        .unwrap();
    // Eligible and consented, but ECMO started on 1 March: long past the 6-hour window.
    let r = refusal(s.randomize(&id).unwrap_err());
    assert!(matches!(r, Refusal::Timing(_)), "{r}");
    assert!(
        r.to_string()
            .contains("after ECMO start at 2026-03-01 09:00"),
        "{r}"
    );
    ecrf_testkit::ecmo_started_ago(&mut s, &id, 60);
    // In time, but no envelope on this device.
    let before = s.audit_log(&id).unwrap().len();
    let r = refusal(s.randomize(&id).unwrap_err());
    assert!(
        r.to_string().contains("connect and sync to receive more"),
        "{r}"
    );
    assert_eq!(
        s.audit_log(&id).unwrap().len(),
        before,
        "a refusal writes nothing"
    );
    // The RND form cannot be typed.
    assert!(
        s.save(&id, &form("RND"), &[("ARM", "ECMO")], &confirm())
            .is_err()
    );
    // Only an administrator loads leases.
    assert!(matches!(
        s.load_lease("x"),
        Err(StoreError::NotAllowed { .. })
    ));
}

#[test]
fn randomize_opens_the_next_envelope_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = setup(dir.path(), 4);
    let mut s = open_as(&path, &NURSE);
    let list = generate(
        &ListSpec {
            stratum: Stratum::site("07").unwrap(),
            count: 4,
            block_sizes: vec![4],
        },
        &[42; 32],
    )
    .unwrap();
    let id = eligible_subject(&mut s);
    let r = s.randomize(&id).unwrap();
    assert_eq!(r.envelope, "07-E0001");
    assert_eq!(r.subject_no, "07-R0001");
    assert_eq!(r.arm, list[0].arm.code());
    assert_eq!(r.by, "nurse");
    assert_eq!(s.randomization(&id).unwrap(), Some(r.clone()));
    // The event is in the subject's audit trail, with the RND values, and the chain verifies.
    let log = s.audit_log(&id).unwrap();
    assert!(log.iter().any(
        |c| c.kind == ecrf_log::ChangeKind::Randomized && c.item.as_deref() == Some("07-E0001")
    ));
    assert!(s.verify().unwrap().problems.is_empty());
    // A second attempt is refused.
    let again = refusal(s.randomize(&id).unwrap_err());
    assert_eq!(
        again,
        Refusal::AlreadyRandomized {
            subject_no: r.subject_no.clone(),
            arm: r.arm.clone()
        }
    );
    let counts = s.envelope_counts().unwrap();
    assert_eq!((counts[0].unopened, counts[0].opened), (3, 1));
    // The pure fold over the log (ecrf_log::Projection) says the same of the envelopes.
    let folded = ecrf_log::Projection::of(&s.all_changes().unwrap()).unwrap();
    assert_eq!(folded.envelopes.len(), 4);
    let opened: Vec<(&str, Option<&str>)> = folded
        .envelopes
        .iter()
        .filter(|(_, e)| e.subject.is_some())
        .map(|(id, e)| (id.as_str(), e.subject.as_deref()))
        .collect();
    assert_eq!(opened, [("07-E0001", Some(id.as_str()))]);
    assert_eq!(
        folded.envelopes["07-E0001"].arm.as_deref(),
        Some(r.arm.as_str())
    );
    // The log shows sealed envelopes only by their commitments; the opening proves its arm.
    for (id, e) in &folded.envelopes {
        assert!(e.commitment.is_some(), "{id}");
        if e.subject.is_none() {
            assert_eq!(e.arm, None, "{id} is sealed");
        }
    }
    for c in s.all_changes().unwrap() {
        if c.kind == ecrf_log::ChangeKind::LeaseLoaded {
            let text = c.new_value.clone().unwrap_or_default();
            assert!(!text.contains("ECMO"), "a lease shows no arm: {text}");
        }
    }
    // Rebuilt projections equal the incremental ones.
    let before = s.projection_snapshot().unwrap();
    s.rebuild_projections().unwrap();
    assert_eq!(s.projection_snapshot().unwrap(), before);
}

/// Acceptance: two processes randomizing on the same store at once never open the same
/// envelope. Each thread has its own connection (as a second process would) and randomizes
/// its own subjects, all starting together.
#[test]
fn two_writers_never_open_the_same_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let per_writer = 6;
    let path = setup(dir.path(), 2 * per_writer);
    let mut subjects = Vec::new();
    {
        let mut s = open_as(&path, &NURSE);
        for _ in 0..2 * per_writer {
            subjects.push(eligible_subject(&mut s));
        }
    }
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = subjects
        .chunks(per_writer)
        .zip(["nurse", "nurse2"])
        .map(|(mine, user)| {
            let mine = mine.to_vec();
            let path = path.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut s = ecrf_testkit::open(&path, user, NURSE.password);
                barrier.wait();
                mine.iter()
                    .map(|id| s.randomize(id).unwrap().envelope)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut opened: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    opened.sort();
    let n = opened.len();
    opened.dedup();
    assert_eq!(opened.len(), n, "an envelope was opened twice");
    assert_eq!(n, 2 * per_writer);
    let s = open_as(&path, &NURSE);
    assert!(
        s.verify().unwrap().problems.is_empty(),
        "{:?}",
        s.verify().unwrap().problems
    );
    let counts = s.envelope_counts().unwrap();
    assert_eq!(
        (counts[0].unopened, counts[0].opened),
        (0, 2 * per_writer as i64)
    );
}

/// The window after ECMO start (study.toml `[randomization]`, 6 hours) and LV unloading already
/// started: each refused with its reason, nothing written; within the window it randomizes.
#[test]
fn randomization_is_refused_after_the_window_or_once_unloading_has_started() {
    let dir = tempfile::tempdir().unwrap();
    let path = setup(dir.path(), 4);
    let mut s = open_as(&path, &NURSE);
    assert_eq!(s.study().randomization.latest_after_ecmo_start_min, 360);
    let id = eligible_subject(&mut s);
    let reason = SaveOptions {
        reason: Some("checked at the bedside".into()),
        confirm_warnings: true,
    };
    // 6 h 30 min after ECMO start: too late, with both times and the limit.
    ecrf_testkit::ecmo_started_ago(&mut s, &id, 390);
    let before = s.audit_log(&id).unwrap().len();
    let r = refusal(s.randomize(&id).unwrap_err());
    let text = r.to_string();
    assert!(text.starts_with("too late: randomization at "), "{text}");
    // 6 h 30 min (6 h 31 min when a minute turns between the two saves).
    assert!(
        text.contains("6 h 30 min after ECMO start at ")
            || text.contains("6 h 31 min after ECMO start at "),
        "{text}"
    );
    assert!(
        text.contains("than the 6 h 00 min the protocol allows"),
        "{text}"
    );
    let ecrf_store::Refusal::Timing(t) = &r else {
        panic!("{r}")
    };
    assert!(t.message().zh.contains("超过方案允许的6小时00分"));
    assert_eq!(s.audit_log(&id).unwrap().len(), before, "nothing written");
    // The ECMO form's start counts too: the earlier of the two closes the window.
    ecrf_testkit::ecmo_started_ago(&mut s, &id, 60);
    let seven_hours_ago = (chrono::Local::now().fixed_offset() - chrono::Duration::hours(7))
        .format("%Y-%m-%dT%H:%M%:z")
        .to_string();
    s.save(
        &id,
        &form("ECMO"),
        &[("START_DT", seven_hours_ago.as_str())],
        &confirm(),
    )
    .unwrap();
    assert!(matches!(
        refusal(s.randomize(&id).unwrap_err()),
        Refusal::Timing(_)
    ));
    let one_hour_ago = (chrono::Local::now().fixed_offset() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M%:z")
        .to_string();
    s.save(
        &id,
        &form("ECMO"),
        &[("START_DT", one_hour_ago.as_str())],
        &reason,
    )
    .unwrap();
    // Unloading already started (an Impella, say): refused, whatever the time.
    s.save(&id, &form("SCR"), &[("LV_UNLOADING_STARTED", "Y")], &reason)
        .unwrap();
    let r = refusal(s.randomize(&id).unwrap_err());
    assert!(
        r.to_string().contains("mechanical LV unloading") && r.to_string().contains("Impella"),
        "{r}"
    );
    s.save(&id, &form("SCR"), &[("LV_UNLOADING_STARTED", "N")], &reason)
        .unwrap();
    let done = s.randomize(&id).unwrap();
    assert_eq!(done.envelope, "07-E0001");
}

/// The soft rule of the IABP form: in the ECMO+IABP arm, an IABP insertion time before
/// randomization asks for a confirmation; in time, it saves without one.
#[test]
fn an_iabp_inserted_before_randomization_asks_for_confirmation_in_the_iabp_arm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.ecrf");
    drop(
        Site::new("07")
            .with_nurse()
            .with_lease(8, [5; 32])
            .create(&path),
    );
    let mut s = open_as(&path, &NURSE);
    let no_confirm = SaveOptions::default();
    let mut seen_iabp_arm = false;
    for n in 0..8 {
        let (id, r) = ecrf_testkit::randomized_subject(&mut s, &format!("07-{n:03}"));
        s.save(
            &id,
            &form("ECMO"),
            &[("START_DT", "2026-03-01T09:00+08:00")],
            &confirm(),
        )
        .unwrap();
        // Randomized at 10:30; the IABP at 10:00.
        let early = [("INSERTED", "Y"), ("INSERT_DT", "2026-03-01T10:00+08:00")];
        let saved = s.save(&id, &form("IABP"), &early, &no_confirm);
        if r.arm == "ECMO_IABP" {
            seen_iabp_arm = true;
            match saved {
                Err(StoreError::NeedsConfirmation(w)) => {
                    let f = w
                        .iter()
                        .find(|f| f.rule == "IABP_INSERT_AFTER_RANDOMIZATION")
                        .unwrap_or_else(|| panic!("{w:?}"));
                    let m = &f.message;
                    assert!(m.en.contains("before randomization"), "{}", m.en);
                    assert!(m.zh.contains("早于随机分组"), "{}", m.zh);
                }
                other => panic!("expected a warning to confirm, got {other:?}"),
            }
            let late = [("INSERTED", "Y"), ("INSERT_DT", "2026-03-01T11:00+08:00")];
            s.save(&id, &form("IABP"), &late, &no_confirm).unwrap();
        } else {
            // The ECMO arm: not this rule's business (crossover is flagged by the outcome).
            assert!(saved.is_ok(), "{saved:?}");
        }
    }
    assert!(seen_iabp_arm, "eight envelopes hold an ECMO+IABP one");
}

/// Every row of a table, as text, read with the store key (what someone holding the key and
/// SQLite could read).
fn dump(path: &std::path::Path, key: &str, table: &str) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(key).unwrap();
    let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            Ok((0..n)
                .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                .collect::<Vec<_>>()
                .join("|"))
        })
        .unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}

#[test]
fn sealed_arms_are_never_plain_and_a_tampered_envelope_is_refused_writing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = setup(dir.path(), 8);
    let mut s = open_as(&path, &NURSE);
    let key = s.key_pragmas();
    // Neither the projection nor the sealed table shows an arm while every envelope is sealed.
    for table in ["envelopes", "sealed_envelopes", "change_log"] {
        let text = dump(&path, &key, table);
        assert!(!text.contains("ECMO"), "{table}: {text}");
    }
    // Someone with the store key moves the second envelope's seal onto the first (a known
    // arm for the next subject): the store refuses to open it and writes nothing.
    let id = eligible_subject(&mut s);
    let before = s.all_changes().unwrap().len();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&key).unwrap();
        conn.execute_batch(
            "UPDATE sealed_envelopes SET sealed = replace( \
                 (SELECT sealed FROM sealed_envelopes WHERE envelope = '07-E0002'), \
                 '07-E0002', '07-E0001') WHERE envelope = '07-E0001'",
        )
        .unwrap();
    }
    assert_eq!(
        refusal(s.randomize(&id).unwrap_err()),
        Refusal::Tampered("07-E0001".into())
    );
    assert_eq!(s.all_changes().unwrap().len(), before);
    assert_eq!(s.randomization(&id).unwrap(), None);
    // A seal moved together with its commitment is refused too: each is bound to its
    // envelope's id and place.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&key).unwrap();
        conn.execute_batch(
            "UPDATE sealed_envelopes SET sealed = \
                 (SELECT sealed FROM sealed_envelopes WHERE envelope = '07-E0003') \
                 WHERE envelope = '07-E0001'; \
             UPDATE envelopes SET commitment = (SELECT commitment FROM envelopes WHERE \
                 envelope = '07-E0003') WHERE envelope = '07-E0001'",
        )
        .unwrap();
    }
    assert_eq!(
        refusal(s.randomize(&id).unwrap_err()),
        Refusal::Tampered("07-E0001".into())
    );
    assert_eq!(s.all_changes().unwrap().len(), before);
}
