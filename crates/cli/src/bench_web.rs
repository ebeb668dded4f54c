//! `ecrf bench-web` (`make bench-web`): the coordinating centre's dashboard over ten times the
//! trial in a real PostgreSQL: 3,580 subjects (10 sites × 358) made by `bench_trial` (screened,
//! consented, randomized, ECMO and baseline forms, 30 daily logs, events, day-30 follow-up,
//! queries, signatures): every value a signed, chained change in the server's `changes` table
//! (loaded with COPY; `bench-scale` sends the same through the real push path), served
//! by the real `ecrf server` with its web view in this process on a loopback port, read over
//! real HTTP with a logged-in session.
//!
//! Prints: the load, the fold at start (every change read and folded, every subject
//! summarized), then p50/p95/p99 of the dashboard alone, of the dashboard right after a new
//! change arrived (the fold advanced by it), and of a subject's casebook page; the goal is a
//! dashboard p95 of 200 ms or less.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::Utc;
use ecrf_core::Role;
use ecrf_log::{AuthorKey, ChangeKind};

use crate::bench_trial::{Chain, Staff, change, site_changes};
use crate::{Failure, study};

/// Benchmark size.
#[derive(clap::Args)]
pub struct BenchWebArgs {
    /// PostgreSQL URL of a server the benchmark may create a database on.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Sites.
    #[arg(long, default_value_t = 10)]
    sites: usize,
    /// Subjects per site.
    #[arg(long, default_value_t = 358)]
    subjects: usize,
    /// Daily logs per subject.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Requests timed per measure.
    #[arg(long, default_value_t = 200)]
    requests: usize,
}

use crate::bench_sync::{fail, ms, percentile};

const PASSWORD: &str = "bench-web-data-manager-2026";

/// A chain's changes as CSV rows for COPY into `changes`.
fn csv_rows(chain: &Chain) -> Result<String, Failure> {
    let mut csv = String::new();
    for c in &chain.changes {
        let body = serde_json::to_string(c).map_err(fail)?;
        let _ = writeln!(
            csv,
            "{},{},{},{},{},\"{}\"",
            chain.site,
            c.change_id,
            c.device,
            c.device_seq,
            c.hash,
            body.replace('"', "\"\"")
        );
    }
    Ok(csv)
}

/// A tiny HTTP client with the session cookie.
pub(crate) struct Session {
    agent: ureq::Agent,
    base: String,
    cookie: String,
}

impl Session {
    fn log_in(base: &str) -> Result<Session, Failure> {
        Self::log_in_as(base, "dm", PASSWORD)
    }

    /// Logs in as `username`.
    pub(crate) fn log_in_as(
        base: &str,
        username: &str,
        password: &str,
    ) -> Result<Session, Failure> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        let mut page = agent
            .get(&format!("{base}/web/login"))
            .call()
            .map_err(fail)?;
        let pre = page
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("ecrf_login="))
            .and_then(|c| c.split(';').next())
            .ok_or_else(|| Failure("no login cookie".into()))?
            .to_string();
        let _ = page.body_mut().read_to_string();
        let res = agent
            .post(&format!("{base}/web/login"))
            .header("Cookie", &format!("ecrf_login={pre}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(format!(
                "username={username}&password={password}&csrf={pre}"
            ))
            .map_err(fail)?;
        let cookie = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("ecrf_web="))
            .and_then(|c| c.split(';').next())
            .ok_or_else(|| Failure(format!("login refused: {}", res.status())))?
            .to_string();
        Ok(Session {
            agent,
            base: base.to_string(),
            cookie,
        })
    }

    /// GET `path`; the time and the body's length.
    pub(crate) fn get(&self, path: &str) -> Result<(Duration, usize), Failure> {
        let t = Instant::now();
        let mut res = self
            .agent
            .get(&format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .call()
            .map_err(fail)?;
        let body = res.body_mut().read_to_string().map_err(fail)?;
        let took = t.elapsed();
        if res.status() != 200 {
            return Err(Failure(format!("{path}: {} {body}", res.status())));
        }
        Ok((took, body.len()))
    }
}

fn report(name: &str, mut times: Vec<Duration>) -> Duration {
    times.sort();
    let p95 = percentile(&times, 0.95);
    println!(
        "{name:<44} p50 {:>9}  p95 {:>9}  p99 {:>9}  max {:>9}",
        ms(percentile(&times, 0.5)),
        ms(p95),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap_or(&Duration::ZERO))
    );
    p95
}

