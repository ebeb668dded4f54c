//! The `ecrf` binary driven as a user would: real SQLCipher files in a temporary folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

mod common;
use common::{ADMIN_PW, NURSE_PW, ecrf, err, ok};

struct Site {
    _dir: tempfile::TempDir,
    store: PathBuf,
}

fn nurse(site: &Site, args: &[&str]) -> Output {
    ecrf(&site.store, "nurse", NURSE_PW, args)
}

/// A store with an admin, a nurse and subject 01-0001 with ECMO started.
fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ward.ecrf");
    let out = ok(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["init", "--site", "01", "--admin", "admin"],
    ));
    assert!(out.contains("RECOVERY KEY"), "{out}");
    ok(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["user", "add", "nurse", "--role", "nurse", "--name", "Li Na"],
    ));
    let site = Site { _dir: dir, store };
    assert_eq!(ok(&nurse(&site, &["subject", "new"])).trim(), "01-0001");
    ok(&nurse(
        &site,
        &[
            "form",
            "set",
            "01-0001",
            "ECMO",
            "START_DT=2026-03-01T02:40+08:00",
        ],
    ));
    site
}

fn audit_lines(site: &Site) -> usize {
    ok(&nurse(site, &["audit", "log", "01-0001"]))
        .lines()
        .count()
}

#[test]
fn daily_log_round_trip_and_encryption_at_rest() {
    let site = site();
    ok(&nurse(
        &site,
        &[
            "form",
            "set",
            "01-0001",
            "DLY#1",
            "DATE=2026-03-02",
            "MAP=68",
            "SBP=95",
            "DBP=55",
            "LACTATE=4.3",
            "ANTICOAG=heparin",
            "ECMO_STATUS=RUNNING",
            "FLOW=3.8",
        ],
    ));
    let shown = ok(&nurse(&site, &["form", "show", "01-0001", "DLY#1"]));
    assert!(shown.contains("4.3 mmol/L"), "{shown}");
    assert!(shown.contains("HEPARIN"), "{shown}");
    assert!(shown.contains("68 mmHg"), "{shown}");

    let wrong = err(&ecrf(
        &site.store,
        "nurse",
        "not-the-password",
        &["form", "show", "01-0001", "DLY#1"],
    ));
    assert!(wrong.contains("wrong password for user nurse"), "{wrong}");

    let raw = std::fs::read(&site.store).unwrap();
    assert!(!raw.starts_with(b"SQLite format 3"));
    for needle in [
        "4.3 ",
        "HEPARIN",
        "2026-03-02",
        "01-0001",
        "Li Na",
        "change_log",
    ] {
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} readable in the raw file"
        );
    }
}

#[test]
fn hard_range_is_refused_and_nothing_is_written() {
    let site = site();
    let before = audit_lines(&site);
    let e = err(&nurse(
        &site,
        &[
            "form",
            "set",
            "01-0001",
            "DLY#1",
            "DATE=2026-03-02",
            "MAP=300",
        ],
    ));
    assert!(e.contains("DLY MAP"), "{e}");
    assert!(e.contains("300"), "{e}");
    assert!(e.contains("0–250 mmHg"), "{e}");
    assert_eq!(audit_lines(&site), before, "a refused save wrote something");
    let shown = ok(&nurse(&site, &["form", "show", "01-0001", "DLY#1"]));
    assert!(
        !shown.contains("2026-03-02"),
        "the valid DATE of a refused save was kept: {shown}"
    );
}

#[test]
fn soft_range_needs_confirmation_and_keeps_the_warning() {
    let site = site();
    let before = audit_lines(&site);
    let e = err(&nurse(
        &site,
        &["form", "set", "01-0001", "DLY#1", "HR=210"],
    ));
    assert!(
        e.contains("--confirm-warnings") && e.contains("30–200"),
        "{e}"
    );
    assert_eq!(audit_lines(&site), before);
    let out = ok(&nurse(
        &site,
        &[
            "form",
            "set",
            "01-0001",
            "DLY#1",
            "HR=210",
            "--confirm-warnings",
        ],
    ));
    assert!(out.contains("warning kept"), "{out}");
    let log = ok(&nurse(&site, &["audit", "log", "01-0001"]));
    assert!(
        log.contains("DLY#1 HR: ∅ → 210 /min") && log.contains("[warning confirmed]"),
        "{log}"
    );
    let shown = ok(&nurse(&site, &["form", "show", "01-0001", "DLY#1"]));
    assert!(shown.contains("(warning confirmed)"), "{shown}");
}

