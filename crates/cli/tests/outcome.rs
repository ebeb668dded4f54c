//! `ecrf subject outcome`: a subject's derived outcomes and flags through the command line.

mod common;
use common::{ADMIN_PW, NURSE_PW, ecrf, err, ok};

#[test]
fn outcome_of_a_subject_through_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ward.ecrf");
    ok(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["init", "--site", "01", "--admin", "admin"],
    ));
    ok(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["user", "add", "nurse", "--role", "nurse", "--name", "Li Na"],
    ));
    let nurse = |args: &[&str]| ecrf(&store, "nurse", NURSE_PW, args);
    assert_eq!(ok(&nurse(&["subject", "new"])).trim(), "01-0001");
    ok(&nurse(&[
        "form",
        "set",
        "01-0001",
        "ECMO",
        "START_DT=2026-03-01T08:00+08:00",
    ]));
    ok(&nurse(&[
        "form",
        "set",
        "01-0001",
        "IABP",
        "INSERTED=Y",
        "INSERT_DT=2026-03-01T14:10+08:00",
    ]));
    ok(&nurse(&[
        "form",
        "set",
        "01-0001",
        "DLY#0",
        "DATE=2026-03-01",
        "SBP=80",
        "DBP=74",
    ]));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&nurse(&["subject", "outcome", "01-0001"]))).unwrap();
    assert_eq!(json["iabp_delay_min"], 370);
    assert_eq!(json["iabp_delay_hours"], "6.17");
    assert_eq!(json["primary_endpoint"], "Unknown");
    assert_eq!(
        json["iabp_deviation"],
        serde_json::Value::Null,
        "arm not known yet"
    );
    let flags = json["flags"].as_array().unwrap();
    assert!(
        flags.iter().any(|f| f["code"] == "DERIVED_OUT_OF_RANGE"
            && f["form"] == "DLY#0"
            && f["item"] == "PULSE_PRESSURE"),
        "{flags:?}"
    );
    // A daily log dated on another day than its study day is refused, naming field and rule.
    let e = err(&nurse(&[
        "form",
        "set",
        "01-0001",
        "DLY#1",
        "DATE=2026-03-05",
    ]));
    assert!(e.contains("DLY DATE") && e.contains("day 0 + N"), "{e}");
    assert!(err(&nurse(&["subject", "outcome", "01-9999"])).contains("01-9999"));
}
