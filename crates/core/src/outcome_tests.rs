//! Scripted subjects of the clinical-forms acceptance list, checked value by value.

use super::*;
use crate::value::{parse_date, parse_datetime};

/// A subject built form by form; values are read from their text (date-time, date, integer, code).
struct Subject(SubjectValues);

fn value(text: &str) -> Value {
    if let Ok(t) = parse_datetime(text, None) {
        Value::DateTime(t)
    } else if let Ok(d) = parse_date(text) {
        Value::Date(d)
    } else if let Ok(i) = text.parse::<i64>() {
        Value::Int(i)
    } else {
        Value::Code(text.into())
    }
}

impl Subject {
    fn new(arm: &str, ecmo_start: &str, randomized: &str) -> Self {
        Subject(SubjectValues::new())
            .set("RND", &[("ARM", arm), ("RND_DT", randomized)])
            .set("ECMO", &[("START_DT", ecmo_start)])
    }
    fn set(mut self, instance: &str, items: &[(&str, &str)]) -> Self {
        let form = self.0.entry(instance.to_string()).or_default();
        for (k, v) in items {
            form.insert(k.to_string(), value(v));
        }
        self
    }
    /// Daily logs for these study days (dated day 0 + N).
    fn logs(mut self, days: impl IntoIterator<Item = i64>) -> Self {
        let z = match self.0["RND"]["RND_DT"] {
            Value::DateTime(t) => t.date_naive(),
            _ => unreachable!(),
        };
        for d in days {
            let date = (z + Duration::days(d)).to_string();
            self = self.set(&format!("DLY#{d}"), &[("DATE", &date)]);
        }
        self
    }
    fn outcome(&self) -> SubjectOutcome {
        subject_outcome(&self.0, now())
    }
}

fn now() -> DateTime<Utc> {
    parse_datetime("2026-06-01T12:00+08:00", None)
        .unwrap()
        .with_timezone(&Utc)
}

fn dec(s: &str) -> Option<Decimal> {
    Some(s.parse().unwrap())
}

fn codes(o: &SubjectOutcome) -> Vec<&str> {
    o.flags.iter().map(|f| f.code.as_str()).collect()
}

/// ECMO+IABP, IABP at 4 h, IABP out day 3, decannulated day 5, discharged alive day 19,
/// alive at day 30: every derived value, no flag.
fn iabp_at_4h() -> Subject {
    Subject::new(
        "ECMO_IABP",
        "2026-03-01T08:00+08:00",
        "2026-03-01T09:00+08:00",
    )
    .set(
        "IABP",
        &[("INSERTED", "Y"), ("INSERT_DT", "2026-03-01T12:00+08:00")],
    )
    .set(
        "EVT#1",
        &[
            ("EVT_TYPE", "IABP_REMOVAL"),
            ("EVT_DT", "2026-03-04T12:00+08:00"),
        ],
    )
    .set(
        "EVT#2",
        &[
            ("EVT_TYPE", "ECMO_DECANNULATION"),
            ("EVT_DT", "2026-03-06T10:00+08:00"),
        ],
    )
    .logs(0..=6)
    .set(
        "DIS",
        &[
            ("DIS_DATE", "2026-03-20"),
            ("STATUS", "ALIVE"),
            ("HOSP_ADM_DATE", "2026-02-28"),
            ("ICU_ADM_DATE", "2026-03-01"),
            ("ICU_DIS_DATE", "2026-03-10"),
        ],
    )
    .set(
        "D30",
        &[("CONTACT_DATE", "2026-03-31"), ("VITAL_STATUS", "ALIVE")],
    )
}

#[test]
fn iabp_at_4_hours_alive_at_day_30() {
    let o = iabp_at_4h().outcome();
    assert_eq!(o.arm, Some(Arm::EcmoIabp));
    assert_eq!(o.day_zero, Some(parse_date("2026-03-01").unwrap()));
    assert_eq!(o.iabp_delay_min, Some(240));
    assert_eq!(o.iabp_delay_hours, dec("4.00"));
    assert_eq!(o.iabp_deviation, Some(false));
    assert_eq!(o.crossover, None);
    assert_eq!(o.days_on_iabp, dec("3.0"));
    assert_eq!(o.days_on_ecmo, dec("5.1")); // 5 d 2 h
    assert_eq!(o.icu_los_days, Some(9));
    assert_eq!(o.hospital_los_days, Some(20));
    assert_eq!(o.successful_weaning, Some(Answer::Yes));
    assert_eq!(o.death_date, None);
    assert_eq!(o.primary_endpoint, Answer::No);
    assert_eq!(o.day30_status, Day30Status::Alive);
    assert_eq!(o.days_alive_to_day30, Some(30));
    assert!(o.flags.is_empty(), "{:?}", o.flags);
}