#[test]
fn changing_a_saved_value_needs_a_reason_and_is_audited() {
    let site = site();
    ok(&nurse(&site, &["form", "set", "01-0001", "DLY#1", "HR=88"]));
    let e = err(&nurse(&site, &["form", "set", "01-0001", "DLY#1", "HR=92"]));
    assert!(e.contains("needs a reason"), "{e}");
    ok(&nurse(
        &site,
        &[
            "form",
            "set",
            "01-0001",
            "DLY#1",
            "HR=92",
            "--reason",
            "transcription error",
        ],
    ));
    let log = ok(&nurse(&site, &["audit", "log", "01-0001"]));
    assert!(
        log.contains("DLY#1 HR: 88 /min → 92 /min  reason: transcription error"),
        "{log}"
    );
    assert!(log.contains("nurse (nurse)"), "{log}");
}

#[test]
fn bad_input_gets_one_clear_line() {
    let site = site();
    for (args, expect) in [
        (
            vec!["form", "set", "01-0001", "DLY#1", "HR=fast"],
            "not a whole number",
        ),
        (
            vec!["form", "set", "01-0001", "DLY#1", "NOPE=1"],
            "form DLY has no item NOPE",
        ),
        (
            vec!["form", "set", "01-0001", "DLY#31", "HR=80"],
            "study days run from 0 to 30",
        ),
        (vec!["form", "set", "01-0001", "DLY", "HR=80"], "like DLY#1"),
        (
            vec!["form", "set", "01-0009", "DLY#1", "HR=80"],
            "no subject 01-0009",
        ),
        (
            vec!["form", "set", "01-0001", "RND", "ARM=ECMO_IABP"],
            "written by the app",
        ),
        (
            vec!["form", "set", "01-0001", "DLY#1", "DATE=2026-02-27"],
            "ECMO.START_DT",
        ),
    ] {
        let e = err(&nurse(&site, &args));
        assert!(e.contains(expect), "{args:?}: {e}");
    }
    let e = err(&ecrf(
        &site.store,
        "admin",
        ADMIN_PW,
        &["form", "set", "01-0001", "DLY#1", "HR=80"],
    ));
    assert!(e.contains("may not enter data"), "{e}");
}

/// Opens the store with plain SQLCipher and the real key, as an attacker holding the key would.
fn raw_connection(site: &Site) -> rusqlite::Connection {
    let study = Arc::new(ecrf_core::trial::definition().unwrap());
    let key = ecrf_store::Store::open(&site.store, study, "nurse", NURSE_PW)
        .unwrap()
        .key_pragmas();
    let conn = rusqlite::Connection::open(&site.store).unwrap();
    conn.execute_batch(&key).unwrap();
    conn.execute_batch("DROP TRIGGER change_log_no_update; DROP TRIGGER change_log_no_delete;")
        .unwrap();
    conn
}

fn seq_of(conn: &rusqlite::Connection, item: &str) -> i64 {
    conn.query_row("SELECT seq FROM change_log WHERE item = ?1", [item], |r| {
        r.get(0)
    })
    .unwrap()
}

fn tampered_site() -> Site {
    let site = site();
    ok(&nurse(
        &site,
        &[
            "form", "set", "01-0001", "DLY#1", "HR=88", "MAP=70", "CVP=9",
        ],
    ));
    ok(&nurse(&site, &["form", "set", "01-0001", "DLY#2", "HR=90"]));
    assert!(ok(&nurse(&site, &["audit", "verify"])).starts_with("OK:"));
    site
}

