//! Derived values (BMI, VIS, pulse pressure, IABP delay) are the same wherever they are read:
//! the app's form page, `ecrf form show`, the printed CRF (pdftotext), and every export format
//! (CSV, R, Stata, SPSS, SAS read back by R and haven; ODM); and where one cannot be computed,
//! each shows its missing-data code, never a blank.

use std::path::Path;
use std::process::Command;

use ecrf_store::{SaveOptions, Store};
use ecrf_testkit::{DATA_MANAGER, Site, open_as, randomized_subject};

mod common;
use common::{ADMIN_USER, NURSE_PW, NURSE_USER, ecrf, ok};

fn save(s: &mut Store, subject: &str, form: &str, entries: &[(&str, &str)]) {
    let key = ecrf_core::FormKey::parse(s.study(), form).unwrap();
    let opts = SaveOptions {
        reason: None,
        confirm_warnings: true,
    };
    s.save(subject, &key, entries, &opts)
        .unwrap_or_else(|e| panic!("{subject} {form}: {e}"));
}

fn pdf_lines(pdf: &Path) -> Vec<String> {
    let out = Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (scripts/setup.sh installs poppler-utils)");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The line of `lines` that starts with `label`, for the value after it.
fn line_of<'a>(lines: &'a [String], label: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(&format!("{label} ")))
        .unwrap_or_else(|| panic!("no line {label} in:\n{}", lines.join("\n")))
}

/// The value `ecrf form show` prints for an item.
fn shown(out: &str, item: &str) -> String {
    out.lines()
        .find(|l| l.trim_start().starts_with(&format!("{item} ")))
        .unwrap_or_else(|| panic!("no {item} in:\n{out}"))
        .to_string()
}

