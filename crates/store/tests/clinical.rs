//! The clinical forms through the store API: scripted, randomized subjects (IABP at 4 h; at
//! 6 h 10 min; a control crossing over to Impella on day 1; death on day 12; alive at day 30;
//! death on day 31; lost to follow-up) with every derived value and flag checked, every hard
//! range refused and every soft range warned (iterating the study definition), and each
//! cross-form rule of the protocol refused at save with a message naming the field and rule.

use std::collections::VecDeque;

use ecrf_core::outcome::{Answer, Arm, Day30Status, SubjectOutcome};
use ecrf_core::study::{Entry, ItemType, Repeat};
use ecrf_core::{Decimal, FormKey, MissingCode, Value};
use ecrf_store::{SaveOptions, Store, StoreError};

use ecrf_testkit::{NURSE, Site, study};

fn confirm() -> SaveOptions {
    SaveOptions {
        reason: None,
        confirm_warnings: true,
    }
}

fn key(id: &str) -> FormKey {
    FormKey::parse(&study(), id).expect("form key")
}

fn t(day: u32, hm: &str) -> String {
    format!("2026-03-{day:02}T{hm}+08:00")
}

/// An eligible subject with ECMO started at `ecmo` (`HH:MM` on 1 March 2026), screened and
/// consented 30 and 40 minutes later.
fn screened(s: &mut Store, ecmo: &str) -> String {
    let (h, m) = ecmo.split_once(':').unwrap();
    let at = |plus: u32| {
        let total = h.parse::<u32>().unwrap() * 60 + m.parse::<u32>().unwrap() + plus;
        t(1, &format!("{:02}:{:02}", total / 60, total % 60))
    };
    let (start, scr_dt, con_dt) = (at(0), at(30), at(40));
    let id = s.new_subject().unwrap();
    let mut scr: Vec<(&str, &str)> = std::iter::once(("SCRNO", "07-001"))
        .chain(ecrf_core::sample::ELIGIBLE_SCREENING.iter().copied())
        .collect();
    scr.push(("SCR_DT", &scr_dt));
    scr.push(("ECMO_START_DT", &start));
    scr.push(("LACTATE_DT", &start));
    s.save(&id, &key("SCR"), &scr, &confirm()).unwrap();
    let mut con = ecrf_core::sample::CONSENT_BY_SPOUSE.to_vec();
    con.push(("CONSENT_DT", &con_dt));
    s.save(&id, &key("CON"), &con, &confirm()).unwrap();
    s.save(&id, &key("ECMO"), &[("START_DT", &start)], &confirm())
        .unwrap();
    id
}

/// A store with 8 envelopes (4 per arm) and the nurse logged in.
fn store(dir: &std::path::Path) -> Store {
    Site::new("07")
        .with_nurse()
        .with_lease(8, [7; 32])
        .create_as(&dir.join("c.ecrf"), &NURSE)
}

fn save(s: &mut Store, id: &str, form: &str, entries: &[(&str, &str)]) {
    s.save(id, &key(form), entries, &confirm())
        .unwrap_or_else(|e| panic!("{id} {form}: {e}"));
}

fn daily_logs(s: &mut Store, id: &str, days: impl IntoIterator<Item = u32>) {
    for d in days {
        let date = format!("2026-03-{:02}", d + 1);
        let flow = format!("{}.{}", 4 - d.min(3), d % 10);
        save(
            s,
            id,
            &format!("DLY#{d}"),
            &[
                ("DATE", &date),
                ("ECMO_STATUS", "RUNNING"),
                ("FLOW", &flow),
                ("LACTATE", "3.1"),
                ("MAP", "70"),
            ],
        );
    }
}

fn codes(o: &SubjectOutcome) -> Vec<&str> {
    o.flags.iter().map(|f| f.code.as_str()).collect()
}

fn dec(s: &str) -> Option<Decimal> {
    Some(s.parse().unwrap())
}

/// Subjects randomized at 10:30 (21:45 for the late ECMO start) on 1 March 2026, handed out by
/// the arm their envelope gave them.
struct Randomized {
    store: Store,
    ecmo_iabp: VecDeque<String>,
    ecmo: VecDeque<String>,
}

fn randomized(dir: &std::path::Path, late_ecmo: usize) -> Randomized {
    let mut s = store(dir);
    let (mut ecmo_iabp, mut ecmo) = (VecDeque::new(), VecDeque::new());
    for n in 0..8 {
        let (ecmo_at, rnd_at) = if n < late_ecmo {
            ("21:00", t(1, "21:45"))
        } else {
            ("09:00", t(1, "10:30"))
        };
        let id = screened(&mut s, ecmo_at);
        let at =
            chrono::DateTime::parse_from_rfc3339(&format!("{}:00+08:00", &rnd_at[..16])).unwrap();
        let r = s.randomize_at(&id, at).unwrap();
        match r.arm.as_str() {
            "ECMO_IABP" => ecmo_iabp.push_back(id),
            _ => ecmo.push_back(id),
        }
    }
    Randomized {
        store: s,
        ecmo_iabp,
        ecmo,
    }
}

