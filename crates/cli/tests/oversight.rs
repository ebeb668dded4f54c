//! The permission matrix and the oversight steps through the command line, as a user runs them:
//! every role × every action allowed or refused as the delegation log says.

mod common;

use std::path::Path;
use std::process::Command;

use common::{ADMIN_PW, NURSE_PW, ecrf, err, ok};

const ROLES: [&str; 5] = ["nurse", "investigator", "monitor", "data_manager", "admin"];

/// Every user but the admin has NURSE_PW (the helper's ECRF_NEW_PASSWORD).
fn run(store: &Path, user: &str, args: &[&str]) -> std::process::Output {
    let pw = if user == "admin" { ADMIN_PW } else { NURSE_PW };
    Command::new(env!("CARGO_BIN_EXE_ecrf"))
        .args(args)
        .env("ECRF_STORE", store)
        .env("ECRF_USER", user)
        .env("ECRF_PASSWORD", pw)
        .env("ECRF_SIGN_PASSWORD", pw)
        .env("ECRF_NEW_PASSWORD", NURSE_PW)
        .env_remove("ECRF_LANG")
        .output()
        .expect("run ecrf")
}

/// Site 01 with one user per role (named after the role) and subject 01-0001 with a complete
/// end-of-study form and a day-1 MAP.
fn site(dir: &Path) -> std::path::PathBuf {
    let store = dir.join("ward.ecrf");
    ok(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["init", "--site", "01", "--admin", "admin"],
    ));
    for role in &ROLES[..4] {
        ok(&run(
            &store,
            "admin",
            &[
                "user",
                "add",
                role,
                "--role",
                role,
                "--name",
                &format!("Dr {role}"),
            ],
        ));
    }
    ok(&run(&store, "nurse", &["subject", "new"]));
    ok(&run(
        &store,
        "nurse",
        &[
            "form",
            "set",
            "01-0001",
            "EOS",
            "EOS_STATUS=COMPLETED",
            "EOS_DATE=2026-04-01",
        ],
    ));
    ok(&run(
        &store,
        "nurse",
        &["form", "set", "01-0001", "DLY#1", "MAP=70"],
    ));
    store
}

