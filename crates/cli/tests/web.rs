//! The coordinating centre's web view (issue 21) over the real `ecrf server`, a real
//! PostgreSQL and real laptop stores, spoken to in HTTP as a browser does: login and its
//! cookie, CSRF, lockout and the audit; site scoping (a monitor of sites 01 and 03 never sees
//! site 02); hostile values shown as text under a policy that forbids inline script; the
//! dashboard's CONSORT counts equal to `ecrf screening consort` summed over the sites; a query
//! raised on the web reaching the laptop at sync and its answer coming back; the laptops'
//! changes waiting, counted up to their cap.

mod server;
mod webclient;

use ecrf_core::query::QueryStep;
use ecrf_log::{Change, ChangeKind};
use ecrf_testkit::{NURSE, Site, eligible_subject, randomized_subject};
use server::{Device, Server, fresh_database, psql};
use webclient::Browser;

const MONITOR_PW: &str = "monitor-web-2026-kestrel";

fn add_user(server: &Server, site: &str, user: &str, role: &str, password: &str) {
    server.registered(site, user, role, password);
}

/// Sites 01, 02, 03; a monitor registered at 01 and 03.
fn setup() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&fresh_database(), dir.path());
    for s in ["01", "02", "03"] {
        server.add_site(s);
    }
    add_user(&server, "01", "mona", "monitor", MONITOR_PW);
    add_user(&server, "03", "mona", "monitor", MONITOR_PW);
    (dir, server)
}

const DM_PW: &str = "data-manager-web-2026-heron";

/// [`setup`], a data manager `dana` of site 01, and a laptop of site 01 with one subject
/// (screening number `scrno`) synced.
fn with_data_manager(scrno: &str) -> (tempfile::TempDir, Server, Device, String) {
    let (dir, server) = setup();
    add_user(&server, "01", "dana", "data_manager", DM_PW);
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let id = eligible_subject(&mut a.store, scrno);
    a.sync();
    (dir, server, a, id)
}

fn audit(server: &Server, event: &str) -> usize {
    psql(
        &server.database_url,
        &format!("SELECT count(*) FROM web_audit WHERE username = 'mona' AND event = '{event}'"),
    )
    .parse()
    .unwrap()
}

#[test]
fn login_sets_a_strict_cookie_and_a_monitor_sees_only_assigned_sites() {
    let (_dir, server) = setup();
    let mut b = Browser::new(&server.url());

    // Every page says what it forbids: no inline script, no framing.
    let login = b.get("/web/login");
    let csp = login.header("content-security-policy").unwrap().to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!login.body.contains("<script"), "a page carries script");

    // A login form posted without its token is refused, and nobody is logged in.
    let forged = b.post(
        "/web/login",
        &[("username", "mona"), ("password", MONITOR_PW)],
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(forged.body.contains("csrf"), "{}", forged.body);
    assert_eq!(b.get("/web/").status, 303, "no session: back to the login");

    // A wrong password: 401, said, audited.
    let wrong = b.log_in("mona", "not-the-password-at-all");
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("user name or password is wrong"),
        "{}",
        wrong.body
    );
    assert_eq!(audit(&server, "login.failed"), 1);

    let ok = b.log_in("mona", MONITOR_PW);
    assert_eq!(ok.status, 303, "{}", ok.body);
    let cookie = ok
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("ecrf_web="))
        .expect("a session cookie")
        .to_string();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert_eq!(audit(&server, "login"), 1);

    let home = b.get("/web/");
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("href=\"/web/sites/01\""));
    assert!(home.body.contains("href=\"/web/sites/03\""));
    assert!(!home.body.contains("/web/sites/02"), "site 02 is shown");
    assert!(home.body.contains("Hospital 01") && !home.body.contains("Hospital 02"));

    // Site 02's pages and API: refused.
    for path in [
        "/web/sites/02",
        "/web/sites/02/subjects/02-0001",
        "/web/api/sites/02/subjects",
    ] {
        let p = b.get(path);
        assert!(matches!(p.status, 403 | 404), "{path}: {}", p.status);
    }
    assert_eq!(b.get("/web/api/sites/01/subjects").status, 200);
    let csrf = b.get("/web/sites/01").csrf();
    let posted = b.post(
        "/web/sites/02/subjects/02-0001/queries",
        &[
            ("csrf", &csrf),
            ("form", "SCR"),
            ("item", "AGE"),
            ("text", "?"),
        ],
    );
    assert_eq!(posted.status, 403, "{}", posted.body);

    // Logging out ends the session.
    let out = b.post("/web/logout", &[("csrf", &csrf)]);
    assert_eq!(out.status, 303);
    assert_eq!(b.get("/web/").status, 303);
    assert_eq!(audit(&server, "logout"), 1);
}

