//! The plan of an import over the trial's own study definition: matching by record number,
//! placing by specimen time in the subject's local time, units, the worst of a day, the
//! baseline window, duplicates, and what accepting would do.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset, NaiveDate};
use ecrf_core::Value;
use ecrf_core::study::Study;
use ecrf_lab::plan::{CandidateStatus, Context, Plan, SubjectRecord, plan, result_key};
use ecrf_lab::{Format, LabFile, LabResult, ReadReport, Taken};

fn t(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

fn result(id: &str, mrn: &str, loinc: &str, value: &str, unit: &str, taken: &str) -> LabResult {
    LabResult {
        id: id.into(),
        patient: mrn.into(),
        loinc: Some(loinc.into()),
        name: format!("test {loinc}"),
        value: value.into(),
        unit: unit.into(),
        taken: Taken::Zoned(t(taken)),
        place: format!("entry {id}"),
    }
}

fn file(results: Vec<LabResult>) -> LabFile {
    LabFile {
        format: Format::Fhir,
        sha256: "ab".repeat(32),
        report: ReadReport {
            results,
            problems: Vec::new(),
        },
    }
}

/// Subject 01-0001 (record number H123): ECMO from 22:00 on 1 March (Beijing time),
/// randomized that day (day 0 = 1 March).
fn context(study: &Study) -> Context<'_> {
    let mut subjects = BTreeMap::new();
    subjects.insert(
        "H123".to_string(),
        SubjectRecord {
            subject: "01-0001".into(),
            ecmo_start: Some(t("2026-03-01T22:00:00+08:00")),
            day0: Some(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()),
            values: BTreeMap::new(),
        },
    );
    Context {
        study,
        subjects,
        rejected: BTreeSet::new(),
        imported: BTreeSet::new(),
        now: t("2026-03-20T12:00:00+08:00"),
    }
}

fn find<'a>(p: &'a Plan, form: &str, item: &str) -> &'a ecrf_lab::plan::Candidate {
    p.candidates
        .iter()
        .find(|c| c.form == form && c.item == item)
        .unwrap_or_else(|| panic!("no candidate {form} {item} in {:#?}", p.candidates))
}

#[test]
fn the_worst_of_a_day_in_the_items_unit() {
    let study = ecrf_core::trial::definition().unwrap();
    let ctx = context(&study);
    let p = plan(
        &file(vec![
            // Day 1 (2 March local): lactate 2.1 mmol/L, then 38 mg/dL = 4.2 mmol/L (the worst).
            result(
                "a",
                "H123",
                "2524-7",
                "2.1",
                "mmol/L",
                "2026-03-02T08:00:00+08:00",
            ),
            result(
                "b",
                "H123",
                "2524-7",
                "38",
                "mg/dL",
                "2026-03-02T14:00:00+08:00",
            ),
            // pH: the lowest counts.
            result(
                "c",
                "H123",
                "2744-1",
                "7.31",
                "",
                "2026-03-02T08:00:00+08:00",
            ),
            result(
                "d",
                "H123",
                "2744-1",
                "7.28",
                "[pH]",
                "2026-03-02T20:00:00+08:00",
            ),
            // Creatinine 1.23 mg/dL = 108.7 µmol/L (integer item): 109.
            result(
                "e",
                "H123",
                "2160-0",
                "1.23",
                "mg/dL",
                "2026-03-02T08:00:00+08:00",
            ),
            // Haemoglobin 9.8 g/dL = 98 g/L; platelets in 10*9/L.
            result(
                "f",
                "H123",
                "718-7",
                "9.8",
                "g/dL",
                "2026-03-02T08:00:00+08:00",
            ),
            result(
                "g",
                "H123",
                "777-3",
                "85",
                "10*9/L",
                "2026-03-02T08:00:00+08:00",
            ),
        ]),
        &ctx,
    );
    assert!(p.problems.is_empty(), "{:#?}", p.problems);
    let lactate = find(&p, "DLY#1", "LACTATE");
    assert_eq!(lactate.value, "4.2");
    assert_eq!(
        (lactate.source_value.as_str(), lactate.source_unit.as_str()),
        ("38", "mg/dL")
    );
    assert_eq!(lactate.others, 1);
    assert_eq!(lactate.status, CandidateStatus::New);
    assert_eq!(find(&p, "DLY#1", "PH").value, "7.28");
    assert_eq!(find(&p, "DLY#1", "CREAT").value, "109");
    assert_eq!(find(&p, "DLY#1", "HB").value, "98");
    assert_eq!(find(&p, "DLY#1", "PLT").value, "85");
    assert_eq!(p.candidates.len(), 5);
}

