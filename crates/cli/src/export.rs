//! `ecrf export FORMAT … -o PATH` and `ecrf study import-odm FILE`: thin calls into
//! `ecrf-export`. Every export is recorded in the store's change log (`data.export`: who, when,
//! what, where) once its files are written.

use std::path::{Path, PathBuf};

use ecrf_export::{DataSource, ExportOptions, Format, TrialData};

use crate::{Cli, Failure, open, study};

/// Arguments of `ecrf export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// csv (with the data dictionary and the R script), stata, spss, sas, odm, or all.
    format: String,
    /// Only this site.
    #[arg(long)]
    site: Option<String>,
    /// Only these forms (ids, comma-separated: --forms DLY,D30).
    #[arg(long, value_delimiter = ',')]
    forms: Vec<String>,
    /// Also the audit trail (audit_trail.csv; ODM with an AuditRecord per change).
    #[arg(long)]
    include_audit: bool,
    /// Folder to write into (created if needed).
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
    /// Export from the central server's PostgreSQL (all sites, or --site) instead of the local
    /// store; the local store still logs you in (data managers) and records the export.
    #[arg(long, env = "ECRF_DATABASE_URL")]
    database_url: Option<String>,
}

impl From<ecrf_export::ExportError> for Failure {
    fn from(e: ecrf_export::ExportError) -> Self {
        Failure(e.to_string())
    }
}

/// Runs `ecrf export`.
pub fn run(cli: &Cli, args: &ExportArgs) -> Result<(), Failure> {
    let formats = Format::parse_list(&args.format)?;
    let opts = ExportOptions {
        forms: args
            .forms
            .iter()
            .map(|f| f.trim().to_ascii_uppercase())
            .collect(),
        site: args.site.clone(),
        include_audit: args.include_audit,
    };
    let mut store = open(cli)?;
    let study = study()?;
    let data = match &args.database_url {
        Some(url) => {
            // Only data managers export, from the server too: asked of the local login first.
            store.require_export()?;
            crate::export_server::ServerDb {
                url: url.clone(),
                site: opts.site.clone(),
            }
            .trial_data(opts.include_audit)?
        }
        None => TrialData::from_view(store.export_view(opts.include_audit)?)?,
    };
    let report = ecrf_export::export(&study, &data, &formats, &opts, &args.out)?;
    let source = if args.database_url.is_some() {
        "server"
    } else {
        "store"
    };
    store.record_export(report.exported(&formats, &opts, &args.out, Some(source)))?;
    for f in &report.files {
        say!("{}", f.display());
    }
    for (format, took) in &report.timings {
        say!("{}: {:.3} s", format.name(), took.as_secs_f64());
    }
    say!(
        "Exported {} subjects, {} files into {} (recorded in the audit trail).",
        report.subjects,
        report.files.len(),
        args.out.display()
    );
    say!("{}", crate::NOT_ENCRYPTED);
    Ok(())
}

/// Runs `ecrf study import-odm FILE [--out DIR]`: reads the definition, checks it with the
/// study loader, and writes it as a `study/` folder when asked.
pub fn import_odm(file: &Path, out: Option<&Path>) -> Result<(), Failure> {
    let xml =
        std::fs::read_to_string(file).map_err(|e| Failure(format!("{}: {e}", file.display())))?;
    let study = ecrf_export::odm_import::import_definition(&xml)?;
    if let Some(dir) = out {
        let (study_toml, forms) = ecrf_export::odm_import::definition_files(&xml)?;
        let forms_dir = dir.join("forms");
        std::fs::create_dir_all(&forms_dir)
            .map_err(|e| Failure(format!("{}: {e}", forms_dir.display())))?;
        let write = |p: PathBuf, text: &str| {
            std::fs::write(&p, text).map_err(|e| Failure(format!("{}: {e}", p.display())))
        };
        write(dir.join("study.toml"), &study_toml)?;
        for (path, text) in &forms {
            let name = Path::new(path)
                .file_name()
                .map(|n| n.to_owned())
                .ok_or_else(|| Failure(format!("ODM: bad form file name {path}")))?;
            write(forms_dir.join(name), text)?;
        }
    }
    let items: usize = study.forms.iter().map(|f| f.items.len()).sum();
    say!(
        "OK: {} {} definition {} from ODM: {} forms, {items} items, {} code lists{}.",
        study.id,
        study.registry,
        study.version,
        study.forms.len(),
        study.codelists.len(),
        out.map(|d| format!("; written to {}", d.display()))
            .unwrap_or_default()
    );
    Ok(())
}

