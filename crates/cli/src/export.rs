//! `ecrf export FORMAT … -o PATH` and `ecrf study import-odm FILE`: thin calls into
//! `ecrf-export`. Every export is recorded in the store's change log (`data.export`: who, when,
//! what, where) once its files are written.

use std::path::{Path, PathBuf};

use ecrf_export::{DataSource, ExportOptions, Format};

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
    /// The central server's database (all sites): not available yet.
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
    if args.database_url.is_some() {
        return Err(Failure(
            "--database-url: exporting from the central server needs the server (sync issue); export each site's store for now".into(),
        ));
    }
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
    let data = store.trial_data()?;
    let report = ecrf_export::export(&study, data, &formats, &opts, &args.out)?;
    let description = serde_json::json!({
        "formats": formats.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "forms": if opts.forms.is_empty() { vec!["all".to_string()] } else { opts.forms.clone() },
        "site": opts.site,
        "include_audit": opts.include_audit,
        "out": args.out.display().to_string(),
        "files": report.files.len(),
        "subjects": report.subjects,
    });
    store.record_export(&description.to_string())?;
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
