//! Sample data: realistic, valid forms for the demo store (app and `ecrf demo`) and the
//! benchmark. Every value of the daily logs lies inside the soft ranges of `study/`, so a
//! benchmark save never needs a confirmation.
//!
//! The demo store tells each patient's path in the trial's order: screened eligible (core's
//! sample checklist, so the demo follows the checklist when it changes), consented,
//! randomized through the store's real `randomize` from a loaded lease of sealed envelopes,
//! then ECMO, the IABP when the arm says so, the baseline form and daily logs; plus one screen
//! failure for the screening log.

use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use ecrf_core::{FormKey, Role, Study};
use ecrf_randomize::{ListSpec, Stratum, generate, to_csv};
use ecrf_store::{CreateOptions, SaveOptions, Store};

/// ECMO implantation of a sample subject, started on `start` at 02:40 Beijing time.
pub fn ecmo_form(start: NaiveDate) -> Vec<(String, String)> {
    let t = format!("{}T02:40+08:00", start.format("%Y-%m-%d"));
    [
        ("START_DT", t.as_str()),
        ("PLACE", "CATH_LAB"),
        ("CONFIG", "FEM_FEM"),
        ("ART_FR", "17"),
        ("VEN_FR", "21"),
        ("DPC", "N"),
        ("FLOW", "3.5"),
        ("RPM", "3200"),
        ("SWEEP", "3.0"),
        ("FIO2", "60"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

/// The daily log of study `day` for sample subject `n` whose ECMO started on `start`, with
/// the IABP running for even `n`. Values vary with subject and day, deterministically.
pub fn daily_log(n: usize, start: NaiveDate, day: u32) -> Vec<(String, String)> {
    daily_log_with_iabp(n, start, day, n.is_multiple_of(2))
}

/// [`daily_log`] with the IABP running or not (as the subject's arm says).
pub fn daily_log_with_iabp(
    n: usize,
    start: NaiveDate,
    day: u32,
    iabp: bool,
) -> Vec<(String, String)> {
    let v = (n * 31 + day as usize * 7) % 20;
    let date = start + Duration::days(i64::from(day));
    let sbp = 90 + v;
    let dbp = 55 + v / 2;
    let map = (sbp + 2 * dbp) / 3;
    let owned: Vec<(&str, String)> = vec![
        ("DATE", date.format("%Y-%m-%d").to_string()),
        ("ECMO_STATUS", "RUNNING".into()),
        ("IABP_STATUS", if iabp { "RUNNING" } else { "OFF" }.into()),
        ("FLOW", format!("{}.{}", 3 + v % 2, v % 10)),
        ("RPM", (3000 + 10 * v).to_string()),
        ("SWEEP", format!("2.{}", v % 10)),
        ("FIO2", (50 + v).to_string()),
        ("MAP", map.to_string()),
        ("SBP", sbp.to_string()),
        ("DBP", dbp.to_string()),
        ("PULSATILE", "Y".into()),
        ("HR", (80 + v).to_string()),
        ("CVP", (8 + v % 5).to_string()),
        ("LACTATE", format!("{}.{}", 1 + v % 4, v % 10)),
        ("PH", format!("7.{}", 30 + v % 10)),
        ("CREAT", (90 + 3 * v).to_string()),
        ("TBIL", format!("{}.5", 15 + v)),
        ("ALT", (40 + v).to_string()),
        ("HB", (95 + v).to_string()),
        ("PLT", (120 + 2 * v).to_string()),
        ("PFHB", (80 + 5 * v).to_string()),
        ("LDH", (300 + 10 * v).to_string()),
        ("ANTICOAG", "HEPARIN".into()),
        ("ACT", (180 + v).to_string()),
        ("MV", "Y".into()),
        ("CRRT", if v.is_multiple_of(3) { "Y" } else { "N" }.into()),
        ("URINE", (1200 + 50 * v).to_string()),
        ("DOPAMINE", "0".into()),
        ("DOBUTAMINE", format!("{}", 3 + v % 3)),
        ("EPINEPHRINE", "0".into()),
        ("NOREPINEPHRINE", format!("0.{:02}", 5 + v)),
        ("MILRINONE", "0".into()),
        ("LEVOSIMENDAN", "0".into()),
        ("VASOPRESSIN", "0".into()),
        ("RBC_UNITS", (v % 3).to_string()),
        ("PLASMA_ML", "0".into()),
        ("PLT_UNITS", "0".into()),
        ("ECHO_DONE", "N".into()),
        ("CXR_OEDEMA", "N".into()),
        ("CX_BLEEDING", "N".into()),
        ("CX_LIMB_ISCHAEMIA", "N".into()),
        ("CX_STROKE", "N".into()),
        ("CX_HAEMOLYSIS", "N".into()),
        ("CX_INFECTION", "N".into()),
        ("CX_THROMBOSIS", "N".into()),
        ("CX_IABP_MALFUNCTION", "N".into()),
    ];
    let mut out: Vec<(String, String)> =
        owned.into_iter().map(|(a, b)| (a.to_string(), b)).collect();
    if iabp {
        out.push(("IABP_RATIO".into(), "1_1".into()));
        out.push(("AUG_DBP".into(), (100 + v).to_string()));
    }
    out
}

/// Saves sample `(item, value)` pairs.
pub fn save_sample(
    store: &mut Store,
    subject: &str,
    key: &FormKey,
    values: &[(String, String)],
) -> Result<(), String> {
    save_with(store, subject, key, values, &SaveOptions::default())
}

fn save_with(
    store: &mut Store,
    subject: &str,
    key: &FormKey,
    values: &[(String, String)],
    options: &SaveOptions,
) -> Result<(), String> {
    let entries: Vec<(&str, &str)> = values
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    store
        .save(subject, key, &entries, options)
        .map(|_| ())
        .map_err(|e| format!("sample {key} of {subject}: {e}"))
}

/// The demo's user names and password (printed by `make run`; a demo store holds no real data).
pub const DEMO_PASSWORD: &str = "demo-ward-2026";

/// The baseline form of sample subject `n`: an anterior STEMI in SCAI stage D, treated by
/// PCI, on the morning ECMO started (Beijing time), values inside the soft ranges.
pub fn baseline_form(n: usize, start: NaiveDate) -> Vec<(String, String)> {
    let day = start.format("%Y-%m-%d");
    let owned: Vec<(&str, String)> = vec![
        ("HEIGHT", (165 + 3 * n).to_string()),
        ("WEIGHT", (68 + 4 * n).to_string()),
        ("HTN", "Y".into()),
        ("DIABETES", if n == 1 { "Y" } else { "N" }.into()),
        ("HYPERLIPID", "Y".into()),
        ("SMOKER", if n == 0 { "Y" } else { "N" }.into()),
        ("PRIOR_MI", "N".into()),
        ("PRIOR_PCI", "N".into()),
        ("PRIOR_CABG", "N".into()),
        ("CHF", "N".into()),
        ("CKD", "N".into()),
        ("PRIOR_STROKE", "N".into()),
        ("AF", "N".into()),
        ("SHOCK_CAUSE", "AMI_STEMI".into()),
        ("SCAI", "D".into()),
        ("ARREST", "N".into()),
        ("MV", "Y".into()),
        ("REVASC", "PCI".into()),
        ("REVASC_DT", format!("{day}T01:50+08:00")),
        ("HR", (108 + 4 * n).to_string()),
        ("SBP", (78 + 2 * n).to_string()),
        ("DBP", (48 + n).to_string()),
        ("MAP", (58 + n).to_string()),
        ("LACTATE", format!("{}.{}", 5 + n, 2 + n)),
        ("PH", "7.24".into()),
        ("CREAT", (118 + 11 * n).to_string()),
        ("ALT", (85 + 20 * n).to_string()),
        ("TBIL", "18.5".into()),
        ("HB", (128 - 4 * n).to_string()),
        ("PLT", (190 - 10 * n).to_string()),
        ("LVEF", (20 + 3 * n).to_string()),
        ("AR_GRADE", "NONE".into()),
        ("AV_OPENING", "INTERMITTENT".into()),
        ("DOPAMINE", "0".into()),
        ("DOBUTAMINE", "5".into()),
        ("EPINEPHRINE", "0".into()),
        ("NOREPINEPHRINE", format!("0.{}", 2 + n)),
        ("MILRINONE", "0".into()),
        ("LEVOSIMENDAN", "0".into()),
        ("VASOPRESSIN", "0".into()),
    ];
    owned.into_iter().map(|(a, b)| (a.to_string(), b)).collect()
}

/// The IABP form of a subject of the ECMO+IABP arm: inserted at `at` (RFC 3339).
pub fn iabp_form(at: &str) -> Vec<(String, String)> {
    [
        ("INSERTED", "Y"),
        ("INSERT_DT", at),
        ("ACCESS", "L_FEMORAL"),
        ("BALLOON_VOL", "40"),
        ("TRIGGER", "ECG"),
        ("RATIO", "1_1"),
        ("COMPLICATIONS", "NONE"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

/// The demo's allocation list seed (a demo store holds no real data, so its list is fixed).
const DEMO_LIST_SEED: [u8; 32] = [7; 32];

/// A form's key (forms of the embedded study, so the names are known to exist).
fn key(form: &str, repeat: Option<u32>) -> FormKey {
    FormKey {
        form: form.into(),
        repeat,
    }
}

/// Saves sample values confirming their warnings, as a nurse does after reading them.
fn save_confirmed(
    store: &mut Store,
    subject: &str,
    key: &FormKey,
    values: &[(String, String)],
) -> Result<(), String> {
    let confirm = SaveOptions {
        reason: None,
        confirm_warnings: true,
    };
    save_with(store, subject, key, values, &confirm)
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// One patient's path through the trial as the demo tells it: ECMO started at 02:40 on
/// `start` (Beijing time), screened eligible at 03:00 (core's sample checklist), the spouse's
/// consent at 03:10, randomized at 03:30 from the site's sealed envelopes (the real path),
/// the IABP inserted at 04:15 when the arm says so, the baseline form, then a daily log for
/// each of study days 0 to 3.
fn enrol(store: &mut Store, n: usize, start: NaiveDate) -> Result<String, String> {
    let day = start.format("%Y-%m-%d").to_string();
    let at = |hm: &str| format!("{day}T{hm}+08:00");
    let subject = store.new_subject().map_err(|e| e.to_string())?;
    save_confirmed(store, &subject, &key("ECMO", None), &ecmo_form(start))?;
    let (scr_dt, lactate_dt, ecmo_dt) = (at("03:00"), at("02:20"), at("02:40"));
    let mut scr = owned(&[
        ("SCRNO", subject.as_str()),
        ("SCR_DT", &scr_dt),
        ("LACTATE_DT", &lactate_dt),
        ("ECMO_START_DT", &ecmo_dt),
    ]);
    scr.extend(owned(ecrf_core::sample::ELIGIBLE_SCREENING));
    save_confirmed(store, &subject, &key("SCR", None), &scr)?;
    let mut con = owned(&[("CONSENT_DT", &at("03:10"))]);
    con.extend(owned(ecrf_core::sample::CONSENT_BY_SPOUSE));
    save_confirmed(store, &subject, &key("CON", None), &con)?;
    let when = chrono::DateTime::parse_from_rfc3339(&format!("{day}T03:30:00+08:00"))
        .map_err(|e| e.to_string())?;
    let r = store
        .randomize_at(&subject, when)
        .map_err(|e| format!("randomize {subject}: {e}"))?;
    let iabp = r.arm == "ECMO_IABP";
    if iabp {
        save_confirmed(
            store,
            &subject,
            &key("IABP", None),
            &iabp_form(&at("04:15")),
        )?;
    }
    save_confirmed(store, &subject, &key("BAS", None), &baseline_form(n, start))?;
    for d in 0..=3 {
        save_confirmed(
            store,
            &subject,
            &key("DLY", Some(d)),
            &daily_log_with_iabp(n, start, d, iabp),
        )?;
    }
    Ok(subject)
}

/// A patient screened and not eligible: ECMO started during cardiopulmonary resuscitation
/// (exclusion E5), recorded as a screen failure.
fn screen_failure(store: &mut Store, start: NaiveDate) -> Result<String, String> {
    let day = start.format("%Y-%m-%d").to_string();
    let subject = store.new_subject().map_err(|e| e.to_string())?;
    let (scr_dt, lactate_dt, ecmo_dt) = (
        format!("{day}T21:30+08:00"),
        format!("{day}T20:50+08:00"),
        format!("{day}T21:05+08:00"),
    );
    let mut scr = owned(&[
        ("SCRNO", subject.as_str()),
        ("SCR_DT", &scr_dt),
        ("LACTATE_DT", &lactate_dt),
        ("ECMO_START_DT", &ecmo_dt),
    ]);
    scr.extend(
        ecrf_core::sample::ELIGIBLE_SCREENING
            .iter()
            .filter(|(item, _)| *item != "EXC5_ECPR")
            .map(|(a, b)| (a.to_string(), b.to_string())),
    );
    scr.extend(owned(&[
        ("EXC5_ECPR", "Y"),
        ("SCREEN_FAIL", "Y"),
        ("SF_REASON", "NOT_ELIGIBLE"),
    ]));
    save_confirmed(store, &subject, &key("SCR", None), &scr)?;
    Ok(subject)
}

/// Creates a demo store with one site, a nurse, the site's sealed envelopes and four screened
/// patients: three eligible, consented, randomized and followed (ECMO, IABP by arm, baseline,
/// four daily logs), and one screen failure.
pub fn create(path: &Path, study: Arc<Study>) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let opts = CreateOptions {
        site: "01".into(),
        admin_user: "admin".into(),
        admin_name: "Demo administrator".into(),
        admin_password: DEMO_PASSWORD.into(),
    };
    let (mut store, _recovery) =
        Store::create(path, Arc::clone(&study), opts).map_err(|e| e.to_string())?;
    store
        .add_user("nurse", "Demo nurse 示例护士", Role::Nurse, DEMO_PASSWORD)
        .map_err(|e| e.to_string())?;
    let spec = ListSpec {
        stratum: Stratum::site("01").map_err(|e| e.to_string())?,
        count: 16,
        block_sizes: vec![4],
    };
    let list = generate(&spec, &DEMO_LIST_SEED).map_err(|e| e.to_string())?;
    store
        .load_lease(&to_csv(&list))
        .map_err(|e| format!("demo lease: {e}"))?;
    drop(store);
    let mut store = Store::open(path, study, "nurse", DEMO_PASSWORD).map_err(|e| e.to_string())?;
    let start = chrono::Local::now().date_naive() - Duration::days(4);
    for n in 0..3 {
        enrol(&mut store, n, start)?;
    }
    screen_failure(&mut store, start - Duration::days(1))?;
    Ok(())
}
