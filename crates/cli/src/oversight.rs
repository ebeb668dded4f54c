//! `ecrf query …`, `ecrf sdv …`, `ecrf sign`, `ecrf lock …`/`unlock …` and `ecrf audit export`:
//! the monitor's, investigator's and data manager's steps. Rules live in `ecrf_core` and the
//! store (`ecrf_store::oversight`); only argument parsing and printing live here.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use ecrf_core::FormKey;
use ecrf_core::lock::LockScope;
use ecrf_core::query::QueryStep;
use ecrf_core::signature::SignatureMeaning;
use ecrf_store::AuditFilter;

use crate::{Cli, Failure, open, secret};

/// `ecrf query …`.
#[derive(Subcommand)]
pub enum QueryCmd {
    /// Raise a query on an item (monitor, data manager); prints its id.
    Raise {
        /// Subject number.
        subject: String,
        /// Form, or FORM#N.
        form: String,
        /// Item id.
        item: String,
        /// The question.
        #[arg(long)]
        text: String,
    },
    /// Answer a query (site staff).
    Answer {
        /// Query id.
        id: String,
        /// The answer.
        #[arg(long)]
        text: String,
    },
    /// Close a query (monitor, data manager).
    Close {
        /// Query id.
        id: String,
        /// Why.
        #[arg(long)]
        text: String,
    },
    /// Reopen a query (monitor, data manager).
    Reopen {
        /// Query id.
        id: String,
        /// Why.
        #[arg(long)]
        text: String,
    },
    /// List queries (of one subject), open first.
    List {
        /// Subject number.
        subject: Option<String>,
    },
}

/// `ecrf sdv …`.
#[derive(Subcommand)]
pub enum SdvCmd {
    /// Mark items (default: every item with a value) of a form verified against the source.
    Mark {
        /// Subject number.
        subject: String,
        /// Form, or FORM#N.
        form: String,
        /// Items; none = the whole form.
        items: Vec<String>,
    },
    /// Verified / total items of a subject or the site.
    Status {
        /// Subject number.
        subject: Option<String>,
    },
}

