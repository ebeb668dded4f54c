//! Protocol amendments end to end, against the real `ecrf server`, a real PostgreSQL and real
//! stores over real HTTP: a version 1.2.0 with a new daily item and a changed range is
//! published, activated for site 01, and reaches one laptop that syncs after the activation
//! while another keeps working offline on the base version; what each asks, accepts and
//! exports, and that data entered under the base version keep their meaning and version.

mod server;
mod webclient;

use std::path::{Path, PathBuf};

use server::{Device, Server, fresh_database, study};

const NEW: &str = "ACT_S";

/// The study folder as 1.2.0: DLY gains `ACT_S` (activated clotting time) and HR's hard range
/// widens from 0–300 to 0–350.
fn amended_folder(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../study");
    let out = dir.join("study-1.2.0");
    std::fs::create_dir_all(out.join("forms")).unwrap();
    let base = ecrf_core::trial::BASE_VERSION;
    let toml = std::fs::read_to_string(root.join("study.toml")).unwrap();
    let toml = toml.replacen(&format!("version = \"{base}\""), "version = \"1.2.0\"", 1);
    std::fs::write(out.join("study.toml"), toml).unwrap();
    for e in std::fs::read_dir(root.join("forms")).unwrap() {
        let p = e.unwrap().path();
        let mut text = std::fs::read_to_string(&p).unwrap();
        if p.file_name().unwrap() == "DLY.toml" {
            let hr = "id = \"HR\"";
            assert!(text.contains(hr));
            text = text.replacen(
                "[[items]]\nid = \"HR\"",
                &format!(
                    "[[items]]\nid = \"{NEW}\"\nsection = \"haemo\"\nlabel = {{ en = \"Activated clotting time\", zh = \"活化凝血时间\" }}\ntype = \"integer\"\nunit = \"s\"\nhard = [0, 1000]\n\n[[items]]\nid = \"HR\""
                ),
                1,
            );
            let old = "unit = \"/min\"\nhard = [0, 300]";
            assert!(text.contains(old), "HR's range moved in DLY.toml");
            text = text.replacen(old, "unit = \"/min\"\nhard = [0, 350]", 1);
        }
        std::fs::write(out.join("forms").join(p.file_name().unwrap()), text).unwrap();
    }
    out
}

