//! Two replicas of one site exchanging changes through `own_changes_after` / `apply_remote`
//! (what the sync client does over HTTP): edits of different items merge, edits of the same
//! item become one conflict with both values on both replicas, resolved once; every device's
//! chain verifies on every replica; replays change nothing.

use ecrf_core::FormKey;
use ecrf_store::{SaveOptions, Store, StoreError};

use ecrf_testkit::{NURSE, Site, study};

/// Sends every change of `from`'s own device that `to` lacks (like push + pull).
fn send(from: &Store, to: &mut Store) {
    let page = from.own_changes_after(0, 10_000).unwrap();
    let cursor = to.sync_state().unwrap().pulled + 1;
    to.apply_remote(&page, cursor).unwrap();
}

fn nurse(path: &std::path::Path) -> Store {
    Site::new("07").with_nurse().create_as(path, &NURSE)
}

/// Two new laptops of site 07, `a` and `b` (its administrator logged in, a nurse added).
fn two_laptops(dir: &std::path::Path) -> (Store, Store) {
    let laptop = |name: &str| Site::new("07").with_nurse().create(&dir.join(name));
    (laptop("a.ecrf"), laptop("b.ecrf"))
}

fn exchange(a: &mut Store, b: &mut Store) {
    send(a, b);
    send(b, a);
}

fn ids(s: &Store) -> Vec<String> {
    let mut v: Vec<String> = s
        .all_changes()
        .unwrap()
        .into_iter()
        .map(|c| format!("{} {}", c.change_id, c.hash))
        .collect();
    v.sort();
    v
}

#[test]
fn two_replicas_merge_items_and_keep_both_values_of_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = nurse(&dir.path().join("a.ecrf"));
    let mut b = nurse(&dir.path().join("b.ecrf"));
    a.set_sync_setting("subject_prefix", "D1").unwrap();
    b.set_sync_setting("subject_prefix", "D2").unwrap();
    let subject = a.new_subject().unwrap();
    assert_eq!(subject, "07-D1-0001");
    exchange(&mut a, &mut b);
    assert_eq!(
        b.new_subject().unwrap(),
        "07-D2-0001",
        "numbers never collide"
    );
    let day1 = FormKey::parse(&study(), "DLY#1").unwrap();
    let why = SaveOptions {
        reason: Some("correction".into()),
        confirm_warnings: true,
    };
    // Different items offline: both kept everywhere.
    a.save(&subject, &day1, &[("HR", "80")], &why).unwrap();
    b.save(&subject, &day1, &[("MAP", "65")], &why).unwrap();
    exchange(&mut a, &mut b);
    for s in [&a, &b] {
        let v = s.form_values(&subject, &day1).unwrap();
        let items: Vec<(String, String)> = v
            .iter()
            .map(|i| (i.item.clone(), i.value.to_string()))
            .collect();
        assert!(items.contains(&("HR".into(), "80".into())), "{items:?}");
        assert!(items.contains(&("MAP".into(), "65".into())), "{items:?}");
        assert!(s.conflicts().unwrap().is_empty());
    }
    // The same item offline: a conflict with both values on both replicas, shown alike.
    a.save(&subject, &day1, &[("HR", "90")], &why).unwrap();
    b.save(&subject, &day1, &[("HR", "100")], &why).unwrap();
    exchange(&mut a, &mut b);
    let ca = a.conflicts().unwrap();
    assert_eq!(ca, b.conflicts().unwrap());
    assert_eq!(ca.len(), 1);
    let values: Vec<String> = ca[0]
        .values
        .iter()
        .filter_map(|v| v.value.clone())
        .collect();
    assert_eq!(values.len(), 2, "{ca:?}");
    // The value shown is the same on both (local sequence numbers differ, values do not).
    assert_eq!(
        a.subject_values(&subject).unwrap(),
        b.subject_values(&subject).unwrap()
    );
    // Resolved once on A, the resolution reaches B; no conflict left.
    let err = b
        .resolve_conflict(&subject, "DLY#1", "MAP", "70", "x")
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(m) if m.contains("not in conflict")));
    a.resolve_conflict(&subject, "DLY#1", "HR", "95", "checked the chart")
        .unwrap();
    exchange(&mut a, &mut b);
    for s in [&a, &b] {
        assert!(s.conflicts().unwrap().is_empty());
        let hr = s.form_values(&subject, &day1).unwrap();
        assert!(
            hr.iter()
                .any(|i| i.item == "HR" && i.value.to_string() == "95")
        );
        let report = s.verify().unwrap();
        assert!(report.ok(), "{:?}", report.problems);
    }
    assert_eq!(
        ids(&a),
        ids(&b),
        "both replicas hold exactly the same changes"
    );
    // Replays change nothing; rebuilt projections equal incremental ones.
    let before = a.projection_snapshot().unwrap();
    let page = b.own_changes_after(0, 10_000).unwrap();
    let r = a.apply_remote(&page, 99).unwrap();
    assert_eq!(r.applied, 0);
    assert_eq!(r.already_held, page.len());
    assert_eq!(a.projection_snapshot().unwrap(), before);
    a.rebuild_projections().unwrap();
    assert_eq!(a.projection_snapshot().unwrap(), before);
}

