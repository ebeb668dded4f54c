//! `ecrf print`: PDF printouts (blank CRF book or form, a subject's filled CRF) and their
//! benchmark. Thin calls into `ecrf-pdf`; this file parses arguments and reports.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use ecrf_core::{FormKey, Role};
use ecrf_pdf::{PrintOptions, Printed, Printer};
use ecrf_store::{CreateOptions, SaveOptions, Store};

use crate::{Cli, Failure, open, study};
use ecrf_app::demo::{DEMO_PASSWORD, daily_log, ecmo_form, save_sample};

/// What to print.
#[derive(clap::Subcommand)]
pub enum PrintCmd {
    /// The blank CRF book (every form), or one blank form with --form; no store needed.
    Blank {
        /// Only this form (e.g. DLY).
        #[arg(long)]
        form: Option<String>,
        /// Where to write the PDF.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// A subject's filled CRF with its audit appendix.
    Subject {
        /// Subject number.
        subject: String,
        /// Where to write the PDF.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Time and size of the blank book and of a subject with N daily logs (use a release build).
    Bench {
        /// Daily logs of the sample subject.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Keep the PDFs in this folder.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

impl From<ecrf_pdf::PdfError> for Failure {
    fn from(e: ecrf_pdf::PdfError) -> Self {
        Failure(e.to_string())
    }
}

fn report(printed: &Printed, path: &std::path::Path) -> Result<(), Failure> {
    printed.write_to(path)?;
    say!(
        "Wrote {} ({} pages, {} bytes).",
        path.display(),
        printed.pages,
        printed.bytes.len()
    );
    say!("{}", crate::NOT_ENCRYPTED);
    if !printed.missing_glyphs.is_empty() {
        let list: String = printed.missing_glyphs.iter().collect();
        say!("  note: the font has no glyph for {list:?}; printed as '?'.");
    }
    Ok(())
}

/// Runs `ecrf print …`.
pub fn run(cli: &Cli, cmd: &PrintCmd) -> Result<(), Failure> {
    match cmd {
        PrintCmd::Blank { form, output } => {
            let study = study()?;
            let printer = Printer::new()?;
            let by = cli.user.clone().unwrap_or_else(|| "—".into());
            let opts = PrintOptions::now(&cli.lang, &by);
            let printed = match form {
                Some(f) => printer.blank_form(&study, f, &opts)?,
                None => printer.blank_book(&study, &opts)?,
            };
            report(&printed, output)
        }
        PrintCmd::Subject { subject, output } => {
            let store = open(cli)?;
            let printer = Printer::new()?;
            let printed = printer.subject(
                &store.definitions()?.merged(),
                &store.casebook(subject)?,
                &options_for(&store, &cli.lang)?,
            )?;
            report(&printed, output)
        }
        PrintCmd::Bench { days, dir } => bench(*days, dir.as_deref()),
    }
}

/// Printing options for the logged-in user of a store: `li (Li Na)`.
fn options_for(store: &Store, lang: &str) -> Result<PrintOptions, Failure> {
    let user = &store.session().user;
    let name = store
        .users()?
        .into_iter()
        .find(|u| &u.username == user)
        .map(|u| u.name)
        .filter(|n| !n.is_empty());
    let by = match name {
        Some(n) => format!("{user} ({n})"),
        None => user.clone(),
    };
    Ok(PrintOptions::now(lang, &by))
}

fn bench(days: u32, dir: Option<&std::path::Path>) -> Result<(), Failure> {
    let tmp = tempfile::tempdir().map_err(|e| Failure(e.to_string()))?;
    let dir = dir.unwrap_or(tmp.path());
    std::fs::create_dir_all(dir).map_err(|e| Failure(format!("{}: {e}", dir.display())))?;
    let study = study()?;
    // The store is always a fresh one in a temporary folder; only the PDFs go to `dir`.
    let path = tmp.path().join("bench.ecrf");
    let opts = CreateOptions {
        site: "01".into(),
        admin_user: "admin".into(),
        admin_name: "Bench".into(),
        admin_password: DEMO_PASSWORD.into(),
    };
    let (mut admin, _) = Store::create(&path, Arc::clone(&study), opts)?;
    admin.add_user("nurse", "Bench nurse 李娜", Role::Nurse, DEMO_PASSWORD)?;
    drop(admin);
    let mut store = Store::open(&path, Arc::clone(&study), "nurse", DEMO_PASSWORD)?;
    store.set_durable(false)?;
    let subject = store.new_subject()?;
    let start = NaiveDate::from_ymd_opt(2026, 3, 1).ok_or_else(|| Failure("date".into()))?;
    let ecmo = FormKey {
        form: "ECMO".into(),
        repeat: None,
    };
    save_sample(&mut store, &subject, &ecmo, &ecmo_form(start)).map_err(Failure)?;
    for day in 1..=days {
        let key = FormKey {
            form: "DLY".into(),
            repeat: Some(day),
        };
        save_sample(&mut store, &subject, &key, &daily_log(0, start, day)).map_err(Failure)?;
        if day % 5 == 0 {
            let reason = SaveOptions {
                reason: Some("transcription error / 转录错误".into()),
                confirm_warnings: true,
            };
            store.save(&subject, &key, &[("MAP", "71"), ("HR", "205")], &reason)?;
        }
    }
    let changes = store.audit_log(&subject)?.len();

    let t = Instant::now();
    let printer = Printer::new()?;
    let font_ms = t.elapsed().as_secs_f64() * 1e3;
    let (font, face) = printer.fonts().source();
    say!(
        "font {}#{face}: loaded in {font_ms:.1} ms (once per process)",
        font.display()
    );
    let mut runs: Vec<(String, Printed, f64)> = Vec::new();
    for lang in ["en", "zh"] {
        let opts = PrintOptions::now(lang, "bench");
        let t = Instant::now();
        let p = printer.blank_book(&study, &opts)?;
        runs.push((
            format!("blank book ({lang})"),
            p,
            t.elapsed().as_secs_f64() * 1e3,
        ));
    }
    for lang in ["en", "zh"] {
        let opts = options_for(&store, lang)?;
        let t = Instant::now();
        let p = printer.subject(store.study(), &store.casebook(&subject)?, &opts)?;
        runs.push((
            format!("subject, {days} daily logs, {changes} audit entries ({lang})"),
            p,
            t.elapsed().as_secs_f64() * 1e3,
        ));
    }
    for (i, (what, p, ms)) in runs.iter().enumerate() {
        let file = dir.join(format!("bench-{i}.pdf"));
        p.write_to(&file)?;
        say!(
            "{what}: {ms:.1} ms, {} pages, {:.1} KiB",
            p.pages,
            p.bytes.len() as f64 / 1024.0
        );
    }
    if cfg!(debug_assertions) {
        say!("(debug build: times are not representative; use `make bench-pdf`)");
    }
    Ok(())
}
