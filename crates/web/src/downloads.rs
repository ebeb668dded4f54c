//! Downloads: a data manager starts an export of their sites (every format `ecrf export`
//! writes, from the server's PostgreSQL) and downloads its files.
//!
//! The export runs in the background (the page shows it running, then its files); it reads
//! every site's log in one snapshot (`ecrf_server::db::logs`), replays it with the store's
//! projection rules (`ecrf_export::logs`) and writes the files with `ecrf_export::export`, as
//! `ecrf export --database-url` does. Invariants: only a role that may export, at every site it
//! asks for; a job and its files are seen and fetched only by who started it, and only by the
//! names the export wrote (no path from the request reaches the disk); every start, finish and
//! download is a row of `web_audit` (who, what, which files); the files live in a folder of
//! the server's temporary directory made 0700 at start, and are gone when the server stops.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use ecrf_core::role::Action;
use ecrf_export::Format;
use maud::html;

use crate::auth::{audit, session};
use crate::words::{Lang, tr};
use crate::{Web, WebError, pages};

/// Where an export stands.
#[derive(Debug, Clone)]
pub enum JobState {
    /// Being written.
    Running,
    /// Written: file names and sizes.
    Done(Vec<(String, u64)>),
    /// Failed, with the reason.
    Failed(String),
}

/// One export.
#[derive(Debug, Clone)]
pub struct Job {
    /// Who started it.
    pub owner: String,
    /// Its sites.
    pub sites: Vec<String>,
    /// Its format (`all` or one).
    pub format: String,
    /// Its folder.
    pub dir: PathBuf,
    /// Where it stands.
    pub state: JobState,
    /// When it started (UTC).
    pub started: String,
}

/// Every export of this server's run.
pub struct Downloads {
    root: PathBuf,
    jobs: Mutex<BTreeMap<String, Job>>,
}

impl Downloads {
    /// The exports' folder: a fresh one in the temporary directory, 0700.
    pub fn new() -> Downloads {
        let mut bytes = [0u8; 8];
        let _ = getrandom::fill(&mut bytes);
        let root = std::env::temp_dir().join(format!("ecrf-web-exports-{}", hex::encode(bytes)));
        Downloads {
            root,
            jobs: Mutex::new(BTreeMap::new()),
        }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, id: &str, state: JobState) {
        if let Some(j) = self.jobs().get_mut(id) {
            j.state = state;
        }
    }
}

impl Default for Downloads {
    fn default() -> Self {
        Downloads::new()
    }
}

impl Drop for Downloads {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn make_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The sites where the session may export.
fn export_sites(s: &crate::auth::Session) -> Vec<String> {
    s.sites
        .iter()
        .filter(|(_, a)| a.role.may(Action::Export))
        .map(|(site, _)| site.clone())
        .collect()
}

fn formats_of(name: &str) -> Result<Vec<Format>, WebError> {
    if name == "all" {
        return Ok(Format::ALL.to_vec());
    }
    Format::ALL
        .into_iter()
        .find(|f| f.name() == name)
        .map(|f| vec![f])
        .ok_or_else(|| {
            WebError::Bad(format!(
                "format: all, csv, stata, spss, sas or odm, not {name:?}"
            ))
        })
}

/// `GET /web/exports`: the form and the user's exports.
pub async fn page(State(web): State<Arc<Web>>, headers: HeaderMap) -> Result<Response, WebError> {
    let lang = pages::lang_of(&headers);
    let s = session(&web, &headers).await?;
    let sites = export_sites(&s);
    if sites.is_empty() {
        return Err(WebError::Forbidden(format!(
            "a {} may not export data: ask a data manager",
            s.sites
                .values()
                .next()
                .map(|a| a.role.as_str())
                .unwrap_or("user")
        )));
    }
    let mine: Vec<(String, Job)> = web
        .downloads
        .jobs()
        .iter()
        .filter(|(_, j)| j.owner == s.username)
        .map(|(id, j)| (id.clone(), j.clone()))
        .collect();
    let body = html! {
        h1 { (tr(lang, "Exports", "数据导出")) }
        p.note { (tr(lang,
            "Exports read every change the server holds for your sites, as `ecrf export` does. The files are not encrypted: keep them where trial data may be kept.",
            "导出读取服务器上您所负责中心的全部更改，与 `ecrf export` 相同。文件未加密：请存放在允许存放试验数据的地方。")) }
        form #export-form method="post" action="/web/exports" {
            input type="hidden" name="csrf" value=(s.csrf);
            label { (tr(lang, "Format", "格式")) " "
                select name="format" {
                    option value="all" { (tr(lang, "every format", "全部格式")) }
                    @for f in Format::ALL { option value=(f.name()) { (f.name()) } }
                }
            }
            " "
            label { (tr(lang, "Sites", "中心")) " "
                select name="site" {
                    option value="all" { (tr(lang, "all of mine", "我负责的全部中心")) " (" (sites.join(", ")) ")" }
                    @for site in &sites { option value=(site) { (site) } }
                }
            }
            " "
            label { input type="checkbox" name="audit" value="1"; " " (tr(lang, "with the audit trail", "包含稽查轨迹")) }
            " "
            button type="submit" { (tr(lang, "Start the export", "开始导出")) }
        }
        h2 { (tr(lang, "Your exports", "您的导出")) }
        ul #exports {
            @for (id, j) in mine.iter().rev() {
                li { a href=(format!("/web/exports/{id}")) { (j.started) " · " (j.format) " · " (j.sites.join(", ")) }
                    " — " (state_words(lang, &j.state)) }
            }
        }
    };
    Ok(
        Html(pages::page(lang, tr(lang, "Exports", "数据导出"), Some(&s), body).into_string())
            .into_response(),
    )
}

