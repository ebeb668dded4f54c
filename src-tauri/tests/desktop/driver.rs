//! A small WebDriver client: find, click, type, wait for text, screenshots.

use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::harness::{Desktop, shots_dir};

pub(crate) const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub(crate) const WAIT: Duration = Duration::from_secs(20);

pub(crate) struct Driver {
    base: String,
    session: String,
    display: String,
}

pub(crate) fn http(method: &str, url: &str, body: Option<&Value>) -> Result<Value, String> {
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
    pub(crate) fn start(desk: &Desktop) -> Driver {
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

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    pub(crate) fn quit(self) {
        let _ = http("DELETE", &self.url(""), None);
    }

    /// Waits for an element matching `css` and returns its id.
    pub(crate) fn find(&self, css: &str) -> String {
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
    pub(crate) fn click(&self, css: &str) {
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
    pub(crate) fn pick(&self, css: &str) {
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

    /// Calls one of the app's commands from the page (what a native dialog would have led to:
    /// the dialogs themselves cannot be driven); panics with the app's error.
    pub(crate) fn invoke(&self, command: &str, args: Value) {
        let script = "const done = arguments[arguments.length - 1]; \
                      window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1]) \
                      .then(() => done(null), (e) => done(JSON.stringify(e)));";
        let reply = http(
            "POST",
            &self.url("/execute/async"),
            Some(&json!({"script": script, "args": [command, args]})),
        )
        .unwrap_or_else(|e| panic!("invoke {command}: {e}"));
        assert!(reply["value"].is_null(), "invoke {command}: {reply}");
    }

    /// Scrolls the page so that this element is at the top (for a screenshot).
    pub(crate) fn scroll_to(&self, css: &str) {
        self.find(css);
        let script = "document.querySelector(arguments[0]).scrollIntoView({block: 'start'});";
        http(
            "POST",
            &self.url("/execute/sync"),
            Some(&json!({"script": script, "args": [css]})),
        )
        .unwrap_or_else(|e| panic!("scroll to {css}: {e}"));
    }

    pub(crate) fn clear(&self, css: &str) {
        let id = self.find(css);
        http(
            "POST",
            &self.url(&format!("/element/{id}/clear")),
            Some(&json!({})),
        )
        .unwrap_or_else(|e| panic!("clear {css}: {e}"));
    }

    pub(crate) fn type_in(&self, css: &str, text: &str) {
        let id = self.find(css);
        http(
            "POST",
            &self.url(&format!("/element/{id}/value")),
            Some(&json!({"text": text})),
        )
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub(crate) fn set(&self, css: &str, text: &str) {
        self.clear(css);
        self.type_in(css, text);
    }

    pub(crate) fn text(&self, css: &str) -> String {
        let id = self.find(css);
        http("GET", &self.url(&format!("/element/{id}/text")), None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub(crate) fn value(&self, css: &str) -> String {
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

    pub(crate) fn displayed(&self, css: &str) -> bool {
        let id = self.find(css);
        http("GET", &self.url(&format!("/element/{id}/displayed")), None)
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    /// Waits until the text of `css` contains every one of `parts`.
    pub(crate) fn wait_text(&self, css: &str, parts: &[&str]) -> String {
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
    pub(crate) fn screenshot(&self, name: &str) {
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
