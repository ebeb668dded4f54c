//! Property: the projections kept incrementally by every save equal the projections rebuilt by
//! replaying the change log, whatever sequence of saves, corrections, refusals and clears
//! produced them.

use ecrf_core::FormKey;
use ecrf_store::{SaveOptions, Store, StoreError};
use proptest::prelude::*;

use ecrf_testkit::{NURSE, Site};

/// One thing a nurse does.
#[derive(Debug, Clone)]
enum Op {
    NewSubject,
    /// Save (subject index, day, item index, value index).
    Save(usize, u32, usize, usize),
}

/// Items with valid, soft-warning, refused, missing-code and clearing inputs.
const ITEMS: &[(&str, &[&str])] = &[
    ("HR", &["80", "95", "210", "@ND", ""]),
    ("MAP", &["65", "70", "@UNK", "", "400"]),
    ("LACTATE", &["2.1", "4.8", "26.0", "31", ""]),
    ("ANTICOAG", &["HEPARIN", "NONE", "warfarin", ""]),
    ("CRRT", &["Y", "N", ""]),
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::NewSubject),
        6 => (0usize..3, 0u32..4, 0..ITEMS.len(), 0usize..5)
            .prop_map(|(s, d, i, v)| Op::Save(s, d, i, v)),
    ]
}