fn verify_fails(site: &Site) -> String {
    let o = nurse(site, &["audit", "verify"]);
    err(&o);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn audit_verify_names_an_altered_change() {
    let site = tampered_site();
    let conn = raw_connection(&site);
    let seq = seq_of(&conn, "MAP");
    conn.execute(
        "UPDATE change_log SET new_value = '{\"int\":90}' WHERE seq = ?1",
        [seq],
    )
    .unwrap();
    drop(conn);
    let report = verify_fails(&site);
    assert!(
        report.contains(&format!("change #{seq} [item.set 01-0001 DLY#1 MAP"))
            && report.contains("altered"),
        "{report}"
    );
    assert_eq!(
        report.lines().count(),
        1,
        "only the altered change is named: {report}"
    );
}

#[test]
fn audit_verify_finds_a_deleted_change() {
    let site = tampered_site();
    let conn = raw_connection(&site);
    let seq = seq_of(&conn, "CVP");
    conn.execute("DELETE FROM change_log WHERE seq = ?1", [seq])
        .unwrap();
    drop(conn);
    let report = verify_fails(&site);
    assert!(
        report.contains(&format!("changes #{seq} to #{seq} are missing")),
        "{report}"
    );
}

#[test]
fn audit_verify_finds_the_last_change_cut_off() {
    let site = tampered_site();
    let conn = raw_connection(&site);
    conn.execute(
        "DELETE FROM change_log WHERE seq = (SELECT max(seq) FROM change_log)",
        [],
    )
    .unwrap();
    drop(conn);
    let report = verify_fails(&site);
    assert!(
        report.contains("changes at the end were deleted"),
        "{report}"
    );
}

#[test]
fn audit_verify_finds_reordered_changes() {
    let site = tampered_site();
    let conn = raw_connection(&site);
    // Swap the places of two changes of the same save.
    let (x, y) = (seq_of(&conn, "CVP"), seq_of(&conn, "MAP"));
    let (a, b) = (x.min(y), x.max(y));
    conn.execute_batch(&format!(
        "UPDATE change_log SET seq = -1 WHERE seq = {a}; UPDATE change_log SET seq = {a} WHERE seq = {b}; UPDATE change_log SET seq = {b} WHERE seq = -1;"
    )).unwrap();
    drop(conn);
    let report = verify_fails(&site);
    assert!(
        report.contains(&format!("change #{a} ")) && report.contains("does not follow"),
        "{report}"
    );
}

#[test]
fn any_changed_byte_is_a_clear_error_never_a_panic() {
    let site = tampered_site();
    let pristine = std::fs::read(&site.store).unwrap();
    // Offsets spread over every page, including the first page's header and salt.
    let len = pristine.len();
    let mut offsets: Vec<usize> = vec![0, 5, 16, 100, 2000, 4095];
    offsets.extend((1..12).map(|i| i * len / 12 + 37));
    offsets.push(len - 1);
    for off in offsets {
        let mut bytes = pristine.clone();
        bytes[off] ^= 0x5a;
        std::fs::write(&site.store, &bytes).unwrap();
        let o = nurse(&site, &["audit", "verify"]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(1),
            "byte {off} of {len}: changed file accepted: {o:?}"
        );
        assert!(!stderr.contains("panicked"), "byte {off}: {stderr}");
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            stderr.contains("damaged")
                || stdout.contains("page check")
                || stdout.contains("structure check"),
            "byte {off}: no clear damage report: {stderr} {stdout}"
        );
    }
    std::fs::write(&site.store, &pristine).unwrap();
    assert!(ok(&nurse(&site, &["audit", "verify"])).starts_with("OK:"));
}

#[test]
fn recovery_key_resets_a_forgotten_password() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("r.ecrf");
    let out = ok(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["init", "--site", "02", "--admin", "admin"],
    ));
    let key = out
        .lines()
        .skip_while(|l| !l.contains("RECOVERY KEY"))
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_ecrf"))
        .args(["user", "recover", "admin"])
        .env("ECRF_STORE", &store)
        .env("ECRF_RECOVERY_KEY", &key)
        .env("ECRF_NEW_PASSWORD", "brand-new-pass")
        .output()
        .unwrap();
    ok(&o);
    err(&ecrf(&store, "admin", ADMIN_PW, &["user", "list"]));
    assert!(ok(&ecrf(&store, "admin", "brand-new-pass", &["user", "list"])).contains("admin"));
}

