//! The desktop shell. Every command is a one-line call into `ecrf-app`; no rule lives here.
//! `ui/src/commands.ts` is generated from the commands below (crates/app/src/command_bindings.rs).
//! The store is `ECRF_STORE`, else `~/.local/share/early-iabp-ecrf/ward.ecrf` (Windows:
//! `%LOCALAPPDATA%\early-iabp-ecrf\ward.ecrf`); the demo store
//! sits beside it (`ECRF_DEMO_STORE` to move it).

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;
use zeroize::Zeroizing;

use ecrf_app::dto::*;
use ecrf_app::{App, AppResult, Lang, Query, QueryStep, Role, User};
use tauri::{Emitter, State};

#[cfg(target_os = "linux")]
mod linux;

struct Shell {
    app: Mutex<App>,
    started: Instant,
    /// `ECRF_STARTUP_PROBE` is set: the start-up benchmark reads what the shell prints.
    probe: bool,
}

/// Runs `f` on the app; a poisoned lock (a panic in an earlier call) is an error, not a crash.
/// Under the start-up probe each command's time goes to stderr (`command subjects 512.3 ms`),
/// so the benchmark shows which command a slow start waits for.
fn with<T, F>(shell: &State<'_, Shell>, f: F) -> AppResult<T>
where
    F: FnOnce(&mut App) -> AppResult<T>,
{
    let mut app = shell.app.lock().map_err(|_| AppError {
        code: ErrorCode::Internal,
        message: "the app hit an internal error; restart it".into(),
    })?;
    let started = shell.probe.then(Instant::now);
    let result = f(&mut app);
    if let Some(t) = started {
        let ms = t.elapsed().as_secs_f64() * 1e3;
        eprintln!("command {} {ms:.1} ms", command_name::<F>());
    }
    result
}

/// The command a closure was written in: `ecrf_desktop::subjects::{{closure}}` → `subjects`.
fn command_name<F>() -> &'static str {
    let name = std::any::type_name::<F>();
    name.strip_prefix("ecrf_desktop::")
        .and_then(|n| n.split("::").next())
        .unwrap_or(name)
}