fn state_words(lang: Lang, s: &JobState) -> String {
    match s {
        JobState::Running => tr(lang, "running…", "正在导出…").to_string(),
        JobState::Done(files) => format!("{} {}", files.len(), tr(lang, "files", "个文件")),
        JobState::Failed(why) => format!("{} {why}", tr(lang, "failed:", "失败：")),
    }
}

/// The export form's fields.
#[derive(Debug, serde::Deserialize)]
pub struct ExportForm {
    /// The session's token.
    #[serde(default)]
    pub csrf: String,
    /// `all` or one format.
    #[serde(default)]
    pub format: String,
    /// `all` (the user's sites) or one site.
    #[serde(default)]
    pub site: String,
    /// With the audit trail.
    #[serde(default)]
    pub audit: Option<String>,
}

/// `POST /web/exports`: starts an export.
pub async fn start(
    State(web): State<Arc<Web>>,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<ExportForm>,
) -> Result<Response, WebError> {
    let s = session(&web, &headers).await?;
    s.check_csrf(&f.csrf)?;
    let mine = export_sites(&s);
    let sites = if f.site == "all" || f.site.is_empty() {
        mine.clone()
    } else {
        s.at(&f.site)?;
        vec![f.site.clone()]
    };
    if sites.is_empty() || sites.iter().any(|x| !mine.contains(x)) {
        return Err(WebError::Forbidden(format!(
            "{} may not export data of site {}",
            s.username,
            sites.join(", ")
        )));
    }
    let formats = formats_of(if f.format.is_empty() {
        "all"
    } else {
        &f.format
    })?;
    let with_audit = f.audit.is_some();
    let id = uuid::Uuid::now_v7().to_string();
    let dir = web.downloads.root.join(&id);
    make_private_dir(&web.downloads.root)
        .and_then(|()| make_private_dir(&dir))
        .map_err(|e| WebError::Internal(format!("export folder: {e}")))?;
    let what = format!(
        "format {} sites {}{}",
        if f.format.is_empty() {
            "all"
        } else {
            &f.format
        },
        sites.join(","),
        if with_audit { " with audit trail" } else { "" }
    );
    audit(
        &web.pool,
        &s.username,
        &addr.ip().to_string(),
        "export.start",
        &format!("{id}: {what}"),
    )
    .await?;
    web.downloads.jobs().insert(
        id.clone(),
        Job {
            owner: s.username.clone(),
            sites: sites.clone(),
            format: if f.format.is_empty() {
                "all".into()
            } else {
                f.format.clone()
            },
            dir: dir.clone(),
            state: JobState::Running,
            started: chrono::Utc::now()
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
        },
    );
    let (web2, id2, user, address) = (
        Arc::clone(&web),
        id.clone(),
        s.username.clone(),
        addr.ip().to_string(),
    );
    tokio::spawn(async move {
        let state = run(&web2, &sites, &formats, with_audit, &dir).await;
        let detail = match &state {
            JobState::Done(files) => format!(
                "{id2}: {} files: {}",
                files.len(),
                files
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            JobState::Failed(why) => format!("{id2}: failed: {why}"),
            JobState::Running => id2.clone(),
        };
        let _ = audit(&web2.pool, &user, &address, "export", &detail).await;
        web2.downloads.set(&id2, state);
    });
    Ok(Redirect::to(&format!("/web/exports/{id}")).into_response())
}

async fn run(
    web: &Web,
    sites: &[String],
    formats: &[Format],
    with_audit: bool,
    dir: &std::path::Path,
) -> JobState {
    let mut conn = match web.pool.acquire().await {
        Ok(c) => c,
        Err(e) => return JobState::Failed(format!("database: {e}")),
    };
    // Each site is folded on another core while the next one is read; this task's thread is
    // the runtime's, so the reading never waits for the folding.
    let mut folder = match ecrf_export::logs::LogFolder::unbounded(with_audit) {
        Ok(f) => f,
        Err(e) => return JobState::Failed(e.to_string()),
    };
    let read = ecrf_server::db::logs::each_site_log(&mut conn, Some(sites), |raw| {
        folder
            .add_records(raw.site, raw.changes)
            .map_err(|e| ecrf_server::ServerError::Internal(e.to_string()))
    })
    .await;
    let all = match read {
        Ok(x) => x,
        Err(e) => return JobState::Failed(e.to_string()),
    };
    drop(conn);
    let study = Arc::clone(&web.study);
    let (formats, dir) = (formats.to_vec(), dir.to_path_buf());
    let written = tokio::task::spawn_blocking(move || {
        let data = folder.finish(&all)?;
        let opts = ecrf_export::ExportOptions {
            include_audit: with_audit,
            ..Default::default()
        };
        ecrf_export::export(&study, &data, &formats, &opts, &dir)
    })
    .await;
    match written {
        Ok(Ok(report)) => JobState::Done(
            report
                .files
                .iter()
                .filter_map(|p| {
                    let name = p.file_name()?.to_str()?.to_string();
                    let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                    Some((name, size))
                })
                .collect(),
        ),
        Ok(Err(e)) => JobState::Failed(e.to_string()),
        Err(e) => JobState::Failed(e.to_string()),
    }
}

fn own_job(web: &Web, user: &str, id: &str) -> Result<Job, WebError> {
    web.downloads
        .jobs()
        .get(id)
        .filter(|j| j.owner == user)
        .cloned()
        .ok_or_else(|| WebError::NotFound(format!("no export {id} of yours")))
}

/// `GET /web/exports/{id}`: the export's state and files.
pub async fn job(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let lang = pages::lang_of(&headers);
    let s = session(&web, &headers).await?;
    let j = own_job(&web, &s.username, &id)?;
    let body = html! {
        h1 { (tr(lang, "Export", "导出")) " " (j.started) }
        p #export-state data-state=(match j.state { JobState::Running => "running", JobState::Done(_) => "done", JobState::Failed(_) => "failed" }) {
            (j.format) " · " (j.sites.join(", ")) " — " (state_words(lang, &j.state))
        }
        @if let JobState::Running = j.state {
            p { progress {} " " a href=(format!("/web/exports/{id}")) { (tr(lang, "Refresh", "刷新")) } }
        }
        @if let JobState::Done(files) = &j.state {
            table.data #export-files {
                thead { tr { th { (tr(lang, "File", "文件")) } th { (tr(lang, "Bytes", "字节")) } } }
                tbody { @for (name, size) in files {
                    tr { td { a href=(format!("/web/exports/{id}/{name}")) download=(name) { (name) } } td.num { (size) } }
                } }
            }
        }
        p { a href="/web/exports" { (tr(lang, "All exports", "全部导出")) } }
    };
    let mut res = Html(pages::page(lang, tr(lang, "Export", "导出"), Some(&s), body).into_string())
        .into_response();
    if matches!(j.state, JobState::Running) {
        // The page asks again by itself while the export runs (no script needed).
        res.headers_mut()
            .insert("refresh", HeaderValue::from_static("2"));
    }
    Ok(res)
}

/// `GET /web/exports/{id}/{file}`: one file of the user's export, audited.
pub async fn file(
    State(web): State<Arc<Web>>,
    Path((id, name)): Path<(String, String)>,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let s = session(&web, &headers).await?;
    let j = own_job(&web, &s.username, &id)?;
    let JobState::Done(files) = &j.state else {
        return Err(WebError::NotFound("the export is not finished".into()));
    };
    // Only a name the export wrote: never a path taken from the request.
    let Some((known, _)) = files.iter().find(|(n, _)| *n == name) else {
        return Err(WebError::NotFound(format!(
            "export {id} has no file {name}"
        )));
    };
    let bytes = tokio::fs::read(j.dir.join(known))
        .await
        .map_err(|e| WebError::Internal(format!("{known}: {e}")))?;
    audit(
        &web.pool,
        &s.username,
        &addr.ip().to_string(),
        "download",
        &format!("{id}: {known}"),
    )
    .await?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{known}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let kind = match known.rsplit('.').next() {
        Some("csv") => "text/csv; charset=utf-8",
        Some("xml") => "application/xml",
        Some("R") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}