#[test]
fn specimen_times_place_results_in_the_subjects_local_days() {
    let study = ecrf_core::trial::definition().unwrap();
    let ctx = context(&study);
    let p = plan(
        &file(vec![
            // 23:30 UTC on 2 March = 07:30 on 3 March in Beijing: day 2, not day 1.
            result(
                "a",
                "H123",
                "2524-7",
                "3.0",
                "mmol/L",
                "2026-03-02T23:30:00Z",
            ),
            // 3 h before the ECMO start: baseline; 5 h before: not the closest.
            result(
                "b",
                "H123",
                "2524-7",
                "6.5",
                "mmol/L",
                "2026-03-01T19:00:00+08:00",
            ),
            result(
                "c",
                "H123",
                "2524-7",
                "9.9",
                "mmol/L",
                "2026-03-01T17:00:00+08:00",
            ),
            // 30 h before the ECMO start: outside the baseline window.
            result(
                "d",
                "H123",
                "2524-7",
                "5.0",
                "mmol/L",
                "2026-02-28T16:00:00+08:00",
            ),
            // In the future.
            result(
                "e",
                "H123",
                "2524-7",
                "5.0",
                "mmol/L",
                "2026-03-25T08:00:00+08:00",
            ),
        ]),
        &ctx,
    );
    assert_eq!(find(&p, "DLY#2", "LACTATE").value, "3.0");
    let bas = find(&p, "BAS", "LACTATE");
    assert_eq!((bas.value.as_str(), bas.others), ("6.5", 1));
    assert!(p.candidates.iter().all(|c| c.form != "DLY#1"));
    let text: Vec<String> = p
        .problems
        .iter()
        .map(|x| format!("{}: {}", x.place, x.message))
        .collect();
    assert_eq!(text.len(), 2, "{text:#?}");
    assert!(
        text[0].starts_with("entry d (01-0001 test 2524-7): taken 30.0 h before the ECMO start"),
        "{}",
        text[0]
    );
    assert!(text[1].contains("dated in the future"), "{}", text[1]);
}

#[test]
fn unknown_patients_codes_and_units_are_reported_not_guessed() {
    let study = ecrf_core::trial::definition().unwrap();
    let ctx = context(&study);
    let p = plan(
        &file(vec![
            result(
                "a",
                "H999",
                "2524-7",
                "2.0",
                "mmol/L",
                "2026-03-02T08:00:00+08:00",
            ),
            result(
                "b",
                "H999",
                "2524-7",
                "2.2",
                "mmol/L",
                "2026-03-02T09:00:00+08:00",
            ),
            result(
                "c",
                "H123",
                "2951-2",
                "140",
                "mmol/L",
                "2026-03-02T08:00:00+08:00",
            ),
            result(
                "d",
                "H123",
                "2524-7",
                "20",
                "mg/L",
                "2026-03-02T08:00:00+08:00",
            ),
            result(
                "e",
                "H123",
                "2524-7",
                "<0.5",
                "mmol/L",
                "2026-03-02T09:00:00+08:00",
            ),
        ]),
        &ctx,
    );
    assert!(p.candidates.is_empty(), "{:#?}", p.candidates);
    let text: Vec<String> = p
        .problems
        .iter()
        .map(|x| format!("{}: {}", x.place, x.message))
        .collect();
    let expect = [
        "DLY#1 LACTATE: unit \"mg/L\" is not one the study accepts for LACTATE (mmol/L, mg/dL): not converted",
        "DLY#1 LACTATE: value \"<0.5\" is not a number",
        "record number H999: not in this site's subject identification log (2 result(s))",
        "code 2951-2 test 2951-2: no item of the study takes this code (1 result(s))",
    ];
    for e in expect {
        assert!(text.iter().any(|t| t.contains(e)), "{e} not in {text:#?}");
    }
}