#[tauri::command]
fn welcome(s: State<'_, Shell>) -> AppResult<Welcome> {
    with(&s, |a| a.welcome())
}
#[tauri::command]
fn study(s: State<'_, Shell>) -> AppResult<StudyDto> {
    with(&s, |a| Ok(a.study()))
}
#[tauri::command]
fn setup(s: State<'_, Shell>, input: SetupInput) -> AppResult<SetupDone> {
    with(&s, |a| a.setup(input))
}
#[tauri::command]
fn use_demo(s: State<'_, Shell>) -> AppResult<Welcome> {
    with(&s, |a| a.use_demo())
}
#[tauri::command]
fn login(s: State<'_, Shell>, user: String, password: String) -> AppResult<SessionDto> {
    let password = Zeroizing::new(password);
    with(&s, |a| a.login(&user, &password))
}
#[tauri::command]
fn lock(s: State<'_, Shell>) -> AppResult<()> {
    with(&s, |a| {
        a.lock();
        Ok(())
    })
}
#[tauri::command]
fn set_lang(s: State<'_, Shell>, lang: Lang) -> AppResult<SessionDto> {
    with(&s, |a| a.set_lang(lang))
}
#[tauri::command]
fn set_lock_minutes(s: State<'_, Shell>, minutes: u32) -> AppResult<SessionDto> {
    with(&s, |a| a.set_lock_minutes(minutes))
}
#[tauri::command]
fn print_folder(s: State<'_, Shell>) -> AppResult<Option<String>> {
    with(&s, |a| a.print_folder())
}
#[tauri::command]
fn set_print_folder(s: State<'_, Shell>, folder: String) -> AppResult<SessionDto> {
    with(&s, |a| a.set_print_folder(&folder))
}
#[tauri::command]
fn users(s: State<'_, Shell>) -> AppResult<Vec<User>> {
    with(&s, |a| a.users())
}
#[tauri::command]
fn add_user(
    s: State<'_, Shell>,
    username: String,
    name: String,
    role: Role,
    password: String,
) -> AppResult<()> {
    let password = Zeroizing::new(password);
    with(&s, |a| a.add_user(&username, &name, role, &password))
}
#[tauri::command]
fn subjects(s: State<'_, Shell>) -> AppResult<Vec<SubjectRow>> {
    let rows = with(&s, |a| a.subjects());
    // A big site's list reads every value of every subject: give those pages back.
    #[cfg(target_os = "linux")]
    linux::trim_heap();
    rows
}
#[tauri::command]
fn new_subject(s: State<'_, Shell>) -> AppResult<String> {
    with(&s, |a| a.new_subject())
}
#[tauri::command]
fn subject(s: State<'_, Shell>, subject: String) -> AppResult<SubjectPage> {
    with(&s, |a| a.subject(&subject))
}
#[tauri::command]
fn next_daily_log(s: State<'_, Shell>, subject: String) -> AppResult<FormPage> {
    with(&s, |a| a.next_daily_log(&subject))
}
#[tauri::command]
fn randomize(s: State<'_, Shell>, subject: String) -> AppResult<SubjectPage> {
    with(&s, |a| a.randomize(&subject))
}
#[tauri::command]
fn form(s: State<'_, Shell>, subject: String, key: String) -> AppResult<FormPage> {
    with(&s, |a| a.form(&subject, &key))
}
#[tauri::command]
fn form_definition(s: State<'_, Shell>, subject: String, key: String) -> AppResult<FormVersionDto> {
    with(&s, |a| a.form_definition(&subject, &key))
}
#[tauri::command]
fn unasked_items(s: State<'_, Shell>, key: String, entries: Vec<Entry>) -> AppResult<Vec<String>> {
    with(&s, |a| a.unasked_items(&key, &entries))
}
#[tauri::command]
fn save_form(
    s: State<'_, Shell>,
    subject: String,
    key: String,
    entries: Vec<Entry>,
    reason: Option<String>,
    confirm: bool,
) -> AppResult<SaveReply> {
    with(&s, |a| {
        a.save_form(&subject, &key, &entries, reason, confirm)
    })
}
#[tauri::command]
fn save_draft(
    s: State<'_, Shell>,
    subject: String,
    key: String,
    entries: Vec<Entry>,
) -> AppResult<()> {
    with(&s, |a| a.save_draft(&subject, &key, &entries))
}
#[tauri::command]
fn discard_draft(s: State<'_, Shell>, subject: String, key: String) -> AppResult<()> {
    with(&s, |a| a.discard_draft(&subject, &key))
}
#[tauri::command]
fn lab_preview(
    s: State<'_, Shell>,
    path: String,
    mapping: Option<String>,
) -> AppResult<LabPreview> {
    with(&s, |a| a.lab_preview(&path, mapping.as_deref()))
}
#[tauri::command]
#[allow(clippy::too_many_arguments)]
fn lab_apply(
    s: State<'_, Shell>,
    path: String,
    mapping: Option<String>,
    sha256: String,
    accept: Vec<String>,
    reject: Vec<String>,
    reason: Option<String>,
    confirm: bool,
) -> AppResult<LabApplied> {
    with(&s, |a| {
        a.lab_apply(
            &path,
            mapping.as_deref(),
            &sha256,
            &accept,
            &reject,
            reason,
            confirm,
        )
    })
}
#[tauri::command]
fn subject_mrns(s: State<'_, Shell>) -> AppResult<Vec<SubjectMrn>> {
    with(&s, |a| a.subject_mrns())
}
#[tauri::command]
fn set_subject_mrn(
    s: State<'_, Shell>,
    subject: String,
    mrn: String,
) -> AppResult<Vec<SubjectMrn>> {
    with(&s, |a| a.set_subject_mrn(&subject, &mrn))
}
#[tauri::command]
fn history(
    s: State<'_, Shell>,
    subject: String,
    key: String,
    item: String,
) -> AppResult<Vec<AuditRow>> {
    with(&s, |a| a.history(&subject, &key, &item))
}
#[tauri::command]
fn print_blank(s: State<'_, Shell>, form: Option<String>) -> AppResult<Printout> {
    with(&s, |a| a.print_blank(form.as_deref()))
}
#[tauri::command]
fn screening_log(s: State<'_, Shell>) -> AppResult<ScreeningLog> {
    with(&s, |a| a.screening_log())
}
#[tauri::command]
fn print_screening_log(s: State<'_, Shell>) -> AppResult<Printout> {
    with(&s, |a| a.print_screening_log())
}
#[tauri::command]
fn print_subject(s: State<'_, Shell>, subject: String) -> AppResult<Printout> {
    with(&s, |a| a.print_subject(&subject))
}