#[test]
fn repeated_failures_lock_the_user_name_even_for_the_right_password() {
    let (_dir, server) = setup();
    let mut b = Browser::new(&server.url());
    for _ in 0..5 {
        assert_eq!(b.log_in("mona", "guess-guess-guess-guess").status, 401);
    }
    let locked = b.log_in("mona", MONITOR_PW);
    assert_eq!(locked.status, 401);
    assert!(locked.body.contains("locked"), "{}", locked.body);
    assert!(!b.cookies.contains_key("ecrf_web"));
    assert_eq!(audit(&server, "login.failed"), 5);
    assert_eq!(audit(&server, "login.refused"), 1);
}

/// The laptop's next change after `last`: an item set by its nurse, signed with her key (what
/// a tampered app could send: the server stores any text the study's item type allows).
fn item_change(
    last: &Change,
    key: &ecrf_log::AuthorKey,
    subject: &str,
    form: &str,
    item: &str,
    text: &str,
) -> Change {
    let mut c = last.clone();
    c.device_seq = last.device_seq + 1;
    c.prev_hash = last.hash.clone();
    c.change_id = uuid::Uuid::now_v7().to_string();
    c.kind = ChangeKind::ItemSet;
    c.subject = Some(subject.into());
    c.form = Some(form.into());
    c.item = Some(item.into());
    c.old_value = None;
    c.new_value = Some(ecrf_core::Value::Text(text.into()).to_json());
    c.user = "nurse".into();
    c.role = "nurse".into();
    c.reason = None;
    c.warning = None;
    c.base = None;
    c.hash = c.compute_hash();
    key.sign(&mut c);
    c
}

