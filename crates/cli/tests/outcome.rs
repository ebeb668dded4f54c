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

/// Issue 20, point 2: a day-20 "alive" contact leaves the primary endpoint unknown with a flag;
/// the contact corrected to day 30 gives "no".
#[test]
fn an_alive_contact_before_day_30_leaves_the_endpoint_unknown() {
    use ecrf_testkit::{NURSE, Site, open_as, randomized_subject};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ward.ecrf");
    drop(
        Site::new("01")
            .with_nurse()
            .with_lease(4, [3; 32])
            .create(&store),
    );
    let mut nurse = open_as(&store, &NURSE);
    // Randomized 2026-03-01 10:30 +08:00: day 0 is 1 March, day 30 is 31 March.
    let (subject, _) = randomized_subject(&mut nurse, "01-001");
    drop(nurse);
    let cli = |args: &[&str]| ecrf(&store, "nurse", NURSE.password, args);
    let outcome = || -> serde_json::Value {
        serde_json::from_str(&ok(&cli(&["subject", "outcome", &subject]))).unwrap()
    };
    ok(&cli(&[
        "form",
        "set",
        &subject,
        "D30",
        "CONTACT_DATE=2026-03-21",
        "VITAL_STATUS=ALIVE",
        "--confirm-warnings",
    ]));
    let early = outcome();
    assert_eq!(early["primary_endpoint"], "Unknown", "{early}");
    let flags = early["flags"].as_array().unwrap();
    assert!(
        flags
            .iter()
            .any(|f| f["code"] == "ALIVE_ONLY_BEFORE_DAY30" && f["form"] == "D30"),
        "{flags:?}"
    );
    ok(&cli(&[
        "form",
        "set",
        &subject,
        "D30",
        "CONTACT_DATE=2026-03-31",
        "--reason",
        "contact was on day 30",
        "--confirm-warnings",
    ]));
    let on_time = outcome();
    assert_eq!(on_time["primary_endpoint"], "No", "{on_time}");
    assert_eq!(on_time["days_alive_to_day30"], 30);
}
