//! `ecrf randomization …`, `ecrf randomize` and `ecrf screening …`: allocation lists (generate,
//! cut a lease, report, simulate) through the pure `ecrf-randomize` crate, the store's
//! envelopes, and the screening log with its CONSORT counts from `core::eligibility`.
//! Only argument parsing, files and printing live here.

use std::path::PathBuf;

use clap::Subcommand;
use ecrf_randomize::{
    ListSpec, Stratum, balance, generate, guess_stats, parse_csv, parse_seed, to_csv,
};

use ecrf_core::eligibility::{Outcome, Values};

use crate::{Cli, Failure, open};

/// `ecrf randomization …`.
#[derive(Subcommand)]
pub enum RandomizationCmd {
    /// Write the allocation list (CSV: stratum,seq,block,block_size,arm) of one or more sites.
    Generate {
        /// Site code; repeat for several sites (each is its own stratum).
        #[arg(long, required = true)]
        site: Vec<String>,
        /// Slots per site at least (the list ends on a whole block).
        #[arg(long)]
        count: usize,
        /// 32 random bytes, or 64 hex digits (e.g. `head -c32 /dev/urandom > seed`).
        #[arg(long)]
        seed_file: PathBuf,
        /// Block sizes, drawn with equal probability.
        #[arg(long, value_delimiter = ',', default_values_t = vec![4usize, 6, 8])]
        block_sizes: Vec<usize>,
        /// Output file.
        #[arg(short = 'o', long)]
        output: PathBuf,
    },
    /// Cut a lease of whole blocks of one stratum out of a list, for one device.
    Lease {
        /// The full list.
        #[arg(long)]
        list: PathBuf,
        /// Stratum key (the site code).
        #[arg(long)]
        stratum: String,
        /// First block to lease.
        #[arg(long, default_value_t = 1)]
        first_block: u32,
        /// How many blocks.
        #[arg(long)]
        blocks: u32,
        /// Output file.
        #[arg(short = 'o', long)]
        output: PathBuf,
    },
    /// Balance per stratum of a list file, and how guessable it is.
    Report {
        /// A list or lease file.
        file: PathBuf,
    },
    /// Balance and guessability over many generated lists (random seeds).
    Simulate {
        /// How many lists.
        #[arg(long, default_value_t = 10_000)]
        lists: usize,
        /// Slots per list.
        #[arg(long, default_value_t = 179)]
        count: usize,
        /// Block sizes.
        #[arg(long, value_delimiter = ',', default_values_t = vec![4usize, 6, 8])]
        block_sizes: Vec<usize>,
    },
    /// Load a lease file into the store as sealed envelopes (administrators): each arm is
    /// sealed at once to this laptop's key and the log records only commitments; the file
    /// itself still shows the arms, so keep it like the list (or destroy it).
    LoadLease {
        /// The lease file.
        file: PathBuf,
    },
    /// Sealed and opened envelopes on this device (counts only).
    Envelopes,
    /// Load an allocation list into the central server (administrators; the server's
    /// database): online randomizations and leases are taken from it.
    Upload {
        /// The list file (from `generate`).
        #[arg(long)]
        list: PathBuf,
        /// PostgreSQL URL of the server.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
    /// Receive whole blocks of the site's list from the server as sealed envelopes, for
    /// randomizing offline (an administrator of an enrolled laptop).
    FetchLease {
        /// How many blocks.
        #[arg(long, default_value_t = 1)]
        blocks: u32,
    },
}

fn read(p: &PathBuf) -> Result<String, Failure> {
    std::fs::read_to_string(p).map_err(|e| Failure(format!("{}: {e}", p.display())))
}

fn write(p: &PathBuf, text: &str) -> Result<(), Failure> {
    std::fs::write(p, text).map_err(|e| Failure(format!("{}: {e}", p.display())))
}

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure(e.to_string())
}