#[test]
fn scripted_subjects_have_every_derived_value_and_flag() {
    let dir = tempfile::tempdir().unwrap();
    let Randomized {
        store: mut s,
        mut ecmo_iabp,
        mut ecmo,
    } = randomized(dir.path(), 0);
    assert_eq!((ecmo_iabp.len(), ecmo.len()), (4, 4));

    // ECMO+IABP, IABP at 4 h; out on day 3; decannulated on day 5; alive at day 30.
    let a = ecmo_iabp.pop_front().unwrap();
    save(
        &mut s,
        &a,
        "IABP",
        &[("INSERTED", "Y"), ("INSERT_DT", &t(1, "13:00"))],
    );
    save(
        &mut s,
        &a,
        "EVT#1",
        &[("EVT_TYPE", "IABP_REMOVAL"), ("EVT_DT", &t(4, "13:00"))],
    );
    save(
        &mut s,
        &a,
        "EVT#2",
        &[
            ("EVT_TYPE", "ECMO_DECANNULATION"),
            ("EVT_DT", &t(6, "11:00")),
        ],
    );
    daily_logs(&mut s, &a, 0..=6);
    save(
        &mut s,
        &a,
        "DIS",
        &[
            ("DIS_DATE", "2026-03-20"),
            ("STATUS", "ALIVE"),
            ("HOSP_ADM_DATE", "2026-02-28"),
            ("ICU_ADM_DATE", "2026-03-01"),
            ("ICU_DIS_DATE", "2026-03-10"),
        ],
    );
    save(
        &mut s,
        &a,
        "D30",
        &[
            ("CONTACT_DATE", "2026-03-31"),
            ("METHOD", "PHONE"),
            ("VITAL_STATUS", "ALIVE"),
        ],
    );
    let o = s.subject_outcome(&a).unwrap();
    assert_eq!(o.arm, Some(Arm::EcmoIabp));
    assert_eq!(
        o.randomized_at.unwrap().to_rfc3339(),
        "2026-03-01T10:30:00+08:00"
    );
    assert_eq!(
        (o.iabp_delay_min, o.iabp_delay_hours),
        (Some(240), dec("4.00"))
    );
    assert_eq!((o.iabp_deviation, o.crossover), (Some(false), None));
    assert_eq!((o.days_on_iabp, o.days_on_ecmo), (dec("3.0"), dec("5.1")));
    assert_eq!((o.icu_los_days, o.hospital_los_days), (Some(9), Some(20)));
    assert_eq!(o.successful_weaning, Some(Answer::Yes));
    assert_eq!(o.primary_endpoint, Answer::No);
    assert_eq!(o.day30_status, Day30Status::Alive);
    assert_eq!(o.days_alive_to_day30, Some(30));
    assert!(o.flags.is_empty(), "{:?}", o.flags);

    // ECMO+IABP, IABP at 6 h 10 min: deviation; no daily logs yet: each day 0..30 missing.
    let b = ecmo_iabp.pop_front().unwrap();
    save(
        &mut s,
        &b,
        "IABP",
        &[("INSERTED", "Y"), ("INSERT_DT", &t(1, "15:10"))],
    );
    let o = s.subject_outcome(&b).unwrap();
    assert_eq!(
        (o.iabp_delay_min, o.iabp_delay_hours),
        (Some(370), dec("6.17"))
    );
    assert_eq!(o.iabp_deviation, Some(true));
    let late = o.flags.iter().find(|f| f.code == "IABP_LATE").unwrap();
    assert_eq!(late.form, "IABP");
    assert!(
        late.message.en.contains("6 h 10 min"),
        "{}",
        late.message.en
    );
    assert_eq!(
        o.flags
            .iter()
            .filter(|f| f.code == "DAILY_LOG_MISSING")
            .count(),
        31
    );
    assert_eq!(o.primary_endpoint, Answer::Unknown);

    // ECMO+IABP, lost to follow-up after discharge on day 19.
    let c = ecmo_iabp.pop_front().unwrap();
    save(
        &mut s,
        &c,
        "IABP",
        &[("INSERTED", "Y"), ("INSERT_DT", &t(1, "12:00"))],
    );
    save(
        &mut s,
        &c,
        "DIS",
        &[("DIS_DATE", "2026-03-20"), ("STATUS", "ALIVE")],
    );
    save(
        &mut s,
        &c,
        "EOS",
        &[("EOS_STATUS", "LOST"), ("EOS_DATE", "2026-03-25")],
    );
    let o = s.subject_outcome(&c).unwrap();
    assert_eq!(o.primary_endpoint, Answer::Unknown);
    assert_eq!(o.day30_status, Day30Status::Unknown);
    assert_eq!(o.days_alive_to_day30, None);

    // ECMO arm, died on day 12 on ECMO, recorded in EVT, DIS and D30.
    let d = ecmo.pop_front().unwrap();
    daily_logs(&mut s, &d, 0..=12);
    save(
        &mut s,
        &d,
        "EVT#1",
        &[("EVT_TYPE", "DEATH"), ("EVT_DT", &t(13, "04:00"))],
    );
    save(
        &mut s,
        &d,
        "DIS",
        &[("DIS_DATE", "2026-03-13"), ("STATUS", "DEAD")],
    );
    save(
        &mut s,
        &d,
        "D30",
        &[
            ("CONTACT_DATE", "2026-03-31"),
            ("VITAL_STATUS", "DEAD"),
            ("DEATH_DATE", "2026-03-13"),
        ],
    );
    let o = s.subject_outcome(&d).unwrap();
    assert_eq!(o.arm, Some(Arm::Ecmo));
    assert_eq!((o.crossover, o.iabp_deviation), (Some(false), None));
    assert_eq!(o.death_day, Some(12));
    assert_eq!(o.primary_endpoint, Answer::Yes);
    assert_eq!(o.day30_status, Day30Status::Dead);
    assert_eq!(o.days_alive_to_day30, Some(12));
    assert_eq!(o.days_on_ecmo, dec("11.8"));
    assert!(o.flags.is_empty(), "{:?}", o.flags);
    // A conflicting date of death elsewhere raises a query.
    s.save(
        &d,
        &key("D30"),
        &[("DEATH_DATE", "2026-03-14")],
        &SaveOptions {
            reason: Some("copied from the death certificate".into()),
            confirm_warnings: true,
        },
    )
    .unwrap();
    assert_eq!(
        codes(&s.subject_outcome(&d).unwrap()),
        ["DEATH_DATES_CONFLICT"]
    );

    // ECMO arm, decannulated day 4, alive at day 30, died on day 31.
    let e = ecmo.pop_front().unwrap();
    daily_logs(&mut s, &e, 0..=5);
    save(
        &mut s,
        &e,
        "EVT#1",
        &[
            ("EVT_TYPE", "ECMO_DECANNULATION"),
            ("EVT_DT", &t(5, "10:00")),
        ],
    );
    save(
        &mut s,
        &e,
        "D30",
        &[("CONTACT_DATE", "2026-03-31"), ("VITAL_STATUS", "ALIVE")],
    );
    s.save(
        &e,
        &key("EVT#2"),
        &[("EVT_TYPE", "DEATH"), ("EVT_DT", "2026-04-01T03:00+08:00")],
        &confirm(),
    )
    .unwrap();
    let o = s.subject_outcome(&e).unwrap();
    assert_eq!(o.death_day, Some(31));
    assert_eq!(o.primary_endpoint, Answer::No);
    assert_eq!(o.days_alive_to_day30, Some(30));
    assert_eq!(o.successful_weaning, Some(Answer::Yes));
    assert_eq!(o.days_on_ecmo, dec("4.0"));
    assert!(o.flags.is_empty(), "{:?}", o.flags);
}

