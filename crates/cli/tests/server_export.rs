//! `ecrf export … --database-url`: the scripted two-site trial of the export tests, each site's
//! store enrolled with the real `ecrf server` and synced to a real PostgreSQL, then exported from
//! the server's database. Every data file equals the export of the merged site stores byte for
//! byte; the audit trail holds the same changes (numbered in the server's order); `--site`
//! gives one site's files.

mod server;
#[path = "../../export/tests/common/mod.rs"]
mod trial;

use std::path::Path;
use std::process::Command;

use ecrf_export::{ExportOptions, Format};
use ecrf_store::Store;
use server::{Server, ecrf_bin, fresh_database};

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The ODM file without its creation stamp (the only part that differs between two runs).
fn odm_body(dir: &Path) -> String {
    let xml = std::fs::read_to_string(dir.join("early-iabp-odm.xml")).unwrap();
    xml.lines()
        .filter(|l| !l.contains("CreationDateTime="))
        .filter(|l| !l.trim_start().starts_with("FileOID="))
        .collect::<Vec<_>>()
        .join("\n")
}

/// audit_trail.csv rows without the `seq` column (a store's local order number; the server
/// numbers in its own order).
fn audit_rows(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("audit_trail.csv")).unwrap();
    text.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (site, rest) = l.split_once(',').unwrap();
            let (_, rest) = rest.split_once(',').unwrap();
            format!("{site},{rest}")
        })
        .collect()
}

fn server_export(db: &str, store: &Path, args: &[&str], out: &Path) {
    let run = Command::new(ecrf_bin())
        .args(["export"])
        .args(args)
        .args(["--database-url", db, "-o"])
        .arg(out)
        .env("ECRF_STORE", store)
        .env("ECRF_USER", "dm")
        .env("ECRF_PASSWORD", trial::PASSWORD)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "ecrf export {args:?} --database-url: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn an_export_from_the_server_equals_the_merge_of_the_site_stores() {
    let dir = tempfile::tempdir().unwrap();
    let stores = trial::scripted_trial(dir.path());
    let db = fresh_database();
    let server = Server::start(&db, dir.path());
    for (code, path) in ["01", "02"].iter().zip(&stores) {
        server.add_site(code);
        let mut s = Store::open(path, trial::study(), "nurse", trial::PASSWORD).unwrap();
        ecrf_sync::enrol(
            &s,
            &server.url(),
            &server.enrol_code(code, s.device_id()),
            None,
        )
        .unwrap();
        let client = ecrf_sync::client::client_of(&s).unwrap();
        let report = ecrf_sync::sync(&mut s, &client, &mut |_| {}).unwrap();
        assert!(report.pushed > 0, "{report:?}");
    }
    let opts = ExportOptions {
        include_audit: true,
        ..ExportOptions::default()
    };
    let from_stores = dir.path().join("from-stores");
    let data = trial::trial_data(&stores);
    ecrf_export::export(&trial::study(), &data, &Format::ALL, &opts, &from_stores).unwrap();
    let from_server = dir.path().join("from-server");
    server_export(&db, &stores[0], &["all", "--include-audit"], &from_server);

    assert_eq!(files(&from_stores), files(&from_server));
    for f in files(&from_stores) {
        if (f.ends_with(".csv") && f != "audit_trail.csv") || f.ends_with(".R") {
            assert_eq!(
                std::fs::read_to_string(from_stores.join(&f)).unwrap(),
                std::fs::read_to_string(from_server.join(&f)).unwrap(),
                "{f} differs between the site stores and the server"
            );
        }
    }
    let dly = std::fs::read_to_string(from_server.join("dly.csv")).unwrap();
    assert!(dly.contains("01-0001") && dly.contains("02-0001"), "{dly}");
    assert_eq!(odm_body(&from_stores), odm_body(&from_server));
    let (a, b) = (audit_rows(&from_stores), audit_rows(&from_server));
    assert_eq!(a.len(), b.len());
    assert_eq!(a, b, "the same changes in the same order, site by site");
    assert!(a.len() > 500, "{} changes", a.len());

    // One site: the same as that site's store alone.
    let one_store = dir.path().join("store-02");
    let mut s = Store::open(&stores[1], trial::study(), "dm", trial::PASSWORD).unwrap();
    let data = ecrf_export::TrialData::from_view(s.export_view(false).unwrap()).unwrap();
    drop(s);
    ecrf_export::export(
        &trial::study(),
        &data,
        &[Format::Csv],
        &ExportOptions::default(),
        &one_store,
    )
    .unwrap();
    let one_server = dir.path().join("server-02");
    server_export(&db, &stores[0], &["csv", "--site", "02"], &one_server);
    for f in ["dly.csv", "subjects.csv", "eos.csv", "dictionary.csv"] {
        assert_eq!(
            std::fs::read_to_string(one_store.join(f)).unwrap(),
            std::fs::read_to_string(one_server.join(f)).unwrap(),
            "{f} of site 02"
        );
    }
    assert!(
        !std::fs::read_to_string(one_server.join("dly.csv"))
            .unwrap()
            .contains("01-0001")
    );

    // Only a data manager exports, from the server too; an unknown site is named.
    let nurse = Command::new(ecrf_bin())
        .args(["export", "csv", "--database-url", &db, "-o"])
        .arg(dir.path().join("nurse"))
        .env("ECRF_STORE", &stores[0])
        .env("ECRF_USER", "nurse")
        .env("ECRF_PASSWORD", trial::PASSWORD)
        .output()
        .unwrap();
    assert!(!nurse.status.success());
    assert!(
        String::from_utf8_lossy(&nurse.stderr).contains("may not export"),
        "{}",
        String::from_utf8_lossy(&nurse.stderr)
    );
    let unknown = Command::new(ecrf_bin())
        .args(["export", "csv", "--site", "09", "--database-url", &db, "-o"])
        .arg(dir.path().join("none"))
        .env("ECRF_STORE", &stores[0])
        .env("ECRF_USER", "dm")
        .env("ECRF_PASSWORD", trial::PASSWORD)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("--site 09"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    // The export from the server is recorded in the data manager's store.
    let s = Store::open(&stores[0], trial::study(), "dm", trial::PASSWORD).unwrap();
    let log = s.all_changes().unwrap();
    assert!(
        log.iter()
            .any(|c| c.kind == ecrf_log::ChangeKind::DataExported
                && c.new_value.as_deref().unwrap_or("").contains("\"server\"")),
        "the export is in the audit trail"
    );
}