/// Runs `ecrf randomization …`.
pub fn run(cli: &Cli, cmd: &RandomizationCmd) -> Result<(), Failure> {
    match cmd {
        RandomizationCmd::Generate {
            site,
            count,
            seed_file,
            block_sizes,
            output,
        } => {
            let bytes = std::fs::read(seed_file)
                .map_err(|e| Failure(format!("{}: {e}", seed_file.display())))?;
            let seed = parse_seed(&bytes).map_err(fail)?;
            let mut all = Vec::new();
            for s in site {
                let spec = ListSpec {
                    stratum: Stratum::site(s).map_err(fail)?,
                    count: *count,
                    block_sizes: block_sizes.clone(),
                };
                all.extend(generate(&spec, &seed).map_err(fail)?);
            }
            write(output, &to_csv(&all))?;
            say!(
                "Wrote {} slots for {} site(s) to {}.",
                all.len(),
                site.len(),
                output.display()
            );
            Ok(())
        }
        RandomizationCmd::Lease {
            list,
            stratum,
            first_block,
            blocks,
            output,
        } => {
            let slots = parse_csv(&read(list)?).map_err(fail)?;
            let last = first_block.saturating_add(*blocks);
            let lease: Vec<_> = slots
                .into_iter()
                .filter(|s| &s.stratum == stratum && (*first_block..last).contains(&s.block))
                .collect();
            if lease.is_empty() {
                return Err(Failure(format!(
                    "no blocks {first_block}..{last} of {stratum} in the list"
                )));
            }
            write(output, &to_csv(&lease))?;
            say!(
                "Wrote a lease of {} envelopes of {stratum} to {}.",
                lease.len(),
                output.display()
            );
            Ok(())
        }
        RandomizationCmd::Report { file } => {
            let slots = parse_csv(&read(file)?).map_err(fail)?;
            say!("stratum  slots  ECMO+IABP  ECMO  max running difference  largest block");
            for b in balance(&slots) {
                say!(
                    "{:<8} {:>5}  {:>9}  {:>4}  {:>22}  {:>13}",
                    b.stratum,
                    b.slots,
                    b.ecmo_iabp,
                    b.ecmo,
                    b.max_running_difference,
                    b.largest_block
                );
            }
            let mut strata: std::collections::BTreeMap<&str, Vec<_>> = Default::default();
            for s in &slots {
                strata
                    .entry(s.stratum.as_str())
                    .or_default()
                    .push(s.clone());
            }
            let lists: Vec<Vec<_>> = strata.into_values().collect();
            let g = guess_stats(lists.iter().map(|l| l.as_slice()));
            say!(
                "Guessing the arm that is behind: {:.1}% correct ({} allocations).",
                100.0 * g.rate(),
                g.guesses
            );
            Ok(())
        }
        RandomizationCmd::Simulate {
            lists,
            count,
            block_sizes,
        } => {
            let mut worst = 0;
            let mut max_block = 0;
            let mut generated = Vec::with_capacity(*lists);
            for _ in 0..*lists {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(fail)?;
                let spec = ListSpec {
                    stratum: Stratum::site("01").map_err(fail)?,
                    count: *count,
                    block_sizes: block_sizes.clone(),
                };
                let mut list = generate(&spec, &seed).map_err(fail)?;
                list.truncate(*count);
                let b = &balance(&list)[0];
                worst = worst.max(b.max_running_difference);
                max_block = max_block.max(b.largest_block);
                generated.push(list);
            }
            let g = guess_stats(generated.iter().map(|l| l.as_slice()));
            say!(
                "{lists} lists of {count}, blocks {block_sizes:?}: worst difference between arms anywhere {worst} \
                 (half the largest block: {}); guessing the arm behind: {:.1}% correct.",
                max_block / 2,
                100.0 * g.rate()
            );
            Ok(())
        }
        RandomizationCmd::LoadLease { file } => {
            let mut store = open(cli)?;
            let n = store.load_lease(&read(file)?)?;
            say!("Loaded {n} sealed envelopes.");
            Ok(())
        }
        RandomizationCmd::Envelopes => {
            let store = open(cli)?;
            for c in store.envelope_counts()? {
                say!("{}: {} sealed, {} opened", c.stratum, c.unopened, c.opened);
            }
            Ok(())
        }
        RandomizationCmd::Upload { list, database_url } => {
            let csv = read(list)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(fail)?;
            let n = rt.block_on(async {
                let pool = ecrf_server::db::connect(database_url, 2).await?;
                ecrf_server::db::upload_allocation(&pool, &csv).await
            });
            say!(
                "Loaded {} slots into the server's allocation.",
                n.map_err(fail)?
            );
            Ok(())
        }
        RandomizationCmd::FetchLease { blocks } => {
            let mut store = open(cli)?;
            let client = ecrf_sync::client::client_of(&store).map_err(fail)?;
            let n = ecrf_app::sync::fetch_lease(&mut store, &client, *blocks).map_err(fail)?;
            say!("Received and loaded {n} sealed envelopes.");
            Ok(())
        }
    }
}

