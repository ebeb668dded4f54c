//! `ecrf store check`, `ecrf backup`, `ecrf restore` and the hidden crash-test writer.
//!
//! Thin calls into `ecrf_store::{durability, backup}`. The crash writer
//! (`ecrf crash-writer`) is the victim process of the crash harness
//! (`crates/cli/tests/crash.rs`): it saves daily logs as fast as it can and prints one line per
//! acknowledged step, flushed before the next step starts, so every complete line on its stdout
//! is something the store promised to keep. Lines:
//!
//! - `READY` once both sessions are open;
//! - `ACK <seq> <hash>` after a save returned (the log head it left);
//! - `PW-BEGIN <password>` / `PW-ACK <password>` around a password change (a key-slot rewrite);
//! - `USER-BEGIN <name>` / `USER-ACK <name>` around adding a user (key slot + change);
//! - in `pull` mode, `PULLED <cursor> <seq> <hash>` after a pulled page was applied (through
//!   `Store::apply_remote`, what the sync client does with each page it receives), and `DONE`
//!   once every page of the file is held.
//!
//! Modes say where kills land: saves, key-slot rewrites, or applying pulled pages.

use std::io::Write;
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Subcommand, ValueEnum};
use ecrf_core::{FormKey, Role};
use ecrf_store::backup;
use ecrf_store::{SaveOptions, Store};

use crate::{Cli, Failure, open, secret, store_path, study};

#[derive(Subcommand)]
pub enum StoreCmd {
    /// Full check: every page, SQLite's integrity check, the whole hash chain, and projections
    /// equal to a rebuild from the log. Writes nothing.
    Check,
    /// Change the store key (administrators): the file is encrypted anew and every key slot
    /// rewrapped, so an old copy of the key file opens nothing.
    Rekey,
}

#[derive(Args)]
pub struct BackupArgs {
    /// The backup file to write (e.g. on a USB stick); must not exist yet.
    #[arg(short = 'o', long = "output")]
    out: PathBuf,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup file.
    file: PathBuf,
    /// Only check the backup (checksum, opens, full check); replace nothing.
    #[arg(long)]
    check_only: bool,
    /// Replace the store even with a backup of another store (its store id differs).
    #[arg(long)]
    force: bool,
}

/// Where the crash writer spends its time.
#[derive(Clone, Copy, ValueEnum)]
pub enum CrashMode {
    /// Daily-log saves only.
    Saves,
    /// Saves mixed with password changes and new users (key-slot rewrites).
    Keys,
    /// Applying pages of another device's changes, as a sync pull does, from `--pages`.
    Pull,
}

/// One page a sync pull received: the server's cursor after it and its changes.
#[derive(serde::Deserialize)]
pub struct PulledPage {
    cursor: i64,
    changes: Vec<ecrf_store::Change>,
}

#[derive(Args)]
pub struct CrashWriterArgs {
    /// Administrator (adds users in `keys` mode); password in ECRF_ADMIN_PASSWORD.
    #[arg(long)]
    admin: String,
    /// What to do between kills.
    #[arg(long, value_enum, default_value = "keys")]
    mode: CrashMode,
    /// `pull` mode: the pages, one JSON `{"cursor": n, "changes": [...]}` a line, in order.
    #[arg(long, required_if_eq("mode", "pull"))]
    pages: Option<PathBuf>,
}

/// Opens the store for `audit verify` / `store check`: no tail check, so a damaged log can
/// still be reported on.
pub fn open_for_check(cli: &Cli) -> Result<Store, Failure> {
    let path = store_path(cli)?;
    let user = cli
        .user
        .as_deref()
        .ok_or_else(|| Failure("say who you are: --user NAME or ECRF_USER".into()))?;
    let password = secret("ECRF_PASSWORD", &format!("Password for {user}: "))?;
    Ok(Store::open_for_check(path, study()?, user, &password)?)
}

pub fn store(cli: &Cli, cmd: &StoreCmd) -> Result<(), Failure> {
    match cmd {
        StoreCmd::Rekey => {
            let mut store = open(cli)?;
            let done = store.rekey()?;
            say!(
                "The store key changed; key slots rewrapped for: {}.",
                done.kept.join(", ")
            );
            if !done.dropped.is_empty() {
                say!(
                    "Dropped (no kept wrapping key; they need a new password): {}.",
                    done.dropped.join(", ")
                );
            }
            Ok(())
        }
        StoreCmd::Check => {
            let store = open_for_check(cli)?;
            let t = std::time::Instant::now();
            let report = store.check()?;
            let d = store.durability_settings()?;
            let settings = format!(
                "Durability: journal {}, synchronous {} (2 = FULL), busy timeout {} ms.",
                d.journal_mode, d.synchronous, d.busy_timeout_ms
            );
            if report.ok() {
                say!(
                    "OK: {} changes; every page, the database structure, the whole hash chain \
                     and the projections (equal to a rebuild from the log) checked in {:.1} s.",
                    report.changes,
                    t.elapsed().as_secs_f64()
                );
                say!("{settings}");
                Ok(())
            } else {
                for p in &report.problems {
                    say!("{p}");
                }
                Err(Failure(format!(
                    "the store is NOT intact: {} problem(s); restore it from a backup",
                    report.problems.len()
                )))
            }
        }
    }
}

pub fn backup(cli: &Cli, args: &BackupArgs) -> Result<(), Failure> {
    let store = open(cli)?;
    let header = store.backup(&args.out)?;
    say!(
        "Backup written: {} ({} changes, {} bytes, encrypted).",
        args.out.display(),
        header.head_seq,
        header.db_bytes
    );
    say!("SHA-256 of the database part: {}", header.db_sha256);
    Ok(())
}

