//! `ecrf bench`: what one durable save of a daily log costs at full trial size, encrypted
//! (SQLCipher) and plain (the same SQLite without a key), through the same save path.
//!
//! `--runs N` repeats the timed saves N times (each run new day-0 logs of other subjects) and
//! prints each run's p50/p99; `--shipped-only` fills only the store as shipped (encrypted,
//! signed) and then times what the desktop does first on it: a login and the subject list
//! (`make bench-laptop`: one very large site, 600 subjects, kept with `--dir`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use ecrf_core::{FormKey, Role, Study};
use ecrf_store::{CreateOptions, Store};

use ecrf_app::demo::{DEMO_PASSWORD, daily_log, ecmo_form, save_sample};

/// Benchmark size.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Subjects in the store.
    #[arg(long, default_value_t = 358)]
    subjects: usize,
    /// Daily logs per subject (days 1..=N).
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Timed saves (each a new day-0 log of a subject).
    #[arg(long, default_value_t = 358)]
    saves: usize,
    /// Runs of timed saves; each run saves `--saves` day-0 logs of subjects no earlier run
    /// used (so runs x saves <= subjects).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Only the store as shipped (encrypted, signed): no comparison stores, and the desktop's
    /// first work on it timed (login, subject list).
    #[arg(long)]
    shipped_only: bool,
    /// Folder for the stores (default: a temporary folder, removed afterwards); with
    /// `--shipped-only` the filled store stays there as `encrypted.ecrf` (users admin and
    /// nurse, the demo password) for the desktop benchmark and `ecrf store check`.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

/// What one store's timed saves cost.
#[derive(Default)]
struct Figures {
    /// Wall time of each save, sorted once the run is over.
    times: Vec<Duration>,
    /// Wall time of each save per run, in save order.
    runs: Vec<Vec<Duration>>,
    /// CPU time of the saving thread for each save (the part the disk does not explain).
    cpu: Vec<Duration>,
    idle: Vec<Duration>,
    populate: Duration,
    bytes: u64,
    items: usize,
}

impl Figures {
    fn finish(&mut self) {
        self.times.sort();
        self.cpu.sort();
        self.idle.sort();
    }
}

/// A store filled to trial size, ready for the timed saves.
struct Filled {
    store: Store,
    subjects: Vec<String>,
    path: std::path::PathBuf,
    populate: Duration,
}

/// CPU time this thread has run so far (`CLOCK_THREAD_CPUTIME_ID`: exact, unlike the
/// scheduler's tick-grained counters).
#[cfg(unix)]
fn thread_cpu() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// CPU time this thread has run so far on Windows: `GetThreadTimes`, kernel + user time in
/// 100 ns units (Windows updates it at the scheduler's tick, so single saves read coarser).
#[cfg(windows)]
fn thread_cpu() -> Option<Duration> {
    use std::ffi::c_void;
    #[repr(C)]
    #[derive(Default)]
    struct FileTime {
        low: u32,
        high: u32,
    }
    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn GetCurrentThread() -> *mut c_void;
        fn GetThreadTimes(
            thread: *mut c_void,
            creation: *mut FileTime,
            exit: *mut FileTime,
            kernel: *mut FileTime,
            user: *mut FileTime,
        ) -> i32;
    }
    let (mut creation, mut exit) = (FileTime::default(), FileTime::default());
    let (mut kernel, mut user) = (FileTime::default(), FileTime::default());
    // SAFETY: GetCurrentThread returns a pseudo-handle valid in this thread; the four
    // FILETIMEs are valid and writable for the duration of the call.
    let ok = unsafe {
        GetThreadTimes(
            GetCurrentThread(),
            &mut creation,
            &mut exit,
            &mut kernel,
            &mut user,
        )
    };
    let hundred_ns = |t: &FileTime| (u64::from(t.high) << 32) | u64::from(t.low);
    (ok != 0).then(|| Duration::from_nanos((hundred_ns(&kernel) + hundred_ns(&user)) * 100))
}

