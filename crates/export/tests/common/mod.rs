//! The scripted trial the export tests read: two sites (two real encrypted stores), randomized
//! subjects in both arms, daily logs, a death before day 30, a survivor, a subject lost to
//! follow-up, values changed with reasons, missing-data codes, and a text with Chinese, a
//! comma, a quote and a line break.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ecrf_core::sample::eligible_screening;
use ecrf_core::{FormKey, Role};
use ecrf_export::TrialData;
use ecrf_store::{SaveOptions, Store};
use ecrf_testkit::{ADMIN, DATA_MANAGER, NURSE, Site, User, open_as};

pub use ecrf_testkit::study;

/// The text that must survive every format.
pub const TRICKY: &str = "失访：电话无人接听, 家属说\"已转院\"\n第二行 line two";

/// The reason given for a changed value.
pub const REASON: &str = "监护仪读数核对 re-read from the monitor";

fn key(id: &str) -> FormKey {
    FormKey::parse(&study(), id).expect("form key")
}

fn save(s: &mut Store, subject: &str, form: &str, values: &[(&str, &str)]) {
    let opts = SaveOptions {
        reason: None,
        confirm_warnings: true,
    };
    s.save(subject, &key(form), values, &opts)
        .unwrap_or_else(|e| panic!("{subject} {form}: {e}"));
}

fn change(s: &mut Store, subject: &str, form: &str, values: &[(&str, &str)]) {
    let opts = SaveOptions {
        reason: Some(REASON.into()),
        confirm_warnings: true,
    };
    s.save(subject, &key(form), values, &opts)
        .unwrap_or_else(|e| panic!("{subject} {form}: {e}"));
}

/// What happens to a subject by day 30.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fate {
    /// Died on study day 5.
    Died,
    /// Alive at day 30.
    Survived,
    /// Lost to follow-up.
    Lost,
}

/// A new subject's forms: screening, consent and ECMO, randomization on 1 March 2026 at 10:30
/// Beijing time, then the IABP form (inserted 2 h 30 min after ECMO start in the IABP arm, and
/// in the control arm when `crossover`), daily logs from day 0, day 30 and end of study.
fn forms(s: &mut Store, n: usize, fate: Fate, crossover: bool) {
    let scr_no = format!("{}-S{n:03}", s.site());
    let subject = &ecrf_testkit::eligible_subject(s, &scr_no);
    save(
        s,
        subject,
        "ECMO",
        &[
            ("START_DT", "2026-03-01T09:00+08:00"),
            ("PLACE", "CATH_LAB"),
            ("CONFIG", "FEM_FEM"),
            ("ART_FR", "17"),
            ("VEN_FR", "21"),
            ("DPC", "N"),
            ("FLOW", "3.5"),
            ("RPM", "3200"),
            ("SWEEP", "3.0"),
            ("FIO2", "60"),
        ],
    );
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:30:00+08:00").unwrap();
    let r = s.randomize_at(subject, at).unwrap();
    let iabp = r.arm == "ECMO_IABP" || crossover;
    if iabp {
        save(
            s,
            subject,
            "IABP",
            &[("INSERTED", "Y"), ("INSERT_DT", "2026-03-01T11:30+08:00")],
        );
    } else {
        save(
            s,
            subject,
            "IABP",
            &[
                ("INSERTED", "N"),
                ("NOT_INSERTED_REASON", "对照组 control arm"),
            ],
        );
    }
    let days = if fate == Fate::Died { 5 } else { 3 };
    for day in 0..days {
        let date = format!("2026-03-{:02}", day + 1);
        let hr = (80 + n + day as usize).to_string();
        let lactate = if day == 1 {
            "@ND".to_string()
        } else {
            format!("{}.{}", 2 + day % 3, n % 10)
        };
        save(
            s,
            subject,
            &format!("DLY#{day}"),
            &[
                ("DATE", &date),
                ("ECMO_STATUS", "RUNNING"),
                ("IABP_STATUS", if iabp { "RUNNING" } else { "@NA" }),
                ("SBP", "95"),
                ("DBP", "60"),
                ("MAP", "72"),
                ("HR", &hr),
                ("LACTATE", &lactate),
            ],
        );
    }
    // A value changed with a reason.
    change(s, subject, "DLY#1", &[("HR", "123")]);
    match fate {
        Fate::Died => {
            save(
                s,
                subject,
                "D30",
                &[
                    ("CONTACT_DATE", "2026-03-31"),
                    ("METHOD", "RECORDS"),
                    ("VITAL_STATUS", "DEAD"),
                    ("DEATH_DATE", "2026-03-06"),
                    ("DEATH_CAUSE", "CV_SHOCK"),
                    ("REHOSP", "@NA"),
                    ("MRS", "6"),
                ],
            );
            save(
                s,
                subject,
                "EOS",
                &[("EOS_STATUS", "DIED"), ("EOS_DATE", "2026-03-06")],
            );
        }
        Fate::Survived => {
            save(
                s,
                subject,
                "D30",
                &[
                    ("CONTACT_DATE", "2026-03-31"),
                    ("METHOD", "CLINIC"),
                    ("VITAL_STATUS", "ALIVE"),
                    ("VAD_HTX", "@UNK"),
                    ("REHOSP", "N"),
                    ("MRS", "3"),
                ],
            );
            change(s, subject, "D30", &[("MRS", "2")]);
            save(
                s,
                subject,
                "EOS",
                &[("EOS_STATUS", "COMPLETED"), ("EOS_DATE", "2026-03-31")],
            );
        }
        Fate::Lost => {
            save(
                s,
                subject,
                "D30",
                &[
                    ("CONTACT_DATE", "2026-03-31"),
                    ("METHOD", "PHONE"),
                    ("VITAL_STATUS", "UNKNOWN"),
                    ("REHOSP", "@UNK"),
                    ("MRS", "@UNK"),
                ],
            );
            save(
                s,
                subject,
                "EOS",
                &[
                    ("EOS_STATUS", "LOST"),
                    ("EOS_DATE", "2026-03-31"),
                    ("EOS_REASON", TRICKY),
                ],
            );
        }
    }
}

