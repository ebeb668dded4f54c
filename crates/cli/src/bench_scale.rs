//! `ecrf bench-scale` (`make bench-scale`): the server, sync and exports at 1×, 3× and 10× this
//! trial, so their growth is seen before a user finds it.
//!
//! The trial grows in one PostgreSQL database: each size adds sites of about 72 subjects
//! (5 sites per 1×: 358 subjects; 50 sites and 3,580 subjects at 10×) made by `bench_trial`
//! (every form, 30 daily logs, events, queries, signatures; ~1,400 signed changes a subject)
//! and sent through the real push path: an enrolled device per site pushing pages of 1,000 to
//! the real `ecrf server`, run as its own process on a loopback port (so its CPU and memory are
//! its own). At each size it measures, after `VACUUM ANALYZE` as autovacuum would leave it and
//! a `CHECKPOINT` (the load's writes done):
//! - the first full sync of one site (site 01) onto a new laptop: a real encrypted store,
//!   enrolled, syncing everything;
//! - one-item sync of an enrolled device at site 02 (01 when it is the only site): ask, push
//!   one change, pull to the end (not at site 01, whose first full sync then pulls nearly the
//!   same changes at every size: the many devices below add ~300 to it at 1×, ~100 at 3×);
//! - many devices at once, each already in step with its site: three rounds of ask + push one
//!   change + pull; p50/p99, errors, the server's and PostgreSQL's CPU and the server's memory;
//! - the whole-trial export from PostgreSQL in every format, data only and with the audit trail
//!   (the path of `ecrf export --database-url`);
//! - the coordinating centre's dashboard after a server restart (its fold at start) and warm;
//! - PostgreSQL's size per million changes, and the plans of the hot statements.
//!
//! After the last size one very large site (600 subjects) is added and its first full sync onto
//! a new laptop measured. A table of the sizes ends the run, each figure beside a linear
//! extrapolation from 1× (by site size for per-site operations, by changes for whole-trial
//! ones).
//!
//! `--only first-sync` loads only site 01 of the smallest size and the very large site, and
//! times their first full syncs (`--syncs` times each), then each sync's pull alone and apply
//! alone, with the CPU the server, PostgreSQL and the laptop spent.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use chrono::Utc;
use ecrf_core::{Role, Study};
use ecrf_export::DataSource as _;
use ecrf_log::Change;
use ecrf_store::{CreateOptions, Store};
use ecrf_sync::Client;
use ecrf_sync::wire::{EnrolRequest, EnrolUser, MAX_PAGE};
use sqlx::Row;

use crate::bench_sync::{fail, ms, percentile};
use crate::bench_trial::{Chain, Staff, change, site_changes};
use crate::{Failure, study};

/// Benchmark sizes.
#[derive(clap::Args)]
pub struct BenchScaleArgs {
    /// PostgreSQL URL of a server the benchmark may create a database on.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Sizes in multiples of this trial (358 subjects), smallest first.
    #[arg(long, value_delimiter = ',', default_value = "1,3,10")]
    sizes: Vec<usize>,
    /// Sites per multiple of the trial (358 subjects spread over them).
    #[arg(long, default_value_t = 5)]
    sites_per_trial: usize,
    /// Daily logs per subject.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Subjects of the very large site added after the last size (0: none).
    #[arg(long, default_value_t = 600)]
    large_site: usize,
    /// Devices syncing at once.
    #[arg(long, default_value_t = 500)]
    devices: usize,
    /// One-item syncs timed at each size. The p99 of 1,000 is the tenth slowest, where single
    /// fsyncs that waited land: three runs at one size gave 1.9, 3.2 and 2.5 ms; of 5,000, 2.2,
    /// 2.4 and 2.3 ms (a p99 of 200 was their second slowest).
    #[arg(long, default_value_t = 5000)]
    rounds: usize,
    /// Run only one part: `first-sync` loads site 01 of the smallest size (and the very large
    /// site) and times their first full syncs, with the pull and the apply each timed alone.
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// First full syncs timed per site with `--only first-sync`.
    #[arg(long, default_value_t = 1)]
    syncs: usize,
}

/// The one part `--only` runs.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Only {
    /// A site's first full sync onto a new laptop, at the smallest size and the very large site.
    FirstSync,
}

/// The allocator setting the bench wants for its own process (`make bench-scale` sets it):
/// the simulated devices are 500 threads of this one process, each with its own heap in
/// mimalloc, which by default commits its arenas eagerly on Linux; for 500 threads at once that
/// had the kernel zeroing pages for most of the devices' CPU (`perf`: `clear_page_erms`, about
/// 3.5 s of their 5.7 s in a run at 50 sites), on the same two cores as the server. No laptop
/// pays that (each is its own computer, and the desktop app has the system allocator). Set by
/// the environment because mimalloc reserves its first arena before `main`; the server is
/// started without it.
const DEVICES_ALLOCATOR: (&str, &str) = ("MIMALLOC_ARENA_EAGER_COMMIT", "0");

