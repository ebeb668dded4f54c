//! `ecrf lab import` on a real store (issue 22): a FHIR bundle matched by hospital record
//! number, converted, the worst of each day chosen; a dry run saves nothing; an apply that one
//! value refuses saves nothing at all; accepted values carry their provenance into the audit
//! trail; a rejected result is not asked again; the same file imported twice changes nothing;
//! the record number never enters the change log (what syncs and exports read).

use std::path::Path;
use std::process::{Command, Output};

use ecrf_core::FormKey;
use ecrf_store::SaveOptions;
use ecrf_testkit::{NURSE, Site, open_as, randomized_subject, study};

fn ecrf(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ecrf"))
        .args(args)
        .env("ECRF_STORE", store)
        .env("ECRF_USER", NURSE.username)
        .env("ECRF_PASSWORD", NURSE.password)
        .env_remove("ECRF_LANG")
        .output()
        .expect("run ecrf")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn observation(id: &str, mrn: &str, loinc: &str, value: &str, unit: &str, at: &str) -> String {
    format!(
        r#"{{"resource": {{"resourceType": "Observation", "id": "{id}", "status": "final",
        "code": {{"coding": [{{"system": "http://loinc.org", "code": "{loinc}", "display": "test {loinc}"}}]}},
        "subject": {{"identifier": {{"system": "urn:hospital:mrn", "value": "{mrn}"}}}},
        "effectiveDateTime": "{at}",
        "valueQuantity": {{"value": {value}, "unit": "{unit}"}}}}}}"#
    )
}

/// Day 0 is 1 March 2026 (randomized 10:30, UTC+8); day 1 is 2 March, day 2 is 3 March.
fn bundle() -> String {
    let entries = [
        observation(
            "lac-1",
            "H-0001",
            "2524-7",
            "2.1",
            "mmol/L",
            "2026-03-02T08:00:00+08:00",
        ),
        observation(
            "lac-2",
            "H-0001",
            "2524-7",
            "38",
            "mg/dL",
            "2026-03-02T14:00:00+08:00",
        ),
        observation(
            "ph-1",
            "H-0001",
            "2744-1",
            "7.31",
            "[pH]",
            "2026-03-02T08:00:00+08:00",
        ),
        observation(
            "cr-1",
            "H-0001",
            "2160-0",
            "1.23",
            "mg/dL",
            "2026-03-02T08:00:00+08:00",
        ),
        observation(
            "hb-2",
            "H-0001",
            "718-7",
            "9.8",
            "g/dL",
            "2026-03-03T08:00:00+08:00",
        ),
        // Below the usual range (20–600): a soft warning to confirm.
        observation(
            "plt-2",
            "H-0001",
            "777-3",
            "15",
            "10*9/L",
            "2026-03-03T08:00:00+08:00",
        ),
        observation(
            "x-1",
            "H-9999",
            "2524-7",
            "1.0",
            "mmol/L",
            "2026-03-02T08:00:00+08:00",
        ),
    ];
    format!(
        r#"{{"resourceType": "Bundle", "type": "collection", "entry": [{}]}}"#,
        entries.join(",")
    )
}

/// Candidate id of the dry run's line for `form item`.
fn id_of(out: &str, form: &str, item: &str) -> String {
    out.lines()
        .find(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() > 3 && w[2] == form && w[3] == item
        })
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no line for {form} {item} in\n{out}"))
        .to_string()
}