#[test]
fn derived_values_agree_in_the_app_the_cli_the_pdf_and_every_export() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.ecrf");
    drop(
        Site::new("01")
            .admin(ADMIN_USER)
            .with(NURSE_USER)
            .with(DATA_MANAGER)
            .with_lease(8, [3; 32])
            .create(&path),
    );
    let mut s = open_as(&path, &NURSE_USER);
    // 01-0001: everything computable. 01-0002: inputs missing.
    let (full, _) = randomized_subject(&mut s, "01-001");
    let (gaps, _) = randomized_subject(&mut s, "01-002");
    for id in [&full, &gaps] {
        save(
            &mut s,
            id,
            "ECMO",
            &[("START_DT", "2026-03-01T09:00+08:00")],
        );
    }
    save(
        &mut s,
        &full,
        "BAS",
        &[
            ("HEIGHT", "170"),
            ("WEIGHT", "70"),
            ("DOPAMINE", "5"),
            ("DOBUTAMINE", "0"),
            ("EPINEPHRINE", "0.05"),
            ("NOREPINEPHRINE", "0.1"),
            ("MILRINONE", "0.25"),
            ("VASOPRESSIN", "0.0004"),
        ],
    );
    save(
        &mut s,
        &full,
        "DLY#1",
        &[
            ("DATE", "2026-03-02"),
            ("SBP", "92"),
            ("DBP", "80"),
            ("DOPAMINE", "0"),
            ("DOBUTAMINE", "0"),
            ("EPINEPHRINE", "0"),
            ("NOREPINEPHRINE", "0.3"),
            ("MILRINONE", "0"),
            ("VASOPRESSIN", "0"),
        ],
    );
    save(
        &mut s,
        &full,
        "IABP",
        &[("INSERTED", "Y"), ("INSERT_DT", "2026-03-01T11:30+08:00")],
    );
    save(
        &mut s,
        &gaps,
        "BAS",
        &[("HEIGHT", "170"), ("DOPAMINE", "5")],
    );
    save(
        &mut s,
        &gaps,
        "DLY#1",
        &[("DATE", "2026-03-02"), ("SBP", "92"), ("DBP", "@ND")],
    );
    save(&mut s, &gaps, "IABP", &[("INSERTED", "Y")]);
    drop(s);

    // (form, item, value for 01-0001, text of its value in `form show` and the PDF)
    let expected = [
        ("BAS", "BMI", "24.2", "24.2 kg/m²"), // 70 / 1.70² = 24.22
        ("BAS", "VIS", "26.5", "26.5"),       // 5 + 0 + 5 + 10 + 2.5 + 4
        ("DLY#1", "PULSE_PRESSURE", "12", "12 mmHg"),
        ("DLY#1", "VIS", "30.0", "30.0"),
        ("IABP", "DELAY_MIN", "150", "150 min"),
    ];

    // The app's form page.
    let mut app = ecrf_app::App::new(path.clone(), dir.path().join("demo.ecrf")).unwrap();
    app.login(NURSE_USER.username, NURSE_PW).unwrap();
    for (form, item, value, _) in expected {
        let derived = |subject: &str| {
            app.form(subject, form)
                .unwrap()
                .derived
                .into_iter()
                .find(|d| d.item == item)
                .map(|d| d.text)
        };
        assert_eq!(derived(&full).as_deref(), Some(value), "app {form} {item}");
        assert_eq!(derived(&gaps).as_deref(), Some("@UNK"), "app {form} {item}");
    }
    drop(app);

    // The command line.
    let nurse = |args: &[&str]| ecrf(&path, NURSE_USER.username, NURSE_PW, args);
    for (form, item, _, text) in expected {
        let line = shown(&ok(&nurse(&["form", "show", &full, form])), item);
        assert!(line.ends_with(&format!(" {text}")), "form show: {line}");
        let line = shown(&ok(&nurse(&["form", "show", &gaps, form])), item);
        assert!(line.ends_with(" @UNK (Unknown)"), "form show: {line}");
    }

    // The printed CRF.
    let print = |subject: &str| {
        let pdf = dir.path().join(format!("{subject}.pdf"));
        ok(&nurse(&[
            "print",
            "subject",
            subject,
            "-o",
            pdf.to_str().unwrap(),
        ]));
        pdf_lines(&pdf)
    };
    let (full_pdf, gaps_pdf) = (print(&full), print(&gaps));
    for (label, text) in [
        ("BMI", "24.2 kg/m²"),
        ("Pulse pressure", "12 mmHg"),
        ("Delay from ECMO start", "150 min"),
    ] {
        assert!(line_of(&full_pdf, label).contains(text), "PDF {label}");
        assert!(
            line_of(&gaps_pdf, label).contains("@UNK Unknown"),
            "PDF {label}"
        );
    }
    let vis: Vec<&String> = full_pdf
        .iter()
        .filter(|l| l.starts_with("Vasoactive-inotropic score"))
        .collect();
    assert!(
        vis.iter().any(|l| l.contains("26.5")) && vis.iter().any(|l| l.contains("30.0")),
        "PDF VIS: {vis:?}"
    );

    // Every export format, as the data manager exports it.
    let out = dir.path().join("export");
    ok(&ecrf(
        &path,
        DATA_MANAGER.username,
        DATA_MANAGER.password,
        &["export", "all", "-o", out.to_str().unwrap()],
    ));
    // CSV: the value, and the missing-data code where it cannot be computed.
    for (form, item, value, _) in expected {
        let file = out.join(format!(
            "{}.csv",
            form.split('#').next().unwrap().to_lowercase()
        ));
        let csv = std::fs::read_to_string(&file).unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = header.iter().position(|h| *h == item).unwrap();
        let cell = |subject: &str| -> String {
            csv.lines()
                .find(|l| l.starts_with(&format!("{subject},")))
                .map(|l| l.split(',').nth(col).unwrap().to_string())
                .unwrap()
        };
        assert_eq!(cell(&full), value, "CSV {form} {item}");
        assert_eq!(cell(&gaps), "@UNK", "CSV {form} {item}");
    }
    // R (read_ecrf.R), Stata, SPSS and SAS read back by haven.
    let check = format!(
        r#"
suppressMessages(library(haven))
dir <- commandArgs(trailingOnly = TRUE)[1]
source(file.path(dir, "read_ecrf.R"))
full <- "{full}"; gaps <- "{gaps}"
for (f in list(c("bas", "BMI", 24.2), c("bas", "VIS", 26.5), c("dly", "PULSE_PRESSURE", 12),
               c("dly", "VIS", 30), c("iabp", "DELAY_MIN", 150))) {{
  form <- f[1]; item <- f[2]; value <- as.numeric(f[3])
  r <- ecrf[[toupper(form)]]
  stopifnot(r[[item]][r$SUBJECT == full] == value, is.na(r[[item]][r$SUBJECT == gaps]))
  stopifnot(as.character(r[[paste0(item, "_MISS")]][r$SUBJECT == gaps]) == "Unknown")
  dta <- read_dta(file.path(dir, paste0(form, ".dta")))
  stopifnot(dta[[item]][dta$SUBJECT == full] == value, na_tag(dta[[item]][dta$SUBJECT == gaps]) == "u")
  sav <- read_sav(file.path(dir, paste0(form, ".sav")), user_na = TRUE)
  stopifnot(sav[[item]][sav$SUBJECT == full] == value, as.numeric(sav[[item]][sav$SUBJECT == gaps]) == -998)
  xpt <- read_xpt(file.path(dir, paste0(form, ".xpt")))
  stopifnot(xpt[[item]][xpt$SUBJECT == full] == value, tolower(na_tag(xpt[[item]][xpt$SUBJECT == gaps])) == "u")
}}
cat("R OK\n")
"#
    );
    let script = dir.path().join("check.R");
    std::fs::write(&script, check).unwrap();
    let run = Command::new("Rscript")
        .arg(&script)
        .arg(&out)
        .output()
        .expect("Rscript (scripts/setup.sh installs r-base-core, r-cran-haven)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.contains("R OK"),
        "R failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // ODM: an ItemData per derived value, in each subject's own form data.
    let odm_file = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-odm.xml"))
        .unwrap();
    let odm = std::fs::read_to_string(odm_file).unwrap();
    let subject_data = |subject: &str| -> String {
        let start = odm
            .find(&format!("<SubjectData SubjectKey=\"{subject}\""))
            .unwrap();
        let end = odm[start..].find("</SubjectData>").unwrap();
        odm[start..start + end].to_string()
    };
    let (full_odm, gaps_odm) = (subject_data(&full), subject_data(&gaps));
    for (form, item, value, _) in expected {
        let oid = format!("ItemOID=\"IT.{}.{item}\"", form.split('#').next().unwrap());
        assert!(
            full_odm.contains(&format!("{oid} Value=\"{value}\"")),
            "ODM {form} {item}"
        );
        assert!(
            gaps_odm.contains(&format!("{oid} Value=\"@UNK\"")),
            "ODM {form} {item}"
        );
    }
}

