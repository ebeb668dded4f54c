//! Property: whatever the network does — connections cut after N bytes either way, requests
//! duplicated or delayed — and with the server killed and restarted mid-sync, after retries every
//! replica (two laptops and the server) holds exactly the same log: none lost, none twice.
//! A TCP proxy in the test stands between the laptops and the real `ecrf server`. And a push of
//! several pages, whose pages go two at a time, loses nothing when one overtakes another.

mod server;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use server::{Device, Server, fresh_database, server_log};

#[derive(Debug, Clone)]
enum Fault {
    Pass,
    /// Forward only this many bytes of the request, then cut.
    CutRequest(usize),
    /// Forward the request, only this many bytes of the reply, then cut.
    CutReply(usize),
    /// Hold the connection this long first.
    Delay(u64),
    /// Send the first request twice (the copy's reply is thrown away).
    Duplicate,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        2 => Just(Fault::Pass),
        2 => (0usize..2500).prop_map(Fault::CutRequest),
        3 => (0usize..4000).prop_map(Fault::CutReply),
        1 => (1u64..150).prop_map(Fault::Delay),
        2 => Just(Fault::Duplicate),
    ]
}

/// Copies `from` → `to` until EOF or `limit` bytes, then shuts both down; `watch` sees each
/// chunk before it is forwarded (and may hold it back).
fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    limit: Option<usize>,
    mut watch: impl FnMut(&[u8]),
) {
    let mut buf = [0u8; 8192];
    let mut sent = 0usize;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        watch(&buf[..n]);
        let n = match limit {
            Some(l) if sent + n >= l => {
                let _ = to.write_all(&buf[..l - sent]);
                break;
            }
            _ => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n;
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

struct Proxy {
    port: u16,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    connections: Arc<AtomicUsize>,
    watch: Arc<Watch>,
}

/// What the proxy looks for in the bytes it forwards.
#[derive(Default)]
struct Watch {
    /// Requests held back: each [`Hold`] once.
    holds: Mutex<Vec<Hold>>,
    /// Replies `409 Conflict` seen.
    conflicts: AtomicUsize,
}

/// The request chunk in which `marker` is seen for the `nth` time waits `wait` first.
struct Hold {
    marker: &'static [u8],
    nth: usize,
    wait: Duration,
    seen: usize,
}

impl Watch {
    fn hold(&self, marker: &'static [u8], nth: usize, wait: Duration) {
        self.holds.lock().unwrap().push(Hold {
            marker,
            nth,
            wait,
            seen: 0,
        });
    }

    /// Every hold was met.
    fn held(&self) -> bool {
        self.holds.lock().unwrap().iter().all(|h| h.seen >= h.nth)
    }

    /// `tail`: the end of the connection's previous chunk (a marker may straddle two); a
    /// marker counts in the chunk where it ends.
    fn request(&self, tail: &mut Vec<u8>, chunk: &[u8]) {
        let before = tail.len();
        tail.extend_from_slice(chunk);
        let mut wait = Duration::ZERO;
        for h in self.holds.lock().unwrap().iter_mut() {
            let n = h.marker.len();
            let ending_here = tail
                .windows(n)
                .enumerate()
                .filter(|(i, w)| *w == h.marker && i + n > before)
                .count();
            for _ in 0..ending_here {
                h.seen += 1;
                if h.seen == h.nth {
                    wait += h.wait;
                }
            }
        }
        let keep = tail.len().saturating_sub(64);
        tail.drain(..keep);
        std::thread::sleep(wait);
    }

    fn reply(&self, chunk: &[u8]) {
        if chunk.starts_with(b"HTTP/1.1 409") {
            self.conflicts.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let faults: Arc<Mutex<VecDeque<Fault>>> = Arc::default();
        let connections: Arc<AtomicUsize> = Arc::default();
        let watch: Arc<Watch> = Arc::default();
        let (f, n, w) = (
            Arc::clone(&faults),
            Arc::clone(&connections),
            Arc::clone(&watch),
        );
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                n.fetch_add(1, Ordering::SeqCst);
                let fault = f.lock().unwrap().pop_front().unwrap_or(Fault::Pass);
                let w = Arc::clone(&w);
                std::thread::spawn(move || handle(client, upstream, fault, &w));
            }
        });
        Proxy {
            port,
            faults,
            connections,
            watch,
        }
    }
}