/// Subjects in this trial (1×).
const TRIAL_SUBJECTS: usize = 358;
/// The data manager's password on every site (for the dashboard).
const DM_PASSWORD: &str = "bench-scale-data-manager-2026";
/// Linux's USER_HZ (clock ticks of /proc/*/stat times): 100 on every mainstream architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// One size's figures, by name; `per_site` figures should stay flat, the others grow with the
/// number of changes.
#[derive(Default)]
struct Figures {
    rows: Vec<(String, f64, Kind)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Per-site cost (ms): stays within 1.2× of 1×.
    PerSite,
    /// Whole-trial cost (ms): within 1.5× of 1× scaled by the changes.
    Trial,
    /// A count or size shown for context.
    Info,
}

impl Figures {
    fn put(&mut self, name: &str, value: f64, kind: Kind) {
        self.rows.push((name.to_string(), value, kind));
    }
}

/// The real server as its own process.
struct Server {
    child: Child,
    url: String,
    exe: PathBuf,
    db_url: String,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(exe: &Path, db_url: &str, log: &Path) -> Result<Server, Failure> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(fail)?
            .port();
        let mut s = Server {
            child: spawn_server(exe, db_url, port, log)?,
            url: format!("http://127.0.0.1:{port}"),
            exe: exe.to_path_buf(),
            db_url: db_url.to_string(),
            port,
            log: log.to_path_buf(),
        };
        s.wait_healthy()?;
        Ok(s)
    }

    fn wait_healthy(&mut self) -> Result<(), Failure> {
        let probe = Client::new(&self.url, None).map_err(fail)?;
        let t = Instant::now();
        while probe.health().is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Failure(format!(
                    "the server stopped ({status}); see {}",
                    self.log.display()
                )));
            }
            if t.elapsed() > Duration::from_secs(60) {
                return Err(Failure("the server did not start".into()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Stops and starts it again (the web view folds every change at start).
    fn restart(&mut self) -> Result<(), Failure> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_server(&self.exe, &self.db_url, self.port, &self.log)?;
        self.wait_healthy()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_server(exe: &Path, db_url: &str, port: u16, log: &Path) -> Result<Child, Failure> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(fail)?;
    let err = out.try_clone().map_err(fail)?;
    Command::new(exe)
        .args(["server", "--database-url", db_url, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--insecure-http", "--enrol-per-minute", "1000000000"])
        .env("RUST_LOG", "warn")
        // The server runs with the allocator's defaults, as deployed (see `DEVICES_ALLOCATOR`).
        .env_remove(DEVICES_ALLOCATOR.0)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| Failure(format!("{}: {e}", exe.display())))
}

/// CPU seconds (user + system) of one process, from /proc (0 where there is none).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at state: utime and stime
    // are the 12th and 13th of them.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / TICKS_PER_SECOND
}

/// CPU seconds of every PostgreSQL process on the machine.
fn postgres_cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(cpu_seconds)
        .sum()
}

/// `VmRSS` and `VmHWM` (peak) of a process, MiB.
fn memory_mib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A device at a site: its client (with token) and chain head.
struct Device {
    client: Client,
    site: String,
    device: String,
    seq: i64,
    prev: String,
    cursor: i64,
}

/// Enrols a new device at `site` through the API, with the staff's users.
fn enrol_device(
    rt: &tokio::runtime::Runtime,
    pool: &sqlx::PgPool,
    url: &str,
    site: &str,
    staff: &Staff,
) -> Result<Device, Failure> {
    let device = uuid::Uuid::new_v4().to_string();
    let code = rt
        .block_on(ecrf_server::db::enrol_code(pool, site, &device, 1))
        .map_err(fail)?;
    let users = staff
        .people()
        .iter()
        .map(|(username, name, role, key)| EnrolUser {
            username: username.to_string(),
            name: name.to_string(),
            role: role.as_str().to_string(),
            public_keys: vec![key.public_hex()],
        })
        .collect();
    let probe = Client::new(url, None).map_err(fail)?;
    let enrolled = probe
        .enrol(&EnrolRequest {
            code,
            device: device.clone(),
            site: site.to_string(),
            sealing_key: Some(ecrf_randomize::seal::public_key(&[7; 32])),
            users,
            head_seq: 0,
            unlock_secret: None,
        })
        .map_err(fail)?;
    Ok(Device {
        client: Client::new(url, None)
            .map_err(fail)?
            .with_token(&enrolled.token),
        site: site.to_string(),
        device,
        seq: 0,
        prev: ecrf_log::GENESIS.to_string(),
        cursor: 0,
    })
}

impl Device {
    /// This device's next change: the nurse corrects day 1's heart rate of `subject`.
    fn next_change(&mut self, staff: &Staff, subject: &str, value: i64) -> Change {
        let mut c = change(
            ecrf_log::ChangeKind::ItemSet,
            Some(subject),
            Some("DLY#1"),
            Some("HR"),
            Some(format!("{{\"int\":{value}}}")),
        );
        self.seq += 1;
        c.old_value = Some("{\"int\":100}".into());
        c.reason = Some("Transcription error".into());
        c.device = self.device.clone();
        c.device_seq = self.seq;
        c.prev_hash = self.prev.clone();
        c.change_id = uuid::Uuid::now_v7().to_string();
        c.base = Some("[]".into());
        c.hash = c.compute_hash();
        staff.nurse.sign(&mut c);
        self.prev = c.hash.clone();
        c
    }

    /// One sync round as a laptop in step makes it: where it stands, its one change pushed and
    /// the first page pulled in one request; then pull to the end.
    fn round(&mut self, c: Change) -> Result<(), ecrf_sync::SyncError> {
        let (_, _, first) = self.client.sync_step(
            &self.site,
            chrono::Utc::now(),
            None,
            &[c],
            self.cursor,
            MAX_PAGE,
        )?;
        self.cursor = first.cursor;
        if !first.more {
            return Ok(());
        }
        loop {
            let page = self.client.pull(&self.site, self.cursor, MAX_PAGE)?;
            self.cursor = page.cursor;
            if !page.more {
                return Ok(());
            }
        }
    }
}

/// The site's last `seq` (a device in step pulls from there).
fn site_head(rt: &tokio::runtime::Runtime, pool: &sqlx::PgPool, site: &str) -> i64 {
    rt.block_on(
        sqlx::query_scalar::<_, Option<i64>>("SELECT max(seq) FROM changes WHERE site = $1")
            .bind(site)
            .fetch_one(pool),
    )
    .ok()
    .flatten()
    .unwrap_or(0)
}

/// Site code of the `i`-th site (0-based): `01`…`99`, then `A0`….
fn site_code(i: usize) -> String {
    if i < 99 {
        format!("{:02}", i + 1)
    } else {
        let letters = b"ABCDEFGHJKMNPQRSTVWXYZ";
        format!(
            "{}{}",
            letters[(i - 99) / 10 % letters.len()] as char,
            (i - 99) % 10
        )
    }
}

/// Subjects of site `i` (0-based) when `sites` sites share `subjects`.
fn subjects_of(i: usize, sites: usize, subjects: usize) -> usize {
    subjects * (i + 1) / sites - subjects * i / sites
}

/// What loading sites and making laptops take, the same through the whole bench.
struct Bench<'a> {
    rt: &'a tokio::runtime::Runtime,
    pool: &'a sqlx::PgPool,
    /// The server's address (kept across its restarts).
    url: &'a str,
    study: &'a Study,
    staff: &'a Staff,
    /// Daily logs per subject.
    days: u32,
    /// The data manager's credentials, made once (a password hash is slow on purpose).
    cred: &'a ecrf_server::db::users::Credentials,
    /// Where laptops' stores are made.
    dir: &'a Path,
}