#[test]
fn every_role_and_action_is_allowed_or_refused_as_the_delegation_log_says() {
    let dir = tempfile::tempdir().unwrap();
    let store = site(dir.path());
    // (action, roles allowed)
    let matrix: &[(&str, &[&str])] = &[
        ("enter", &["nurse", "investigator"]),
        ("change", &["nurse", "investigator"]),
        ("sign", &["investigator"]),
        ("query raise", &["monitor", "data_manager"]),
        ("query answer", &["nurse", "investigator"]),
        ("query close", &["monitor", "data_manager"]),
        ("sdv", &["monitor"]),
        ("lock", &["data_manager"]),
        ("unlock", &["data_manager"]),
        ("user admin", &["admin"]),
    ];
    for (i, role) in ROLES.iter().enumerate() {
        // Fresh objects per role so one role's step never decides another's.
        let day = (2 + i).to_string();
        let lock_day = (10 + i).to_string();
        let q = ok(&run(
            &store,
            "monitor",
            &[
                "query",
                "raise",
                "01-0001",
                "DLY#1",
                "MAP",
                "--text",
                "Chart says 60?",
            ],
        ));
        let q = q.trim().to_string();
        ok(&run(
            &store,
            "data_manager",
            &[
                "lock",
                "form",
                "01-0001",
                &format!("DLY#{lock_day}"),
                "--reason",
                "prepared",
            ],
        ));
        for (action, allowed) in matrix {
            let args: Vec<String> = match *action {
                "enter" => vec![
                    "form".into(),
                    "set".into(),
                    "01-0001".into(),
                    format!("DLY#{day}"),
                    "HR=80".into(),
                ],
                "change" => vec![
                    "form".into(),
                    "set".into(),
                    "01-0001".into(),
                    "DLY#1".into(),
                    format!("MAP={}", 71 + i),
                    "--reason".into(),
                    "chart".into(),
                ],
                "sign" => vec![
                    "sign".into(),
                    "01-0001".into(),
                    "EOS".into(),
                    "--meaning".into(),
                    "approval".into(),
                ],
                "query raise" => vec![
                    "query".into(),
                    "raise".into(),
                    "01-0001".into(),
                    "DLY#1".into(),
                    "MAP".into(),
                    "--text".into(),
                    "why?".into(),
                ],
                "query answer" => vec![
                    "query".into(),
                    "answer".into(),
                    q.clone(),
                    "--text".into(),
                    "checked".into(),
                ],
                "query close" => vec![
                    "query".into(),
                    "close".into(),
                    q.clone(),
                    "--text".into(),
                    "ok".into(),
                ],
                "sdv" => vec!["sdv".into(), "mark".into(), "01-0001".into(), "EOS".into()],
                "lock" => vec![
                    "lock".into(),
                    "form".into(),
                    "01-0001".into(),
                    format!("DLY#{}", 20 + i),
                    "--reason".into(),
                    "clean".into(),
                ],
                "unlock" => vec![
                    "unlock".into(),
                    "form".into(),
                    "01-0001".into(),
                    format!("DLY#{lock_day}"),
                    "--reason".into(),
                    "late data".into(),
                ],
                "user admin" => vec![
                    "user".into(),
                    "add".into(),
                    format!("extra{i}"),
                    "--role".into(),
                    "nurse".into(),
                ],
                _ => unreachable!(),
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run(&store, role, &args);
            if allowed.contains(role) {
                ok(&out);
            } else {
                let e = err(&out);
                assert!(e.contains("may not"), "{role} {action}: {e}");
            }
        }
        // Close what this round left open so the next round's signature is not refused for it.
        for line in ok(&run(&store, "monitor", &["query", "list", "01-0001"])).lines() {
            if !line.contains(" closed ") {
                let id = line.split_whitespace().next().unwrap();
                ok(&run(
                    &store,
                    "monitor",
                    &["query", "close", id, "--text", "round done"],
                ));
            }
        }
    }
    ok(&run(&store, "admin", &["audit", "verify"]));
}

#[test]
fn a_changed_signed_value_breaks_the_signature_until_re_signed() {
    let dir = tempfile::tempdir().unwrap();
    let store = site(dir.path());
    let out = ok(&run(
        &store,
        "investigator",
        &["sign", "01-0001", "EOS", "--meaning", "approval"],
    ));
    assert!(
        out.contains("Signed EOS of 01-0001 by Dr investigator"),
        "{out}"
    );
    assert!(out.contains("I approve the data in this record"), "{out}");
    let sigs = ok(&run(&store, "nurse", &["signatures", "01-0001"]));
    assert!(sigs.contains("valid") && !sigs.contains("BROKEN"), "{sigs}");
    ok(&run(
        &store,
        "nurse",
        &[
            "form",
            "set",
            "01-0001",
            "EOS",
            "EOS_DATE=2026-04-02",
            "--reason",
            "typo",
        ],
    ));
    let sigs = ok(&run(&store, "nurse", &["signatures", "01-0001"]));
    assert!(sigs.contains("BROKEN"), "{sigs}");
    ok(&run(
        &store,
        "investigator",
        &["sign", "01-0001", "EOS", "--meaning", "approval"],
    ));
    let sigs = ok(&run(&store, "nurse", &["signatures", "01-0001"]));
    assert_eq!(
        sigs.lines().filter(|l| l.ends_with("valid")).count(),
        1,
        "{sigs}"
    );
    // A wrong signing password is refused and signs nothing.
    let out = Command::new(env!("CARGO_BIN_EXE_ecrf"))
        .args(["sign", "01-0001", "EOS", "--meaning", "review"])
        .env("ECRF_STORE", &store)
        .env("ECRF_USER", "investigator")
        .env("ECRF_PASSWORD", NURSE_PW)
        .env("ECRF_SIGN_PASSWORD", "not-the-password")
        .output()
        .unwrap();
    assert!(err(&out).contains("wrong password"));
    assert_eq!(
        ok(&run(&store, "nurse", &["signatures", "01-0001"]))
            .lines()
            .count(),
        2
    );
}

#[test]
fn the_audit_trail_exports_as_csv_filtered_by_item_and_user() {
    let dir = tempfile::tempdir().unwrap();
    let store = site(dir.path());
    ok(&run(
        &store,
        "nurse",
        &[
            "form",
            "set",
            "01-0001",
            "DLY#1",
            "MAP=65",
            "--reason",
            "re-read, \"monitor\" asked",
        ],
    ));
    let csv = dir.path().join("audit.csv");
    let out = ok(&run(
        &store,
        "monitor",
        &[
            "audit",
            "export",
            "--form",
            "DLY",
            "--item",
            "MAP",
            "--by",
            "nurse",
            "-o",
            csv.to_str().unwrap(),
        ],
    ));
    assert!(out.starts_with("2 change(s)"), "{out}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("seq,change_id"));
    assert!(
        lines[2].contains(",MAP,") && lines[2].ends_with("\"re-read, \"\"monitor\"\" asked\""),
        "{text}"
    );
}

#[test]
fn a_deactivated_user_cannot_log_in_and_account_events_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let store = site(dir.path());
    ok(&run(&store, "admin", &["user", "deactivate", "monitor"]));
    ok(&run(
        &store,
        "admin",
        &["user", "role", "nurse", "investigator"],
    ));
    let e = err(&run(&store, "monitor", &["subject", "list"]));
    assert!(e.contains("deactivated"), "{e}");
    let users = ok(&run(&store, "admin", &["user", "list"]));
    assert!(
        users.contains("monitor") && users.contains("(deactivated)"),
        "{users}"
    );
    let csv = dir.path().join("users.csv");
    ok(&run(
        &store,
        "admin",
        &[
            "audit",
            "export",
            "--by",
            "admin",
            "-o",
            csv.to_str().unwrap(),
        ],
    ));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.contains(",user.deactivate,") && text.contains(",user.role,"),
        "{text}"
    );
}