impl Proxy {
    /// A client of laptop `d` that goes through this proxy.
    fn client_of(&self, d: &Device) -> ecrf_sync::Client {
        ecrf_sync::Client::new(&format!("http://127.0.0.1:{}", self.port), None)
            .unwrap()
            .with_token(&d.store.sync_setting("token").unwrap().unwrap())
    }
}

fn handle(mut client: TcpStream, upstream: u16, fault: Fault, watch: &Arc<Watch>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let (mut req_limit, mut reply_limit) = (None, None);
    match fault {
        Fault::Pass => {}
        Fault::CutRequest(n) => req_limit = Some(n),
        Fault::CutReply(n) => reply_limit = Some(n),
        Fault::Delay(ms) => std::thread::sleep(Duration::from_millis(ms)),
        Fault::Duplicate => {
            // Gather the first request (until the client pauses), send it twice.
            let mut first = Vec::new();
            let _ = client.set_read_timeout(Some(Duration::from_millis(150)));
            let mut buf = [0u8; 65536];
            while let Ok(n) = client.read(&mut buf) {
                if n == 0 {
                    break;
                }
                first.extend_from_slice(&buf[..n]);
            }
            let _ = client.set_read_timeout(None);
            if let Ok(mut copy) = TcpStream::connect(("127.0.0.1", upstream)) {
                let bytes = first.clone();
                std::thread::spawn(move || {
                    let _ = copy.write_all(&bytes);
                    let _ = copy.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut sink = Vec::new();
                    let _ = copy.read_to_end(&mut sink);
                });
            }
            let mut s = &server;
            if s.write_all(&first).is_err() {
                return;
            }
        }
    }
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up_watch = Arc::clone(watch);
    let up = std::thread::spawn(move || {
        let mut tail = Vec::new();
        pipe(client, server, req_limit, |chunk| {
            up_watch.request(&mut tail, chunk)
        })
    });
    pipe(s2, c2, reply_limit, |chunk| watch.reply(chunk));
    let _ = up.join();
}

fn day_entries(day: u32) -> Vec<(&'static str, String)> {
    vec![
        ("HR", format!("{}", 70 + day)),
        ("MAP", format!("{}", 60 + day)),
        ("LACTATE", format!("{}.{}", 1 + day % 3, day % 10)),
    ]
}

struct World {
    dir: tempfile::TempDir,
    server: Arc<Mutex<Server>>,
    upstream: u16,
    sites: AtomicUsize,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(&fresh_database(), dir.path());
        let upstream = server.port;
        World {
            dir,
            server: Arc::new(Mutex::new(server)),
            upstream,
            sites: AtomicUsize::new(0),
        }
    }
}