#[test]
fn a_derivation_that_does_not_apply_is_not_applicable_not_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.ecrf");
    drop(
        Site::new("01")
            .admin(ADMIN_USER)
            .with(NURSE_USER)
            .with_lease(8, [3; 32])
            .create(&path),
    );
    let mut s = open_as(&path, &NURSE_USER);
    let (id, r) = randomized_subject(&mut s, "01-001");
    save(
        &mut s,
        &id,
        "ECMO",
        &[("START_DT", "2026-03-01T09:00+08:00")],
    );
    save(&mut s, &id, "IABP", &[("INSERTED", "N")]);
    let key = ecrf_core::FormKey::parse(s.study(), "IABP").unwrap();
    let d = s.derived_values(&id, &key).unwrap();
    let na = ecrf_core::Value::Missing(ecrf_core::MissingCode::NotApplicable);
    // No IABP: no delay. The deviation applies to the ECMO+IABP arm only, crossover to the
    // ECMO arm only.
    assert_eq!(d["DELAY_MIN"], na);
    if r.arm == "ECMO_IABP" {
        assert_eq!(d["DEVIATION"].to_string(), "Y");
        assert_eq!(d["CROSSOVER"], na);
    } else {
        assert_eq!(d["DEVIATION"], na);
        assert_eq!(d["CROSSOVER"].to_string(), "N");
    }
    let out = ok(&ecrf(
        &path,
        NURSE_USER.username,
        NURSE_PW,
        &["form", "show", &id, "IABP"],
    ));
    assert!(
        shown(&out, "DELAY_MIN").ends_with("@NA (Not applicable)"),
        "{out}"
    );
}