#[test]
fn iabp_at_6_hours_10_minutes_is_a_deviation() {
    let o = iabp_at_4h()
        .set("IABP", &[("INSERT_DT", "2026-03-01T14:10+08:00")])
        .outcome();
    assert_eq!(o.iabp_delay_min, Some(370));
    assert_eq!(o.iabp_delay_hours, dec("6.17"));
    assert_eq!(o.iabp_deviation, Some(true));
    assert_eq!(codes(&o), ["IABP_LATE"]);
    assert!(
        o.flags[0].message.en.contains("6 h 10 min"),
        "{:?}",
        o.flags
    );
    assert!(o.flags[0].message.zh.contains("6小时10分"));
    assert_eq!(o.flags[0].form, "IABP");
    // Exactly 6 h is inside the window.
    let o = iabp_at_4h()
        .set("IABP", &[("INSERT_DT", "2026-03-01T14:00+08:00")])
        .outcome();
    assert_eq!(o.iabp_deviation, Some(false));
}

#[test]
fn iabp_never_inserted_or_not_recorded() {
    let mut s = iabp_at_4h();
    s.0.remove("IABP");
    let o = s.outcome();
    assert_eq!(o.iabp_deviation, None);
    assert!(o.has_flag("IABP_NOT_RECORDED"));
    let o = s.set("IABP", &[("INSERTED", "N")]).outcome();
    assert_eq!(o.iabp_deviation, Some(true));
    assert!(o.has_flag("IABP_NEVER"));
}

#[test]
fn control_crossing_over_to_impella_on_day_1() {
    let s = Subject::new("ECMO", "2026-03-01T21:00+08:00", "2026-03-01T22:00+08:00").set(
        "EVT#1",
        &[
            ("EVT_TYPE", "UNLOADING_ESCALATION"),
            ("ESCALATION", "IMPELLA"),
            ("EVT_DT", "2026-03-02T01:30+08:00"),
        ],
    );
    let o = s.outcome();
    assert_eq!(o.crossover, Some(true));
    assert_eq!(o.iabp_deviation, None);
    let f = o.flags.iter().find(|f| f.code == "CROSSOVER").unwrap();
    assert_eq!(f.form, "EVT#1");
    assert!(f.message.en.contains("Impella") && f.message.en.contains("4 h 30 min"));
    // Impella on day 3 is an escalation, not a crossover.
    let o = s
        .set("EVT#1", &[("EVT_DT", "2026-03-04T01:30+08:00")])
        .outcome();
    assert_eq!(o.crossover, Some(false));
    assert!(!o.has_flag("CROSSOVER"));
    // An IABP within 6 h in the control arm is a crossover too.
    let o = Subject::new("ECMO", "2026-03-01T21:00+08:00", "2026-03-01T22:00+08:00")
        .set(
            "IABP",
            &[("INSERTED", "Y"), ("INSERT_DT", "2026-03-01T23:00+08:00")],
        )
        .outcome();
    assert_eq!(o.crossover, Some(true));
}

fn death_on_day_12() -> Subject {
    Subject::new("ECMO", "2026-03-01T08:00+08:00", "2026-03-01T09:00+08:00")
        .set(
            "EVT#1",
            &[("EVT_TYPE", "DEATH"), ("EVT_DT", "2026-03-13T04:00+08:00")],
        )
        .set("DIS", &[("DIS_DATE", "2026-03-13"), ("STATUS", "DEAD")])
        .set(
            "D30",
            &[
                ("CONTACT_DATE", "2026-03-31"),
                ("VITAL_STATUS", "DEAD"),
                ("DEATH_DATE", "2026-03-13"),
            ],
        )
        .logs((0..=12).filter(|d| *d != 5))
}