#[test]
fn every_replica_ends_with_the_same_log_whatever_the_network_does() {
    // The world (and its server) lives in this test, so the server is killed when the test
    // ends: held in a static it never dropped, and outlived `make test`.
    let world = World::new();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(12),
        max_shrink_iters: 0,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let cases = (
        proptest::collection::vec(fault(), 0..14),
        proptest::option::of(0u64..400),
        1u32..5,
    );
    let outcome = runner.run(&cases, |(faults, restart_after_ms, days)| {
        let w = &world;
        let n = w.sites.fetch_add(1, Ordering::SeqCst);
        let site = format!("P{n}");
        let (db, url) = {
            let s = w.server.lock().unwrap();
            s.add_site(&site);
            (s.database_url.clone(), s.url())
        };
        let dir = w.dir.path().join(&site);
        std::fs::create_dir_all(&dir).unwrap();
        let (mut a, mut b) = {
            let s = w.server.lock().unwrap();
            (
                Device::enrolled(&dir, "a", &site, &s),
                Device::enrolled(&dir, "b", &site, &s),
            )
        };
        let _ = url;
        // Offline work on both laptops: own subjects, and the same item of A's subject.
        let sa = a.store.new_subject().unwrap();
        let sb = b.store.new_subject().unwrap();
        for day in 1..=days {
            let e = day_entries(day);
            let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
            a.save(&sa, &format!("DLY#{day}"), &e);
            b.save(&sb, &format!("DLY#{day}"), &e);
        }
        let proxy = Proxy::start(w.upstream);
        proxy.faults.lock().unwrap().extend(faults.iter().cloned());
        let via = proxy.client_of(&a);
        let via_b = proxy.client_of(&b);
        let restarter = restart_after_ms.map(|ms| {
            let server = Arc::clone(&w.server);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(ms));
                server.lock().unwrap().restart();
            })
        });
        a.sync_via(&via, 200);
        b.sync_via(&via_b, 200);
        if let Some(t) = restarter {
            t.join().unwrap();
        }
        // B's edit of A's subject after seeing it, and one more round through the faults.
        b.save(&sa, "DLY#1", &[("HR", "99")]);
        b.sync_via(&via_b, 200);
        a.sync_via(&via, 200);
        b.sync_via(&via_b, 200);
        a.sync_via(&via, 200);
        let server_has = server_log(&db, &site);
        prop_assert_eq!(a.log(), b.log(), "the two laptops differ");
        prop_assert_eq!(&a.log(), &server_has, "a laptop and the server differ");
        let mut dedup = server_has.clone();
        dedup.dedup();
        prop_assert_eq!(dedup.len(), server_has.len(), "a change is held twice");
        let hr = a.value(&sa, "DLY#1", "HR");
        prop_assert_eq!(hr.as_deref(), Some("99"));
        prop_assert!(a.store.conflicts().unwrap().is_empty());
        for d in [&a, &b] {
            let report = d.store.verify().unwrap();
            prop_assert!(report.ok(), "{:?}", report.problems);
        }
        prop_assert!(proxy.connections.load(Ordering::SeqCst) > 0);
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

#[test]
fn a_pushed_page_that_overtakes_the_one_before_it_is_sent_again_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database();
    let server = Server::start(&db, dir.path());
    server.add_site("Q1");
    let mut a = Device::enrolled(dir.path(), "a", "Q1", &server);
    // Three pages of changes: the sync pushes them page by page, two on their way at once.
    a.daily_logs_past(0, 2 * ecrf_sync::wire::MAX_PAGE + 200);
    let own = a.store.own_change_count_after(0).unwrap();
    let proxy = Proxy::start(server.port);
    // The first page (it holds change #1) is held back: the second, sent while the first is
    // away, reaches the server first, does not follow what it holds and is refused whole. It
    // is sent again (and that too is held back) before the third leaves: the third, sent
    // early, would overtake it in turn.
    proxy
        .watch
        .hold(b"\"device_seq\":1,", 1, Duration::from_secs(2));
    proxy
        .watch
        .hold(b"\"device_seq\":1001,", 2, Duration::from_secs(1));
    let via = proxy.client_of(&a);
    // One sync, no retry: the page refused for overtaking is sent again within it.
    let report = a.sync_via(&via, 1);
    assert!(proxy.watch.held(), "a page held back was never seen");
    assert_eq!(
        proxy.watch.conflicts.load(Ordering::SeqCst),
        1,
        "the second page overtook the first, and nothing overtook it again"
    );
    assert_eq!(report.pushed, own);
    assert_eq!(a.store.sync_state().unwrap().pushed, own as i64);
    assert_eq!(a.log(), server_log(&db, "Q1"));
    // The server holds the device's chain in order: seq follows device_seq.
    let order = server::psql(
        &db,
        "SELECT bool_and(device_seq = rank) FROM (SELECT device_seq, \
         row_number() OVER (ORDER BY seq) AS rank FROM changes WHERE site = 'Q1') t",
    );
    assert_eq!(order.trim(), "t");
}