pub const PASSWORD: &str = "trial-password";

/// The users of every site, all with [`PASSWORD`].
const ADMIN_USER: User = User {
    name: "管理员 Admin",
    ..ADMIN.with_password(PASSWORD)
};
const NURSE_USER: User = User {
    name: "护士 Li",
    ..NURSE.with_password(PASSWORD)
};
const DM: User = User {
    name: "Data manager 数据管理员",
    ..DATA_MANAGER.with_password(PASSWORD)
};
const PI: User = User {
    username: "pi",
    name: "Dr Wang 王医生",
    role: Role::Investigator,
    password: PASSWORD,
};

/// One site's store: `fates` randomized subjects (IABP inserted in the IABP arm) and one
/// subject screened but never randomized.
fn site(dir: &Path, code: &str, fates: &[Fate]) -> PathBuf {
    let path = dir.join(format!("site{code}.ecrf"));
    let mut seed = [7u8; 32];
    seed[0] = code.as_bytes()[1];
    let mut s = Site::new(code)
        .admin(ADMIN_USER)
        .with(NURSE_USER)
        .with(DM)
        .with_lease(8, seed)
        .create_as(&path, &NURSE_USER);
    for (n, fate) in fates.iter().enumerate() {
        forms(&mut s, n + 1, *fate, code == "02" && n == 0);
    }
    let screened = s.new_subject().unwrap();
    save(
        &mut s,
        &screened,
        "SCR",
        &eligible_screening(&format!("{code}-S999")),
    );
    path
}

/// Adds the investigator `pi` (Dr Wang 王医生) to the store at `path` and opens it as pi.
pub fn investigator(path: &Path) -> Store {
    let mut admin = open_as(path, &ADMIN_USER);
    admin
        .add_user(PI.username, PI.name, PI.role, PI.password)
        .unwrap();
    drop(admin);
    open_as(path, &PI)
}

/// A nurse records a new consent form version for `subject`: a value a signature on CON covers.
pub fn new_consent_version(path: &Path, subject: &str) {
    let mut nurse = open_as(path, &NURSE_USER);
    nurse
        .save(
            subject,
            &FormKey::parse(&study(), "CON").unwrap(),
            &[("ICF_VERSION", "V1.1 2025-12-01")],
            &SaveOptions {
                reason: Some("new consent form version".into()),
                confirm_warnings: true,
            },
        )
        .unwrap();
}

/// Creates the trial in `dir`: site 01 with four randomized subjects (a full block: both arms),
/// site 02 with two. Returns the store paths.
pub fn scripted_trial(dir: &Path) -> Vec<PathBuf> {
    vec![
        site(
            dir,
            "01",
            &[Fate::Died, Fate::Survived, Fate::Lost, Fate::Survived],
        ),
        site(dir, "02", &[Fate::Survived, Fate::Died]),
    ]
}

/// The trial's data as the data manager exports it.
pub fn trial_data(stores: &[PathBuf]) -> TrialData {
    let mut data = TrialData::default();
    for p in stores {
        let mut s = open_as(p, &DM);
        data.add_view(s.export_view(true).unwrap()).unwrap();
    }
    data
}
