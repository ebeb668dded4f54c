//! `ecrf-export`: what the statistician and the regulator receive, driven by the study
//! definition.
//!
//! - [`source`]: the data an export reads ([`TrialData`]) behind the [`DataSource`] interface
//!   (a local store today; several stores merge into one trial; the central server later);
//! - [`table`]: one rectangle per form (key columns, then items in definition order), the
//!   numeric coding of code lists; every tabular format is written from it;
//! - [`analysis`]: the subject-level analysis file (one row per randomized subject), from
//!   `ecrf_core::outcome`;
//! - [`csv`]: one CSV per form, the data dictionary, the audit trail;
//! - [`rscript`]: the R script that reads the CSVs with types and labels;
//! - [`readstat`]: Stata `.dta` 118, SPSS `.sav`, SAS `.xpt` through ReadStat (safe FFI);
//! - [`odm`] / [`odm_import`]: CDISC ODM 1.3.2 out, and the definition back in.
//!
//! Invariant: nothing here opens the store's file; the store hands over a read-only snapshot.
#![deny(missing_docs)]

pub mod analysis;
pub mod csv;
pub mod logs;
pub mod odm;
pub mod odm_import;
pub mod readstat;
pub mod rscript;
mod scan;
pub mod source;
pub mod table;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ecrf_core::{FormDef, Study};

pub use readstat::StatFormat;
pub use source::{DataSource, TrialData};

/// What can go wrong in an export, naming the file, field or option.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// ReadStat refused a file.
    #[error("{path}: {message}")]
    ReadStat {
        /// The file.
        path: PathBuf,
        /// What ReadStat said.
        message: String,
    },
    /// Stored data that cannot be exported as the definition says.
    #[error("{0}")]
    Data(String),
    /// The source of the data (the server's database) failed.
    #[error("{0}")]
    Source(String),
    /// Bad options (unknown form, site or format).
    #[error("{0}")]
    Options(String),
    /// An ODM file that cannot be read back.
    #[error("ODM: {0}")]
    Odm(String),
}

impl ExportError {
    /// An I/O error on a path.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ExportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Export formats (serde names = [`Format::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Format {
    /// CSV per form + data dictionary + R script.
    Csv,
    /// Stata `.dta` per form.
    Stata,
    /// SPSS `.sav` per form.
    Spss,
    /// SAS transport `.xpt` per form.
    Sas,
    /// CDISC ODM 1.3.2 XML.
    Odm,
}

impl Format {
    /// Every format, in the order `all` writes them.
    pub const ALL: [Format; 5] = [
        Format::Csv,
        Format::Stata,
        Format::Spss,
        Format::Sas,
        Format::Odm,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Stata => "stata",
            Format::Spss => "spss",
            Format::Sas => "sas",
            Format::Odm => "odm",
        }
    }

    /// Reads a name (`csv`, `r` = csv, `stata`/`dta`, `spss`/`sav`, `sas`/`xpt`, `odm`); `all`
    /// gives every format.
    pub fn parse_list(s: &str) -> Result<Vec<Format>, ExportError> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "all" => Format::ALL.to_vec(),
            "csv" | "r" => vec![Format::Csv],
            "stata" | "dta" => vec![Format::Stata],
            "spss" | "sav" => vec![Format::Spss],
            "sas" | "xpt" => vec![Format::Sas],
            "odm" | "xml" => vec![Format::Odm],
            other => {
                return Err(ExportError::Options(format!(
                    "unknown format {other} (csv, stata, spss, sas, odm or all)"
                )));
            }
        })
    }
}

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Only these forms (ids); empty = all.
    pub forms: Vec<String>,
    /// Only this site.
    pub site: Option<String>,
    /// Also the audit trail (CSV `audit_trail.csv`; ODM with every change as an AuditRecord).
    pub include_audit: bool,
}