#[test]
fn study_check_names_file_and_item() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../study");
    std::fs::create_dir(dir.path().join("forms")).unwrap();
    std::fs::copy(root.join("study.toml"), dir.path().join("study.toml")).unwrap();
    for e in std::fs::read_dir(root.join("forms")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join("forms").join(p.file_name().unwrap())).unwrap();
    }
    let ok_out = Command::new(env!("CARGO_BIN_EXE_ecrf"))
        .args(["study", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(ok(&ok_out).contains("13 forms"));
    let bas = dir.path().join("forms/BAS.toml");
    let text = std::fs::read_to_string(&bas).unwrap();
    std::fs::write(&bas, text.replace("id = \"WEIGHT\"", "id = \"HEIGHT\"")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ecrf"))
        .args(["study", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(
        msg.contains("BAS.toml: item HEIGHT: duplicate item id"),
        "{msg}"
    );
}

#[test]
fn bench_prints_its_figures_on_a_small_store() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ecrf"))
        .args([
            "bench",
            "--subjects",
            "4",
            "--days",
            "2",
            "--saves",
            "4",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let out = ok(&o);
    for line in [
        "encrypted, signed (as shipped): p50",
        "encrypted, not signed         : p50",
        "plain SQLite, not signed      : p50",
        "ratio encrypted/plain (both not signed): p50",
        "signing each change (Ed25519): p50",
        "goals:",
    ] {
        assert!(out.contains(line), "missing {line:?} in {out}");
    }
    assert!(out.contains("4 saves of"), "{out}");
}

/// An eligible male patient's SCR and his consent, as `form set` arguments; ECMO started an
/// hour ago, so he may be randomized now (the 6-hour window).
fn screen_and_consent(site: &Site, subject: &str) {
    let ecmo_start = format!(
        "ECMO_START_DT={}",
        (chrono::Local::now().fixed_offset() - chrono::Duration::hours(1))
            .format("%Y-%m-%dT%H:%M%:z")
    );
    // The ECMO form says the same (the earlier of the two starts opens the window).
    let start_dt = format!("START_DT={}", &ecmo_start["ECMO_START_DT=".len()..]);
    ok(&nurse(
        site,
        &[
            "form",
            "set",
            subject,
            "ECMO",
            &start_dt,
            "--reason",
            "ECMO start time corrected",
            "--confirm-warnings",
        ],
    ));
    let mut scr = vec!["form", "set", subject, "SCR", "--confirm-warnings"];
    scr.extend([
        "SCRNO=01-001",
        "SCR_DT=2026-03-01T04:00+08:00",
        "AGE=58",
        "SEX=M",
        "INC1_AGE=Y",
        "INC2_CS=Y",
        "SBP_LT90=N",
        "CATECHOL=Y",
        "CATECHOL_DRUGS=NOREPINEPHRINE,DOBUTAMINE",
        "LACT_GT3=Y",
        "LACTATE=6.1",
        "LACTATE_DT=2026-03-01T02:00+08:00",
        "HYPOPERF=Y",
        "HYPOPERF_SIGNS=MENTAL",
        "INC3_ECMO=Y",
        ecmo_start.as_str(),
        "LV_UNLOADING_STARTED=N",
        "INC4_CONSENT=Y",
        "EXC1_AI_DISSECTION=N",
        "EXC2_PVD=N",
        "EXC3_POSTCARDIOTOMY=N",
        "EXC4_NONCARDIAC=N",
        "EXC5_ECPR=N",
        "EXC6_PRIOR_MCS=N",
        "EXC7_BLEEDING=N",
        "EXC8_MALIGNANCY=N",
        "EXC9_NEURO=N",
    ]);
    ok(&nurse(site, &scr));
    ok(&nurse(
        site,
        &[
            "form",
            "set",
            subject,
            "CON",
            "--confirm-warnings",
            "CONSENT_BY=PATIENT",
            "CONSENT_DT=2026-03-01T04:10+08:00",
            "ICF_VERSION=V1.0 2025-10-01",
            "OBTAINED_BY=Dr Zhao",
        ],
    ));
}

#[test]
fn randomization_lists_leases_and_two_processes_at_once() {
    let site = site();
    let dir = site.store.parent().unwrap().to_path_buf();
    let seed = dir.join("seed");
    std::fs::write(&seed, "11".repeat(32)).unwrap();
    let list = dir.join("list.csv");
    let s = |p: &Path| p.display().to_string();
    let gen_args = |out: &Path| {
        vec![
            "randomization".to_string(),
            "generate".into(),
            "--site".into(),
            "01".into(),
            "--site".into(),
            "02".into(),
            "--count".into(),
            "40".into(),
            "--seed-file".into(),
            s(&seed),
            "-o".into(),
            s(out),
        ]
    };
    let args: Vec<String> = gen_args(&list);
    ok(&nurse(
        &site,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let text = std::fs::read_to_string(&list).unwrap();
    assert!(
        text.starts_with("stratum,seq,block,block_size,arm\n"),
        "{text}"
    );
    // The same seed gives the same file.
    let again = dir.join("again.csv");
    let args = gen_args(&again);
    ok(&nurse(
        &site,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    assert_eq!(std::fs::read_to_string(&again).unwrap(), text);
    let report = ok(&nurse(&site, &["randomization", "report", &s(&list)]));
    assert!(
        report.contains("Guessing the arm that is behind"),
        "{report}"
    );
    assert_eq!(
        report
            .lines()
            .filter(|l| l.starts_with("01 ") || l.starts_with("02 "))
            .count(),
        2,
        "{report}"
    );
    // A lease of two blocks of site 01, loaded by the administrator.
    let lease = dir.join("lease.csv");
    ok(&nurse(
        &site,
        &[
            "randomization",
            "lease",
            "--list",
            &s(&list),
            "--stratum",
            "01",
            "--blocks",
            "2",
            "-o",
            &s(&lease),
        ],
    ));
    let leased = std::fs::read_to_string(&lease).unwrap().lines().count() - 1;
    assert!((8..=16).contains(&leased), "{leased}");
    // Site 02's envelopes do not belong in site 01's store; nurses may not load leases.
    err(&ecrf(
        &site.store,
        "admin",
        ADMIN_PW,
        &["randomization", "load-lease", &s(&list)],
    ));
    err(&nurse(&site, &["randomization", "load-lease", &s(&lease)]));
    ok(&ecrf(
        &site.store,
        "admin",
        ADMIN_PW,
        &["randomization", "load-lease", &s(&lease)],
    ));
    // Not yet eligible: refused with the reason.
    let e = err(&nurse(&site, &["randomize", "01-0001"]));
    assert!(e.contains("not eligible"), "{e}");
    // Four eligible subjects randomized by four processes started together.
    screen_and_consent(&site, "01-0001");
    for n in 2..=4 {
        let id = ok(&nurse(&site, &["subject", "new"])).trim().to_string();
        assert_eq!(id, format!("01-000{n}"));
        screen_and_consent(&site, &id);
    }
    let children: Vec<_> = (1..=4)
        .map(|n| {
            Command::new(env!("CARGO_BIN_EXE_ecrf"))
                .args(["randomize", &format!("01-000{n}")])
                .env("ECRF_STORE", &site.store)
                .env("ECRF_USER", "nurse")
                .env("ECRF_PASSWORD", NURSE_PW)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut envelopes: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = ok(&c.wait_with_output().unwrap());
            out.split("envelope ")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    envelopes.sort();
    assert_eq!(envelopes, ["01-E0001", "01-E0002", "01-E0003", "01-E0004"]);
    let e = err(&nurse(&site, &["randomize", "01-0001"]));
    assert!(e.contains("already randomized"), "{e}");
    let counts = ok(&nurse(&site, &["randomization", "envelopes"]));
    assert!(
        counts.contains(&format!("01: {} sealed, 4 opened", leased - 4)),
        "{counts}"
    );
    assert!(ok(&nurse(&site, &["audit", "verify"])).starts_with("OK"));
    let rnd = ok(&nurse(&site, &["form", "show", "01-0001", "RND"]));
    assert!(rnd.contains("01-R000"), "{rnd}");
    // The screening log and CONSORT counts: one excluded (ECPR), one without consent.
    let excluded = ok(&nurse(&site, &["subject", "new"])).trim().to_string();
    screen_and_consent(&site, &excluded);
    ok(&nurse(
        &site,
        &[
            "form",
            "set",
            &excluded,
            "SCR",
            "EXC5_ECPR=Y",
            "--reason",
            "ECPR after all",
        ],
    ));
    let no_consent = ok(&nurse(&site, &["subject", "new"])).trim().to_string();
    screen_and_consent(&site, &no_consent);
    ok(&nurse(
        &site,
        &[
            "form",
            "set",
            &no_consent,
            "CON",
            "WITHDRAWN=Y",
            "WD_DATE=2026-03-02",
            "WD_BY=PATIENT",
            "WD_SCOPE=NO_FOLLOW_UP",
        ],
    ));
    let log = ok(&nurse(&site, &["screening", "log"]));
    assert_eq!(log.lines().count(), 6, "{log}");
    assert!(log.contains("NOT ELIGIBLE: E5 present"), "{log}");
    let consort = ok(&nurse(&site, &["screening", "consort"]));
    for line in [
        "screened                 6",
        "not eligible             1",
        "E5   1",
        "consent not obtained     1",
        "randomized               4",
    ] {
        assert!(consort.contains(line), "{line:?} in {consort}");
    }
    // The randomized, counted per arm (the arm codes of the allocation list).
    let per_arm: usize = consort
        .lines()
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [arm, n] if arm == "ECMO" || arm == "ECMO_IABP" => n.parse::<usize>().ok(),
            _ => None,
        })
        .sum();
    assert_eq!(per_arm, 4, "{consort}");
}
