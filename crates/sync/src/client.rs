//! The device's side of sync over HTTP(S): enrolment, push, pull.
//!
//! Owns the order of a sync: ask the server what it holds of this device, push the rest page
//! by page (two pages on their way at once, stored by the server in chain order), then pull
//! the site's other changes page by page, each page (or several that arrived together)
//! applied in one store transaction with its cursor. Invariants: every step
//! can be cut anywhere and simply run again (the server and the store both skip what they
//! already hold); a reply is parsed and validated like any outside input before the store sees
//! it, and kept to the bounds of [`crate::guard`] (acknowledged ≤ sent, pages that make
//! progress, at most [`MAX_PULL_PAGES`] pages a sync); the server address is checked first
//! (plain HTTP only to this computer).

use std::time::Duration;

use ecrf_log::Change;
use ecrf_wire::wire::{
    self, DeviceReply, EnrolReply, EnrolRequest, ErrorReply, LeaseReply, LeaseRequest,
    MAX_BODY_BYTES, MAX_PAGE, PullReply, PushReply, PushRequest, SlotRequest,
};
use ecrf_wire::{Replica, ServerSlot};
use ureq::Agent;

use crate::guard::{self, MAX_PULL_PAGES, Pulled};

/// What can stop a sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The server could not be reached or the connection broke: try again later.
    #[error("server not reachable: {0}")]
    Offline(String),
    /// The server refused the request (4xx) and said why.
    #[error("the server refused ({status}): {reason}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's reason.
        reason: String,
    },
    /// The server failed (5xx): try again later.
    #[error("the server failed ({status}): {reason}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's reason.
        reason: String,
    },
    /// The TLS handshake failed on the server's certificate: not signed by a trusted CA,
    /// expired, or for another name.
    #[error(
        "the server's certificate is not trusted ({0}); if the site uses its own CA, enrol \
         with its certificate (ecrf enrol --ca FILE)"
    )]
    Untrusted(String),
    /// The server's reply broke the protocol.
    #[error("unreadable reply from the server: {0}")]
    Reply(String),
    /// The server address may not be used (plain HTTP to another computer, not a web
    /// address); the text names the field and the rule.
    #[error("{0}")]
    Address(String),
    /// The site CA file cannot be used (unreadable, or no PEM certificate in it).
    #[error("site CA certificate: {0}")]
    Ca(String),
    /// This store has not been enrolled with a server.
    #[error("this device is not enrolled with a server (enrol it with a code first)")]
    NotEnrolled,
    /// The local store refused (its own error, e.g. `ecrf_store::StoreError`).
    #[error(transparent)]
    Store(Box<dyn std::error::Error + Send + Sync>),
}

impl SyncError {
    /// The store's refusal, boxed.
    pub fn store(e: impl std::error::Error + Send + Sync + 'static) -> SyncError {
        SyncError::Store(Box::new(e))
    }
}

impl SyncError {
    /// True when running the same sync again later may succeed (network, server down).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SyncError::Offline(_) | SyncError::Server { .. } | SyncError::Reply(_)
        )
    }
}

/// A connection to one server.
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: Agent,
    token: Option<String>,
}

