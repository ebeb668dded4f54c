//! A newcomer opens the demo store: its first patient was screened, consented and randomized
//! before the ECMO data and daily logs; a flat arterial line (62/62) is saved with pulse
//! pressure 0; the screening log lists every screened patient with eligibility, the reasons
//! and the CONSORT counts, and prints; in Chinese the trend charts read "第0天".

use crate::driver::Driver;
use crate::harness::desktop;
use crate::steps::{self, login};

#[test]
pub(crate) fn a_newcomer_opens_the_demo_store_enters_a_flat_pressure_and_reads_the_screening_log() {
    let data = tempfile::tempdir().expect("temp folder");
    let desk = desktop(data.path());
    let d = Driver::start(&desk);
    d.click("#start-demo");
    login(&d, "nurse", "demo-ward-2026");

    // The first patient's path: screening, consent and randomization complete before ECMO.
    d.click("button[data-subject='01-0001']");
    for key in ["SCR", "CON", "RND", "ECMO", "BAS", "DLY#0", "DLY#3"] {
        d.wait_text(
            &format!("#schedule tr[data-row='{key}'] .status"),
            &["Complete"],
        );
    }
    d.wait_text("#rnd-arm", &["Randomized", "01-R000"]);
    d.screenshot("demo-01-first-patient");

    // Today's daily log with a flat arterial line on full-flow ECMO: pulse pressure 0.
    d.click("#next-daily-log");
    d.wait_text("#form-notice", &["copied from DLY#3"]);
    d.set("#f-SBP", "62");
    d.set("#f-DBP", "62");
    d.set("#f-MAP", "62");
    d.pick("#save");
    d.wait_text("#form-notice", &["Saved"]);
    let pp = d.wait_text("#f-PULSE_PRESSURE", &["0"]);
    assert!(
        pp.trim() == "0" || pp.trim().starts_with("0 "),
        "pulse pressure of 62/62 reads {pp:?}"
    );
    d.scroll_to("#row-SBP");
    d.screenshot("demo-02-flat-pressure-pulse-pressure-0");
    d.pick("#back");
    d.find("#schedule");

    // The screening log: every screened patient with eligibility and reasons, the counts.
    d.click("#back");
    d.click("#nav-screening");
    d.wait_text("#page-title", &["Screening log"]);
    d.wait_text(
        "#screening-log tr[data-subject='01-0001'] .sl-eligible",
        &["Yes"],
    );
    d.wait_text(
        "#screening-log tr[data-subject='01-0001'] .sl-status",
        &["Randomized"],
    );
    d.wait_text(
        "#screening-log tr[data-subject='01-0004'] .sl-eligible",
        &["No"],
    );
    d.wait_text(
        "#screening-log tr[data-subject='01-0004'] .sl-reasons",
        &["E5 Extracorporeal CPR", "present", "Screen failure"],
    );
    d.wait_text("#consort tr[data-count='screened'] td.num", &["4"]);
    d.wait_text("#consort tr[data-count='not_eligible'] td.num", &["1"]);
    d.wait_text("#consort tr[data-count='criterion-E5'] td.num", &["1"]);
    d.wait_text("#consort tr[data-count='randomized'] td.num", &["3"]);
    d.screenshot("demo-03-screening-log");
    let printouts = tempfile::tempdir().expect("printout folder");
    let (_, text) = steps::print_with(&d, printouts.path(), "#print-screening-log");
    for needle in [
        "Screening log",
        "CONSORT counts",
        "01-0004",
        "E5 Extracorporeal CPR",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from the printed log"
        );
    }

    // In Chinese: the page's words, then the trend charts' day axis.
    d.click("#lang-toggle");
    d.wait_text("#page-title", &["筛选日志"]);
    d.wait_text("#consort", &["CONSORT流程计数", "筛选"]);
    d.screenshot("demo-04-screening-log-zh");
    d.click("#screening-log button[data-open-subject='01-0001']");
    let axis = d.wait_text("#trends", &["第0天"]);
    assert!(!axis.contains("第…天"), "{axis}");
    d.scroll_to("#trends");
    d.screenshot("demo-05-trends-zh");
    d.quit();
}
