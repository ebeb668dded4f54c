//! The scripted trial exported in every format and read back by real readers: R reads the CSVs
//! through the generated script, and haven reads the Stata, SPSS and SAS files; row counts,
//! labels, missing-data codes and values are checked against the store's data.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{REASON, TRICKY, scripted_trial, study, trial_data};
use ecrf_core::Value;
use ecrf_export::rscript::r_str;
use ecrf_export::{ExportOptions, Format, TrialData, export};

/// Rows each form should have: form instances holding at least one value.
fn expected_rows(data: &TrialData) -> BTreeMap<String, usize> {
    let mut rows: BTreeMap<String, usize> =
        study().forms.iter().map(|f| (f.id.clone(), 0)).collect();
    for by_instance in data.values.values() {
        for (inst, values) in by_instance {
            if values.is_empty() {
                continue;
            }
            let form = inst.split('#').next().unwrap_or_default();
            *rows.get_mut(form).expect("known form") += 1;
        }
    }
    rows
}

fn subject_where(data: &TrialData, form: &str, item: &str, code: &str) -> String {
    data.values
        .iter()
        .find(|(_, v)| v.get(form).and_then(|f| f.get(item)) == Some(&Value::Code(code.into())))
        .map(|(s, _)| s.clone())
        .unwrap_or_else(|| panic!("no subject with {form}.{item} = {code}"))
}

fn rscript() -> &'static str {
    if Command::new("Rscript").arg("--version").output().is_err() {
        panic!("Rscript is not installed: run scripts/setup.sh (r-base-core, r-cran-haven)");
    }
    "Rscript"
}