#[test]
fn control_crossing_over_to_impella_on_day_1() {
    let dir = tempfile::tempdir().unwrap();
    let Randomized {
        store: mut s,
        mut ecmo,
        ..
    } = randomized(dir.path(), 8);
    let id = ecmo.pop_front().unwrap();
    save(
        &mut s,
        &id,
        "EVT#1",
        &[
            ("EVT_TYPE", "UNLOADING_ESCALATION"),
            ("ESCALATION", "IMPELLA"),
            ("EVT_DT", &t(2, "01:30")),
            ("REASON", "LV distension"),
        ],
    );
    daily_logs(&mut s, &id, 0..=30);
    let o = s.subject_outcome(&id).unwrap();
    assert_eq!(o.crossover, Some(true));
    assert_eq!(codes(&o), ["CROSSOVER"]);
    assert_eq!(o.flags[0].form, "EVT#1");
    assert!(o.flags[0].message.en.contains("Impella"));
    assert!(o.flags[0].message.zh.contains("交叉"));
}

/// A save that a rule refuses: the form instance, what is typed, the rule.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

fn refused(r: Result<ecrf_store::SaveOutcome, StoreError>) -> Vec<(String, String, String)> {
    match r {
        Err(StoreError::Rejected(f)) => f
            .into_iter()
            .map(|f| (f.item, f.rule, f.message.en))
            .collect(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn warned(r: Result<ecrf_store::SaveOutcome, StoreError>) -> Vec<(String, String)> {
    match r {
        Err(StoreError::NeedsConfirmation(f)) => f.into_iter().map(|f| (f.item, f.rule)).collect(),
        other => panic!("expected a warning, got {other:?}"),
    }
}

#[test]
fn cross_form_rules_refuse_at_save_naming_field_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let Randomized {
        store: mut s,
        mut ecmo_iabp,
        ..
    } = randomized(dir.path(), 0);
    let id = ecmo_iabp.pop_front().unwrap();
    save(
        &mut s,
        &id,
        "IABP",
        &[("INSERTED", "Y"), ("INSERT_DT", &t(1, "12:00"))],
    );
    let plain = SaveOptions::default();
    let cases: &[Case] = &[
        (
            "EVT#1",
            &[
                ("EVT_TYPE", "ECMO_DECANNULATION"),
                ("EVT_DT", "2026-03-01T08:00+08:00"),
            ],
            "EVT_DECANNULATION_AFTER_CANNULATION",
        ),
        (
            "EVT#1",
            &[
                ("EVT_TYPE", "IABP_REMOVAL"),
                ("EVT_DT", "2026-03-01T11:00+08:00"),
            ],
            "EVT_IABP_REMOVAL_AFTER_INSERTION",
        ),
        (
            "EVT#1",
            &[("EVT_TYPE", "DEATH"), ("EVT_DT", "2026-03-01T10:00+08:00")],
            "EVT_DEATH_AFTER_RND",
        ),
        (
            "EVT#1",
            &[("EVT_TYPE", "DEATH"), ("EVT_DT", "2099-03-01T10:00+08:00")],
            "EVT_DT_NOT_FUTURE",
        ),
        ("DLY#2", &[("DATE", "2026-03-04")], "DLY_DATE_IS_STUDY_DAY"),
        (
            "DLY#0",
            &[("DATE", "2026-02-28")],
            "DLY_DATE_AFTER_ECMO_START",
        ),
        (
            "AE#1",
            &[("ONSET_DT", "2026-03-01T10:00+08:00")],
            "AE_ONSET_AFTER_RND",
        ),
        ("DIS", &[("DIS_DATE", "2026-02-28")], "DIS_DATE_AFTER_RND"),
        (
            "D30",
            &[("VITAL_STATUS", "DEAD"), ("DEATH_DATE", "2026-02-28")],
            "D30_DEATH_AFTER_RND",
        ),
        (
            "D30",
            &[("VITAL_STATUS", "DEAD"), ("DEATH_DATE", "2099-01-01")],
            "D30_DEATH_DATE_NOT_FUTURE",
        ),
        ("DIS", &[("DIS_DATE", "2099-01-01")], "DIS_DATE_NOT_FUTURE"),
    ];
    for (form, entries, rule) in cases {
        let before = s.audit_log(&id).unwrap().len();
        let found = refused(s.save(&id, &key(form), entries, &plain));
        assert!(
            found.iter().any(|(_, r, _)| r == rule),
            "{form} {entries:?}: expected {rule}, got {found:?}"
        );
        let (item, _, msg) = found.iter().find(|(_, r, _)| r == rule).unwrap();
        assert!(
            msg.contains(&format!(
                "{} {item}",
                &form[..form.find('#').unwrap_or(form.len())]
            )),
            "{msg}"
        );
        assert_eq!(s.audit_log(&id).unwrap().len(), before, "nothing written");
    }
    // Daily logs end the day after the last device came out.
    save(
        &mut s,
        &id,
        "EVT#1",
        &[("EVT_TYPE", "IABP_REMOVAL"), ("EVT_DT", &t(3, "12:00"))],
    );
    save(
        &mut s,
        &id,
        "EVT#2",
        &[
            ("EVT_TYPE", "ECMO_DECANNULATION"),
            ("EVT_DT", &t(4, "12:00")),
        ],
    );
    save(&mut s, &id, "DLY#4", &[("DATE", "2026-03-05")]);
    let found = refused(s.save(&id, &key("DLY#5"), &[("DATE", "2026-03-06")], &plain));
    assert_eq!(found[0].1, "DLY_DATE_IN_SUPPORT", "{found:?}");
    assert!(found[0].2.contains("DLY DATE"), "{found:?}");
    // The day-30 contact outside its window warns at save and is flagged once confirmed.
    assert_eq!(
        warned(s.save(&id, &key("D30"), &[("CONTACT_DATE", "2026-04-09")], &plain)),
        [(
            "CONTACT_DATE".to_string(),
            "D30_CONTACT_IN_WINDOW_TO".to_string()
        )]
    );
    save(&mut s, &id, "D30", &[("CONTACT_DATE", "2026-04-09")]);
    assert!(
        s.subject_outcome(&id)
            .unwrap()
            .has_flag("D30_OUTSIDE_WINDOW")
    );
}

/// A value just outside `[lo, hi]` (above when `above`), written with the item's decimals.
fn outside(item: &ecrf_core::ItemDef, lo: f64, hi: f64, above: bool) -> String {
    let places = if item.item_type == ItemType::Decimal {
        item.decimals.unwrap_or(1)
    } else {
        0
    };
    let step = 10f64.powi(-(places as i32));
    let v = if above { hi + step } else { lo - step };
    format!("{v:.*}", places as usize)
}

/// Entries that make `item` asked (its `ask_when` chain, first code of each condition).
fn asked<'a>(form: &'a ecrf_core::FormDef, item: &'a ecrf_core::ItemDef) -> Vec<(&'a str, String)> {
    let mut out = Vec::new();
    let mut cur = item;
    while let Some(c) = &cur.ask_when {
        out.push((c.item.as_str(), c.is[0].clone()));
        cur = form.item(&c.item).expect("condition item");
    }
    out
}

#[test]
fn every_hard_range_refuses_and_every_soft_range_warns() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    let id = s.new_subject().unwrap();
    let study = study();
    let (mut hard, mut soft) = (0, 0);
    for form in study.forms.iter().filter(|f| f.entry == Entry::User) {
        let instance = match form.repeat {
            Repeat::Once => form.id.clone(),
            _ => format!("{}#1", form.id),
        };
        for item in form.items.iter().filter(|i| i.derived.is_none()) {
            let mut entries: Vec<(&str, String)> = asked(form, item);
            let n = entries.len();
            if let Some(h) = item.hard {
                let (lo, hi) = (h.min.to_f64(), h.max.to_f64());
                for above in [false, true] {
                    entries.truncate(n);
                    let v = outside(item, lo, hi, above);
                    entries.push((item.id.as_str(), v.clone()));
                    let e: Vec<(&str, &str)> =
                        entries.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    let found = refused(s.save(&id, &key(&instance), &e, &confirm()));
                    assert!(
                        found.iter().any(|(i, r, m)| i == &item.id
                            && r == "hard_range"
                            && m.contains(&format!("{} {}", form.id, item.id))
                            && m.contains("outside the possible range")),
                        "{instance} {} = {v}: {found:?}",
                        item.id
                    );
                    hard += 1;
                }
            }
            if let (Some(sr), Some(h)) = (item.soft, item.hard) {
                for above in [false, true] {
                    let (lo, hi) = (sr.min.to_f64(), sr.max.to_f64());
                    let v = outside(item, lo, hi, above);
                    let d: Decimal = v.parse().unwrap();
                    if !h.contains(d) {
                        continue; // soft and hard share this bound
                    }
                    entries.truncate(n);
                    entries.push((item.id.as_str(), v.clone()));
                    let e: Vec<(&str, &str)> =
                        entries.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    let found = warned(s.save(&id, &key(&instance), &e, &SaveOptions::default()));
                    assert!(
                        found
                            .iter()
                            .any(|(i, r)| i == &item.id && r == "soft_range"),
                        "{instance} {} = {v}: {found:?}",
                        item.id
                    );
                    soft += 1;
                }
            }
        }
    }
    println!("hard-range refusals checked: {hard}, soft-range warnings checked: {soft}");
    assert!(hard > 100 && soft > 40, "{hard} {soft}");
    assert!(
        s.audit_log(&id)
            .unwrap()
            .iter()
            .all(|c| c.kind != ecrf_log::ChangeKind::ItemSet)
    );
}

