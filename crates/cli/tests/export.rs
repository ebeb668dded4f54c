//! `ecrf export` and `ecrf study import-odm` driven as a user would: only a data manager may
//! export, every export is recorded in the audit trail, bad options name
//! the option, and an exported definition comes back through `import-odm` as a folder that
//! `ecrf study check` accepts.

mod common;
use common::{ADMIN_PW, NURSE_PW, ecrf, err, ok};

#[test]
fn export_from_the_command_line_is_audited_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ward.ecrf");
    ok(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["init", "--site", "05", "--admin", "admin"],
    ));
    ok(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["user", "add", "li", "--role", "nurse", "--name", "李娜"],
    ));
    ok(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &[
            "user",
            "add",
            "zhou",
            "--role",
            "data_manager",
            "--name",
            "周",
        ],
    ));
    let li = |args: &[&str]| ecrf(&store, "li", NURSE_PW, args);
    let subject = ok(&li(&["subject", "new"])).trim().to_string();
    ok(&li(&[
        "form",
        "set",
        &subject,
        "ECMO",
        "START_DT=2026-03-01T09:00+08:00",
        "FLOW=3.5",
        "RPM=@UNK",
    ]));
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();

    // A nurse may not export.
    let e = err(&li(&["export", "csv", "-o", out_s]));
    assert!(e.contains("may not export data"), "{e}");
    // Bad options name the option.
    let zhou = |args: &[&str]| ecrf(&store, "zhou", NURSE_PW, args);
    let e = err(&zhou(&["export", "csv", "--forms", "NOPE", "-o", out_s]));
    assert!(e.contains("--forms: there is no form NOPE"), "{e}");
    let e = err(&zhou(&["export", "xls", "-o", out_s]));
    assert!(e.contains("unknown format xls"), "{e}");
    let e = err(&zhou(&["export", "csv", "--site", "09", "-o", out_s]));
    assert!(e.contains("--site 09"), "{e}");

    let said = ok(&zhou(&[
        "export", "all", "--forms", "ECMO,D30", "-o", out_s,
    ]));
    assert!(said.contains("Exported 1 subjects"), "{said}");
    for f in [
        "ecmo.csv",
        "d30.csv",
        "subjects.csv",
        "dictionary.csv",
        "read_ecrf.R",
        "ecmo.dta",
        "ecmo.sav",
        "ecmo.xpt",
        "early-iabp-odm.xml",
    ] {
        assert!(out.join(f).exists(), "{f} was not written: {said}");
    }
    assert!(!out.join("dly.csv").exists(), "only the chosen forms");
    let ecmo = std::fs::read_to_string(out.join("ecmo.csv")).unwrap();
    assert!(
        ecmo.contains("2026-03-01T09:00:00+08:00,") && ecmo.contains(",@UNK"),
        "{ecmo}"
    );

    // The first export is in the audit trail of the second.
    ok(&zhou(&["export", "csv", "--include-audit", "-o", out_s]));
    let audit = std::fs::read_to_string(out.join("audit_trail.csv")).unwrap();
    let line = audit
        .lines()
        .find(|l| l.contains("data.export"))
        .expect("the export is audited");
    assert!(
        line.contains("zhou") && line.contains("ECMO") && line.contains("D30"),
        "{line}"
    );

    // The definition back from the ODM file, as a folder the loader accepts.
    let back = dir.path().join("back");
    let said = ok(&zhou(&[
        "study",
        "import-odm",
        out.join("early-iabp-odm.xml").to_str().unwrap(),
        "--out",
        back.to_str().unwrap(),
    ]));
    assert!(said.starts_with("OK: EARLY-IABP"), "{said}");
    let said = ok(&zhou(&["study", "check", back.to_str().unwrap()]));
    assert!(said.contains("13 forms"), "{said}");
    let e = err(&zhou(&[
        "study",
        "import-odm",
        out.join("ecmo.csv").to_str().unwrap(),
    ]));
    assert!(e.contains("ODM"), "{e}");
}