#[test]
fn a_page_with_a_broken_change_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, mut b) = two_laptops(dir.path());
    let mut page = a.own_changes_after(0, 100).unwrap();
    let before = b.all_changes().unwrap().len();
    // Altered content.
    page[1].new_value = Some("{\"name\":\"X\",\"role\":\"admin\"}".into());
    let err = b.apply_remote(&page, 5).unwrap_err();
    assert!(err.to_string().contains("does not match its hash"), "{err}");
    // A gap in the device's chain.
    let page = a.own_changes_after(1, 100).unwrap();
    let err = b.apply_remote(&page, 5).unwrap_err();
    assert!(err.to_string().contains("does not follow"), "{err}");
    assert_eq!(b.all_changes().unwrap().len(), before);
    assert_eq!(b.sync_state().unwrap().pulled, 0, "the cursor did not move");
}

/// A page of two devices whose second device breaks its chain after the first device's changes
/// were appended in the page's transaction: nothing of it stays, the cursor does not move, and
/// the page made whole applies with replays of changes already held mixed in.
#[test]
fn a_chain_broken_mid_page_applies_nothing_and_replays_in_a_page_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = nurse(&dir.path().join("a.ecrf"));
    let mut c = nurse(&dir.path().join("c.ecrf"));
    let mut b = nurse(&dir.path().join("b.ecrf"));
    for (store, prefix) in [(&mut a, "D1"), (&mut c, "D3")] {
        store.set_sync_setting("subject_prefix", prefix).unwrap();
        store.new_subject().unwrap();
    }
    let from_a = a.own_changes_after(0, 100).unwrap();
    let from_c = c.own_changes_after(0, 100).unwrap();
    assert!(from_c.len() >= 3, "{}", from_c.len());
    let before = b.all_changes().unwrap().len();
    // C's second change left out: its third does not follow its first.
    let mut page = from_a.clone();
    page.extend(from_c.iter().take(1).cloned());
    page.extend(from_c.iter().skip(2).cloned());
    let err = b.apply_remote(&page, 7).unwrap_err();
    assert!(err.to_string().contains("does not follow"), "{err}");
    assert!(err.to_string().contains("nothing of this page"), "{err}");
    assert_eq!(
        b.all_changes().unwrap().len(),
        before,
        "A's changes went too"
    );
    assert_eq!(b.sync_state().unwrap().pulled, 0, "the cursor did not move");
    assert_eq!(b.head().0 as usize, before);
    // A's first half, then everything again: the half held is skipped, the rest applied.
    let half = from_a.len() / 2;
    b.apply_remote(&from_a[..half], 3).unwrap();
    let mut page = from_a.clone();
    page.extend(from_c.iter().cloned());
    let r = b.apply_remote(&page, 7).unwrap();
    assert_eq!(r.already_held, half);
    assert_eq!(r.applied, from_a.len() - half + from_c.len());
    assert_eq!(b.sync_state().unwrap().pulled, 7);
    let report = b.verify().unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let kept = b.projection_snapshot().unwrap();
    b.rebuild_projections().unwrap();
    assert_eq!(b.projection_snapshot().unwrap(), kept);
}

/// A change that follows its device's chain but reuses the id of a change held here with other
/// content is refused by the `change_id` index the append checks, and nothing of its page stays.
#[test]
fn a_new_change_reusing_a_held_id_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, mut b) = two_laptops(dir.path());
    let held = a.own_changes_after(0, 100).unwrap();
    b.apply_remote(&held, 1).unwrap();
    let before = b.all_changes().unwrap().len();
    let c = Site::new("07")
        .with_nurse()
        .create(&dir.path().join("c.ecrf"));
    let mut page = c.own_changes_after(0, 100).unwrap();
    let last = page.len() - 1;
    page[last].change_id = held[0].change_id.clone();
    page[last].hash = page[last].compute_hash();
    let err = b.apply_remote(&page, 2).unwrap_err();
    assert!(
        err.to_string()
            .contains("differs from the change with the same id"),
        "{err}"
    );
    assert_eq!(b.all_changes().unwrap().len(), before);
    assert_eq!(b.sync_state().unwrap().pulled, 1);
}

/// A pulled page is committed without waiting for the disk; the store's own setting (FULL: a
/// save returns once it is on disk) is back as soon as the page is applied or refused.
#[test]
fn applying_a_page_leaves_saves_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (a, mut b) = two_laptops(dir.path());
    assert_eq!(b.durability_settings().unwrap().synchronous, 2);
    let mut page = a.own_changes_after(0, 100).unwrap();
    b.apply_remote(&page, 1).unwrap();
    assert_eq!(b.durability_settings().unwrap().synchronous, 2);
    page[0].change_id = "not-held-here".into();
    page[0].device_seq += 100;
    assert!(b.apply_remote(&page[..1], 3).is_err());
    assert_eq!(b.durability_settings().unwrap().synchronous, 2);
}