/// Full-flow VA-ECMO can leave no pulse: a flat arterial trace (62/62) is saved, its pulse
/// pressure is 0; a diastolic above the systolic is still refused, naming the rule (issue 20,
/// point 3).
#[test]
fn a_flat_arterial_pressure_is_saved_with_pulse_pressure_zero() {
    let dir = tempfile::tempdir().unwrap();
    let Randomized {
        store: mut s,
        mut ecmo,
        ..
    } = randomized(dir.path(), 0);
    let id = ecmo.pop_front().unwrap();
    save(
        &mut s,
        &id,
        "DLY#0",
        &[
            ("DATE", "2026-03-01"),
            ("SBP", "62"),
            ("DBP", "62"),
            ("MAP", "62"),
        ],
    );
    let values = s.subject_value_map(&id).unwrap();
    let pp = ecrf_core::derive::derive_form(study().form("DLY").unwrap(), &values["DLY#0"]);
    assert_eq!(pp.get("PULSE_PRESSURE"), Some(&ecrf_core::Value::Int(0)));
    let above = refused(s.save(
        &id,
        &key("DLY#1"),
        &[("DATE", "2026-03-02"), ("SBP", "60"), ("DBP", "62")],
        &confirm(),
    ));
    assert!(
        above.iter().any(|(item, rule, message)| item == "DBP"
            && rule == "DLY_DBP_BELOW_SBP"
            && message.contains("cannot be above systolic")),
        "{above:?}"
    );
}