impl Bench<'_> {
    /// Generates sites (code, subjects) on one thread while this one pushes them, each through a
    /// newly enrolled device in pages of [`MAX_PAGE`]. Returns the changes pushed.
    fn load_sites(&self, sites: &[(String, usize)]) -> Result<usize, Failure> {
        let Bench {
            rt,
            pool,
            url,
            study,
            staff,
            days,
            cred,
            ..
        } = *self;
        let today = Utc::now().date_naive();
        let mut devices = Vec::new();
        for (site, _) in sites {
            rt.block_on(async {
                ecrf_server::db::add_site(pool, site, &format!("Hospital {site}")).await?;
                ecrf_server::db::users::add_user(
                    pool,
                    site,
                    "dm",
                    "Data Manager",
                    Role::DataManager,
                    cred,
                )
                .await
            })
            .map_err(fail)?;
            devices.push(enrol_device(rt, pool, url, site, staff)?);
        }
        std::thread::scope(|scope| -> Result<usize, Failure> {
            let (made, ready) = std::sync::mpsc::sync_channel::<Result<Vec<Change>, Failure>>(1);
            let gen_devices: Vec<(String, String, usize)> = devices
                .iter()
                .zip(sites)
                .map(|(d, (site, n))| (site.clone(), d.device.clone(), *n))
                .collect();
            scope.spawn(move || {
                for (site, device, n) in gen_devices {
                    let mut chain = Chain::new(&site, &device, staff);
                    let r =
                        site_changes(study, &mut chain, 1, n, days, today).map(|()| chain.changes);
                    if made.send(r).is_err() {
                        return;
                    }
                }
            });
            let mut total = 0;
            for device in devices.iter_mut() {
                let changes = ready
                    .recv()
                    .map_err(|_| Failure("the generator stopped".into()))??;
                for page in changes.chunks(MAX_PAGE) {
                    let reply = device
                        .client
                        .push(&device.site, page.to_vec())
                        .map_err(|e| Failure(format!("push to site {}: {e}", device.site)))?;
                    total += reply.stored;
                }
                if let Some(last) = changes.last() {
                    device.seq = last.device_seq;
                    device.prev = last.hash.clone();
                }
                // A laptop's sync pulls after it pushes, and its next sync asks from where that
                // ended, which the server records as what the device holds (`pulled_seq`, read by
                // the dashboard's device health): both, so the device is in step as a laptop that
                // synced twice would be.
                loop {
                    let page = device
                        .client
                        .pull(&device.site, device.cursor, MAX_PAGE)
                        .map_err(fail)?;
                    device.cursor = page.cursor;
                    if !page.more {
                        break;
                    }
                }
                device
                    .client
                    .pull(&device.site, device.cursor, MAX_PAGE)
                    .map_err(fail)?;
            }
            Ok(total)
        })
    }

    /// A new laptop of `site` (real encrypted store), enrolled: the time of its first full sync
    /// and the changes it received.
    fn first_full_sync(&self, site: &str, name: &str) -> Result<(Duration, usize), Failure> {
        let mut store = self.new_laptop(site, name)?;
        let client = ecrf_sync::client::client_of(&store).map_err(fail)?;
        let t = Instant::now();
        let report = ecrf_sync::sync(&mut store, &client, &mut |_| {}).map_err(fail)?;
        let took = t.elapsed();
        drop(store);
        remove_laptop(self.dir, name);
        Ok((took, report.pulled))
    }

    /// A new laptop of `site`: a real encrypted store, durable, enrolled, the nurse logged in.
    fn new_laptop(&self, site: &str, name: &str) -> Result<Store, Failure> {
        let Bench {
            rt, pool, url, dir, ..
        } = *self;
        let path = dir.join(format!("{name}.ecrf"));
        let (mut admin, _) = Store::create(
            &path,
            study()?,
            CreateOptions {
                site: site.into(),
                admin_user: "admin".into(),
                admin_name: "Admin".into(),
                admin_password: ecrf_app::demo::DEMO_PASSWORD.into(),
            },
        )?;
        admin.add_user("nurse", "Nurse", Role::Nurse, ecrf_app::demo::DEMO_PASSWORD)?;
        drop(admin);
        let store = Store::open(&path, study()?, "nurse", ecrf_app::demo::DEMO_PASSWORD)?;
        let code = rt
            .block_on(ecrf_server::db::enrol_code(
                pool,
                site,
                store.device_id(),
                1,
            ))
            .map_err(fail)?;
        ecrf_sync::enrol(&store, url, &code, None).map_err(fail)?;
        Ok(store)
    }
}

