//! The clinical views on a real store: the next daily log prefilled from the day before, the
//! schedule's due / missing words, trends with a point per log and the IABP marked, and the
//! cross-form derived items shown read-only on their form.

use chrono::{Duration, Local};

use crate::dto::*;

fn entry(item: &str, text: &str) -> Entry {
    Entry {
        item: item.into(),
        text: text.into(),
    }
}

fn saved(reply: SaveReply) {
    match reply {
        SaveReply::Saved { .. } => {}
        other => panic!("not saved: {other:?}"),
    }
}

#[test]
fn next_daily_log_trends_schedule_and_derived_items() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = crate::test_kit::site_01(dir.path());
    let s = app.new_subject().unwrap();
    assert!(app.next_daily_log(&s).is_err(), "no day 0 yet");
    let day0 = Local::now().date_naive() - Duration::days(3);
    let start = format!("{day0} 08:00");
    saved(
        app.save_form(&s, "ECMO", &[entry("START_DT", &start)], None, true)
            .unwrap(),
    );

    // Day 0 has no log: the next one is day 0, dated, nothing to copy.
    let first = app.next_daily_log(&s).unwrap();
    assert_eq!(first.key, "DLY#0");
    assert_eq!(first.prefilled_from, None);
    assert_eq!(first.draft, Some(vec![entry("DATE", &day0.to_string())]));
    let day0_log = [
        entry("DATE", &day0.to_string()),
        entry("ECMO_STATUS", "RUNNING"),
        entry("FLOW", "4.20"),
        entry("RPM", "3200"),
        entry("SWEEP", "3.0"),
        entry("FIO2", "60"),
        entry("MAP", "62"),
        entry("SBP", "80"),
        entry("DBP", "55"),
        entry("LACTATE", "5.1"),
    ];
    saved(app.save_form(&s, "DLY#0", &day0_log, None, true).unwrap());

    // Day 1: dated, with day 0's device settings to confirm or change.
    let next = app.next_daily_log(&s).unwrap();
    assert_eq!(next.key, "DLY#1");
    assert_eq!(next.prefilled_from.as_deref(), Some("DLY#0"));
    let draft = next.draft.unwrap();
    let day1 = (day0 + Duration::days(1)).to_string();
    assert!(draft.contains(&entry("DATE", &day1)));
    for (item, text) in [
        ("ECMO_STATUS", "RUNNING"),
        ("FLOW", "4.20"),
        ("RPM", "3200"),
        ("SWEEP", "3.0"),
        ("FIO2", "60"),
    ] {
        assert!(draft.contains(&entry(item, text)), "{item} in {draft:?}");
    }
    assert!(
        !draft.iter().any(|e| e.item == "LACTATE"),
        "only device settings"
    );
    let mut day1_log = draft.clone();
    day1_log.extend([entry("LACTATE", "3.2"), entry("MAP", "70")]);
    saved(app.save_form(&s, "DLY#1", &day1_log, None, true).unwrap());

    // Trends: two points; the schedule: day 2 missing, day 3 due today.
    let page = app.subject(&s).unwrap();
    let lactate: Vec<_> = page
        .trends
        .points
        .iter()
        .map(|p| (p.day, p.lactate))
        .collect();
    assert_eq!(lactate, [(0, Some(5.1)), (1, Some(3.2))]);
    assert_eq!(page.trends.points[0].pulse_pressure, Some(25.0));
    let status = |k: &str| page.schedule.iter().find(|r| r.key == k).map(|r| r.status);
    assert_eq!(
        status("DLY#2"),
        Some(ecrf_core::schedule::FormStatus::Missing)
    );
    assert_eq!(status("DLY#3"), Some(ecrf_core::schedule::FormStatus::Due));
    assert_eq!(status("DLY#4"), None);
    assert_eq!(
        app.next_daily_log(&s).unwrap().key,
        "DLY#2",
        "the day after the latest"
    );

    // The IABP at 6 h 10 min: its delay is derived and shown read-only on the IABP form, and
    // marked on the charts.
    let late = format!("{day0} 14:10");
    saved(
        app.save_form(
            &s,
            "IABP",
            &[entry("INSERTED", "Y"), entry("INSERT_DT", &late)],
            None,
            true,
        )
        .unwrap(),
    );
    let iabp = app.form(&s, "IABP").unwrap();
    assert!(
        iabp.derived
            .iter()
            .any(|d| d.item == "DELAY_MIN" && d.text == "370"),
        "{:?}",
        iabp.derived
    );
    let page = app.subject(&s).unwrap();
    assert_eq!(page.outcome.iabp_delay_min, Some(370));
    assert_eq!(page.trends.marks.len(), 1);
    assert_eq!(page.trends.marks[0].kind, "iabp_in");
    assert!((page.trends.marks[0].day - (14.0 + 10.0 / 60.0) / 24.0).abs() < 1e-9);
    assert_eq!(page.outcome.primary_endpoint, "unknown");
}