/// The disk's own floor: p50 and p99 of writing 4 KiB and fsyncing it, measured now, beside
/// the stores, so the save figures can be read against what the disk itself costs.
fn disk_floor(dir: &Path) -> Result<(Duration, Duration), String> {
    use std::io::{Seek, SeekFrom, Write};
    let path = dir.join("fsync-probe.bin");
    let mut f = std::fs::File::create(&path).map_err(|e| e.to_string())?;
    let block = [0x5au8; 4096];
    let mut times = Vec::with_capacity(200);
    for i in 0..200u64 {
        f.seek(SeekFrom::Start(i * 4096))
            .map_err(|e| e.to_string())?;
        f.write_all(&block).map_err(|e| e.to_string())?;
        let t = Instant::now();
        f.sync_data().map_err(|e| e.to_string())?;
        times.push(t.elapsed());
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
    times.sort();
    Ok((percentile(&times, 0.5), percentile(&times, 0.99)))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn fill(
    dir: &Path,
    study: Arc<Study>,
    (encrypted, signed): (bool, bool),
    args: &BenchArgs,
) -> Result<Filled, String> {
    let path = dir.join(match (encrypted, signed) {
        (true, true) => "encrypted.ecrf",
        (true, false) => "encrypted-unsigned.ecrf",
        (false, _) => "plain.ecrf",
    });
    let opts = CreateOptions {
        site: "01".into(),
        admin_user: "admin".into(),
        admin_name: "Bench".into(),
        admin_password: DEMO_PASSWORD.into(),
    };
    let mut admin = if encrypted {
        Store::create(&path, Arc::clone(&study), opts).map(|(s, _)| s)
    } else {
        Store::create_unencrypted_for_benchmark(&path, Arc::clone(&study), opts)
    }
    .map_err(|e| e.to_string())?;
    admin
        .add_user("nurse", "Bench nurse", Role::Nurse, DEMO_PASSWORD)
        .map_err(|e| e.to_string())?;
    drop(admin);
    let mut store = if encrypted {
        Store::open(&path, Arc::clone(&study), "nurse", DEMO_PASSWORD)
    } else {
        Store::open_unencrypted_for_benchmark(&path, Arc::clone(&study), "nurse")
    }
    .map_err(|e| e.to_string())?;
    if !signed {
        store.without_signing_for_benchmark();
    }

    let start = bench_start()?;
    let ecmo = FormKey {
        form: "ECMO".into(),
        repeat: None,
    };
    let t0 = Instant::now();
    store.set_durable(false).map_err(|e| e.to_string())?;
    let mut subjects = Vec::with_capacity(args.subjects);
    for n in 0..args.subjects {
        let s = store.new_subject().map_err(|e| e.to_string())?;
        save_sample(&mut store, &s, &ecmo, &ecmo_form(start))?;
        for day in 1..=args.days {
            let key = FormKey {
                form: "DLY".into(),
                repeat: Some(day),
            };
            save_sample(&mut store, &s, &key, &daily_log(n, start, day))?;
        }
        subjects.push(s);
        if (n + 1) % 50 == 0 {
            eprintln!(
                "  {} store: {}/{} subjects filled",
                if encrypted { "encrypted" } else { "plain" },
                n + 1,
                args.subjects
            );
        }
    }
    store.set_durable(true).map_err(|e| e.to_string())?;
    store.checkpoint().map_err(|e| e.to_string())?;
    Ok(Filled {
        store,
        subjects,
        path,
        populate: t0.elapsed(),
    })
}

fn bench_start() -> Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(2026, 3, 1).ok_or_else(|| "bad date".to_string())
}

/// One timed durable save of subject `n`'s day-0 log, then the idle work the app does after
/// answering a save (timed apart: it is not part of the save).
fn timed_save(filled: &mut Filled, n: usize, figures: &mut Figures) -> Result<(), String> {
    let day0 = FormKey {
        form: "DLY".into(),
        repeat: Some(0),
    };
    let values = daily_log(n, bench_start()?, 0);
    figures.items = values.len();
    let cpu0 = thread_cpu();
    let t = Instant::now();
    save_sample(&mut filled.store, &filled.subjects[n], &day0, &values)?;
    let took = t.elapsed();
    figures.times.push(took);
    if let Some(run) = figures.runs.last_mut() {
        run.push(took);
    }
    if let (Some(a), Some(b)) = (cpu0, thread_cpu()) {
        figures.cpu.push(b.saturating_sub(a));
    }
    let c = Instant::now();
    filled.store.idle().map_err(|e| e.to_string())?;
    figures.idle.push(c.elapsed());
    Ok(())
}

/// Runs the benchmark and prints the figures.
pub fn run(args: &BenchArgs, study: Arc<Study>) -> Result<(), String> {
    if args.subjects == 0
        || args.saves == 0
        || args.runs == 0
        || args.saves.saturating_mul(args.runs) > args.subjects
    {
        return Err(
            "--subjects, --saves and --runs must be at least 1, and --saves x --runs at most --subjects"
                .into(),
        );
    }
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
            tmp.path().to_path_buf()
        }
    };
    say!(
        "Saving one daily log into a store of {} subjects x {} daily logs (synchronous=FULL, WAL, {}-byte pages):",
        args.subjects,
        args.days,
        ecrf_store::keyring::NEW_STORE_PAGE_SIZE
    );
    let (floor50, floor99) = disk_floor(&dir)?;
    say!(
        "  disk floor (4 KiB write + fsync): p50 {}  p99 {}",
        ms(floor50),
        ms(floor99)
    );
    let (unlock, open) = crate::safety::login_figures(&dir, Arc::clone(&study))?;
    let kdf = ecrf_store::keyring::KdfParams::CURRENT;
    say!(
        "  one login: Argon2id unlock (m={} MiB, t={}, p={}) {}; whole open (unlock, key, tail check) {}",
        kdf.m_kib / 1024,
        kdf.t,
        kdf.p,
        ms(unlock),
        ms(open)
    );
    if args.shipped_only {
        return shipped_only(&dir, study, args);
    }
    let mut enc_store = fill(&dir, Arc::clone(&study), (true, true), args)?;
    let mut unsigned_store = fill(&dir, Arc::clone(&study), (true, false), args)?;
    let mut plain_store = fill(&dir, study, (false, false), args)?;
    // The stores' saves take turns (and which goes first rotates too), so that whatever else
    // the machine is doing weighs on each alike and the ratios compare like with like.
    let (mut enc, mut unsigned, mut plain) =
        (Figures::default(), Figures::default(), Figures::default());
    for run in 0..args.runs {
        for f in [&mut enc, &mut unsigned, &mut plain] {
            f.runs.push(Vec::new());
        }
        for i in 0..args.saves {
            let n = run * args.saves + i;
            for k in 0..3 {
                match (i + k) % 3 {
                    0 => timed_save(&mut enc_store, n, &mut enc)?,
                    1 => timed_save(&mut unsigned_store, n, &mut unsigned)?,
                    _ => timed_save(&mut plain_store, n, &mut plain)?,
                }
            }
        }
    }
    for (filled, figures) in [
        (enc_store, &mut enc),
        (unsigned_store, &mut unsigned),
        (plain_store, &mut plain),
    ] {
        figures.populate = filled.populate;
        let path = filled.path.clone();
        drop(filled);
        figures.bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        figures.finish();
    }
    if enc.times.is_empty() || plain.times.is_empty() || unsigned.times.is_empty() {
        return Err("no saves were timed".into());
    }
    for (name, f) in [
        ("encrypted, signed (as shipped)", &enc),
        ("encrypted, not signed         ", &unsigned),
        ("plain SQLite, not signed      ", &plain),
    ] {
        say!(
            "  {name}: p50 {}  p99 {}  max {}  (cpu p50 {}; {} saves of {} items; filled in {:.1} s; file {:.1} MB; longest idle checkpoint {})",
            ms(percentile(&f.times, 0.5)),
            ms(percentile(&f.times, 0.99)),
            ms(*f.times.last().unwrap_or(&Duration::ZERO)),
            if f.cpu.is_empty() {
                "n/a".to_string()
            } else {
                ms(percentile(&f.cpu, 0.5))
            },
            args.saves,
            f.items,
            f.populate.as_secs_f64(),
            f.bytes as f64 / 1e6,
            ms(*f.idle.last().unwrap_or(&Duration::ZERO))
        );
    }
    if args.runs > 1 {
        say!("  encrypted, signed, per run: {}", per_run(&enc.runs));
    }
    let ratio = |a: &[Duration], b: &[Duration], p: f64| {
        percentile(a, p).as_secs_f64() / percentile(b, p).as_secs_f64()
    };
    // Encryption's cost, like for like: both without signatures.
    let r50 = ratio(&unsigned.times, &plain.times, 0.5);
    let r99 = ratio(&unsigned.times, &plain.times, 0.99);
    let cpu = if enc.cpu.is_empty() || plain.cpu.is_empty() {
        String::new()
    } else {
        format!("; cpu p50 {:.2}", ratio(&unsigned.cpu, &plain.cpu, 0.5))
    };
    say!("  ratio encrypted/plain (both not signed): p50 {r50:.2}  p99 {r99:.2}{cpu}");
    say!(
        "  signing each change (Ed25519): p50 {:+.3} ms, p99 {:+.3} ms per save (signed minus not signed)",
        (percentile(&enc.times, 0.5).as_secs_f64()
            - percentile(&unsigned.times, 0.5).as_secs_f64())
            * 1e3,
        (percentile(&enc.times, 0.99).as_secs_f64()
            - percentile(&unsigned.times, 0.99).as_secs_f64())
            * 1e3
    );
    let p99 = percentile(&enc.times, 0.99);
    say!(
        "  goals: p99 <= 10 ms (encrypted, signed): {}; encrypted/plain <= 1.3 (p50): {}",
        if p99 <= Duration::from_millis(10) {
            "met"
        } else {
            "NOT met"
        },
        if r50 <= 1.3 { "met" } else { "NOT met" }
    );
    Ok(())
}

