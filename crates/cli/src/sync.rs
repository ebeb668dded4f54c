//! `ecrf server`, `ecrf site`, `ecrf device` (administrators, against the server's database),
//! `ecrf enrol` and `ecrf sync` (a ward laptop's store). Thin calls into `ecrf-server` and
//! `ecrf-sync`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::{Cli, Failure, open};

/// `ecrf server`: run the server, or (`ecrf server user …`) manage its user registry.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ServerArgs {
    /// The server's user registry.
    #[command(subcommand)]
    cmd: Option<ServerCmd>,
    /// PostgreSQL URL, e.g. postgres://ecrf@localhost/ecrf.
    #[arg(long, env = "DATABASE_URL", required = true)]
    database_url: Option<String>,
    /// Address to listen on, e.g. 0.0.0.0:8443.
    #[arg(long, env = "ECRF_LISTEN", required = true)]
    listen: Option<SocketAddr>,
    /// TLS certificate chain (PEM).
    #[arg(long, env = "ECRF_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "ECRF_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP (loopback addresses only; for tests).
    #[arg(long, env = "ECRF_INSECURE_HTTP", conflicts_with = "tls_cert")]
    insecure_http: bool,
    /// Enrolment attempts allowed per client address per minute (guessing codes).
    #[arg(
        long,
        env = "ECRF_ENROL_PER_MINUTE",
        default_value_t = ecrf_server::api::Limits::default().enrol_per_minute
    )]
    enrol_per_minute: u32,
    /// The web view: a session ends after this many seconds without a request.
    #[arg(
        long,
        env = "ECRF_WEB_IDLE_SECONDS",
        default_value_t = ecrf_web::WebOptions::default().idle.as_secs()
    )]
    web_idle_seconds: u64,
}

/// `ecrf server …` subcommands.
#[derive(Subcommand)]
pub enum ServerCmd {
    /// Users: one identity per person and site, made here and nowhere else.
    #[command(subcommand)]
    User(ServerUserCmd),
}

