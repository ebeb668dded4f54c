//! The crash harness: a real `ecrf crash-writer` process saves daily logs (and rewrites key
//! slots: password changes, new users) on a real SQLCipher file and is killed with SIGKILL at
//! random moments. After every kill the store is reopened and must hold every change the writer
//! acknowledged, verify (pages, structure, whole chain, projections = rebuild from the log) and
//! open with the password last acknowledged (or the one being set when the kill came).
//!
//! `cargo test` runs 50 kills; `make crash-test N=1000` runs more (`ECRF_CRASH_KILLS`) and
//! prints the figures. A second harness kills the writer while it applies pages of another
//! device's changes, as a sync pull does (`ECRF_CRASH_PULL_KILLS`, 20 by default): every page
//! acknowledged is held, the pull cursor never runs ahead of what is held, and a restarted pull
//! ends with each of the other device's changes exactly once.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ecrf_store::{Keyring, Store, StoreError};
use ecrf_testkit::{ADMIN, NURSE, Site, User, study};

const ADMIN_PW: &str = "crash-admin-pw";
const FIRST_PW: &str = "crash-password-a";
/// The writer's nurse, with the password it starts with (the writer changes it).
const CRASH_NURSE: User = User {
    name: "Li Na",
    ..NURSE.with_password(FIRST_PW)
};
/// A fresh store every so many kills keeps the full check after each kill quick.
const KILLS_PER_STORE: usize = 20;

/// A small xorshift generator: the harness needs varied, reproducible kill times, not crypto.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[derive(Default)]
struct Figures {
    kills: usize,
    acked: usize,
    found: usize,
    killed_in_key_change: usize,
    key_changes_acked: usize,
}

struct Victim {
    store: std::path::PathBuf,
    nurse_pw: String,
    pending_pw: Option<String>,
    last_ack: Option<(i64, String)>,
}

fn new_store(dir: &Path, n: usize) -> Victim {
    let path = dir.join(format!("crash-{n}.ecrf"));
    let site = Site::new("01").admin(ADMIN.with_password(ADMIN_PW));
    drop(site.with(CRASH_NURSE).create(&path));
    Victim {
        store: path,
        nurse_pw: FIRST_PW.into(),
        pending_pw: None,
        last_ack: None,
    }
}

/// Reopens after a kill and checks everything; returns how many of `acks` were found.
fn check_after_kill(v: &mut Victim, acks: &[(i64, String)], users: &[String]) -> usize {
    let study = study();
    let store = match Store::open(&v.store, Arc::clone(&study), "nurse", &v.nurse_pw) {
        Ok(s) => s,
        Err(StoreError::WrongPassword(_)) if v.pending_pw.is_some() => {
            // Killed during the password change, after the new slot was renamed into place.
            let pw = v.pending_pw.take().unwrap();
            let s = Store::open(&v.store, study, "nurse", &pw)
                .expect("opens with the password being set when killed");
            v.nurse_pw = pw;
            s
        }
        Err(e) => panic!("the store does not open after a kill: {e}"),
    };
    v.pending_pw = None;
    let report = store.check().unwrap();
    assert!(
        report.ok(),
        "the store fails its check after a kill: {:?}",
        report.problems
    );
    let conn = rusqlite::Connection::open(&v.store).unwrap();
    conn.execute_batch(&store.key_pragmas()).unwrap();
    let mut found = 0;
    let earlier = v.last_ack.iter();
    for (seq, hash) in acks.iter().chain(earlier) {
        let stored: Option<String> = conn
            .query_row("SELECT hash FROM change_log WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .ok();
        assert_eq!(
            stored.as_deref(),
            Some(hash.as_str()),
            "acknowledged change #{seq} lost or altered"
        );
        found += 1;
    }
    if v.last_ack.is_some() {
        found -= 1;
    }
    let known: Vec<String> = store
        .users()
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    let ring = Keyring::load(&v.store).unwrap();
    for u in users {
        assert!(known.contains(u), "acknowledged user {u} lost");
        ring.unlock(u, FIRST_PW)
            .unwrap_or_else(|e| panic!("acknowledged user {u} cannot log in: {e}"));
    }
    if let Some(last) = acks.last() {
        v.last_ack = Some(last.clone());
    }
    found
}

/// Starts the writer on `v`'s store as its nurse, waits for `READY`, and collects every whole
/// line it prints afterwards (a line cut by the kill was not acknowledged).
fn start_writer(
    cmd: &mut Command,
    v: &Victim,
) -> (std::process::Child, std::thread::JoinHandle<Vec<String>>) {
    let mut child = cmd
        .env("ECRF_STORE", &v.store)
        .env("ECRF_USER", "nurse")
        .env("ECRF_PASSWORD", &v.nurse_pw)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the writer");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    if first.trim() != "READY" {
        let o = child.wait_with_output().unwrap();
        panic!(
            "the writer did not start: {first}{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut l = String::new();
        while out.read_line(&mut l).unwrap_or(0) > 0 {
            if l.ends_with('\n') {
                lines.push(l.trim_end().to_string());
            }
            l.clear();
        }
        lines
    });
    (child, reader)
}

