//! The three readers on invented sample files (tests/data) and on hostile input: exact fields
//! of every result, problems that name their place, refusals that name theirs, and no panic.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime};
use ecrf_lab::{
    Format, LabResult, Problem, ReadError, ReadReport, TableMapping, Taken, fhir, hl7, table,
};

const BUNDLE: &str = include_str!("data/bundle.json");
const ORU: &[u8] = include_bytes!("data/oru_r01.hl7");
const CSV_ZH: &[u8] = include_bytes!("data/labs_zh.csv");
const CSV_BOM: &[u8] = include_bytes!("data/labs_bom_semicolon.csv");

fn zoned(s: &str) -> Taken {
    Taken::Zoned(DateTime::parse_from_rfc3339(s).expect("test time"))
}

fn local(s: &str) -> Taken {
    Taken::Local(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("test time"))
}

/// A result as (id, patient, loinc, name, value, unit, taken, place) for exact comparison.
type Row<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a str,
    &'a str,
    &'a str,
    Taken,
    &'a str,
);

fn rows(report: &ReadReport) -> Vec<Row<'_>> {
    report
        .results
        .iter()
        .map(|r: &LabResult| {
            (
                r.id.as_str(),
                r.patient.as_str(),
                r.loinc.as_deref(),
                r.name.as_str(),
                r.value.as_str(),
                r.unit.as_str(),
                r.taken,
                r.place.as_str(),
            )
        })
        .collect()
}

/// The problem at `place`, whose message must contain every one of `words`.
fn problem_at<'a>(report: &'a ReadReport, place: &str, words: &[&str]) -> &'a Problem {
    let p = report
        .problems
        .iter()
        .find(|p| p.place == place)
        .unwrap_or_else(|| panic!("no problem at {place:?}; problems: {:#?}", report.problems));
    for w in words {
        assert!(
            p.message.contains(w),
            "problem at {place:?} lacks {w:?}: {:?}",
            p.message
        );
    }
    p
}