/// What a lock covers.
#[derive(Subcommand)]
pub enum LockCmd {
    /// One form instance of a subject.
    Form {
        /// Subject number.
        subject: String,
        /// Form, or FORM#N.
        form: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// A subject's whole casebook.
    Subject {
        /// Subject number.
        subject: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Every subject of a site.
    Site {
        /// Site code.
        site: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// The locks in force.
    List,
}

/// A signature's stated meaning.
#[derive(Clone, Copy, ValueEnum)]
pub enum Meaning {
    /// "I approve the data in this record."
    Approval,
    /// "I have reviewed the data in this record."
    Review,
}

/// `ecrf sign …` arguments.
#[derive(clap::Args)]
pub struct SignArgs {
    /// Subject number.
    subject: String,
    /// Form, or FORM#N; none = the whole casebook.
    form: Option<String>,
    /// What the signature means.
    #[arg(long, value_enum)]
    meaning: Meaning,
}

/// `ecrf audit export` arguments.
#[derive(clap::Args)]
pub struct AuditExportArgs {
    /// One subject.
    #[arg(long)]
    subject: Option<String>,
    /// A form (DLY) or form instance (DLY#3).
    #[arg(long)]
    form: Option<String>,
    /// One item.
    #[arg(long)]
    item: Option<String>,
    /// One user.
    #[arg(long = "by")]
    by: Option<String>,
    /// CSV file to write.
    #[arg(short = 'o', long)]
    output: PathBuf,
}

pub fn query(cli: &Cli, cmd: &QueryCmd) -> Result<(), Failure> {
    let mut store = open(cli)?;
    let (id, step, text) = match cmd {
        QueryCmd::Raise {
            subject,
            form,
            item,
            text,
        } => {
            let key = FormKey::parse(store.study(), form).map_err(Failure)?;
            let id = store.raise_query(subject, &key, item, text)?;
            say!("{id}");
            return Ok(());
        }
        QueryCmd::List { subject } => {
            for q in store.queries(subject.as_deref())? {
                say!(
                    "{} {:<8} {} {} {}  {:?}  (raised by {} at {})",
                    q.id,
                    q.state.to_string(),
                    q.subject,
                    q.form,
                    q.item,
                    q.text,
                    q.raised_by,
                    q.raised_utc
                );
            }
            return Ok(());
        }
        QueryCmd::Answer { id, text } => (id, QueryStep::Answer, text),
        QueryCmd::Close { id, text } => (id, QueryStep::Close, text),
        QueryCmd::Reopen { id, text } => (id, QueryStep::Reopen, text),
    };
    store.query_step(id, step, text)?;
    say!("Query {id}: {step} recorded.");
    Ok(())
}

pub fn sdv(cli: &Cli, cmd: &SdvCmd) -> Result<(), Failure> {
    let mut store = open(cli)?;
    match cmd {
        SdvCmd::Mark {
            subject,
            form,
            items,
        } => {
            let key = FormKey::parse(store.study(), form).map_err(Failure)?;
            let items: Vec<&str> = items.iter().map(String::as_str).collect();
            let n = store.verify_source(subject, &key, &items)?;
            say!("{n} item(s) of {key} of {subject} marked verified.");
        }
        SdvCmd::Status { subject } => {
            let p = store.sdv_progress(subject.as_deref())?;
            say!(
                "{} of {} items verified ({}).",
                p.verified,
                p.items,
                subject.as_deref().unwrap_or("whole site")
            );
        }
    }
    Ok(())
}

/// Each `ecrf` run is a new session, so a signature always asks for user id and password.
pub fn sign(cli: &Cli, args: &SignArgs) -> Result<(), Failure> {
    let mut store = open(cli)?;
    let key = args
        .form
        .as_deref()
        .map(|f| FormKey::parse(store.study(), f))
        .transpose()
        .map_err(Failure)?;
    let user = store.session().user.clone();
    let password = secret(
        "ECRF_SIGN_PASSWORD",
        &format!("Password of {user} to sign: "),
    )?;
    let meaning = match args.meaning {
        Meaning::Approval => SignatureMeaning::Approval,
        Meaning::Review => SignatureMeaning::Review,
    };
    let s = store.sign(&args.subject, key.as_ref(), meaning, Some(&user), &password)?;
    let (en, _) = meaning.statement();
    say!(
        "Signed {} of {} by {} ({}) at {} (UTC; device offset {}): \"{en}\".",
        s.scope,
        s.subject,
        s.name,
        s.signer,
        s.utc,
        s.local_offset
    );
    Ok(())
}

/// Lists a subject's signatures and whether each still holds.
pub fn signatures(cli: &Cli, subject: &str) -> Result<(), Failure> {
    let store = open(cli)?;
    for s in store.signatures(subject)? {
        say!(
            "{} {} {} ({}) {} {}  {}",
            s.scope,
            s.name,
            s.signer,
            s.utc,
            s.local_offset,
            s.meaning.statement().0,
            if s.valid {
                "valid"
            } else {
                "BROKEN: a signed value changed; needs re-signing"
            }
        );
    }
    Ok(())
}

pub fn lock(cli: &Cli, cmd: &LockCmd, lock: bool) -> Result<(), Failure> {
    let mut store = open(cli)?;
    let (scope, reason) = match cmd {
        LockCmd::Form {
            subject,
            form,
            reason,
        } => {
            let key = FormKey::parse(store.study(), form).map_err(Failure)?;
            (
                LockScope::Form {
                    subject: subject.clone(),
                    form: key.to_string(),
                },
                reason,
            )
        }
        LockCmd::Subject { subject, reason } => (LockScope::Subject(subject.clone()), reason),
        LockCmd::Site { site, reason } => (LockScope::Site(site.clone()), reason),
        LockCmd::List => {
            let locks = store.locks()?;
            for scope in locks.scopes() {
                say!("{scope}");
            }
            return Ok(());
        }
    };
    if lock {
        store.lock(scope.clone(), reason)?;
        say!("Locked {scope}.");
    } else {
        store.unlock(scope.clone(), reason)?;
        say!("Unlocked {scope}.");
    }
    Ok(())
}

pub fn audit_export(cli: &Cli, args: &AuditExportArgs) -> Result<(), Failure> {
    let store = open(cli)?;
    let changes = store.audit_review(&AuditFilter {
        subject: args.subject.clone(),
        form: args.form.clone(),
        item: args.item.clone(),
        user: args.by.clone(),
    })?;
    let out = ecrf_store::audit_csv(&changes);
    std::fs::write(&args.output, out)
        .map_err(|e| Failure(format!("{}: {e}", args.output.display())))?;
    say!(
        "{} change(s) written to {}.",
        changes.len(),
        args.output.display()
    );
    say!("{}", crate::NOT_ENCRYPTED);
    Ok(())
}
