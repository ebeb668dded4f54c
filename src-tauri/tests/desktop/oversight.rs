//! A monitor queries, the nurse corrects, the monitor verifies and the investigator signs.

use crate::driver::Driver;
use crate::harness::desktop;
use crate::seeds::oversight_site;
use crate::steps::{correct_day1_map, login, print_subject};

#[test]
pub(crate) fn a_monitor_queries_the_nurse_corrects_the_monitor_verifies_and_the_investigator_signs()
{
    let data = tempfile::tempdir().expect("temp folder");
    oversight_site(&data.path().join("ward.ecrf"));
    let desk = desktop(data.path());
    let d = Driver::start(&desk);

    // The monitor raises a query on the day-1 MAP; a monitor has no Save button.
    login(&d, "mon", "mon-password-1");
    d.click("button[data-subject='01-0001']");
    d.click("button[data-key='DLY#1']");
    d.find("#raise-query");
    d.wait_text("#form-actions", &["does not enter"]);
    d.click("#raise-item option[value='MAP']");
    d.type_in("#raise-text", "Chart says MAP 62 at 08:00");
    d.click("#raise-query");
    d.wait_text("#queries", &["Chart says MAP 62", "open", "mon"]);
    d.find("#l-MAP .query-badge");
    d.screenshot("20-monitor-raised-query");
    d.click("#lock");

    // The nurse answers by changing the value with a reason.
    login(&d, "li", "li-password-1");
    correct_day1_map(&d, "62", "transcribed from the wrong hour");
    d.find("#l-MAP .query-badge");
    d.find("#queries button[data-step='answer']");
    d.type_in("#queries input.q-text", "Corrected to 62 from the chart");
    d.click("#queries button[data-step='answer']");
    d.wait_text("#queries", &["answered"]);
    d.screenshot("21-nurse-answered");
    d.click("#lock");

    // The monitor closes the query and marks the form verified.
    login(&d, "mon", "mon-password-1");
    d.click("button[data-subject='01-0001']");
    d.click("button[data-key='DLY#1']");
    d.type_in("#queries input.q-text", "Matches the source");
    d.click("#queries button[data-step='close']");
    d.wait_text("#queries", &["closed"]);
    d.click("#verify-form");
    d.wait_text("#sdv-status", &["items verified"]);
    d.find("#l-MAP .sdv-mark");
    d.screenshot("22-monitor-closed-and-verified");
    d.click("#lock");

    // The investigator signs: user id and password the first time in the session.
    login(&d, "wang", "wang-password-1");
    d.click("button[data-subject='01-0001']");
    d.click("button[data-key='DLY#1']");
    d.click("#sign-form");
    d.type_in("#sign-user", "wang");
    d.type_in("#sign-password", "wrong-password");
    d.click("#sign-submit");
    d.wait_text("#sign-error", &["wrong password"]);
    d.type_in("#sign-password", "wang-password-1");
    d.click("#sign-submit");
    d.wait_text(
        "#signatures",
        &["Dr Wang Wei", "I approve the data", "valid"],
    );
    d.screenshot("23-investigator-signed");

    // The subject's PDF shows the query, the SDV mark and the signature.
    d.click("#back");
    let (_, text) = print_subject(&d, &data.path().join("printouts"));
    for needle in [
        "Chart says MAP 62",
        "source verified (SDV)",
        "Signed electronically",
        "Dr Wang Wei",
        "transcribed from the wrong hour",
        "query closed",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from the PDF:\n{text}"
        );
    }

    // The site-wide query list: nothing open any more; the closed query opens its form.
    d.click("#back");
    d.click("#nav-queries");
    d.wait_text("#ql-count", &["0 matching", "of 1"]);
    d.click("#ql-state option[value='closed']");
    d.wait_text(
        "#query-list",
        &["Chart says MAP 62", "closed", "01-0001", "DLY#1", "mon"],
    );
    d.screenshot("24-site-query-list");
    d.click("#query-list button[data-open]");
    d.find("#f-MAP");

    // The audit trail of that item: the nurse's correction with its reason, saved as CSV.
    d.click("#back");
    d.click("#back");
    d.click("#nav-audit");
    d.set("#al-subject", "01-0001");
    d.set("#al-item", "MAP");
    d.click("#al-show");
    d.wait_text(
        "#audit-list",
        &["transcribed from the wrong hour", "li (nurse)", "query"],
    );
    d.screenshot("25-audit-trail");
    d.click("#al-csv");
    let notice = d.wait_text("#al-notice", &[".csv"]);
    let path = notice
        .split_once(": ")
        .and_then(|(_, rest)| rest.rsplit_once(" ("))
        .map(|(p, _)| p.trim().to_string())
        .unwrap_or_default();
    let csv = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(csv.starts_with("seq,change_id,"), "{csv}");
    assert!(csv.contains("transcribed from the wrong hour"), "{csv}");
    assert!(
        csv.lines().skip(1).all(|l| l.contains(",MAP,")),
        "only MAP rows:\n{csv}"
    );
    d.quit();
}
