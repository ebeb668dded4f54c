//! `ecrf lab …`: the site's subject identification log, table mappings, and importing a
//! laboratory file (`--dry-run` shows what it would do, `--apply` saves the decisions). The
//! rules live in `ecrf_lab` (reading, matching, worst of a day) and `ecrf_app::lab` (the use
//! case); only arguments and printing live here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::Subcommand;
use ecrf_app::lab::{Decisions, apply_import, plan_import, read_file, save_mapping};
use ecrf_lab::TableMapping;
use ecrf_lab::plan::{CandidateStatus, Plan};
use ecrf_store::SaveOptions;

use crate::{Cli, Failure, open};

/// `ecrf lab …`.
#[derive(Subcommand)]
pub enum LabCmd {
    /// Record a subject's hospital record number in the site's identification log (kept in
    /// this laptop's encrypted store only: never synced, exported or printed).
    Mrn {
        /// Subject number.
        subject: String,
        /// Hospital record number.
        mrn: String,
    },
    /// List the site's identification log.
    Mrns,
    /// Save how this site's CSV or Excel export is read (columns by their header).
    Mapping(MappingArgs),
    /// Read a laboratory file (FHIR R4 JSON, HL7 v2 ORU^R01, CSV, Excel) and show, or save,
    /// the values it gives.
    Import(ImportArgs),
}

/// `ecrf lab mapping NAME …`.
#[derive(clap::Args)]
pub struct MappingArgs {
    /// Mapping name (letters, digits, - and _).
    name: String,
    /// Column of the hospital record number.
    #[arg(long)]
    patient: String,
    /// Column of the test code (LOINC, or a local code given with --code-map).
    #[arg(long)]
    code: String,
    /// Column of the value.
    #[arg(long)]
    value: String,
    /// Column of the unit.
    #[arg(long)]
    unit: String,
    /// Column of the specimen time.
    #[arg(long)]
    taken: String,
    /// Column of the test name (for the report).
    #[arg(long = "name-column")]
    name_column: Option<String>,
    /// Column of the result's own id.
    #[arg(long)]
    id: Option<String>,
    /// Time format (chrono, e.g. "%Y/%m/%d %H:%M").
    #[arg(long)]
    time_format: Option<String>,
    /// A local code and its LOINC code, LOCAL=LOINC (repeatable).
    #[arg(long = "code-map")]
    code_map: Vec<String>,
    /// Excel sheet (default: the first).
    #[arg(long)]
    sheet: Option<String>,
}

/// `ecrf lab import FILE …`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The file.
    file: PathBuf,
    /// The saved mapping of a CSV or Excel export.
    #[arg(long)]
    mapping: Option<String>,
    /// Show what the import would do and save nothing (the default).
    #[arg(long, conflicts_with = "apply")]
    dry_run: bool,
    /// Save the decisions: --accept all or ids, --reject ids.
    #[arg(long)]
    apply: bool,
    /// Accepted candidate ids (comma-separated), or `all` (every open one not rejected).
    #[arg(long, value_delimiter = ',')]
    accept: Vec<String>,
    /// Rejected candidate ids (comma-separated): remembered, not asked again.
    #[arg(long, value_delimiter = ',')]
    reject: Vec<String>,
    /// Why entered values change (needed when a candidate differs from an entered value).
    #[arg(long)]
    reason: Option<String>,
    /// Confirm the soft-range warnings of the accepted values.
    #[arg(long)]
    confirm_warnings: bool,
}

/// Runs `ecrf lab …`.
pub fn lab(cli: &Cli, cmd: &LabCmd) -> Result<(), Failure> {
    let mut store = open(cli)?;
    match cmd {
        LabCmd::Mrn { subject, mrn } => {
            store.set_subject_mrn(subject, mrn)?;
            say!("{subject}: hospital record number recorded (this laptop only).");
        }
        LabCmd::Mrns => {
            for (subject, mrn) in store.subject_mrns()? {
                say!("{subject}  {mrn}");
            }
        }
        LabCmd::Mapping(a) => {
            let mut codes = BTreeMap::new();
            for pair in &a.code_map {
                let (local, loinc) = pair
                    .split_once('=')
                    .ok_or_else(|| Failure(format!("--code-map {pair}: write LOCAL=LOINC")))?;
                codes.insert(local.trim().to_string(), loinc.trim().to_string());
            }
            let m = TableMapping {
                patient: a.patient.clone(),
                code: a.code.clone(),
                name: a.name_column.clone(),
                value: a.value.clone(),
                unit: a.unit.clone(),
                taken: a.taken.clone(),
                id: a.id.clone(),
                time_format: a.time_format.clone(),
                codes,
                sheet: a.sheet.clone(),
            };
            save_mapping(&mut store, &a.name, &m).map_err(|e| Failure(e.to_string()))?;
            say!("Mapping {} saved on this laptop.", a.name);
        }
        LabCmd::Import(a) => {
            let file = read_file(&store, &a.file, a.mapping.as_deref())
                .map_err(|e| Failure(format!("not imported: {e}")))?;
            let plan = plan_import(&store, &file).map_err(|e| Failure(e.to_string()))?;
            print_plan(&a.file, &file.sha256, &plan);
            if !a.apply {
                say!("Dry run: nothing saved. Save with --apply --accept all|IDS [--reject IDS].");
                return Ok(());
            }
            let accept_all = a.accept.iter().any(|i| i == "all");
            let decisions = Decisions {
                accept_all,
                accept: a
                    .accept
                    .iter()
                    .filter(|i| *i != "all")
                    .cloned()
                    .collect::<BTreeSet<_>>(),
                reject: a.reject.iter().cloned().collect(),
            };
            let opts = SaveOptions {
                reason: a.reason.clone(),
                confirm_warnings: a.confirm_warnings,
            };
            let out = apply_import(&mut store, &file, &plan, &decisions, &opts)
                .map_err(|e| Failure(format!("nothing saved: {e}")))?;
            say!(
                "Saved {} value(s), rejected {} result(s), {} left undecided.",
                out.saved,
                out.rejected,
                out.undecided
            );
        }
    }
    Ok(())
}

fn print_plan(path: &std::path::Path, sha256: &str, plan: &Plan) {
    say!(
        "{}: {} result(s) read (SHA-256 {}…)",
        path.display(),
        plan.results,
        &sha256[..16]
    );
    if plan.candidates.is_empty() {
        say!("No value to import.");
    } else {
        say!(
            "{:<10}  {:<12} {:<7} {:<8} {:>7}  {:<22} {:<22} {:<9} status",
            "id",
            "subject",
            "form",
            "item",
            "value",
            "source",
            "taken",
            "entered"
        );
    }
    for c in &plan.candidates {
        let status = match c.status {
            CandidateStatus::New => "new",
            CandidateStatus::Differs => "CHANGES the entered value",
            CandidateStatus::Same => "same as entered",
            CandidateStatus::Imported => "already imported",
            CandidateStatus::Rejected => "rejected before",
        };
        let others = if c.others > 0 {
            format!(" (worst of {} results)", c.others + 1)
        } else {
            String::new()
        };
        say!(
            "{:<10}  {:<12} {:<7} {:<8} {:>7}  {:<22} {:<22} {:<9} {status}{others}",
            c.id,
            c.subject,
            c.form,
            c.item,
            c.value,
            format!("{} {}", c.source_value, c.source_unit),
            c.taken,
            c.entered.as_deref().unwrap_or("-")
        );
    }
    if !plan.problems.is_empty() {
        say!("Not imported ({}):", plan.problems.len());
        for p in &plan.problems {
            say!("  {}: {}", p.place, p.message);
        }
    }
}
