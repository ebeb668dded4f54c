//! Issue 20, point 11: a store created under study definition 1.0.0 (the files as they were,
//! kept in `tests/data/study-1.0.0/`) opens with the app's definition (1.1.0) and its data read
//! as they were entered: the same values, every stored code still a code of its item's list
//! (so labels, printouts and exports resolve), every stored item still an item of its form,
//! the 1.0.0 "deferred consent" record still judged as deferred consent, and the subject's
//! record (casebook) and outcome computed without error.

use std::sync::Arc;

use ecrf_core::study::Study;
use ecrf_core::{FormKey, Value};
use ecrf_store::{SaveOptions, Store};
use ecrf_testkit::{ADMIN, NURSE, Site, lease_csv, open_as, study};

macro_rules! old_forms {
    ($($id:literal),*) => {
        &[$((concat!("study/forms/", $id, ".toml"),
             include_str!(concat!("data/study-1.0.0/forms/", $id, ".toml")))),*]
    };
}

/// Study definition 1.0.0, as released.
fn definition_1_0_0() -> Arc<Study> {
    let forms: &[(&str, &str)] = old_forms!(
        "SCR", "CON", "RND", "BAS", "ECMO", "IABP", "DLY", "EVT", "AE", "DIS", "D30", "EOS"
    );
    let study = Study::from_sources(
        (
            "study/study.toml",
            include_str!("data/study-1.0.0/study.toml"),
        ),
        forms,
    )
    .expect("definition 1.0.0");
    assert_eq!(study.version, "1.0.0");
    Arc::new(study)
}

/// Saves what a 1.0.0 app could: the samples' answers to items that came later (as
/// `SCR.LV_UNLOADING_STARTED` in 1.1.0) are left out.
fn save(s: &mut Store, old: &Study, id: &str, form: &str, values: &[(&str, &str)]) {
    let key = FormKey::parse(old, form).unwrap();
    let def = old.form(&key.form).expect("a 1.0.0 form");
    let values: Vec<(&str, &str)> = values
        .iter()
        .filter(|(item, _)| def.item(item).is_some())
        .copied()
        .collect();
    s.save(
        id,
        &key,
        &values,
        &SaveOptions {
            reason: None,
            confirm_warnings: true,
        },
    )
    .unwrap_or_else(|e| panic!("1.0.0 {form}: {e}"));
}

#[test]
fn a_store_of_definition_1_0_0_opens_and_reads_with_1_1_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.ecrf");
    let old = definition_1_0_0();
    assert_eq!(study().version, "1.1.0");

    // ---- entered under 1.0.0
    let site = Site::new("07").with_nurse();
    let (mut admin, _) = Store::create(&path, Arc::clone(&old), site.options()).unwrap();
    admin
        .add_user(NURSE.username, NURSE.name, NURSE.role, NURSE.password)
        .unwrap();
    admin.load_lease(&lease_csv("07", 4, [9; 32])).unwrap();
    drop(admin);
    let mut s = Store::open(&path, Arc::clone(&old), NURSE.username, NURSE.password).unwrap();
    let id = s.new_subject().unwrap();
    save(
        &mut s,
        &old,
        &id,
        "SCR",
        &ecrf_core::sample::eligible_screening("07-001"),
    );
    // 1.0.0: "deferred consent" was an answer of "Consent by"; nobody has signed yet.
    save(&mut s, &old, &id, "CON", &[("CONSENT_BY", "DEFERRED")]);
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:30:00+08:00").unwrap();
    s.randomize_at(&id, at).unwrap();
    save(
        &mut s,
        &old,
        &id,
        "BAS",
        &[
            ("HEIGHT", "168.0"),
            ("WEIGHT", "72.5"),
            ("SHOCK_CAUSE", "ADHF"),
            ("AR_GRADE", "TRACE"),
            ("LVEDD", "61"),
        ],
    );
    save(
        &mut s,
        &old,
        &id,
        "ECMO",
        &[
            ("START_DT", "2026-03-01T09:00+08:00"),
            ("CONFIG", "FEM_FEM"),
            ("FIO2", "60"),
        ],
    );
    save(
        &mut s,
        &old,
        &id,
        "DLY#0",
        &[
            ("DATE", "2026-03-01"),
            ("ECMO_STATUS", "RUNNING"),
            ("SBP", "84"),
            ("DBP", "52"),
            ("MAP", "63"),
            ("FIO2", "55"),
            ("ECHO_DONE", "Y"),
            ("LV_DISTENSION", "Y"),
        ],
    );
    save(
        &mut s,
        &old,
        &id,
        "EVT#1",
        &[
            ("EVT_TYPE", "ECMO_DECANNULATION"),
            ("EVT_DT", "2026-03-04T10:00+08:00"),
        ],
    );
    save(
        &mut s,
        &old,
        &id,
        "AE#1",
        &[
            ("TERM", "BLEEDING"),
            ("BARC", "2"),
            ("ONSET_DT", "2026-03-02T08:00+08:00"),
            ("SEVERITY", "MODERATE"),
            ("SERIOUS", "N"),
            ("RELATION", "POSSIBLE"),
        ],
    );
    let entered = s.subject_value_map(&id).unwrap();
    let outcome_then = s.subject_outcome(&id).unwrap();
    drop(s);

    // ---- opened by the app of definition 1.1.0
    let s = open_as(&path, &NURSE);
    let now = study();
    let read = s.subject_value_map(&id).unwrap();
    assert_eq!(read, entered, "the same values");
    for (instance, values) in &read {
        let form_id = instance.split('#').next().unwrap();
        let form = now
            .form(form_id)
            .unwrap_or_else(|| panic!("form {form_id} of a 1.0.0 store is gone"));
        for (item_id, value) in values {
            let item = form
                .item(item_id)
                .unwrap_or_else(|| panic!("{instance} {item_id} is not an item of 1.1.0"));
            let codes: Vec<String> = now.codes_for(item).into_iter().map(|c| c.code).collect();
            let stored: Vec<&String> = match value {
                Value::Code(c) => vec![c],
                Value::Codes(cs) => cs.iter().collect(),
                _ => vec![],
            };
            for c in stored {
                assert!(
                    codes.contains(c),
                    "{instance} {item_id} = {c}: not a code of 1.1.0 ({codes:?})"
                );
            }
        }
    }
    // The 1.0.0 consent record still reads as deferred consent, randomizable, not yet signed.
    let con = &read["CON"];
    assert!(ecrf_core::eligibility::is_deferred(con));
    assert_eq!(ecrf_core::eligibility::consent(con), Ok(()));
    let signer = now.form("CON").unwrap().item("CONSENT_BY").unwrap();
    let label = now
        .codes_for(signer)
        .into_iter()
        .find(|c| c.code == "DEFERRED")
        .map(|c| c.label);
    assert_eq!(
        label.map(|l| l.en),
        Some("Not yet signed (deferred consent)".to_string())
    );
    // The same outcome (1.0.0 has no event, code or flag that 1.1.0 reads differently).
    let outcome_now = s.subject_outcome(&id).unwrap();
    assert_eq!(outcome_now, outcome_then);
    assert_eq!(
        outcome_now.successful_weaning,
        outcome_then.successful_weaning
    );
    // The whole record reads (what the printout and the subject page show).
    let book = s.casebook(&id).unwrap();
    assert!(book.forms.iter().any(|f| f.key.form == "DLY"));
    drop(s);
    // An administrator can still open it too (the key file is untouched by the amendment).
    drop(open_as(&path, &ADMIN));
}
