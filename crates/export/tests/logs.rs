//! `export::logs`: the trial data replayed from change logs alone (what the server's database
//! holds) equal the stores' own projections — subjects, current values, users, signatures with
//! their validity — for the scripted trial, including a changed value and a broken signature.

mod common;

use common::{PASSWORD, investigator, new_consent_version, scripted_trial, study};
use ecrf_core::FormKey;
use ecrf_core::signature::SignatureMeaning;
use ecrf_export::TrialData;
use ecrf_store::Store;

#[test]
fn replayed_logs_equal_the_stores_projections() {
    let dir = tempfile::tempdir().unwrap();
    let stores = scripted_trial(dir.path());
    // Site 01: two signed forms, one of them broken afterwards by a changed value.
    let mut pi = investigator(&stores[0]);
    let con = FormKey::parse(&study(), "CON").unwrap();
    for subject in ["01-0001", "01-0002"] {
        pi.sign(
            subject,
            Some(&con),
            SignatureMeaning::Review,
            Some("pi"),
            PASSWORD,
        )
        .unwrap();
    }
    drop(pi);
    new_consent_version(&stores[0], "01-0002");

    let mut sites = Vec::new();
    let mut logs = Vec::new();
    let mut from_stores = TrialData::default();
    for path in &stores {
        let mut s = Store::open(path, study(), "dm", PASSWORD).unwrap();
        let mut d = TrialData::from_view(s.export_view(true).unwrap()).unwrap();
        let site = s.site().to_string();
        logs.push((site.clone(), s.all_changes().unwrap()));
        sites.push(site);
        from_stores.sites.append(&mut d.sites);
        from_stores.subjects.append(&mut d.subjects);
        from_stores.values.append(&mut d.values);
        from_stores.users.append(&mut d.users);
        from_stores.signatures.append(&mut d.signatures);
        from_stores.logs.append(&mut d.logs);
    }
    let replayed = ecrf_export::logs::from_logs(&sites, logs, true).unwrap();
    assert_eq!(replayed.sites, from_stores.sites);
    assert_eq!(replayed.subjects, from_stores.subjects);
    assert_eq!(replayed.values, from_stores.values);
    assert_eq!(replayed.users, from_stores.users);
    assert_eq!(replayed.signatures, from_stores.signatures);
    assert_eq!(
        replayed
            .signatures
            .iter()
            .map(|s| (s.subject.as_str(), s.valid))
            .collect::<Vec<_>>(),
        vec![("01-0001", true), ("01-0002", false)]
    );
    assert_eq!(replayed.change_count(), from_stores.change_count());
    let ids = |d: &TrialData| -> Vec<String> {
        d.changes()
            .map(|c| c.change.change_id().to_string())
            .collect()
    };
    assert_eq!(ids(&replayed), ids(&from_stores));
    // Without the changes: the same data, no log kept.
    let mut logs = Vec::new();
    for path in &stores {
        let s = Store::open(path, study(), "dm", PASSWORD).unwrap();
        logs.push((s.site().to_string(), s.all_changes().unwrap()));
    }
    let slim = ecrf_export::logs::from_logs(&sites, logs, false).unwrap();
    assert_eq!(slim.change_count(), 0);
    assert_eq!(slim.values, from_stores.values);
}

/// More sites than wait for the folding threads, each given as the server stores it (its `seq`
/// and JSON record), fold to the data of the parsed logs, whether the reader waits for the
/// folding ([`LogFolder::new`]) or never does ([`LogFolder::unbounded`]), merged in the order
/// the sites were added.
#[test]
fn stored_records_of_many_sites_fold_alike_whether_the_reader_waits_or_not() {
    use ecrf_export::logs::LogFolder;
    let dir = tempfile::tempdir().unwrap();
    let stores = scripted_trial(dir.path());
    let mut logs = Vec::new();
    for path in &stores {
        let s = Store::open(path, study(), "dm", PASSWORD).unwrap();
        logs.push(s.all_changes().unwrap());
    }
    // Twelve sites, each one of the stores' logs under a code of its own: a subject seen at
    // two sites is the first site's.
    let sites: Vec<String> = (1..=12).map(|i| format!("{i:02}")).collect();
    let site_logs: Vec<(String, Vec<ecrf_log::Change>)> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), logs[i % logs.len()].clone()))
        .collect();
    let expected = ecrf_export::logs::from_logs(&sites, site_logs.clone(), true).unwrap();
    let ids = |d: &TrialData| -> Vec<String> {
        d.changes()
            .map(|c| c.change.change_id().to_string())
            .collect()
    };
    assert_eq!(
        expected.change_count(),
        site_logs.iter().map(|(_, l)| l.len()).sum::<usize>()
    );
    for waits in [true, false] {
        let mut folder = if waits {
            LogFolder::new(true)
        } else {
            LogFolder::unbounded(true)
        }
        .unwrap();
        let mut records = ecrf_log::StoredRecords::default();
        for (site, log) in &site_logs {
            assert!(records.is_empty());
            for (i, c) in log.iter().enumerate() {
                records.push(i as i64 + 1, serde_json::to_string(c).unwrap().as_bytes());
            }
            records = folder.add_records(site.clone(), records).unwrap();
        }
        let data = folder.finish(&sites).unwrap();
        assert_eq!(data.sites, expected.sites, "waits: {waits}");
        assert_eq!(data.subjects, expected.subjects, "waits: {waits}");
        assert_eq!(data.values, expected.values, "waits: {waits}");
        assert_eq!(data.users, expected.users, "waits: {waits}");
        assert_eq!(data.signatures, expected.signatures, "waits: {waits}");
        assert_eq!(ids(&data), ids(&expected), "waits: {waits}");
    }
}

/// A record that is not a change, among many sites given to a reader that waits, stops the
/// export with an error naming its site and `seq`; nothing hangs.
#[test]
fn a_bad_stored_record_names_its_site_and_seq_and_nothing_hangs() {
    use ecrf_export::logs::LogFolder;
    let dir = tempfile::tempdir().unwrap();
    let stores = scripted_trial(dir.path());
    let s = Store::open(&stores[0], study(), "dm", PASSWORD).unwrap();
    let log = s.all_changes().unwrap();
    assert!(log.len() > 5);
    let sites: Vec<String> = (1..=12).map(|i| format!("{i:02}")).collect();
    let mut folder = LogFolder::new(false).unwrap();
    let mut records = ecrf_log::StoredRecords::default();
    for site in &sites {
        for (i, c) in log.iter().enumerate() {
            let seq = i as i64 + 1;
            if site == "03" && seq == 5 {
                records.push(seq, b"{");
            } else {
                records.push(seq, serde_json::to_string(c).unwrap().as_bytes());
            }
        }
        records = folder.add_records(site.clone(), records).unwrap();
    }
    let e = folder.finish(&sites).unwrap_err().to_string();
    assert!(e.contains("server change #5 of site 03"), "{e}");
}