/// The stored values of one form instance, by item.
fn stored(s: &Store, id: &str, instance: &str) -> std::collections::BTreeMap<String, Value> {
    s.subject_value_map(id)
        .unwrap()
        .remove(instance)
        .unwrap_or_default()
}

/// Issue 20, point 3: a flat trace is recorded as such (pulsatile waveform "no"), pulse
/// pressure 0 is a valid value (flagged below its usual 10 mmHg, never refused), and the echo
/// records the LVEDD (ranges from the definition) and LV distension with "not assessed".
#[test]
fn the_daily_log_records_pulsatility_lvedd_and_lv_distension() {
    let dir = tempfile::tempdir().unwrap();
    let Randomized {
        store: mut s,
        mut ecmo,
        ..
    } = randomized(dir.path(), 0);
    let id = ecmo.pop_front().unwrap();
    save(
        &mut s,
        &id,
        "DLY#0",
        &[
            ("DATE", "2026-03-01"),
            ("SBP", "58"),
            ("DBP", "58"),
            ("MAP", "58"),
            ("PULSATILE", "N"),
            ("ECHO_DONE", "Y"),
            ("LVEDD", "64"),
            ("LV_DISTENSION", "@ND"),
        ],
    );
    let v = stored(&s, &id, "DLY#0");
    assert_eq!(v["PULSATILE"], Value::Code("N".into()));
    assert_eq!(v["LVEDD"], Value::Int(64));
    assert_eq!(v["LV_DISTENSION"], Value::Missing(MissingCode::NotDone));
    let o = s.subject_outcome(&id).unwrap();
    assert!(
        o.flags.iter().any(|f| f.code == "DERIVED_OUT_OF_RANGE"
            && f.form == "DLY#0"
            && f.item.as_deref() == Some("PULSE_PRESSURE")
            && f.message.en.contains("= 0 mmHg")),
        "{:?}",
        o.flags
    );
    // LVEDD: 130 mm is impossible, 90 mm unusual.
    let dly = key("DLY#0");
    let bad = refused(s.save(&id, &dly, &[("LVEDD", "130")], &confirm()));
    assert_eq!(bad[0].0, "LVEDD");
    assert_eq!(bad[0].1, "hard_range");
    let warn = warned(s.save(
        &id,
        &dly,
        &[("LVEDD", "90")],
        &SaveOptions {
            reason: Some("re-measured".into()),
            confirm_warnings: false,
        },
    ));
    assert_eq!(warn, [("LVEDD".to_string(), "soft_range".to_string())]);
    // Without an echo that day, neither is asked.
    let no_echo = refused(s.save(
        &id,
        &key("DLY#1"),
        &[
            ("DATE", "2026-03-02"),
            ("ECHO_DONE", "N"),
            ("LV_DISTENSION", "Y"),
        ],
        &confirm(),
    ));
    assert_eq!(no_echo[0].1, "not_asked");
    // The help says when the pressures are read, in both languages.
    let st = study();
    let map = st.form("DLY").unwrap().item("MAP").unwrap();
    let help = map.help.as_ref().unwrap();
    assert!(help.en.contains("one time point") && help.en.contains("unassisted"));
    assert!(help.zh.contains("同一时间点") && help.zh.contains("非辅助"));
}