#[test]
fn every_format_is_read_back_by_r_and_haven() {
    let dir = tempfile::tempdir().unwrap();
    let stores = scripted_trial(dir.path());
    let data = trial_data(&stores);
    assert_eq!(data.sites.len(), 2);
    let rows = expected_rows(&data);
    assert_eq!(rows["RND"], 6, "six randomized subjects");
    let out = dir.path().join("export");
    let report = export(
        &study(),
        &data,
        &Format::ALL,
        &ExportOptions {
            include_audit: true,
            ..ExportOptions::default()
        },
        &out,
    )
    .unwrap();
    for (form, n) in &report.rows {
        if form == ecrf_export::analysis::NAME {
            assert_eq!(*n, 6, "one row per randomized subject");
        } else {
            assert_eq!(rows[form], *n, "rows of {form}");
        }
    }
    // The primary endpoint as core derives it, for every randomized subject.
    let now = chrono::Utc::now();
    let mut endpoint_subjects = Vec::new();
    let mut endpoint_labels = Vec::new();
    for s in &data.subjects {
        let o = ecrf_core::outcome::subject_outcome(&data.values[&s.subject], now);
        if o.arm.is_some() {
            endpoint_subjects.push(r_str(&s.subject));
            endpoint_labels.push(r_str(match o.primary_endpoint {
                ecrf_core::outcome::Answer::Yes => "Yes",
                ecrf_core::outcome::Answer::No => "No",
                ecrf_core::outcome::Answer::Unknown => "Unknown",
            }));
        }
    }
    assert!(
        endpoint_labels.iter().any(|l| l.contains("Yes")),
        "a death before day 30"
    );
    assert!(
        endpoint_labels.iter().any(|l| l.contains("No")),
        "a survivor"
    );
    assert!(
        endpoint_labels.iter().any(|l| l.contains("Unknown")),
        "lost to follow-up"
    );

    // The CSV itself: the tricky text quoted, missing codes distinct from empty, ISO 8601.
    let eos = std::fs::read_to_string(out.join("eos.csv")).unwrap();
    let quoted = format!("\"{}\"", TRICKY.replace('"', "\"\""));
    assert!(eos.contains(&quoted), "{eos}");
    let dly = std::fs::read_to_string(out.join("dly.csv")).unwrap();
    assert!(
        dly.contains(",@ND,"),
        "a missing-data code in the daily log"
    );
    let ecmo = std::fs::read_to_string(out.join("ecmo.csv")).unwrap();
    assert!(ecmo.contains("2026-03-01T09:00:00+08:00"), "{ecmo}");
    let dict = std::fs::read_to_string(out.join("dictionary.csv")).unwrap();
    assert!(
        dict.contains("1, Yes | 0, No"),
        "yes/no code list in the dictionary"
    );
    assert!(
        dict.contains("[0, 300]") || dict.contains("[20, 250]"),
        "ranges in the dictionary"
    );
    let audit = std::fs::read_to_string(out.join("audit_trail.csv")).unwrap();
    assert!(
        audit.contains(REASON),
        "the reason of a change in the audit trail"
    );
    // Every change carries its author's signature, and the keys that check it are exported:
    // checked here from the two CSV files alone, as a sponsor would.
    let keys_csv = std::fs::read_to_string(out.join("author_keys.csv")).unwrap();
    let mut keys: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for f in csv_records(&keys_csv).into_iter().skip(1) {
        keys.entry((f[0].clone(), f[1].clone()))
            .or_default()
            .push(f[2].clone());
    }
    assert!(keys.keys().any(|(_, u)| u == "nurse"), "{keys_csv}");
    let mut checked = 0;
    for f in csv_records(&audit).into_iter().skip(1) {
        // site, seq, change_id, device, device_seq, kind, subject, form, item, old, new, user
        // (11), role, utc, offset, reason, hash (16), signature (17).
        let (site, user, hash, signature) = (&f[0], &f[11], &f[16], &f[17]);
        let message = format!("ecrf-change-signature-v1|{hash}");
        let author_keys = keys
            .get(&(site.clone(), user.clone()))
            .cloned()
            .unwrap_or_default();
        assert!(
            author_keys.iter().any(|k| ecrf_log::author::verifies(
                k,
                message.as_bytes(),
                signature
            )),
            "change {hash} by {user} at {site} verifies from the exported files"
        );
        checked += 1;
    }
    assert!(checked > 10, "{checked} signatures checked");

    let lost = subject_where(&data, "EOS", "EOS_STATUS", "LOST");
    let died = subject_where(&data, "EOS", "EOS_STATUS", "DIED");
    let s = study();
    let dly_def = s.form("DLY").unwrap();
    let hr = dly_def.item("HR").unwrap();
    let hr_label_stat = format!(
        "{} / {}{}",
        hr.label.en,
        hr.label.zh,
        hr.unit
            .as_ref()
            .map(|u| format!(" ({u})"))
            .unwrap_or_default()
    );
    let arm_labels: Vec<String> = s
        .codes_for(s.form("RND").unwrap().item("ARM").unwrap())
        .iter()
        .map(|c| r_str(&c.label.en))
        .collect();
    let forms: Vec<String> = rows.keys().map(|f| r_str(f)).collect();
    let counts: Vec<String> = rows.values().map(|n| n.to_string()).collect();
    let check = format!(
        r#"
suppressMessages(library(haven))
dir <- commandArgs(trailingOnly = TRUE)[1]
source(file.path(dir, "read_ecrf.R"))
forms <- c({forms})
counts <- c({counts})
for (i in seq_along(forms)) {{
  f <- forms[i]
  stopifnot(nrow(ecrf[[f]]) == counts[i])
  for (ext in c("dta", "sav", "xpt")) {{
    p <- file.path(dir, paste0(tolower(f), ".", ext))
    d <- switch(ext, dta = read_dta(p), sav = read_sav(p, user_na = TRUE), xpt = read_xpt(p))
    if (nrow(d) != counts[i]) stop(sprintf("%s: %d rows, expected %d", p, nrow(d), counts[i]))
  }}
}}
lost <- {lost}; died <- {died}; tricky <- {tricky}
dta <- read_dta(file.path(dir, "dly.dta")); sav <- read_sav(file.path(dir, "dly.sav"), user_na = TRUE)
xpt <- read_xpt(file.path(dir, "dly.xpt"))
r <- which(ecrf$DLY$SUBJECT == lost & ecrf$DLY$DAY == 1)
stopifnot(length(r) == 1, ecrf$DLY$HR[r] == 123, dta$HR[r] == 123, sav$HR[r] == 123, xpt$HR[r] == 123)
stopifnot(attr(ecrf$DLY$HR, "label") == {hr_en})
stopifnot(attr(dta$HR, "label") == {hr_stat}, attr(sav$HR, "label") == {hr_stat})
# Missing-data codes: NA + reason in R, tagged .d in Stata and SAS, user-missing -997 in SPSS.
stopifnot(is.na(ecrf$DLY$LACTATE[r]), as.character(ecrf$DLY$LACTATE_MISS[r]) == "Not done")
stopifnot(is.na(dta$LACTATE[r]), na_tag(dta$LACTATE[r]) == "d")
stopifnot(as.numeric(sav$LACTATE[r]) == -997, is.na(zap_missing(sav$LACTATE)[r]))
stopifnot(is.na(xpt$LACTATE[r]), tolower(na_tag(xpt$LACTATE[r])) == "d")
stopifnot(!is.na(ecrf$DLY$LACTATE[which(ecrf$DLY$SUBJECT == lost & ecrf$DLY$DAY == 0)]))
d30 <- read_dta(file.path(dir, "d30.dta")); r30 <- which(d30$SUBJECT == lost)
stopifnot(na_tag(d30$REHOSP[r30]) == "u", as.character(ecrf$D30$REHOSP_MISS[ecrf$D30$SUBJECT == lost]) == "Unknown")
stopifnot(as.character(as_factor(d30$VITAL_STATUS[d30$SUBJECT == died])) == "Dead / 死亡")
stopifnot(as.character(ecrf$D30$VITAL_STATUS[ecrf$D30$SUBJECT == died]) == "Dead")
# Both arms, as labelled factors.
stopifnot(identical(levels(ecrf$RND$ARM), c({arms})), length(unique(ecrf$RND$ARM)) == 2)
stopifnot(length(unique(read_dta(file.path(dir, "rnd.dta"))$ARM)) == 2)
# Dates and times: UTC in R from the CSV; local clock time in the statistics files.
stopifnot(format(ecrf$ECMO$START_DT[1], "%Y-%m-%d %H:%M", tz = "UTC") == "2026-03-01 01:00")
stopifnot(format(read_dta(file.path(dir, "ecmo.dta"))$START_DT[1], "%Y-%m-%d %H:%M") == "2026-03-01 09:00")
stopifnot(format(read_sav(file.path(dir, "ecmo.sav"))$START_DT[1], "%Y-%m-%d %H:%M") == "2026-03-01 09:00")
stopifnot(format(read_xpt(file.path(dir, "ecmo.xpt"))$START_DT[1], "%Y-%m-%d %H:%M") == "2026-03-01 09:00")
stopifnot(ecrf$DLY$DATE[1] == as.Date("2026-03-01"), read_dta(file.path(dir, "dly.dta"))$DATE[1] == as.Date("2026-03-01"))
# The tricky text: intact in R, Stata and SPSS; escaped to ASCII in SAS transport.
e <- ecrf$EOS; stopifnot(e$EOS_REASON[e$SUBJECT == lost] == tricky)
stopifnot(read_dta(file.path(dir, "eos.dta"))$EOS_REASON[e$SUBJECT == lost] == tricky)
stopifnot(read_sav(file.path(dir, "eos.sav"))$EOS_REASON[e$SUBJECT == lost] == tricky)
stopifnot(read_xpt(file.path(dir, "eos.xpt"))$EOS_REASON[e$SUBJECT == lost] == {tricky_ascii})
# The subject-level analysis file: the endpoint of core's derivation for every subject.
sj <- ecrf$SUBJECTS; ep_subjects <- c({ep_subjects}); ep <- c({ep_labels})
stopifnot(nrow(sj) == length(ep), identical(as.character(sj$PRIMARY_ENDPOINT[match(ep_subjects, sj$SUBJECT)]), ep))
sjd <- read_dta(file.path(dir, "subjects.dta"))
stopifnot(identical(as.character(as_factor(sjd$PRIMARY_ENDPOINT))[match(ep_subjects, sjd$SUBJECT)],
                    paste0(ep, " / ", c(Yes = "是", No = "否", Unknown = "不详")[ep])))
stopifnot(nrow(read_sav(file.path(dir, "subjects.sav"))) == length(ep), nrow(read_xpt(file.path(dir, "subjects.xpt"))) == length(ep))
stopifnot(sj$DAYS_ALIVE[sj$SUBJECT == died] == 5, sj$IABP_DELAY_H[!is.na(sj$IABP_DELAY_H)][1] == 2.5)
cat("R OK\n")
"#,
        forms = forms.join(", "),
        counts = counts.join(", "),
        lost = r_str(&lost),
        died = r_str(&died),
        tricky = r_str(TRICKY),
        tricky_ascii = r_str(&ecrf_export::readstat::ascii(TRICKY)),
        hr_en = r_str(&hr.label.en),
        hr_stat = r_str(&hr_label_stat),
        arms = arm_labels.join(", "),
        ep_subjects = endpoint_subjects.join(", "),
        ep_labels = endpoint_labels.join(", "),
    );
    let script = dir.path().join("check.R");
    std::fs::write(&script, check).unwrap();
    let run = Command::new(rscript())
        .arg(&script)
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success() && stdout.contains("R OK"),
        "R failed:\n{stdout}\n{stderr}"
    );
}

/// The records of a CSV text (RFC 4180: quoted fields may hold commas, quotes and line breaks).
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = vec![String::new()];
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                record.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => record.push(String::new()),
            ('\r', false) => {}
            ('\n', false) => records.push(std::mem::replace(&mut record, vec![String::new()])),
            (c, _) => record.last_mut().unwrap().push(c),
        }
    }
    if record.len() > 1 || !record[0].is_empty() {
        records.push(record);
    }
    records
}