fn crash_run(kills: usize) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).unwrap();
    let seed = u64::from_le_bytes(seed) | 1;
    eprintln!("crash harness: {kills} kills, seed {seed:#x}");
    let mut rng = Rng(seed);
    let mut fig = Figures::default();
    let mut v = new_store(dir.path(), 0);
    for k in 0..kills {
        if k > 0 && k % KILLS_PER_STORE == 0 {
            v = new_store(dir.path(), k);
        }
        // ECRF_CRASH_BIN: a copy of the binary, so a long run survives rebuilds meanwhile.
        let bin = std::env::var("ECRF_CRASH_BIN").unwrap_or(env!("CARGO_BIN_EXE_ecrf").into());
        let (mut child, reader) = start_writer(
            Command::new(bin)
                .args(["crash-writer", "--admin", "admin", "--mode", "keys"])
                .env("ECRF_ADMIN_PASSWORD", ADMIN_PW),
            &v,
        );
        std::thread::sleep(Duration::from_micros(rng.next() % 250_000));
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            child.stderr.take().unwrap().read_to_string(&mut err).ok();
            panic!("the writer stopped by itself ({status}): {err}");
        }
        child.kill().unwrap();
        child.wait().unwrap();
        fig.kills += 1;
        let lines = reader.join().unwrap();
        let mut acks = Vec::new();
        let mut users = Vec::new();
        let mut in_key_change = false;
        for l in &lines {
            let mut w = l.split(' ');
            match (w.next(), w.next(), w.next()) {
                (Some("ACK"), Some(seq), Some(hash)) => {
                    acks.push((seq.parse::<i64>().unwrap(), hash.to_string()));
                }
                (Some("PW-BEGIN"), Some(pw), None) => {
                    v.pending_pw = Some(pw.to_string());
                    in_key_change = true;
                }
                (Some("PW-ACK"), Some(pw), None) => {
                    v.nurse_pw = pw.to_string();
                    v.pending_pw = None;
                    fig.key_changes_acked += 1;
                    in_key_change = false;
                }
                (Some("USER-BEGIN"), Some(_), None) => in_key_change = true,
                (Some("USER-ACK"), Some(u), None) => {
                    users.push(u.to_string());
                    fig.key_changes_acked += 1;
                    in_key_change = false;
                }
                _ => panic!("unexpected writer line {l:?}"),
            }
        }
        fig.killed_in_key_change += usize::from(in_key_change);
        fig.acked += acks.len();
        fig.found += check_after_kill(&mut v, &acks, &users);
    }
    fig
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_change() {
    let kills = std::env::var("ECRF_CRASH_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let t = Instant::now();
    let fig = crash_run(kills);
    println!(
        "crash harness: {} kills, {} saves acknowledged, {} found, {} acknowledged key-slot \
         changes, {} kills during a key-slot change, {:.1} s",
        fig.kills,
        fig.acked,
        fig.found,
        fig.key_changes_acked,
        fig.killed_in_key_change,
        t.elapsed().as_secs_f64()
    );
    assert_eq!(fig.acked, fig.found);
    assert!(
        fig.acked > fig.kills,
        "the writer acknowledged too little for the run to mean anything"
    );
}

/// Another device's store, filled with `subjects` subjects (ECMO form and 28 daily logs each),
/// written out as the pages a sync pull would receive: one JSON line a page.
fn pulled_pages(
    dir: &Path,
    subjects: usize,
    page_size: usize,
) -> (std::path::PathBuf, Vec<String>) {
    let study = study();
    let path = dir.join("other-device.ecrf");
    let admin2 = User {
        username: "admin2",
        ..ADMIN.with_password(ADMIN_PW)
    };
    let nurse2 = User {
        username: "nurse2",
        name: "Wang Fang",
        ..CRASH_NURSE
    };
    let mut other = Site::new("01")
        .admin(admin2)
        .with(nurse2)
        .create_as(&path, &nurse2);
    other.set_sync_setting("subject_prefix", "D9").unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2026, 2, 1).unwrap();
    for n in 0..subjects {
        let s = other.new_subject().unwrap();
        let ecmo = ecrf_core::FormKey::parse(&study, "ECMO").unwrap();
        ecrf_app::demo::save_sample(&mut other, &s, &ecmo, &ecrf_app::demo::ecmo_form(start))
            .unwrap();
        for day in 1..=28u32 {
            let key = ecrf_core::FormKey::parse(&study, &format!("DLY#{day}")).unwrap();
            ecrf_app::demo::save_sample(
                &mut other,
                &s,
                &key,
                &ecrf_app::demo::daily_log(n, start, day),
            )
            .unwrap();
        }
    }
    let changes = other.own_changes_after(0, usize::MAX >> 1).unwrap();
    let ids = changes
        .iter()
        .map(|c| format!("{} {}", c.change_id, c.hash))
        .collect();
    let mut text = String::new();
    for (n, page) in changes.chunks(page_size).enumerate() {
        let line = serde_json::json!({ "cursor": n as i64 + 1, "changes": page });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    let file = dir.join("pages.jsonl");
    std::fs::write(&file, text).unwrap();
    (file, ids)
}

/// The other device's changes the store holds, as `id hash`, sorted.
fn held_from(v: &Victim, device_ids: &[String]) -> Vec<String> {
    let study = study();
    let store = Store::open(&v.store, study, "nurse", &v.nurse_pw).unwrap();
    let mut held: Vec<String> = store
        .all_changes()
        .unwrap()
        .into_iter()
        .map(|c| format!("{} {}", c.change_id, c.hash))
        .filter(|k| device_ids.contains(k))
        .collect();
    held.sort();
    held
}

#[test]
fn sigkill_while_applying_pulled_pages_loses_nothing_and_resumes() {
    let kills: usize = std::env::var("ECRF_CRASH_PULL_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let (pages, mut source) = pulled_pages(dir.path(), 6, 150);
    source.sort();
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).unwrap();
    let mut rng = Rng(u64::from_le_bytes(seed) | 1);
    let bin = std::env::var("ECRF_CRASH_BIN").unwrap_or(env!("CARGO_BIN_EXE_ecrf").into());
    let t = Instant::now();
    let mut v = new_store(dir.path(), 0);
    let (mut fig, mut completed, mut last_cursor) = (Figures::default(), 0, 0i64);
    let mut k = 0;
    while k < kills {
        let (mut child, reader) = start_writer(
            Command::new(&bin)
                .args([
                    "crash-writer",
                    "--admin",
                    "admin",
                    "--mode",
                    "pull",
                    "--pages",
                ])
                .arg(&pages),
            &v,
        );
        std::thread::sleep(Duration::from_micros(rng.next() % 400_000));
        let killed = child.try_wait().unwrap().is_none();
        if killed {
            child.kill().unwrap();
            k += 1;
            fig.kills += 1;
        }
        let status = child.wait().unwrap();
        let lines = reader.join().unwrap();
        let mut acks = Vec::new();
        let mut done = false;
        for l in &lines {
            let w: Vec<&str> = l.split(' ').collect();
            match w.as_slice() {
                ["PULLED", cursor, seq, hash] => {
                    let cursor: i64 = cursor.parse().unwrap();
                    assert_eq!(cursor, last_cursor + 1, "pages are applied in order, once");
                    last_cursor = cursor;
                    acks.push((seq.parse::<i64>().unwrap(), hash.to_string()));
                }
                ["DONE"] => done = true,
                _ => panic!("unexpected writer line {l:?}"),
            }
        }
        assert!(
            killed || (status.success() && done),
            "the writer failed: {status}"
        );
        fig.acked += acks.len();
        fig.found += check_after_kill(&mut v, &acks, &[]);
        let study = study();
        let pulled = Store::open(&v.store, study, "nurse", &v.nurse_pw)
            .unwrap()
            .sync_state()
            .unwrap()
            .pulled;
        // A page committed just before the kill, but not yet announced, is held too.
        assert!(
            pulled == last_cursor || pulled == last_cursor + 1,
            "pull cursor {pulled} after page {last_cursor} was acknowledged"
        );
        last_cursor = pulled;
        if done {
            // Every change of the other device, each once, after however many kills.
            assert_eq!(held_from(&v, &source), source);
            completed += 1;
            v = new_store(dir.path(), k + 1);
            last_cursor = 0;
        }
    }
    println!(
        "crash harness (sync pull): {} kills, {} pages acknowledged, {} found, {} whole pulls \
         completed across kills, {:.1} s",
        fig.kills,
        fig.acked,
        fig.found,
        completed,
        t.elapsed().as_secs_f64()
    );
    assert_eq!(fig.acked, fig.found);
    assert!(
        fig.acked > 0,
        "no page was acknowledged: the run means nothing"
    );
}