/// Rows of a CSV export file as (VISIT, VERSION, column) of every subject row.
fn csv_rows(path: &Path, column: &str) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |name: &str| {
        header
            .iter()
            .position(|h| h.trim_matches('"') == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
    };
    let (visit, version, col) = (at("VISIT"), at("VERSION"), at(column));
    let mut rows: Vec<(String, String, String)> = lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let c = |i: usize| cells[i].trim_matches('"').to_string();
            (c(visit), c(version), c(col))
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn an_amendment_reaches_a_site_at_its_activation_and_old_data_keep_their_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database();
    let server = Server::start(&db, dir.path());
    server.add_site("01");
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let mut b = Device::enrolled(dir.path(), "b", "01", &server);
    let subject = a.store.new_subject().unwrap();
    a.save(&subject, "DLY#1", &[("HR", "80")]);
    a.sync();
    b.sync();

    // Published, and what it changes, from the server's copy and from the folder.
    let folder = amended_folder(dir.path());
    let folder_s = folder.to_str().unwrap();
    let said = server.admin(&["study", "publish", folder_s, "--version", "1.2.0"]);
    assert!(said.contains("1.2.0 published"), "{said}");
    let again = server.admin(&["study", "publish", folder_s, "--version", "1.2.0"]);
    assert!(again.contains("already published"), "{again}");
    let wrong = std::process::Command::new(server::ecrf_bin())
        .args([
            "study",
            "publish",
            folder_s,
            "--version",
            "1.3.0",
            "--database-url",
            &db,
        ])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("does not match"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let base = ecrf_core::trial::BASE_VERSION;
    let diff = server.admin(&["study", "diff", base, "1.2.0"]);
    assert!(diff.contains(&format!("DLY.{NEW}: item added")), "{diff}");
    assert!(diff.contains("DLY.HR: hard range: 0–300 → 0–350"), "{diff}");
    assert!(diff.contains("2 difference(s)"), "{diff}");

    // Published but not activated: a sync brings nothing, and A keeps the base version.
    a.sync();
    assert_eq!(a.store.version_in_force().unwrap(), base);

    // Activated for site 01 from today; B syncs after it, A stays offline.
    let today = chrono::Local::now().date_naive().to_string();
    let said = server.admin(&[
        "site",
        "activate",
        "01",
        "--version",
        "1.2.0",
        "--from",
        &today,
    ]);
    assert!(said.contains("from"), "{said}");
    let unpublished = std::process::Command::new(server::ecrf_bin())
        .args([
            "site",
            "activate",
            "01",
            "--version",
            "7.0.0",
            "--from",
            &today,
            "--database-url",
            &db,
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&unpublished.stderr).contains("has not been published"),
        "{}",
        String::from_utf8_lossy(&unpublished.stderr)
    );
    b.sync();
    assert_eq!(b.store.version_in_force().unwrap(), "1.2.0");

    // The coordinating centre's web view shows the activation and what the amendment changes.
    server.registered("01", "mona", "monitor", "monitor-web-2026-kestrel");
    let mut web = webclient::Browser::new(&server.url());
    web.log_in("mona", "monitor-web-2026-kestrel");
    let page = web.get("/web/study");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(&format!("1.2.0 from {today}")),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&format!("DLY.{NEW}: item added")),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("DLY.HR: hard range: 0–300 → 0–350"),
        "{}",
        page.body
    );
    assert_eq!(
        a.store.version_in_force().unwrap(),
        base,
        "A has not synced"
    );

    // B: a new daily log is entered under 1.2.0: it asks the new item and takes the wider range.
    b.try_save(&subject, "DLY#2", &[("HR", "320"), (NEW, "180")])
        .unwrap();
    assert_eq!(
        b.store.instance_version(&subject, "DLY#2").unwrap().0,
        "1.2.0"
    );
    // The day-1 log A entered under the base version keeps the base version's rules.
    let e = b.try_save(&subject, "DLY#1", &[("HR", "320")]).unwrap_err();
    assert!(e.to_string().contains("HR"), "{e}");
    let e = b.try_save(&subject, "DLY#1", &[(NEW, "150")]).unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("no item {NEW} in study definition {base}")),
        "{e}"
    );
    assert_eq!(b.store.instance_version(&subject, "DLY#1").unwrap().0, base);

    // A, offline on the base version: no new item, the old range.
    let e = a.try_save(&subject, "DLY#3", &[(NEW, "150")]).unwrap_err();
    assert!(e.to_string().contains(&format!("no item {NEW}")), "{e}");
    let e = a.try_save(&subject, "DLY#3", &[("HR", "320")]).unwrap_err();
    assert!(e.to_string().contains("HR"), "{e}");
    a.try_save(&subject, "DLY#3", &[("HR", "95")]).unwrap();

    // Both sync: each holds both versions; DLY#3 stays the base version's on every replica.
    a.sync();
    b.sync();
    a.sync();
    for d in [&a, &b] {
        assert_eq!(d.store.version_in_force().unwrap(), "1.2.0");
        assert_eq!(d.store.instance_version(&subject, "DLY#3").unwrap().0, base);
        assert_eq!(
            d.store.instance_version(&subject, "DLY#2").unwrap().0,
            "1.2.0"
        );
        assert_eq!(d.value(&subject, "DLY#2", "HR").as_deref(), Some("320"));
    }
    // A's next new log is entered under 1.2.0.
    a.try_save(&subject, "DLY#4", &[(NEW, "150")]).unwrap();

    // The export from the server: a VERSION column, and the new item as a column.
    a.sync();
    let out = dir.path().join("export");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut folder = ecrf_export::logs::LogFolder::new(false).unwrap();
    let sites = rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db).await.unwrap();
        ecrf_server::db::logs::each_site_log(&mut conn, None, |raw| {
            folder
                .add_records(raw.site, raw.changes)
                .map_err(|e| ecrf_server::ServerError::Internal(e.to_string()))
        })
        .await
        .unwrap()
    });
    let data = folder.finish(&sites).unwrap();
    ecrf_export::export(
        &study(),
        &data,
        &[ecrf_export::Format::Csv],
        &ecrf_export::ExportOptions::default(),
        &out,
    )
    .unwrap();
    let rows = csv_rows(&out.join("dly.csv"), NEW);
    let versions: Vec<(&str, &str)> = rows
        .iter()
        .map(|(v, ver, _)| (v.as_str(), ver.as_str()))
        .collect();
    assert_eq!(
        versions,
        vec![
            ("DLY#1", base),
            ("DLY#2", "1.2.0"),
            ("DLY#3", base),
            ("DLY#4", "1.2.0"),
        ]
    );
    assert_eq!(rows[1].2, "180");
    assert_eq!(rows[0].2, "", "not asked under the base version");
    let dictionary = std::fs::read_to_string(out.join("dictionary.csv")).unwrap();
    assert!(
        dictionary.contains(NEW),
        "the dictionary lists the new item"
    );

    // The server says its release at every pull: the app offers an update when it is newer.
    assert_eq!(
        a.store.sync_setting("server_version").unwrap().as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );

    // A version that needs a newer app: once in force, this laptop enters nothing new under
    // the wrong rules, and says why; an instance started under 1.2.0 stays editable.
    let later = amended_folder(&dir.path().join("later"));
    let toml = std::fs::read_to_string(later.join("study.toml")).unwrap();
    let toml = toml
        .replacen("version = \"1.2.0\"", "version = \"1.3.0\"", 1)
        .replacen("registry =", "requires_app = \"99.0.0\"\nregistry =", 1);
    std::fs::write(later.join("study.toml"), toml).unwrap();
    let later_s = later.to_str().unwrap();
    server.admin(&["study", "publish", later_s, "--version", "1.3.0"]);
    server.admin(&[
        "site",
        "activate",
        "01",
        "--version",
        "1.3.0",
        "--from",
        &today,
    ]);
    a.sync();
    let e = a.try_save(&subject, "DLY#5", &[("HR", "90")]).unwrap_err();
    assert!(
        e.to_string().contains("too old for study definition 1.3.0"),
        "{e}"
    );
    assert!(e.to_string().contains("requires app 99.0.0"), "{e}");
    a.try_save(&subject, "DLY#2", &[("HR", "330")]).unwrap();
}
