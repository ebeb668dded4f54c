//! The screening log and the demo store, through the app on real stores: what the page shows
//! is core's verdict, the CONSORT counts add up, the printout says the same, and the demo's
//! patients went through screening, consent and the real randomization.

use super::*;
use crate::test_kit::site_01;
use ecrf_core::schedule::FormStatus;

fn entries(pairs: &[(&str, &str)]) -> Vec<Entry> {
    pairs
        .iter()
        .map(|(item, text)| Entry {
            item: item.to_string(),
            text: text.to_string(),
        })
        .collect()
}

fn status(page: &SubjectPage, key: &str) -> FormStatus {
    page.schedule
        .iter()
        .find(|r| r.key == key)
        .unwrap_or_else(|| panic!("{key} in the schedule"))
        .status
}

/// A laptop's own screening: one patient eligible without consent, one not eligible because of
/// an exclusion and an unanswered inclusion, one never screened. The log shows each verdict
/// with core's reasons and the criterion's own label; the counts add up.
#[test]
fn the_screening_log_shows_each_patient_and_the_consort_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = site_01(dir.path());
    fn scr(scrno: &str) -> Vec<(&'static str, &str)> {
        ecrf_core::sample::eligible_screening(scrno)
    }
    fn save(app: &mut App, subject: &str, values: &[(&str, &str)]) {
        let reply = app.save_form(subject, "SCR", &entries(values), None, true);
        assert!(
            matches!(reply, Ok(SaveReply::Saved { .. })),
            "{subject}: {reply:?}"
        );
    }
    let eligible = app.new_subject().unwrap();
    save(&mut app, &eligible, &scr(&eligible));
    // ECPR (exclusion 5), and hypotension too short without catecholamines (inclusion 2).
    let excluded = app.new_subject().unwrap();
    let mut s = scr(&excluded);
    s.retain(|(i, _)| *i != "EXC5_ECPR" && *i != "SBP_DURATION");
    s.extend([("EXC5_ECPR", "Y"), ("SBP_DURATION", "20")]);
    save(&mut app, &excluded, &s);
    let blank = app.new_subject().unwrap();

    let log = app.screening_log().unwrap();
    assert_eq!(log.patients.len(), 3);
    let row = |id: &str| log.patients.iter().find(|p| p.subject == id).unwrap();
    let first = row(&eligible);
    assert!(first.eligible && first.reasons.is_empty(), "{first:?}");
    assert_eq!(first.status, ScreeningStatus::NoConsent);
    assert!(
        first
            .consent_note
            .as_deref()
            .unwrap()
            .contains("no consent")
    );
    assert_eq!(first.age.as_deref(), Some("61"));
    assert_eq!(first.sex.as_ref().unwrap().en, "Male");

    let second = row(&excluded);
    assert!(!second.eligible);
    assert_eq!(second.status, ScreeningStatus::NotEligible);
    let criteria: Vec<&str> = second
        .reasons
        .iter()
        .map(|r| r.criterion.as_str())
        .collect();
    assert_eq!(criteria, ["I2", "E5"], "{second:?}");
    let e5 = &second.reasons[1];
    assert_eq!(e5.text, "present");
    assert!(e5.label.en.starts_with("E5 Extracorporeal CPR"), "{e5:?}");
    assert!(e5.label.zh.contains("体外心肺复苏"), "{e5:?}");
    assert!(!row(&blank).eligible);

    let [site] = &log.sites[..] else {
        panic!("one site: {:?}", log.sites)
    };
    assert_eq!(site.site, "01");
    assert_eq!((site.screened, site.not_eligible, site.eligible), (3, 2, 1));
    assert_eq!((site.consent_not_obtained, site.consented), (1, 0));
    assert_eq!((site.pending, site.randomized), (0, 0));
    // The unscreened patient counts under every criterion it leaves open, the excluded one
    // under I2 and E5 once each, however many I2 reasons it has.
    let count = |c: &str| {
        site.by_criterion
            .iter()
            .find(|x| x.criterion == c)
            .map_or(0, |x| x.count)
    };
    assert_eq!(
        (count("I1"), count("I2"), count("E5"), count("E1")),
        (1, 2, 2, 1)
    );
}

