//! Sample data: realistic, valid forms for the demo store (app and `ecrf demo`) and the benchmark. Every value lies
//! inside the soft ranges of `study/`, so a sample save never needs a confirmation.

use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use ecrf_core::{FormKey, Role, Study};
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

/// The daily log of study `day` for sample subject `n` whose ECMO started on `start`.
/// Values vary with subject and day, deterministically.
pub fn daily_log(n: usize, start: NaiveDate, day: u32) -> Vec<(String, String)> {
    let v = (n * 31 + day as usize * 7) % 20;
    let date = start + Duration::days(i64::from(day));
    let sbp = 90 + v;
    let dbp = 55 + v / 2;
    let map = (sbp + 2 * dbp) / 3;
    let owned: Vec<(&str, String)> = vec![
        ("DATE", date.format("%Y-%m-%d").to_string()),
        ("ECMO_STATUS", "RUNNING".into()),
        (
            "IABP_STATUS",
            if n.is_multiple_of(2) {
                "RUNNING"
            } else {
                "OFF"
            }
            .into(),
        ),
        ("FLOW", format!("{}.{}", 3 + v % 2, v % 10)),
        ("RPM", (3000 + 10 * v).to_string()),
        ("SWEEP", format!("2.{}", v % 10)),
        ("FIO2", (50 + v).to_string()),
        ("MAP", map.to_string()),
        ("SBP", sbp.to_string()),
        ("DBP", dbp.to_string()),
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
    if n.is_multiple_of(2) {
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
    let entries: Vec<(&str, &str)> = values
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    store
        .save(subject, key, &entries, &SaveOptions::default())
        .map(|_| ())
        .map_err(|e| format!("sample {key} of {subject}: {e}"))
}

/// The demo's user names and password (printed by `make run`; a demo store holds no real data).
pub const DEMO_PASSWORD: &str = "demo-ward-2026";

/// Creates a demo store with one site, a nurse and three subjects with ECMO and daily logs.
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
    drop(store);
    let mut store = Store::open(path, study, "nurse", DEMO_PASSWORD).map_err(|e| e.to_string())?;
    let start = chrono::Local::now().date_naive() - Duration::days(4);
    let ecmo = FormKey {
        form: "ECMO".into(),
        repeat: None,
    };
    for n in 0..3 {
        let subject = store.new_subject().map_err(|e| e.to_string())?;
        save_sample(&mut store, &subject, &ecmo, &ecmo_form(start))?;
        for day in 0..=3 {
            let key = FormKey {
                form: "DLY".into(),
                repeat: Some(day),
            };
            save_sample(&mut store, &subject, &key, &daily_log(n, start, day))?;
        }
    }
    Ok(())
}
