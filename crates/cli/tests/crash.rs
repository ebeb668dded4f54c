//! The crash harness: a real `ecrf crash-writer` process saves daily logs (and rewrites key
//! slots: password changes, new users) on a real SQLCipher file and is killed with SIGKILL at
//! random moments. After every kill the store is reopened and must hold every change the writer
//! acknowledged, verify (pages, structure, whole chain, projections = rebuild from the log) and
//! open with the password last acknowledged (or the one being set when the kill came).
//!
//! `cargo test` runs 50 kills; `make crash-test N=1000` runs more (`ECRF_CRASH_KILLS`) and
//! prints the figures. A sync-pull kill point is to be added as another writer mode.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ecrf_core::Role;
use ecrf_store::{CreateOptions, Keyring, Store, StoreError};

const ADMIN_PW: &str = "crash-admin-pw";
const FIRST_PW: &str = "crash-password-a";
/// A fresh store every so many kills keeps the full check after each kill quick.
const KILLS_PER_STORE: usize = 100;

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
    let study = Arc::new(ecrf_core::trial::definition().unwrap());
    let path = dir.join(format!("crash-{n}.ecrf"));
    let (mut admin, _) = Store::create(
        &path,
        study,
        CreateOptions {
            site: "01".into(),
            admin_user: "admin".into(),
            admin_name: "Admin".into(),
            admin_password: ADMIN_PW.into(),
        },
    )
    .unwrap();
    admin
        .add_user("nurse", "Li Na", Role::Nurse, FIRST_PW)
        .unwrap();
    Victim {
        store: path,
        nurse_pw: FIRST_PW.into(),
        pending_pw: None,
        last_ack: None,
    }
}

/// Reopens after a kill and checks everything; returns how many of `acks` were found.
fn check_after_kill(v: &mut Victim, acks: &[(i64, String)], users: &[String]) -> usize {
    let study = Arc::new(ecrf_core::trial::definition().unwrap());
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
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", store.raw_key_hex()))
        .unwrap();
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
        let mut child = Command::new(bin)
            .args(["crash-writer", "--admin", "admin", "--mode", "keys"])
            .env("ECRF_STORE", &v.store)
            .env("ECRF_USER", "nurse")
            .env("ECRF_PASSWORD", &v.nurse_pw)
            .env("ECRF_ADMIN_PASSWORD", ADMIN_PW)
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
            // Only whole lines count: a line cut by the kill was not acknowledged.
            while out.read_line(&mut l).unwrap_or(0) > 0 {
                if l.ends_with('\n') {
                    lines.push(l.trim_end().to_string());
                }
                l.clear();
            }
            lines
        });
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
