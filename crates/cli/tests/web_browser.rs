//! The web view in real Chromium (Debian `chromium` + `chromium-driver`, headless, over
//! WebDriver), against the real `ecrf server`, PostgreSQL and a laptop's store: a monitor of
//! sites 01 and 03 logs in, sees only those sites, opens a subject, raises a query; the laptop
//! receives it at sync and its nurse answers; the answer is on the web. A screenshot of each
//! step is kept in `target/web-screenshots/`.

mod server;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use ecrf_core::query::QueryStep;
use ecrf_testkit::eligible_subject;
use serde_json::{Value, json};
use server::{Device, Server, free_port, fresh_database};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const WAIT: Duration = Duration::from_secs(20);
const MONITOR_PW: &str = "monitor-web-2026-kestrel";

fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/web-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
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
        Err(format!("{status}: {}", v["value"]["message"]))
    }
}

/// Standard base64 (a screenshot's PNG).
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !b"=\r\n".contains(c)).collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, c)| {
            acc | (u32::from(val(*c)) << (18 - 6 * i))
        });
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    out
}

struct Chrome {
    driver: Child,
    base: String,
    session: String,
}

impl Chrome {
    fn start() -> Chrome {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt install chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().unwrap().keep();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000",
                         "--lang=en-GB", format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match http("POST", &format!("{base}/session"), Some(&caps)) {
                Ok(v) => {
                    let session = v["sessionId"].as_str().expect("session id").to_string();
                    return Chrome {
                        driver,
                        base,
                        session,
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

    fn go(&self, url: &str) {
        http("POST", &self.url("/url"), Some(&json!({"url": url}))).unwrap();
    }

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
                self.shot("FAILED");
                panic!("no element {css}: {}", self.source());
            }
            sleep(Duration::from_millis(150));
        }
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        http(
            "POST",
            &self.url(&format!("/element/{id}/click")),
            Some(&json!({})),
        )
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
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

    fn source(&self) -> String {
        http("GET", &self.url("/source"), None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The element's text; empty when the page was replaced between finding and reading it
    /// (a stale element: `wait_text` then asks again).
    fn text(&self, css: &str) -> String {
        let id = self.find(css);
        http("GET", &self.url(&format!("/element/{id}/text")), None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Waits until the page's visible text contains `needle`.
    fn wait_text(&self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.text("body").contains(needle) {
                return;
            }
            if Instant::now() > deadline {
                self.shot("FAILED");
                panic!("no {needle:?} on the page: {}", self.text("body"));
            }
            sleep(Duration::from_millis(150));
        }
    }

    fn shot(&self, name: &str) {
        if let Ok(v) = http("GET", &self.url("/screenshot"), None)
            && let Some(b64) = v.as_str()
        {
            let _ = std::fs::write(shots_dir().join(format!("{name}.png")), base64_decode(b64));
        }
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = http("DELETE", &self.url(""), None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn a_monitor_raises_a_query_in_chromium_that_a_nurse_answers_on_her_laptop() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&fresh_database(), dir.path());
    for s in ["01", "02", "03"] {
        server.add_site(s);
    }
    for site in ["01", "03"] {
        server.registered(site, "mona", "monitor", MONITOR_PW);
    }
    let mut laptop = Device::enrolled(dir.path(), "a", "01", &server);
    let id = eligible_subject(&mut laptop.store, "01-W1");
    laptop.sync();
    // `localhost` is a secure context: the browser keeps the Secure cookie over plain HTTP.
    let web = server.url().replace("127.0.0.1", "localhost");

    let chrome = Chrome::start();
    chrome.go(&format!("{web}/web/login"));
    chrome.type_in("#username", "mona");
    chrome.type_in("#password", MONITOR_PW);
    chrome.shot("web-01-login");
    chrome.click("#login");
    chrome.wait_text("Trial dashboard");
    chrome.shot("web-02-dashboard");
    let nav = chrome.text("nav.sites");
    assert!(nav.contains("Site 01") && nav.contains("Site 03"), "{nav}");
    assert!(!nav.contains("Site 02"), "site 02 is offered: {nav}");
    let enrolment = chrome.text("#enrolment-table");
    assert!(!enrolment.contains("Hospital 02"), "{enrolment}");

    // Another site's page, typed in by hand: refused.
    chrome.go(&format!("{web}/web/sites/02"));
    chrome.wait_text("not assigned to site 02");
    chrome.shot("web-03-site-02-refused");

    chrome.go(&format!("{web}/web/sites/01"));
    chrome.click(&format!("tr[data-subject=\"{id}\"] a"));
    chrome.wait_text(&format!("Subject {id}"));
    chrome.shot("web-04-subject");

    chrome.click("#f-SCR select[name=item] option[value=AGE]");
    chrome.type_in(
        "#f-SCR textarea[name=text]",
        "Please check the age against the ID card.",
    );
    chrome.click("#f-SCR form.raise button");
    chrome.wait_text("Please check the age against the ID card.");
    chrome.shot("web-05-query-raised");
    assert!(chrome.text("div.query").contains("open"));

    // The laptop receives it at its next sync; the nurse answers there.
    laptop.sync();
    let q = laptop
        .store
        .queries(Some(&id))
        .unwrap()
        .into_iter()
        .find(|q| q.item == "AGE")
        .expect("the query reached the laptop");
    assert_eq!(q.raised_by, "mona");
    laptop
        .store
        .query_step(&q.id, QueryStep::Answer, "Checked: 62 on the ID card.")
        .unwrap();
    laptop.sync();

    chrome.go(&format!("{web}/web/sites/01/subjects/{id}"));
    chrome.wait_text("Checked: 62 on the ID card.");
    assert!(chrome.text("div.query").contains("answered"));
    chrome.shot("web-06-answer-on-the-web");

    // In Chinese too.
    chrome.go(&format!("{web}/web/?lang=zh"));
    chrome.wait_text("试验总览");
    chrome.shot("web-07-dashboard-zh");
}