impl Client {
    /// A client of the server at `url` (`https://…`; `http://` only to this computer, see
    /// [`guard::check_server_url`]). `ca_pem`: the certificate(s) to trust instead of the
    /// public roots (a site's own CA).
    pub fn new(url: &str, ca_pem: Option<&[u8]>) -> Result<Client, SyncError> {
        guard::check_server_url(url)?;
        let mut config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(60)));
        if let Some(pem) = ca_pem {
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(SyncError::Ca(
                    "the file holds no PEM certificate (-----BEGIN CERTIFICATE-----) / 站点 CA \
                     证书：文件中没有 PEM 证书"
                        .into(),
                ));
            }
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)))
                    .build(),
            );
        }
        Ok(Client {
            base: url.trim().trim_end_matches('/').to_string(),
            agent: config.build().into(),
            token: None,
        })
    }

    /// The same client, authenticated with a device token.
    pub fn with_token(mut self, token: &str) -> Client {
        self.token = Some(token.to_string());
        self
    }

    fn call(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<Vec<u8>, SyncError> {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let result = match (method, body) {
            ("POST", Some(body)) => {
                let mut req = self.agent.post(&url).content_type("application/json");
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.send(&body[..])
            }
            _ => {
                let mut req = self.agent.get(&url);
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
        };
        Self::read(result.map_err(transport_error)?)
    }

    /// The body of a reply, or the refusal it carries.
    fn read(mut resp: ureq::http::Response<ureq::Body>) -> Result<Vec<u8>, SyncError> {
        let status = resp.status().as_u16();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES as u64)
            .read_to_vec()
            .map_err(|e| SyncError::Offline(e.to_string()))?;
        if status == 200 {
            return Ok(bytes);
        }
        let reason = wire::parse::<ErrorReply>(&bytes)
            .map(|e| e.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(300).collect());
        if (400..500).contains(&status) {
            Err(SyncError::Refused { status, reason })
        } else {
            Err(SyncError::Server { status, reason })
        }
    }

    fn reply<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, SyncError> {
        wire::parse(bytes).map_err(|e| SyncError::Reply(e.to_string()))
    }

    /// `GET /health`.
    pub fn health(&self) -> Result<(), SyncError> {
        self.call("GET", "/health", None).map(|_| ())
    }

    /// Enrols a device with a one-time code.
    pub fn enrol(&self, req: &EnrolRequest) -> Result<EnrolReply, SyncError> {
        let body = serde_json::to_vec(req).map_err(|e| SyncError::Reply(e.to_string()))?;
        Self::reply(&self.call("POST", "/api/v1/enrol", Some(body))?)
    }

    /// Creates a user of the site on the server (an administrator's signed request).
    pub fn add_user(&self, site: &str, req: &wire::UserRequest) -> Result<(), SyncError> {
        let body = serde_json::to_vec(req).map_err(|e| SyncError::Reply(e.to_string()))?;
        let _: serde_json::Value =
            Self::reply(&self.call("POST", &format!("/api/v1/sites/{site}/users"), Some(body))?)?;
        Ok(())
    }

    /// A registered user's first login on this laptop: the server checks the password and
    /// answers with the escrowed signing key and the device's unlock secret.
    pub fn login(&self, req: &wire::LoginRequest) -> Result<wire::LoginReply, SyncError> {
        let body = serde_json::to_vec(req).map_err(|e| SyncError::Reply(e.to_string()))?;
        Self::reply(&self.call("POST", "/api/v1/login", Some(body))?)
    }

    /// What the server holds of this device (stating this device's clock now).
    pub fn device(&self) -> Result<DeviceReply, SyncError> {
        self.device_at(chrono::Utc::now())
    }

    /// What the server holds of this device, stating `now` as the device's clock: the server
    /// compares it with its own and flags a clock more than five minutes off.
    pub fn device_at(&self, now: chrono::DateTime<chrono::Utc>) -> Result<DeviceReply, SyncError> {
        self.standing(now, None)
    }

    /// What the server holds of this device, stating the device's clock and the hash of its
    /// change the server last acknowledged (`history`): the server refuses (409) a device whose
    /// history differs from what it pushed.
    pub fn standing(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        history: Option<(i64, &str)>,
    ) -> Result<DeviceReply, SyncError> {
        let url = format!("{}/api/v1/device", self.base);
        let req = self.stating(self.agent.get(&url), now, history);
        let resp = req.call().map_err(transport_error)?;
        Self::reply(&Self::read(resp)?)
    }

    /// A request stating the device's clock and history (see [`Client::standing`]), with the
    /// device's token.
    fn stating<B>(
        &self,
        mut req: ureq::RequestBuilder<B>,
        now: chrono::DateTime<chrono::Utc>,
        history: Option<(i64, &str)>,
    ) -> ureq::RequestBuilder<B> {
        let time = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        req = req.header(wire::DEVICE_TIME_HEADER, &time);
        if let Some((seq, hash)) = history {
            req = req.header(wire::HISTORY_HEADER, &format!("{seq}:{hash}"));
        }
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        req
    }

    /// A whole sync of a device in step, in one request (`POST /sites/{site}/sync`): its
    /// standing as [`Client::standing`] asks it, `changes` pushed when they follow what the
    /// server holds, and the first page after `after` pulled and checked as [`Client::pull`]
    /// checks it. A server older than this request answers 404.
    pub fn sync_step(
        &self,
        site: &str,
        now: chrono::DateTime<chrono::Utc>,
        history: Option<(i64, &str)>,
        changes: &[Change],
        after: i64,
        limit: usize,
    ) -> Result<(DeviceReply, Option<PushReply>, Pulled), SyncError> {
        let body = PushRequest::json_of(changes).map_err(|e| SyncError::Reply(e.to_string()))?;
        let url = format!(
            "{}/api/v1/sites/{site}/sync?after={after}&limit={limit}",
            self.base
        );
        let req = self.agent.post(&url).content_type("application/json");
        let resp = self
            .stating(req, now, history)
            .send(&body[..])
            .map_err(transport_error)?;
        let reply: wire::SyncReply = Self::reply(&Self::read(resp)?)?;
        let pulled = guard::check_pull_reply(reply.pull, after, limit)?;
        Ok((reply.device, reply.push, pulled))
    }

    /// Pushes one page of this device's changes.
    pub fn push(&self, site: &str, changes: Vec<Change>) -> Result<PushReply, SyncError> {
        self.push_page(site, &changes)
    }

    /// [`Client::push`] of a page the caller keeps.
    pub fn push_page(&self, site: &str, changes: &[Change]) -> Result<PushReply, SyncError> {
        let body = PushRequest::json_of(changes).map_err(|e| SyncError::Reply(e.to_string()))?;
        Self::reply(&self.call("POST", &format!("/api/v1/sites/{site}/changes"), Some(body))?)
    }

    /// Leases whole blocks of the site's allocation list to this device (sealed envelopes for
    /// randomizing offline).
    pub fn lease(&self, site: &str, req: &LeaseRequest) -> Result<LeaseReply, SyncError> {
        let body = serde_json::to_vec(req).map_err(|e| SyncError::Reply(e.to_string()))?;
        Self::reply(&self.call("POST", &format!("/api/v1/sites/{site}/lease"), Some(body))?)
    }

    /// Takes the next slot of the site's allocation list for a subject, online, in one server
    /// transaction. The same subject asked again gets the same slot.
    pub fn take_slot(&self, site: &str, subject: &str) -> Result<ServerSlot, SyncError> {
        let body = serde_json::to_vec(&SlotRequest {
            subject: subject.to_string(),
        })
        .map_err(|e| SyncError::Reply(e.to_string()))?;
        Self::reply(&self.call(
            "POST",
            &format!("/api/v1/sites/{site}/randomize"),
            Some(body),
        )?)
    }

    /// Pulls one page of the site's changes after `after`, checked (hashes included).
    pub fn pull(&self, site: &str, after: i64, limit: usize) -> Result<Pulled, SyncError> {
        let reply: PullReply = Self::reply(&self.call(
            "GET",
            &format!("/api/v1/sites/{site}/changes?after={after}&limit={limit}"),
            None,
        )?)?;
        guard::check_pull_reply(reply, after, limit)
    }
}

