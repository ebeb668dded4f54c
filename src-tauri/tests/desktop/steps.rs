//! Steps a user takes that several scenarios share: log in, screen and consent inside the window, correct a value, print.

use std::path::Path;
use std::process::Command;

use crate::driver::Driver;
use crate::seeds::ago;

/// Prints the open subject's CRF from the app into `folder` (chosen as the user's printout
/// folder, as the folder picker would); returns the PDF's path and its text (pdftotext).
pub(crate) fn print_subject(d: &Driver, folder: &Path) -> (String, String) {
    print_with(d, folder, "#print-subject")
}

/// Clicks the print button `button` with `folder` chosen as the user's printout folder (as the
/// folder picker would); returns the PDF's path and its text (pdftotext).
pub(crate) fn print_with(d: &Driver, folder: &Path, button: &str) -> (String, String) {
    std::fs::create_dir_all(folder).expect("printout folder");
    d.invoke(
        "set_print_folder",
        serde_json::json!({ "folder": folder.display().to_string() }),
    );
    d.click(button);
    let notice = d.wait_text("#print-notice", &[".pdf", "not encrypted"]);
    let upto = notice.find(".pdf").map_or(notice.len(), |i| i + 4);
    let path = notice[..upto]
        .rsplit(": ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let out = Command::new("pdftotext")
        .args(["-enc", "UTF-8", &path, "-"])
        .output()
        .expect("pdftotext");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (path, text)
}

/// From the subject list: opens 01-0001's day-1 log and changes MAP with a reason.
pub(crate) fn correct_day1_map(d: &Driver, value: &str, reason: &str) {
    d.click("button[data-subject='01-0001']");
    d.click("button[data-key='DLY#1']");
    d.set("#f-MAP", value);
    d.click("#save");
    d.find("#reason-dialog");
    d.type_in("#reason-input", reason);
    d.click("#reason-save");
    d.wait_text("#form-notice", &["Saved"]);
}

pub(crate) fn login(d: &Driver, user: &str, password: &str) {
    d.set("#login-user", user);
    d.set("#login-password", password);
    d.click("#login-submit");
}

/// Fills the screening form in the window: an eligible man on ECMO for an hour.
pub(crate) fn screen_in_window(d: &Driver) {
    d.click("button[data-key='SCR']");
    d.type_in("#f-SCRNO", "01-001");
    d.type_in("#f-SCR_DT", &ago(30));
    d.type_in("#f-AGE", "57");
    for radio in [
        "SEX-M",
        "INC1_AGE-Y",
        "INC2_CS-Y",
        "SBP_LT90-Y",
        "CATECHOL-N",
        "LACT_GT3-Y",
        "HYPOPERF-Y",
        "INC3_ECMO-Y",
        "INC4_CONSENT-Y",
    ] {
        d.pick(&format!("#f-{radio}"));
    }
    d.type_in("#f-SBP_LOW", "68");
    d.type_in("#f-SBP_DURATION", "45");
    d.type_in("#f-LACTATE", "5.4");
    d.type_in("#f-LACTATE_DT", &ago(50));
    d.pick("#f-HYPOPERF_SIGNS-COLD");
    d.type_in("#f-ECMO_START_DT", &ago(60));
    for n in [
        "LV_UNLOADING_STARTED",
        "EXC1_AI_DISSECTION",
        "EXC2_PVD",
        "EXC3_POSTCARDIOTOMY",
        "EXC4_NONCARDIAC",
        "EXC5_ECPR",
        "EXC6_PRIOR_MCS",
        "EXC7_BLEEDING",
        "EXC8_MALIGNANCY",
        "EXC9_NEURO",
    ] {
        d.pick(&format!("#f-{n}-N"));
    }
    d.pick("#save");
    d.wait_text("#form-notice", &["Saved"]);
    d.pick("#back");
}

/// Records the patient's own consent in the window.
pub(crate) fn consent_in_window(d: &Driver) {
    d.click("button[data-key='CON']");
    d.pick("#f-CONSENT_BY-PATIENT");
    d.type_in("#f-CONSENT_DT", &ago(20));
    d.type_in("#f-ICF_VERSION", "V1.0 2025-10-01");
    d.type_in("#f-OBTAINED_BY", "Dr Zhao");
    d.pick("#save");
    d.wait_text("#form-notice", &["Saved"]);
    d.pick("#back");
}