/// What an export wrote and how long each format took.
#[derive(Debug, Clone, Default)]
pub struct ExportReport {
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Time per format (each written by its own thread, so these overlap; the shared tables
    /// are not included).
    pub timings: Vec<(Format, Duration)>,
    /// Time to build the shared tables (forms + subject-level file).
    pub tables: Duration,
    /// Wall time of the whole export.
    pub total: Duration,
    /// Subjects exported.
    pub subjects: usize,
    /// Rows per form.
    pub rows: Vec<(String, usize)>,
}

impl ExportReport {
    /// What the audit trail records of this export (`data.export`): formats, forms, site, with
    /// the audit trail or not, where to, and from which source (`store`/`server`, when said).
    pub fn exported(
        &self,
        formats: &[Format],
        opts: &ExportOptions,
        out: &std::path::Path,
        source: Option<&str>,
    ) -> ecrf_log::body::Exported {
        ecrf_log::body::Exported {
            formats: formats.iter().map(|f| f.name().to_string()).collect(),
            forms: if opts.forms.is_empty() {
                vec!["all".to_string()]
            } else {
                opts.forms.clone()
            },
            site: opts.site.clone(),
            source: source.map(str::to_string),
            include_audit: opts.include_audit,
            out: out.display().to_string(),
            files: self.files.len(),
            subjects: self.subjects,
        }
    }
}

/// The forms chosen by the options, in definition order; an unknown id is an error naming it.
pub fn chosen_forms<'a>(
    study: &'a Study,
    opts: &ExportOptions,
) -> Result<Vec<&'a FormDef>, ExportError> {
    for f in &opts.forms {
        if study.form(f).is_none() {
            return Err(ExportError::Options(format!(
                "--forms: there is no form {f} (forms: {})",
                study
                    .forms
                    .iter()
                    .map(|f| f.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(study
        .forms
        .iter()
        .filter(|f| opts.forms.is_empty() || opts.forms.iter().any(|x| x == &f.id))
        .collect())
}

/// Now, as the ODM creation time.
fn now() -> String {
    chrono::Local::now()
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// Writes the chosen formats for `data` into the folder `out` (created if needed).
///
/// The tables every tabular format writes (one per form + the subject-level file) are built
/// once and shared; ODM reads the data itself, so it is written beside them from the start;
/// each format is written by its own thread (the files of different formats never overlap).
pub fn export(
    study: &Study,
    data: &TrialData,
    formats: &[Format],
    opts: &ExportOptions,
    out: &Path,
) -> Result<ExportReport, ExportError> {
    let started = Instant::now();
    let one_site;
    let data = match &opts.site {
        Some(site) => {
            one_site = data.clone().only_site(site)?;
            &one_site
        }
        None => data,
    };
    // What a withdrawal of consent no longer allows is left out (see `within_consent`).
    let consented;
    let data = match data.within_consent() {
        Some(d) => {
            consented = d;
            &consented
        }
        None => data,
    };
    // Data entered under amended definitions read with every version's items (an item only
    // an older version asked stays a column); the VERSION column says whose rules held.
    let merged;
    let study = if data.definitions.is_empty() {
        study
    } else {
        merged = data.definitions(study).merged();
        &merged
    };
    let forms = chosen_forms(study, opts)?;
    std::fs::create_dir_all(out).map_err(|e| ExportError::io(out, e))?;
    let mut report = ExportReport {
        subjects: data.subjects.len(),
        ..ExportReport::default()
    };
    let tabular: Vec<Format> = formats
        .iter()
        .copied()
        .filter(|f| *f != Format::Odm)
        .collect();
    let created = now();
    type Done = Result<(Format, Vec<PathBuf>, Duration), ExportError>;
    let stopped = |f: Format| {
        ExportError::Data(format!(
            "the {} export stopped unexpectedly (a bug)",
            f.name()
        ))
    };
    let (forms, created) = (forms.as_slice(), created.as_str());
    let mut done: Vec<(Format, Vec<PathBuf>, Duration)> = std::thread::scope(|scope| {
        let odm_job = formats.contains(&Format::Odm).then(|| {
            scope.spawn(move || -> Done {
                let t = Instant::now();
                let path = write_odm_file(study, data, forms, opts.include_audit, created, out)?;
                Ok((Format::Odm, vec![path], t.elapsed()))
            })
        });
        let mut results: Vec<Done> = Vec::new();
        if !tabular.is_empty() {
            let t = Instant::now();
            match build_tables(study, forms, data) {
                Ok(tables) => {
                    report.tables = t.elapsed();
                    report.rows = tables
                        .iter()
                        .map(|t| (t.form.clone(), t.rows.len()))
                        .collect();
                    let tables = tables.as_slice();
                    std::thread::scope(|inner| {
                        let jobs: Vec<_> = tabular
                            .iter()
                            .map(|&f| {
                                let job = inner.spawn(move || -> Done {
                                    let t = Instant::now();
                                    let files = write_tabular(f, study, data, tables, opts, out)?;
                                    Ok((f, files, t.elapsed()))
                                });
                                (f, job)
                            })
                            .collect();
                        for (f, job) in jobs {
                            results.push(job.join().unwrap_or_else(|_| Err(stopped(f))));
                        }
                    });
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if let Some(job) = odm_job {
            results.push(job.join().unwrap_or_else(|_| Err(stopped(Format::Odm))));
        }
        results.into_iter().collect::<Result<Vec<_>, _>>()
    })?;
    // Files and times in the order the formats were asked for.
    done.sort_by_key(|(f, _, _)| formats.iter().position(|x| x == f));
    for (format, files, took) in done {
        report.files.extend(files);
        report.timings.push((format, took));
    }
    report.total = started.elapsed();
    Ok(report)
}

/// The tables of the chosen forms and the subject-level analysis file.
fn build_tables(
    study: &Study,
    forms: &[&FormDef],
    data: &TrialData,
) -> Result<Vec<table::Table>, ExportError> {
    let now = chrono::Utc::now();
    let derived = data.derived(study, now);
    let mut tables = forms
        .iter()
        .map(|f| table::form_table(study, f, data, &derived))
        .collect::<Result<Vec<_>, _>>()?;
    tables.push(analysis::subject_table(study, data, now));
    Ok(tables)
}

/// Writes one tabular format (CSV with the dictionary and the R script, or a statistics file
/// per table).
fn write_tabular(
    format: Format,
    study: &Study,
    data: &TrialData,
    tables: &[table::Table],
    opts: &ExportOptions,
    out: &Path,
) -> Result<Vec<PathBuf>, ExportError> {
    let mut files = Vec::new();
    match format {
        Format::Csv => {
            files = csv::write_all(out, study, tables, opts.include_audit.then_some(data))?;
            let path = out.join(rscript::SCRIPT);
            std::fs::write(&path, rscript::script(&study.id, &study.version, tables))
                .map_err(|e| ExportError::io(&path, e))?;
            files.push(path);
        }
        Format::Stata | Format::Spss | Format::Sas => {
            let sf = match format {
                Format::Stata => StatFormat::Stata,
                Format::Spss => StatFormat::Spss,
                _ => StatFormat::SasTransport,
            };
            for t in tables {
                let path = out.join(format!("{}.{}", csv::file_stem(&t.form), sf.extension()));
                let label = format!("{} {}: {}", study.id, t.form, t.name.en);
                readstat::write_table(&path, sf, t, &label)?;
                files.push(path);
            }
        }
        Format::Odm => {}
    }
    Ok(files)
}

/// Writes the ODM file.
fn write_odm_file(
    study: &Study,
    data: &TrialData,
    forms: &[&FormDef],
    audit: bool,
    created: &str,
    out: &Path,
) -> Result<PathBuf, ExportError> {
    let path = out.join(format!("{}-odm.xml", study.id.to_ascii_lowercase()));
    let file = std::fs::File::create(&path).map_err(|e| ExportError::io(&path, e))?;
    odm::write_odm(
        std::io::BufWriter::with_capacity(1 << 16, file),
        study,
        data,
        forms,
        audit,
        created,
    )
    .map_err(|e| match e {
        ExportError::Io { source, .. } => ExportError::io(&path, source),
        other => other,
    })?;
    Ok(path)
}
