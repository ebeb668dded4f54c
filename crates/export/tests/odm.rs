//! CDISC ODM 1.3.2: the export validates against the official schema (fetched as the PyPI
//! package defineutils 0.2.1 by this test's set-up, never committed), holds one AuditRecord per
//! clinical change of the log, keeps the tricky text intact, and the definition comes back
//! identical from ODM.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use common::{TRICKY, scripted_trial, study, trial_data};
use ecrf_export::odm_import::{Element, import_definition, parse};
use ecrf_export::{ExportOptions, Format, export};

/// The official ODM 1.3.2 schema, fetched once into the cargo target folder.
fn odm_schema() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("odm-schema");
    let xsd = dir.join("defineutils/validate/schema/cdisc-odm-1.3.2/ODM1-3-2.xsd");
    if xsd.exists() {
        return xsd;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let got = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "defineutils==0.2.1",
            "-d",
        ])
        .arg(&dir)
        .output()
        .expect("python3 with pip (scripts/setup.sh installs python3-pip)");
    assert!(
        got.status.success(),
        "pip download defineutils: {}",
        String::from_utf8_lossy(&got.stderr)
    );
    let wheel = dir.join("defineutils-0.2.1-py3-none-any.whl");
    let unzip = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        unzip.status.success(),
        "{}",
        String::from_utf8_lossy(&unzip.stderr)
    );
    assert!(xsd.exists(), "the wheel has no {}", xsd.display());
    xsd
}