/// Issue 20, point 5: a return to ECMO 22 h after decannulation makes that wean unsuccessful;
/// withdrawal of life-sustaining therapy is an event with its reason; the AE form carries the
/// new terms, the SAE dates in order and the relation to each device; a protocol deviation is
/// a form of its own.
#[test]
fn events_adverse_events_and_deviations_of_a_shock_trial() {
    let dir = tempfile::tempdir().unwrap();
    let Randomized {
        store: mut s,
        mut ecmo_iabp,
        ..
    } = randomized(dir.path(), 0);
    let id = ecmo_iabp.pop_front().unwrap();
    save(
        &mut s,
        &id,
        "EVT#1",
        &[
            ("EVT_TYPE", "ECMO_DECANNULATION"),
            ("EVT_DT", &t(4, "10:00")),
        ],
    );
    save(
        &mut s,
        &id,
        "EVT#2",
        &[("EVT_TYPE", "DEATH"), ("EVT_DT", &t(20, "10:00"))],
    );
    assert_eq!(
        s.subject_outcome(&id).unwrap().successful_weaning,
        Some(Answer::Yes)
    );
    // NEW_CONFIG belongs to a re-cannulation or a configuration change only.
    let r = refused(s.save(
        &id,
        &key("EVT#3"),
        &[
            ("EVT_TYPE", "RRT_START"),
            ("EVT_DT", &t(5, "08:00")),
            ("NEW_CONFIG", "CENTRAL"),
        ],
        &confirm(),
    ));
    assert_eq!(
        (r[0].0.as_str(), r[0].1.as_str()),
        ("NEW_CONFIG", "not_asked")
    );
    save(
        &mut s,
        &id,
        "EVT#3",
        &[
            ("EVT_TYPE", "ECMO_RECANNULATION"),
            ("EVT_DT", &t(5, "08:00")),
            ("NEW_CONFIG", "V_AV"),
            ("REASON", "Recurrent low output"),
        ],
    );
    let o = s.subject_outcome(&id).unwrap();
    assert_eq!(o.successful_weaning, Some(Answer::No));
    save(
        &mut s,
        &id,
        "EVT#4",
        &[
            ("EVT_TYPE", "WLST"),
            ("EVT_DT", &t(19, "18:00")),
            ("WLST_REASON", "NEURO"),
        ],
    );
    assert_eq!(
        stored(&s, &id, "EVT#4")["WLST_REASON"],
        Value::Code("NEURO".into())
    );

    // AE: a new term, relation to each device, the SAE dates in order.
    let ae = key("AE#1");
    let base: Vec<(&str, &str)> = vec![
        ("TERM", "MESENTERIC_ISCHAEMIA"),
        ("ONSET_DT", "2026-03-03T06:00+08:00"),
        ("SEVERITY", "SEVERE"),
        ("SERIOUS", "Y"),
        ("SAE_CRITERIA", "LIFE_THREATENING"),
        ("RELATION_ECMO", "POSSIBLE"),
        ("RELATION", "UNLIKELY"),
    ];
    let mut early = base.clone();
    early.push(("SAE_ONSET_DATE", "2026-03-02"));
    let r = refused(s.save(&id, &ae, &early, &confirm()));
    assert!(
        r.iter()
            .any(|(item, rule, _)| item == "SAE_ONSET_DATE" && rule == "AE_SAE_ONSET_AFTER_ONSET"),
        "{r:?}"
    );
    let mut late_report = base.clone();
    late_report.extend([
        ("SAE_ONSET_DATE", "2026-03-04"),
        ("SAE_REPORT_DATE", "2026-03-03"),
    ]);
    let r = refused(s.save(&id, &ae, &late_report, &confirm()));
    assert!(
        r.iter()
            .any(|(_, rule, _)| rule == "AE_SAE_REPORT_AFTER_SAE_ONSET"),
        "{r:?}"
    );
    let mut ok = base.clone();
    ok.extend([
        ("SAE_ONSET_DATE", "2026-03-03"),
        ("SAE_REPORT_DATE", "2026-03-04"),
    ]);
    save(&mut s, &id, "AE#1", &ok);
    let v = stored(&s, &id, "AE#1");
    assert_eq!(v["RELATION_ECMO"], Value::Code("POSSIBLE".into()));
    assert_eq!(v["RELATION"], Value::Code("UNLIKELY".into()));
    assert_eq!(v["TERM"], Value::Code("MESENTERIC_ISCHAEMIA".into()));

    // A protocol deviation, repeating; not in the future.
    save(
        &mut s,
        &id,
        "DEV#1",
        &[
            ("DEV_DATE", "2026-03-02"),
            ("CATEGORY", "PROCEDURE"),
            ("DESCRIPTION", "Day-1 echo not done 第1天未行超声"),
            ("ACTION", "Staff retrained"),
        ],
    );
    let r = refused(s.save(
        &id,
        &key("DEV#2"),
        &[("DEV_DATE", "2099-01-01"), ("CATEGORY", "OTHER")],
        &confirm(),
    ));
    assert_eq!(r[0].1, "DEV_DATE_NOT_FUTURE");
    assert_eq!(
        stored(&s, &id, "DEV#1")["CATEGORY"],
        Value::Code("PROCEDURE".into())
    );
}

