//! Test support for the server: a PostgreSQL database per test, the real `ecrf server` process
//! over real HTTP, sites and enrolled devices with real SQLCipher stores.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ecrf_core::FormKey;
use ecrf_store::{SaveOptions, Store};
use ecrf_sync::Client;
use ecrf_testkit::{NURSE, Site};

pub use ecrf_testkit::study;

pub fn ecrf_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ecrf")
}

/// The PostgreSQL to use: `DATABASE_URL`, or a throwaway cluster for this test process
/// (scripts/pg.sh stops it when the process ends).
fn admin_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(u) = std::env::var("DATABASE_URL") {
            return u;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg("serve-while")
            .arg(std::process::id().to_string())
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/pg.sh");
        assert!(out.status.success(), "scripts/pg.sh failed");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
    .clone()
}

pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A new, empty database of its own for one test.
pub fn fresh_database() -> String {
    let admin = admin_url();
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    let name = format!("ecrf_test_{}", hex::encode(bytes));
    psql(&admin, &format!("CREATE DATABASE {name}"));
    let (base, _) = admin.rsplit_once('/').expect("database URL ends in /name");
    format!("{base}/{name}")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `ecrf server` (killed when dropped).
pub struct Server {
    pub database_url: String,
    pub port: u16,
    child: Option<Child>,
    pub log: PathBuf,
    /// Certificate chain and key (PEM files) when serving HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The CA certificate (PEM) a client must trust to reach an HTTPS server.
    pub ca: Option<Vec<u8>>,
    /// `RUST_LOG` of the process (`warn` unless [`Server::start_logging`]).
    pub log_level: &'static str,
    /// Enrolment attempts per address per minute (`--enrol-per-minute`): high for tests that
    /// enrol many laptops from this one address; the server's default in the test of the limit.
    pub enrol_per_minute: u32,
    /// The web view's idle timeout (`--web-idle-seconds`), when not the default.
    pub web_idle_seconds: Option<u64>,
}

impl Server {
    /// The server with the test defaults, not yet started.
    fn new(database_url: &str, log_dir: &Path) -> Server {
        Server {
            database_url: database_url.to_string(),
            port: free_port(),
            child: None,
            log: log_dir.join("server.log"),
            tls: None,
            ca: None,
            log_level: "warn",
            enrol_per_minute: 1000,
            web_idle_seconds: None,
        }
    }

    pub fn start(database_url: &str, log_dir: &Path) -> Server {
        let mut s = Server::new(database_url, log_dir);
        s.spawn();
        s
    }

    /// [`Server::start`] logging everything down to `info` (every request's summary).
    pub fn start_logging(database_url: &str, log_dir: &Path) -> Server {
        let mut s = Server::new(database_url, log_dir);
        s.log_level = "info";
        s.spawn();
        s
    }

    /// [`Server::start`] with the web view's sessions ending after `seconds` without a request.
    pub fn start_with_web_idle(database_url: &str, log_dir: &Path, seconds: u64) -> Server {
        let mut s = Server::new(database_url, log_dir);
        s.web_idle_seconds = Some(seconds);
        s.spawn();
        s
    }

    /// [`Server::start`] with the server's own enrolment rate limit.
    pub fn start_with_enrol_limit(database_url: &str, log_dir: &Path, per_minute: u32) -> Server {
        let mut s = Server::new(database_url, log_dir);
        s.enrol_per_minute = per_minute;
        s.spawn();
        s
    }

    /// The server over HTTPS with a certificate for `127.0.0.1`/`localhost` signed by a CA
    /// made here (openssl); its PEM is in [`Server::ca`].
    pub fn start_tls(database_url: &str, dir: &Path) -> Server {
        let pki = make_certificates(dir);
        let mut s = Server::new(database_url, dir);
        s.tls = Some((pki.cert, pki.key));
        s.ca = Some(std::fs::read(&pki.ca).unwrap());
        s.spawn();
        s
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(ecrf_bin());
        cmd.args([
            "server",
            "--database-url",
            &self.database_url,
            "--listen",
            &format!("127.0.0.1:{}", self.port),
            "--enrol-per-minute",
            &self.enrol_per_minute.to_string(),
        ]);
        if let Some(idle) = self.web_idle_seconds {
            cmd.args(["--web-idle-seconds", &idle.to_string()]);
        }
        match &self.tls {
            Some((cert, key)) => cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key),
            None => cmd.arg("--insecure-http"),
        };
        let child = cmd
            .env("RUST_LOG", self.log_level)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ecrf server");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if Client::new(&self.url(), self.ca.as_deref())
                .unwrap()
                .health()
                .is_ok()
            {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "server exited ({status}): {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "server did not answer /health"
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Kills the process (SIGKILL: nothing flushed) and starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The port is free again once nothing accepts on it.
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Still running (no panic took it down)?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(ecrf_bin())
            .args(args)
            .args(["--database-url", &self.database_url])
            .output()
            .expect("run ecrf");
        assert!(
            out.status.success(),
            "ecrf {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `ecrf server user add USER --site 01 --role ROLE --name NAME` with `password` (what an
    /// administrator types): the command's output, success or not.
    pub fn add_user(&self, user: &str, role: &str, name: &str, password: &str) -> Output {
        self.add_user_at("01", user, role, name, password)
    }

    /// [`Server::add_user`] at `site`.
    pub fn add_user_at(
        &self,
        site: &str,
        user: &str,
        role: &str,
        name: &str,
        password: &str,
    ) -> Output {
        Command::new(ecrf_bin())
            .args([
                "server", "user", "add", user, "--site", site, "--role", role,
            ])
            .args(["--name", name, "--database-url", &self.database_url])
            .env("ECRF_NEW_PASSWORD", password)
            .output()
            .expect("run ecrf")
    }

    /// [`Server::add_user_at`] that must succeed.
    pub fn registered(&self, site: &str, user: &str, role: &str, password: &str) {
        let out = self.add_user_at(site, user, role, &format!("{user} (test)"), password);
        assert!(
            out.status.success(),
            "ecrf server user add {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn add_site(&self, code: &str) {
        self.admin(&["site", "add", code, "--name", &format!("Hospital {code}")]);
    }

    /// A one-time code enrolling the one new device `device` with `site`.
    pub fn enrol_code(&self, site: &str, device: &str) -> String {
        self.admin(&["device", "enrol-code", "--site", site, "--device", device])
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Files of a test PKI: a CA, and a server certificate it signed.
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (P-256, 2 days) and a server certificate it signs for `localhost` and `127.0.0.1`,
/// made with the `openssl` command in `dir/pki-<n>`.
pub fn make_certificates(dir: &Path) -> Pki {
    let mut n = 0;
    let pki = loop {
        let p = dir.join(format!("pki-{n}"));
        if std::fs::create_dir(&p).is_ok() {
            break p;
        }
        n += 1;
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=ecrf test CA"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(&pki, &ca);
    let mut csr = vec!["req", "-new", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "key.pem", "-out", "server.csr"]);
    openssl(&pki, &csr);
    std::fs::write(
        pki.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &pki,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ],
    );
    Pki {
        ca: pki.join("ca.pem"),
        cert: pki.join("cert.pem"),
        key: pki.join("key.pem"),
    }
}

pub const NURSE_PW: &str = NURSE.password;

/// A ward laptop: its own store (site `site`), a nurse logged in, enrolled with the server.
pub struct Device {
    pub store: Store,
    pub path: PathBuf,
}

impl Device {
    pub fn new(dir: &Path, name: &str, site: &str) -> Device {
        let path = dir.join(format!("{name}.ecrf"));
        let store = Site::new(site).with_nurse().create_as(&path, &NURSE);
        Device { store, path }
    }

    pub fn enrolled(dir: &Path, name: &str, site: &str, server: &Server) -> Device {
        let d = Device::new(dir, name, site);
        ecrf_sync::enrol(
            &d.store,
            &server.url(),
            &server.enrol_code(site, d.store.device_id()),
            server.ca.as_deref(),
        )
        .unwrap();
        d
    }

    /// Runs `ecrf ARGS` on this laptop's store as its nurse (another process beside the
    /// open store, as a second window would be).
    pub fn ecrf(&self, args: &[&str]) -> std::process::Output {
        Command::new(ecrf_bin())
            .args(args)
            .env("ECRF_STORE", &self.path)
            .env("ECRF_USER", "nurse")
            .env("ECRF_PASSWORD", NURSE_PW)
            .env_remove("ECRF_LANG")
            .output()
            .expect("run ecrf")
    }

    pub fn client(&self) -> Client {
        ecrf_sync::client::client_of(&self.store).unwrap()
    }

    /// The signing key of `user` on this laptop: what someone holding its key file and the
    /// user's password can sign with (a tampered app).
    pub fn author_key(&self, user: &str, password: &str) -> ecrf_log::AuthorKey {
        ecrf_store::keyring::Keyring::load(&self.path)
            .unwrap()
            .unlock_author(user, password)
            .unwrap()
            .1
            .expect("a slot with a signing key")
    }

    /// This device's last change.
    pub fn last_own(&self) -> ecrf_store::Change {
        self.store
            .own_changes_after(0, 1000)
            .unwrap()
            .pop()
            .unwrap()
    }

    /// This device's last item change.
    pub fn last_own_item_set(&self) -> ecrf_store::Change {
        self.store
            .own_changes_after(0, 1000)
            .unwrap()
            .into_iter()
            .rfind(|c| c.kind == ecrf_log::ChangeKind::ItemSet)
            .unwrap()
    }

    /// Syncs through `client` (or its own), retrying what can be retried up to `tries` times.
    pub fn sync_via(&mut self, client: &Client, tries: usize) -> ecrf_sync::SyncReport {
        let mut last = None;
        for _ in 0..tries {
            match ecrf_sync::sync(&mut self.store, client, &mut |_| {}) {
                Ok(r) => return r,
                Err(e) if e.is_retryable() => {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("sync refused: {e}"),
            }
        }
        panic!("sync did not succeed after {tries} tries: {last:?}")
    }

    pub fn sync(&mut self) -> ecrf_sync::SyncReport {
        let c = self.client();
        self.sync_via(&c, 1)
    }

    /// Saves new subjects' 30 daily logs (a heart rate each) until this laptop has made more
    /// than `more_than` changes after its change `after`.
    pub fn daily_logs_past(&mut self, after: i64, more_than: usize) {
        while self.store.own_change_count_after(after).unwrap() <= more_than {
            let subject = self.store.new_subject().unwrap();
            for day in 1..=30 {
                let hr = (60 + day).to_string();
                self.save(&subject, &format!("DLY#{day}"), &[("HR", hr.as_str())]);
            }
        }
    }

    pub fn save(&mut self, subject: &str, form: &str, entries: &[(&str, &str)]) {
        self.try_save(subject, form, entries).unwrap();
    }

    /// [`Device::save`] that may be refused.
    pub fn try_save(
        &mut self,
        subject: &str,
        form: &str,
        entries: &[(&str, &str)],
    ) -> Result<(), ecrf_store::StoreError> {
        let key = FormKey::parse(&study(), form).unwrap();
        self.store
            .save(
                subject,
                &key,
                entries,
                &SaveOptions {
                    reason: Some("correction".into()),
                    confirm_warnings: true,
                },
            )
            .map(|_| ())
    }

    pub fn value(&self, subject: &str, form: &str, item: &str) -> Option<String> {
        let key = FormKey::parse(&study(), form).unwrap();
        self.store
            .form_values(subject, &key)
            .unwrap()
            .into_iter()
            .find(|i| i.item == item)
            .map(|i| i.value.to_string())
    }

    /// The log as a sorted set of `change_id hash` (local order differs between replicas).
    pub fn log(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .store
            .all_changes()
            .unwrap()
            .into_iter()
            .map(|c| format!("{} {}", c.change_id, c.hash))
            .collect();
        v.sort();
        v
    }
}

/// The server's copy of a site's log, sorted like [`Device::log`].
pub fn server_log(db: &str, site: &str) -> Vec<String> {
    let out = psql(
        db,
        &format!("SELECT change_id || ' ' || hash FROM changes WHERE site = '{site}' ORDER BY 1"),
    );
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}
