//! `ecrf`: the command line for administrators and scripts.
//!
//! Each command is a thin call into `ecrf-store` / `ecrf-core`; this file only parses arguments,
//! asks for passwords and prints. Errors are one clear line on stderr and exit code 1; bad usage
//! exits 2 (clap). Passwords come from a prompt, or `ECRF_PASSWORD` for scripts.

/// Prints a line to stdout; a closed pipe (`ecrf audit log X | head`) ends quietly, not in a panic.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("error: cannot write output: {e}");
            std::process::exit(1);
        }
    }};
}

/// Said after every file written outside the store (printouts, exports, audit CSVs).
pub(crate) const NOT_ENCRYPTED: &str = "  note: this file is not encrypted: keep it where only the study team can read it, and delete it when it is no longer needed.";

// Exports, the server and the benchmarks make millions of small strings (a whole trial's change
// log is half a million changes): mimalloc makes reading and writing them about a fifth cheaper
// than the system allocator. The desktop app keeps the system allocator (its idle memory budget).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod bench_lab;
mod bench_scale;
mod bench_sync;
mod bench_trial;
mod bench_web;
mod export;
mod export_server;
mod lab;
mod oversight;
mod print;
mod randomization;
mod safety;
mod sync;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use ecrf_core::{FormKey, Role, Study, Value};
use ecrf_store::{CreateOptions, RecoveryKey, SaveOptions, Store, StoreError};
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(
    name = "ecrf",
    version,
    about = "eCRF of the EARLY-IABP trial (NCT06872021)"
)]
struct Cli {
    /// The store file.
    #[arg(long, global = true, env = "ECRF_STORE")]
    store: Option<PathBuf>,
    /// Who you are (login name).
    #[arg(long, global = true, env = "ECRF_USER")]
    user: Option<String>,
    /// Language of labels and messages: en or zh.
    #[arg(long, global = true, env = "ECRF_LANG", default_value = "en")]
    lang: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new store for a site, with its first administrator; prints the recovery key once.
    Init {
        /// Site code, e.g. 01.
        #[arg(long)]
        site: String,
        /// Login name of the first administrator.
        #[arg(long)]
        admin: String,
        /// Full name of the administrator.
        #[arg(long, default_value = "")]
        admin_name: String,
    },
    /// Users.
    #[command(subcommand)]
    User(UserCmd),
    /// Subjects.
    #[command(subcommand)]
    Subject(SubjectCmd),
    /// Form data.
    #[command(subcommand)]
    Form(FormCmd),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// The study definition.
    #[command(subcommand)]
    Study(StudyCmd),
    /// Measure saving a daily log at full trial size, encrypted and plain.
    Bench(bench::BenchArgs),
    /// PDF printouts: the blank CRF book or a form, a subject's filled CRF.
    #[command(subcommand)]
    Print(print::PrintCmd),
    /// The screening log and its CONSORT counts.
    #[command(subcommand)]
    Screening(randomization::ScreeningCmd),
    /// Allocation lists and leases, sealed envelopes.
    #[command(subcommand)]
    Randomization(randomization::RandomizationCmd),
    /// Data queries: raise, answer, close, reopen, list.
    #[command(subcommand)]
    Query(oversight::QueryCmd),
    /// Source-data verification marks.
    #[command(subcommand)]
    Sdv(oversight::SdvCmd),
    /// Sign a form or a whole casebook electronically (investigators; password: prompt or
    /// ECRF_SIGN_PASSWORD).
    Sign(oversight::SignArgs),
    /// A subject's signatures and whether each still holds.
    Signatures {
        /// Subject number.
        subject: String,
    },
    /// Lock a form, a casebook or a site (data managers), or list the locks.
    #[command(subcommand)]
    Lock(oversight::LockCmd),
    /// Unlock a form, a casebook or a site (data managers).
    #[command(subcommand)]
    Unlock(oversight::LockCmd),
    /// Randomize an eligible, consented subject: opens the next sealed envelope.
    Randomize {
        /// Screening number.
        subject: String,
    },
    /// Export data: csv (+ dictionary, R script), stata, spss, sas, odm or all.
    Export(export::ExportArgs),
    /// Measure exporting a whole trial (358 subjects × 30 daily logs) in every format.
    ExportBench(export::BenchArgs),
    /// Store health: the full check.
    #[command(subcommand)]
    Store(safety::StoreCmd),
    /// Write an encrypted, consistent backup of the store (while others keep saving).
    Backup(safety::BackupArgs),
    /// Replace the store with a backup (administrators); checks it first, keeps the old aside.
    Restore(safety::RestoreArgs),
    /// The crash harness's writer (tests only).
    #[command(hide = true)]
    CrashWriter(safety::CrashWriterArgs),
    /// Run the central server (PostgreSQL behind, TLS in front).
    Server(sync::ServerArgs),
    /// Sites on the server.
    #[command(subcommand)]
    Site(sync::SiteCmd),
    /// Devices on the server: enrolment codes, revoking.
    #[command(subcommand)]
    Device(sync::DeviceCmd),
    /// Print this store's device id: the administrator makes the enrolment code for it
    /// (`ecrf device enrol-code --site S --device ID`).
    DeviceId,
    /// Enrol this store's laptop with the server, with a one-time code made for its device id.
    Enrol {
        /// Server URL (https://…).
        #[arg(long)]
        server: String,
        /// The one-time enrolment code.
        #[arg(long)]
        code: String,
        /// CA certificate (PEM) to trust for the server, if not a public one.
        #[arg(long)]
        ca: Option<PathBuf>,
    },
    /// Send this laptop's changes to the server and receive the site's.
    Sync,
    /// Items two laptops changed without seeing each other's value: list, resolve.
    #[command(subcommand)]
    Conflict(sync::ConflictCmd),
    /// Benchmark sync against a real PostgreSQL (first full sync, one item, 200 devices).
    BenchSync(bench_sync::BenchSyncArgs),
    /// Benchmark the web view's dashboard over ten times the trial in a real PostgreSQL.
    BenchWeb(bench_web::BenchWebArgs),
    /// Benchmark the server, sync and exports at 1x, 3x and 10x the trial (real push path).
    BenchScale(bench_scale::BenchScaleArgs),
    /// Benchmark reading and matching a month of laboratory results (60 patients, ~20,000
    /// observations) up to the adjudication screen.
    BenchLab(bench_lab::BenchLabArgs),
    /// Laboratory results: the identification log, table mappings, importing a file.
    #[command(subcommand)]
    Lab(lab::LabCmd),
    /// Create a demo store with sample data (used by `make run`).
    Demo {
        /// Where to create it (default ./demo/demo.ecrf).
        #[arg(long, default_value = "demo/demo.ecrf")]
        path: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user (administrators). The new user's password: prompt or ECRF_NEW_PASSWORD.
    Add {
        /// Login name.
        username: String,
        /// nurse, investigator, monitor, data_manager or admin.
        #[arg(long)]
        role: String,
        /// Full name.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List users.
    List,
    /// Change a user's role (administrators).
    Role {
        /// Login name.
        username: String,
        /// nurse, investigator, monitor, data_manager or admin.
        role: String,
    },
    /// Deactivate a user (administrators); users are never deleted.
    Deactivate {
        /// Login name.
        username: String,
    },
    /// Give a user a temporary password (administrators; prompt or ECRF_NEW_PASSWORD); they
    /// must choose a new one before their next signature.
    ResetPassword {
        /// Login name.
        username: String,
    },
    /// Choose a new password for yourself (prompt or ECRF_NEW_PASSWORD).
    Passwd,
    /// Set a new password with the recovery key (ECRF_RECOVERY_KEY or prompt).
    Recover {
        /// The user whose password is reset.
        username: String,
    },
}

#[derive(Subcommand)]
enum SubjectCmd {
    /// Create a subject; prints its screening number.
    New,
    /// List subjects.
    List,
    /// A subject's derived outcomes and protocol flags (IABP delay, deviation, crossover,
    /// days on devices, stays, weaning, day-30 status, primary endpoint), as JSON.
    Outcome {
        /// Subject number.
        subject: String,
    },
}

#[derive(Subcommand)]
enum FormCmd {
    /// Save values: ITEM=VALUE… (empty clears; @ND, @UNK, @NA are missing-data codes).
    Set {
        /// Subject number.
        subject: String,
        /// Form, or FORM#N for repeating forms (DLY#3 = day 3).
        form: String,
        /// ITEM=VALUE pairs.
        #[arg(required = true)]
        values: Vec<String>,
        /// Why a saved value changes.
        #[arg(long)]
        reason: Option<String>,
        /// Confirm the soft warnings of this save.
        #[arg(long)]
        confirm_warnings: bool,
    },
    /// Show a form's values.
    Show {
        /// Subject number.
        subject: String,
        /// Form, or FORM#N.
        form: String,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Every change of a subject: who, when, old → new, why.
    Log {
        /// Subject number.
        subject: String,
    },
    /// Check every page of the file and the whole hash chain.
    Verify,
    /// Write the audit trail, filtered by subject, form, item or user, as CSV.
    Export(oversight::AuditExportArgs),
}

#[derive(Subcommand)]
enum StudyCmd {
    /// Check a study folder (default: the embedded definition).
    Check {
        /// Folder with study.toml and forms/.
        dir: Option<PathBuf>,
    },
    /// Publish an approved definition version (a protocol amendment) on the server, from a
    /// folder with study.toml and forms/. Sites use it only once activated (`ecrf site
    /// activate`).
    Publish {
        /// Folder with study.toml and forms/.
        dir: PathBuf,
        /// The version, as in the folder's study.toml.
        #[arg(long)]
        version: String,
        /// PostgreSQL URL of the server.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
    /// What an amendment changes: each of A and B is a folder, the base version, or (with
    /// DATABASE_URL) a version published on the server.
    Diff {
        /// The older version or folder.
        a: String,
        /// The newer version or folder.
        b: String,
        /// PostgreSQL URL of the server (for published versions).
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
    },
    /// Read a study definition from CDISC ODM 1.3.2 and check it (optionally write it as a folder).
    ImportOdm {
        /// The ODM file.
        file: PathBuf,
        /// Write study.toml and forms/ into this folder.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// A failure to report: one line, exit code 1.
struct Failure(String);

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure(e.to_string())
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(Failure(msg)) = run(cli) {
        eprintln!("error: {msg}");
        std::process::exit(1);
    }
}

pub(crate) fn study() -> Result<Arc<Study>, Failure> {
    ecrf_core::trial::definition()
        .map(Arc::new)
        .map_err(|e| Failure(e.to_string()))
}

fn store_path(cli: &Cli) -> Result<&Path, Failure> {
    cli.store
        .as_deref()
        .ok_or_else(|| Failure("say which store: --store PATH or ECRF_STORE".into()))
}

/// A secret from an environment variable (scripts) or a prompt on the terminal; wiped from
/// memory when dropped.
fn secret(var: &str, prompt: &str) -> Result<Zeroizing<String>, Failure> {
    if let Ok(v) = std::env::var(var) {
        return Ok(Zeroizing::new(v));
    }
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| {
            Failure(format!(
                "cannot read the password ({e}); set {var} in scripts"
            ))
        })
}

pub(crate) fn new_password(var: &str, who: &str) -> Result<Zeroizing<String>, Failure> {
    if let Ok(v) = std::env::var(var) {
        return Ok(Zeroizing::new(v));
    }
    let a = secret(var, &format!("New password for {who}: "))?;
    let b = secret(var, "Again: ")?;
    if a != b {
        return Err(Failure(
            "the two passwords differ; nothing was changed".into(),
        ));
    }
    Ok(a)
}

fn open(cli: &Cli) -> Result<Store, Failure> {
    let path = store_path(cli)?;
    if !path.exists() {
        return Err(StoreError::NoStore(path.to_path_buf()).into());
    }
    let user = cli
        .user
        .as_deref()
        .ok_or_else(|| Failure("say who you are: --user NAME or ECRF_USER".into()))?;
    let password = secret("ECRF_PASSWORD", &format!("Password for {user}: "))?;
    ecrf_app::sync::open_or_first_login(path, study()?, user, &password)
        .map_err(|e| Failure(e.to_string()))
}

fn show(v: &str, lang: &str, study: &Study, form: &str, item: &str) -> String {
    let Ok(value) = Value::from_json(v) else {
        return v.to_string();
    };
    label_value(&value, lang, study, form, item)
}

/// A value as a person reads it: codes with their labels, missing codes in words.
fn label_value(value: &Value, lang: &str, study: &Study, form: &str, item: &str) -> String {
    let form_id = form.split('#').next().unwrap_or(form);
    let def = study.form(form_id).and_then(|f| f.item(item));
    match (value, def) {
        (Value::Code(c), Some(def)) => {
            let label = study
                .codes_for(def)
                .into_iter()
                .find(|k| &k.code == c)
                .map(|k| k.label.get(lang).to_string());
            match label {
                Some(l) => format!("{c} ({l})"),
                None => c.clone(),
            }
        }
        (Value::Missing(m), _) => {
            let words = if lang == "zh" {
                m.label_zh()
            } else {
                m.label_en()
            };
            format!("{value} ({words})")
        }
        (Value::Dec(_) | Value::Int(_), Some(def)) => match &def.unit {
            Some(u) => format!("{value} {u}"),
            None => value.to_string(),
        },
        _ => value.to_string(),
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Init {
            site,
            admin,
            admin_name,
        } => {
            let path = store_path(&cli)?;
            let password = new_password("ECRF_PASSWORD", admin)?;
            let (_store, recovery) = Store::create(
                path,
                study()?,
                CreateOptions {
                    site: site.clone(),
                    admin_user: admin.clone(),
                    admin_name: admin_name.clone(),
                    admin_password: password.to_string(),
                },
            )?;
            say!(
                "Created {} for site {site}; administrator {admin}.",
                path.display()
            );
            say!();
            say!("RECOVERY KEY (shown once; print it and keep it locked away):");
            say!("  {}", recovery.as_str());
            Ok(())
        }
        Command::User(UserCmd::Add {
            username,
            role,
            name,
        }) => {
            let role: Role = role.parse().map_err(Failure)?;
            let mut store = open(&cli)?;
            let password = new_password("ECRF_NEW_PASSWORD", username)?;
            store.add_user(username, name, role, &password)?;
            say!("Added {username} ({role}).");
            Ok(())
        }
        Command::User(UserCmd::List) => {
            let store = open(&cli)?;
            for u in store.users()? {
                let state = if u.active { "" } else { "  (deactivated)" };
                say!(
                    "{:<16} {:<13} {}{state}",
                    u.username,
                    u.role.as_str(),
                    u.name
                );
            }
            Ok(())
        }
        Command::User(UserCmd::Role { username, role }) => {
            let role: Role = role.parse().map_err(Failure)?;
            open(&cli)?.change_role(username, role)?;
            say!("{username} is now {role}.");
            Ok(())
        }
        Command::User(UserCmd::Deactivate { username }) => {
            open(&cli)?.deactivate_user(username)?;
            say!("{username} deactivated.");
            Ok(())
        }
        Command::User(UserCmd::ResetPassword { username }) => {
            let mut store = open(&cli)?;
            let password = new_password("ECRF_NEW_PASSWORD", username)?;
            store.reset_password(username, &password)?;
            say!("Temporary password set for {username}; they must choose a new one.");
            Ok(())
        }
        Command::User(UserCmd::Passwd) => {
            let mut store = open(&cli)?;
            let who = store.session().user.clone();
            let password = new_password("ECRF_NEW_PASSWORD", &who)?;
            store.set_password(&password)?;
            say!("New password set for {who}.");
            Ok(())
        }
        Command::User(UserCmd::Recover { username }) => {
            let path = store_path(&cli)?;
            let key = RecoveryKey::parse(&secret("ECRF_RECOVERY_KEY", "Recovery key: ")?)?;
            let mut store = Store::open_with_recovery(path, study()?, &key, username)?;
            let password = new_password("ECRF_NEW_PASSWORD", username)?;
            store.set_password(&password)?;
            say!("New password set for {username}.");
            Ok(())
        }
        Command::Subject(SubjectCmd::New) => {
            let mut store = open(&cli)?;
            say!("{}", store.new_subject()?);
            Ok(())
        }
        Command::Subject(SubjectCmd::Outcome { subject }) => {
            let store = open(&cli)?;
            let outcome = store.subject_outcome(subject)?;
            say!(
                "{}",
                serde_json::to_string_pretty(&outcome).unwrap_or_default()
            );
            Ok(())
        }
        Command::Subject(SubjectCmd::List) => {
            let store = open(&cli)?;
            for s in store.subjects()? {
                say!("{s}");
            }
            Ok(())
        }
        Command::Form(FormCmd::Set {
            subject,
            form,
            values,
            reason,
            confirm_warnings,
        }) => {
            let mut store = open(&cli)?;
            let key = FormKey::parse(store.study(), form).map_err(Failure)?;
            let mut entries = Vec::new();
            for pair in values {
                let (item, value) = pair
                    .split_once('=')
                    .ok_or_else(|| Failure(format!("{pair}: write values as ITEM=VALUE")))?;
                entries.push((item.trim(), value));
            }
            let opts = SaveOptions {
                reason: reason.clone(),
                confirm_warnings: *confirm_warnings,
            };
            let outcome = match store.save(subject, &key, &entries, &opts) {
                Err(StoreError::NeedsConfirmation(w)) => {
                    let lines: Vec<_> = w
                        .iter()
                        .map(|f| f.message.get(&cli.lang).to_string())
                        .collect();
                    return Err(Failure(format!(
                        "not saved, please confirm with --confirm-warnings: {}",
                        lines.join("; ")
                    )));
                }
                Err(StoreError::Rejected(errs)) => {
                    let lines: Vec<_> = errs
                        .iter()
                        .map(|f| f.message.get(&cli.lang).to_string())
                        .collect();
                    return Err(Failure(format!("not saved: {}", lines.join("; "))));
                }
                other => other?,
            };
            say!("Saved {key} of {subject}: {} change(s).", outcome.changes);
            for w in &outcome.warnings {
                say!("  warning kept: {}", w.message.get(&cli.lang));
            }
            Ok(())
        }
        Command::Form(FormCmd::Show { subject, form }) => {
            let store = open(&cli)?;
            let study = store.study();
            let key = FormKey::parse(study, form).map_err(Failure)?;
            let def = study
                .form(&key.form)
                .ok_or_else(|| Failure(format!("no form {form}")))?;
            let mut values = store.form_values(subject, &key)?;
            // Derived items (BMI, VIS, IABP delay…) as every output shows them.
            for (item, value) in store.derived_values(subject, &key)? {
                if !values.iter().any(|v| v.item == item) {
                    values.push(ecrf_log::ItemState {
                        item,
                        value,
                        warning: None,
                    });
                }
            }
            say!("{subject} {key}: {}", def.name.get(&cli.lang));
            for item in &def.items {
                let shown = values.iter().find(|v| v.item == item.id);
                let text = shown
                    .map(|s| label_value(&s.value, &cli.lang, study, form, &item.id))
                    .unwrap_or_else(|| "—".into());
                let flag = if shown.is_some_and(|s| s.warning.is_some()) {
                    "  (warning confirmed)"
                } else {
                    ""
                };
                say!(
                    "  {:<20} {:<34} {text}{flag}",
                    item.id,
                    item.label.get(&cli.lang)
                );
            }
            Ok(())
        }
        Command::Audit(AuditCmd::Log { subject }) => {
            let store = open(&cli)?;
            let study = store.study();
            for c in store.audit_log(subject)? {
                let what = match (&c.form, &c.item) {
                    (Some(f), Some(i)) => format!(
                        "{f} {i}: {} → {}",
                        c.old_value
                            .as_deref()
                            .map(|v| show(v, &cli.lang, study, f, i))
                            .unwrap_or_else(|| "∅".into()),
                        c.new_value
                            .as_deref()
                            .map(|v| show(v, &cli.lang, study, f, i))
                            .unwrap_or_else(|| "∅".into())
                    ),
                    _ => c.kind.to_string(),
                };
                let reason = c
                    .reason
                    .as_deref()
                    .map(|r| format!("  reason: {r}"))
                    .unwrap_or_default();
                let warn = if c.warning.is_some() {
                    "  [warning confirmed]"
                } else {
                    ""
                };
                say!(
                    "#{} {} ({}) {} ({}) {what}{reason}{warn}",
                    c.seq,
                    c.utc,
                    c.local_offset,
                    c.user,
                    c.role
                );
            }
            Ok(())
        }
        Command::Audit(AuditCmd::Verify) => {
            let store = safety::open_for_check(&cli)?;
            let report = store.verify()?;
            if report.ok() {
                say!(
                    "OK: {} changes, every page and the whole hash chain intact.",
                    report.changes
                );
                Ok(())
            } else {
                for p in &report.problems {
                    say!("{p}");
                }
                Err(Failure(format!(
                    "the audit trail is NOT intact: {} problem(s) in {} changes",
                    report.problems.len(),
                    report.changes
                )))
            }
        }
        Command::Study(StudyCmd::Check { dir }) => {
            let study = match dir {
                None => study()?,
                Some(dir) => Arc::new(load_study_dir(dir)?),
            };
            let items: usize = study.forms.iter().map(|f| f.items.len()).sum();
            say!(
                "OK: {} {} definition {}: {} forms, {items} items, {} code lists.",
                study.id,
                study.registry,
                study.version,
                study.forms.len(),
                study.codelists.len()
            );
            Ok(())
        }
        Command::Study(StudyCmd::Publish {
            dir,
            version,
            database_url,
        }) => sync::publish(dir, version, database_url, study()?),
        Command::Study(StudyCmd::Diff { a, b, database_url }) => {
            sync::diff(a, b, database_url.as_deref(), study()?)
        }
        Command::Study(StudyCmd::ImportOdm { file, out }) => {
            export::import_odm(file, out.as_deref())
        }
        Command::Export(args) => export::run(&cli, args),
        Command::ExportBench(args) => export::bench(args),
        Command::Audit(AuditCmd::Export(args)) => oversight::audit_export(&cli, args),
        Command::Query(cmd) => oversight::query(&cli, cmd),
        Command::Sdv(cmd) => oversight::sdv(&cli, cmd),
        Command::Sign(args) => oversight::sign(&cli, args),
        Command::Signatures { subject } => oversight::signatures(&cli, subject),
        Command::Lock(cmd) => oversight::lock(&cli, cmd, true),
        Command::Unlock(cmd) => oversight::lock(&cli, cmd, false),
        Command::Bench(args) => bench::run(args, study()?).map_err(Failure),
        Command::Print(cmd) => print::run(&cli, cmd),
        Command::Randomization(cmd) => randomization::run(&cli, cmd),
        Command::Screening(cmd) => randomization::screening(&cli, cmd),
        Command::Randomize { subject } => randomization::randomize(&cli, subject),
        Command::Store(cmd) => safety::store(&cli, cmd),
        Command::Backup(args) => safety::backup(&cli, args),
        Command::Restore(args) => safety::restore(&cli, args),
        Command::CrashWriter(args) => safety::crash_writer(&cli, args),
        Command::Server(args) => sync::server(args),
        Command::Site(cmd) => sync::site(cmd),
        Command::Device(cmd) => sync::device(cmd),
        Command::Enrol { server, code, ca } => sync::enrol(&cli, server, code, ca.as_ref()),
        Command::Sync => sync::sync(&cli),
        Command::DeviceId => sync::device_id(&cli),
        Command::Conflict(cmd) => sync::conflict(&cli, cmd),
        Command::BenchSync(args) => bench_sync::run(args),
        Command::BenchWeb(args) => bench_web::run(args),
        Command::BenchScale(args) => bench_scale::run(args),
        Command::Lab(cmd) => lab::lab(&cli, cmd),
        Command::BenchLab(args) => bench_lab::run(args, study()?).map_err(Failure),
        Command::Demo { path } => {
            ecrf_app::demo::create(path, study()?).map_err(Failure)?;
            say!("Demo store: {}", path.display());
            say!(
                "Log in as nurse (or admin), password {}.",
                ecrf_app::demo::DEMO_PASSWORD
            );
            Ok(())
        }
    }
}

/// Reads a study folder from disk (for checking a definition being edited).
/// `(path, text)` of a study folder's files: `study.toml` first, then `forms/*.toml` in
/// name order. `named` gives each file's name: `study/forms/<ID>.toml` for a published
/// version (so it hashes the same wherever its folder was), the path on disk for a check.
fn read_study_dir(
    dir: &Path,
    named: impl Fn(&Path, &str) -> String,
) -> Result<Vec<(String, String)>, Failure> {
    let read =
        |p: &Path| std::fs::read_to_string(p).map_err(|e| Failure(format!("{}: {e}", p.display())));
    let study_path = dir.join("study.toml");
    let mut out = vec![(named(&study_path, "study/study.toml"), read(&study_path)?)];
    let mut forms = Vec::new();
    let forms_dir = dir.join("forms");
    let entries = std::fs::read_dir(&forms_dir)
        .map_err(|e| Failure(format!("{}: {e}", forms_dir.display())))?;
    for entry in entries {
        let path = entry.map_err(|e| Failure(e.to_string()))?.path();
        if path.extension().is_some_and(|e| e == "toml")
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            forms.push((named(&path, &format!("study/forms/{name}")), read(&path)?));
        }
    }
    forms.sort();
    out.extend(forms);
    Ok(out)
}

/// A study folder's files named as the embedded definition names them.
pub(crate) fn study_dir_files(dir: &Path) -> Result<Vec<(String, String)>, Failure> {
    read_study_dir(dir, |_, embedded| embedded.to_string())
}

fn load_study_dir(dir: &Path) -> Result<Study, Failure> {
    let files = read_study_dir(dir, |path, _| path.display().to_string())?;
    let (study, forms) = files
        .split_first()
        .ok_or_else(|| Failure("no study.toml".into()))?;
    let refs: Vec<(&str, &str)> = forms
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Study::from_sources((&study.0, &study.1), &refs).map_err(|e| Failure(e.to_string()))
}