/// A request that got no reply: an untrusted certificate, or the network.
fn transport_error(e: ureq::Error) -> SyncError {
    if let ureq::Error::Io(io) = &e
        && let Some(rustls::Error::InvalidCertificate(why)) = io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return SyncError::Untrusted(format!("{why:?}"));
    }
    if let ureq::Error::Rustls(rustls::Error::InvalidCertificate(why)) = &e {
        return SyncError::Untrusted(format!("{why:?}"));
    }
    SyncError::Offline(e.to_string())
}

/// Pulled pages waiting to be applied, at most (about 1 MB each).
const PAGES_AHEAD: usize = 4;
/// Pulled pages applied in one store transaction, at most.
const PAGES_TOGETHER: usize = 8;

/// Where a sync is, for a progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Own changes the server holds now.
    pub pushed: usize,
    /// Own changes to push in all.
    pub to_push: usize,
    /// Changes received so far.
    pub pulled: usize,
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Own changes the server stored.
    pub pushed: usize,
    /// Other devices' changes applied here.
    pub pulled: usize,
    /// Items in conflict after the sync.
    pub conflicts: usize,
    /// What the server flagged: this device's clock off, events dated before what they change,
    /// changes held back because their form was locked.
    pub flags: Vec<String>,
    /// Data changes held back under a lock, for the data manager (all this replica knows of).
    pub held: usize,
    /// When it finished (UTC).
    pub finished: String,
}

