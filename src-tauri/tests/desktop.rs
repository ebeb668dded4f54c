//! The real desktop app in a real window under Xvfb, driven through WebDriver (tauri-driver in
//! front of WebKitWebDriver), as a nurse would use it. Screenshots of each step are kept in
//! `target/desktop-screenshots/`.
//!
//! Needs `Xvfb`, `WebKitWebDriver` (Debian `webkit2gtk-driver`) and `tauri-driver` on PATH or
//! in `~/.cargo/bin`; `make test` installs them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const WAIT: Duration = Duration::from_secs(20);

/// A child process, with every process it started, killed when dropped.
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        // Each guarded child leads its own process group (see `spawn_group`).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_group(cmd: &mut Command) -> Child {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0)
        .spawn()
        .expect("start a helper process")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn tool(name: &str) -> PathBuf {
    let home_bin = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin").join(name));
    if let Some(p) = home_bin.filter(|p| p.exists()) {
        return p;
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: run `make test` (it installs it)");
}

fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/desktop-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

struct Driver {
    base: String,
    session: String,
    display: String,
}

fn http(method: &str, url: &str, body: Option<&Value>) -> Result<Value, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let resp = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        (_, b) => agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(b.unwrap_or(&json!({})).to_string()),
    };
    let mut resp = resp.map_err(|e| e.to_string())?;
    let status = resp.status();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
    if status.is_success() {
        Ok(v["value"].clone())
    } else {
        Err(format!(
            "{status}: {} {}",
            v["value"]["error"], v["value"]["message"]
        ))
    }
}

impl Driver {
    fn start(desk: &Desktop) -> Driver {
        let (port, app) = (desk.port, &desk.app);
        let base = format!("http://127.0.0.1:{port}");
        let caps =
            json!({"capabilities": {"alwaysMatch": {"tauri:options": {"application": app}}}});
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match http("POST", &format!("{base}/session"), Some(&caps)) {
                Ok(v) => {
                    let session = v["sessionId"].as_str().expect("session id").to_string();
                    return Driver {
                        base,
                        session,
                        display: desk.display.clone(),
                    };
                }
                Err(e) if Instant::now() > deadline => panic!("no WebDriver session: {e}"),
                Err(_) => sleep(Duration::from_millis(300)),
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    fn quit(self) {
        let _ = http("DELETE", &self.url(""), None);
    }

    /// Waits for an element matching `css` and returns its id.
    fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let r = http(
                "POST",
                &self.url("/element"),
                Some(&json!({"using": "css selector", "value": css})),
            );
            if let Ok(v) = r
                && let Some(id) = v[ELEMENT].as_str()
            {
                return id.to_string();
            }
            if Instant::now() > deadline {
                self.screenshot("FAILED");
                panic!("no element {css} after {WAIT:?}");
            }
            sleep(Duration::from_millis(150));
        }
    }