/// A store of site 01 with one randomized subject (day 0 = 1 March 2026, UTC+8) whose ECMO
/// started at 09:00 that day; returns the store path and the subject.
fn ward(dir: &Path) -> (std::path::PathBuf, String) {
    let path = dir.join("ward.ecrf");
    drop(
        Site::new("01")
            .with_nurse()
            .with_lease(4, [3; 32])
            .create(&path),
    );
    let mut store = open_as(&path, &NURSE);
    let (subject, _) = randomized_subject(&mut store, "S-1");
    let mut ecmo = ecrf_app::demo::ecmo_form(chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
    ecmo[0].1 = "2026-03-01T09:00+08:00".into();
    let entries: Vec<(&str, &str)> = ecmo.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let key = FormKey::parse(&study(), "ECMO").unwrap();
    let confirm = SaveOptions {
        reason: None,
        confirm_warnings: true,
    };
    store.save(&subject, &key, &entries, &confirm).unwrap();
    (path, subject)
}

#[test]
fn a_fhir_bundle_is_adjudicated_saved_once_with_its_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let (path, subject) = ward(dir.path());
    let file = dir.path().join("labs.json");
    std::fs::write(&file, bundle()).unwrap();
    let file = file.to_str().unwrap();

    let o = ecrf(&path, &["lab", "mrn", &subject, "H-0001"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The dry run: every value with its source, the worst of the day, what cannot be used.
    let o = ecrf(&path, &["lab", "import", file, "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lactate = out
        .lines()
        .find(|l| l.contains("DLY#1") && l.contains("LACTATE"))
        .unwrap_or_else(|| panic!("{out}"));
    for part in [
        "4.2",
        "38 mg/dL",
        "2026-03-02 14:00+08:00",
        "new",
        "(worst of 2 results)",
    ] {
        assert!(lactate.contains(part), "{part} in {lactate}");
    }
    let creat = out.lines().find(|l| l.contains("CREAT")).unwrap();
    assert!(
        creat.contains(" 109 ") && creat.contains("1.23 mg/dL"),
        "{creat}"
    );
    assert!(
        out.contains(
            "record number H-9999: not in this site's subject identification log (1 result(s))"
        ),
        "{out}"
    );
    assert!(out.contains("Dry run: nothing saved"), "{out}");
    let log_len = || {
        open_as(&path, &NURSE)
            .own_changes_after(0, 1_000_000)
            .unwrap()
            .len()
    };
    let before = log_len();

    // One value needs a confirmation: the whole import is refused, nothing saved.
    let o = ecrf(
        &path,
        &["lab", "import", file, "--apply", "--accept", "all"],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("nothing saved") && e.contains("DLY#2") && e.contains("confirm"),
        "{e}"
    );
    assert_eq!(log_len(), before, "a refused import wrote changes");

    // Accept everything but the pH, which is rejected.
    let ph = id_of(&out, "DLY#1", "PH");
    let o = ecrf(
        &path,
        &[
            "lab",
            "import",
            file,
            "--apply",
            "--accept",
            "all",
            "--reject",
            &ph,
            "--confirm-warnings",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Saved 4 value(s), rejected 1 result(s), 0 left undecided."),
        "{}",
        stdout(&o)
    );

    let store = open_as(&path, &NURSE);
    let dly1 = store
        .form_values(&subject, &FormKey::parse(&study(), "DLY#1").unwrap())
        .unwrap();
    let value = |item: &str| {
        dly1.iter()
            .find(|s| s.item == item)
            .map(|s| &s.value)
            .map(ToString::to_string)
    };
    assert_eq!(value("LACTATE").as_deref(), Some("4.2"));
    assert_eq!(value("CREAT").as_deref(), Some("109"));
    assert_eq!(value("PH"), None, "the rejected pH was saved");
    let lactate_change = store
        .audit_log(&subject)
        .unwrap()
        .into_iter()
        .find(|c| c.form.as_deref() == Some("DLY#1") && c.item.as_deref() == Some("LACTATE"))
        .unwrap();
    let source = ecrf_log::body::Provenance::from_json(
        lactate_change
            .source
            .as_deref()
            .unwrap_or_else(|| panic!("{lactate_change:?}")),
    )
    .unwrap();
    assert_eq!(
        (source.format.as_str(), source.result.as_str()),
        ("fhir", "lac-2")
    );
    assert_eq!(
        (source.value.as_str(), source.unit.as_str()),
        ("38", "mg/dL")
    );
    assert!(
        lactate_change.hash_holds(),
        "the provenance is not hashed consistently"
    );
    let after = log_len();
    drop(store);

    // The printed casebook's audit trail says where the value came from.
    let pdf = dir.path().join("casebook.pdf");
    let o = ecrf(
        &path,
        &["print", "subject", &subject, "-o", pdf.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = Command::new("pdftotext")
        .args(["-raw", "-enc", "UTF-8", pdf.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils)");
    let text = String::from_utf8_lossy(&text.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains("imported from laboratory file (fhir"),
        "{text}"
    );
    assert!(text.contains("lac-2: 38 mg/dL"), "{text}");

    // Again: nothing left to decide, nothing saved; the rejected pH is not asked again.
    let o = ecrf(&path, &["lab", "import", file, "--dry-run"]);
    let again = stdout(&o);
    assert!(!again.contains(" new"), "{again}");
    assert!(
        again
            .lines()
            .any(|l| l.contains("PH") && l.contains("rejected before")),
        "{again}"
    );
    assert!(
        again
            .lines()
            .any(|l| l.contains("LACTATE") && l.contains("already imported")),
        "{again}"
    );
    let o = ecrf(
        &path,
        &["lab", "import", file, "--apply", "--accept", "all"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Saved 0 value(s)"), "{}", stdout(&o));
    assert_eq!(log_len(), after);

    // The record number is in the identification log only, never in a change.
    let store = open_as(&path, &NURSE);
    assert_eq!(
        store.subject_mrns().unwrap(),
        [(subject.clone(), "H-0001".to_string())]
    );
    for c in store.own_changes_after(0, 1_000_000).unwrap() {
        let text = serde_json::to_string(&c).unwrap();
        assert!(
            !text.contains("H-0001"),
            "the record number is in a change: {text}"
        );
    }
}

#[test]
fn a_malformed_file_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.ecrf");
    drop(Site::new("01").with_nurse().create(&path));
    let file = dir.path().join("labs.json");
    std::fs::write(
        &file,
        r#"{"resourceType": "Bundle", "entry": [{"resource": "#,
    )
    .unwrap();
    let o = ecrf(&path, &["lab", "import", file.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("not imported") && e.contains("malformed"), "{e}");
}

#[test]
fn a_csv_export_with_chinese_headers_and_an_hl7_file_give_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let (path, subject) = ward(dir.path());
    assert!(
        ecrf(&path, &["lab", "mrn", &subject, "ZY0017"])
            .status
            .success()
    );
    // The laboratory system's export: local codes, Chinese headers, a time without offset.
    let csv = dir.path().join("lis.csv");
    std::fs::write(
        &csv,
        "住院号,项目代码,项目名称,结果,单位,采样时间\n\
         ZY0017,LAC,乳酸,2.1,mmol/L,2026-03-02 08:00\n\
         ZY0017,LAC,乳酸,38,mg/dL,2026-03-02 14:00\n\
         ZY0017,CREA,肌酐,1.23,mg/dL,2026-03-02 08:00\n\
         ZY0017,NA,钠,140,mmol/L,2026-03-02 08:00\n",
    )
    .unwrap();
    let o = ecrf(
        &path,
        &[
            "lab",
            "mapping",
            "lis",
            "--patient",
            "住院号",
            "--code",
            "项目代码",
            "--value",
            "结果",
            "--unit",
            "单位",
            "--taken",
            "采样时间",
            "--name-column",
            "项目名称",
            "--code-map",
            "LAC=2524-7",
            "--code-map",
            "CREA=2160-0",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ecrf(
        &path,
        &["lab", "import", csv.to_str().unwrap(), "--mapping", "lis"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let from_csv = stdout(&o);
    assert!(
        from_csv.contains("钠: no item of the study takes this code (1 result(s)): ignored"),
        "{from_csv}"
    );

    // The same results as HL7 v2 messages (CR segment ends, one message per specimen).
    let hl7 = dir.path().join("lis.hl7");
    std::fs::write(
        &hl7,
        "MSH|^~\\&|LIS|HOSP|ECRF|01|202603020900||ORU^R01|M1|P|2.5.1\r\
         PID|1||ZY0017^^^HOSP^MR||WANG^LI\r\
         OBR|1|||PANEL|||202603020800+0800\r\
         OBX|1|NM|2524-7^Lactate^LN||2.1|mmol/L|||||F|||202603020800+0800\r\
         OBX|2|NM|2160-0^Creatinine^LN||1.23|mg/dL|||||F|||202603020800+0800\r\n\
         MSH|^~\\&|LIS|HOSP|ECRF|01|202603021500||ORU^R01|M2|P|2.5.1\r\
         PID|1||ZY0017^^^HOSP^MR||WANG^LI\r\
         OBR|1|||PANEL|||202603021400+0800\r\
         OBX|1|NM|2524-7^Lactate^LN||38|mg/dL|||||F|||202603021400+0800\r\
         OBX|2|NM|2951-2^Sodium^LN||140|mmol/L|||||F|||202603021400+0800\r\n",
    )
    .unwrap();
    let o = ecrf(&path, &["lab", "import", hl7.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let from_hl7 = stdout(&o);
    // The same candidates (subject, form, item, value, source) from both files.
    let candidates = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.contains(" DLY#"))
            .map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .take(6)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    let (a, b) = (candidates(&from_csv), candidates(&from_hl7));
    assert_eq!(a.len(), 2, "{from_csv}");
    assert_eq!(a, b, "CSV:\n{from_csv}\nHL7:\n{from_hl7}");
    assert!(
        a.iter().any(|l| l.contains("LACTATE 4.2 38 mg/dL")),
        "{a:?}"
    );
    assert!(
        a.iter().any(|l| l.contains("CREAT 109 1.23 mg/dL")),
        "{a:?}"
    );
}