/// `ecrf screening …`.
#[derive(Subcommand)]
pub enum ScreeningCmd {
    /// Every screened patient: number, date-time, age, sex, eligibility with reasons, consent,
    /// randomization.
    Log,
    /// CONSORT counts per site: screened, not eligible by criterion, consent not obtained,
    /// randomized.
    Consort,
}

/// Runs `ecrf screening …`.
pub fn screening(cli: &Cli, cmd: &ScreeningCmd) -> Result<(), Failure> {
    let store = open(cli)?;
    let rows = ecrf_app::screening::screened(&store)?;
    let get = |v: &Values, i: &str| {
        v.get(i)
            .map(|x| x.to_string())
            .unwrap_or_else(|| "—".into())
    };
    match cmd {
        ScreeningCmd::Log => {
            for row in &rows {
                let (subject, scr) = (&row.subject, &row.scr);
                let verdict = match row.outcome() {
                    Outcome::Randomized => "randomized".to_string(),
                    Outcome::Pending => "eligible, consented, not randomized yet".to_string(),
                    Outcome::NoConsent(why) => format!("eligible; {why}"),
                    Outcome::NotEligible(r) => format!(
                        "NOT ELIGIBLE: {}",
                        r.iter()
                            .map(|r| format!("{} {}", r.criterion, r.text))
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                };
                let fail = scr
                    .get("SF_REASON")
                    .map(|r| format!("  screen failure: {r}"))
                    .unwrap_or_default();
                say!(
                    "{subject}  {}  age {}  sex {}  {verdict}{fail}",
                    get(scr, "SCR_DT"),
                    get(scr, "AGE"),
                    get(scr, "SEX")
                );
            }
        }
        ScreeningCmd::Consort => {
            for (site, s) in ecrf_app::screening::consort_by_site(&rows) {
                let c = &s.counts;
                say!("site {site}");
                say!("  screened                 {}", c.screened);
                say!("  not eligible             {}", c.not_eligible);
                for (criterion, n) in &c.by_criterion {
                    say!("    {criterion:<4} {n}");
                }
                say!("  consent not obtained     {}", c.consent_not_obtained);
                say!("  eligible, not randomized {}", c.pending);
                say!("  randomized               {}", c.randomized);
                for (arm, n) in &s.by_arm {
                    say!("    {arm:<10} {n}");
                }
            }
        }
    }
    Ok(())
}

/// Runs `ecrf randomize SUBJECT`.
/// `ecrf randomize`: online from the server's list when this laptop is enrolled and the server
/// answers, else from this laptop's sealed envelopes.
pub fn randomize(cli: &Cli, subject: &str) -> Result<(), Failure> {
    let mut store = open(cli)?;
    let client = match ecrf_sync::client::client_of(&store) {
        Ok(c) => Some(c),
        Err(ecrf_sync::SyncError::NotEnrolled) => None,
        Err(e) => return Err(fail(e)),
    };
    let (r, online) =
        ecrf_app::sync::randomize(&mut store, client.as_ref(), subject).map_err(fail)?;
    say!(
        "Randomized {subject}: subject number {}, arm {}, envelope {}, at {} by {} ({}).",
        r.subject_no,
        r.arm,
        r.envelope,
        r.at,
        r.by,
        if online {
            "online, from the server's list"
        } else {
            "from a sealed envelope on this laptop"
        }
    );
    Ok(())
}