#[test]
fn hostile_values_render_as_text() {
    let (dir, server) = setup();
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let id = eligible_subject(&mut a.store, "01-S1");
    a.sync();
    let key = a.author_key("nurse", NURSE.password);
    let long: String = "长".repeat(2500) + &"x".repeat(2500);
    let hostile = [
        ("BAS", "SHOCK_CAUSE_OTH", "<script>alert(1)</script>"),
        ("CON", "LAR_RELATION_OTH", "\"><img src=x onerror=alert(1)>"),
        (
            "IABP",
            "NOT_INSERTED_REASON",
            "\u{202E}gnp.exe \u{05E9}\u{05DC}\u{05D5}\u{05DD} مرحبا",
        ),
        ("EVT#1", "DETAILS", long.as_str()),
    ];
    let mut last = a.last_own();
    let mut changes = Vec::new();
    for (form, item, text) in hostile {
        let c = item_change(&last, &key, &id, form, item, text);
        last = c.clone();
        changes.push(c);
    }
    a.client().push("01", changes).expect("stored");

    let mut b = Browser::new(&server.url());
    assert_eq!(b.log_in("mona", MONITOR_PW).status, 303);
    let page = b.get(&format!("/web/sites/01/subjects/{id}"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        !page.body.contains("<script"),
        "a script element on the page"
    );
    assert!(!page.body.contains("<img"), "an image element on the page");
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        page.body
            .contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;")
    );
    assert!(
        page.body.contains("\u{202E}gnp.exe"),
        "the right-to-left text is lost"
    );
    assert!(
        page.body.contains(&long),
        "the 5,000 characters are not all shown"
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"));
}

/// `ecrf screening consort` of a laptop, as (label, count) lines summed into `into`.
fn add_cli_consort(d: &Device, into: &mut std::collections::BTreeMap<String, i64>) {
    let out = d.ecrf(&["screening", "consort"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let t = line.trim();
        if t.starts_with("site ") {
            continue;
        }
        let (label, n) = t.rsplit_once(' ').unwrap();
        *into.entry(label.trim().to_string()).or_default() += n.parse::<i64>().unwrap();
    }
}

#[test]
fn dashboard_consort_equals_the_command_line_summed_over_sites() {
    let (dir, server) = setup();
    let mut laptops = Vec::new();
    for (site, name) in [("01", "a"), ("03", "c")] {
        let path = dir.path().join(format!("{name}.ecrf"));
        let store = Site::new(site)
            .with_nurse()
            .with_lease(8, [site.as_bytes()[1]; 32])
            .create_as(&path, &NURSE);
        let mut d = Device { store, path };
        ecrf_sync::enrol(
            &d.store,
            &server.url(),
            &server.enrol_code(site, d.store.device_id()),
            None,
        )
        .unwrap();
        randomized_subject(&mut d.store, &format!("{site}-R1"));
        randomized_subject(&mut d.store, &format!("{site}-R2"));
        eligible_subject(&mut d.store, &format!("{site}-P1"));
        // Not eligible: too young, and no consent.
        let young = d.store.new_subject().unwrap();
        d.save(&young, "SCR", &[("AGE", "16")]);
        let unconsented = d.store.new_subject().unwrap();
        let screening = ecrf_core::sample::eligible_screening(&format!("{site}-N1"))
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect::<Vec<_>>();
        let entries: Vec<(&str, &str)> = screening.iter().map(|(k, v)| (*k, v.as_str())).collect();
        d.save(&unconsented, "SCR", &entries);
        d.sync();
        laptops.push(d);
    }
    let mut cli = std::collections::BTreeMap::new();
    for d in &laptops {
        add_cli_consort(d, &mut cli);
    }

    let mut b = Browser::new(&server.url());
    assert_eq!(b.log_in("mona", MONITOR_PW).status, 303);
    let web: serde_json::Value = serde_json::from_str(&b.get("/web/api/consort").body).unwrap();
    let n = |k: &str| cli.get(k).copied().unwrap_or(0);
    assert_eq!(web["screened"], n("screened"), "{web} vs {cli:?}");
    assert_eq!(web["not_eligible"], n("not eligible"));
    assert_eq!(web["consent_not_obtained"], n("consent not obtained"));
    assert_eq!(web["pending"], n("eligible, not randomized"));
    assert_eq!(web["randomized"], n("randomized"));
    assert_eq!(web["randomized"], 4);
    for (criterion, count) in web["by_criterion"].as_object().unwrap() {
        assert_eq!(count, n(criterion), "{criterion}");
    }
    let arms: i64 = web["by_arm"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(arms, 4);
    for (arm, count) in web["by_arm"].as_object().unwrap() {
        assert_eq!(count, n(arm), "{arm}");
    }
    // The dashboard shows the same total, and the diagram downloads as SVG.
    let home = b.get("/web/");
    assert!(home.body.contains("4 / 358"), "{}", home.body);
    let svg = b.get("/web/consort.svg");
    assert_eq!(
        svg.header("content-type"),
        Some("image/svg+xml; charset=utf-8")
    );
    assert!(
        svg.body
            .contains(&format!("Screened (n = {})", n("screened"))),
        "{}",
        svg.body
    );
}

#[test]
fn a_query_raised_on_the_web_reaches_the_laptop_and_its_answer_comes_back() {
    let (dir, server) = setup();
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let id = eligible_subject(&mut a.store, "01-Q1");
    a.sync();

    let mut b = Browser::new(&server.url());
    assert_eq!(b.log_in("mona", MONITOR_PW).status, 303);
    let page = b.get(&format!("/web/sites/01/subjects/{id}"));
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.csrf();
    let path = format!("/web/sites/01/subjects/{id}/queries");
    let changes = || psql(&server.database_url, "SELECT count(*) FROM changes");
    let before = changes();
    // Without the token: refused, nothing stored.
    let forged = b.post(&path, &[("form", "SCR"), ("item", "AGE"), ("text", "Age?")]);
    assert_eq!(forged.status, 403);
    // An item the form does not have: refused naming the field.
    let bad = b.post(
        &path,
        &[
            ("csrf", &csrf),
            ("form", "SCR"),
            ("item", "NOPE"),
            ("text", "x"),
        ],
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("item"), "{}", bad.body);
    assert_eq!(changes(), before, "a refused form wrote something");

    let raised = b.post(
        &path,
        &[
            ("csrf", &csrf),
            ("form", "SCR"),
            ("item", "AGE"),
            ("text", "Please check the age against the ID card."),
        ],
    );
    assert_eq!(raised.status, 303, "{}", raised.body);

    // The laptop receives it at sync, signed as the monitor's.
    a.sync();
    let queries = a.store.queries(Some(&id)).unwrap();
    let q = queries
        .iter()
        .find(|q| q.item == "AGE")
        .expect("the query on the laptop");
    assert_eq!(q.raised_by, "mona");
    let verify = a.ecrf(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // The nurse answers; the answer is on the web after the next sync.
    a.store
        .query_step(&q.id, QueryStep::Answer, "Checked: 62 on the ID card.")
        .unwrap();
    a.sync();
    let page = b.get(&format!("/web/sites/01/subjects/{id}"));
    assert!(
        page.body.contains("Checked: 62 on the ID card."),
        "{}",
        page.body
    );
    assert!(page.body.contains("data-state=\"answered\""));
}

#[test]
fn a_data_manager_locks_a_form_on_the_web_and_the_laptop_keeps_to_it() {
    let (_dir, server, mut a, id) = with_data_manager("01-L1");
    let page = format!("/web/sites/01/subjects/{id}");
    let lock = |b: &mut Browser, action: &str| {
        let csrf = b.get(&page).csrf();
        b.post(
            "/web/sites/01/locks",
            &[
                ("csrf", csrf.as_str()),
                ("scope", "form"),
                ("subject", id.as_str()),
                ("form", "SCR"),
                ("action", action),
                ("reason", "cleaned for the interim analysis"),
            ],
        )
    };

    // A monitor may not lock.
    let mut mona = Browser::new(&server.url());
    assert_eq!(mona.log_in("mona", MONITOR_PW).status, 303);
    assert_eq!(lock(&mut mona, "lock").status, 403);

    let mut dana = Browser::new(&server.url());
    assert_eq!(dana.log_in("dana", DM_PW).status, 303);
    let csrf = dana.get(&page).csrf();
    let no_reason = dana.post(
        "/web/sites/01/locks",
        &[
            ("csrf", &csrf),
            ("scope", "form"),
            ("subject", &id),
            ("form", "SCR"),
            ("action", "lock"),
        ],
    );
    assert_eq!(no_reason.status, 400);
    assert!(no_reason.body.contains("reason"), "{}", no_reason.body);
    assert_eq!(lock(&mut dana, "lock").status, 303);
    assert!(dana.get(&page).body.contains("This form is locked."));

    // The laptop receives the lock: its nurse can no longer change the form.
    a.sync();
    let key = ecrf_core::FormKey::parse(&server::study(), "SCR").unwrap();
    let opts = ecrf_store::SaveOptions {
        reason: Some("correction".into()),
        confirm_warnings: true,
    };
    let refused = a
        .store
        .save(&id, &key, &[("AGE", "63")], &opts)
        .unwrap_err();
    assert!(refused.to_string().contains("locked"), "{refused}");

    assert_eq!(lock(&mut dana, "unlock").status, 303);
    a.sync();
    a.store.save(&id, &key, &[("AGE", "63")], &opts).unwrap();
}

#[test]
fn a_data_manager_downloads_an_export_of_her_sites_and_it_is_audited() {
    let (_dir, server, _laptop, id) = with_data_manager("01-X1");

    let mut mona = Browser::new(&server.url());
    assert_eq!(mona.log_in("mona", MONITOR_PW).status, 303);
    assert_eq!(
        mona.get("/web/exports").status,
        403,
        "a monitor may not export"
    );

    let mut dana = Browser::new(&server.url());
    assert_eq!(dana.log_in("dana", DM_PW).status, 303);
    let form = dana.get("/web/exports");
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.csrf();
    let refused = dana.post(
        "/web/exports",
        &[("csrf", &csrf), ("format", "csv"), ("site", "03")],
    );
    assert_eq!(refused.status, 403, "site 03 is not hers");
    let started = dana.post(
        "/web/exports",
        &[("csrf", &csrf), ("format", "csv"), ("site", "01")],
    );
    assert_eq!(started.status, 303, "{}", started.body);
    let job = started.header("location").unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let page = loop {
        let p = dana.get(&job);
        if p.body.contains("data-state=\"done\"") {
            break p;
        }
        assert!(!p.body.contains("data-state=\"failed\""), "{}", p.body);
        assert!(
            std::time::Instant::now() < deadline,
            "the export did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(page.body.contains("scr.csv"), "{}", page.body);
    let scr = dana.get(&format!("{job}/scr.csv"));
    assert_eq!(scr.status, 200);
    assert!(scr.body.contains(&id), "{}", scr.body);
    assert!(
        scr.header("content-disposition")
            .unwrap()
            .contains("attachment")
    );
    // Nothing but the names the export wrote.
    assert_eq!(
        dana.get(&format!("{job}/..%2F..%2Fetc%2Fpasswd")).status,
        404
    );
    // Nobody else's.
    assert_eq!(mona.get(&format!("{job}/scr.csv")).status, 404);
    let count = |event: &str| {
        psql(
            &server.database_url,
            &format!(
                "SELECT count(*) FROM web_audit WHERE username = 'dana' AND event = '{event}'"
            ),
        )
    };
    assert_eq!(count("export.start"), "1");
    assert_eq!(count("export"), "1");
    assert_eq!(count("download"), "1");
    let what = psql(
        &server.database_url,
        "SELECT detail FROM web_audit WHERE event = 'export'",
    );
    assert!(what.contains("scr.csv"), "{what}");
}

/// One arm as R computes it: arm number, known, deaths, CI low, CI high, Kaplan–Meier steps.
type RArm = (i64, usize, usize, f64, f64, Vec<(i64, f64)>);

/// Per arm number of `subjects.csv`: (known, deaths, CI low, CI high, KM steps), computed by R
/// from the export alone (base R: `prop.test` without continuity correction = Wilson; the
/// Kaplan–Meier product by hand).
fn r_closed_report(subjects_csv: &std::path::Path) -> Vec<RArm> {
    let script = r#"
d <- read.csv(commandArgs(TRUE)[1], stringsAsFactors = FALSE)
for (a in sort(unique(d$ARM))) {
  x <- d[d$ARM == a & d$PRIMARY_ENDPOINT %in% c(0, 1), ]
  n <- nrow(x); deaths <- sum(x$PRIMARY_ENDPOINT == 1)
  ci <- suppressWarnings(prop.test(deaths, n, correct = FALSE)$conf.int)
  t <- as.integer(x$DAYS_ALIVE); e <- x$PRIMARY_ENDPOINT == 1
  s <- 1; km <- "0:1"
  for (u in sort(unique(t[e]))) {
    s <- s * (1 - sum(t == u & e) / sum(t >= u))
    km <- c(km, sprintf("%d:%.12f", u, s))
  }
  cat(sprintf("%d %d %d %.12f %.12f %s\n", a, n, deaths, ci[1], ci[2], paste(km, collapse = ",")))
}
"#;
    let out = std::process::Command::new("Rscript")
        .args(["-e", script])
        .arg(subjects_csv)
        .output()
        .expect("Rscript (scripts/setup.sh installs r-base-core)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let km = f[5]
                .split(',')
                .map(|p| {
                    let (d, s) = p.split_once(':').unwrap();
                    (d.parse().unwrap(), s.parse().unwrap())
                })
                .collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
                km,
            )
        })
        .collect()
}

#[test]
fn the_closed_report_is_the_statisticians_alone_and_equals_r_on_the_export() {
    let (dir, server) = setup();
    add_user(
        &server,
        "01",
        "sam",
        "statistician",
        "statistician-web-2026-osprey",
    );
    let path = dir.path().join("a.ecrf");
    let store = Site::new("01")
        .with_nurse()
        .with_lease(16, [5; 32])
        .create_as(&path, &NURSE);
    let mut a = Device { store, path };
    ecrf_sync::enrol(
        &a.store,
        &server.url(),
        &server.enrol_code("01", a.store.device_id()),
        None,
    )
    .unwrap();
    // Randomized on 1 March 2026 (day 0); some die on days 2 to 9, the others are alive at
    // the day-30 contact; one has no day-30 record yet (endpoint unknown).
    for i in 0..12 {
        let (id, _) = randomized_subject(&mut a.store, &format!("01-K{i:02}"));
        if i == 11 {
            continue;
        }
        if i % 3 == 0 || i == 4 {
            let death = format!("2026-03-{:02}", 3 + i % 8);
            a.save(
                &id,
                "D30",
                &[
                    ("CONTACT_DATE", "2026-03-31"),
                    ("METHOD", "PHONE"),
                    ("VITAL_STATUS", "DEAD"),
                    ("DEATH_DATE", &death),
                    ("DEATH_CAUSE", "CV_SHOCK"),
                ],
            );
        } else {
            a.save(
                &id,
                "D30",
                &[
                    ("CONTACT_DATE", "2026-03-31"),
                    ("METHOD", "PHONE"),
                    ("VITAL_STATUS", "ALIVE"),
                ],
            );
        }
    }
    a.sync();

    // Everyone else: refused, and the dashboard shows pooled figures only.
    let mut mona = Browser::new(&server.url());
    assert_eq!(mona.log_in("mona", MONITOR_PW).status, 303);
    assert_eq!(mona.get("/web/dmc").status, 403);
    assert_eq!(mona.get("/web/api/dmc").status, 403);
    let home = mona.get("/web/");
    assert!(home.body.contains("id=\"pooled-figures\""), "{}", home.body);
    assert!(!home.body.contains("dmc-table"));

    let mut sam = Browser::new(&server.url());
    assert_eq!(
        sam.log_in("sam", "statistician-web-2026-osprey").status,
        303
    );
    let page = sam.get("/web/dmc");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Kaplan") && page.body.contains("<polyline"));
    let report: serde_json::Value = serde_json::from_str(&sam.get("/web/api/dmc").body).unwrap();
    assert_eq!(report["pooled"]["randomized"], 12);
    assert_eq!(report["pooled"]["known"], 11);

    // The statistician's export, analysed in R, gives the same numbers.
    let csrf = sam.get("/web/exports").csrf();
    let started = sam.post(
        "/web/exports",
        &[("csrf", &csrf), ("format", "csv"), ("site", "01")],
    );
    assert_eq!(started.status, 303, "{}", started.body);
    let job = started.header("location").unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !sam.get(&job).body.contains("data-state=\"done\"") {
        assert!(
            std::time::Instant::now() < deadline,
            "the export did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let csv = sam.get(&format!("{job}/subjects.csv"));
    assert_eq!(csv.status, 200);
    let file = dir.path().join("subjects.csv");
    std::fs::write(&file, &csv.body).unwrap();
    let arms: Vec<String> = server::study().codelists["arms"]
        .codes
        .iter()
        .map(|c| c.code.clone())
        .collect();
    let r = r_closed_report(&file);
    assert!(!r.is_empty(), "R found no arm in {}", csv.body);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    for (number, known, deaths, lo, hi, km) in r {
        let code = &arms[(number - 1) as usize];
        let web = report["arms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["arm"] == code.as_str())
            .unwrap_or_else(|| panic!("arm {code} not in {report}"));
        assert_eq!(web["known"], known, "{code}");
        assert_eq!(web["deaths"], deaths, "{code}");
        assert!(
            close(web["ci"][0].as_f64().unwrap(), lo),
            "{code} {web} vs {lo}"
        );
        assert!(
            close(web["ci"][1].as_f64().unwrap(), hi),
            "{code} {web} vs {hi}"
        );
        let steps: Vec<(i64, f64)> = web["km"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
            .collect();
        assert_eq!(steps.len(), km.len(), "{code}: {steps:?} vs R {km:?}");
        for ((d1, s1), (d2, s2)) in steps.iter().zip(&km) {
            assert_eq!(d1, d2, "{code}");
            assert!(close(*s1, *s2), "{code} day {d1}: {s1} vs R {s2}");
        }
    }
}

fn pdf_text(pdf: &std::path::Path) -> String {
    let out = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn the_web_prints_the_same_casebook_as_the_laptop() {
    let (dir, server) = setup();
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let id = eligible_subject(&mut a.store, "01-P1");
    a.save(&id, "SCR", &[("AGE", "62")]);
    a.sync();
    let mut b = Browser::new(&server.url());
    assert_eq!(b.log_in("mona", MONITOR_PW).status, 303);
    let page = b.get(&format!("/web/sites/01/subjects/{id}"));
    let csrf = page.csrf();
    b.post(
        &format!("/web/sites/01/subjects/{id}/queries"),
        &[
            ("csrf", &csrf),
            ("form", "SCR"),
            ("item", "AGE"),
            ("text", "Age?"),
        ],
    );
    b.post(
        &format!("/web/sites/01/subjects/{id}/sdv"),
        &[("csrf", &csrf), ("form", "SCR"), ("item", "SEX")],
    );
    a.sync();

    let web_pdf = dir.path().join("web.pdf");
    let got = b.get(&format!("/web/sites/01/subjects/{id}/casebook.pdf"));
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("application/pdf"));
    // The body was read as text by the test client: fetch the bytes again raw.
    let bytes = ureq::get(&format!(
        "{}/web/sites/01/subjects/{id}/casebook.pdf",
        server.url()
    ))
    .header(
        "Cookie",
        &b.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; "),
    )
    .call()
    .unwrap()
    .body_mut()
    .read_to_vec()
    .unwrap();
    assert!(bytes.starts_with(b"%PDF"));
    std::fs::write(&web_pdf, &bytes).unwrap();
    let laptop_pdf = dir.path().join("laptop.pdf");
    let out = a.ecrf(&["print", "subject", &id, "-o", laptop_pdf.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Who printed and when differ, and each audit line's number is the change's place in the
    // log that holds it (the laptop's or the server's); every other line is the same.
    let keep = |t: String| -> Vec<String> {
        t.lines()
            .filter(|l| !l.contains("Printed") && !l.contains("printed"))
            .map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                let numbered = words.len() > 1
                    && words[0].bytes().all(|b| b.is_ascii_digit())
                    && words[1].len() == 10
                    && words[1].as_bytes()[4] == b'-';
                words[usize::from(numbered)..].join(" ")
            })
            .filter(|l| !l.is_empty())
            .collect()
    };
    let (web, laptop) = (keep(pdf_text(&web_pdf)), keep(pdf_text(&laptop_pdf)));
    assert!(web.iter().any(|l| l.contains(&id)), "{web:?}");
    assert_eq!(web, laptop, "the web's casebook differs from the laptop's");
}

#[test]
fn an_idle_session_ends_and_says_so_in_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_web_idle(&fresh_database(), dir.path(), 2);
    server.add_site("01");
    add_user(&server, "01", "mona", "monitor", MONITOR_PW);
    let mut b = Browser::new(&server.url());
    assert_eq!(b.log_in("mona", MONITOR_PW).status, 303);
    assert_eq!(b.get("/web/").status, 200);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(
        b.get("/web/").status,
        200,
        "a request keeps the session alive"
    );
    std::thread::sleep(std::time::Duration::from_millis(2600));
    assert_eq!(
        b.get("/web/").status,
        303,
        "idle for longer than 2 s: back to the login"
    );
    assert_eq!(audit(&server, "timeout"), 1);
}

/// The text of the dashboard's "changes waiting" cell in the row of laptop `device`.
fn waiting_cell(dashboard: &str, device: &str) -> String {
    let row_start = dashboard
        .find(&format!("<td>{device}</td>"))
        .unwrap_or_else(|| panic!("no row for {device} in {dashboard}"));
    let row = &dashboard[row_start..];
    let row = &row[..row.find("</tr>").unwrap()];
    let cell = &row[row.find("<td class=\"num\">").unwrap() + "<td class=\"num\">".len()..];
    cell[..cell.find("</td>").unwrap()].to_string()
}

#[test]
fn the_dashboard_counts_the_changes_a_laptop_has_not_received_up_to_its_cap() {
    let (dir, server) = setup();
    add_user(&server, "01", "dana", "data_manager", DM_PW);
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let mut b = Device::enrolled(dir.path(), "b", "01", &server);
    a.sync();
    // A laptop's mark is the cursor it asks from: what it confirmed holding. Its second sync
    // confirms what the first brought.
    b.sync();
    b.sync();
    let b_id = b.store.device_id().to_string();
    let mut web = Browser::new(&server.url());
    assert_eq!(web.log_in("dana", DM_PW).status, 303);
    assert_eq!(waiting_cell(&web.get("/web/").body, &b_id), "0");

    // A's changes after B's last sync are what B has not received.
    let before = a.store.own_change_count_after(0).unwrap();
    let subject = a.store.new_subject().unwrap();
    for d in 1..=3 {
        a.save(&subject, &format!("DLY#{d}"), &[("HR", "80")]);
    }
    a.sync();
    let made = a.store.own_change_count_after(0).unwrap() - before;
    assert!(made >= 4, "{made}");
    assert_eq!(
        waiting_cell(&web.get("/web/").body, &b_id),
        made.to_string()
    );

    // Past the cap, the count stops there and says so.
    let cap = ecrf_web::dashboard::WAITING_CAP as usize;
    a.daily_logs_past(before as i64, cap);
    a.sync();
    assert_eq!(
        waiting_cell(&web.get("/web/").body, &b_id),
        format!("{cap}+")
    );
    // A laptop in step waits for nothing.
    b.sync();
    b.sync();
    assert_eq!(waiting_cell(&web.get("/web/").body, &b_id), "0");
}