/// Runs the benchmark.
pub fn run(args: &BenchWebArgs) -> Result<(), Failure> {
    let study = study()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    let db_url = crate::bench_sync::fresh_database(&rt, &args.database_url, "ecrf_bench_web")?;
    let pool = rt
        .block_on(ecrf_server::db::connect(&db_url, 8))
        .map_err(fail)?;

    // Sites, a data manager registered at every site, a nurse's key per site.
    let dm_key = AuthorKey::from_seed(&[7; 32]);
    let cred = ecrf_server::db::users::Credentials {
        verifier: ecrf_identity::verifier(PASSWORD).map_err(fail)?,
        escrow: ecrf_identity::escrow(PASSWORD, &dm_key).map_err(fail)?,
        public_key: dm_key.public_hex(),
    };
    let staff = Staff::new();
    let sites: Vec<String> = (1..=args.sites).map(|s| format!("{s:02}")).collect();
    let today = Utc::now().date_naive();
    let started = Instant::now();
    let mut total = 0usize;
    for site in &sites {
        rt.block_on(async {
            ecrf_server::db::add_site(&pool, site, &format!("Hospital {site}")).await?;
            ecrf_server::db::users::add_user(
                &pool,
                site,
                "dm",
                "Data Manager",
                Role::DataManager,
                &cred,
            )
            .await
        })
        .map_err(fail)?;
        let device = format!("bench-{site}");
        let mut chain = Chain::new(site, &device, &staff);
        site_changes(&study, &mut chain, 1, args.subjects, args.days, today)?;
        total += chain.changes.len();
        let csv = csv_rows(&chain)?;
        rt.block_on(async {
            sqlx::query(
                "INSERT INTO devices (device, site, device_no, token_hash, last_hash, acked, \
                 last_sync, pulled_seq) VALUES ($1, $2, 1, $3, $4, $5, now(), 0)",
            )
            .bind(&device)
            .bind(site)
            .bind(format!("bench token {device}"))
            .bind(&chain.prev)
            .bind(chain.seq)
            .execute(&pool)
            .await?;
            let mut conn = pool.acquire().await?;
            let mut copy = conn
                .copy_in_raw(
                    "COPY changes (site, change_id, device, device_seq, hash, body) \
                     FROM STDIN WITH (FORMAT csv)",
                )
                .await?;
            copy.send(csv.as_bytes()).await?;
            copy.finish().await?;
            sqlx::query(
                "UPDATE devices SET pulled_seq = (SELECT max(seq) FROM changes) WHERE device = $1",
            )
            .bind(&device)
            .execute(&pool)
            .await?;
            Ok::<_, sqlx::Error>(())
        })
        .map_err(fail)?;
    }
    rt.block_on(sqlx::query("ANALYZE").execute(&pool))
        .map_err(fail)?;
    println!(
        "loaded {} sites, {} subjects, {total} signed changes into PostgreSQL in {:.1} s",
        args.sites,
        args.sites * args.subjects,
        started.elapsed().as_secs_f64()
    );

    // The real server with its web view.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(fail)?
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let opts = ecrf_server::ServeOptions {
        database_url: db_url.clone(),
        listen: ([127, 0, 0, 1], port).into(),
        tls: None,
        limits: ecrf_server::api::Limits::default(),
    };
    let web_study = std::sync::Arc::new(study.as_ref().clone());
    let fold_started = Instant::now();
    rt.spawn(async move {
        let serve = ecrf_server::serve_with(opts, move |pool| {
            ecrf_web::router(pool, ecrf_web::WebOptions::default(), web_study)
        });
        if let Err(e) = serve.await {
            eprintln!("server: {e}");
        }
    });
    let t = Instant::now();
    let session = loop {
        match Session::log_in(&url) {
            Ok(s) => break s,
            Err(e) if t.elapsed() > Duration::from_secs(60) => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    // The first dashboard waits for the fold the server started with.
    let (_, size) = session.get("/web/")?;
    println!(
        "fold at start (read, fold, summarize {} subjects):  {:.1} s; dashboard {} KiB",
        args.sites * args.subjects,
        fold_started.elapsed().as_secs_f64(),
        size / 1024
    );
    if let Some(rss) = resident_mib() {
        println!("server process resident memory after the fold:  {rss} MiB");
    }
    let mut dashboard = Vec::with_capacity(args.requests);
    for _ in 0..args.requests {
        dashboard.push(session.get("/web/")?.0);
    }
    println!();
    let p95 = report(&format!("dashboard (all {} sites)", args.sites), dashboard);

    // A query is raised (a change arrives) before each request: the fold advances by it.
    let mut after_change = Vec::with_capacity(args.requests);
    for i in 0..args.requests {
        let site = &sites[i % sites.len()];
        let subject = format!("{site}-B{:04}", 1 + i % args.subjects);
        let c = rt
            .block_on(async {
                let body = ecrf_log::Body::QueryRaised(ecrf_log::body::QueryStep {
                    query: uuid::Uuid::now_v7().to_string(),
                    text: format!("Heart rate on day 1: please check the chart ({i})."),
                    auto: false,
                });
                let c = change(
                    ChangeKind::QueryRaised,
                    Some(&subject),
                    Some("DLY#1"),
                    Some("HR"),
                    body.new_value(),
                );
                ecrf_server::db::users::append_as(&pool, site, c, ("dm", "data_manager", &dm_key))
                    .await
            })
            .map_err(fail)?;
        let _ = c;
        after_change.push(session.get("/web/")?.0);
    }
    let p95_change = report("dashboard, a new change before each", after_change);
    let mut subject_pages = Vec::with_capacity(args.requests);
    for i in 0..args.requests {
        let site = &sites[i % sites.len()];
        let subject = format!("{site}-B{:04}", 1 + (i * 7) % args.subjects);
        subject_pages.push(
            session
                .get(&format!("/web/sites/{site}/subjects/{subject}"))?
                .0,
        );
    }
    report(
        &format!("subject casebook page ({} daily logs)", args.days),
        subject_pages,
    );
    let mut site_pages = Vec::with_capacity(args.requests / 4);
    for i in 0..args.requests / 4 {
        site_pages.push(
            session
                .get(&format!("/web/sites/{}", sites[i % sites.len()]))?
                .0,
        );
    }
    report(
        &format!("site page ({} subjects)", args.subjects),
        site_pages,
    );
    println!();
    let worst = p95.max(p95_change);
    println!(
        "goal: dashboard p95 <= 200 ms with a 10x trial: {} ({})",
        if worst <= Duration::from_millis(200) {
            "met"
        } else {
            "NOT MET"
        },
        ms(worst)
    );
    drop(rt);
    Ok(())
}

/// This process's resident memory (Linux), MiB.
fn resident_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