/// Issue 20, point 6: deferred consent randomizes before anyone signs, and its outcome is
/// recorded afterwards; a refusal not yet recorded as a withdrawal is flagged; prospective
/// consent without a signer is refused at randomization; the patient's own decision after a
/// representative cannot precede the representative's consent.
#[test]
fn deferred_consent_is_followed_to_its_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    let new = |s: &mut Store, scrno: &str, con: &[(&str, &str)]| {
        let id = s.new_subject().unwrap();
        let scr = ecrf_core::sample::eligible_screening(scrno);
        s.save(&id, &key("SCR"), &scr, &confirm()).unwrap();
        s.save(&id, &key("CON"), con, &confirm()).unwrap();
        id
    };
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:30:00+08:00").unwrap();
    let unsigned = new(
        &mut s,
        "07-008",
        &[
            ("CONSENT_PROCESS", "PROSPECTIVE"),
            ("CONSENT_BY", "DEFERRED"),
        ],
    );
    let err = s.randomize_at(&unsigned, at).unwrap_err().to_string();
    assert!(err.contains("not signed"), "{err}");

    let deferred = new(
        &mut s,
        "07-009",
        &[("CONSENT_PROCESS", "DEFERRED"), ("CONSENT_BY", "DEFERRED")],
    );
    s.randomize_at(&deferred, at).unwrap();
    save(
        &mut s,
        &deferred,
        "CON",
        &[
            ("DEFERRED_OUTCOME", "REFUSED"),
            ("DEFERRED_OUTCOME_DATE", "2026-03-03"),
        ],
    );
    let flags = s.subject_outcome(&deferred).unwrap().flags;
    let consent: Vec<_> = flags
        .iter()
        .filter(|f| f.code == "CONSENT_RECORD")
        .collect();
    assert_eq!(consent.len(), 1, "{flags:?}");
    assert_eq!(consent[0].item.as_deref(), Some("WITHDRAWN"));
    save(
        &mut s,
        &deferred,
        "CON",
        &[
            ("WITHDRAWN", "Y"),
            ("WD_DATE", "2026-03-03"),
            ("WD_BY", "LAR"),
            ("WD_SCOPE", "NO_TREATMENT_DATA"),
        ],
    );
    assert!(
        !s.subject_outcome(&deferred)
            .unwrap()
            .has_flag("CONSENT_RECORD")
    );

    // The representative signed (10:10 on 1 March); the patient decides later.
    let lar = screened(&mut s, "09:00");
    let r = refused(s.save(
        &lar,
        &key("CON"),
        &[("RECONSENT", "CONFIRMED"), ("RECONSENT_DATE", "2026-02-28")],
        &confirm(),
    ));
    assert!(
        r.iter()
            .any(|(_, rule, _)| rule == "CON_RECONSENT_AFTER_CONSENT"),
        "{r:?}"
    );
    save(
        &mut s,
        &lar,
        "CON",
        &[("RECONSENT", "CONFIRMED"), ("RECONSENT_DATE", "2026-03-06")],
    );
    // Re-consent is asked only when a representative signed.
    let r = refused(s.save(
        &lar,
        &key("CON"),
        &[("CONSENT_BY", "PATIENT"), ("RECONSENT", "REFUSED")],
        &confirm(),
    ));
    assert!(
        r.iter()
            .any(|(item, rule, _)| item == "RECONSENT" && rule == "not_asked"),
        "{r:?}"
    );
}