/// Store settings the client keeps in the encrypted file.
pub mod setting {
    /// Server URL.
    pub const SERVER: &str = "server";
    /// The server's release, as its last pull reply said.
    pub const SERVER_VERSION: &str = "server_version";
    /// Device token.
    pub const TOKEN: &str = "token";
    /// PEM of the CA to trust, if not a public one (what the client uses).
    pub const CA: &str = "ca_pem";
    /// The file the site CA was read from (shown in the settings; empty: public CAs).
    pub const CA_FILE: &str = "ca_file";
    /// Subject number prefix given at enrolment.
    pub const SUBJECT_PREFIX: &str = "subject_prefix";
    /// The server's public signing key, pinned at enrolment (`ecrf_store` reads it as
    /// `sync.setting.server_key` to check the server's changes and receipts).
    pub const SERVER_KEY: &str = "server_key";
}

/// Enrols this store's device with the server at `url` and keeps what sync needs in the store.
pub fn enrol<S: Replica>(
    store: &S,
    url: &str,
    code: &str,
    ca_pem: Option<&[u8]>,
) -> Result<EnrolReply, SyncError> {
    let client = Client::new(url, ca_pem)?;
    let ca_text = ca_pem.map(|p| String::from_utf8_lossy(p).into_owned());
    let unlock_secret = store
        .new_device_slot(url, ca_text.as_deref())
        .map_err(SyncError::store)?;
    let reply = client.enrol(&EnrolRequest {
        code: code.trim().to_string(),
        device: store.device_id().to_string(),
        site: store.site().to_string(),
        sealing_key: Some(store.sealing_key().map_err(SyncError::store)?),
        users: store.enrolment_users().map_err(SyncError::store)?,
        head_seq: store.own_change_count_after(0).map_err(SyncError::store)? as i64,
        unlock_secret: Some(unlock_secret),
    })?;
    let keep = |name, value: &str| {
        store
            .set_sync_setting(name, value)
            .map_err(SyncError::store)
    };
    keep(setting::SERVER, url)?;
    keep(setting::TOKEN, &reply.token)?;
    keep(setting::SUBJECT_PREFIX, &reply.subject_prefix)?;
    keep(setting::SERVER_KEY, &reply.server_key)?;
    if let Some(pem) = ca_pem {
        keep(setting::CA, &String::from_utf8_lossy(pem))?;
    }
    Ok(reply)
}

/// Asks the server named in a laptop's device slot to let `user` log in there the first time
/// (what the store's first login sends over the network).
pub fn first_login_request(
    server: &str,
    ca_pem: Option<&str>,
    (device, site): (&str, &str),
    user: &str,
    password: &str,
) -> Result<wire::LoginReply, SyncError> {
    let client = Client::new(server, ca_pem.map(str::as_bytes))?;
    client.login(&wire::LoginRequest {
        device: device.to_string(),
        site: site.to_string(),
        username: user.to_string(),
        password: password.to_string(),
    })
}