/// Arguments of `ecrf export-bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Randomized subjects.
    #[arg(long, default_value_t = 358)]
    subjects: usize,
    /// Daily logs per subject (days 0..N-1).
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Keep the store and the exports here (default: a temporary folder, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Reuse the store already populated in --dir.
    #[arg(long)]
    reuse: bool,
}

fn screening(start: chrono::NaiveDate, n: usize) -> Vec<(String, String)> {
    let d = start.format("%Y-%m-%d");
    [
        ("SCRNO", format!("B-{n:04}")),
        ("SCR_DT", format!("{d}T03:30+08:00")),
        ("LACTATE_DT", format!("{d}T02:00+08:00")),
        ("ECMO_START_DT", format!("{d}T02:40+08:00")),
    ]
    .into_iter()
    .chain(
        ecrf_core::sample::ELIGIBLE_SCREENING
            .iter()
            .map(|(a, b)| (*a, b.to_string())),
    )
    .map(|(a, b)| (a.to_string(), b))
    .collect()
}

/// CPU time of this process so far (user + system), from /proc (Linux); zero elsewhere.
fn cpu_time() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    let ticks = f.iter().sum::<u64>();
    std::time::Duration::from_millis(ticks * 10)
}

/// `ecrf export-bench`: a whole trial (358 subjects × 30 daily logs by default) in a real
/// encrypted store, then the time of reading it and of each export format.
pub fn bench(args: &BenchArgs) -> Result<(), Failure> {
    use chrono::{Duration, Local, TimeZone};
    use ecrf_app::demo::{daily_log, ecmo_form, save_sample};
    use ecrf_core::{FormKey, Role};
    use ecrf_store::{CreateOptions, Store};
    use std::time::Instant;

    let fail = |e: String| Failure(e);
    let tmp;
    let dir: PathBuf = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| Failure(format!("{}: {e}", d.display())))?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir().map_err(|e| Failure(e.to_string()))?;
            tmp.path().to_path_buf()
        }
    };
    let study = study()?;
    let path = dir.join("bench-export.ecrf");
    if args.reuse && path.exists() {
        return measure(&path, &dir, args, std::time::Duration::ZERO);
    }
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("ecrf.keys"));
    let pw = "bench-password";
    let t = Instant::now();
    let (mut admin, _) = Store::create(
        &path,
        std::sync::Arc::clone(&study),
        CreateOptions {
            site: "01".into(),
            admin_user: "admin".into(),
            admin_name: "Bench".into(),
            admin_password: pw.into(),
        },
    )?;
    admin.add_user("nurse", "Bench nurse", Role::Nurse, pw)?;
    admin.add_user("dm", "Bench data manager", Role::DataManager, pw)?;
    let list = ecrf_randomize::generate(
        &ecrf_randomize::ListSpec {
            stratum: ecrf_randomize::Stratum::site("01").map_err(|e| Failure(e.to_string()))?,
            count: args.subjects.div_ceil(4) * 4,
            block_sizes: vec![4],
        },
        &[1; 32],
    )
    .map_err(|e| Failure(e.to_string()))?;
    admin.load_lease(&ecrf_randomize::to_csv(&list))?;
    drop(admin);
    let mut store = Store::open(&path, std::sync::Arc::clone(&study), "nurse", pw)?;
    store.set_durable(false)?;
    let start = Local::now().date_naive() - Duration::days(i64::from(args.days) + 10);
    let key = |s: &str| FormKey::parse(&study, s).map_err(Failure);
    let (scr, con, ecmo) = (key("SCR")?, key("CON")?, key("ECMO")?);
    let consent: Vec<(String, String)> = ecrf_core::sample::CONSENT_BY_SPOUSE
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .chain([(
            "CONSENT_DT".to_string(),
            format!("{}T03:40+08:00", start.format("%Y-%m-%d")),
        )])
        .collect();
    let offset = chrono::FixedOffset::east_opt(8 * 3600).ok_or_else(|| Failure("offset".into()))?;
    let at = offset
        .from_local_datetime(&start.and_hms_opt(4, 0, 0).unwrap_or_default())
        .single()
        .ok_or_else(|| Failure("randomization time".into()))?;
    for n in 0..args.subjects {
        let s = store.new_subject()?;
        save_sample(&mut store, &s, &scr, &screening(start, n)).map_err(fail)?;
        save_sample(&mut store, &s, &con, &consent).map_err(fail)?;
        save_sample(&mut store, &s, &ecmo, &ecmo_form(start)).map_err(fail)?;
        store.randomize_at(&s, at)?;
        for day in 0..args.days {
            let k = FormKey {
                form: "DLY".into(),
                repeat: Some(day),
            };
            save_sample(&mut store, &s, &k, &daily_log(n, start, day)).map_err(fail)?;
        }
    }
    store.set_durable(true)?;
    store.checkpoint()?;
    drop(store);
    measure(&path, &dir, args, t.elapsed())
}

