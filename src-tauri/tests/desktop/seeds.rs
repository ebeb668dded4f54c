//! Stores prepared before a scenario opens the window: a site with its users, a subject in the IABP arm, a lease of envelopes.

use std::path::Path;

/// A subject of the ECMO+IABP arm whose ECMO started at 08:00 UTC three days ago, randomized an
/// hour later (subjects are randomized through the store until one lands in that arm).
pub(crate) fn iabp_arm_subject_three_days_ago(
    store: &Path,
) -> (String, chrono::DateTime<chrono::FixedOffset>) {
    let study = std::sync::Arc::new(ecrf_core::trial::definition().expect("study"));
    let mut s = ecrf_store::Store::open(
        store,
        std::sync::Arc::clone(&study),
        "li",
        "nurse-password-1",
    )
    .expect("open as nurse");
    let day = chrono::Utc::now().date_naive() - chrono::Duration::days(3);
    let start = day
        .and_hms_opt(8, 0, 0)
        .expect("08:00")
        .and_utc()
        .fixed_offset();
    let at = |m: i64| {
        (start + chrono::Duration::minutes(m))
            .format("%Y-%m-%dT%H:%M+00:00")
            .to_string()
    };
    let key = |k: &str| ecrf_core::FormKey::parse(&study, k).expect("key");
    let opts = ecrf_store::SaveOptions {
        reason: None,
        confirm_warnings: true,
    };
    for _ in 0..7 {
        let id = s.new_subject().expect("subject");
        let scr = [
            ("SCRNO", "01-002".to_string()),
            ("SCR_DT", at(30)),
            ("AGE", "64".into()),
            ("SEX", "M".into()),
            ("INC1_AGE", "Y".into()),
            ("INC2_CS", "Y".into()),
            ("SBP_LT90", "Y".into()),
            ("SBP_LOW", "70".into()),
            ("SBP_DURATION", "40".into()),
            ("CATECHOL", "N".into()),
            ("LACT_GT3", "Y".into()),
            ("LACTATE", "6.2".into()),
            ("LACTATE_DT", at(0)),
            ("HYPOPERF", "Y".into()),
            ("HYPOPERF_SIGNS", "COLD".into()),
            ("INC3_ECMO", "Y".into()),
            ("ECMO_START_DT", at(0)),
            ("LV_UNLOADING_STARTED", "N".into()),
            ("INC4_CONSENT", "Y".into()),
            ("EXC1_AI_DISSECTION", "N".into()),
            ("EXC2_PVD", "N".into()),
            ("EXC3_POSTCARDIOTOMY", "N".into()),
            ("EXC4_NONCARDIAC", "N".into()),
            ("EXC5_ECPR", "N".into()),
            ("EXC6_PRIOR_MCS", "N".into()),
            ("EXC7_BLEEDING", "N".into()),
            ("EXC8_MALIGNANCY", "N".into()),
            ("EXC9_NEURO", "N".into()),
        ];
        let scr: Vec<(&str, &str)> = scr.iter().map(|(k, v)| (*k, v.as_str())).collect();
        s.save(&id, &key("SCR"), &scr, &opts).expect("SCR");
        let con_dt = at(40);
        let con = [
            ("CONSENT_BY", "PATIENT"),
            ("CONSENT_DT", con_dt.as_str()),
            ("ICF_VERSION", "V1.0 2025-10-01"),
            ("OBTAINED_BY", "Dr Zhao"),
        ];
        s.save(&id, &key("CON"), &con, &opts).expect("CON");
        let ecmo_start = at(0);
        s.save(
            &id,
            &key("ECMO"),
            &[("START_DT", ecmo_start.as_str())],
            &opts,
        )
        .expect("ECMO");
        let r = s
            .randomize_at(&id, start + chrono::Duration::minutes(60))
            .expect("randomize");
        if r.arm == "ECMO_IABP" {
            return (id, start);
        }
    }
    panic!("no envelope of the ECMO+IABP arm among the next seven");
}

/// A local date-time `minutes` ago, as the form reads it (with its UTC offset).
/// A reason for change with markup and SQL in it (hostile-input check).
pub(crate) const HOSTILE_REASON: &str =
    "misread the tape <img src=x onerror=alert(1)> '); DROP TABLE subjects;--";

pub(crate) fn ago(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes))
        .format("%Y-%m-%dT%H:%M+00:00")
        .to_string()
}

/// Two blocks of site 01 from a fixed seed, loaded as the administrator would with
/// `ecrf randomization load-lease`.
pub(crate) fn load_lease(store: &Path) {
    let study = std::sync::Arc::new(ecrf_core::trial::definition().expect("study"));
    let mut admin =
        ecrf_store::Store::open(store, study, "admin", "admin-password-1").expect("open as admin");
    let spec = ecrf_randomize::ListSpec {
        stratum: ecrf_randomize::Stratum::site("01").expect("site"),
        count: 8,
        block_sizes: vec![4, 6, 8],
    };
    let list = ecrf_randomize::generate(&spec, &[5; 32]).expect("list");
    admin
        .load_lease(&ecrf_randomize::to_csv(&list))
        .expect("load the lease");
}

/// Site 01 with a nurse, a monitor and an investigator, and subject 01-0001 with ECMO and a
/// complete daily log of day 1, made through the store as the set-up and a nurse would.
pub(crate) fn oversight_site(store: &Path) {
    let study = std::sync::Arc::new(ecrf_core::trial::definition().expect("study"));
    let opts = ecrf_store::CreateOptions {
        site: "01".into(),
        admin_user: "admin".into(),
        admin_name: "Admin".into(),
        admin_password: "admin-password-1".into(),
    };
    let (mut admin, _) =
        ecrf_store::Store::create(store, std::sync::Arc::clone(&study), opts).expect("create");
    for (user, name, role) in [
        ("li", "Li Na 李娜", ecrf_core::Role::Nurse),
        ("mon", "Monica Monitor", ecrf_core::Role::Monitor),
        ("wang", "Dr Wang Wei 王伟", ecrf_core::Role::Investigator),
    ] {
        admin
            .add_user(user, name, role, &format!("{user}-password-1"))
            .expect("add user");
    }
    drop(admin);
    let mut nurse =
        ecrf_store::Store::open(store, study, "li", "li-password-1").expect("open as nurse");
    let subject = nurse.new_subject().expect("subject");
    let start = chrono::Local::now().date_naive() - chrono::Duration::days(3);
    let key = |text: &str| ecrf_core::FormKey::parse(nurse.study(), text).expect("key");
    let (ecmo, dly) = (key("ECMO"), key("DLY#1"));
    ecrf_app::demo::save_sample(
        &mut nurse,
        &subject,
        &ecmo,
        &ecrf_app::demo::ecmo_form(start),
    )
    .expect("ECMO");
    ecrf_app::demo::save_sample(
        &mut nurse,
        &subject,
        &dly,
        &ecrf_app::demo::daily_log(0, start, 1),
    )
    .expect("day 1");
}