/// Issue 20, point 7: the wider code lists are accepted and a randomized subject whose data
/// show an exclusion is flagged; SCR.SBP_LOW stops at 89 mmHg; BMI has a usual range.
#[test]
fn wider_code_lists_and_an_exclusion_seen_after_randomization() {
    let dir = tempfile::tempdir().unwrap();
    let Randomized {
        store: mut s,
        mut ecmo,
        ..
    } = randomized(dir.path(), 0);
    let id = ecmo.pop_front().unwrap();
    save(
        &mut s,
        &id,
        "BAS",
        &[
            ("AR_GRADE", "MODERATE_SEVERE"),
            ("SHOCK_CAUSE", "TAKOTSUBO"),
            ("HEIGHT", "170.0"),
            ("WEIGHT", "70.0"),
        ],
    );
    save(&mut s, &id, "ECMO", &[("CONFIG", "CENTRAL")]);
    let o = s.subject_outcome(&id).unwrap();
    let items: Vec<_> = o
        .flags
        .iter()
        .filter(|f| f.code == "EXCLUSION_IN_DATA")
        .map(|f| f.item.clone().unwrap_or_default())
        .collect();
    assert_eq!(items, ["AR_GRADE", "CONFIG"]);
    let r = refused(s.save(
        &id,
        &key("SCR"),
        &[("SBP_LOW", "90")],
        &SaveOptions {
            reason: Some("corrected".into()),
            confirm_warnings: true,
        },
    ));
    assert_eq!(
        (r[0].0.as_str(), r[0].1.as_str()),
        ("SBP_LOW", "hard_range")
    );
    // A weight of 35 kg for 170 cm: BMI 12.1 is flagged for checking.
    s.save(
        &id,
        &key("BAS"),
        &[("WEIGHT", "35.0")],
        &SaveOptions {
            reason: Some("re-weighed".into()),
            confirm_warnings: true,
        },
    )
    .unwrap();
    let flags = s.subject_outcome(&id).unwrap().flags;
    assert!(
        flags
            .iter()
            .any(|f| f.code == "DERIVED_OUT_OF_RANGE" && f.item.as_deref() == Some("BMI")),
        "{flags:?}"
    );
    let st = study();
    let fio2 = st.form("ECMO").unwrap().item("FIO2").unwrap();
    assert_eq!(fio2.label.en, "FdO2 (sweep gas O2)");
    assert!(fio2.label.zh.contains("FdO2"));
}