#[test]
fn death_on_day_12_is_the_endpoint() {
    let o = death_on_day_12().outcome();
    assert_eq!(o.death_date, Some(parse_date("2026-03-13").unwrap()));
    assert_eq!(o.death_day, Some(12));
    assert_eq!(o.primary_endpoint, Answer::Yes);
    assert_eq!(o.day30_status, Day30Status::Dead);
    assert_eq!(o.days_alive_to_day30, Some(12));
    assert_eq!(o.crossover, Some(false));
    assert_eq!(o.successful_weaning, None);
    assert_eq!(o.days_on_ecmo, dec("11.8")); // died on ECMO: 11 d 20 h
    // On ECMO until death: only day 5 lacks its daily log.
    assert_eq!(codes(&o), ["DAILY_LOG_MISSING"]);
    assert_eq!(o.flags[0].form, "DLY#5");
    assert!(o.flags[0].message.en.contains("day 5 (2026-03-06)"));
}

#[test]
fn death_on_day_31_is_not_the_endpoint() {
    let o = iabp_at_4h()
        .set(
            "EVT#3",
            &[("EVT_TYPE", "DEATH"), ("EVT_DT", "2026-04-01T03:00+08:00")],
        )
        .set("DIS", &[("DIS_DATE", "2026-04-01"), ("STATUS", "DEAD")])
        .set(
            "D30",
            &[("CONTACT_DATE", "2026-03-31"), ("VITAL_STATUS", "ALIVE")],
        )
        .outcome();
    assert_eq!(o.death_day, Some(31));
    assert_eq!(o.primary_endpoint, Answer::No);
    assert_eq!(o.day30_status, Day30Status::Alive);
    assert_eq!(o.days_alive_to_day30, Some(30));
    assert_eq!(o.hospital_los_days, Some(32));
    assert!(o.flags.is_empty(), "{:?}", o.flags);
}

#[test]
fn lost_to_follow_up_leaves_the_endpoint_unknown() {
    let mut s = iabp_at_4h().set("EOS", &[("EOS_STATUS", "LOST"), ("EOS_DATE", "2026-03-20")]);
    s.0.remove("D30");
    let o = s.outcome();
    assert_eq!(o.primary_endpoint, Answer::Unknown);
    assert_eq!(o.day30_status, Day30Status::Unknown);
    assert_eq!(o.days_alive_to_day30, None);
    // Discharged alive on day 30 or later is known alive at day 30.
    let o = s.set("DIS", &[("DIS_DATE", "2026-03-31")]).outcome();
    assert_eq!(o.primary_endpoint, Answer::No);
}

#[test]
fn conflicting_and_impossible_dates_of_death_are_flagged() {
    let o = death_on_day_12()
        .logs([5])
        .set("D30", &[("DEATH_DATE", "2026-03-14")])
        .outcome();
    assert_eq!(codes(&o), ["DEATH_DATES_CONFLICT"]);
    assert!(
        o.flags[0]
            .message
            .en
            .contains("D30.DEATH_DATE = 2026-03-14")
    );
    assert_eq!(
        o.death_date,
        Some(parse_date("2026-03-13").unwrap()),
        "earliest"
    );
    let o = death_on_day_12()
        .logs([5])
        .set("DIS", &[("DIS_DATE", "2026-02-27")])
        .set("D30", &[("DEATH_DATE", "2026-07-01")])
        .outcome();
    assert!(o.has_flag("DEATH_BEFORE_RANDOMIZATION"));
    assert!(o.has_flag("DEATH_IN_FUTURE"));
}

#[test]
fn day_30_contact_outside_its_window() {
    let o = iabp_at_4h()
        .set("D30", &[("CONTACT_DATE", "2026-04-09")])
        .outcome();
    assert_eq!(codes(&o), ["D30_OUTSIDE_WINDOW"]);
    assert!(o.flags[0].message.en.contains("day 39"));
    let o = iabp_at_4h()
        .set("D30", &[("CONTACT_DATE", "2026-04-07")])
        .outcome();
    assert!(o.flags.is_empty(), "day 37 is inside");
}

#[test]
fn daily_logs_are_due_to_the_day_after_the_last_device_came_out() {
    let mut s = iabp_at_4h();
    s.0.remove("DLY#6");
    assert_eq!(codes(&s.outcome()), ["DAILY_LOG_MISSING"]);
    s.0.remove("DLY#0");
    let o = s.outcome();
    let forms: Vec<&str> = o.flags.iter().map(|f| f.form.as_str()).collect();
    assert_eq!(forms, ["DLY#0", "DLY#6"]);
}