/// Removes a laptop's files.
fn remove_laptop(dir: &Path, name: &str) {
    for suffix in ["", "-wal", "-shm", ".keys"] {
        let _ = std::fs::remove_file(dir.join(format!("{name}.ecrf{suffix}")));
    }
}

/// `--only first-sync`: site 01 of the smallest size and the very large site are loaded, and
/// each site's first full sync onto a new laptop timed `syncs` times, then its two halves
/// alone: every page pulled (server, HTTP, decoding and checking the reply) with nothing
/// applied, and the same pages applied to another new laptop with no network.
fn first_sync_only(
    args: &BenchScaleArgs,
    rt: &tokio::runtime::Runtime,
    db_url: &str,
    pool: &sqlx::PgPool,
    server: &Server,
    dir: &Path,
    cred: &ecrf_server::db::users::Credentials,
) -> Result<(), Failure> {
    let study = study()?;
    let staff = Staff::new();
    let bench = Bench {
        rt,
        pool,
        url: &server.url,
        study: &study,
        staff: &staff,
        days: args.days,
        cred,
        dir,
    };
    let size = args.sizes.iter().copied().min().unwrap_or(1);
    let sites = args.sites_per_trial * size;
    let mut load = vec![(site_code(0), subjects_of(0, sites, TRIAL_SUBJECTS * size))];
    if args.large_site > 0 {
        load.push(("LG".to_string(), args.large_site));
    }
    for (site, subjects) in load {
        let t = Instant::now();
        let pushed = bench.load_sites(&[(site.clone(), subjects)])?;
        rt.block_on(sqlx::raw_sql("VACUUM ANALYZE changes").execute(pool))
            .map_err(fail)?;
        say!(
            "site {site}: {subjects} subjects, {pushed} changes pushed in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        // CPU seconds of the server, PostgreSQL and this process (the laptop's side) since `from`.
        let cpu = || {
            [
                cpu_seconds(server.pid()),
                postgres_cpu_seconds(),
                cpu_seconds(std::process::id()),
            ]
        };
        let spent = |from: [f64; 3]| {
            let now = cpu();
            format!(
                "CPU: server {:.1} s, PostgreSQL {:.1} s, laptop {:.1} s",
                now[0] - from[0],
                now[1] - from[1],
                now[2] - from[2]
            )
        };
        let probe = enrol_device(rt, pool, &server.url, &site, &staff)?;
        let pull_plan = rt
            .block_on(async {
                use sqlx::Connection as _;
                let mut conn = sqlx::PgConnection::connect(db_url).await?;
                let stmt = ecrf_server::db::plans::hot_statements(&site, &probe.device)
                    .into_iter()
                    .find(|s| s.name == "a pull's page");
                match stmt {
                    Some(stmt) => ecrf_server::db::plans::plan(&mut conn, &stmt, false).await,
                    None => Ok(Vec::new()),
                }
            })
            .map_err(fail)?;
        say!("  plan of a pull's page: {}", pull_plan.join(" / "));
        for run in 0..args.syncs.max(1) {
            let c0 = cpu();
            let (took, pulled) = bench.first_full_sync(&site, "laptop")?;
            say!(
                "first full sync of site {site} #{}: {pulled} changes in {:.2} s ({:.1} µs a change; {})",
                run + 1,
                took.as_secs_f64(),
                took.as_secs_f64() * 1e6 / pulled.max(1) as f64,
                spent(c0)
            );
        }
        // The pull alone: every page fetched, decoded and checked (hashes too), nothing applied.
        let mut store = bench.new_laptop(&site, "apart")?;
        let client = ecrf_sync::client::client_of(&store).map_err(fail)?;
        let c0 = cpu();
        let t = Instant::now();
        let mut pages = Vec::new();
        let mut after = 0;
        loop {
            let page = client.pull(&site, after, MAX_PAGE).map_err(fail)?;
            after = page.cursor;
            let more = page.more;
            pages.push(page);
            if !more {
                break;
            }
        }
        let fetched = t.elapsed();
        let fetch_cpu = spent(c0);
        let n: usize = pages.iter().map(|p| p.changes.len()).sum();
        // The apply alone: the same pages, in order, each in one transaction with its cursor.
        let c0 = cpu();
        let t = Instant::now();
        let page_count = pages.len();
        for page in pages {
            store.apply_checked(page.changes, page.cursor)?;
        }
        let applied = t.elapsed();
        let apply_cpu = spent(c0);
        drop(store);
        remove_laptop(dir, "apart");
        say!(
            "  apart: {} pages pulled (server, HTTP, decoding, checks) in {:.2} s ({:.1} µs a change; {fetch_cpu}); applied in {:.2} s ({:.1} µs a change; {apply_cpu})",
            page_count,
            fetched.as_secs_f64(),
            fetched.as_secs_f64() * 1e6 / n.max(1) as f64,
            applied.as_secs_f64(),
            applied.as_secs_f64() * 1e6 / n.max(1) as f64
        );
    }
    Ok(())
}

/// The hot statements' plans at this size: `(statement, the scans it makes, tables read
/// whole)`.
async fn plans(
    url: &str,
    device: &str,
) -> Result<Vec<(&'static str, String, Vec<String>)>, sqlx::Error> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let mut out = Vec::new();
    for stmt in ecrf_server::db::plans::hot_statements("01", device) {
        let plan = ecrf_server::db::plans::plan(&mut conn, &stmt, false).await?;
        let scans = plan
            .iter()
            .filter(|l| l.contains("Scan"))
            .map(|l| {
                let l = l.trim().trim_start_matches("->").trim();
                l.split("  (").next().unwrap_or(l).to_string()
            })
            .collect::<Vec<_>>()
            .join("; ");
        out.push((
            stmt.name,
            scans,
            ecrf_server::db::plans::sequential_scans(&plan),
        ));
    }
    Ok(out)
}

/// Logs in to the web view as the data manager.
fn web_session(url: &str) -> Result<crate::bench_web::Session, Failure> {
    let t = Instant::now();
    loop {
        match crate::bench_web::Session::log_in_as(url, "dm", DM_PASSWORD) {
            Ok(s) => return Ok(s),
            Err(e) if t.elapsed() > Duration::from_secs(120) => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// `ecrf bench-scale`.
pub fn run(args: &BenchScaleArgs) -> Result<(), Failure> {
    let (name, value) = DEVICES_ALLOCATOR;
    if std::env::var(name).ok().as_deref() != Some(value) {
        say!(
            "note: {name}={value} is not set: the {} simulated devices' threads will spend CPU \
             zeroing memory on the server's cores (`make bench-scale` sets it)",
            args.devices
        );
    }
    let study = study()?;
    let staff = Staff::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    let db_url = crate::bench_sync::fresh_database(&rt, &args.database_url, "ecrf_bench_scale")?;
    let pool = rt
        .block_on(ecrf_server::db::connect(&db_url, 8))
        .map_err(fail)?;
    let dir = tempfile::tempdir().map_err(fail)?;
    let exe = std::env::current_exe().map_err(fail)?;
    let mut server = Server::start(&exe, &db_url, &dir.path().join("server.log"))?;
    let dm_key = ecrf_log::AuthorKey::from_seed(&[12; 32]);
    let cred = ecrf_server::db::users::Credentials {
        verifier: ecrf_identity::verifier(DM_PASSWORD).map_err(fail)?,
        escrow: ecrf_identity::escrow(DM_PASSWORD, &dm_key).map_err(fail)?,
        public_key: dm_key.public_hex(),
    };
    if let Some(Only::FirstSync) = args.only {
        return first_sync_only(args, &rt, &db_url, &pool, &server, dir.path(), &cred);
    }
    let url = server.url.clone();
    let bench = Bench {
        rt: &rt,
        pool: &pool,
        url: &url,
        study: &study,
        staff: &staff,
        days: args.days,
        cred: &cred,
        dir: dir.path(),
    };
    let mut sizes: Vec<usize> = args.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let mut all: Vec<(usize, Figures)> = Vec::new();
    let mut sites_made = 0usize;
    let mut changes_total = 0usize;
    for &size in &sizes {
        let mut f = Figures::default();
        say!("== {size}x the trial");
        // 1. Grow the trial to this size through the push path.
        let sites = args.sites_per_trial * size;
        let subjects = TRIAL_SUBJECTS * size;
        let new: Vec<(String, usize)> = (sites_made..sites)
            .map(|i| (site_code(i), subjects_of(i, sites, subjects)))
            .collect();
        let t = Instant::now();
        let pushed = bench.load_sites(&new)?;
        let load = t.elapsed();
        sites_made = sites;
        changes_total += pushed;
        say!(
            "pushed {pushed} changes of {} new sites through the API in {:.1} s ({:.0} changes/s); {changes_total} changes in all",
            new.len(),
            load.as_secs_f64(),
            pushed as f64 / load.as_secs_f64()
        );
        // As a server that grew over months would be: its tables vacuumed and analysed, and
        // the load's dirty pages written out (a checkpoint, 1-2.5 s here), so that what is
        // timed next does not share the disk with the load's last writes.
        let t = Instant::now();
        // Two calls: VACUUM cannot run in the transaction a multi-statement string is.
        for sql in ["VACUUM ANALYZE", "CHECKPOINT"] {
            rt.block_on(sqlx::raw_sql(sql).execute(&pool))
                .map_err(fail)?;
        }
        say!(
            "VACUUM ANALYZE, CHECKPOINT: {:.1} s",
            t.elapsed().as_secs_f64()
        );
        f.put("sites", sites as f64, Kind::Info);
        f.put("subjects", subjects as f64, Kind::Info);
        f.put("changes (millions)", changes_total as f64 / 1e6, Kind::Info);

        // 2. PostgreSQL's size.
        let (db_bytes, changes_bytes): (i64, i64) = rt
            .block_on(async {
                let row = sqlx::query(
                    "SELECT pg_database_size(current_database()), \
                     pg_total_relation_size('changes')",
                )
                .fetch_one(&pool)
                .await?;
                Ok::<_, sqlx::Error>((row.get(0), row.get(1)))
            })
            .map_err(fail)?;
        let per_million = changes_bytes as f64 / (changes_total as f64 / 1e6) / 1e6;
        say!(
            "PostgreSQL: database {:.0} MB, changes with its indexes {:.0} MB = {per_million:.0} MB per million changes",
            db_bytes as f64 / 1e6,
            changes_bytes as f64 / 1e6
        );
        f.put("database size (MB)", db_bytes as f64 / 1e6, Kind::Info);
        f.put("MB per million changes", per_million, Kind::Info);

        // 3. The hot statements' plans.
        let probe_device = enrol_device(&rt, &pool, &server.url, "01", &staff)?;
        let mut whole = 0;
        for (name, scans, seq) in rt
            .block_on(plans(&db_url, &probe_device.device))
            .map_err(fail)?
        {
            say!("plan of {name}: {scans}");
            // Tables read whole, and reads of `changes` by another index than the right one.
            whole += seq
                .iter()
                .filter(|t| *t == "changes" || t.contains(" on changes"))
                .count();
        }
        f.put(
            "hot reads of `changes` whole or by a wrong index",
            whole as f64,
            Kind::Info,
        );

        // 4. First full sync of site 01 onto a new laptop.
        let (took, pulled) = bench.first_full_sync("01", "laptop")?;
        say!(
            "first full sync of site 01 onto a new laptop: {pulled} changes in {}",
            ms(took)
        );
        f.put(
            "first full sync of one site (ms)",
            took.as_secs_f64() * 1e3,
            Kind::PerSite,
        );

        // 5. One-item sync of a device in step, at site 02 (site 01's first full sync at the
        // next size then pulls nearly what it pulled at this one), or 01 if it is the only site.
        let at = site_code(usize::from(sites > 1));
        let mut d = enrol_device(&rt, &pool, &server.url, &at, &staff)?;
        d.cursor = site_head(&rt, &pool, &at);
        let subject = format!("{at}-B0001");
        let mut times = Vec::with_capacity(args.rounds);
        for i in 0..args.rounds {
            let c = d.next_change(&staff, &subject, 60 + (i % 40) as i64);
            let t = Instant::now();
            d.round(c).map_err(fail)?;
            times.push(t.elapsed());
        }
        times.sort();
        let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
        say!(
            "one-item sync (ask + push one change + pull to the end): p50 {}, p99 {} over {} (goal p99 <= 10 ms)",
            ms(p50),
            ms(p99),
            times.len()
        );
        f.put(
            "one-item sync p50 (ms)",
            p50.as_secs_f64() * 1e3,
            Kind::PerSite,
        );
        f.put(
            "one-item sync p99 (ms)",
            p99.as_secs_f64() * 1e3,
            Kind::PerSite,
        );

        // 6. Many devices at once.
        many_devices(&rt, &pool, &server, &staff, sites, args.devices, &mut f)?;

        // 7. The whole trial exported from PostgreSQL.
        for audit in [false, true] {
            let out = dir.path().join("export");
            let _ = std::fs::remove_dir_all(&out);
            let t = Instant::now();
            let data = crate::export_server::ServerDb {
                url: db_url.clone(),
                site: None,
            }
            .trial_data(audit)?;
            let read = t.elapsed();
            let report = ecrf_export::export(
                &study,
                &data,
                &ecrf_export::Format::ALL,
                &ecrf_export::ExportOptions {
                    forms: Vec::new(),
                    site: None,
                    include_audit: audit,
                },
                &out,
            )?;
            let took = t.elapsed();
            drop(data);
            let mut each = String::new();
            for (format, d) in &report.timings {
                let _ = write!(each, " {} {:.2} s;", format.name(), d.as_secs_f64());
            }
            let what = if audit {
                "with the audit trail"
            } else {
                "data only"
            };
            say!(
                "whole-trial export from PostgreSQL, every format, {what}: {:.2} s (read and replay {:.2} s;{each}) {} subjects",
                took.as_secs_f64(),
                read.as_secs_f64(),
                report.subjects
            );
            f.put(
                &format!("export, all formats, {what} (ms)"),
                took.as_secs_f64() * 1e3,
                Kind::Trial,
            );
        }
        let _ = std::fs::remove_dir_all(dir.path().join("export"));

        // 8. The dashboard: the fold at start, then warm.
        let t = Instant::now();
        server.restart()?;
        let session = web_session(&server.url)?;
        session.get("/web/")?;
        let fold = t.elapsed();
        let (rss, peak) = memory_mib(server.pid());
        say!(
            "dashboard after a server restart (fold of every change): {:.2} s; server memory {rss} MiB (peak {peak} MiB)",
            fold.as_secs_f64()
        );
        f.put(
            "dashboard after restart (ms)",
            fold.as_secs_f64() * 1e3,
            Kind::Trial,
        );
        let mut times = Vec::new();
        for _ in 0..50 {
            times.push(session.get("/web/")?.0);
        }
        times.sort();
        say!(
            "dashboard warm: p50 {}, p95 {}, p99 {} (goal p95 <= 200 ms)",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.95)),
            ms(percentile(&times, 0.99))
        );
        f.put(
            "dashboard warm p95 (ms)",
            percentile(&times, 0.95).as_secs_f64() * 1e3,
            Kind::Trial,
        );
        all.push((size, f));
    }

    // 9. One very large site.
    if args.large_site > 0 {
        let site = "LG".to_string();
        let t = Instant::now();
        let pushed = bench.load_sites(&[(site.clone(), args.large_site)])?;
        say!(
            "very large site: {} subjects, {pushed} changes pushed in {:.1} s",
            args.large_site,
            t.elapsed().as_secs_f64()
        );
        rt.block_on(sqlx::raw_sql("VACUUM ANALYZE changes").execute(&pool))
            .map_err(fail)?;
        let (took, pulled) = bench.first_full_sync(&site, "large")?;
        say!(
            "first full sync of the very large site onto a new laptop: {pulled} changes in {:.2} s (goal <= 10 s)",
            took.as_secs_f64()
        );
    }
    drop(server);
    print_table(&all);
    Ok(())
}

/// `devices` devices spread over the first `sites` sites, each in step with its site, sync
/// three rounds at once (ask, push one change, pull).
fn many_devices(
    rt: &tokio::runtime::Runtime,
    pool: &sqlx::PgPool,
    server: &Server,
    staff: &Staff,
    sites: usize,
    devices: usize,
    f: &mut Figures,
) -> Result<(), Failure> {
    let mut all = Vec::with_capacity(devices);
    for i in 0..devices {
        let site = site_code(i % sites);
        let mut d = enrol_device(rt, pool, &server.url, &site, staff)?;
        d.cursor = site_head(rt, pool, &site);
        all.push(d);
    }
    let barrier = Arc::new(Barrier::new(devices + 1));
    let staff = Arc::new(Staff::new());
    let mut handles = Vec::new();
    for mut d in all {
        let barrier = Arc::clone(&barrier);
        let staff = Arc::clone(&staff);
        handles.push(std::thread::spawn(move || {
            let mut times = Vec::new();
            let mut errors = Vec::new();
            let subject = format!("{}-B0001", d.site);
            for round in 0..3i64 {
                let c = d.next_change(&staff, &subject, 70 + round);
                barrier.wait();
                let t = Instant::now();
                match d.round(c) {
                    Ok(()) => times.push(t.elapsed()),
                    Err(e) => {
                        // A change the server did not take breaks this device's chain.
                        errors.push(e.to_string());
                        break;
                    }
                }
            }
            (times, errors)
        }));
    }
    let cpu0 = (
        cpu_seconds(server.pid()),
        postgres_cpu_seconds(),
        cpu_seconds(std::process::id()),
    );
    let t = Instant::now();
    for _ in 0..3 {
        barrier.wait();
    }
    let mut times = Vec::new();
    let mut errors = Vec::new();
    for h in handles {
        let (t, e) = h
            .join()
            .map_err(|_| Failure("a device thread failed".into()))?;
        times.extend(t);
        errors.extend(e);
    }
    let wall = t.elapsed().as_secs_f64();
    let cpu = (
        cpu_seconds(server.pid()) - cpu0.0,
        postgres_cpu_seconds() - cpu0.1,
        cpu_seconds(std::process::id()) - cpu0.2,
    );
    let (rss, peak) = memory_mib(server.pid());
    times.sort();
    let p99 = percentile(&times, 0.99);
    say!(
        "{devices} devices syncing at once over {sites} sites (3 rounds of one request: ask + push one change + pull): p50 {}, p99 {}, max {}, {} errors (goal p99 <= 500 ms, no error); CPU: server {:.1} s, PostgreSQL {:.1} s, the devices (this process, signing their changes too) {:.1} s, over {wall:.1} s; server memory {rss} MiB (peak {peak} MiB)",
        ms(percentile(&times, 0.5)),
        ms(p99),
        ms(*times.last().unwrap_or(&Duration::ZERO)),
        errors.len(),
        cpu.0,
        cpu.1,
        cpu.2,
    );
    if let Some(e) = errors.first() {
        say!("  first error: {e}");
    }
    f.put(
        &format!("{devices} devices at once p99 (ms)"),
        p99.as_secs_f64() * 1e3,
        Kind::Info,
    );
    f.put(
        &format!("{devices} devices at once errors"),
        errors.len() as f64,
        Kind::Info,
    );
    Ok(())
}

/// The sizes side by side; per-site figures against 1× (goal: within 1.2×), whole-trial ones
/// against 1× scaled by the changes (goal: within 1.5×).
fn print_table(all: &[(usize, Figures)]) {
    let Some((base_size, base)) = all.first() else {
        return;
    };
    let changes_of = |f: &Figures| {
        f.rows
            .iter()
            .find(|(n, _, _)| n == "changes (millions)")
            .map_or(1.0, |r| r.1)
    };
    let base_changes = changes_of(base);
    println!();
    let mut header = format!("{:<48}", "");
    for (size, _) in all {
        let _ = write!(header, "{:>12}", format!("{size}x"));
    }
    let _ = write!(header, "   largest size against {base_size}x");
    println!("{header}");
    for (i, (name, v0, kind)) in base.rows.iter().enumerate() {
        let mut line = format!("{name:<48}");
        let mut last = (*v0, base_changes);
        for (_, f) in all {
            let v = f.rows.get(i).map_or(f64::NAN, |r| r.1);
            let _ = write!(line, "{v:>12.1}");
            last = (v, changes_of(f));
        }
        let verdict = match kind {
            Kind::Info => String::new(),
            Kind::PerSite => {
                let ratio = last.0 / v0;
                format!(
                    "   {ratio:.2}x of {base_size}x (goal <= 1.2x): {}",
                    if ratio <= 1.2 { "met" } else { "NOT MET" }
                )
            }
            Kind::Trial => {
                let linear = v0 * last.1 / base_changes;
                let ratio = last.0 / linear;
                format!(
                    "   {ratio:.2}x of linear {:.0} (goal <= 1.5x): {}",
                    linear,
                    if ratio <= 1.5 { "met" } else { "NOT MET" }
                )
            }
        };
        println!("{line}{verdict}");
    }
}
