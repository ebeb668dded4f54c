//! Transport and hostile peers (issue 19, point 6), against the real `ecrf server` and a real
//! PostgreSQL, and against a fake server that lies: enrolment codes bound to one new device
//! (`server-*` reserved, an existing device never taken over), the token checked before any
//! body is read, enrolment rate-limited, plain HTTP refused to another computer, and a client
//! that does not believe a server claiming more than it was sent or "more pages" forever.

mod server;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use ecrf_sync::SyncError;
use server::{Device, NURSE_PW, Server, ecrf_bin, fresh_database, psql};

fn setup() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&fresh_database(), dir.path());
    server.add_site("01");
    (dir, server)
}

/// `ecrf ARGS --database-url …` expected to fail: what it said.
fn admin_refused(server: &Server, args: &[&str]) -> String {
    let out = Command::new(ecrf_bin())
        .args(args)
        .args(["--database-url", &server.database_url])
        .output()
        .unwrap();
    assert!(!out.status.success(), "ecrf {args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout)
}

fn refused(r: Result<impl std::fmt::Debug, SyncError>) -> (u16, String) {
    match r {
        Err(SyncError::Refused { status, reason }) => (status, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn an_enrolment_code_enrols_only_the_new_device_it_was_made_for() {
    let (dir, server) = setup();
    let mut a = Device::new(dir.path(), "a", "01");
    let b = Device::new(dir.path(), "b", "01");
    let (a_id, b_id) = (
        a.store.device_id().to_string(),
        b.store.device_id().to_string(),
    );

    // A code for A does not enrol B, and is not spent by trying.
    let code_a = server.enrol_code("01", &a_id);
    let (status, why) = refused(ecrf_sync::enrol(&b.store, &server.url(), &code_a, None));
    assert_eq!(status, 403, "{why}");
    assert!(why.contains(&format!("made for device {a_id}")), "{why}");
    ecrf_sync::enrol(&a.store, &server.url(), &code_a, None).unwrap();
    a.store.new_subject().unwrap();
    a.sync();

    // No code is made for a device the server knows, nor for the server's own ids.
    let why = admin_refused(
        &server,
        &["device", "enrol-code", "--site", "01", "--device", &a_id],
    );
    assert!(why.contains("enrolled already"), "{why}");
    for reserved in ["server-01", "SERVER-02"] {
        let why = admin_refused(
            &server,
            &["device", "enrol-code", "--site", "01", "--device", reserved],
        );
        assert!(why.contains("the server's own"), "{reserved}: {why}");
    }

    // Two codes made for one new device: the second cannot take it over once enrolled.
    let first = server.enrol_code("01", &b_id);
    let second = server.enrol_code("01", &b_id);
    ecrf_sync::enrol(&b.store, &server.url(), &first, None).unwrap();
    let b_token = b.store.sync_setting("token").unwrap().unwrap();
    let (status, why) = refused(ecrf_sync::enrol(&b.store, &server.url(), &second, None));
    assert_eq!(status, 409, "{why}");
    assert!(why.contains("enrolled already"), "{why}");
    assert_eq!(
        b.store.sync_setting("token").unwrap().unwrap(),
        b_token,
        "the refused enrolment changed nothing here"
    );
    ecrf_sync::client::client_of(&b.store)
        .unwrap()
        .device()
        .expect("B's own token still works");

    // A code somehow bound to the server's own id (written straight into the database) is
    // still refused at enrolment: nothing is enrolled under that id.
    psql(
        &server.database_url,
        "INSERT INTO enrol_codes (code_hash, site, device, expires) VALUES \
         (encode(sha256('SRVCODE'::bytea), 'hex'), '01', 'server-01', now() + interval '1 hour')",
    );
    let body = br#"{"code":"SRVCODE","device":"server-01","site":"01"}"#;
    let (status, text) = raw_post(&server, "/api/v1/enrol", None, body);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("the server's own"), "{text}");
    assert_eq!(
        psql(
            &server.database_url,
            "SELECT count(*) FROM devices WHERE device = 'server-01'"
        ),
        "0"
    );
    // A still syncs with its own token.
    a.store.new_subject().unwrap();
    assert_eq!(a.sync().pushed, 1);
}

/// Sends a POST with a JSON body over a plain TCP connection; returns (status, whole reply).
fn raw_post(server: &Server, path: &str, token: Option<&str>, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_reply(&mut s)
}

fn read_reply(s: &mut TcpStream) -> (u16, String) {
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn the_token_is_checked_before_any_body_is_read() {
    let (dir, server) = setup();
    let a = Device::enrolled(dir.path(), "a", "01", &server);
    let token = a.store.sync_setting("token").unwrap().unwrap();
    // A push announcing 8 MiB but sending only its first bytes: without a valid token it is
    // refused at once (a server reading the body first would wait for the rest).
    for bad in [None, Some("NOT-A-TOKEN")] {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let auth = bad
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "POST /api/v1/sites/01/changes HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{{\"changes\":[",
            8 * 1024 * 1024 - 1
        );
        let t = Instant::now();
        s.write_all(head.as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(&mut s).read_line(&mut line).unwrap();
        assert!(line.contains(" 401 "), "{bad:?}: {line}");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "answered before the body"
        );
    }
    // With the token, the same half-sent body is waited for (no answer yet), then read.
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    let body = br#"{"changes":[]}"#;
    let head = format!(
        "POST /api/v1/sites/01/changes HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/json\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body[..5]).unwrap();
    let mut byte = [0u8; 1];
    assert!(
        s.read(&mut byte).is_err(),
        "a caller with a token is waited for"
    );
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&body[5..]).unwrap();
    let (status, text) = read_reply(&mut s);
    assert_eq!(status, 200, "{text}");

    // Enrolment and the small endpoints take small bodies only.
    let big = format!(
        r#"{{"code":"X","device":"d","site":"01","pad":"{}"}}"#,
        "x".repeat(64 * 1024)
    );
    let (status, text) = raw_post(&server, "/api/v1/enrol", None, big.as_bytes());
    assert_eq!(status, 413, "{text}");
}

#[test]
fn enrolment_attempts_are_rate_limited_per_address() {
    let dir = tempfile::tempdir().unwrap();
    // The server's default limit (what `ecrf server` runs with unless told otherwise).
    let limit = ecrf_server::api::Limits::default().enrol_per_minute;
    assert_eq!(limit, 10);
    let server = Server::start_with_enrol_limit(&fresh_database(), dir.path(), limit);
    server.add_site("01");
    let d = Device::new(dir.path(), "d", "01");
    let body = |code: &str| {
        format!(
            r#"{{"code":"{code}","device":"{}","site":"01"}}"#,
            d.store.device_id()
        )
    };
    for i in 0..10 {
        let (status, text) = raw_post(
            &server,
            "/api/v1/enrol",
            None,
            body(&format!("GUESS{i}")).as_bytes(),
        );
        assert_eq!(status, 401, "attempt {i}: {text}");
    }
    // The eleventh within the minute is refused before any code is looked at, even a good one.
    let good = server.enrol_code("01", d.store.device_id());
    let (status, text) = raw_post(&server, "/api/v1/enrol", None, body(&good).as_bytes());
    assert_eq!(status, 429, "{text}");
    assert!(text.contains("too many enrolment attempts"), "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after"), "{text}");
    assert_eq!(
        psql(
            &server.database_url,
            "SELECT count(*) FROM enrol_codes WHERE used_by IS NOT NULL"
        ),
        "0",
        "the good code was not spent"
    );
    // Other requests are not limited: the health check answers.
    ecrf_sync::Client::new(&server.url(), None)
        .unwrap()
        .health()
        .unwrap();
}

#[test]
fn plain_http_to_another_computer_is_refused_by_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = Device::new(dir.path(), "d", "01");
    drop(d.store);
    for url in ["http://192.0.2.10:8443", "http://ecrf.example.org"] {
        let out = Command::new(ecrf_bin())
            .args(["enrol", "--server", url, "--code", "ABCDEF"])
            .env("ECRF_STORE", &d.path)
            .env("ECRF_USER", "nurse")
            .env("ECRF_PASSWORD", NURSE_PW)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url}");
        assert!(said.contains("only to this computer"), "{url}: {said}");
    }
}