#[tauri::command]
fn default_export_folder(s: State<'_, Shell>) -> AppResult<String> {
    with(&s, |a| Ok(a.default_export_folder()))
}
#[tauri::command]
fn export(s: State<'_, Shell>, request: ExportRequest) -> AppResult<ExportDone> {
    with(&s, |a| a.export(request))
}

#[tauri::command]
fn form_oversight(s: State<'_, Shell>, subject: String, key: String) -> AppResult<FormOversight> {
    with(&s, |a| a.form_oversight(&subject, &key))
}

#[tauri::command]
fn queries(s: State<'_, Shell>, subject: Option<String>) -> AppResult<Vec<Query>> {
    with(&s, |a| a.queries(subject.as_deref()))
}

#[tauri::command]
fn raise_query(
    s: State<'_, Shell>,
    subject: String,
    key: String,
    item: String,
    text: String,
) -> AppResult<FormOversight> {
    with(&s, |a| a.raise_query(&subject, &key, &item, &text))
}

#[tauri::command]
fn query_step(s: State<'_, Shell>, id: String, step: QueryStep, text: String) -> AppResult<()> {
    with(&s, |a| a.query_step(&id, step, &text))
}

#[tauri::command]
fn audit_review(s: State<'_, Shell>, filter: AuditFilterDto) -> AppResult<AuditPage> {
    with(&s, |a| a.audit_review(&filter))
}

#[tauri::command]
fn audit_csv(s: State<'_, Shell>, filter: AuditFilterDto) -> AppResult<AuditCsvDone> {
    with(&s, |a| a.audit_csv(&filter))
}

#[tauri::command]
fn sync_status(s: State<'_, Shell>) -> AppResult<SyncStatusDto> {
    with(&s, |a| a.sync_status())
}

#[tauri::command]
fn envelopes(s: State<'_, Shell>) -> AppResult<EnvelopesDto> {
    with(&s, |a| a.envelopes())
}

/// Receives a lease sealed to this laptop (administrators; over the network).
#[tauri::command(async)]
fn load_lease(s: State<'_, Shell>, blocks: u32) -> AppResult<EnvelopesDto> {
    with(&s, |a| a.load_lease(blocks))
}

/// Whether the server answers now. The store is let go before the network is asked.
#[tauri::command(async)]
fn sync_online(s: State<'_, Shell>) -> AppResult<bool> {
    let client = with(&s, |a| a.sync_client())?;
    Ok(client.is_some_and(|c| c.health().is_ok()))
}

#[tauri::command(async)]
fn enrol(
    s: State<'_, Shell>,
    server: String,
    code: String,
    ca_file: Option<String>,
) -> AppResult<SyncStatusDto> {
    with(&s, |a| a.enrol(&server, &code, ca_file.as_deref()))
}
#[tauri::command]
fn set_site_ca(s: State<'_, Shell>, ca_file: String) -> AppResult<SyncStatusDto> {
    with(&s, |a| a.set_site_ca(&ca_file))
}

/// One sync; each page moves the window's progress bar (`sync-progress` events).
#[tauri::command(async)]
fn sync_now(s: State<'_, Shell>, window: tauri::Window) -> AppResult<SyncDone> {
    with(&s, |a| {
        a.sync_now(&mut |p| {
            // A lost progress event only leaves the bar behind; the sync itself goes on.
            let _ = window.emit(SYNC_PROGRESS, p);
        })
    })
}

#[tauri::command]
fn resolve_conflict(
    s: State<'_, Shell>,
    subject: String,
    form: String,
    item: String,
    value: String,
    reason: String,
) -> AppResult<SyncStatusDto> {
    with(&s, |a| {
        a.resolve_conflict(&subject, &form, &item, &value, &reason)
    })
}

#[tauri::command]
fn verify_form(s: State<'_, Shell>, subject: String, key: String) -> AppResult<FormOversight> {
    with(&s, |a| a.verify_form(&subject, &key))
}

#[tauri::command]
fn sign(s: State<'_, Shell>, input: SignInput) -> AppResult<SignatureDto> {
    with(&s, |a| a.sign(input))
}

#[tauri::command]
fn lock_form(
    s: State<'_, Shell>,
    subject: String,
    key: String,
    reason: String,
    lock: bool,
) -> AppResult<FormOversight> {
    with(&s, |a| a.lock_form(&subject, &key, &reason, lock))
}