/// Each run's p50 / p99 (`p50/p99 ms`), in run order.
fn per_run(runs: &[Vec<Duration>]) -> String {
    runs.iter()
        .map(|r| {
            let mut r = r.clone();
            r.sort();
            format!(
                "{:.2}/{:.2}",
                percentile(&r, 0.5).as_secs_f64() * 1e3,
                percentile(&r, 0.99).as_secs_f64() * 1e3
            )
        })
        .collect::<Vec<_>>()
        .join("  ")
}

/// `--shipped-only`: the store as shipped, filled, its timed saves run by run, then what the
/// desktop does first on it, timed through `ecrf_app::App` as the window calls it: a login
/// (Argon2id unlock, open, tail check) and the subject list (every subject's schedule status).
fn shipped_only(dir: &Path, study: Arc<Study>, args: &BenchArgs) -> Result<(), String> {
    let mut filled = fill(dir, study, (true, true), args)?;
    let mut figures = Figures::default();
    for run in 0..args.runs {
        figures.runs.push(Vec::new());
        for i in 0..args.saves {
            timed_save(&mut filled, run * args.saves + i, &mut figures)?;
        }
    }
    figures.populate = filled.populate;
    let path = filled.path.clone();
    let subjects = filled.subjects.len();
    drop(filled);
    figures.finish();
    if figures.times.is_empty() {
        return Err("no saves were timed".into());
    }
    let file = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = path.with_file_name(format!(
        "{}-wal",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
    ));
    let cpu = if figures.cpu.is_empty() {
        "n/a".to_string()
    } else {
        format!(
            "p50 {} p99 {}",
            ms(percentile(&figures.cpu, 0.5)),
            ms(percentile(&figures.cpu, 0.99))
        )
    };
    say!(
        "  encrypted, signed (as shipped): p50 {}  p99 {}  max {}  (cpu {cpu}; {} runs of {} saves of {} items; filled in {:.1} s)",
        ms(percentile(&figures.times, 0.5)),
        ms(percentile(&figures.times, 0.99)),
        ms(*figures.times.last().unwrap_or(&Duration::ZERO)),
        args.runs,
        args.saves,
        figures.items,
        figures.populate.as_secs_f64()
    );
    say!("  per run (p50/p99 ms): {}", per_run(&figures.runs));
    say!(
        "  store on disk: {:.1} MB ({} bytes; write-ahead log {} bytes)",
        (file(&path) + file(&wal)) as f64 / 1e6,
        file(&path),
        file(&wal)
    );
    let (mut login, mut list) = (Vec::new(), Vec::new());
    let mut rows = 0;
    for _ in 0..args.runs.max(3) {
        let mut app =
            ecrf_app::App::new(path.clone(), dir.join("no-demo.ecrf")).map_err(|e| e.message)?;
        let t = Instant::now();
        app.login("nurse", DEMO_PASSWORD).map_err(|e| e.message)?;
        login.push(t.elapsed());
        let t = Instant::now();
        rows = app.subjects().map_err(|e| e.message)?.len();
        list.push(t.elapsed());
    }
    login.sort();
    list.sort();
    say!(
        "  desktop's first work (ecrf_app::App, {} runs): login p50 {} max {}; subject list of {rows}/{subjects} subjects p50 {} max {}",
        list.len(),
        ms(percentile(&login, 0.5)),
        ms(*login.last().unwrap_or(&Duration::ZERO)),
        ms(percentile(&list, 0.5)),
        ms(*list.last().unwrap_or(&Duration::ZERO))
    );
    let p99 = percentile(&figures.times, 0.99);
    say!(
        "  goal: save p99 <= 3 ms (a laptop holding one very large site): {}",
        if p99 <= Duration::from_millis(3) {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