/// The client this store was enrolled with.
pub fn client_of<S: Replica>(store: &S) -> Result<Client, SyncError> {
    let setting = |name| store.sync_setting(name).map_err(SyncError::store);
    let url = setting(setting::SERVER)?.ok_or(SyncError::NotEnrolled)?;
    let token = setting(setting::TOKEN)?.ok_or(SyncError::NotEnrolled)?;
    let ca = setting(setting::CA)?.filter(|pem| !pem.trim().is_empty());
    Ok(Client::new(&url, ca.as_deref().map(str::as_bytes))?.with_token(&token))
}

/// Reads a site CA certificate file (PEM) for [`enrol`] or [`set_site_ca`], naming the file in
/// the error.
pub fn read_ca_file(path: &std::path::Path) -> Result<Vec<u8>, SyncError> {
    std::fs::read(path).map_err(|e| {
        SyncError::Ca(format!(
            "{}: {e} / 站点 CA 证书 {}：无法读取",
            path.display(),
            path.display()
        ))
    })
}

/// Sets (or with `None` clears) the site CA the client trusts for this store's server: the
/// PEM is checked to hold a certificate, then kept with the file's path.
pub fn set_site_ca<S: Replica>(
    store: &S,
    ca: Option<(&std::path::Path, &[u8])>,
) -> Result<(), SyncError> {
    let keep = |name, value: &str| {
        store
            .set_sync_setting(name, value)
            .map_err(SyncError::store)
    };
    match ca {
        Some((path, pem)) => {
            // Any https address will do: this only checks that the PEM holds a certificate.
            Client::new("https://localhost", Some(pem))?;
            keep(setting::CA, &String::from_utf8_lossy(pem))?;
            keep(setting::CA_FILE, &path.display().to_string())
        }
        None => {
            keep(setting::CA, "")?;
            keep(setting::CA_FILE, "")
        }
    }
}