fn malformed(e: ReadError) -> (String, String) {
    match e {
        ReadError::Malformed { place, message, .. } => (place, message),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

// ------------------------------------------------------------------------------------ FHIR

#[test]
fn fhir_bundle_results_exact() {
    let report = fhir::read(BUNDLE).expect("bundle reads");
    assert_eq!(
        rows(&report),
        vec![
            (
                "lac-1",
                "ZY20260017",
                Some("2524-7"),
                "乳酸",
                "4.2",
                "mmol/L",
                zoned("2026-03-02T07:30:00+08:00"),
                "entry 2 (Observation lac-1)"
            ),
            (
                "lac-2",
                "ZY20260023",
                Some("2518-9"),
                "Lactate [Mass/volume] in Arterial blood",
                "38.7",
                "mg/dL",
                zoned("2026-03-02T23:05:00Z"),
                "entry 3 (Observation lac-2)"
            ),
            // Unit from valueQuantity.code; patient from an absolute, versioned reference.
            (
                "cr-1",
                "ZY20260023",
                Some("14682-9"),
                "Creatinine",
                "451",
                "umol/L",
                zoned("2026-03-02T07:31:00+08:00"),
                "entry 4 (Observation cr-1)"
            ),
            // "5.10" kept exactly; patient from the bundle's Patient (its MR identifier).
            (
                "cr-2",
                "ZY20260017",
                Some("2160-0"),
                "Creatinine [Mass/volume] in Serum or Plasma",
                "5.10",
                "mg/dL",
                zoned("2026-03-03T06:00:00+08:00"),
                "entry 5 (Observation cr-2)"
            ),
            // No offset: a local time.
            (
                "ph-1",
                "ZY20260017",
                Some("2744-1"),
                "pH of Arterial blood",
                "7.28",
                "[pH]",
                local("2026-03-02 07:30:00"),
                "entry 6 (Observation ph-1)"
            ),
            // effectivePeriod.start.
            (
                "hb-1",
                "ZY20260017",
                Some("718-7"),
                "血红蛋白",
                "8.9",
                "g/dL",
                zoned("2026-03-02T07:30:00+08:00"),
                "entry 7 (Observation hb-1)"
            ),
            // No id: the first identifier.
            (
                "LIS-778812",
                "ZY20260017",
                Some("777-3"),
                "Platelets [#/volume] in Blood by Automated count",
                "87",
                "10*9/L",
                zoned("2026-03-02T07:30:00+08:00"),
                "entry 8 (Observation LIS-778812)"
            ),
        ]
    );
    assert_eq!(report.problems.len(), 6, "{:#?}", report.problems);
    problem_at(
        &report,
        "entry 9 (Observation lac-prelim)",
        &["preliminary result, not imported"],
    );
    problem_at(
        &report,
        "entry 10 (Observation hb-cancelled)",
        &["cancelled"],
    );
    problem_at(
        &report,
        "entry 11 (Observation lac-notime)",
        &["no specimen time", "2026-03-03", "effectiveDateTime"],
    );
    problem_at(
        &report,
        "entry 12 (Observation plt-issued)",
        &["no specimen time", "issued", "report time"],
    );
    problem_at(
        &report,
        "entry 13 (Observation ph-absent)",
        &["dataAbsentReason", "error"],
    );
    problem_at(
        &report,
        "entry 14 (Observation orphan)",
        &["no patient", "no code"],
    );
}

#[test]
fn fhir_refuses_what_is_not_a_bundle() {
    // Truncated.
    let cut = (0..=BUNDLE.len() / 2)
        .rev()
        .find(|i| BUNDLE.is_char_boundary(*i))
        .unwrap_or(0);
    let (place, message) = malformed(fhir::read(&BUNDLE[..cut]).unwrap_err());
    assert!(place.contains("line"), "{place}");
    assert!(message.starts_with("not JSON"), "{message}");
    // A JSON array.
    let (_, message) = malformed(fhir::read(r#"[{"resourceType":"Bundle"}]"#).unwrap_err());
    assert!(message.contains("a list, not a FHIR Bundle"), "{message}");
    // Another resource.
    let (place, message) =
        malformed(fhir::read(r#"{"resourceType":"Observation","status":"final"}"#).unwrap_err());
    assert_eq!(place, "resourceType");
    assert!(
        message.contains("\"Observation\", not \"Bundle\""),
        "{message}"
    );
    // An entry's resource that is not an object: the file is refused, naming the entry.
    let text = r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"p"}},{"resource":[1,2]}]}"#;
    let (place, message) = malformed(fhir::read(text).unwrap_err());
    assert_eq!(place, "entry 2");
    assert!(message.contains("a list, not an object"), "{message}");
    // Binary garbage and empty text.
    assert!(matches!(
        fhir::read("\u{1}\u{2}PK\u{3}\u{4}\u{0}garbage"),
        Err(ReadError::Malformed { .. })
    ));
    assert!(matches!(fhir::read(""), Err(ReadError::Malformed { .. })));
    // Through the lib's entry point: invalid UTF-8 is refused, not panicked on.
    assert!(matches!(
        ecrf_lab::read(Format::Fhir, b"{\xff\xfe}", None),
        Err(ReadError::Malformed { .. })
    ));
}

fn one_observation(value_quantity: &str) -> String {
    format!(
        r#"{{"resourceType":"Bundle","entry":[{{"resource":{{"resourceType":"Observation","id":"x","status":"final",
        "code":{{"coding":[{{"system":"http://loinc.org","code":"2524-7"}}]}},"subject":{{"reference":"Patient/P1"}},
        "effectiveDateTime":"2026-03-02T07:30:00+08:00","valueQuantity":{value_quantity}}}}}]}}"#
    )
}

#[test]
fn fhir_huge_numbers_keep_their_text() {
    for v in [
        "1e400",
        "123456789012345678901234567890.123456789",
        "-0.000000000000000000000000001",
    ] {
        let report = fhir::read(&one_observation(&format!(
            r#"{{"value":{v},"unit":"mmol/L"}}"#
        )))
        .expect("reads");
        assert_eq!(report.results.len(), 1, "{:?}", report.problems);
        assert_eq!(report.results[0].value, v);
    }
    // A bound is not a value.
    let report = fhir::read(&one_observation(
        r#"{"value":0.5,"comparator":"<","unit":"mmol/L"}"#,
    ))
    .expect("reads");
    problem_at(&report, "entry 1 (Observation x)", &["comparator", "<"]);
}