#[tauri::command]
fn backup(s: State<'_, Shell>, folder: String) -> AppResult<BackupDone> {
    with(&s, |a| a.backup(&folder))
}
#[tauri::command]
fn backup_status(s: State<'_, Shell>) -> AppResult<BackupStatusDto> {
    with(&s, |a| a.backup_status())
}
#[tauri::command]
fn set_backup_reminder_hours(s: State<'_, Shell>, hours: u32) -> AppResult<BackupStatusDto> {
    with(&s, |a| a.set_backup_reminder_hours(hours))
}
/// Called by the UI once a screen is drawn (`login`: the first screen; `subjects`: the subject
/// list the start-up probe logged in to): with `ECRF_STARTUP_PROBE=1` the shell prints the time
/// since it started (`ui-ready <ms>`, `subjects-ready <ms>`) for the start-up benchmark.
#[tauri::command]
fn ui_ready(s: State<'_, Shell>, screen: String) {
    if s.probe {
        let what = if screen == "subjects" {
            "subjects-ready"
        } else {
            "ui-ready"
        };
        println!("{what} {:.1} ms", s.started.elapsed().as_secs_f64() * 1e3);
    }
}

/// The start-up benchmark's login (`scripts/bench-desktop.sh` with a store): only with
/// `ECRF_STARTUP_PROBE` set, logs in as `ECRF_PROBE_USER` with `ECRF_PROBE_PASSWORD` through
/// the login command's own path, so the benchmark can time a cold start to the subject list.
/// Without those variables it answers nothing and the login screen stays. The password never
/// crosses to the page.
#[tauri::command]
fn probe_login(s: State<'_, Shell>) -> AppResult<Option<SessionDto>> {
    if !s.probe {
        return Ok(None);
    }
    let (Ok(user), Ok(password)) = (
        std::env::var("ECRF_PROBE_USER"),
        std::env::var("ECRF_PROBE_PASSWORD"),
    ) else {
        return Ok(None);
    };
    let password = Zeroizing::new(password);
    with(&s, |a| a.login(&user, &password)).map(Some)
}

#[cfg(not(windows))]
fn data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("early-iabp-ecrf")
}

/// Windows: `%LOCALAPPDATA%\early-iabp-ecrf` (this laptop's user profile, never roamed).
#[cfg(windows)]
fn data_dir() -> PathBuf {
    std::env::var_os("LOCALAPPDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join("early-iabp-ecrf")
}

fn main() {
    let started = Instant::now();
    #[cfg(target_os = "linux")]
    linux::before_start();
    let store = std::env::var_os("ECRF_STORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir().join("ward.ecrf"));
    let demo = std::env::var_os("ECRF_DEMO_STORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir().join("demo.ecrf"));
    let app = match App::new(store, demo) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let result = tauri::Builder::default()
        // The Export page's folder picker (only `dialog:allow-open` is granted).
        .plugin(tauri_plugin_dialog::init())
        .manage(Shell {
            app: Mutex::new(app),
            started,
            probe: std::env::var_os("ECRF_STARTUP_PROBE").is_some(),
        })
        .invoke_handler(tauri::generate_handler![
            lab_preview,
            lab_apply,
            subject_mrns,
            set_subject_mrn,
            welcome,
            study,
            setup,
            use_demo,
            login,
            lock,
            set_lang,
            set_lock_minutes,
            users,
            add_user,
            subjects,
            new_subject,
            subject,
            randomize,
            next_daily_log,
            form,
            unasked_items,
            form_definition,
            save_form,
            save_draft,
            discard_draft,
            history,
            print_blank,
            print_subject,
            screening_log,
            print_screening_log,
            default_export_folder,
            export,
            form_oversight,
            queries,
            raise_query,
            query_step,
            verify_form,
            sign,
            audit_review,
            audit_csv,
            sync_status,
            sync_online,
            enrol,
            set_site_ca,
            set_print_folder,
            print_folder,
            sync_now,
            envelopes,
            load_lease,
            resolve_conflict,
            lock_form,
            backup,
            backup_status,
            set_backup_reminder_hours,
            ui_ready,
            probe_login
        ])
        .run(tauri::generate_context!("../tauri.conf.json"));
    if let Err(e) = result {
        eprintln!("error: the window could not start: {e}");
        std::process::exit(1);
    }
}