#[test]
fn weaning_fails_with_death_or_vad_within_48_hours() {
    let s = iabp_at_4h().set(
        "EVT#3",
        &[("EVT_TYPE", "VAD"), ("EVT_DT", "2026-03-07T10:00+08:00")],
    );
    assert_eq!(s.outcome().successful_weaning, Some(Answer::No));
    let s = iabp_at_4h().set(
        "EVT#3",
        &[("EVT_TYPE", "DEATH"), ("EVT_DT", "2026-03-09T10:00+08:00")],
    );
    let o = s.outcome();
    assert_eq!(o.successful_weaning, Some(Answer::Yes), "death 72 h later");
    assert_eq!(o.primary_endpoint, Answer::Yes);
    assert_eq!(o.days_alive_to_day30, Some(8));
}

#[test]
fn derived_items_of_the_definition_read_the_outcome() {
    let s = iabp_at_4h().set("IABP", &[("INSERT_DT", "2026-03-01T14:10+08:00")]);
    let o = s.outcome();
    let d = |name: &str, inst: &str| derive_item(name, inst, &s.0, &o);
    assert_eq!(d("iabp_delay", "IABP"), Some(Value::Int(370)));
    assert_eq!(d("iabp_deviation", "IABP"), Some(Value::Code("Y".into())));
    assert_eq!(d("crossover", "IABP"), None);
    assert_eq!(d("icu_los", "DIS"), Some(Value::Int(9)));
    assert_eq!(d("hospital_los", "DIS"), Some(Value::Int(20)));
    assert_eq!(d("primary_endpoint", "D30"), Some(Value::Code("N".into())));
    assert_eq!(
        d("successful_weaning", "EVT#2"),
        Some(Value::Code("Y".into()))
    );
    assert_eq!(d("successful_weaning", "EVT#1"), None);
}

#[test]
fn a_low_pulse_pressure_is_flagged_from_the_definition() {
    let study = crate::trial::definition().unwrap();
    let s = iabp_at_4h().set("DLY#2", &[("SBP", "78"), ("DBP", "71")]);
    let flags = derived_range_flags(&study, &s.0);
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(
        (flags[0].form.as_str(), flags[0].item.as_deref()),
        ("DLY#2", Some("PULSE_PRESSURE"))
    );
    assert!(
        flags[0].message.en.contains("= 7 mmHg") && flags[0].message.en.contains("LV distension")
    );
    assert!(derived_range_flags(&study, &iabp_at_4h().0).is_empty());
}

#[test]
fn subject_values_for_rules() {
    let o = iabp_at_4h().outcome();
    let d = |item: &str, inst: &str| subject_item(item, inst, &o).map(|v| v.to_string());
    assert_eq!(
        o.last_log_day,
        Some(6),
        "decannulated day 5, IABP out day 3"
    );
    assert_eq!(d("LAST_LOG_DATE", "DLY#2").as_deref(), Some("2026-03-07"));
    assert_eq!(d("LOG_DATE", "DLY#4").as_deref(), Some("2026-03-05"));
    assert_eq!(d("DAY30", "D30").as_deref(), Some("2026-03-31"));
    assert_eq!(d("LOG_DATE", "D30"), None);
    let o = death_on_day_12().outcome();
    assert_eq!(o.last_log_day, Some(12), "the day of death");
    let o = Subject::new("ECMO", "2026-03-01T08:00+08:00", "2026-03-01T09:00+08:00").outcome();
    assert_eq!(o.last_log_day, Some(30), "still on ECMO");
    assert_eq!(o.flags.len(), 31, "no daily log on any day 0..30");
}