#[test]
fn fhir_deep_nesting_is_refused_or_skipped_not_a_crash() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    // At the top: not a Bundle.
    assert!(matches!(
        fhir::read(&deep(200_000)),
        Err(ReadError::Malformed { .. })
    ));
    // Unbalanced: not JSON.
    assert!(matches!(
        fhir::read(&"[".repeat(200_000)),
        Err(ReadError::Malformed { .. })
    ));
    // In a member nobody reads: skipped, the result still read.
    let text = one_observation(&format!(
        r#"{{"value":4.2,"unit":"mmol/L","extension":{}}}"#,
        deep(100_000)
    ));
    assert_eq!(fhir::read(&text).expect("reads").results.len(), 1);
    // As the value: a problem (serde_json's recursion limit), not a stack overflow.
    let text = one_observation(&format!(r#"{{"value":{},"unit":"mmol/L"}}"#, deep(100_000)));
    let report = fhir::read(&text).expect("reads");
    problem_at(
        &report,
        "entry 1 (Observation x)",
        &["valueQuantity.value", "is not a number"],
    );
    // Where a typed part is expected: the Observation is a problem.
    let text = r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","id":"y","code":[[[[[]]]]]}}]}"#;
    let report = fhir::read(text).expect("reads");
    problem_at(
        &report,
        "entry 1 (Observation)",
        &["does not follow FHIR R4"],
    );
}

// ------------------------------------------------------------------------------------ HL7

#[test]
fn hl7_messages_results_exact() {
    let text = std::str::from_utf8(ORU).expect("utf-8 sample");
    let report = hl7::read(text).expect("file reads");
    let m1 = "message 1 (MSH-10 MSG0001)";
    let m3 = "message 3 (MSH-10 MSG0003)";
    let at = zoned("2026-03-02T07:30:00+08:00");
    assert_eq!(
        rows(&report),
        vec![
            (
                "MSG0001/1",
                "ZY20260017",
                Some("2524-7"),
                "Lactate",
                "4.2",
                "mmol/L",
                at,
                &*format!("{m1}, OBX 1")
            ),
            // Time from the OBR-7 above.
            (
                "MSG0001/2",
                "ZY20260017",
                Some("2744-1"),
                "pH",
                "7.28",
                "[pH]",
                at,
                &*format!("{m1}, OBX 2")
            ),
            // LOINC as the alternate code (OBX-3.4/3.6); a time without offset is local.
            (
                "MSG0001/3",
                "ZY20260017",
                Some("2518-9"),
                "乳酸(质量)",
                "38.7",
                "mg/dL",
                local("2026-03-02 07:30:00"),
                &*format!("{m1}, OBX 3")
            ),
            // \S\ decoded in the unit.
            (
                "MSG0001/4",
                "ZY20260017",
                Some("777-3"),
                "Platelets",
                "87",
                "10^9/L",
                at,
                &*format!("{m1}, OBX 4")
            ),
            // OBX-1 empty: the rank; OBX-11 empty: final.
            (
                "MSG0001/5",
                "ZY20260017",
                Some("718-7"),
                "Hemoglobin",
                "8.9",
                "g/dL",
                at,
                &*format!("{m1}, OBX 5")
            ),
            // SN with a plain number.
            (
                "MSG0001/8",
                "ZY20260017",
                Some("14682-9"),
                "Creatinine",
                "451",
                "umol/L",
                at,
                &*format!("{m1}, OBX 8")
            ),
            // OBX-1 restarts under the second OBR: the OBR's rank joins the id. Offset -03:30.
            (
                "MSG0003/1/1",
                "ZY20260023",
                Some("2524-7"),
                "Lactate",
                "5.10",
                "mmol/L",
                zoned("2026-03-02T23:05:00-03:30"),
                &*format!("{m3}, OBX 1")
            ),
            // Escapes after non-ASCII text (\S\) and a hex escape (\X2F\ = '/'); no LOINC.
            (
                "MSG0003/1/2",
                "ZY20260023",
                None,
                "ALT 丙氨酸^转氨酶",
                "56",
                "U/L",
                zoned("2026-03-02T23:05:00-03:30"),
                &*format!("{m3}, OBX 2")
            ),
            // A second PID in the same message.
            (
                "MSG0003/2/1",
                "ZY20260031",
                Some("2744-1"),
                "pH",
                "7.41",
                "[pH]",
                zoned("2026-03-03T06:00:00+08:00"),
                &*format!("{m3}, OBX 3")
            ),
        ]
    );
    assert_eq!(report.problems.len(), 8, "{:#?}", report.problems);
    problem_at(
        &report,
        &format!("{m1}, OBX 6"),
        &["preliminary result, not imported", "OBX-11 \"P\""],
    );
    problem_at(
        &report,
        &format!("{m1}, OBX 7"),
        &["not a number result", "\"ST\"", "Haemolysed \\ repeat"],
    );
    problem_at(&report, &format!("{m1}, OBX 9"), &["bound", "<^0.5"]);
    problem_at(
        &report,
        &format!("{m1}, OBX 10"),
        &["no specimen time", "OBX-14 \"20260302\""],
    );
    problem_at(
        &report,
        &format!("{m1}, OBX 11"),
        &["wrong patient", "\"W\""],
    );
    problem_at(
        &report,
        "message 2 (MSH-10 MSG0002)",
        &["ADT^A08^ADT_A01", "not ORU^R01"],
    );
    problem_at(
        &report,
        "message 4 (MSH-10 MSG0004), OBX 1",
        &["no patient", "no PID"],
    );
    problem_at(
        &report,
        "message 4 (MSH-10 MSG0004), OBX 2",
        &["could not be obtained", "\"X\""],
    );
}

#[test]
fn hl7_line_ends_do_not_matter() {
    let text = std::str::from_utf8(ORU).expect("utf-8 sample");
    let cr = hl7::read(text).expect("reads");
    for end in ["\n", "\r\n", "\r"] {
        let same = text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .replace('\n', end);
        assert_eq!(hl7::read(&same).expect("reads"), cr, "line end {end:?}");
    }
}

#[test]
fn hl7_refuses_broken_files_naming_the_line() {
    // No MSH.
    let (place, message) =
        malformed(hl7::read("PID|1||ZY1\rOBX|1|NM|2524-7^Lactate^LN||4.2|mmol/L").unwrap_err());
    assert_eq!(place, "line 1");
    assert!(message.contains("before the first MSH"), "{message}");
    // Text before the first MSH.
    let (place, _) = malformed(
        hl7::read("\n\nexport of 2026-03-03\nMSH|^~\\&|A|B|C|D|20260303||ORU^R01|1|P|2.5")
            .unwrap_err(),
    );
    assert_eq!(place, "line 3");
    // A segment that cannot be read, in the second message: line numbers are the file's.
    let text = "MSH|^~\\&|A|B|C|D|20260303||ORU^R01|M1|P|2.5\nPID|1||ZY1\n\
                MSH|^~\\&|A|B|C|D|20260303||ORU^R01|M2|P|2.5\nPID|1||ZY1\nOB\nOBX|1|NM|2524-7^L^LN||4.2|mmol/L|||||F|||202603020730";
    let (place, message) = malformed(hl7::read(text).unwrap_err());
    assert_eq!(place, "message 2, line 5");
    assert!(message.contains("\"OB\""), "{message}");
    // An MSH too short to hold its encoding characters.
    let (place, _) = malformed(hl7::read("MSH|^~").unwrap_err());
    assert_eq!(place, "message 1, line 1");
    // Binary garbage and empty files.
    assert!(matches!(
        hl7::read("\u{0}\u{1}\u{2}\u{3}garbage\u{7f}"),
        Err(ReadError::Malformed { .. })
    ));
    assert!(matches!(hl7::read(""), Err(ReadError::Malformed { .. })));
    assert!(matches!(
        hl7::read("\r\n\n"),
        Err(ReadError::Malformed { .. })
    ));
}

#[test]
fn hl7_odd_but_valid_messages() {
    // v2.7's fifth encoding character (#) and other separators.
    let text = "MSH|^~\\&#|LIS|H|E|T|20260303||ORU^R01|M9|P|2.7\rPID|1||ZY9\rOBX|1|NM|2524-7^Lactate^LN||3.3|mmol/L|||||F|||202603030700+0800";
    let report = hl7::read(text).expect("reads");
    assert_eq!(report.results.len(), 1, "{:?}", report.problems);
    assert_eq!(report.results[0].id, "M9/1");
    let text = "MSH!:@%$!LIS!H!E!T!20260303!!ORU:R01!M8!P!2.5\rPID!1!!ZY8\rOBX!1!NM!2524-7:Lactate:LN!!3%T%3!mmol/L!!!!!F!!!202603030700";
    let report = hl7::read(text).expect("reads");
    assert_eq!(report.results.len(), 1, "{:?}", report.problems);
    assert_eq!(
        (
            report.results[0].patient.as_str(),
            report.results[0].value.as_str()
        ),
        ("ZY8", "3$3")
    );
    // Odd escapes, non-ASCII and unterminated escapes do not panic.
    let text = "MSH|^~\\&|A|B|C|D|20260303||ORU^R01|M7|P|2.5\rPID|1||血\\S\\液\rOBX|1|NM|X^血\\X\\^L||\\Xzz\\5\\|单位\\|||||F|||202603030700";
    let report = hl7::read(text).expect("reads");
    assert_eq!(report.results.len(), 1, "{:?}", report.problems);
    assert_eq!(report.results[0].patient, "血^液");
    assert_eq!(report.results[0].unit, "单位\\");
}

// ------------------------------------------------------------------------------------ tables

fn zh_mapping() -> TableMapping {
    TableMapping {
        patient: "住院号".into(),
        code: "检验项目代码".into(),
        name: Some("检验项目名称".into()),
        value: "结果".into(),
        unit: "单位".into(),
        taken: "采样时间".into(),
        id: Some("报告编号".into()),
        time_format: None,
        codes: BTreeMap::from([
            ("LAC".to_string(), "2524-7".to_string()),
            ("CREA".to_string(), "14682-9".to_string()),
            ("PLT".to_string(), "777-3".to_string()),
            ("HGB".to_string(), "718-7".to_string()),
        ]),
        sheet: None,
    }
}

#[test]
fn csv_chinese_headers_results_exact() {
    let report = table::read_csv(CSV_ZH, &zh_mapping()).expect("reads");
    let t = local("2026-03-02 07:30:00");
    assert_eq!(
        rows(&report),
        vec![
            (
                "R0001",
                "ZY20260017",
                Some("2524-7"),
                "乳酸",
                "4.2",
                "mmol/L",
                t,
                "row 2"
            ),
            // A LOINC code in the code column is taken as it is; 2026/3/2 7:30 is read.
            (
                "R0002",
                "ZY20260017",
                Some("2744-1"),
                "pH",
                "7.28",
                "",
                t,
                "row 3"
            ),
            (
                "R0003",
                "ZY20260017",
                Some("14682-9"),
                "肌酐",
                "451",
                "µmol/L",
                t,
                "row 4"
            ),
            (
                "R0004",
                "ZY20260023",
                Some("777-3"),
                "血小板计数",
                "87",
                "10^9/L",
                zoned("2026-03-02T07:30:00+08:00"),
                "row 5"
            ),
            // Unmapped local code: no LOINC (the plan reports it); no id: the row.
            (
                "row 9",
                "ZY20260023",
                None,
                "钾",
                "4.10",
                "mmol/L",
                local("2026-03-02 08:00:00"),
                "row 9"
            ),
            // A decimal comma in a quoted cell is passed on as written.
            (
                "R0008",
                "ZY20260031",
                Some("2524-7"),
                "乳酸",
                "3,5",
                "mmol/L",
                t,
                "row 11"
            ),
        ]
    );
    assert_eq!(report.problems.len(), 5, "{:#?}", report.problems);
    problem_at(&report, "row 7", &["no value", "结果"]);
    problem_at(
        &report,
        "row 8",
        &["no specimen time", "2026-03-02", "采样时间"],
    );
    problem_at(
        &report,
        "row 12",
        &["02-03-2026 07:30", "not a date and time"],
    );
    problem_at(&report, "row 13", &["5 cells", "报告编号"]);
    problem_at(&report, "row 14", &["8 cells", "header has 7"]);
    // The same rows with CRLF or CR line ends, and with a BOM: the same report.
    let text = std::str::from_utf8(CSV_ZH).expect("utf-8 sample");
    for end in ["\r\n", "\r"] {
        let same = text.replace('\n', end);
        assert_eq!(
            table::read_csv(same.as_bytes(), &zh_mapping()).expect("reads"),
            report,
            "{end:?}"
        );
    }
    let bom = [b"\xEF\xBB\xBF".as_slice(), CSV_ZH].concat();
    assert_eq!(table::read_csv(&bom, &zh_mapping()).expect("reads"), report);
}

#[test]
fn csv_with_bom_semicolons_and_a_time_format() {
    let m = TableMapping {
        patient: "住院号".into(),
        code: "检验项目代码".into(),
        value: "结果".into(),
        unit: "单位".into(),
        taken: "采样时间".into(),
        time_format: Some("%d.%m.%Y %H:%M".into()),
        codes: BTreeMap::from([("LAC".to_string(), "2524-7".to_string())]),
        ..TableMapping::default()
    };
    let report = table::read_csv(CSV_BOM, &m).expect("reads");
    assert_eq!(
        rows(&report),
        vec![(
            "row 2",
            "ZY20260017",
            Some("2524-7"),
            "LAC",
            "4,2",
            "mmol/L",
            local("2026-03-02 07:30:00"),
            "row 2"
        )]
    );
    problem_at(
        &report,
        "row 3",
        &["no specimen time", "a date without a time of day"],
    );
    // Through the lib's entry point, with detection by name.
    let file =
        ecrf_lab::read(Format::detect("export.csv", CSV_BOM), CSV_BOM, Some(&m)).expect("reads");
    assert_eq!((file.format, file.report), (Format::Csv, report));
}

#[test]
fn csv_refusals() {
    // A mapped column missing: its name, role and the columns found.
    let m = TableMapping {
        taken: "报告时间".into(),
        ..zh_mapping()
    };
    match table::read_csv(CSV_ZH, &m).unwrap_err() {
        ReadError::MissingColumn {
            column,
            role,
            found,
        } => {
            assert_eq!((column.as_str(), role), ("报告时间", "specimen time"));
            assert!(
                found.contains("\"采样时间\"") && found.contains("\"住院号\""),
                "{found}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Not UTF-8 (a GB18030 export): refused with the remedy.
    let gb = b"\xd7\xa1\xd4\xba\xba\xc5,\xbd\xe1\xb9\xfb\n1,2\n";
    let (place, message) = malformed(table::read_csv(gb, &zh_mapping()).unwrap_err());
    assert_eq!(place, "line 1");
    assert!(
        message.contains("not UTF-8 (save the export as UTF-8)"),
        "{message}"
    );
    // A header named twice.
    let twice = "住院号,检验项目代码,结果,结果,单位,采样时间\n".as_bytes();
    let m = TableMapping {
        name: None,
        id: None,
        ..zh_mapping()
    };
    let (_, message) = malformed(table::read_csv(twice, &m).unwrap_err());
    assert!(
        message.contains("\"结果\"") && message.contains("columns 3 and 4"),
        "{message}"
    );
    // Empty, and binary garbage that happens to be UTF-8.
    assert!(matches!(
        table::read_csv(b"", &m),
        Err(ReadError::Malformed { .. })
    ));
    assert!(matches!(
        table::read_csv(b"\n\n,,,\n", &m),
        Err(ReadError::Malformed { .. })
    ));
    assert!(matches!(
        table::read_csv(b"\x00\x01\x02,\x03\n\x04", &m),
        Err(ReadError::MissingColumn { .. })
    ));
    assert!(matches!(
        table::read_csv(b"\xff\xfe\x00\x00", &m),
        Err(ReadError::Malformed { .. })
    ));
}

// ------------------------------------------------------------------------------------ Excel

/// A minimal .xlsx (stored zip, inline strings, one date style), built here: calamine only reads.
mod xlsx {
    /// CRC-32 (IEEE), bit by bit.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A zip archive of `files`, stored without compression.
    pub fn zip(files: &[(&str, String)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, body) in files {
            let (name, body) = (name.as_bytes(), body.as_bytes());
            let (crc, size, offset) = (crc32(body), body.len() as u32, out.len() as u32);
            let common = |v: &mut Vec<u8>| {
                v.extend_from_slice(&20u16.to_le_bytes()); // version needed
                v.extend_from_slice(&0x0800u16.to_le_bytes()); // flags: UTF-8 names
                v.extend_from_slice(&0u16.to_le_bytes()); // stored
                v.extend_from_slice(&0u32.to_le_bytes()); // time, date
                v.extend_from_slice(&crc.to_le_bytes());
                v.extend_from_slice(&size.to_le_bytes());
                v.extend_from_slice(&size.to_le_bytes());
                v.extend_from_slice(&(name.len() as u16).to_le_bytes());
                v.extend_from_slice(&0u16.to_le_bytes()); // extra
            };
            out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            common(&mut out);
            out.extend_from_slice(name);
            out.extend_from_slice(body);
            central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            central.extend_from_slice(&20u16.to_le_bytes()); // version made by
            common(&mut central);
            central.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
            central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name);
        }
        let (cd_offset, cd_size) = (out.len() as u32, central.len() as u32);
        out.extend_from_slice(&central);
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&cd_size.to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    /// A cell: `s:` inline string, `d:` date-styled serial, `e:` error, else a number.
    fn cell(r: &str, v: &str) -> String {
        if let Some(s) = v.strip_prefix("s:") {
            format!(r#"<c r="{r}" t="inlineStr"><is><t>{s}</t></is></c>"#)
        } else if let Some(d) = v.strip_prefix("d:") {
            format!(r#"<c r="{r}" s="1"><v>{d}</v></c>"#)
        } else if let Some(e) = v.strip_prefix("e:") {
            format!(r#"<c r="{r}" t="e"><v>{e}</v></c>"#)
        } else if v.is_empty() {
            String::new()
        } else {
            format!(r#"<c r="{r}"><v>{v}</v></c>"#)
        }
    }

    /// A workbook with one sheet `sheet` holding `rows` (row numbers given, 1-based).
    pub fn book(sheet: &str, rows: &[(u32, &[&str])]) -> Vec<u8> {
        let main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
        let rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
        let pkg = "http://schemas.openxmlformats.org/package/2006/relationships";
        let data: String = rows
            .iter()
            .map(|(n, cells)| {
                let cs: String = cells
                    .iter()
                    .enumerate()
                    .map(|(i, v)| cell(&format!("{}{n}", char::from(b'A' + i as u8)), v))
                    .collect();
                format!(r#"<row r="{n}">{cs}</row>"#)
            })
            .collect();
        zip(&[
            (
                "[Content_Types].xml",
                r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>"#.to_string(),
            ),
            (
                "_rels/.rels",
                format!(r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{pkg}"><Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#),
            ),
            (
                "xl/workbook.xml",
                format!(r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" xmlns:r="{rel}"><sheets><sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>"#),
            ),
            (
                "xl/_rels/workbook.xml.rels",
                format!(r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{pkg}"><Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{rel}/styles" Target="styles.xml"/></Relationships>"#),
            ),
            (
                "xl/styles.xml",
                format!(r#"<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="{main}"><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="22" applyNumberFormat="1"/></cellXfs></styleSheet>"#),
            ),
            (
                "xl/worksheets/sheet1.xml",
                format!(r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{main}"><sheetData>{data}</sheetData></worksheet>"#),
            ),
        ])
    }
}

fn xlsx_mapping() -> TableMapping {
    TableMapping {
        patient: "住院号".into(),
        code: "检验项目代码".into(),
        value: "结果".into(),
        unit: "单位".into(),
        taken: "采样时间".into(),
        codes: BTreeMap::from([
            ("LAC".to_string(), "2524-7".to_string()),
            ("CREA".to_string(), "2160-0".to_string()),
        ]),
        sheet: Some("化验结果".into()),
        ..TableMapping::default()
    }
}

fn sample_book() -> Vec<u8> {
    xlsx::book(
        "化验结果",
        &[
            (
                1,
                &[
                    "s: 住院号 ",
                    "s:检验项目代码",
                    "s:结果",
                    "s:单位",
                    "s:采样时间",
                ],
            ),
            // 46083.3125 = 2026-03-02 07:30 in a date-formatted cell.
            (
                2,
                &["s:ZY20260017", "s:LAC", "4.2", "s:mmol/L", "d:46083.3125"],
            ),
            // A record number stored as a number; "5.10" typed as text keeps its zero; a time as text.
            (
                3,
                &[
                    "20260023",
                    "s:CREA",
                    "s:5.10",
                    "s:mg/dL",
                    "s:2026-03-02 08:15",
                ],
            ),
            // 7.30 stored as a number is 7.3.
            (
                4,
                &[
                    "s:ZY20260017",
                    "s:2744-1",
                    "7.30",
                    "s:[pH]",
                    "d:46084.28125",
                ],
            ),
            // Row 5 left empty.
            (
                6,
                &[
                    "s:ZY20260017",
                    "s:LAC",
                    "e:#N/A",
                    "s:mmol/L",
                    "d:46083.3125",
                ],
            ),
            // A time as a bare serial number (no date format).
            (7, &["s:ZY20260017", "s:LAC", "3.1", "s:mmol/L", "46083.5"]),
        ],
    )
}

#[test]
fn xlsx_results_exact() {
    let bytes = sample_book();
    let report = table::read_xlsx(&bytes, &xlsx_mapping()).expect("reads");
    assert_eq!(
        rows(&report),
        vec![
            (
                "row 2",
                "ZY20260017",
                Some("2524-7"),
                "LAC",
                "4.2",
                "mmol/L",
                local("2026-03-02 07:30:00"),
                "row 2"
            ),
            (
                "row 3",
                "20260023",
                Some("2160-0"),
                "CREA",
                "5.10",
                "mg/dL",
                local("2026-03-02 08:15:00"),
                "row 3"
            ),
            (
                "row 4",
                "ZY20260017",
                Some("2744-1"),
                "2744-1",
                "7.3",
                "[pH]",
                local("2026-03-03 06:45:00"),
                "row 4"
            ),
        ]
    );
    assert_eq!(report.problems.len(), 2, "{:#?}", report.problems);
    problem_at(&report, "row 6", &["no value", "结果", "Excel error"]);
    problem_at(&report, "row 7", &["46083.5", "not a date and time"]);
    // The first sheet when none is named; detection by the zip header.
    let m = TableMapping {
        sheet: None,
        ..xlsx_mapping()
    };
    let file = ecrf_lab::read(Format::detect("labs", &bytes), &bytes, Some(&m)).expect("reads");
    assert_eq!((file.format, file.report), (Format::Xlsx, report));
}

#[test]
fn xlsx_refusals() {
    let bytes = sample_book();
    let m = TableMapping {
        sheet: Some("Sheet1".into()),
        ..xlsx_mapping()
    };
    let (place, message) = malformed(table::read_xlsx(&bytes, &m).unwrap_err());
    assert_eq!(place, "sheet \"Sheet1\"");
    assert!(message.contains("\"化验结果\""), "{message}");
    let m = TableMapping {
        unit: "单位 (unit)".into(),
        ..xlsx_mapping()
    };
    assert!(matches!(
        table::read_xlsx(&bytes, &m),
        Err(ReadError::MissingColumn { role: "unit", .. })
    ));
    // Not a workbook, a truncated one, an empty sheet.
    assert!(matches!(
        table::read_xlsx(b"PK\x03\x04garbage", &m),
        Err(ReadError::Malformed { .. })
    ));
    assert!(matches!(
        table::read_xlsx(&bytes[..bytes.len() / 2], &m),
        Err(ReadError::Malformed { .. })
    ));
    let empty = xlsx::book("化验结果", &[]);
    assert!(matches!(
        table::read_xlsx(&empty, &xlsx_mapping()),
        Err(ReadError::Malformed { .. })
    ));
    // A date serial far outside Excel's calendar: a problem, not a panic in the conversion.
    let wild = xlsx::book(
        "化验结果",
        &[
            (
                1,
                &[
                    "s:住院号",
                    "s:检验项目代码",
                    "s:结果",
                    "s:单位",
                    "s:采样时间",
                ],
            ),
            (2, &["s:ZY1", "s:LAC", "1", "s:mmol/L", "d:1e300"]),
        ],
    );
    let report = table::read_xlsx(&wild, &xlsx_mapping()).expect("reads");
    problem_at(&report, "row 2", &["outside Excel's calendar"]);
}

// ------------------------------------------------------------------------------------ no panic

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    /// The sample with some characters replaced by ones that matter to the formats, then cut.
    fn mutated(sample: &str, edits: &[(usize, usize)], cut: usize) -> String {
        const PIECES: [&str; 16] = [
            "|", "^", "~", "\\", "&", "\r", "\n", "\"", ",", "{", "}", "[", "]", "血", "\u{0}",
            "MSH|",
        ];
        let mut chars: Vec<String> = sample.chars().map(String::from).collect();
        for (at, piece) in edits {
            if !chars.is_empty() {
                let i = at % chars.len();
                chars[i] = PIECES[piece % PIECES.len()].to_string();
            }
        }
        let text: String = chars.concat();
        let cut = text
            .char_indices()
            .map(|(i, _)| i)
            .nth(cut % (text.chars().count() + 1))
            .unwrap_or(text.len());
        text[..cut].to_string()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn any_text_reads_or_is_refused(text in ".{0,400}", bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = fhir::read(&text);
            let _ = hl7::read(&text);
            let _ = hl7::read(&format!("MSH|^~\\&|{text}"));
            let _ = table::read_csv(text.as_bytes(), &zh_mapping());
            let _ = table::read_csv(&bytes, &zh_mapping());
            let _ = table::read_xlsx(&bytes, &xlsx_mapping());
        }

        #[test]
        fn damaged_samples_read_or_are_refused(edits in proptest::collection::vec((any::<usize>(), any::<usize>()), 0..12), cut in any::<usize>()) {
            let hl7_text = std::str::from_utf8(ORU).expect("utf-8 sample");
            let csv_text = std::str::from_utf8(CSV_ZH).expect("utf-8 sample");
            let _ = fhir::read(&mutated(BUNDLE, &edits, cut));
            let _ = hl7::read(&mutated(hl7_text, &edits, cut));
            let _ = table::read_csv(mutated(csv_text, &edits, cut).as_bytes(), &zh_mapping());
        }
    }
}