fn fresh_store(dir: &std::path::Path) -> Store {
    Site::new("07")
        .with_nurse()
        .create_as(&dir.join("p.ecrf"), &NURSE)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn rebuilt_projections_equal_incremental_ones(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = fresh_store(dir.path());
        let mut subjects: Vec<String> = Vec::new();
        let mut saved = 0;
        for op in ops {
            match op {
                Op::NewSubject => subjects.push(store.new_subject().unwrap()),
                Op::Save(s, day, i, v) => {
                    if subjects.is_empty() {
                        continue;
                    }
                    let subject = &subjects[s % subjects.len()];
                    let (item, values) = ITEMS[i];
                    let value = values[v % values.len()];
                    let key = FormKey { form: "DLY".into(), repeat: Some(day) };
                    // Without a reason now and then: a confirmed warning then raises a query,
                    // and a correction is refused for want of one.
                    let opts = SaveOptions {
                        reason: (day % 2 == 0 || v % 3 != 0).then(|| "correction".into()),
                        confirm_warnings: v % 2 == 0,
                    };
                    match store.save(subject, &key, &[(item, value)], &opts) {
                        Ok(o) => saved += o.changes,
                        // Refusals are part of the property: they must leave no trace.
                        Err(
                            StoreError::Rejected(_)
                            | StoreError::NeedsConfirmation(_)
                            | StoreError::ReasonRequired { .. },
                        ) => {}
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
            }
        }
        let incremental = store.projection_snapshot().unwrap();
        store.rebuild_projections().unwrap();
        let rebuilt = store.projection_snapshot().unwrap();
        prop_assert_eq!(&incremental, &rebuilt);
        prop_assert!(store.verify().unwrap().ok());
        // The same rules as a pure fold over the log (what the server's export uses) give the
        // same subjects, values, conflicts and users as the store's SQL projections.
        let log = store.all_changes().unwrap();
        let folded = ecrf_log::Projection::of(&log).unwrap();
        let folded_values = folded.values().unwrap();
        let folded_subjects: Vec<&str> =
            folded.subjects.iter().map(|s| s.subject.as_str()).collect();
        prop_assert_eq!(&folded_subjects, &subjects);
        for s in &subjects {
            let stored = store.subject_value_map(s).unwrap();
            let empty = Default::default();
            prop_assert_eq!(&stored, folded_values.get(s).unwrap_or(&empty), "{}", s);
        }
        prop_assert_eq!(folded.conflicts().count(), store.conflicts().unwrap().len());
        let users: Vec<(String, String, ecrf_core::Role)> = store
            .users()
            .unwrap()
            .into_iter()
            .map(|u| (u.username, u.name, u.role))
            .collect();
        let folded_users: Vec<(String, String, ecrf_core::Role)> = folded
            .users
            .clone()
            .into_iter()
            .map(|(n, u)| (n, u.name, u.role))
            .collect();
        prop_assert_eq!(users, folded_users);
        // Queries raised by saves (a soft warning confirmed without a comment) alike.
        let mut stored_queries = store.queries(None).unwrap();
        stored_queries.sort_by(|a, b| a.id.cmp(&b.id));
        let folded_queries: Vec<_> = folded.queries.values().cloned().collect();
        prop_assert_eq!(&stored_queries, &folded_queries);
        let logged: usize = subjects
            .iter()
            .map(|s| store.audit_log(s).unwrap().iter().filter(|c| c.kind == ecrf_log::ChangeKind::ItemSet).count())
            .sum();
        prop_assert_eq!(logged, saved, "every accepted change is in the log, no refused one");
    }
}

#[test]
fn rebuild_gives_back_exactly_what_saves_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fresh_store(dir.path());
    let s = store.new_subject().unwrap();
    let key = FormKey {
        form: "DLY".into(),
        repeat: Some(1),
    };
    store
        .save(
            &s,
            &key,
            &[("HR", "88"), ("MAP", "70")],
            &SaveOptions::default(),
        )
        .unwrap();
    let before = store.projection_snapshot().unwrap();
    assert!(
        before.iter().any(|r| r.contains("|HR|{\"int\":88}|")),
        "{before:?}"
    );
    store.rebuild_projections().unwrap();
    assert_eq!(store.projection_snapshot().unwrap(), before);
}

/// A warning confirmed without a comment raises a query: the store's query table and the pure
/// fold over the log hold the same query, in the same state.
#[test]
fn a_query_raised_by_a_save_is_the_same_in_the_fold() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fresh_store(dir.path());
    let s = store.new_subject().unwrap();
    let confirm = SaveOptions {
        reason: None,
        confirm_warnings: true,
    };
    // Each value first on a day of its own, so none is a correction needing a reason.
    let tries = ITEMS
        .iter()
        .flat_map(|(item, values)| values.iter().map(move |v| (*item, *v)));
    for (day, (item, v)) in tries.enumerate() {
        let key = FormKey {
            form: "DLY".into(),
            repeat: Some(day as u32 + 1),
        };
        // Refusals are expected here; only the raises matter.
        let _ = store.save(&s, &key, &[(item, v)], &confirm);
    }
    let stored = store.queries(None).unwrap();
    assert!(
        !stored.is_empty(),
        "no warning was confirmed without a comment"
    );
    let folded = ecrf_log::Projection::of(&store.all_changes().unwrap()).unwrap();
    let mut stored = stored;
    stored.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(stored, folded.queries.into_values().collect::<Vec<_>>());
}

/// The subject list's one read of every subject (ranges of subjects read at once over their
/// own connections when there are enough subjects and cores) returns exactly what reading
/// each subject alone does, subjects without values left out.
#[test]
fn every_subjects_values_read_at_once_equal_each_subjects_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fresh_store(dir.path());
    store.set_durable(false).unwrap();
    let mut subjects = Vec::new();
    for n in 0..200u32 {
        let s = store.new_subject().unwrap();
        let key = FormKey {
            form: "DLY".into(),
            repeat: Some(n % 3),
        };
        let hr = (70 + n % 20).to_string();
        store
            .save(
                &s,
                &key,
                &[("HR", hr.as_str()), ("CRRT", "Y")],
                &SaveOptions::default(),
            )
            .unwrap();
        subjects.push(s);
    }
    let empty = store.new_subject().unwrap();
    let all = store.all_subject_values().unwrap();
    assert_eq!(all.len(), subjects.len());
    assert!(!all.contains_key(&empty));
    for s in &subjects {
        assert_eq!(all.get(s), Some(&store.subject_values(s).unwrap()), "{s}");
    }
}