/// What a liar answers: (path, request body) → JSON reply.
type Answer = Box<dyn Fn(&str, &str) -> String + Send>;

/// A fake server on loopback: every request gets what `answer` says for its path.
struct Liar {
    port: u16,
}

impl Liar {
    fn start(answer: Answer) -> Liar {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                let mut length = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut reply = answer(&path, &String::from_utf8_lossy(&body));
                // No answer: an endpoint this (older) server does not have.
                let status = if reply.is_empty() {
                    reply = r#"{"error":"no such endpoint"}"#.into();
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        Liar { port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Syncs `d` with the liar (same token and settings as its real enrolment) and returns the
/// client's refusal of the reply.
fn refused_reply(d: &mut Device, liar: &Liar) -> String {
    d.store
        .set_sync_setting(ecrf_sync::client::setting::SERVER, &liar.url())
        .unwrap();
    let client = ecrf_sync::client::client_of(&d.store).unwrap();
    match ecrf_sync::sync(&mut d.store, &client, &mut |_| {}) {
        Err(e @ SyncError::Reply(_)) => e.to_string(),
        other => panic!("expected the reply to be refused, got {other:?}"),
    }
}

fn device_reply(device: &str, acked: i64) -> String {
    format!(r#"{{"device":"{device}","site":"01","acked":{acked}}}"#)
}

const NO_PAGE: &str = r#"{"changes":[],"cursor":0,"more":false}"#;

/// The one-request sync's reply (`POST …/sync`) made of its three parts.
fn sync_reply(device: &str, push: Option<&str>, pull: &str) -> String {
    format!(
        r#"{{"device":{device},"push":{},"pull":{pull}}}"#,
        push.unwrap_or("null")
    )
}

#[test]
fn a_server_claiming_more_than_it_was_sent_or_more_pages_forever_is_not_believed() {
    let (dir, _server) = setup();
    let mut d = Device::enrolled(dir.path(), "d", "01", &_server);
    d.store.new_subject().unwrap();
    let id = d.store.device_id().to_string();
    let own = d.store.own_change_count_after(0).unwrap() as i64;
    let unchanged = |d: &Device| {
        assert_eq!(
            d.store.sync_state().unwrap().pushed,
            0,
            "nothing recorded as sent"
        );
        assert_eq!(
            d.store.sync_state().unwrap().pulled,
            0,
            "no pull cursor moved"
        );
    };

    // It says it holds more of this device's changes than the device ever made.
    let (i, n) = (id.clone(), own + 1);
    let liar = Liar::start(Box::new(move |_, _| {
        sync_reply(&device_reply(&i, n), None, NO_PAGE)
    }));
    let why = refused_reply(&mut d, &liar);
    assert!(why.contains(&format!("has made {own}")), "{why}");
    unchanged(&d);

    // It answers for another device.
    let liar = Liar::start(Box::new(|_, _| {
        sync_reply(&device_reply("someone-else", 0), None, NO_PAGE)
    }));
    let why = refused_reply(&mut d, &liar);
    assert!(why.contains("answered for device someone-else"), "{why}");
    unchanged(&d);

    // It acknowledges more than the page it was sent: in the one-request sync, and with a
    // server without it (404), in the push of its own.
    let lie = r#"{"acked":100000,"stored":1,"flags":[]}"#;
    for one_request in [true, false] {
        let i = id.clone();
        let liar = Liar::start(Box::new(move |path, _| {
            if path.contains("/sync") {
                if one_request {
                    sync_reply(&device_reply(&i, 0), Some(lie), NO_PAGE)
                } else {
                    String::new()
                }
            } else if path.starts_with("/api/v1/device") {
                device_reply(&i, 0)
            } else {
                lie.into()
            }
        }));
        let why = refused_reply(&mut d, &liar);
        assert!(
            why.contains("acknowledged changes up to #100000")
                && why.contains(&format!("#{own} were sent")),
            "{why}"
        );
        unchanged(&d);
    }

    // It says more pages follow without moving its cursor.
    let i = id.clone();
    let forever = r#"{"changes":[],"cursor":0,"more":true}"#;
    let liar = Liar::start(Box::new(move |path, _| {
        if path.contains("/sync") {
            sync_reply(&device_reply(&i, own), None, forever)
        } else if path.starts_with("/api/v1/device") {
            device_reply(&i, own)
        } else {
            forever.into()
        }
    }));
    d.store.set_pushed(own).unwrap();
    let why = refused_reply(&mut d, &liar);
    assert!(why.contains("no progress"), "{why}");
    assert_eq!(
        d.store.sync_state().unwrap().pulled,
        0,
        "no pull cursor moved"
    );
}

#[test]
fn a_pulled_page_with_an_altered_change_is_refused_after_the_good_pages_before_it() {
    let (dir, server) = setup();
    let mut d = Device::enrolled(dir.path(), "d", "01", &server);
    let own = d.store.own_change_count_after(0).unwrap() as i64;
    d.store.set_pushed(own).unwrap();
    // Another laptop's changes, as a server would pass them on: two pages of two.
    let mut other = Device::new(dir.path(), "e", "01");
    other.store.new_subject().unwrap();
    let mut theirs = other.store.own_changes_after(0, 4).unwrap();
    assert_eq!(theirs.len(), 4);
    theirs[3].reason = Some("altered on the way".into());
    let altered_id = theirs[3].change_id.clone();
    let page = |changes: &[ecrf_log::Change], cursor: i64, more: bool| {
        serde_json::to_string(&ecrf_sync::wire::PullReply {
            changes: changes.to_vec(),
            cursor,
            more,
            server_version: None,
        })
        .unwrap()
    };
    let (first, second) = (page(&theirs[..2], 2, true), page(&theirs[2..], 4, false));
    let i = d.store.device_id().to_string();
    let liar = Liar::start(Box::new(move |path, _| {
        if path.contains("/sync") {
            sync_reply(&device_reply(&i, own), None, &first)
        } else if path.contains("after=0&") {
            first.clone()
        } else {
            second.clone()
        }
    }));
    let held_before = d.store.all_changes().unwrap().len();
    let why = refused_reply(&mut d, &liar);
    assert!(why.contains("does not match its hash"), "{why}");
    assert!(
        why.contains(&altered_id),
        "the altered change is named: {why}"
    );
    assert_eq!(
        d.store.sync_state().unwrap().pulled,
        2,
        "the good page before it was applied with its cursor, the altered one not at all"
    );
    let held: Vec<String> = d
        .store
        .all_changes()
        .unwrap()
        .into_iter()
        .skip(held_before)
        .map(|c| c.change_id)
        .collect();
    let expected: Vec<String> = theirs[..2].iter().map(|c| c.change_id.clone()).collect();
    assert_eq!(held, expected);
}