#[test]
fn subject_items_do_not_depend_on_the_daily_logs() {
    let without_logs = |s: &Subject| -> SubjectValues {
        s.0.iter()
            .filter(|(k, _)| {
                k.split_once('#').map_or(k.as_str(), |(f, _)| f) != SUBJECT_ITEMS_IGNORE_FORM
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let subjects = [
        iabp_at_4h().logs(0..=6),
        death_on_day_12().logs(0..=12),
        Subject::new("ECMO", "2026-03-01T08:00+08:00", "2026-03-01T09:00+08:00").logs(0..=3),
        // Logs whose items name devices and deaths must not move any date either.
        iabp_at_4h().logs(0..=2).set(
            "DLY#1",
            &[
                ("ECMO_RUNNING", "N"),
                ("IABP_RUNNING", "N"),
                ("EVT_TYPE", "DEATH"),
            ],
        ),
    ];
    for s in &subjects {
        let (full, partial) = (s.outcome(), subject_outcome(&without_logs(s), now()));
        assert!(full.day_zero.is_some());
        for item in SUBJECT_ITEMS {
            for instance in ["DLY#0", "DLY#3", "DLY#12", "D30", "IABP"] {
                assert_eq!(
                    subject_item(item, instance, &full),
                    subject_item(item, instance, &partial),
                    "SUBJECT.{item} seen from {instance}"
                );
            }
        }
    }
}

/// An early "alive" contact never decides the endpoint: alive counts only when the patient is
/// known alive on or after day 30 (issue 20, point 2).
#[test]
fn alive_counts_only_when_known_alive_on_or_after_day_30() {
    // Day 0 is 2026-03-01; the subject's last daily log is day 6 and discharge day 19.
    let early = iabp_at_4h()
        .set(
            "D30",
            &[("CONTACT_DATE", "2026-03-21"), ("VITAL_STATUS", "ALIVE")],
        )
        .outcome();
    assert_eq!(early.primary_endpoint, Answer::Unknown);
    assert_eq!(early.day30_status, Day30Status::Unknown);
    assert_eq!(early.days_alive_to_day30, None);
    assert!(early.has_flag("ALIVE_ONLY_BEFORE_DAY30"));
    let f = early
        .flags
        .iter()
        .find(|f| f.code == "ALIVE_ONLY_BEFORE_DAY30")
        .unwrap();
    assert!(f.message.en.contains("day 20"), "{}", f.message.en);
    // The same contact on day 30: no, with no such flag.
    let on_time = iabp_at_4h().outcome();
    assert_eq!(on_time.primary_endpoint, Answer::No);
    assert_eq!(on_time.days_alive_to_day30, Some(30));
    assert!(!on_time.has_flag("ALIVE_ONLY_BEFORE_DAY30"));
    // "Alive" without a date is not enough either.
    let mut undated = iabp_at_4h();
    undated.0.get_mut("D30").unwrap().remove("CONTACT_DATE");
    let o = undated.outcome();
    assert_eq!(o.primary_endpoint, Answer::Unknown);
    assert!(o.has_flag("ALIVE_ONLY_BEFORE_DAY30"));
    // An event on day 31 shows the patient alive after day 30, whatever the contact said.
    let later = iabp_at_4h()
        .set(
            "D30",
            &[("CONTACT_DATE", "2026-03-21"), ("VITAL_STATUS", "ALIVE")],
        )
        .set(
            "EVT#9",
            &[
                ("EVT_TYPE", "RRT_START"),
                ("EVT_DT", "2026-04-01T09:00+08:00"),
            ],
        )
        .outcome();
    assert_eq!(later.primary_endpoint, Answer::No);
    assert!(!later.has_flag("ALIVE_ONLY_BEFORE_DAY30"));
}

/// Issue 20, point 7: a randomized subject whose baseline echo shows moderate aortic
/// regurgitation, or whose ECMO is central, is flagged with the criterion it breaks; mild
/// regurgitation and a femoro-axillary configuration are not.
#[test]
fn an_exclusion_found_after_randomization_is_flagged() {
    let s = iabp_at_4h()
        .set("BAS", &[("AR_GRADE", "MILD")])
        .set("ECMO", &[("CONFIG", "FEM_AXILLARY")]);
    assert!(!s.outcome().has_flag("EXCLUSION_IN_DATA"));
    let s = s
        .set(
            "BAS",
            &[("AR_GRADE", "MODERATE"), ("SHOCK_CAUSE", "POST_CABG")],
        )
        .set("ECMO", &[("CONFIG", "CENTRAL")]);
    let o = s.outcome();
    let found: Vec<(&str, Option<&str>)> = o
        .flags
        .iter()
        .filter(|f| f.code == "EXCLUSION_IN_DATA")
        .map(|f| (f.form.as_str(), f.item.as_deref()))
        .collect();
    assert_eq!(found, [("BAS", Some("AR_GRADE")), ("ECMO", Some("CONFIG"))]);
    let ar = o
        .flags
        .iter()
        .find(|f| f.item.as_deref() == Some("AR_GRADE"))
        .unwrap();
    assert!(
        ar.message.en.contains("(eligibility criterion E1)"),
        "{}",
        ar.message.en
    );
    assert!(
        ar.message.zh.contains("中度及以上主动脉瓣反流"),
        "{}",
        ar.message.zh
    );
    // Post-cardiotomy shock after a non-CABG operation is exclusion 3.
    let s = s.set("BAS", &[("SHOCK_CAUSE", "POST_CARDIOTOMY")]);
    assert!(
        s.outcome()
            .flags
            .iter()
            .any(|f| f.item.as_deref() == Some("SHOCK_CAUSE") && f.message.en.contains("E3"))
    );
    // Not randomized: the screening decides, no flag.
    let mut s = s;
    s.0.remove("RND");
    assert!(!s.outcome().has_flag("EXCLUSION_IN_DATA"));
}

/// Issue 20, point 7: BMI is derived, and its soft range (15–50 kg/m²) flags an implausible
/// height and weight like any typed value outside its usual range.
#[test]
fn a_bmi_outside_its_usual_range_is_flagged() {
    let study = crate::trial::definition().unwrap();
    let bmi = study.form("BAS").unwrap().item("BMI").unwrap();
    assert_eq!(bmi.soft.map(|r| r.to_string()), Some("15–50".to_string()));
    let dec_value = |s: &str| Value::Dec(s.parse().unwrap());
    let mut s = iabp_at_4h();
    let bas = s.0.entry("BAS".into()).or_default();
    bas.insert("HEIGHT".into(), dec_value("170.0"));
    bas.insert("WEIGHT".into(), dec_value("70.0"));
    assert!(derived_range_flags(&study, &s.0).is_empty());
    // 170 cm typed as 107 cm: 70 / 1.07² = 61.1.
    let bas = s.0.get_mut("BAS").unwrap();
    bas.insert("HEIGHT".into(), dec_value("107.0"));
    let flags = derived_range_flags(&study, &s.0);
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(flags[0].item.as_deref(), Some("BMI"));
    assert!(
        flags[0].message.en.contains("= 61.1 kg/m²"),
        "{}",
        flags[0].message.en
    );
}

/// Issue 20, point 5: a return to ECMO within 48 h of decannulation makes the wean
/// unsuccessful; ECMO runs again until the next decannulation, and the days on ECMO count both
/// periods, not the gap.
#[test]
fn a_recannulation_within_48_hours_makes_the_wean_unsuccessful() {
    // Decannulated day 5 at 10:00 (EVT#2), back on ECMO 30 h later.
    let s = iabp_at_4h().set(
        "EVT#3",
        &[
            ("EVT_TYPE", "ECMO_RECANNULATION"),
            ("EVT_DT", "2026-03-07T16:00+08:00"),
            ("NEW_CONFIG", "FEM_FEM"),
        ],
    );
    let o = s.outcome();
    assert_eq!(o.successful_weaning, Some(Answer::No));
    assert_eq!(
        derive_item("successful_weaning", "EVT#2", &s.0, &o),
        Some(Value::Code("N".into()))
    );
    assert_eq!(o.ecmo_end, None, "running again");
    assert_eq!(o.days_on_ecmo, None);
    // Decannulated again on day 9 and alive after: that wean succeeds, the first still failed.
    let s = s.set(
        "EVT#4",
        &[
            ("EVT_TYPE", "ECMO_DECANNULATION"),
            ("EVT_DT", "2026-03-10T16:00+08:00"),
        ],
    );
    let o = s.outcome();
    assert_eq!(o.successful_weaning, Some(Answer::Yes));
    assert_eq!(
        derive_item("successful_weaning", "EVT#2", &s.0, &o),
        Some(Value::Code("N".into()))
    );
    assert_eq!(
        o.ecmo_end.map(|t| t.to_rfc3339()),
        Some("2026-03-10T16:00:00+08:00".into())
    );
    // 5 d 2 h, then 3 d 0 h.
    assert_eq!(o.days_on_ecmo, dec("8.1"));
    // A re-cannulation 49 h after decannulation does not undo that wean.
    let s = iabp_at_4h().set(
        "EVT#3",
        &[
            ("EVT_TYPE", "ECMO_RECANNULATION"),
            ("EVT_DT", "2026-03-08T11:00+08:00"),
        ],
    );
    assert_eq!(s.outcome().successful_weaning, Some(Answer::Yes));
}
