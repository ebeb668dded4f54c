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

    /// Scrolls the page so that this element is at the top (for a screenshot).
    fn scroll_to(&self, css: &str) {
        self.find(css);
        let script = "document.querySelector(arguments[0]).scrollIntoView({block: 'start'});";
        http(
            "POST",
            &self.url("/execute/sync"),
            Some(&json!({"script": script, "args": [css]})),
        )
        .unwrap_or_else(|e| panic!("scroll to {css}: {e}"));
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

/// Prints the open subject's CRF from the app; returns the PDF's path and its text (pdftotext).
fn print_subject(d: &Driver) -> (String, String) {
    d.click("#print-subject");
    let notice = d.wait_text("#print-notice", &[".pdf"]);
    let path = notice
        .rsplit(": ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let out = Command::new("pdftotext")
        .args(["-enc", "UTF-8", &path, "-"])
        .output()
        .expect("pdftotext");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (path, text)
}

/// From the subject list: opens 01-0001's day-1 log and changes MAP with a reason.
fn correct_day1_map(d: &Driver, value: &str, reason: &str) {
    d.click("button[data-subject='01-0001']");
    d.click("button[data-key='DLY#1']");
    d.set("#f-MAP", value);
    d.click("#save");
    d.find("#reason-dialog");
    d.type_in("#reason-input", reason);
    d.click("#reason-save");
    d.wait_text("#form-notice", &["Saved"]);
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
    let (path, text) = print_subject(&d);
    assert!(
        Path::new(&path).starts_with(data.path()),
        "printout outside the store folder: {path}"
    );
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

    // The data manager exports every format from the Export page, with its progress.
    let d = Driver::start(&desk);
    login(&d, "admin", "admin-password-1");
    d.set("#user-username", "zhou");
    d.set("#user-name", "Zhou Min 周敏");
    d.click("#user-role option[value='data_manager']");
    d.set("#user-password", "dm-password-1");
    d.click("#user-add");
    d.find("[data-user='zhou']");
    d.click("#lock");
    login(&d, "zhou", "dm-password-1");
    d.click("#nav-export");
    let folder = data.path().join("exports").join("desktop");
    d.set("#export-folder", &folder.display().to_string());
    d.click("#export-run");
    d.wait_text(
        "#export-files",
        &["csv:", "stata:", "spss:", "sas:", "odm:"],
    );
    d.wait_text(
        "#export-status",
        &["Exported", "recorded in the audit trail"],
    );
    for f in [
        "rnd.csv",
        "dictionary.csv",
        "read_ecrf.R",
        "rnd.dta",
        "rnd.sav",
        "rnd.xpt",
        "subjects.csv",
        "early-iabp-odm.xml",
    ] {
        assert!(folder.join(f).exists(), "{f} was not exported");
    }
    d.screenshot("12-export");
    d.quit();
    // Clinical forms: a subject of the ECMO+IABP arm randomized three days ago (set up through
    // the store, as a script would), daily logs for day 1 and day 2 entered in the window, the
    // trend chart with two points, and the 6-hour deviation flag once the late IABP is saved.
    let (subject, start) = iabp_arm_subject_three_days_ago(&data.path().join("ward.ecrf"));
    let day0 = start.date_naive();
    let d = Driver::start(&desk);
    login(&d, "li", "nurse-password-1");
    d.click(&format!("button[data-subject='{subject}']"));
    d.click("button[data-key='DLY#1']");
    d.type_in("#f-DATE", &(day0 + chrono::Duration::days(1)).to_string());
    d.pick("#f-ECMO_STATUS-RUNNING");
    d.type_in("#f-FLOW", "4.10");
    d.type_in("#f-MAP", "66");
    d.type_in("#f-LACTATE", "4.8");
    d.pick("#save");
    d.wait_text("#form-notice", &["Saved"]);
    d.pick("#back");
    // The next daily log (one keystroke, D, or this button): day 2, dated, with day 1's
    // device settings to confirm.
    d.click("#next-daily-log");
    d.wait_text("#form-notice", &["copied from DLY#1"]);
    assert_eq!(d.value("#f-FLOW"), "4.10");
    assert_eq!(
        d.value("#f-DATE"),
        (day0 + chrono::Duration::days(2)).to_string()
    );
    d.type_in("#f-MAP", "72");
    d.type_in("#f-LACTATE", "3.1");
    d.pick("#save");
    d.wait_text("#form-notice", &["Saved"]);
    d.find("#trends figure[data-chart='lactate'][data-points='2']");
    d.screenshot("12-daily-log-with-trends");
    d.pick("#back");
    d.find("#trends figure[data-chart='lactate'][data-points='2']");
    d.find("#trends figure[data-chart='map'][data-points='2']");
    // The IABP went in 6 h 10 min after the ECMO start: a protocol deviation, with its reason.
    d.click("button[data-key='IABP']");
    d.pick("#f-INSERTED-Y");
    let late = start + chrono::Duration::minutes(370);
    d.type_in(
        "#f-INSERT_DT",
        &late.format("%Y-%m-%dT%H:%M+00:00").to_string(),
    );
    d.pick("#save");
    d.wait_text("#form-notice", &["Saved"]);
    d.pick("#back");
    d.wait_text(
        "#flags li[data-flag='IABP_LATE']",
        &["Protocol deviation", "6 h 10 min"],
    );
    d.wait_text("#outcome-deviation", &["Yes"]);
    d.find("#trends line[data-mark='iabp_in']");
    d.screenshot("13-deviation-flag-and-trends");
    d.scroll_to("#outcomes");
    d.screenshot("14-outcomes-and-flags");
    d.quit();
}

/// A subject of the ECMO+IABP arm whose ECMO started at 08:00 UTC three days ago, randomized an
/// hour later (subjects are randomized through the store until one lands in that arm).
fn iabp_arm_subject_three_days_ago(
    store: &Path,
) -> (String, chrono::DateTime<chrono::FixedOffset>) {
    let study = std::sync::Arc::new(ecrf_core::trial::definition().expect("study"));
    let mut s = ecrf_store::Store::open(
        store,
        std::sync::Arc::clone(&study),
        "li",
        "nurse-password-1",
    )
    .expect("open as nurse");
    let day = chrono::Utc::now().date_naive() - chrono::Duration::days(3);
    let start = day
        .and_hms_opt(8, 0, 0)
        .expect("08:00")
        .and_utc()
        .fixed_offset();
    let at = |m: i64| {
        (start + chrono::Duration::minutes(m))
            .format("%Y-%m-%dT%H:%M+00:00")
            .to_string()
    };
    let key = |k: &str| ecrf_core::FormKey::parse(&study, k).expect("key");
    let opts = ecrf_store::SaveOptions {
        reason: None,
        confirm_warnings: true,
    };
    for _ in 0..7 {
        let id = s.new_subject().expect("subject");
        let scr = [
            ("SCRNO", "01-002".to_string()),
            ("SCR_DT", at(30)),
            ("AGE", "64".into()),
            ("SEX", "M".into()),
            ("INC1_AGE", "Y".into()),
            ("INC2_CS", "Y".into()),
            ("SBP_LT90", "Y".into()),
            ("SBP_LOW", "70".into()),
            ("SBP_DURATION", "40".into()),
            ("CATECHOL", "N".into()),
            ("LACT_GT3", "Y".into()),
            ("LACTATE", "6.2".into()),
            ("LACTATE_DT", at(0)),
            ("HYPOPERF", "Y".into()),
            ("HYPOPERF_SIGNS", "COLD".into()),
            ("INC3_ECMO", "Y".into()),
            ("ECMO_START_DT", at(0)),
            ("INC4_CONSENT", "Y".into()),
            ("EXC1_AI_DISSECTION", "N".into()),
            ("EXC2_PVD", "N".into()),
            ("EXC3_POSTCARDIOTOMY", "N".into()),
            ("EXC4_NONCARDIAC", "N".into()),
            ("EXC5_ECPR", "N".into()),
            ("EXC6_PRIOR_MCS", "N".into()),
            ("EXC7_BLEEDING", "N".into()),
            ("EXC8_MALIGNANCY", "N".into()),
            ("EXC9_NEURO", "N".into()),
        ];
        let scr: Vec<(&str, &str)> = scr.iter().map(|(k, v)| (*k, v.as_str())).collect();
        s.save(&id, &key("SCR"), &scr, &opts).expect("SCR");
        let con_dt = at(40);
        let con = [
            ("CONSENT_BY", "PATIENT"),
            ("CONSENT_DT", con_dt.as_str()),
            ("ICF_VERSION", "V1.0 2025-10-01"),
            ("OBTAINED_BY", "Dr Zhao"),
        ];
        s.save(&id, &key("CON"), &con, &opts).expect("CON");
        let ecmo_start = at(0);
        s.save(
            &id,
            &key("ECMO"),
            &[("START_DT", ecmo_start.as_str())],
            &opts,
        )
        .expect("ECMO");
        let r = s
            .randomize_at(&id, start + chrono::Duration::minutes(60))
            .expect("randomize");
        if r.arm == "ECMO_IABP" {
            return (id, start);
        }
    }
    panic!("no envelope of the ECMO+IABP arm among the next seven");
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

/// Site 01 with a nurse, a monitor and an investigator, and subject 01-0001 with ECMO and a
/// complete daily log of day 1, made through the store as the set-up and a nurse would.
fn oversight_site(store: &Path) {
    let study = std::sync::Arc::new(ecrf_core::trial::definition().expect("study"));
    let opts = ecrf_store::CreateOptions {
        site: "01".into(),
        admin_user: "admin".into(),
        admin_name: "Admin".into(),
        admin_password: "admin-password-1".into(),
    };
    let (mut admin, _) =
        ecrf_store::Store::create(store, std::sync::Arc::clone(&study), opts).expect("create");
    for (user, name, role) in [
        ("li", "Li Na 李娜", ecrf_core::Role::Nurse),
        ("mon", "Monica Monitor", ecrf_core::Role::Monitor),
        ("wang", "Dr Wang Wei 王伟", ecrf_core::Role::Investigator),
    ] {
        admin
            .add_user(user, name, role, &format!("{user}-password-1"))
            .expect("add user");
    }
    drop(admin);
    let mut nurse =
        ecrf_store::Store::open(store, study, "li", "li-password-1").expect("open as nurse");
    let subject = nurse.new_subject().expect("subject");
    let start = chrono::Local::now().date_naive() - chrono::Duration::days(3);
    let key = |text: &str| ecrf_core::FormKey::parse(nurse.study(), text).expect("key");
    let (ecmo, dly) = (key("ECMO"), key("DLY#1"));
    ecrf_app::demo::save_sample(
        &mut nurse,
        &subject,
        &ecmo,
        &ecrf_app::demo::ecmo_form(start),
    )
    .expect("ECMO");
    ecrf_app::demo::save_sample(
        &mut nurse,
        &subject,
        &dly,
        &ecrf_app::demo::daily_log(0, start, 1),
    )
    .expect("day 1");
}

#[test]
fn a_monitor_queries_the_nurse_corrects_the_monitor_verifies_and_the_investigator_signs() {
    let data = tempfile::tempdir().expect("temp folder");
    oversight_site(&data.path().join("ward.ecrf"));
    let desk = desktop(data.path());
    let d = Driver::start(&desk);

    // The monitor raises a query on the day-1 MAP; a monitor has no Save button.
    login(&d, "mon", "mon-password-1");
    d.click("button[data-subject='01-0001']");
    d.click("button[data-key='DLY#1']");
    d.find("#raise-query");
    d.wait_text("#form-actions", &["does not enter"]);
    d.click("#raise-item option[value='MAP']");
    d.type_in("#raise-text", "Chart says MAP 62 at 08:00");
    d.click("#raise-query");
    d.wait_text("#queries", &["Chart says MAP 62", "open", "mon"]);
    d.find("#l-MAP .query-badge");
    d.screenshot("20-monitor-raised-query");
    d.click("#lock");

    // The nurse answers by changing the value with a reason.
    login(&d, "li", "li-password-1");
    correct_day1_map(&d, "62", "transcribed from the wrong hour");
    d.find("#l-MAP .query-badge");
    d.find("#queries button[data-step='answer']");
    d.type_in("#queries input.q-text", "Corrected to 62 from the chart");
    d.click("#queries button[data-step='answer']");
    d.wait_text("#queries", &["answered"]);
    d.screenshot("21-nurse-answered");
    d.click("#lock");

    // The monitor closes the query and marks the form verified.
    login(&d, "mon", "mon-password-1");
    d.click("button[data-subject='01-0001']");
    d.click("button[data-key='DLY#1']");
    d.type_in("#queries input.q-text", "Matches the source");
    d.click("#queries button[data-step='close']");
    d.wait_text("#queries", &["closed"]);
    d.click("#verify-form");
    d.wait_text("#sdv-status", &["items verified"]);
    d.find("#l-MAP .sdv-mark");
    d.screenshot("22-monitor-closed-and-verified");
    d.click("#lock");

    // The investigator signs: user id and password the first time in the session.
    login(&d, "wang", "wang-password-1");
    d.click("button[data-subject='01-0001']");
    d.click("button[data-key='DLY#1']");
    d.click("#sign-form");
    d.type_in("#sign-user", "wang");
    d.type_in("#sign-password", "wrong-password");
    d.click("#sign-submit");
    d.wait_text("#sign-error", &["wrong password"]);
    d.type_in("#sign-password", "wang-password-1");
    d.click("#sign-submit");
    d.wait_text(
        "#signatures",
        &["Dr Wang Wei", "I approve the data", "valid"],
    );
    d.screenshot("23-investigator-signed");

    // The subject's PDF shows the query, the SDV mark and the signature.
    d.click("#back");
    let (_, text) = print_subject(&d);
    for needle in [
        "Chart says MAP 62",
        "source verified (SDV)",
        "Signed electronically",
        "Dr Wang Wei",
        "transcribed from the wrong hour",
        "query closed",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from the PDF:\n{text}"
        );
    }

    // The site-wide query list: nothing open any more; the closed query opens its form.
    d.click("#back");
    d.click("#nav-queries");
    d.wait_text("#ql-count", &["0 matching", "of 1"]);
    d.click("#ql-state option[value='closed']");
    d.wait_text(
        "#query-list",
        &["Chart says MAP 62", "closed", "01-0001", "DLY#1", "mon"],
    );
    d.screenshot("24-site-query-list");
    d.click("#query-list button[data-open]");
    d.find("#f-MAP");

    // The audit trail of that item: the nurse's correction with its reason, saved as CSV.
    d.click("#back");
    d.click("#back");
    d.click("#nav-audit");
    d.set("#al-subject", "01-0001");
    d.set("#al-item", "MAP");
    d.click("#al-show");
    d.wait_text(
        "#audit-list",
        &["transcribed from the wrong hour", "li (nurse)", "query"],
    );
    d.screenshot("25-audit-trail");
    d.click("#al-csv");
    let notice = d.wait_text("#al-notice", &[".csv"]);
    let path = notice
        .split_once(": ")
        .and_then(|(_, rest)| rest.rsplit_once(" ("))
        .map(|(p, _)| p.trim().to_string())
        .unwrap_or_default();
    let csv = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(csv.starts_with("seq,change_id,"), "{csv}");
    assert!(csv.contains("transcribed from the wrong hour"), "{csv}");
    assert!(
        csv.lines().skip(1).all(|l| l.contains(",MAP,")),
        "only MAP rows:\n{csv}"
    );
    d.quit();
}

/// The `ecrf` command line built beside this test binary (`cargo test --workspace` builds it).
fn ecrf_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("ecrf"))
        .expect("target folder");
    assert!(
        bin.exists(),
        "{} missing: build the workspace",
        bin.display()
    );
    bin
}