    /// Clicks, retrying while the page is still being redrawn (stale or not yet clickable).
    fn click(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let id = self.find(css);
            match http(
                "POST",
                &self.url(&format!("/element/{id}/click")),
                Some(&json!({})),
            ) {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => {
                    self.screenshot("FAILED");
                    panic!("click {css}: {e}");
                }
                Err(_) => sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Clicks through the page's own script, scrolled to the middle: for radios and boxes of a
    /// long form, which the sticky toolbar may cover ("element click intercepted").
    fn pick(&self, css: &str) {
        self.find(css);
        let script = "const e = document.querySelector(arguments[0]); \
                      e.scrollIntoView({block: 'center'}); e.click();";
        http(
            "POST",
            &self.url("/execute/sync"),
            Some(&json!({"script": script, "args": [css]})),
        )
        .unwrap_or_else(|e| panic!("pick {css}: {e}"));
    }

    fn clear(&self, css: &str) {
        let id = self.find(css);
        http(
            "POST",
            &self.url(&format!("/element/{id}/clear")),
            Some(&json!({})),
        )
        .unwrap_or_else(|e| panic!("clear {css}: {e}"));
    }

    fn type_in(&self, css: &str, text: &str) {
        let id = self.find(css);
        http(
            "POST",
            &self.url(&format!("/element/{id}/value")),
            Some(&json!({"text": text})),
        )
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    fn set(&self, css: &str, text: &str) {
        self.clear(css);
        self.type_in(css, text);
    }

    fn text(&self, css: &str) -> String {
        let id = self.find(css);
        http("GET", &self.url(&format!("/element/{id}/text")), None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    fn value(&self, css: &str) -> String {
        let id = self.find(css);
        http(
            "GET",
            &self.url(&format!("/element/{id}/property/value")),
            None,
        )
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
    }

    fn displayed(&self, css: &str) -> bool {
        let id = self.find(css);
        http("GET", &self.url(&format!("/element/{id}/displayed")), None)
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    /// Waits until the text of `css` contains every one of `parts`.
    fn wait_text(&self, css: &str, parts: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let t = self.text(css);
            if parts.iter().all(|p| t.contains(p)) {
                return t;
            }
            if Instant::now() > deadline {
                self.screenshot("FAILED");
                panic!("{css} reads {t:?}, expected it to contain {parts:?}");
            }
            sleep(Duration::from_millis(150));
        }
    }

    /// A screenshot of the whole virtual display, as the nurse would see it. (WebKitWebDriver's
    /// own screenshot can hang until the page repaints, so the X server is asked instead.)
    fn screenshot(&self, name: &str) {
        // Let the window repaint what the last command changed.
        sleep(Duration::from_millis(400));
        let path = shots_dir().join(format!("{name}.png"));
        let taken = Command::new("import")
            .args(["-display", &self.display, "-window", "root"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !taken.is_ok_and(|s| s.success()) {
            eprintln!("screenshot {name}: `import` (ImageMagick) failed");
        }
    }
}

/// Xvfb and tauri-driver for one test, with the app's store in a temporary folder.
struct Desktop {
    _xvfb: Guard,
    _driver: Guard,
    port: u16,
    app: PathBuf,
    display: String,
}

fn desktop(data: &Path) -> Desktop {
    // The first free display from :90 on: a number in use makes Xvfb exit at once.
    let (display, xvfb) = (90..150)
        .find_map(|n| {
            let display = format!(":{n}");
            let mut child = spawn_group(
                Command::new(tool("Xvfb"))
                    .args([
                        display.as_str(),
                        "-screen",
                        "0",
                        "1280x800x24",
                        "-nolisten",
                        "tcp",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            );
            sleep(Duration::from_millis(700));
            match child.try_wait() {
                Ok(None) => Some((display, child)),
                _ => None,
            }
        })
        .expect("a free X display between :90 and :149");
    let port = free_port();
    let native = free_port();
    let driver = spawn_group(
        Command::new(tool("tauri-driver"))
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            .env("DISPLAY", &display)
            .env("ECRF_STORE", data.join("ward.ecrf"))
            .env("ECRF_DEMO_STORE", data.join("demo.ecrf"))
            .env("XDG_DATA_HOME", data.join("xdg"))
            .env("ECRF_NO_OPEN", "1")
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    Desktop {
        _xvfb: Guard(xvfb),
        _driver: Guard(driver),
        port,
        app: PathBuf::from(env!("CARGO_BIN_EXE_ecrf-desktop")),
        display,
    }
}

fn login(d: &Driver, user: &str, password: &str) {
    d.set("#login-user", user);
    d.set("#login-password", password);
    d.click("#login-submit");
}

#[test]
fn a_nurse_sets_up_enters_a_baseline_form_finds_it_after_a_restart_and_randomizes() {
    let data = tempfile::tempdir().expect("temp folder");
    let desk = desktop(data.path());

    // First run: set-up, recovery key, a nurse added by the administrator.
    let d = Driver::start(&desk);
    d.find("#start-setup");
    d.screenshot("01-first-run");
    d.click("#start-setup");
    d.set("#setup-name", "Wang Admin");
    d.set("#setup-password", "admin-password-1");
    d.set("#setup-password2", "admin-password-1");
    d.click("#setup-submit");
    let key = d.wait_text("#recovery-key", &["-"]);
    assert_eq!(key.trim().len(), 64, "recovery key {key:?}");
    d.screenshot("02-recovery-key");
    d.click("#recovery-stored");
    d.click("#recovery-continue");
    d.set("#user-username", "li");
    d.set("#user-name", "Li Na 李娜");
    d.set("#user-password", "nurse-password-1");
    d.click("#user-add");
    d.find("[data-user='li']");
    d.screenshot("03-users");
    d.click("#lock");

    // The nurse logs in, creates a subject and opens the baseline form.
    login(&d, "li", "nurse-password-1");
    d.click("#new-subject");
    d.click("button[data-key='BAS']");
    d.find("#f-HEIGHT");
    // A question asked only for another answer ("other cause" of shock) is not shown.
    assert!(
        !d.displayed("#row-SHOCK_CAUSE_OTH"),
        "an unasked item is shown"
    );
    assert!(d.displayed("#row-HEIGHT"));
    d.screenshot("04-baseline-empty");

    // One value out of range: refused, the error beside the field, nothing saved.
    d.type_in("#f-HEIGHT", "300");
    d.type_in("#f-WEIGHT", "70");
    d.click("#save");
    let err = d.wait_text("#m-HEIGHT", &["100–250"]);
    assert!(err.contains("300"), "{err}");
    d.screenshot("05-error-beside-field");

    // Fixed and saved.
    d.set("#f-HEIGHT", "172");
    d.click("#save");
    d.wait_text("#form-notice", &["Saved"]);
    d.wait_text("#f-BMI", &["23.7"]);
    d.screenshot("06-saved");
    d.quit();

    // Relaunch: log in again and find the value.
    let d = Driver::start(&desk);
    login(&d, "li", "nurse-password-1");
    d.click("button[data-subject='01-0001']");
    d.click("button[data-key='BAS']");
    d.find("#f-HEIGHT");
    let deadline = Instant::now() + WAIT;
    while d.value("#f-HEIGHT") != "172" {
        assert!(
            Instant::now() < deadline,
            "HEIGHT reads {:?} after relaunch",
            d.value("#f-HEIGHT")
        );
        sleep(Duration::from_millis(150));
    }
    assert_eq!(d.value("#f-WEIGHT"), "70");
    d.screenshot("07-after-relaunch");

    // Change it: the reason prompt, then the field's history.
    d.set("#f-HEIGHT", "171");
    d.click("#save");
    d.find("#reason-dialog");
    d.screenshot("08-reason-prompt");
    // The reason carries markup and SQL: stored and shown literally (as text, never run).
    d.type_in("#reason-input", HOSTILE_REASON);
    d.click("#reason-save");
    d.wait_text("#form-notice", &["Saved"]);
    d.click("#h-HEIGHT");
    let history = d.wait_text("#history", &["172", "171", HOSTILE_REASON, "li (nurse)"]);
    assert!(
        history.contains("∅"),
        "the first entry shows no old value: {history}"
    );
    d.screenshot("09-history");

    // Print the subject's CRF from the app: a real PDF with the values and the audit trail.
    d.click("#history-close");
    d.click("#back");
    d.click("#print-subject");
    let notice = d.wait_text("#print-notice", &[".pdf"]);
    let path = notice
        .rsplit(": ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    assert!(
        Path::new(&path).starts_with(data.path()),
        "printout outside the store folder: {path}"
    );
    let text = Command::new("pdftotext")
        .args(["-enc", "UTF-8", &path, "-"])
        .output()
        .expect("pdftotext");
    let text = String::from_utf8_lossy(&text.stdout);
    for needle in ["01-0001", "171", "misread the tape", "NCT06872021"] {
        assert!(
            text.contains(needle),
            "{needle} missing from the printed CRF"
        );
    }
    let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    for needle in ["<imgsrc=xonerror=alert(1)>", "');DROPTABLEsubjects;--"] {
        assert!(
            squeezed.contains(needle),
            "{needle} not printed literally in the CRF"
        );
    }
    d.screenshot("10-printed");
    d.quit();

    // Randomization. The administrator loads a lease of sealed envelopes made by the CLI's
    // generator (there is no lease screen yet); everything else is done in the window.
    load_lease(&data.path().join("ward.ecrf"));
    let d = Driver::start(&desk);
    login(&d, "li", "nurse-password-1");
    d.click("button[data-subject='01-0001']");
    // Not screened yet: refused, with the reasons on screen.
    d.click("#randomize");
    d.wait_text("#rnd-message", &["not eligible", "I1", "E9"]);
    screen_in_window(&d);
    // Eligible but no consent yet.
    d.click("#randomize");
    d.wait_text("#rnd-message", &["no consent"]);
    consent_in_window(&d);
    d.click("#randomize");
    let arm = d.wait_text("#rnd-arm", &["Randomized", "01-R0001", "li"]);
    assert!(
        arm.contains("ECMO+IABP") || arm.contains("ECMO (no mechanical"),
        "{arm}"
    );
    // ECMO started an hour ago: about 5 hours left, counting down.
    let first = d.wait_text("#rnd-countdown", &["time left: 4 h 5"]);
    sleep(Duration::from_millis(2100));
    let later = d.text("#rnd-countdown");
    assert_ne!(first, later, "the countdown moves");
    d.screenshot("11-randomized-arm-and-countdown");
    // A second attempt is refused and changes nothing.
    d.click("#randomize");
    d.wait_text("#rnd-message", &["already randomized as 01-R0001"]);
    assert!(d.text("#rnd-arm").contains("01-R0001"));
    d.quit();
}

/// A local date-time `minutes` ago, as the form reads it (with its UTC offset).
/// A reason for change with markup and SQL in it (hostile-input check).
const HOSTILE_REASON: &str =
    "misread the tape <img src=x onerror=alert(1)> '); DROP TABLE subjects;--";

fn ago(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes))
        .format("%Y-%m-%dT%H:%M+00:00")
        .to_string()
}

/// Two blocks of site 01 from a fixed seed, loaded as the administrator would with
/// `ecrf randomization load-lease`.
fn load_lease(store: &Path) {
    let study = std::sync::Arc::new(ecrf_core::trial::definition().expect("study"));
    let mut admin =
        ecrf_store::Store::open(store, study, "admin", "admin-password-1").expect("open as admin");
    let spec = ecrf_randomize::ListSpec {
        stratum: ecrf_randomize::Stratum::site("01").expect("site"),
        count: 8,
        block_sizes: vec![4, 6, 8],
    };
    let list = ecrf_randomize::generate(&spec, &[5; 32]).expect("list");
    admin
        .load_lease(&ecrf_randomize::to_csv(&list))
        .expect("load the lease");
}

/// Fills the screening form in the window: an eligible man on ECMO for an hour.
fn screen_in_window(d: &Driver) {
    d.click("button[data-key='SCR']");
    d.type_in("#f-SCRNO", "01-001");
    d.type_in("#f-SCR_DT", &ago(30));
    d.type_in("#f-AGE", "57");
    for radio in [
        "SEX-M",
        "INC1_AGE-Y",
        "INC2_CS-Y",
        "SBP_LT90-Y",
        "CATECHOL-N",
        "LACT_GT3-Y",
        "HYPOPERF-Y",
        "INC3_ECMO-Y",
        "INC4_CONSENT-Y",
    ] {
        d.pick(&format!("#f-{radio}"));
    }
    d.type_in("#f-SBP_LOW", "68");
    d.type_in("#f-SBP_DURATION", "45");
    d.type_in("#f-LACTATE", "5.4");
    d.type_in("#f-LACTATE_DT", &ago(50));
    d.pick("#f-HYPOPERF_SIGNS-COLD");
    d.type_in("#f-ECMO_START_DT", &ago(60));
    for n in [
        "EXC1_AI_DISSECTION",
        "EXC2_PVD",
        "EXC3_POSTCARDIOTOMY",
        "EXC4_NONCARDIAC",
        "EXC5_ECPR",
        "EXC6_PRIOR_MCS",
        "EXC7_BLEEDING",
        "EXC8_MALIGNANCY",
        "EXC9_NEURO",
    ] {
        d.pick(&format!("#f-{n}-N"));
    }
    d.pick("#save");
    d.wait_text("#form-notice", &["Saved"]);
    d.pick("#back");
}

/// Records the patient's own consent in the window.
fn consent_in_window(d: &Driver) {
    d.click("button[data-key='CON']");
    d.pick("#f-CONSENT_BY-PATIENT");
    d.type_in("#f-CONSENT_DT", &ago(20));
    d.type_in("#f-ICF_VERSION", "V1.0 2025-10-01");
    d.type_in("#f-OBTAINED_BY", "Dr Zhao");
    d.pick("#save");
    d.wait_text("#form-notice", &["Saved"]);
    d.pick("#back");
}
