//! Issue 20, point 6: what a withdrawal of consent still allows drives the export. Three
//! randomized subjects of one real store, each with daily logs for days 0 to 5 and a day-30
//! contact: one keeps consent, one withdraws on day 2 with "no further data; data so far may be
//! used", one on day 2 with "no further study data; vital status may still be sought", one with
//! "data so far may not be used". The CSV export leaves out exactly what each scope withholds;
//! the audit trail keeps every change. The data dictionary lists the items of definition 1.1.0.

use std::collections::BTreeMap;

use ecrf_core::FormKey;
use ecrf_export::{ExportOptions, Format, TrialData, export};
use ecrf_store::{SaveOptions, Store};
use ecrf_testkit::{DATA_MANAGER, NURSE, Site, open_as, randomized_subject, study};

fn save(s: &mut Store, subject: &str, form: &str, values: &[(&str, &str)]) {
    let opts = SaveOptions {
        reason: None,
        confirm_warnings: true,
    };
    s.save(
        subject,
        &FormKey::parse(&study(), form).unwrap(),
        values,
        &opts,
    )
    .unwrap_or_else(|e| panic!("{subject} {form}: {e}"));
}

/// Rows per subject in one exported CSV (the first column is the subject).
fn rows_by_subject(csv: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let subject = line.split(',').next().unwrap_or_default().trim_matches('"');
        *out.entry(subject.to_string()).or_default() += 1;
    }
    out
}

#[test]
fn a_withdrawal_scope_decides_what_is_exported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.ecrf");
    let mut s = Site::new("01")
        .with_nurse()
        .with(DATA_MANAGER)
        .with_lease(4, [5; 32])
        .create_as(&path, &NURSE);
    let scopes = [
        None,
        Some("NO_FOLLOW_UP"),
        Some("NO_TREATMENT_DATA"),
        Some("ALL_DATA"),
    ];
    let mut subjects = Vec::new();
    for (n, scope) in scopes.iter().enumerate() {
        let (id, _) = randomized_subject(&mut s, &format!("01-00{}", n + 1));
        save(
            &mut s,
            &id,
            "BAS",
            &[("HEIGHT", "170.0"), ("WEIGHT", "70.0")],
        );
        for day in 0..=5 {
            let date = format!("2026-03-{:02}", day + 1);
            save(
                &mut s,
                &id,
                &format!("DLY#{day}"),
                &[("DATE", &date), ("ECMO_STATUS", "RUNNING")],
            );
        }
        save(
            &mut s,
            &id,
            "D30",
            &[("CONTACT_DATE", "2026-03-31"), ("VITAL_STATUS", "ALIVE")],
        );
        if let Some(scope) = scope {
            save(
                &mut s,
                &id,
                "CON",
                &[
                    ("WITHDRAWN", "Y"),
                    ("WD_DATE", "2026-03-03"),
                    ("WD_BY", "LAR"),
                    ("WD_SCOPE", scope),
                ],
            );
        }
        subjects.push(id);
    }
    drop(s);

    let mut dm = open_as(&path, &DATA_MANAGER);
    let data = TrialData::from_view(dm.export_view(true).unwrap()).unwrap();
    let out = dir.path().join("export");
    export(
        &study(),
        &data,
        &[Format::Csv],
        &ExportOptions {
            include_audit: true,
            ..ExportOptions::default()
        },
        &out,
    )
    .unwrap();
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    let (dly, d30, bas, con, rnd) = (
        rows_by_subject(&read("dly.csv")),
        rows_by_subject(&read("d30.csv")),
        rows_by_subject(&read("bas.csv")),
        rows_by_subject(&read("con.csv")),
        rows_by_subject(&read("rnd.csv")),
    );
    let n = |m: &BTreeMap<String, usize>, i: usize| m.get(&subjects[i]).copied().unwrap_or(0);
    // Consent kept: everything.
    assert_eq!((n(&dly, 0), n(&d30, 0), n(&bas, 0)), (6, 1, 1));
    // No further data: the logs of days 0–2 (up to 3 March), no day-30 contact.
    assert_eq!((n(&dly, 1), n(&d30, 1), n(&bas, 1)), (3, 0, 1));
    // Vital status may still be sought: the day-30 contact stays.
    assert_eq!((n(&dly, 2), n(&d30, 2), n(&bas, 2)), (3, 1, 1));
    // Data so far may not be used: only consent and randomization.
    assert_eq!((n(&dly, 3), n(&d30, 3), n(&bas, 3)), (0, 0, 0));
    for i in 0..4 {
        assert_eq!((n(&con, i), n(&rnd, i)), (1, 1), "subject {i}");
    }
    // The audit trail keeps what the analysis files leave out.
    let audit = read("audit_trail.csv");
    assert!(audit.contains(&subjects[3]) && audit.contains("2026-03-06"));

    // The dictionary lists the items and codes of definition 1.1.0.
    let dict = read("dictionary.csv");
    for needle in [
        "PULSATILE",
        "Pulsatile arterial waveform",
        "LVEDD",
        "FdO2 (sweep gas O2)",
        "NEW_CONFIG",
        "WLST_REASON",
        "Withdrawal of life-sustaining therapy",
        "ECMO re-cannulation",
        "SAE_ONSET_DATE",
        "SAE_REPORT_DATE",
        "RELATION_ECMO",
        "Mesenteric ischaemia",
        "Limb amputation",
        "CONSENT_PROCESS",
        "DEFERRED_OUTCOME",
        "Patient died before consent could be sought",
        "RECONSENT",
        "RECONSENT_DATE",
        "Moderate-to-severe (exclusion 1)",
        "Takotsubo syndrome",
        "Post-cardiotomy shock after CABG",
        "De novo (acute) heart failure, non-ischaemic",
        "Veno-arterio-venous (V-AV)",
        "[15, 50]",
        "[0, 89]",
    ] {
        assert!(dict.contains(needle), "{needle} not in the dictionary");
    }
    let deviations: Vec<&str> = dict.lines().filter(|l| l.starts_with("DEV,")).collect();
    for item in ["DEV_DATE", "CATEGORY", "DESCRIPTION", "ACTION"] {
        assert!(
            deviations.iter().any(|l| l.contains(&format!(",{item},"))),
            "DEV {item}: {deviations:?}"
        );
    }
}