#[test]
fn disagreeing_duplicates_are_refused_and_exact_repeats_count_once() {
    let study = ecrf_core::trial::definition().unwrap();
    let ctx = context(&study);
    let p = plan(
        &file(vec![
            // The same result id twice with two values.
            result(
                "x",
                "H123",
                "2524-7",
                "2.0",
                "mmol/L",
                "2026-03-02T08:00:00+08:00",
            ),
            result(
                "x",
                "H123",
                "2524-7",
                "2.5",
                "mmol/L",
                "2026-03-02T08:00:00+08:00",
            ),
            // Two ids, same patient, code and time, two values.
            result(
                "y1",
                "H123",
                "2744-1",
                "7.30",
                "",
                "2026-03-02T08:00:00+08:00",
            ),
            result(
                "y2",
                "H123",
                "2744-1",
                "7.10",
                "",
                "2026-03-02T08:00:00+08:00",
            ),
            // An exact repeat.
            result(
                "z",
                "H123",
                "718-7",
                "98",
                "g/L",
                "2026-03-02T08:00:00+08:00",
            ),
            result(
                "z",
                "H123",
                "718-7",
                "98",
                "g/L",
                "2026-03-02T08:00:00+08:00",
            ),
        ]),
        &ctx,
    );
    assert_eq!(p.candidates.len(), 1, "{:#?}", p.candidates);
    assert_eq!((find(&p, "DLY#1", "HB").others), 0);
    assert_eq!(p.problems.len(), 2, "{:#?}", p.problems);
    assert_eq!(p.problems[0].place, "result x");
    assert!(
        p.problems[0]
            .message
            .contains("2 results disagree (2.0 mmol/L at entry x; 2.5 mmol/L at entry x)")
    );
    assert!(p.problems[1].place.contains("code 2744-1"));
}

#[test]
fn status_says_what_accepting_would_do() {
    let study = ecrf_core::trial::definition().unwrap();
    let mut ctx = context(&study);
    let results = vec![
        result(
            "a",
            "H123",
            "2524-7",
            "4.2",
            "mmol/L",
            "2026-03-02T08:00:00+08:00",
        ),
        result(
            "b",
            "H123",
            "2744-1",
            "7.28",
            "",
            "2026-03-02T08:00:00+08:00",
        ),
        result(
            "c",
            "H123",
            "718-7",
            "98",
            "g/L",
            "2026-03-02T08:00:00+08:00",
        ),
        result(
            "d",
            "H123",
            "777-3",
            "85",
            "10^9/L",
            "2026-03-02T08:00:00+08:00",
        ),
    ];
    let record = ctx.subjects.get_mut("H123").unwrap();
    let mut dly1 = BTreeMap::new();
    // Entered as "4.20": the same number.
    dly1.insert("LACTATE".to_string(), Value::Dec("4.20".parse().unwrap()));
    dly1.insert("PH".to_string(), Value::Dec("7.30".parse().unwrap()));
    record.values.insert("DLY#1".into(), dly1);
    ctx.imported.insert(result_key(&results[2]));
    ctx.rejected.insert(result_key(&results[3]));
    let p = plan(&file(results), &ctx);
    assert_eq!(find(&p, "DLY#1", "LACTATE").status, CandidateStatus::Same);
    let ph = find(&p, "DLY#1", "PH");
    assert_eq!(
        (ph.status, ph.entered.as_deref()),
        (CandidateStatus::Differs, Some("7.30"))
    );
    assert_eq!(find(&p, "DLY#1", "HB").status, CandidateStatus::Imported);
    assert_eq!(find(&p, "DLY#1", "PLT").status, CandidateStatus::Rejected);
    assert_eq!(p.open().count(), 1);
}

#[test]
fn every_lab_item_of_the_daily_log_names_loinc_codes() {
    let study = ecrf_core::trial::definition().unwrap();
    let dly = study.form("DLY").unwrap();
    let labs: Vec<&str> = dly
        .items
        .iter()
        .filter(|i| i.lab.is_some())
        .map(|i| i.id.as_str())
        .collect();
    assert_eq!(
        labs,
        [
            "LACTATE", "PH", "CREAT", "TBIL", "ALT", "HB", "PLT", "PFHB", "LDH"
        ]
    );
}
