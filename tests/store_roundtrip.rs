//! Across crates: the study definition from `core`, the store from `store`, a daily log entered,
//! the store closed and reopened, and the values read back exactly.

use std::sync::Arc;

use ecrf_core::{FormKey, Value};
use ecrf_store::{SaveOptions, Store, StoreError};
use ecrf_testkit::{ADMIN, NURSE, Site, User, open_as};

/// The ward's nurse, with a Chinese name the file must not show.
const NURSE_LI: User = User {
    name: "李护士",
    ..NURSE
};

#[test]
fn a_daily_log_survives_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.ecrf");
    let study = ecrf_testkit::study();
    let (admin, recovery) = Site::new("01")
        .admin(User {
            name: "王医生",
            ..ADMIN
        })
        .with(NURSE_LI)
        .create_with_recovery(&path);
    assert_eq!(
        recovery.as_str().len(),
        52 + 12,
        "52 base32 characters in groups of 4"
    );
    drop(admin);

    let mut store = open_as(&path, &NURSE_LI);
    let subject = store.new_subject().unwrap();
    let day2 = FormKey::parse(&study, "DLY#2").unwrap();
    let entries = [
        ("DATE", "2026-03-03"),
        ("LACTATE", "2.7"),
        ("PH", "7.32"),
        ("MAP", "66"),
        ("CVP", "@ND"),
        ("ANTICOAG", "普通肝素"),
    ];
    let outcome = store
        .save(&subject, &day2, &entries, &SaveOptions::default())
        .unwrap();
    assert_eq!(outcome.changes, entries.len());
    drop(store);

    let wrong = Store::open(&path, Arc::clone(&study), "nurse", "nurse-passworD");
    assert!(matches!(wrong, Err(StoreError::WrongPassword(ref u)) if u == "nurse"));
    assert_eq!(
        wrong.err().unwrap().to_string(),
        "wrong password for user nurse"
    );

    let store = Store::open(&path, Arc::clone(&study), "nurse", "nurse-password").unwrap();
    let values = store.form_values(&subject, &day2).unwrap();
    let get = |id: &str| {
        values
            .iter()
            .find(|v| v.item == id)
            .map(|v| v.value.clone())
    };
    assert_eq!(get("LACTATE").unwrap().to_string(), "2.7");
    assert_eq!(get("PH").unwrap().to_string(), "7.32");
    assert_eq!(get("MAP"), Some(Value::Int(66)));
    assert_eq!(get("CVP").unwrap().to_string(), "@ND");
    assert_eq!(get("ANTICOAG"), Some(Value::Code("HEPARIN".into())));
    assert_eq!(get("DATE").unwrap().to_string(), "2026-03-03");
    assert!(store.verify().unwrap().ok());

    let raw = std::fs::read(&path).unwrap();
    assert!(!raw.starts_with(b"SQLite format 3"));
    for needle in ["HEPARIN", "7.32", "2026-03-03", "李护士"] {
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} readable"
        );
    }
    let keys = std::fs::read_to_string(dir.path().join("ward.ecrf.keys")).unwrap();
    assert!(!keys.contains("HEPARIN") && !keys.contains("nurse-password"));
}