/// `ecrf server user …`: the registry every laptop of a site takes its users from.
#[derive(Subcommand)]
pub enum ServerUserCmd {
    /// Create a user of a site (password: prompt or ECRF_NEW_PASSWORD). They log in on any
    /// enrolled laptop of the site: the first time online, then offline too.
    Add {
        /// Login name.
        username: String,
        /// Site code.
        #[arg(long)]
        site: String,
        /// nurse, investigator, monitor, data_manager or admin.
        #[arg(long)]
        role: String,
        /// Full name.
        #[arg(long, default_value = "")]
        name: String,
        /// PostgreSQL URL of the server.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
    /// Give a user another role from now.
    Role {
        /// Login name.
        username: String,
        /// Site code.
        #[arg(long)]
        site: String,
        /// The new role.
        #[arg(long)]
        role: String,
        /// PostgreSQL URL of the server.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
    /// Deactivate a user: their later changes are refused, and every laptop of the site
    /// removes their key slot and changes its store key at its next sync.
    Deactivate {
        /// Login name.
        username: String,
        /// Site code.
        #[arg(long)]
        site: String,
        /// PostgreSQL URL of the server.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
    /// Reset a user's password (prompt or ECRF_NEW_PASSWORD): laptops drop the old key slot at
    /// their next sync; the next login there is online with the new password.
    Reset {
        /// Login name.
        username: String,
        /// Site code.
        #[arg(long)]
        site: String,
        /// PostgreSQL URL of the server.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
}

/// `ecrf site …`.
#[derive(Subcommand)]
pub enum SiteCmd {
    /// Create a site on the server.
    Add {
        /// Site code, e.g. 01.
        code: String,
        /// Hospital name.
        #[arg(long)]
        name: String,
        /// PostgreSQL URL of the server.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
    /// Put a published definition version in force at a site from a date (its local date),
    /// once its ethics committee approved the amendment. Its laptops switch at their next
    /// sync on or after that day; offline laptops keep working on the version they have.
    Activate {
        /// Site code.
        code: String,
        /// The version (published with `ecrf study publish`).
        #[arg(long)]
        version: String,
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        from: chrono::NaiveDate,
        /// PostgreSQL URL of the server.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
    /// What the server flagged for review at a site (clocks off, late-dated changes, changes
    /// held under a lock, envelopes opened out of order, not the device's, or tampered).
    Flags {
        /// Site code.
        code: String,
        /// PostgreSQL URL of the server.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
}

/// `ecrf device …`.
#[derive(Subcommand)]
pub enum DeviceCmd {
    /// Make a one-time enrolment code for one new laptop of a site.
    EnrolCode {
        /// Site code.
        #[arg(long)]
        site: String,
        /// The laptop's device id (`ecrf device-id` on it, or its Sync page): the code enrols
        /// that device only; ids the server knows, and `server-…`, are refused.
        #[arg(long)]
        device: String,
        /// Hours the code stays valid.
        #[arg(long, default_value_t = 72)]
        hours: i64,
        /// PostgreSQL URL of the server.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
    /// Revoke a device: its token is refused from now on.
    Revoke {
        /// Device id.
        device: String,
        /// PostgreSQL URL of the server.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
    /// List the devices of a site.
    List {
        /// Site code.
        #[arg(long)]
        site: String,
        /// PostgreSQL URL of the server.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start: {e}")))
}

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure(e.to_string())
}

/// A new user's credentials from the password typed for them: the password rule (the same as
/// on a laptop), a new signing key, its escrow and the password's verifier.
fn credentials(username: &str) -> Result<ecrf_server::db::users::Credentials, Failure> {
    let password = crate::new_password("ECRF_NEW_PASSWORD", username)?;
    ecrf_store::check_password(&password, username)?;
    let key = ecrf_store::keyring::new_author_key()?;
    Ok(ecrf_server::db::users::Credentials {
        verifier: ecrf_identity::verifier(&password).map_err(fail)?,
        escrow: ecrf_identity::escrow(&password, &key).map_err(fail)?,
        public_key: key.public_hex(),
    })
}

/// `ecrf server user …`.
fn server_user(cmd: &ServerUserCmd) -> Result<(), Failure> {
    use ecrf_server::db::users;
    runtime()?.block_on(async {
        match cmd {
            ServerUserCmd::Add {
                username,
                site,
                role,
                name,
                database_url,
            } => {
                let role: ecrf_core::Role = role.parse().map_err(Failure)?;
                let cred = credentials(username)?;
                let pool = ecrf_server::db::connect(database_url, 2)
                    .await
                    .map_err(fail)?;
                users::add_user(&pool, site, username, name, role, &cred)
                    .await
                    .map_err(fail)?;
                say!("Added {username} ({role}) at site {site}.");
            }
            ServerUserCmd::Role {
                username,
                site,
                role,
                database_url,
            } => {
                let role: ecrf_core::Role = role.parse().map_err(Failure)?;
                let pool = ecrf_server::db::connect(database_url, 2)
                    .await
                    .map_err(fail)?;
                users::set_role(&pool, site, username, role)
                    .await
                    .map_err(fail)?;
                say!("{username} at site {site} is now {role}.");
            }
            ServerUserCmd::Deactivate {
                username,
                site,
                database_url,
            } => {
                let pool = ecrf_server::db::connect(database_url, 2)
                    .await
                    .map_err(fail)?;
                users::deactivate(&pool, site, username)
                    .await
                    .map_err(fail)?;
                say!(
                    "{username} at site {site} is deactivated; each laptop removes their key \
                     slot and changes its store key at its next sync."
                );
            }
            ServerUserCmd::Reset {
                username,
                site,
                database_url,
            } => {
                let cred = credentials(username)?;
                let pool = ecrf_server::db::connect(database_url, 2)
                    .await
                    .map_err(fail)?;
                users::reset(&pool, site, username, &cred)
                    .await
                    .map_err(fail)?;
                say!("{username} at site {site} has a new password.");
            }
        }
        Ok(())
    })
}

/// `ecrf server`.
pub fn server(args: &ServerArgs) -> Result<(), Failure> {
    if let Some(ServerCmd::User(cmd)) = &args.cmd {
        return server_user(cmd);
    }
    let (Some(database_url), Some(listen)) = (args.database_url.clone(), args.listen) else {
        return Err(Failure("give --database-url and --listen".into()));
    };
    if args.tls_cert.is_none() && !args.insecure_http {
        return Err(Failure(
            "give --tls-cert and --tls-key, or --insecure-http on a loopback address".into(),
        ));
    }
    ecrf_server::init_logs();
    let opts = ecrf_server::ServeOptions {
        database_url,
        listen,
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
        limits: ecrf_server::api::Limits {
            enrol_per_minute: args.enrol_per_minute,
            ..ecrf_server::api::Limits::default()
        },
    };
    let study = std::sync::Arc::new(ecrf_core::trial::definition().map_err(fail)?);
    let web = ecrf_web::WebOptions {
        idle: std::time::Duration::from_secs(args.web_idle_seconds),
        ..ecrf_web::WebOptions::default()
    };
    runtime()?
        .block_on(ecrf_server::serve_with(opts, move |pool| {
            ecrf_web::router(pool, web, study)
        }))
        .map_err(fail)
}

/// `ecrf site …`.
pub fn site(cmd: &SiteCmd) -> Result<(), Failure> {
    match cmd {
        SiteCmd::Add {
            code,
            name,
            database_url,
        } => runtime()?.block_on(async {
            let pool = ecrf_server::db::connect(database_url, 2)
                .await
                .map_err(fail)?;
            ecrf_server::db::add_site(&pool, code, name)
                .await
                .map_err(fail)?;
            say!("Site {code} ({name}) added.");
            Ok(())
        }),
        SiteCmd::Activate {
            code,
            version,
            from,
            database_url,
        } => runtime()?.block_on(async {
            let base = crate::study()?;
            let pool = ecrf_server::db::connect(database_url, 2)
                .await
                .map_err(fail)?;
            ecrf_server::db::versions::activate(&pool, code, version, *from, &base)
                .await
                .map_err(fail)?;
            say!(
                "Site {code} uses study definition {version} from {from}; its laptops receive it at their next sync."
            );
            Ok(())
        }),
        SiteCmd::Flags { code, database_url } => runtime()?.block_on(async {
            let pool = ecrf_server::db::connect(database_url, 2)
                .await
                .map_err(fail)?;
            let flags = ecrf_server::db::flags(&pool, code).await.map_err(fail)?;
            if flags.is_empty() {
                say!("No flags for site {code}.");
            }
            for f in flags {
                say!(
                    "{}  {}  {}  {}  {}",
                    f.at,
                    f.flag,
                    f.device,
                    f.change_id.as_deref().unwrap_or("-"),
                    f.detail
                );
            }
            Ok(())
        }),
    }
}

/// `ecrf device …`.
pub fn device(cmd: &DeviceCmd) -> Result<(), Failure> {
    runtime()?.block_on(async {
        match cmd {
            DeviceCmd::EnrolCode {
                site,
                device,
                hours,
                database_url,
            } => {
                let pool = ecrf_server::db::connect(database_url, 2)
                    .await
                    .map_err(fail)?;
                let code = ecrf_server::db::enrol_code(&pool, site, device, *hours)
                    .await
                    .map_err(fail)?;
                say!("{code}");
            }
            DeviceCmd::Revoke {
                device,
                database_url,
            } => {
                let pool = ecrf_server::db::connect(database_url, 2)
                    .await
                    .map_err(fail)?;
                let (site, taken) = ecrf_server::db::revoke_device(&pool, device)
                    .await
                    .map_err(fail)?;
                say!(
                    "Device {device} of site {site} revoked; {taken} unopened envelopes leased \
                     to it taken back (withdrawn)."
                );
            }
            DeviceCmd::List { site, database_url } => {
                let pool = ecrf_server::db::connect(database_url, 2)
                    .await
                    .map_err(fail)?;
                for (device, no, acked, revoked) in
                    ecrf_server::db::devices(&pool, site).await.map_err(fail)?
                {
                    let state = if revoked { "revoked" } else { "active" };
                    say!("D{no}\t{device}\t{acked} changes\t{state}");
                }
            }
        }
        Ok(())
    })
}

/// `ecrf conflict …`: items two laptops changed without seeing each other's value.
#[derive(Subcommand)]
pub enum ConflictCmd {
    /// Every item in conflict, with each value kept (who, which laptop, when).
    List,
    /// Settle a conflict with the right value: a new change that replaces every kept value
    /// (synced like any other, so it settles the conflict on every laptop).
    Resolve {
        /// Subject number.
        subject: String,
        /// Form instance, like DLY#3.
        form: String,
        /// Item id, like HR.
        item: String,
        /// The right value, as typed on the form (a missing-data code such as @ND, or empty
        /// to clear).
        value: String,
        /// Why this value (required).
        #[arg(long)]
        reason: String,
    },
}

/// `ecrf conflict list|resolve`.
pub fn conflict(cli: &Cli, cmd: &ConflictCmd) -> Result<(), Failure> {
    let mut store = open(cli)?;
    match cmd {
        ConflictCmd::List => {
            let conflicts = store.conflicts()?;
            if conflicts.is_empty() {
                say!("No conflicts.");
            }
            for c in conflicts {
                say!("{} {} {}:", c.subject, c.form, c.item);
                for v in c.values {
                    let shown = match v.value.as_deref().map(ecrf_core::Value::from_json) {
                        None => "∅ (cleared)".to_string(),
                        Some(Ok(value)) => value.to_string(),
                        Some(Err(_)) => v.value.unwrap_or_default(),
                    };
                    say!("  {shown}  by {} on {} at {}", v.user, v.device, v.utc);
                }
            }
        }
        ConflictCmd::Resolve {
            subject,
            form,
            item,
            value,
            reason,
        } => {
            store.resolve_conflict(subject, form, item, value, reason)?;
            say!(
                "Resolved {subject} {form} {item}: it now reads {value:?} on every laptop after sync."
            );
        }
    }
    Ok(())
}

/// `ecrf enrol`.
pub fn enrol(cli: &Cli, server: &str, code: &str, ca: Option<&PathBuf>) -> Result<(), Failure> {
    let store = open(cli)?;
    let pem = match ca {
        Some(p) => Some(std::fs::read(p).map_err(|e| Failure(format!("{}: {e}", p.display())))?),
        None => None,
    };
    let reply = ecrf_sync::enrol(&store, server, code, pem.as_deref()).map_err(fail)?;
    say!(
        "Enrolled with {server}: site {}, device {} (subject numbers {}-{}-0001…).",
        reply.site,
        reply.device,
        reply.site,
        reply.subject_prefix
    );
    Ok(())
}

/// `ecrf device-id`.
pub fn device_id(cli: &Cli) -> Result<(), Failure> {
    let store = open(cli)?;
    say!("{}", store.device_id());
    Ok(())
}

/// `ecrf sync`.
pub fn sync(cli: &Cli) -> Result<(), Failure> {
    let mut store = open(cli)?;
    let client = ecrf_sync::client::client_of(&store).map_err(fail)?;
    let report = ecrf_sync::sync(&mut store, &client, &mut |_| {}).map_err(fail)?;
    say!(
        "Synced: {} sent, {} received, {} conflicts to resolve.",
        report.pushed,
        report.pulled,
        report.conflicts
    );
    if report.held > 0 {
        say!(
            "{} changes held back because their form was locked (for the data manager).",
            report.held
        );
    }
    for flag in &report.flags {
        say!("Flagged by the server: {flag}");
    }
    Ok(())
}

/// `ecrf study publish`.
pub fn publish(
    dir: &std::path::Path,
    version: &str,
    database_url: &str,
    base: Arc<ecrf_core::Study>,
) -> Result<(), Failure> {
    let files = crate::study_dir_files(dir)?;
    runtime()?.block_on(async {
        let pool = ecrf_server::db::connect(database_url, 2)
            .await
            .map_err(fail)?;
        match ecrf_server::db::versions::publish(&pool, version, files, &base)
            .await
            .map_err(fail)?
        {
            ecrf_server::db::versions::Published::New => say!(
                "Study definition {version} published. Activate it per site once approved: ecrf site activate <site> --version {version} --from <date>"
            ),
            ecrf_server::db::versions::Published::Already => {
                say!("Study definition {version} was already published with these files.")
            }
        }
        Ok(())
    })
}

/// `ecrf study diff A B`.
pub fn diff(
    a: &str,
    b: &str,
    database_url: Option<&str>,
    base: Arc<ecrf_core::Study>,
) -> Result<(), Failure> {
    use ecrf_core::study::versions;
    let published = match database_url {
        Some(url) => Some(runtime()?.block_on(async {
            let pool = ecrf_server::db::connect(url, 2).await.map_err(fail)?;
            ecrf_server::db::versions::definitions(&pool, Arc::clone(&base))
                .await
                .map_err(fail)
        })?),
        None => None,
    };
    let find = |name: &str| -> Result<Arc<ecrf_core::Study>, Failure> {
        let path = std::path::Path::new(name);
        if path.join("study.toml").is_file() {
            let files = crate::study_dir_files(path)?;
            return versions::load_files(&files)
                .map(Arc::new)
                .map_err(|e| Failure(format!("{name}: {e}")));
        }
        if name == base.version {
            return Ok(Arc::clone(&base));
        }
        match &published {
            Some(d) => d.version(name).map_err(|e| Failure(e.to_string())),
            None => Err(Failure(format!(
                "{name} is neither a study folder nor the base version {}; give DATABASE_URL to compare versions published on the server",
                base.version
            ))),
        }
    };
    let (sa, sb) = (find(a)?, find(b)?);
    let lines = versions::diff(&sa, &sb);
    say!(
        "Study definition {} → {}: {} difference(s).",
        sa.version,
        sb.version,
        lines.len()
    );
    for l in lines {
        say!("  {l}");
    }
    Ok(())
}
