//! What every request meets before its handler: a deadline, a cap on requests in flight, and a
//! rate limit on enrolment per client address (guessing codes); the body limits are set per
//! route in the router and the token is checked before a body is read ([`super::extract`]).
//!
//! Invariants: a request over its deadline is answered 503 and its work dropped (an open
//! transaction rolls back); a request that waits for a place in flight longer than
//! [`Limits::queue_wait`] is answered 503, never queued without end; the rate limiter's memory
//! is bounded ([`RateLimiter::MAX_ADDRESSES`]). Everything here is in memory: one server
//! process, no new dependency (tokio's semaphore and timer).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::ApiError;

/// The server's limits (`ecrf server` uses [`Limits::default`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest a request may take, reading its body included.
    pub request_timeout: Duration,
    /// Requests handled at once; more wait for a place.
    pub in_flight: usize,
    /// Longest a request waits for a place before it is answered 503.
    pub queue_wait: Duration,
    /// Enrolment attempts per client address per minute.
    pub enrol_per_minute: u32,
    /// Longest the server waits for a request's headers (slow clients hold no connection).
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout: Duration::from_secs(60),
            in_flight: 64,
            queue_wait: Duration::from_secs(20),
            enrol_per_minute: 10,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Counts attempts per address in fixed one-minute windows.
#[derive(Debug)]
pub struct RateLimiter {
    most: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimiter {
    /// Addresses remembered at most; older windows are forgotten first when full.
    pub const MAX_ADDRESSES: usize = 10_000;

    /// At most `most` attempts per address per `window`.
    pub fn new(most: u32, window: Duration) -> Self {
        RateLimiter {
            most,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt from `ip` at `now`: `Err(wait)` when over the limit.
    pub fn attempt(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= Self::MAX_ADDRESSES && !seen.contains_key(&ip) {
            let window = self.window;
            seen.retain(|_, (start, _)| now.duration_since(*start) < window);
            if seen.len() >= Self::MAX_ADDRESSES {
                // Every address is within its window: refuse newcomers until one ends.
                return Err(window);
            }
        }
        let entry = seen.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.most {
            return Err(self.window.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// Answers 503 when the request runs past its deadline.
pub(super) async fn deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request took longer than {} s and was stopped; nothing of it was kept",
                limit.as_secs()
            ),
        )
        .into_response(),
    }
}

/// Requests in flight: a place is taken for the request's whole handling.
#[derive(Debug, Clone)]
pub(super) struct InFlight {
    places: Arc<Semaphore>,
    wait: Duration,
}

impl InFlight {
    pub(super) fn new(limits: &Limits) -> Self {
        InFlight {
            places: Arc::new(Semaphore::new(limits.in_flight.max(1))),
            wait: limits.queue_wait,
        }
    }
}

/// Waits for a place among the requests in flight, or answers 503.
pub(super) async fn in_flight(State(f): State<InFlight>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(f.wait, f.places.acquire()).await {
        Ok(Ok(_place)) => next.run(req).await,
        _ => ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is busy; try again in a minute".into(),
        )
        .into_response(),
    }
}

/// The client's address (unknown without connection info: all such callers share one count).
fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// Counts an enrolment attempt from the client's address; over the limit, 429 before the body
/// is read or any code looked up.
pub(super) async fn enrol_rate(
    State(limiter): State<Arc<RateLimiter>>,
    req: Request,
    next: Next,
) -> Response {
    match limiter.attempt(client_ip(&req), Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let mut r = ApiError(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many enrolment attempts from this address; try again in {} s",
                    wait.as_secs().max(1)
                ),
            )
            .into_response();
            if let Ok(v) = wait.as_secs().max(1).to_string().parse() {
                r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            r
        }
    }
}

/// Pushes of one site take turns here, in memory, before they take a database connection.
///
/// A site's pushes are serialized by its row lock anyway (`db::changes::push_transaction`); a
/// push waiting for that lock holds one of the pool's connections meanwhile, so many laptops of
/// one site pushing at once took the whole pool and every other site's pull and push waited for
/// a connection (`bench-scale`: 500 devices over 5 sites kept the server and PostgreSQL mostly
/// idle while p99 reached 4 s). Waiting here holds nothing the other sites need; the row lock
/// still orders a site's changes across server processes.
pub(super) async fn site_turn(site: &str) -> tokio::sync::OwnedMutexGuard<()> {
    static TURNS: std::sync::OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
        std::sync::OnceLock::new();
    let turn = {
        let turns = TURNS.get_or_init(|| Mutex::new(HashMap::new()));
        let mut turns = turns
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(turns.entry(site.to_string()).or_default())
    };
    turn.lock_owned().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_attempts_per_window() {
        let l = RateLimiter::new(3, Duration::from_secs(60));
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.attempt(a, t0), Ok(()));
        }
        let wait = l.attempt(a, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        // Another address has its own count.
        assert_eq!(l.attempt(b, t0), Ok(()));
        // A new window starts afresh.
        assert_eq!(l.attempt(a, t0 + Duration::from_secs(61)), Ok(()));
    }

    #[test]
    fn memory_stays_bounded() {
        let l = RateLimiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..RateLimiter::MAX_ADDRESSES as u32 {
            assert_eq!(l.attempt(IpAddr::from(i.to_be_bytes()), t0), Ok(()));
        }
        let newcomer = IpAddr::from([250, 0, 0, 1]);
        assert!(l.attempt(newcomer, t0).is_err());
        // Once the old windows end they are forgotten and newcomers count again.
        assert_eq!(l.attempt(newcomer, t0 + Duration::from_secs(60)), Ok(()));
        assert!(l.seen.lock().unwrap().len() <= RateLimiter::MAX_ADDRESSES);
    }
}