/// The demo a newcomer opens: every followed patient screened eligible, consented and
/// randomized through the store's envelopes before ECMO data and daily logs; the IABP form only
/// in the ECMO+IABP arm and daily logs that agree with it; one screen failure in the log.
#[test]
fn the_demo_patients_are_screened_consented_and_randomized_before_follow_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = App::new(dir.path().join("ward.ecrf"), dir.path().join("demo.ecrf")).unwrap();
    app.use_demo().unwrap();
    app.login("nurse", demo::DEMO_PASSWORD).unwrap();
    let rows = app.subjects().unwrap();
    assert_eq!(rows.len(), 4);
    let mut arms = Vec::new();
    for row in &rows[..3] {
        let page = app.subject(&row.subject).unwrap();
        for key in ["SCR", "CON", "RND", "ECMO", "BAS", "DLY#0", "DLY#3"] {
            assert_eq!(
                status(&page, key),
                FormStatus::Complete,
                "{} {key}: {:?}",
                row.subject,
                page.schedule
            );
        }
        let r = page.randomization.clone().expect("randomized");
        assert!(r.envelope.starts_with("01-E"), "{r:?}");
        let dly = app.form(&row.subject, "DLY#2").unwrap();
        let iabp_running = dly
            .values
            .iter()
            .any(|v| v.item == "IABP_STATUS" && v.text == "RUNNING");
        if r.arm == "ECMO_IABP" {
            assert_eq!(status(&page, "IABP"), FormStatus::Complete);
            assert!(iabp_running, "{}: IABP arm, IABP running", row.subject);
        } else {
            assert_eq!(status(&page, "IABP"), FormStatus::NotStarted);
            assert!(!iabp_running, "{}: ECMO arm, no IABP", row.subject);
        }
        arms.push(r.arm);
    }
    let log = app.screening_log().unwrap();
    let failure = &log.patients[3];
    assert!(!failure.eligible);
    assert_eq!(failure.reasons[0].criterion, "E5");
    assert_eq!(failure.screen_failure.as_ref().unwrap().en, "Not eligible");
    let site = &log.sites[0];
    assert_eq!(
        (site.screened, site.not_eligible, site.randomized),
        (4, 1, 3)
    );
    let by_arm: u32 = site.by_arm.iter().map(|a| a.count).sum();
    assert_eq!(by_arm, 3);
    for arm in &arms {
        assert!(site.by_arm.iter().any(|a| &a.arm == arm), "{arms:?}");
    }
    // The demo's fixed list gives both arms among the three.
    assert!(
        arms.iter().any(|a| a == "ECMO_IABP") && arms.iter().any(|a| a == "ECMO"),
        "{arms:?}"
    );
}

/// The printout carries the same log: each screening number, the reason's criterion label
/// and the counts, in the session's language (pdftotext reads it back).
#[test]
fn the_screening_log_prints_as_a_pdf_in_the_session_language() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = App::new(dir.path().join("ward.ecrf"), dir.path().join("demo.ecrf")).unwrap();
    app.use_demo().unwrap();
    app.login("nurse", demo::DEMO_PASSWORD).unwrap();
    app.set_lang(Lang::Zh).unwrap();
    let printed = app.screening_printout().unwrap();
    let path = dir.path().join("screening-log.pdf");
    printed.write_to(&path).unwrap();
    assert!(
        printed.missing_glyphs.is_empty(),
        "{:?}",
        printed.missing_glyphs
    );
    let out = std::process::Command::new("pdftotext")
        .args(["-raw", "-enc", "UTF-8", path.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils)");
    let text: String = String::from_utf8_lossy(&out.stdout)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    for want in [
        "筛选日志",
        "CONSORT流程计数",
        "01-0001",
        "01-0004",
        "排除5",
        "已随机分组",
        "筛选失败",
    ] {
        assert!(text.contains(want), "{want} not in {text}");
    }
}
