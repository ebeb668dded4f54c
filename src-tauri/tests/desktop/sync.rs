//! An administrator enrols the laptop; a sync shows progress and a conflict, which the nurse resolves.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::driver::{Driver, http};
use crate::harness::{
    Guard, desktop, ecrf_bin, free_port, fresh_database, server_admin, spawn_group,
};
use crate::seeds::oversight_site;
use crate::steps::{correct_day1_map, login};

#[test]
pub(crate) fn an_administrator_enrols_the_laptop_and_a_sync_shows_progress_and_a_conflict() {
    let data = tempfile::tempdir().expect("temp folder");
    oversight_site(&data.path().join("ward.ecrf"));
    // The real server over real HTTP, with its own PostgreSQL database.
    let db = fresh_database();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(data.path().join("server.log")).expect("log");
    let server = Guard(spawn_group(
        Command::new(ecrf_bin())
            .args(["server", "--database-url", &db, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--insecure-http")
            .stdout(Stdio::null())
            .stderr(log),
    ));
    let t = Instant::now();
    while http("GET", &format!("{url}/health"), None).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server_admin(&db, &["site", "add", "01", "--name", "Hospital 01"]);

    let desk = desktop(data.path());
    let d = Driver::start(&desk);
    login(&d, "admin", "admin-password-1");
    d.wait_text("#badge-online", &["not enrolled"]);
    d.click("#nav-sync");
    // The code is made for the device id the Sync page shows.
    let device = d.text("#enrol-device");
    let code = server_admin(
        &db,
        &[
            "device",
            "enrol-code",
            "--site",
            "01",
            "--device",
            device.trim(),
        ],
    );
    // Plain HTTP to another computer is refused before anything is sent.
    d.type_in("#enrol-server", "http://192.0.2.10:8080");
    d.type_in("#enrol-code", &code);
    d.click("#enrol-submit");
    d.wait_text("#enrol-notice", &["only to this computer"]);
    d.clear("#enrol-server");
    d.clear("#enrol-code");
    d.type_in("#enrol-server", &url);
    d.type_in("#enrol-code", "wrong-code");
    d.click("#enrol-submit");
    d.wait_text("#enrol-notice", &["refused"]);
    d.clear("#enrol-code");
    d.type_in("#enrol-code", &code);
    d.click("#enrol-submit");
    d.wait_text("#enrol-notice", &["Enrolled"]);
    d.click("#sync-now");
    d.wait_text("#sync-notice", &["Synced", "sent"]);
    d.wait_text("#sync-waiting", &["0 waiting"]);
    assert!(!d.text("#sync-last").contains("never"));
    d.wait_text("#badge-online", &["Online"]);
    d.screenshot("30-sync-enrolled");
    d.click("#lock");

    // A second laptop of the site changes the day-1 MAP while this one is offline…
    let study = std::sync::Arc::new(ecrf_core::trial::definition().expect("study"));
    let other = data.path().join("other.ecrf");
    let (mut admin_b, _) = ecrf_store::Store::create(
        &other,
        std::sync::Arc::clone(&study),
        ecrf_store::CreateOptions {
            site: "01".into(),
            admin_user: "admin".into(),
            admin_name: "Admin B".into(),
            admin_password: "admin-password-1".into(),
        },
    )
    .expect("second laptop");
    admin_b
        .add_user("bo", "Bo Nurse", ecrf_core::Role::Nurse, "bo-password-1")
        .expect("nurse");
    drop(admin_b);
    let mut b = ecrf_store::Store::open(&other, study, "bo", "bo-password-1").expect("open");
    let code_b = server_admin(
        &db,
        &[
            "device",
            "enrol-code",
            "--site",
            "01",
            "--device",
            b.device_id(),
        ],
    );
    ecrf_sync::enrol(&b, &url, &code_b, None).expect("enrol the second laptop");
    let client_b = ecrf_sync::client::client_of(&b).expect("client");
    ecrf_sync::sync(&mut b, &client_b, &mut |_| {}).expect("first sync of the second laptop");
    let dly1 = ecrf_core::FormKey::parse(b.study(), "DLY#1").expect("key");
    b.save(
        "01-0001",
        &dly1,
        &[("MAP", "70")],
        &ecrf_store::SaveOptions {
            reason: Some("re-read the monitor".into()),
            confirm_warnings: true,
        },
    )
    .expect("save on the second laptop");
    ecrf_sync::sync(&mut b, &client_b, &mut |_| {}).expect("second laptop syncs");

    // …and the nurse here changes the same value, then syncs: both values kept, shown.
    login(&d, "li", "li-password-1");
    correct_day1_map(&d, "62", "transcribed from the wrong hour");
    d.click("#back");
    d.click("#back");
    d.click("#nav-sync");
    let waiting = d.wait_text("#sync-waiting", &["waiting"]);
    assert!(
        !waiting.starts_with("0 "),
        "the correction waits to be sent: {waiting}"
    );
    d.click("#sync-now");
    d.wait_text("#sync-notice", &["Synced", "sent", "1 conflicts"]);
    d.wait_text(
        "#conflict-list",
        &["01-0001", "DLY#1", "MAP", "62", "70", "li", "bo"],
    );
    d.screenshot("31-sync-conflict");

    // The nurse checks the source, keeps the other laptop's 70 with a reason, and syncs: the
    // second laptop then reads 70 with no conflict left.
    let value = "#resolve-value-01-0001-DLY_1-MAP";
    d.clear(value);
    d.type_in(value, "70");
    d.type_in(
        "#resolve-reason-01-0001-DLY_1-MAP",
        "monitor strip shows 70",
    );
    d.click("form[data-resolve='DLY#1 MAP'] button[type='submit']");
    d.wait_text("#sync-notice", &["Resolved", "MAP"]);
    d.find("#no-conflicts");
    d.click("#sync-now");
    d.wait_text("#sync-notice", &["Synced", "0 conflicts"]);
    d.screenshot("32-sync-conflict-resolved");
    ecrf_sync::sync(&mut b, &client_b, &mut |_| {}).expect("second laptop syncs again");
    assert!(b.conflicts().expect("conflicts").is_empty());
    let map = b
        .form_values("01-0001", &dly1)
        .expect("values")
        .into_iter()
        .find(|v| v.item == "MAP")
        .expect("MAP");
    assert_eq!(map.value.to_string(), "70");
    d.quit();
    drop(server);
}