fn xmllint(file: &std::path::Path) {
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(odm_schema())
        .arg(file)
        .output()
        .expect("xmllint (Debian libxml2-utils)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} does not validate:\n{}",
        file.display(),
        stderr.lines().take(30).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn definition_to_odm_and_back_is_identical() {
    let s = study();
    let mut xml = Vec::new();
    ecrf_export::odm::write_definition(&mut xml, &s, "2026-03-01T08:00:00+08:00").unwrap();
    let xml = String::from_utf8(xml).unwrap();
    let back = import_definition(&xml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(format!("{:#?}", *s), format!("{back:#?}"));
    // And it is valid ODM on its own.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("definition.xml");
    std::fs::write(&path, &xml).unwrap();
    xmllint(&path);
}

fn count(el: &Element, name: &str) -> usize {
    let mut v = Vec::new();
    el.descendants(name, &mut v);
    v.len()
}

#[test]
fn the_trial_as_odm_validates_and_carries_the_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let stores = scripted_trial(dir.path());
    let data = trial_data(&stores);
    for audit in [true, false] {
        let out = dir.path().join(if audit { "audit" } else { "snapshot" });
        let report = export(
            &study(),
            &data,
            &[Format::Odm],
            &ExportOptions {
                include_audit: audit,
                ..ExportOptions::default()
            },
            &out,
        )
        .unwrap();
        let file = &report.files[0];
        xmllint(file);
        let odm = parse(&std::fs::read_to_string(file).unwrap()).unwrap();
        let clinical_changes = data
            .changes()
            .filter(|c| matches!(c.change.kind().as_str(), "item.set" | "subject.create"))
            .count();
        let records = count(&odm, "AuditRecord");
        if audit {
            assert_eq!(records, clinical_changes, "one AuditRecord per change");
            let mut reasons = Vec::new();
            odm.descendants("ReasonForChange", &mut reasons);
            assert!(reasons.iter().any(|r| r.text == common::REASON));
        } else {
            assert_eq!(records, 0);
            let values: usize = data
                .values
                .values()
                .flat_map(|f| f.values())
                .map(|v| v.len())
                .sum();
            let derived: usize = data
                .derived(&study(), chrono::Utc::now())
                .values()
                .flat_map(|f| f.values())
                .map(|v| v.len())
                .sum();
            assert!(derived > 0, "the scripted trial has derived values");
            assert_eq!(
                count(&odm, "ItemData"),
                values + derived,
                "one ItemData per current value and per derived item"
            );
        }
        // The tricky text survives (last EOS_REASON value).
        let mut items = Vec::new();
        odm.descendants("ItemData", &mut items);
        let last = items
            .iter()
            .rev()
            .find(|i| i.attr("ItemOID") == Some("IT.EOS.EOS_REASON"))
            .expect("EOS_REASON in the ODM");
        assert_eq!(last.attr("Value"), Some(TRICKY));
        // Sites and users in AdminData.
        let admin = odm.first("AdminData").unwrap();
        assert_eq!(admin.all("Location").count(), 2);
        assert_eq!(admin.all("User").count(), 6);
    }
}

#[test]
fn a_signed_form_carries_its_signature_while_it_holds() {
    use ecrf_core::FormKey;
    use ecrf_core::signature::SignatureMeaning;

    let dir = tempfile::tempdir().unwrap();
    let stores = scripted_trial(dir.path());
    let mut pi = common::investigator(&stores[0]);
    let con = FormKey::parse(&study(), "CON").unwrap();
    let signed = pi
        .sign(
            "01-0001",
            Some(&con),
            SignatureMeaning::Approval,
            Some("pi"),
            common::PASSWORD,
        )
        .unwrap();
    drop(pi);

    let signatures_in = |name: &str, data: &ecrf_export::TrialData, audit: bool| {
        let out = dir.path().join(name);
        let report = export(
            &study(),
            data,
            &[Format::Odm],
            &ExportOptions {
                include_audit: audit,
                ..ExportOptions::default()
            },
            &out,
        )
        .unwrap();
        xmllint(&report.files[0]);
        let odm = parse(&std::fs::read_to_string(&report.files[0]).unwrap()).unwrap();
        let mut defs = Vec::new();
        odm.descendants("SignatureDef", &mut defs);
        assert!(
            defs.iter().any(|d| d.attr("OID") == Some("SD.approval")
                && d.attr("Methodology") == Some("Electronic")),
            "SignatureDef of approvals in AdminData"
        );
        let mut subjects = Vec::new();
        odm.descendants("SubjectData", &mut subjects);
        let subject = subjects
            .iter()
            .find(|s| s.attr("SubjectKey") == Some("01-0001"))
            .expect("01-0001");
        let mut forms = Vec::new();
        subject.descendants("FormData", &mut forms);
        let mut found = Vec::new();
        for f in forms {
            for s in f.all("Signature") {
                found.push((f.attr("FormOID").unwrap_or_default().to_string(), s.clone()));
            }
        }
        let mut all = Vec::new();
        odm.descendants("Signature", &mut all);
        assert_eq!(all.len(), found.len(), "no signature elsewhere");
        found
    };

    let data = trial_data(&stores);
    for audit in [false, true] {
        let found = signatures_in(if audit { "a1" } else { "s1" }, &data, audit);
        assert_eq!(found.len(), 1, "one signed form");
        let (form, s) = &found[0];
        assert_eq!(form, "F.CON");
        assert_eq!(s.attr("ID"), Some(format!("SG.{}", signed.id).as_str()));
        assert_eq!(
            s.first("UserRef").and_then(|u| u.attr("UserOID")),
            Some("USR.01.pi")
        );
        assert_eq!(
            s.first("LocationRef").and_then(|u| u.attr("LocationOID")),
            Some("LOC.01")
        );
        assert_eq!(
            s.first("SignatureRef").and_then(|u| u.attr("SignatureOID")),
            Some("SD.approval")
        );
        let stamp = s.first("DateTimeStamp").map(|d| d.text.clone()).unwrap();
        assert!(
            stamp.starts_with(&signed.utc[..4]) && stamp.len() > 20,
            "{stamp}"
        );
    }

    // A covered value changes: the snapshot no longer shows the signature (it does not hold
    // for the values now); the audit trail still shows that it was given.
    common::new_consent_version(&stores[0], "01-0001");
    let data = trial_data(&stores);
    assert!(signatures_in("s2", &data, false).is_empty());
    assert_eq!(signatures_in("a2", &data, true).len(), 1);
}
