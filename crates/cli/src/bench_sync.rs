//! `ecrf bench-sync`: what sync costs, against a real PostgreSQL and the real server (run in
//! this process on a loopback port), with real encrypted stores:
//! - the first full sync of a site (60 subjects × ECMO form + 30 daily logs) onto a new laptop,
//! - a one-item sync (save one value on one laptop, sync it, receive it on another),
//! - p50/p99 of one sync round of 200 devices at once (10 per site).

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use ecrf_app::demo::{DEMO_PASSWORD, daily_log, ecmo_form, save_sample};
use ecrf_core::{FormKey, Role};
use ecrf_store::{Change, CreateOptions, Store};
use ecrf_sync::Client;

use crate::{Failure, study};

/// Benchmark size.
#[derive(clap::Args)]
pub struct BenchSyncArgs {
    /// PostgreSQL URL of a server the benchmark may create a database on.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Subjects of the site.
    #[arg(long, default_value_t = 60)]
    subjects: usize,
    /// Daily logs per subject.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Devices syncing at once.
    #[arg(long, default_value_t = 200)]
    devices: usize,
}

pub(crate) fn fail(e: impl std::fmt::Display) -> Failure {
    Failure(e.to_string())
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A laptop's store at `dir/name.ecrf`, enrolled with a code `code` makes for its device id.
fn laptop(
    dir: &std::path::Path,
    name: &str,
    url: &str,
    code: &dyn Fn(&str) -> Result<String, Failure>,
) -> Result<Store, Failure> {
    let path = dir.join(format!("{name}.ecrf"));
    let (mut admin, _) = Store::create(
        &path,
        study()?,
        CreateOptions {
            site: "01".into(),
            admin_user: "admin".into(),
            admin_name: "Admin".into(),
            admin_password: DEMO_PASSWORD.into(),
        },
    )?;
    admin.add_user("nurse", "Nurse", Role::Nurse, DEMO_PASSWORD)?;
    drop(admin);
    let store = Store::open(&path, study()?, "nurse", DEMO_PASSWORD)?;
    ecrf_sync::enrol(&store, url, &code(store.device_id())?, None).map_err(fail)?;
    Ok(store)
}

/// A virtual device's next change (one daily-log value), chained and hashed as a store would.
fn next_change(device: &str, seq: i64, prev: &str, subject: &str, value: i64) -> Change {
    let mut c = Change {
        seq: 0,
        change_id: uuid::Uuid::now_v7().to_string(),
        device: device.to_string(),
        device_seq: seq,
        kind: ecrf_log::ChangeKind::ItemSet,
        subject: Some(subject.to_string()),
        form: Some("DLY#1".into()),
        item: Some("HR".into()),
        old_value: None,
        new_value: Some(format!("{{\"int\":{value}}}")),
        user: "nurse".into(),
        role: "nurse".into(),
        utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        local_offset: "+08:00".into(),
        reason: None,
        warning: None,
        prev_hash: prev.to_string(),
        hash: String::new(),
        base: Some("[]".into()),
        signature: None,
        source: None,
    };
    c.hash = c.compute_hash();
    bench_nurse().sign(&mut c);
    c
}

/// The virtual devices' nurse: one person, one key, registered at each device's enrolment.
fn bench_nurse() -> ecrf_log::AuthorKey {
    ecrf_log::AuthorKey::from_seed(&[5; 32])
}

/// One device's sync round: ask, push one change, pull to the end.
fn one_round(
    client: &Client,
    site: &str,
    c: &Change,
    cursor: &mut i64,
) -> Result<(), ecrf_sync::SyncError> {
    client.device()?;
    client.push(site, vec![c.clone()])?;
    loop {
        let page = client.pull(site, *cursor, 1000)?;
        *cursor = page.cursor;
        if !page.more {
            return Ok(());
        }
    }
}

/// A database of the benchmark's own on the PostgreSQL server of `url`, named `prefix_<hex>`:
/// its URL.
pub(crate) fn fresh_database(
    rt: &tokio::runtime::Runtime,
    url: &str,
    prefix: &str,
) -> Result<String, Failure> {
    let mut rnd = [0u8; 4];
    getrandom::fill(&mut rnd).map_err(fail)?;
    let name = format!("{prefix}_{:08x}", u32::from_le_bytes(rnd));
    let base = url
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .ok_or_else(|| Failure("--database-url: expected …/dbname".into()))?;
    rt.block_on(async {
        let admin = sqlx::PgPool::connect(url).await?;
        // The name is made here from a fixed prefix and hex digits only.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await?;
        Ok::<_, sqlx::Error>(())
    })
    .map_err(fail)?;
    Ok(format!("{base}/{name}"))
}

/// `ecrf bench-sync`.
pub fn run(args: &BenchSyncArgs) -> Result<(), Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    let db_url = fresh_database(&rt, &args.database_url, "ecrf_bench")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(fail)?
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let opts = ecrf_server::ServeOptions {
        database_url: db_url.clone(),
        listen: ([127, 0, 0, 1], port).into(),
        tls: None,
        // 200 devices enrol from this one address within seconds.
        limits: ecrf_server::api::Limits {
            enrol_per_minute: u32::MAX,
            in_flight: 1024,
            ..ecrf_server::api::Limits::default()
        },
    };
    rt.spawn(async move {
        if let Err(e) = ecrf_server::serve(opts).await {
            eprintln!("server: {e}");
        }
    });
    let pool = rt
        .block_on(ecrf_server::db::connect(&db_url, 4))
        .map_err(fail)?;
    let probe = Client::new(&url, None).map_err(fail)?;
    let t = Instant::now();
    while probe.health().is_err() {
        if t.elapsed() > Duration::from_secs(30) {
            return Err(Failure("the server did not start".into()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let code = |site: &str, device: &str| {
        rt.block_on(ecrf_server::db::enrol_code(&pool, site, device, 1))
            .map_err(fail)
    };
    let code01 = |device: &str| code("01", device);
    rt.block_on(ecrf_server::db::add_site(&pool, "01", "Site 01"))
        .map_err(fail)?;

    // 1. A site's data on laptop A, pushed; then a new laptop B's first full sync.
    let dir = tempfile::tempdir().map_err(fail)?;
    let mut a = laptop(dir.path(), "a", &url, &code01)?;
    let start = NaiveDate::from_ymd_opt(2026, 3, 1).ok_or_else(|| Failure("date".into()))?;
    a.set_durable(false)?;
    let ecmo = FormKey {
        form: "ECMO".into(),
        repeat: None,
    };
    for n in 0..args.subjects {
        let s = a.new_subject()?;
        save_sample(&mut a, &s, &ecmo, &ecmo_form(start)).map_err(Failure)?;
        for day in 1..=args.days {
            let key = FormKey {
                form: "DLY".into(),
                repeat: Some(day),
            };
            save_sample(&mut a, &s, &key, &daily_log(n, start, day)).map_err(Failure)?;
        }
    }
    a.set_durable(true)?;
    a.checkpoint()?;
    let ca = ecrf_sync::client::client_of(&a).map_err(fail)?;
    let t = Instant::now();
    let pushed = ecrf_sync::sync(&mut a, &ca, &mut |_| {}).map_err(fail)?;
    let push_time = t.elapsed();
    let mut b = laptop(dir.path(), "b", &url, &code01)?;
    let cb = ecrf_sync::client::client_of(&b).map_err(fail)?;
    let t = Instant::now();
    let first = ecrf_sync::sync(&mut b, &cb, &mut |_| {}).map_err(fail)?;
    let first_time = t.elapsed();
    say!(
        "first full sync of a site ({} subjects x {} daily logs): {} changes received and applied in {} (goal <= 2000 ms); pushing them from the laptop that made them took {} ({} changes)",
        args.subjects,
        args.days,
        first.pulled,
        ms(first_time),
        ms(push_time),
        pushed.pushed
    );

    // 2. One item: saved on A, synced by A, received by B.
    let subject = a.subjects()?[0].clone();
    let day1 = FormKey {
        form: "DLY".into(),
        repeat: Some(1),
    };
    let mut one = Vec::new();
    for i in 0..30 {
        let value = format!("{}", 60 + i % 40);
        a.save(
            &subject,
            &day1,
            &[("HR", value.as_str())],
            &ecrf_store::SaveOptions {
                reason: Some("bench".into()),
                confirm_warnings: true,
            },
        )?;
        let t = Instant::now();
        ecrf_sync::sync(&mut a, &ca, &mut |_| {}).map_err(fail)?;
        let r = ecrf_sync::sync(&mut b, &cb, &mut |_| {}).map_err(fail)?;
        one.push(t.elapsed());
        if r.pulled != 1 {
            return Err(Failure(format!("one-item sync received {}", r.pulled)));
        }
    }
    one.sort();
    say!(
        "one-item sync (A sends one value, B receives it; two full syncs): p50 {}, p99 {} over {} (goal <= 50 ms)",
        ms(percentile(&one, 0.5)),
        ms(percentile(&one, 0.99)),
        one.len()
    );

    // 3. Many devices at once: 10 per site, each round = ask, push one change, pull.
    let sites = args.devices.div_ceil(10);
    for s in 0..sites {
        rt.block_on(ecrf_server::db::add_site(&pool, &format!("S{s}"), "bench"))
            .map_err(fail)?;
    }
    let mut devices = Vec::new();
    for i in 0..args.devices {
        let site = format!("S{}", i / 10);
        let device = uuid::Uuid::new_v4().to_string();
        let enrolled = probe
            .enrol(&ecrf_sync::wire::EnrolRequest {
                code: code(&site, &device)?,
                device: device.clone(),
                site: site.clone(),
                sealing_key: Some(ecrf_randomize::seal::public_key(&[7; 32])),
                users: vec![ecrf_sync::wire::EnrolUser {
                    username: "nurse".into(),
                    name: "Bench nurse".into(),
                    role: "nurse".into(),
                    public_keys: vec![bench_nurse().public_hex()],
                }],
                head_seq: 0,
                unlock_secret: None,
            })
            .map_err(fail)?;
        let client = Client::new(&url, None)
            .map_err(fail)?
            .with_token(&enrolled.token);
        let subject = format!("{site}-{}-0001", enrolled.subject_prefix);
        devices.push((client, site, device, subject));
    }
    let barrier = Arc::new(Barrier::new(args.devices));
    let mut handles = Vec::new();
    for (client, site, device, subject) in devices {
        let barrier = Arc::clone(&barrier);
        handles.push(std::thread::spawn(move || {
            let mut prev = ecrf_log::GENESIS.to_string();
            let mut cursor = 0i64;
            let mut times = Vec::new();
            let mut errors = 0usize;
            for round in 0..3i64 {
                let c = next_change(&device, round + 1, &prev, &subject, 70 + round);
                barrier.wait();
                let t = Instant::now();
                let ok = one_round(&client, &site, &c, &mut cursor);
                let took = t.elapsed();
                match ok {
                    Ok(()) => {
                        prev = c.hash.clone();
                        // The first round is each device's first sync; rounds 2-3 are timed.
                        if round > 0 {
                            times.push(took);
                        }
                    }
                    Err(e) => {
                        eprintln!("device {device}: {e}");
                        errors += 1;
                    }
                }
            }
            (times, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (t, e) = h
            .join()
            .map_err(|_| Failure("a device thread failed".into()))?;
        all.extend(t);
        errors += e;
    }
    all.sort();
    say!(
        "{} devices syncing at once ({} sites; each sync = ask + push one change + pull): p50 {}, p99 {}, max {}, {} errors (goal p99 <= 500 ms, no error)",
        args.devices,
        sites,
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
        ms(*all.last().unwrap_or(&Duration::ZERO)),
        errors
    );
    drop(pool);
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
