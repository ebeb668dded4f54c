//! `ecrf-server`: the central server of the trial. axum over PostgreSQL.
//!
//! - [`api`]: `GET /health` and `/api/v1/…` (enrol, device, push, pull, lease, randomize), one
//!   file per endpoint group; handlers read as steps: rules, then statements;
//! - [`rules`]: every decision that needs no database (permissions, own site and device, the
//!   chain, enrolment codes, envelopes, locks, pages, clocks), pure and unit-tested;
//! - [`db`]: connection, migrations (`crates/server/migrations`), the administrator's
//!   operations (sites, enrolment codes, revoking devices), and every SQL statement the API
//!   runs, each a named function.
//!
//! Invariants: TLS (rustls with the *ring* provider, installed at start) unless plain HTTP is
//! asked for, and plain HTTP only on a loopback address; TCP_NODELAY on every connection; a
//! client has [`api::Limits::header_timeout`] to send its headers;
//! structured (JSON) logs through `tracing`.
#![deny(missing_docs)]

pub mod api;
pub mod db;
pub mod rules;

use std::net::SocketAddr;
use std::path::PathBuf;

/// Server errors outside a request.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The database refused or is unreachable.
    #[error("database: {0}")]
    Database(String),
    /// A bad argument, naming it.
    #[error("{0}")]
    Invalid(String),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl From<sqlx::Error> for ServerError {
    fn from(e: sqlx::Error) -> Self {
        ServerError::Database(e.to_string())
    }
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// PostgreSQL URL.
    pub database_url: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// TLS certificate and key (PEM); `None` = plain HTTP, allowed only on loopback.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Deadlines, requests in flight, the enrolment rate ([`api::Limits::default`]).
    pub limits: api::Limits,
}

/// Starts the logs (JSON lines on stderr; `RUST_LOG` filters, `info` by default).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Connects, migrates and serves until the process ends.
pub async fn serve(opts: ServeOptions) -> Result<(), ServerError> {
    serve_with(opts, |_| axum::Router::new()).await
}

/// Connections the kernel holds until the server accepts them. std's `TcpListener::bind` asks
/// for 128: when 500 laptops synced at once the queue overflowed, the kernel dropped their
/// first packets and they retried 1 s and 3 s later (p99 3.9 s at an idle CPU; `make
/// bench-scale`). The kernel caps it at `net.core.somaxconn` (4096 here).
const ACCEPT_BACKLOG: u32 = 1024;

/// A non-blocking listener on `addr` with [`ACCEPT_BACKLOG`].
fn listen(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std does on Unix: a restarted server binds at once though the old one's connections
    // linger (on Windows the same flag would let another program take the port).
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)?.into_std()
}

/// [`serve`], with more routes beside the API over the same pool, TLS and port (the web view
/// of `crates/web`, which `ecrf server` mounts).
pub async fn serve_with(
    opts: ServeOptions,
    more: impl FnOnce(sqlx::PgPool) -> axum::Router,
) -> Result<(), ServerError> {
    if opts.tls.is_none() && !opts.listen.ip().is_loopback() {
        return Err(ServerError::Invalid(format!(
            "--insecure-http: plain HTTP is allowed only on a loopback address, not {}; \
             give --tls-cert and --tls-key",
            opts.listen
        )));
    }
    // One crypto provider for the whole process (several are linked in a workspace build).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pool = db::connect(&opts.database_url, 32).await?;
    let app = api::router(pool.clone(), opts.limits)
        .merge(more(pool))
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let listener = listen(opts.listen)
        .map_err(|e| ServerError::Invalid(format!("--listen {}: {e}", opts.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| ServerError::Internal(e.to_string()))?;
    let nodelay = axum_server::accept::NoDelayAcceptor::new();
    match opts.tls {
        Some((cert, key)) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
                .await
                .map_err(|e| {
                    ServerError::Invalid(format!(
                        "--tls-cert {} / --tls-key {}: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?;
            tracing::info!(listen = %local, tls = true, "serving");
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config).acceptor(nodelay);
            let mut server = axum_server::from_tcp(listener)
                .map_err(|e| ServerError::Internal(e.to_string()))?
                .acceptor(acceptor);
            server
                .http_builder()
                .http1()
                .header_read_timeout(Some(opts.limits.header_timeout));
            server.serve(app).await
        }
        None => {
            tracing::info!(listen = %local, tls = false, "serving (plain HTTP, loopback only)");
            let mut server = axum_server::from_tcp(listener)
                .map_err(|e| ServerError::Internal(e.to_string()))?
                .acceptor(nodelay);
            server
                .http_builder()
                .http1()
                .header_read_timeout(Some(opts.limits.header_timeout));
            server.serve(app).await
        }
    }
    .map_err(|e| ServerError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// Far more laptops than std's 128 can connect at once while the server is busy: none of
    /// their connections waits for the kernel to retry (a dropped first packet costs 1 s).
    #[tokio::test]
    async fn many_connections_wait_in_the_accept_queue() {
        let listener = super::listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let opened = tokio::task::spawn_blocking(move || {
            (0..400)
                .map(|_| std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap();
        assert_eq!(opened.map(|c| c.len()).unwrap(), 400);
        drop(listener);
    }
}