/// One full sync: push what the server lacks, then pull what this device lacks. Safe to cut
/// anywhere and run again.
pub fn sync<S: Replica>(
    store: &mut S,
    client: &Client,
    progress: &mut dyn FnMut(Progress),
) -> Result<SyncReport, SyncError> {
    let site = store.site().to_string();
    let mut report = SyncReport::default();
    let pushed = store.pushed_head().map_err(SyncError::store)?;
    let history = pushed.as_ref().map(|(seq, hash)| (*seq, hash.as_str()));
    let server_key = store
        .sync_setting(setting::SERVER_KEY)
        .map_err(SyncError::store)?;
    // Changes are numbered 1, 2, … per device, so their count is the last device_seq.
    let own_last = store.own_change_count_after(0).map_err(SyncError::store)? as i64;
    let believed = pushed.as_ref().map_or(0, |(seq, _)| *seq);
    let mut after = store.pulled().map_err(SyncError::store)?;
    // A laptop with at most a page to push (nearly every sync) asks where it stands, pushes
    // and pulls the first page in one request; the rest, if any, goes as below.
    let mut in_one = None;
    if own_last - believed <= MAX_PAGE as i64 {
        let sent = store
            .own_changes_after(believed, MAX_PAGE)
            .map_err(SyncError::store)?;
        match client.sync_step(&site, chrono::Utc::now(), history, &sent, after, MAX_PAGE) {
            Ok((standing, push, pulled)) => in_one = Some((standing, push, sent, Some(pulled))),
            // A server older than the one-request sync.
            Err(SyncError::Refused { status: 404, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let (standing, push, sent, first_page) = match in_one {
        Some(done) => done,
        None => (
            client.standing(chrono::Utc::now(), history)?,
            None,
            Vec::new(),
            None,
        ),
    };
    guard::check_device_reply(&standing, store.device_id(), &site, own_last)?;
    report.flags.extend(standing.clock_flag);
    let mut acked = standing.acked;
    let pushed_from = if push.is_some() { believed } else { acked };
    let mut p = Progress {
        to_push: (own_last - pushed_from) as usize,
        ..Progress::default()
    };
    if let Some(reply) = push {
        if reply.acked < acked {
            return Err(SyncError::Reply(format!(
                "the server acknowledged #{} after saying it held #{acked}",
                reply.acked
            )));
        }
        let sent_page = Sent {
            changes: &sent,
            after: believed,
        };
        acked = take_push_reply(
            store,
            reply,
            sent_page,
            server_key.as_deref(),
            &mut report,
            &mut p,
        )?;
    }
    progress(p);
    push_pages(store, client, &site, acked, &mut report, &mut p, progress)?;
    // Pages are fetched ahead on a second thread, which also checks each change's hash, while
    // this one applies: a page's cursor is known as soon as it arrives. Pages that arrived
    // while the last ones were being applied are applied together, in order, in one transaction
    // with the cursor after the last (a large site's first sync pulls faster than it applies:
    // fewer, larger transactions write each index page once for several pages). At most
    // `PAGES_AHEAD` pages wait in memory, and one transaction takes at most `PAGES_TOGETHER`.
    let mut more = true;
    if let Some(first) = first_page {
        (after, more) = (first.cursor, first.more);
        report.pulled += apply_batch(store, first, &mut p, progress)?;
    }
    if !more {
        return finish(store, report);
    }
    std::thread::scope(|scope| -> Result<(), SyncError> {
        let (pages, arrived) =
            std::sync::mpsc::sync_channel::<Result<Pulled, SyncError>>(PAGES_AHEAD);
        let site = site.as_str();
        scope.spawn(move || {
            let mut after = after;
            for _ in 0..MAX_PULL_PAGES {
                let pulled = client.pull(site, after, MAX_PAGE);
                let next = pulled.as_ref().ok().filter(|p| p.more).map(|p| p.cursor);
                // A closed channel: the applying side stopped on an error.
                if pages.send(pulled).is_err() {
                    return;
                }
                match next {
                    Some(cursor) => after = cursor,
                    None => return,
                }
            }
        });
        while let Ok(first) = arrived.recv() {
            let mut batch = first?;
            let mut failed = None;
            for _ in 1..PAGES_TOGETHER {
                match arrived.try_recv() {
                    Ok(Ok(next)) => batch.absorb(next),
                    // Applied after what came before it, then reported.
                    Ok(Err(e)) => {
                        failed = Some(e);
                        break;
                    }
                    Err(_) => break,
                }
            }
            report.pulled += apply_batch(store, batch, &mut p, progress)?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(())
    })?;
    finish(store, report)
}

/// Pushes this device's changes after `acked`, page by page in chain order, until the server
/// holds them all.
///
/// Two pages are on their way at once: while the server stores one (its site's turn, most of
/// a page's time), the next is read from the store, sent and parsed, so the turn is rarely
/// idle. The server stores only a page that continues what it holds: one that overtook the page
/// before it is refused whole (409, [`crate::wire::NOT_FOLLOWING`]) and is sent again once that
/// page is acknowledged, before any page after it; any other failure ends the sync as before.
fn push_pages<S: Replica>(
    store: &mut S,
    client: &Client,
    site: &str,
    mut acked: i64,
    report: &mut SyncReport,
    p: &mut Progress,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), SyncError> {
    let server_key = store
        .sync_setting(setting::SERVER_KEY)
        .map_err(SyncError::store)?;
    let first = store
        .own_changes_after(acked, MAX_PAGE)
        .map_err(SyncError::store)?;
    if first.is_empty() {
        return Ok(());
    }
    std::thread::scope(|scope| -> Result<(), SyncError> {
        let send = |page: Vec<Change>, early: bool| InFlight {
            last: page.last().map_or(0, |c| c.device_seq),
            early,
            reply: scope.spawn(move || {
                let reply = client.push_page(site, &page);
                (page, reply)
            }),
        };
        let mut flight = send(first, false);
        loop {
            // The next page is read and sent while this one is away; but not when this one,
            // sent early, is back already (perhaps refused for overtaking the page before it):
            // it goes again first, or the next would overtake it in turn.
            let ahead = if flight.early && flight.reply.is_finished() {
                None
            } else {
                let following = store
                    .own_changes_after(flight.last, MAX_PAGE)
                    .map_err(SyncError::store)?;
                (!following.is_empty()).then(|| send(following, true))
            };
            let InFlight { last, early, reply } = flight;
            let (sent, mut reply) = reply
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            if early && overtook(&reply) {
                // Sent before the page it follows was acknowledged, it reached the server first.
                reply = client.push_page(site, &sent);
            }
            let sent_page = Sent {
                changes: &sent,
                after: acked,
            };
            acked = take_push_reply(store, reply?, sent_page, server_key.as_deref(), report, p)?;
            progress(*p);
            flight = match ahead {
                Some(next) if acked == last => next,
                ahead => {
                    // Nothing was sent ahead (all is pushed, or this page came back early), or
                    // the server holds less than was sent (our server never says so, but a
                    // reply is outside input): go on from what it holds. A page ahead then does
                    // not follow and is refused; the scope waits for its reply at the end.
                    drop(ahead);
                    let page = store
                        .own_changes_after(acked, MAX_PAGE)
                        .map_err(SyncError::store)?;
                    if page.is_empty() {
                        return Ok(());
                    }
                    send(page, false)
                }
            };
        }
    })
}

/// Whether a push was refused for not continuing what the server holds of this device (the
/// only refusal a page that overtook the one before it gets; any other stands).
fn overtook(reply: &Result<PushReply, SyncError>) -> bool {
    matches!(reply, Err(SyncError::Refused { status: 409, reason })
        if reason.contains(crate::wire::NOT_FOLLOWING))
}

/// A page on its way to the server.
struct InFlight<'scope> {
    /// The device_seq of its last change.
    last: i64,
    /// Sent before the page it follows was acknowledged.
    early: bool,
    /// The page and the server's reply.
    reply: std::thread::ScopedJoinHandle<'scope, (Vec<Change>, Result<PushReply, SyncError>)>,
}

/// A page pushed: its changes, sent after the device's change `after`.
#[derive(Clone, Copy)]
struct Sent<'a> {
    changes: &'a [Change],
    after: i64,
}

/// Takes a push's reply: checked against the page sent, its receipt checked and kept, what it
/// acknowledged recorded; the device's change the server now holds last.
fn take_push_reply<S: Replica>(
    store: &mut S,
    reply: PushReply,
    sent: Sent<'_>,
    server_key: Option<&str>,
    report: &mut SyncReport,
    p: &mut Progress,
) -> Result<i64, SyncError> {
    guard::check_push_reply(&reply, sent.after, sent.changes)?;
    if let Some(r) = &reply.receipt {
        guard::check_receipt(r, store.device_id(), &reply, sent.changes, server_key)?;
        store.keep_receipt(r).map_err(SyncError::store)?;
    }
    report.pushed += reply.stored;
    report.flags.extend(reply.flags);
    p.pushed += (reply.acked - sent.after) as usize;
    store.set_pushed(reply.acked).map_err(SyncError::store)?;
    Ok(reply.acked)
}

/// Applies pulled changes (one page or several in a row) with the cursor after them; the
/// count of changes new here.
fn apply_batch<S: Replica>(
    store: &mut S,
    batch: Pulled,
    p: &mut Progress,
    progress: &mut dyn FnMut(Progress),
) -> Result<usize, SyncError> {
    if let Some(v) = &batch.server_version {
        store
            .set_sync_setting(setting::SERVER_VERSION, v)
            .map_err(SyncError::store)?;
    }
    p.pulled += batch.changes.len();
    let applied = store
        .apply_pulled(batch.changes, batch.cursor)
        .map_err(SyncError::store)?;
    progress(*p);
    Ok(applied)
}

/// A sync's end: what it left to resolve, and its time kept as the last success.
fn finish<S: Replica>(store: &mut S, mut report: SyncReport) -> Result<SyncReport, SyncError> {
    report.conflicts = store.conflict_count().map_err(SyncError::store)?;
    report.held = store.held_count().map_err(SyncError::store)?;
    report.finished = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    store
        .set_sync_success(&report.finished)
        .map_err(SyncError::store)?;
    Ok(report)
}