/// One step of three laptops of a site working offline and syncing now and then.
#[derive(Debug, Clone)]
enum Step {
    /// Laptop, item, value (an empty value clears the item).
    Save(usize, usize, usize),
    /// Every own change of one laptop reaches another (either may lack the rest: a change can
    /// arrive before the change it replaced).
    Send(usize, usize),
    /// Laptop, item, value: resolves the item if it is in conflict there.
    Resolve(usize, usize, usize),
}

const STEP_ITEMS: &[(&str, &[&str])] = &[
    ("HR", &["80", "95", "120", ""]),
    ("MAP", &["65", "70", ""]),
    ("CRRT", &["Y", "N", ""]),
];

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (0usize..3, 0..STEP_ITEMS.len(), 0usize..4).prop_map(|(l, i, v)| Step::Save(l, i, v)),
        3 => (0usize..3, 0usize..3).prop_map(|(a, b)| Step::Send(a, b)),
        1 => (0usize..3, 0..STEP_ITEMS.len(), 0usize..4).prop_map(|(l, i, v)| Step::Resolve(l, i, v)),
    ]
}

fn send_between(laptops: &mut [Store], from: usize, to: usize) {
    if from != to {
        let page = laptops[from].own_changes_after(0, 10_000).unwrap();
        let cursor = laptops[to].sync_state().unwrap().pulled + 1;
        laptops[to].apply_remote(&page, cursor).unwrap();
    }
}

/// Each replica's heads, values and conflicts are what the pure fold over its log gives, and
/// what replaying its log gives.
fn check_replica(s: &mut Store, subject: &str) -> Result<(), proptest::test_runner::TestCaseError> {
    use proptest::prelude::*;
    let folded = ecrf_log::Projection::of(&s.all_changes().unwrap()).unwrap();
    let values = folded.values().unwrap();
    let empty = Default::default();
    prop_assert_eq!(
        &s.subject_value_map(subject).unwrap(),
        values.get(subject).unwrap_or(&empty)
    );
    prop_assert_eq!(folded.conflicts().count(), s.conflicts().unwrap().len());
    let incremental = s.projection_snapshot().unwrap();
    s.rebuild_projections().unwrap();
    prop_assert_eq!(incremental, s.projection_snapshot().unwrap());
    Ok(())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]

    /// Whatever the laptops did and in whatever order their changes met, every replica agrees
    /// with the pure fold of its own log, and once all changes reached all laptops they show
    /// the same values and the same conflicts.
    #[test]
    fn replicas_agree_with_the_fold_and_converge(steps in proptest::collection::vec(step(), 1..30)) {
        let dir = tempfile::tempdir().unwrap();
        let mut laptops: Vec<Store> = ["a", "b", "c"]
            .iter()
            .map(|n| nurse(&dir.path().join(format!("{n}.ecrf"))))
            .collect();
        let subject = laptops[0].new_subject().unwrap();
        send_between(&mut laptops, 0, 1);
        send_between(&mut laptops, 0, 2);
        let day1 = FormKey::parse(&study(), "DLY#1").unwrap();
        let why = SaveOptions { reason: Some("correction".into()), confirm_warnings: true };
        for step in steps {
            match step {
                Step::Save(l, i, v) => {
                    let (item, values) = STEP_ITEMS[i];
                    match laptops[l].save(&subject, &day1, &[(item, values[v % values.len()])], &why) {
                        Ok(_) | Err(StoreError::Rejected(_)) => {}
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
                Step::Send(a, b) => send_between(&mut laptops, a, b),
                Step::Resolve(l, i, v) => {
                    let (item, values) = STEP_ITEMS[i];
                    match laptops[l].resolve_conflict(&subject, "DLY#1", item, values[v % values.len()], "checked") {
                        Ok(()) | Err(StoreError::Invalid(_)) | Err(StoreError::Rejected(_)) => {}
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
            }
        }
        for s in laptops.iter_mut() {
            check_replica(s, &subject)?;
        }
        for from in 0..3 {
            for to in 0..3 {
                send_between(&mut laptops, from, to);
            }
        }
        for s in laptops.iter_mut() {
            check_replica(s, &subject)?;
        }
        let shown = laptops[0].subject_value_map(&subject).unwrap();
        let conflicts = laptops[0].conflicts().unwrap();
        for s in &laptops[1..] {
            proptest::prop_assert_eq!(&s.subject_value_map(&subject).unwrap(), &shown);
            proptest::prop_assert_eq!(&s.conflicts().unwrap(), &conflicts);
        }
    }
}
