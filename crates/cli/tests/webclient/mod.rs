//! A browser's part in HTTP for the web view's tests: cookies kept, redirects not followed
//! (so each answer can be checked), forms posted as a browser posts them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

/// One answer.
pub struct Page {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field in {}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

pub struct Browser {
    pub base: String,
    pub cookies: BTreeMap<String, String>,
    agent: ureq::Agent,
}

fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Browser {
            base: base.trim_end_matches('/').to_string(),
            cookies: BTreeMap::new(),
            agent,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, page: &Page) {
        for c in page.set_cookies() {
            let first = c.split(';').next().unwrap_or("");
            if let Some((k, v)) = first.split_once('=') {
                if v.is_empty() || c.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_string(), v.to_string());
                }
            }
        }
    }

    fn read(mut resp: ureq::http::Response<ureq::Body>) -> Page {
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    pub fn get(&mut self, path: &str) -> Page {
        let resp = self
            .agent
            .get(&format!("{}{path}", self.base))
            .header("Cookie", &self.cookie_header())
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let page = Self::read(resp);
        self.keep(&page);
        page
    }

    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let resp = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("Cookie", &self.cookie_header())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(form_encode(fields))
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let page = Self::read(resp);
        self.keep(&page);
        page
    }

    /// Logs in (login page, then the form with its token); the answer to the POST.
    pub fn log_in(&mut self, user: &str, password: &str) -> Page {
        let form = self.get("/web/login");
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.csrf();
        self.post(
            "/web/login",
            &[("username", user), ("password", password), ("csrf", &csrf)],
        )
    }
}
