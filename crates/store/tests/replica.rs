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
    let a = Site::new("07")
        .with_nurse()
        .create(&dir.path().join("a.ecrf"));
    let mut b = Site::new("07")
        .with_nurse()
        .create(&dir.path().join("b.ecrf"));
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
