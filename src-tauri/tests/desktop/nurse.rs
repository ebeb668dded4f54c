//! A nurse sets the laptop up, enters a baseline form, finds it after a restart and randomizes.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::driver::{Driver, WAIT};
use crate::harness::desktop;
use crate::seeds::{HOSTILE_REASON, iabp_arm_subject_three_days_ago, load_lease};
use crate::steps::{consent_in_window, login, print_subject, screen_in_window};

#[test]
pub(crate) fn a_nurse_sets_up_enters_a_baseline_form_finds_it_after_a_restart_and_randomizes() {
    let data = tempfile::tempdir().expect("temp folder");
    let desk = desktop(data.path());

    // First run: set-up, recovery key, a nurse added by the administrator.
    let d = Driver::start(&desk);
    d.find("#start-setup");
    d.screenshot("01-first-run");
    d.click("#start-setup");
    d.set("#setup-name", "Wang Admin");
    d.set("#setup-password", "admin-password-1");
    d.set("#setup-password2", "admin-password-1");
    d.click("#setup-submit");
    let key = d.wait_text("#recovery-key", &["-"]);
    assert_eq!(key.trim().len(), 64, "recovery key {key:?}");
    d.screenshot("02-recovery-key");
    d.click("#recovery-stored");
    d.click("#recovery-continue");
    d.set("#user-username", "li");
    d.set("#user-name", "Li Na 李娜");
    d.set("#user-password", "nurse-password-1");
    d.click("#user-add");
    d.find("[data-user='li']");
    d.screenshot("03-users");
    d.click("#lock");

    // The nurse logs in, creates a subject and opens the baseline form.
    login(&d, "li", "nurse-password-1");
    d.click("#new-subject");
    d.click("button[data-key='BAS']");
    d.find("#f-HEIGHT");
    // A question asked only for another answer ("other cause" of shock) is not shown.
    assert!(
        !d.displayed("#row-SHOCK_CAUSE_OTH"),
        "an unasked item is shown"
    );
    assert!(d.displayed("#row-HEIGHT"));
    d.screenshot("04-baseline-empty");

    // One value out of range: refused, the error beside the field, nothing saved.
    d.type_in("#f-HEIGHT", "300");
    d.type_in("#f-WEIGHT", "70");
    d.click("#save");
    let err = d.wait_text("#m-HEIGHT", &["100–250"]);
    assert!(err.contains("300"), "{err}");
    d.screenshot("05-error-beside-field");

    // Fixed and saved.
    d.set("#f-HEIGHT", "172");
    d.click("#save");
    d.wait_text("#form-notice", &["Saved"]);
    d.wait_text("#f-BMI", &["23.7"]);
    d.screenshot("06-saved");
    d.quit();

    // Relaunch: log in again and find the value.
    let d = Driver::start(&desk);
    login(&d, "li", "nurse-password-1");
    d.click("button[data-subject='01-0001']");
    d.click("button[data-key='BAS']");
    d.find("#f-HEIGHT");
    let deadline = Instant::now() + WAIT;
    while d.value("#f-HEIGHT") != "172" {
        assert!(
            Instant::now() < deadline,
            "HEIGHT reads {:?} after relaunch",
            d.value("#f-HEIGHT")
        );
        sleep(Duration::from_millis(150));
    }
    assert_eq!(d.value("#f-WEIGHT"), "70");
    d.screenshot("07-after-relaunch");

    // Change it: the reason prompt, then the field's history.
    d.set("#f-HEIGHT", "171");
    d.click("#save");
    d.find("#reason-dialog");
    d.screenshot("08-reason-prompt");
    // The reason carries markup and SQL: stored and shown literally (as text, never run).
    d.type_in("#reason-input", HOSTILE_REASON);
    d.click("#reason-save");
    d.wait_text("#form-notice", &["Saved"]);
    d.click("#h-HEIGHT");
    let history = d.wait_text("#history", &["172", "171", HOSTILE_REASON, "li (nurse)"]);
    assert!(
        history.contains("∅"),
        "the first entry shows no old value: {history}"
    );
    d.screenshot("09-history");

    // Print the subject's CRF from the app: a real PDF with the values and the audit trail.
    d.click("#history-close");
    d.click("#back");
    let (path, text) = print_subject(&d, &data.path().join("printouts"));
    assert!(
        Path::new(&path).starts_with(data.path()),
        "printout outside the store folder: {path}"
    );
    for needle in ["01-0001", "171", "misread the tape", "NCT06872021"] {
        assert!(
            text.contains(needle),
            "{needle} missing from the printed CRF"
        );
    }
    let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    for needle in ["<imgsrc=xonerror=alert(1)>", "');DROPTABLEsubjects;--"] {
        assert!(
            squeezed.contains(needle),
            "{needle} not printed literally in the CRF"
        );
    }
    d.screenshot("10-printed");
    d.quit();

    // Randomization. The administrator loads a lease of sealed envelopes made by the CLI's
    // generator (there is no lease screen yet); everything else is done in the window.
    load_lease(&data.path().join("ward.ecrf"));
    let d = Driver::start(&desk);
    login(&d, "li", "nurse-password-1");
    d.click("button[data-subject='01-0001']");
    // Not screened yet: refused, with the reasons on screen.
    d.click("#randomize");
    d.wait_text("#rnd-message", &["not eligible", "I1", "E9"]);
    screen_in_window(&d);
    // Eligible but no consent yet.
    d.click("#randomize");
    d.wait_text("#rnd-message", &["no consent"]);
    consent_in_window(&d);
    d.click("#randomize");
    let arm = d.wait_text("#rnd-arm", &["Randomized", "01-R0001", "li"]);
    assert!(
        arm.contains("ECMO+IABP") || arm.contains("ECMO (no mechanical"),
        "{arm}"
    );
    // ECMO started an hour ago: about 5 hours left, counting down.
    let first = d.wait_text("#rnd-countdown", &["time left: 4 h 5"]);
    sleep(Duration::from_millis(2100));
    let later = d.text("#rnd-countdown");
    assert_ne!(first, later, "the countdown moves");
    d.screenshot("11-randomized-arm-and-countdown");
    // A second attempt is refused and changes nothing.
    d.click("#randomize");
    d.wait_text("#rnd-message", &["already randomized as 01-R0001"]);
    assert!(d.text("#rnd-arm").contains("01-R0001"));
    d.quit();

    // The data manager exports every format from the Export page, with its progress.
    let d = Driver::start(&desk);
    login(&d, "admin", "admin-password-1");
    d.set("#user-username", "zhou");
    d.set("#user-name", "Zhou Min 周敏");
    d.click("#user-role option[value='data_manager']");
    d.set("#user-password", "dm-password-1");
    d.click("#user-add");
    d.find("[data-user='zhou']");
    d.click("#lock");
    login(&d, "zhou", "dm-password-1");
    d.click("#nav-export");
    let folder = data.path().join("exports").join("desktop");
    d.set("#export-folder", &folder.display().to_string());
    d.click("#export-run");
    d.wait_text(
        "#export-files",
        &["csv:", "stata:", "spss:", "sas:", "odm:"],
    );
    d.wait_text(
        "#export-status",
        &["Exported", "recorded in the audit trail"],
    );
    for f in [
        "rnd.csv",
        "dictionary.csv",
        "read_ecrf.R",
        "rnd.dta",
        "rnd.sav",
        "rnd.xpt",
        "subjects.csv",
        "early-iabp-odm.xml",
    ] {
        assert!(folder.join(f).exists(), "{f} was not exported");
    }
    d.screenshot("12-export");
    d.quit();
    // Clinical forms: a subject of the ECMO+IABP arm randomized three days ago (set up through
    // the store, as a script would), daily logs for day 1 and day 2 entered in the window, the
    // trend chart with two points, and the 6-hour deviation flag once the late IABP is saved.
    let (subject, start) = iabp_arm_subject_three_days_ago(&data.path().join("ward.ecrf"));
    let day0 = start.date_naive();
    let d = Driver::start(&desk);
    login(&d, "li", "nurse-password-1");
    d.click(&format!("button[data-subject='{subject}']"));
    d.click("button[data-key='DLY#1']");
    d.type_in("#f-DATE", &(day0 + chrono::Duration::days(1)).to_string());
    d.pick("#f-ECMO_STATUS-RUNNING");
    d.type_in("#f-FLOW", "4.10");
    d.type_in("#f-MAP", "66");
    d.type_in("#f-LACTATE", "4.8");
    d.pick("#save");
    d.wait_text("#form-notice", &["Saved"]);
    d.pick("#back");
    // The next daily log (one keystroke, D, or this button): day 2, dated, with day 1's
    // device settings to confirm.
    d.click("#next-daily-log");
    d.wait_text("#form-notice", &["copied from DLY#1"]);
    assert_eq!(d.value("#f-FLOW"), "4.10");
    assert_eq!(
        d.value("#f-DATE"),
        (day0 + chrono::Duration::days(2)).to_string()
    );
    d.type_in("#f-MAP", "72");
    d.type_in("#f-LACTATE", "3.1");
    d.pick("#save");
    d.wait_text("#form-notice", &["Saved"]);
    d.find("#trends figure[data-chart='lactate'][data-points='2']");
    d.screenshot("12-daily-log-with-trends");
    d.pick("#back");
    d.find("#trends figure[data-chart='lactate'][data-points='2']");
    d.find("#trends figure[data-chart='map'][data-points='2']");
    // The IABP went in 6 h 10 min after the ECMO start: a protocol deviation, with its reason.
    d.click("button[data-key='IABP']");
    d.pick("#f-INSERTED-Y");
    let late = start + chrono::Duration::minutes(370);
    d.type_in(
        "#f-INSERT_DT",
        &late.format("%Y-%m-%dT%H:%M+00:00").to_string(),
    );
    d.pick("#save");
    d.wait_text("#form-notice", &["Saved"]);
    d.pick("#back");
    d.wait_text(
        "#flags li[data-flag='IABP_LATE']",
        &["Protocol deviation", "6 h 10 min"],
    );
    d.wait_text("#outcome-deviation", &["Yes"]);
    d.find("#trends line[data-mark='iabp_in']");
    d.screenshot("13-deviation-flag-and-trends");
    d.scroll_to("#outcomes");
    d.screenshot("14-outcomes-and-flags");
    d.quit();
}