pub fn restore(cli: &Cli, args: &RestoreArgs) -> Result<(), Failure> {
    let path = store_path(cli)?;
    let user = cli
        .user
        .as_deref()
        .ok_or_else(|| Failure("say who you are: --user NAME or ECRF_USER".into()))?;
    let password = secret("ECRF_PASSWORD", &format!("Password for {user}: "))?;
    if args.check_only {
        let h = backup::verify_backup(&args.file, study()?, user, &password)?;
        say!(
            "OK: backup of site {} taken {}: {} changes, checksum and full check passed.",
            h.site,
            h.taken_utc,
            h.head_seq
        );
        return Ok(());
    }
    let done = backup::restore(&args.file, path, study()?, user, &password, args.force)?;
    say!(
        "Restored {} from the backup of {} ({} changes).",
        path.display(),
        done.header.taken_utc,
        done.header.head_seq
    );
    if let Some(aside) = done.kept_aside {
        say!("The store it replaced is kept as {}.", aside.display());
    }
    Ok(())
}

fn line(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| Failure(format!("cannot write output: {e}")))
}

/// The crash harness's victim: runs until killed (see the module docs).
pub fn crash_writer(cli: &Cli, args: &CrashWriterArgs) -> Result<(), Failure> {
    let path = store_path(cli)?.to_path_buf();
    let mut nurse = open(cli)?;
    if let (CrashMode::Pull, Some(pages)) = (args.mode, &args.pages) {
        return pull_writer(&mut nurse, pages);
    }
    let admin_pw = secret("ECRF_ADMIN_PASSWORD", "Admin password: ")?;
    let mut admin = Store::open(&path, study()?, &args.admin, &admin_pw)?;
    let passwords = ["crash-password-a", "crash-password-b"];
    let start = NaiveDate::from_ymd_opt(2026, 1, 5).ok_or_else(|| Failure("date".into()))?;
    line("READY")?;
    let study = study()?;
    let mut step: u64 = 0;
    loop {
        step += 1;
        // A fresh subject every 28 daily logs: ECMO form, then day 1…28.
        let subject = nurse.new_subject()?;
        let (h, hash) = nurse.head();
        line(&format!("ACK {h} {hash}"))?;
        let ecmo = FormKey::parse(&study, "ECMO").map_err(Failure)?;
        ecrf_app::demo::save_sample(
            &mut nurse,
            &subject,
            &ecmo,
            &ecrf_app::demo::ecmo_form(start),
        )
        .map_err(Failure)?;
        let (h, hash) = nurse.head();
        line(&format!("ACK {h} {hash}"))?;
        for day in 1..=28u32 {
            let key = FormKey::parse(&study, &format!("DLY#{day}")).map_err(Failure)?;
            let values = ecrf_app::demo::daily_log(step as usize, start, day);
            let entries: Vec<(&str, &str)> = values
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            nurse.save(&subject, &key, &entries, &SaveOptions::default())?;
            let (h, hash) = nurse.head();
            line(&format!("ACK {h} {hash}"))?;
            nurse.idle()?;
            if matches!(args.mode, CrashMode::Keys) && day % 14 == 0 {
                let pw = passwords[(day / 14 % 2) as usize];
                line(&format!("PW-BEGIN {pw}"))?;
                nurse.set_password(pw)?;
                line(&format!("PW-ACK {pw}"))?;
            }
            if matches!(args.mode, CrashMode::Keys) && day == 21 {
                let name = format!("n{}", nurse.head().0);
                line(&format!("USER-BEGIN {name}"))?;
                admin.add_user(&name, "crash test", Role::Nurse, passwords[0])?;
                line(&format!("USER-ACK {name}"))?;
            }
        }
    }
}

/// `pull` mode: applies each page past the store's pull cursor, one transaction a page, and
/// says so once it is committed; a restarted writer resumes after the last page held.
fn pull_writer(store: &mut Store, pages: &std::path::Path) -> Result<(), Failure> {
    let text =
        std::fs::read_to_string(pages).map_err(|e| Failure(format!("{}: {e}", pages.display())))?;
    let held = store.sync_state()?.pulled;
    line("READY")?;
    for (n, l) in text.lines().enumerate() {
        let page: PulledPage = serde_json::from_str(l)
            .map_err(|e| Failure(format!("{} line {}: {e}", pages.display(), n + 1)))?;
        if page.cursor <= held {
            continue;
        }
        store.apply_remote(&page.changes, page.cursor)?;
        let (seq, hash) = store.head();
        line(&format!("PULLED {} {seq} {hash}", page.cursor))?;
    }
    line("DONE")
}

/// Median time of one Argon2id unlock and of one whole open, over 7 logins (for `ecrf bench`).
pub fn login_figures(
    dir: &std::path::Path,
    study: std::sync::Arc<ecrf_core::Study>,
) -> Result<(std::time::Duration, std::time::Duration), String> {
    let path = dir.join("login-bench.ecrf");
    let pw = "bench-password-1";
    Store::create(
        &path,
        std::sync::Arc::clone(&study),
        ecrf_store::CreateOptions {
            site: "01".into(),
            admin_user: "admin".into(),
            admin_name: String::new(),
            admin_password: pw.into(),
        },
    )
    .map_err(|e| e.to_string())?;
    let ring = ecrf_store::Keyring::load(&path).map_err(|e| e.to_string())?;
    let (mut unlock, mut open) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let t = std::time::Instant::now();
        ring.unlock("admin", pw).map_err(|e| e.to_string())?;
        unlock.push(t.elapsed());
        let t = std::time::Instant::now();
        Store::open(&path, std::sync::Arc::clone(&study), "admin", pw)
            .map_err(|e| e.to_string())?;
        open.push(t.elapsed());
    }
    unlock.sort();
    open.sort();
    Ok((unlock[3], open[3]))
}