fn measure(
    path: &Path,
    dir: &Path,
    args: &BenchArgs,
    populate: std::time::Duration,
) -> Result<(), Failure> {
    use ecrf_store::Store;
    use std::time::Instant;
    let study = study()?;
    let pw = "bench-password";
    let mut dm = Store::open(path, std::sync::Arc::clone(&study), "dm", pw)?;
    let (t, c) = (Instant::now(), cpu_time());
    let data = TrialData::from_view(dm.export_view(true)?)?;
    let (read, read_cpu) = (t.elapsed(), cpu_time() - c);
    let (t, c) = (Instant::now(), cpu_time());
    let snapshot = TrialData::from_view(dm.export_view(false)?)?;
    let (read_values, read_values_cpu) = (t.elapsed(), cpu_time() - c);
    let changes = data.change_count();
    let out = dir.join("export");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    say!(
        "Load average (1, 5, 15 min): {} on {} CPUs.",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    say!(
        "Store: {} subjects × {} daily logs, {changes} changes in the log (populated in {:.1} s).",
        args.subjects,
        args.days,
        populate.as_secs_f64()
    );
    for (label, data, read, read_cpu, audit) in [
        ("with the audit trail", &data, read, read_cpu, true),
        (
            "data only (no change log)",
            &snapshot,
            read_values,
            read_values_cpu,
            false,
        ),
    ] {
        say!("— {label}");
        say!(
            "read   {:.3} s (cpu {:.2} s)",
            read.as_secs_f64(),
            read_cpu.as_secs_f64()
        );
        let opts = ExportOptions {
            include_audit: audit,
            ..ExportOptions::default()
        };
        // One export of every format, as `ecrf export all` runs it: the tables are built once,
        // each format is written by its own thread (times per format overlap).
        let (t, c) = (Instant::now(), cpu_time());
        let report = ecrf_export::export(&study, data, &Format::ALL, &opts, &out)?;
        let (took, cpu) = (t.elapsed(), cpu_time() - c);
        say!(
            "tables {:.3} s (built once, shared)",
            report.tables.as_secs_f64()
        );
        for (format, took) in &report.timings {
            let ext: &[&str] = match format {
                Format::Csv => &["csv", "R"],
                Format::Stata => &["dta"],
                Format::Spss => &["sav"],
                Format::Sas => &["xpt"],
                Format::Odm => &["xml"],
            };
            let files: Vec<&PathBuf> = report
                .files
                .iter()
                .filter(|f| {
                    f.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| ext.contains(&e))
                })
                .collect();
            let bytes: u64 = files
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum();
            say!(
                "{:<6} {:.3} s  {} files, {:.1} MB",
                format.name(),
                took.as_secs_f64(),
                files.len(),
                bytes as f64 / 1e6
            );
        }
        say!(
            "export {:.3} s wall, cpu {:.2} s (every format, one call)",
            took.as_secs_f64(),
            cpu.as_secs_f64()
        );
        say!(
            "total  {:.3} s wall, cpu {:.2} s (read + every format; goal ≤ 2 s)",
            (read + took).as_secs_f64(),
            (read_cpu + cpu).as_secs_f64()
        );
    }
    Ok(())
}