/// A fresh PostgreSQL database: under `DATABASE_URL` (make test starts a throwaway cluster), or
/// a cluster started for this test process by scripts/pg.sh.
fn fresh_database() -> String {
    let admin = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg.sh");
        let out = Command::new("bash")
            .arg(script)
            .args(["serve-while", &std::process::id().to_string()])
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/pg.sh");
        assert!(out.status.success(), "scripts/pg.sh failed");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    });
    let name = format!(
        "ecrf_desktop_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let out = Command::new("psql")
        .args([&admin, "-XAtq", "-c", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (base, _) = admin.rsplit_once('/').expect("database URL ends in /name");
    format!("{base}/{name}")
}

/// `ecrf … --database-url` against the server's database; its output.
fn server_admin(db: &str, args: &[&str]) -> String {
    let out = Command::new(ecrf_bin())
        .args(args)
        .args(["--database-url", db])
        .output()
        .expect("ecrf");
    assert!(
        out.status.success(),
        "ecrf {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn an_administrator_enrols_the_laptop_and_a_sync_shows_progress_and_a_conflict() {
    let data = tempfile::tempdir().expect("temp folder");
    oversight_site(&data.path().join("ward.ecrf"));
    // The real server over real HTTP, with its own PostgreSQL database.
    let db = fresh_database();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(data.path().join("server.log")).expect("log");
    let server = Guard(spawn_group(
        Command::new(ecrf_bin())
            .args(["server", "--database-url", &db, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--insecure-http")
            .stdout(Stdio::null())
            .stderr(log),
    ));
    let t = Instant::now();
    while http("GET", &format!("{url}/health"), None).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server_admin(&db, &["site", "add", "01", "--name", "Hospital 01"]);
    let code = server_admin(&db, &["device", "enrol-code", "--site", "01"]);

    let desk = desktop(data.path());
    let d = Driver::start(&desk);
    login(&d, "admin", "admin-password-1");
    d.wait_text("#badge-online", &["not enrolled"]);
    d.click("#nav-sync");
    d.type_in("#enrol-server", &url);
    d.type_in("#enrol-code", "wrong-code");
    d.click("#enrol-submit");
    d.wait_text("#enrol-notice", &["refused"]);
    d.clear("#enrol-code");
    d.type_in("#enrol-code", &code);
    d.click("#enrol-submit");
    d.wait_text("#enrol-notice", &["Enrolled"]);
    d.click("#sync-now");
    d.wait_text("#sync-notice", &["Synced", "sent"]);
    d.wait_text("#sync-waiting", &["0 waiting"]);
    assert!(!d.text("#sync-last").contains("never"));
    d.wait_text("#badge-online", &["Online"]);
    d.screenshot("30-sync-enrolled");
    d.click("#lock");

    // A second laptop of the site changes the day-1 MAP while this one is offline…
    let study = std::sync::Arc::new(ecrf_core::trial::definition().expect("study"));
    let other = data.path().join("other.ecrf");
    let (mut admin_b, _) = ecrf_store::Store::create(
        &other,
        std::sync::Arc::clone(&study),
        ecrf_store::CreateOptions {
            site: "01".into(),
            admin_user: "admin".into(),
            admin_name: "Admin B".into(),
            admin_password: "admin-password-1".into(),
        },
    )
    .expect("second laptop");
    admin_b
        .add_user("bo", "Bo Nurse", ecrf_core::Role::Nurse, "bo-password-1")
        .expect("nurse");
    drop(admin_b);
    let mut b = ecrf_store::Store::open(&other, study, "bo", "bo-password-1").expect("open");
    let code_b = server_admin(&db, &["device", "enrol-code", "--site", "01"]);
    ecrf_sync::enrol(&b, &url, &code_b, None).expect("enrol the second laptop");
    let client_b = ecrf_sync::client::client_of(&b).expect("client");
    ecrf_sync::sync(&mut b, &client_b, &mut |_| {}).expect("first sync of the second laptop");
    let dly1 = ecrf_core::FormKey::parse(b.study(), "DLY#1").expect("key");
    b.save(
        "01-0001",
        &dly1,
        &[("MAP", "70")],
        &ecrf_store::SaveOptions {
            reason: Some("re-read the monitor".into()),
            confirm_warnings: true,
        },
    )
    .expect("save on the second laptop");
    ecrf_sync::sync(&mut b, &client_b, &mut |_| {}).expect("second laptop syncs");

    // …and the nurse here changes the same value, then syncs: both values kept, shown.
    login(&d, "li", "li-password-1");
    correct_day1_map(&d, "62", "transcribed from the wrong hour");
    d.click("#back");
    d.click("#back");
    d.click("#nav-sync");
    let waiting = d.wait_text("#sync-waiting", &["waiting"]);
    assert!(
        !waiting.starts_with("0 "),
        "the correction waits to be sent: {waiting}"
    );
    d.click("#sync-now");
    d.wait_text("#sync-notice", &["Synced", "sent", "1 conflicts"]);
    d.wait_text(
        "#conflict-list",
        &["01-0001", "DLY#1", "MAP", "62", "70", "li", "bo"],
    );
    d.screenshot("31-sync-conflict");

    // The nurse checks the source, keeps the other laptop's 70 with a reason, and syncs: the
    // second laptop then reads 70 with no conflict left.
    let value = "#resolve-value-01-0001-DLY_1-MAP";
    d.clear(value);
    d.type_in(value, "70");
    d.type_in(
        "#resolve-reason-01-0001-DLY_1-MAP",
        "monitor strip shows 70",
    );
    d.click("form[data-resolve='DLY#1 MAP'] button[type='submit']");
    d.wait_text("#sync-notice", &["Resolved", "MAP"]);
    d.find("#no-conflicts");
    d.click("#sync-now");
    d.wait_text("#sync-notice", &["Synced", "0 conflicts"]);
    d.screenshot("32-sync-conflict-resolved");
    ecrf_sync::sync(&mut b, &client_b, &mut |_| {}).expect("second laptop syncs again");
    assert!(b.conflicts().expect("conflicts").is_empty());
    let map = b
        .form_values("01-0001", &dly1)
        .expect("values")
        .into_iter()
        .find(|v| v.item == "MAP")
        .expect("MAP");
    assert_eq!(map.value.to_string(), "70");
    d.quit();
    drop(server);
}
