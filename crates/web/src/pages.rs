//! The HTML pages: login, dashboard, a site's subjects, a subject's casebook, errors; the two
//! SVG downloads and the stylesheet. Every value is printed through `maud`, which escapes it;
//! the only unescaped markup is SVG built by [`crate::svg`], which escapes its own text.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use ecrf_core::Value;
use ecrf_core::eligibility::Outcome;
use ecrf_core::outcome::Answer;
use ecrf_core::query::QueryState;
use ecrf_core::role::Action;
use ecrf_core::study::{ItemDef, Study};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::auth::{Session, session};
use crate::dashboard::{self, Dashboard, QUERY_AGES};
use crate::model::{Day30Work, SubjectSummary};
use crate::subject::SubjectView;
use crate::words::{Lang, study_text, tr};
use crate::{Web, WebError, svg};

/// The cookie that remembers the language chosen.
pub const LANG_COOKIE: &str = "ecrf_lang";

/// `?lang=zh|en`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct LangQuery {
    /// The language asked for.
    pub lang: Option<String>,
}

/// The language of a request: the cookie, else the browser's first language.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    if let Some(l) = crate::auth::cookie(headers, LANG_COOKIE) {
        return l.parse().unwrap_or_default();
    }
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.trim_start().starts_with("zh") {
        Lang::Zh
    } else {
        Lang::En
    }
}

/// The language of a page: `?lang=` (remembered in a cookie) or [`lang_of`].
fn page_lang(headers: &HeaderMap, q: &LangQuery) -> (Lang, Option<HeaderValue>) {
    match q.lang.as_deref().and_then(|l| l.parse::<Lang>().ok()) {
        Some(l) => (
            l,
            HeaderValue::from_str(&format!(
                "{LANG_COOKIE}={}; Path=/web; HttpOnly; Secure; SameSite=Strict",
                l.code()
            ))
            .ok(),
        ),
        None => (lang_of(headers), None),
    }
}

/// A JSON answer.
fn json_reply(body: &impl serde::Serialize) -> Result<Response, WebError> {
    let text = serde_json::to_string(body).map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

fn respond(markup: Markup, cookie: Option<HeaderValue>) -> Response {
    let mut res = Html(markup.into_string()).into_response();
    if let Some(c) = cookie {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// A whole page: header (user, sites, language, log out), the sites' menu, then `body`.
pub fn page(lang: Lang, title: &str, s: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(if lang == Lang::Zh { "zh-CN" } else { "en" }) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — EARLY-IABP" }
                link rel="stylesheet" href="/web/static/app.css";
            }
            body {
                header.top {
                    a.brand href="/web/" { "EARLY-IABP · " (tr(lang, "coordinating centre", "协调中心")) }
                    nav.lang {
                        a href="?lang=en" lang="en" { "English" } " · "
                        a href="?lang=zh" lang="zh" { "中文" }
                    }
                    @if let Some(s) = s {
                        span.who {
                            (s.name) " (" (s.username) ") · "
                            @for (site, a) in &s.sites {
                                span.site-role { (site) ": " (a.role) } " "
                            }
                        }
                        form.logout method="post" action="/web/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { (tr(lang, "Log out", "退出")) }
                        }
                    }
                }
                @if let Some(s) = s {
                    nav.sites {
                        a href="/web/" { (tr(lang, "Dashboard", "总览")) }
                        @for site in s.sites.keys() {
                            a href=(format!("/web/sites/{site}")) { (tr(lang, "Site", "中心")) " " (site) }
                        }
                        @if s.sites.values().any(|a| a.role.may(Action::ViewByArm)) {
                            a #nav-dmc href="/web/dmc" { (tr(lang, "Closed report", "闭门报告")) }
                        }
                        @if s.sites.values().any(|a| a.role.may(Action::Export)) {
                            a #nav-exports href="/web/exports" { (tr(lang, "Exports", "数据导出")) }
                        }
                        a #nav-study href="/web/study" { (tr(lang, "Study versions", "研究定义版本")) }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// An error page (the status is set by the caller).
pub fn error_page(status: StatusCode, why: &str) -> Html<String> {
    let lang = Lang::En;
    Html(
        page(
            lang,
            status.canonical_reason().unwrap_or("Error"),
            None,
            html! {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p.error role="alert" { (why) }
                p { a href="/web/" { "Back to the dashboard" } }
            },
        )
        .into_string(),
    )
}

/// The login page.
pub fn login_page(lang: Lang, csrf: &str, problem: Option<&str>) -> Html<String> {
    Html(
        page(
            lang,
            tr(lang, "Log in", "登录"),
            None,
            html! {
                h1 { (tr(lang, "Log in", "登录")) }
                p { (tr(lang,
                    "Use the user name and password the coordinating centre registered for you.",
                    "请使用协调中心为您登记的用户名和密码。")) }
                @if let Some(p) = problem {
                    p.error #login-error role="alert" { (p) }
                }
                form.login method="post" action="/web/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { (tr(lang, "User name", "用户名"))
                        input #username type="text" name="username" autocomplete="username" required autofocus; }
                    label { (tr(lang, "Password", "密码"))
                        input #password type="password" name="password" autocomplete="current-password" required; }
                    button #login type="submit" { (tr(lang, "Log in", "登录")) }
                }
            },
        )
        .into_string(),
    )
}

/// `GET /web/static/app.css`.
pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("app.css"),
    )
        .into_response()
}

/// The arms of the study: (code, label in `lang`).
fn arms(study: &Study, lang: Lang) -> Vec<(String, String)> {
    study
        .codelists
        .get("arms")
        .map(|l| {
            l.codes
                .iter()
                .map(|c| (c.code.clone(), study_text(lang, &c.label).to_string()))
                .collect()
        })
        .unwrap_or_default()
}

async fn dashboard_of(web: &Web, s: &Session) -> Result<Dashboard, WebError> {
    let sites: Vec<String> = s.sites.keys().cloned().collect();
    let trial = web.trial.read(&web.pool, Utc::now()).await?;
    Ok(dashboard::dashboard(
        &trial,
        &sites,
        web.options.target,
        Utc::now(),
    ))
}

/// `GET /web/`: the trial dashboard of the sites the user may see.
pub async fn dashboard(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Result<Response, WebError> {
    let (lang, cookie) = page_lang(&headers, &q);
    let s = session(&web, &headers).await?;
    let sites: Vec<String> = s.sites.keys().cloned().collect();
    // One read of the trial for both (each read asks every site for new changes).
    let (d, pooled) = {
        let now = Utc::now();
        let trial = web.trial.read(&web.pool, now).await?;
        (
            dashboard::dashboard(&trial, &sites, web.options.target, now),
            crate::dmc::pooled(&trial, &sites),
        )
    };
    let devices = dashboard::devices(&web.pool, &sites, Utc::now()).await?;
    let server_flags = dashboard::server_flags(&web.pool, &sites).await?;
    let arms = arms(&web.study, lang);
    let today = Utc::now().date_naive();
    let total = d.consort.counts.randomized;
    let flag_codes: Vec<String> = {
        let mut codes: Vec<String> = d
            .sites
            .iter()
            .flat_map(|r| r.flags.keys().cloned())
            .chain(server_flags.values().flat_map(|m| m.keys().cloned()))
            .collect();
        codes.sort();
        codes.dedup();
        codes
    };
    let body = html! {
        h1 { (tr(lang, "Trial dashboard", "试验总览")) }
        section #enrolment {
            h2 { (tr(lang, "Enrolment", "入组")) }
            p.big #enrolled {
                (total) " / " (d.target) " " (tr(lang, "randomized", "例已随机"))
                " (" (format!("{:.1}", 100.0 * total as f64 / d.target.max(1) as f64)) "%)"
            }
            p #projection {
                @match d.projected {
                    Some(p) if total >= d.target => { (tr(lang, "Target reached on ", "已于以下日期达到目标：")) (p) }
                    Some(p) => {
                        (tr(lang, "Projected completion: ", "预计完成日期：")) strong { (p) }
                        " (" (format!("{:.2}", d.rate_per_day * 30.0)) " " (tr(lang, "per 30 days over the last 90 days", "例/30天，按最近90天计")) ")"
                    }
                    None => { (tr(lang, "No projection yet: nobody randomized in the last 90 days.", "暂无预测：最近90天无随机。")) }
                }
            }
            (PreEscaped(svg::enrolment(&d, today, lang)))
            table.data #enrolment-table {
                thead { tr {
                    th { (tr(lang, "Site", "中心")) } th { (tr(lang, "Screened", "筛选")) }
                    th { (tr(lang, "Randomized", "随机")) }
                    @for (_, label) in &arms { th { (label) } }
                } }
                tbody {
                    @for r in &d.sites {
                        tr data-site=(r.site) {
                            td { a href=(format!("/web/sites/{}", r.site)) { (r.site) " " (r.name) } }
                            td.num { (r.consort.counts.screened) }
                            td.num { (r.consort.counts.randomized) }
                            @for (code, _) in &arms { td.num { (r.consort.by_arm.get(code).copied().unwrap_or(0)) } }
                        }
                    }
                    tr.total {
                        td { (tr(lang, "Total", "合计")) }
                        td.num { (d.consort.counts.screened) }
                        td.num { (d.consort.counts.randomized) }
                        @for (code, _) in &arms { td.num { (d.consort.by_arm.get(code).copied().unwrap_or(0)) } }
                    }
                }
            }
            p.note { (tr(lang,
                "Allocation balance counts only arms opened by randomization; sealed envelopes are never read here.",
                "分组平衡仅统计随机时已揭示的分组；此处从不读取未开启的信封。")) }
        }
        section #pooled {
            h2 { (tr(lang, "Primary endpoint, all arms pooled", "主要终点（各组合并）")) }
            p #pooled-figures {
                (pooled.deaths) " " (tr(lang, "deaths by day 30 among", "例30天内死亡，共")) " "
                (pooled.known) " " (tr(lang, "subjects with the endpoint known", "例终点已知"))
                " (" (pct(pooled.mortality)) "); "
                (tr(lang, "known for", "已知")) " " (pooled.known) " / " (pooled.randomized) " " (tr(lang, "randomized", "例随机"))
            }
            p.note { (tr(lang, "Results by arm are in the statistician's closed report only.", "分组结果仅见于统计师的闭门报告。")) }
        }
        section #consort {
            h2 { "CONSORT" }
            (PreEscaped(svg::consort(&d, &arms, lang)))
            p { a #consort-download href="/web/consort.svg" download="consort.svg" { (tr(lang, "Download the diagram (SVG)", "下载流程图（SVG）")) } }
        }
        section #flags {
            h2 { (tr(lang, "Protocol flags", "方案偏离标记")) }
            @if flag_codes.is_empty() {
                p { (tr(lang, "No flags.", "无标记。")) }
            } @else {
                table.data {
                    thead { tr { th { (tr(lang, "Flag", "标记")) } @for r in &d.sites { th { (r.site) } } } }
                    tbody {
                        @for code in &flag_codes {
                            tr data-flag=(code) {
                                td { code { (code) } }
                                @for r in &d.sites {
                                    td.num { (r.flags.get(code).copied().unwrap_or(0) as i64
                                        + server_flags.get(&r.site).and_then(|m| m.get(code)).copied().unwrap_or(0)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section #overdue {
            h2 { (tr(lang, "Overdue work", "逾期工作")) }
            table.data {
                thead { tr {
                    th { (tr(lang, "Site", "中心")) }
                    th { (tr(lang, "Daily logs missing", "缺失每日记录")) }
                    th { (tr(lang, "Day 30 due (day 30–37)", "第30天随访待完成（30–37天）")) }
                    th { (tr(lang, "Day 30 overdue", "第30天随访逾期")) }
                    th { (tr(lang, "Casebooks to sign", "待签名病例")) }
                    @for age in QUERY_AGES { th { (tr(lang, "Open queries ", "未答复质疑 ")) (age) (tr(lang, " days", "天")) } }
                    th { (tr(lang, "Answered, to close", "已答复待关闭")) }
                    th { (tr(lang, "Conflicts", "冲突")) }
                } }
                tbody {
                    @for r in &d.sites {
                        tr data-site=(r.site) {
                            td { (r.site) }
                            td.num { (r.missing_logs) } td.num { (r.day30_due) } td.num { (r.day30_overdue) }
                            td.num { (r.unsigned) }
                            @for n in r.open_queries { td.num { (n) } }
                            td.num { (r.answered_queries) } td.num { (r.conflicts) }
                        }
                    }
                }
            }
        }
        section #devices {
            h2 { (tr(lang, "Laptops", "笔记本电脑")) }
            table.data {
                thead { tr {
                    th { (tr(lang, "Laptop", "设备")) } th { (tr(lang, "Site", "中心")) }
                    th { (tr(lang, "Last sync", "最近同步")) } th { (tr(lang, "Changes waiting for it", "待接收的更改")) }
                } }
                tbody {
                    @for dev in &devices {
                        tr class=(if dev.stale { "stale" } else if dev.revoked { "revoked" } else { "" }) {
                            td { (dev.device) }
                            td { (dev.site) }
                            td {
                                @match dev.last_sync {
                                    Some(t) => { (t.format("%Y-%m-%d %H:%M UTC")) }
                                    None => { (tr(lang, "never", "从未")) }
                                }
                                @if dev.stale { " · " strong { (tr(lang, "stale", "过久未同步")) } }
                                @if dev.revoked { " · " (tr(lang, "revoked", "已吊销")) }
                            }
                            td.num { (dev.waiting) @if dev.waiting >= dashboard::WAITING_CAP { "+" } }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(
        page(
            lang,
            tr(lang, "Trial dashboard", "试验总览"),
            Some(&s),
            body,
        ),
        cookie,
    ))
}

/// `GET /web/consort.svg`: the diagram of the user's sites, to download.
pub async fn consort_svg(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let lang = lang_of(&headers);
    let s = session(&web, &headers).await?;
    let d = dashboard_of(&web, &s).await?;
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
        svg::consort(&d, &arms(&web.study, lang), lang)
    );
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"consort.svg\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// `GET /web/enrolment.svg`.
pub async fn enrolment_svg(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let lang = lang_of(&headers);
    let s = session(&web, &headers).await?;
    let d = dashboard_of(&web, &s).await?;
    Ok((
        [(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")],
        svg::enrolment(&d, Utc::now().date_naive(), lang),
    )
        .into_response())
}

fn status_of(s: &SubjectSummary, lang: Lang) -> &'static str {
    match s.screened.outcome() {
        Outcome::Randomized => tr(lang, "randomized", "已随机"),
        Outcome::Pending => tr(lang, "eligible, not randomized", "符合条件，未随机"),
        Outcome::NoConsent(_) => tr(lang, "no consent", "未获同意"),
        Outcome::NotEligible(_) => tr(lang, "not eligible", "不符合条件"),
    }
}

fn day30_of(s: &SubjectSummary, lang: Lang) -> &'static str {
    if !s.screened.randomized {
        return "";
    }
    match s.day30 {
        Day30Work::NotYet => tr(lang, "not yet", "未到"),
        Day30Work::Due => tr(lang, "due", "待完成"),
        Day30Work::Overdue => tr(lang, "overdue", "逾期"),
        Day30Work::Done => tr(lang, "done", "已完成"),
    }
}

/// The locks in force that concern a subject (or only the site's, without one).
#[derive(Debug, Default)]
struct LockView {
    site: bool,
    casebook: bool,
    forms: std::collections::BTreeSet<String>,
}

fn locks_of(state: &crate::model::SiteState, subject: Option<&str>) -> LockView {
    let mut v = LockView::default();
    for l in state.projection.locks.values() {
        let mine = subject.is_some() && l.subject.as_deref() == subject;
        match l.lock.scope.as_str() {
            "site" => v.site = true,
            "subject" if mine => v.casebook = true,
            "form" if mine => {
                v.forms.insert(l.form.clone().unwrap_or_default());
            }
            _ => {}
        }
    }
    v
}

/// A lock or unlock button with its reason, for data managers.
fn lock_button(
    lang: Lang,
    site: &str,
    (scope, subject, form): (&str, &str, &str),
    locked: bool,
    csrf: &str,
) -> Markup {
    html! {
        form.lock method="post" action=(format!("/web/sites/{site}/locks")) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="scope" value=(scope);
            input type="hidden" name="subject" value=(subject);
            input type="hidden" name="form" value=(form);
            input type="hidden" name="action" value=(if locked { "unlock" } else { "lock" });
            label { (tr(lang, "Reason", "原因")) " " input type="text" name="reason" required maxlength="2000"; }
            button type="submit" { (if locked { tr(lang, "Unlock", "解锁") } else { tr(lang, "Lock", "锁定") }) }
        }
    }
}

/// `GET /web/sites/{site}`: the site's subjects with their work.
pub async fn site(
    State(web): State<Arc<Web>>,
    Path(site): Path<String>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Result<Response, WebError> {
    let (lang, cookie) = page_lang(&headers, &q);
    let s = session(&web, &headers).await?;
    s.at(&site)?;
    let trial = web.trial.read(&web.pool, Utc::now()).await?;
    let state = trial
        .sites
        .get(&site)
        .ok_or_else(|| WebError::NotFound(format!("there is no site {site}")))?;
    let arms: BTreeMap<String, String> = arms(&web.study, lang).into_iter().collect();
    let open: BTreeMap<&str, usize> =
        state
            .projection
            .queries
            .values()
            .fold(BTreeMap::new(), |mut m, q| {
                if q.state != QueryState::Closed {
                    *m.entry(q.subject.as_str()).or_default() += 1;
                }
                m
            });
    let locks = locks_of(state, None);
    let access = s.at(&site)?;
    let may = if locks.site {
        access.role.may(Action::Unlock)
    } else {
        access.role.may(Action::Lock)
    };
    let body = html! {
        h1 { (tr(lang, "Site", "中心")) " " (site) " — " (state.name) }
        @if locks.site { p.locked #site-locked { (tr(lang, "The whole site is locked.", "整个中心已锁定。")) } }
        @if may { (lock_button(lang, &site, ("site", "", ""), locks.site, &s.csrf)) }
        table.data #subjects {
            thead { tr {
                th { (tr(lang, "Subject", "受试者")) } th { (tr(lang, "Screening", "筛选")) }
                th { (tr(lang, "Randomized at", "随机时间")) } th { (tr(lang, "Arm", "组别")) }
                th { (tr(lang, "Day 30", "第30天")) } th { (tr(lang, "Daily logs missing", "缺失每日记录")) }
                th { (tr(lang, "Flags", "标记")) } th { (tr(lang, "Open queries", "未关闭质疑")) }
            } }
            tbody {
                @for (id, sum) in &state.subjects {
                    tr data-subject=(id) {
                        td { a href=(format!("/web/sites/{site}/subjects/{id}")) { (id) } }
                        td { (status_of(sum, lang)) }
                        td { @if let Some(t) = sum.outcome.randomized_at { (t.format("%Y-%m-%d %H:%M %:z")) } }
                        td { @if sum.screened.randomized { @if let Some(a) = &sum.screened.arm { (arms.get(a).cloned().unwrap_or_else(|| a.clone())) } } }
                        td { (day30_of(sum, lang)) }
                        td.num { (sum.outcome.flags.iter().filter(|f| f.code == "DAILY_LOG_MISSING").count()) }
                        td { @for f in sum.outcome.flags.iter().filter(|f| f.code != "DAILY_LOG_MISSING") { code { (f.code) } " " } }
                        td.num { (open.get(id.as_str()).copied().unwrap_or(0)) }
                    }
                }
            }
        }
    };
    Ok(respond(
        page(
            lang,
            &format!("{} {site}", tr(lang, "Site", "中心")),
            Some(&s),
            body,
        ),
        cookie,
    ))
}

/// `GET /web/api/sites/{site}/subjects`: the site's subjects as JSON (for scripts), under the
/// same session and site rules as the pages.
pub async fn site_json(
    State(web): State<Arc<Web>>,
    Path(site): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let s = session(&web, &headers).await?;
    s.at(&site)?;
    let trial = web.trial.read(&web.pool, Utc::now()).await?;
    let state = trial
        .sites
        .get(&site)
        .ok_or_else(|| WebError::NotFound(format!("there is no site {site}")))?;
    let rows: Vec<serde_json::Value> = state
        .subjects
        .iter()
        .map(|(id, sum)| {
            serde_json::json!({
                "subject": id,
                "randomized": sum.screened.randomized,
                "flags": sum.outcome.flags.iter().map(|f| f.code.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json_reply(&rows)
}

/// A value as a nurse reads it: code labels, dates without ISO's `T`.
fn shown(study: &Study, item: Option<&ItemDef>, v: &Value, lang: Lang) -> String {
    match v {
        Value::DateTime(d) => d.format("%Y-%m-%d %H:%M %:z").to_string(),
        Value::Code(c) => item
            .and_then(|i| study.codes_for(i).into_iter().find(|x| &x.code == c))
            .map(|x| format!("{} ({c})", study_text(lang, &x.label)))
            .unwrap_or_else(|| c.clone()),
        other => other.to_string(),
    }
}

/// `GET /web/sites/{site}/subjects/{subject}`: the subject's casebook, read-only.
pub async fn subject(
    State(web): State<Arc<Web>>,
    Path((site, subject)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Result<Response, WebError> {
    let (lang, cookie) = page_lang(&headers, &q);
    let s = session(&web, &headers).await?;
    let access = s.at(&site)?;
    let v = crate::subject::load(&web.pool, &web.study, &site, &subject, Utc::now()).await?;
    let locks = {
        let trial = web.trial.read(&web.pool, Utc::now()).await?;
        trial
            .sites
            .get(&site)
            .map(|state| locks_of(state, Some(&subject)))
            .unwrap_or_default()
    };
    let may = Mays {
        raise: access.role.may(Action::RaiseQuery),
        close: access.role.may(Action::CloseQuery),
        verify: access.role.may(Action::VerifySource),
        lock: access.role.may(Action::Lock),
        unlock: access.role.may(Action::Unlock),
    };
    let body = subject_body(&web.study, &v, lang, &s.csrf, &may, &locks);
    Ok(respond(page(lang, &subject, Some(&s), body), cookie))
}

/// What the user may do on a subject's page.
struct Mays {
    raise: bool,
    close: bool,
    verify: bool,
    lock: bool,
    unlock: bool,
}

impl Mays {
    fn toggle(&self, locked: bool) -> bool {
        if locked { self.unlock } else { self.lock }
    }
}

fn subject_body(
    study: &Study,
    v: &SubjectView,
    lang: Lang,
    csrf: &str,
    may: &Mays,
    locks: &LockView,
) -> Markup {
    let (may_raise, may_close, may_verify) = (may.raise, may.close, may.verify);
    let o = &v.outcome;
    let base = format!("/web/sites/{}/subjects/{}", v.site, v.subject);
    html! {
        h1 { (tr(lang, "Subject", "受试者")) " " (v.subject) }
        p { a #print-pdf href=(format!("{base}/casebook.pdf")) { (tr(lang, "Print the casebook (PDF, as on the laptop)", "打印病例（PDF，与笔记本电脑相同）")) } }
        section #locks {
            @if locks.site { p.locked { (tr(lang, "The site is locked.", "该中心已锁定。")) } }
            @if locks.casebook { p.locked #casebook-locked { (tr(lang, "This casebook is locked.", "该病例已锁定。")) } }
            @if may.toggle(locks.casebook) {
                (lock_button(lang, &v.site, ("subject", &v.subject, ""), locks.casebook, csrf))
            }
        }
        dl.outcome {
            dt { (tr(lang, "Randomized at", "随机时间")) }
            dd { @if let Some(t) = o.randomized_at { (t.format("%Y-%m-%d %H:%M %:z")) } @else { "—" } }
            dt { (tr(lang, "IABP delay after ECMO start", "ECMO开始至IABP置入")) }
            dd { @if let Some(m) = o.iabp_delay_min { (m) " min" } @else { "—" } }
            dt { (tr(lang, "Primary endpoint (death by day 30)", "主要终点（30天内死亡）")) }
            dd #primary { (match o.primary_endpoint {
                Answer::Yes => tr(lang, "yes", "是"),
                Answer::No => tr(lang, "no", "否"),
                Answer::Unknown => tr(lang, "unknown", "未知"),
            }) }
        }
        @if !o.flags.is_empty() {
            h2 { (tr(lang, "Protocol flags", "方案偏离标记")) }
            ul.flags #subject-flags {
                @for f in &o.flags { li { code { (f.code) } " " (f.form) ": " (study_text(lang, &f.message)) } }
            }
        }
        h2 { (tr(lang, "Queries", "质疑")) }
        @if v.queries.is_empty() { p { (tr(lang, "No queries.", "无质疑。")) } }
        @for q in &v.queries {
            div.query id=(format!("q-{}", q.id)) data-state=(format!("{:?}", q.state).to_lowercase()) {
                h3 { (q.form) " · " (q.item) " — " span.state { (match q.state {
                    QueryState::Open => tr(lang, "open", "未答复"),
                    QueryState::Answered => tr(lang, "answered", "已答复"),
                    QueryState::Closed => tr(lang, "closed", "已关闭"),
                }) } }
                ol.thread {
                    @for st in &q.steps {
                        li { span.when { (st.utc) } " " strong { (st.user) } " (" (st.role) "): " span.text { (st.text) } }
                    }
                }
                @if may_close && q.state != QueryState::Closed {
                    form method="post" action=(format!("{base}/queries/{}/close", q.id)) {
                        input type="hidden" name="csrf" value=(csrf);
                        label { (tr(lang, "Note", "备注")) input type="text" name="text" required maxlength="2000"; }
                        button type="submit" { (tr(lang, "Close the query", "关闭质疑")) }
                    }
                }
            }
        }
        @for form in &study.forms {
            @for (instance, values) in v.values.range(form.id.clone()..).take_while(|(k, _)| k.split('#').next() == Some(form.id.as_str())) {
                section.form id=(format!("f-{instance}")) {
                    h2 { (study_text(lang, &form.name)) " · " (instance) }
                    @let form_locked = locks.forms.contains(instance);
                    @if form_locked { p.locked { (tr(lang, "This form is locked.", "该表单已锁定。")) } }
                    @if may.toggle(form_locked) {
                        (lock_button(lang, &v.site, ("form", &v.subject, instance), form_locked, csrf))
                    }
                    table.data {
                        thead { tr {
                            th { (tr(lang, "Item", "项目")) } th { (tr(lang, "Value", "值")) }
                            th { "SDV" } th { (tr(lang, "History", "修改记录")) }
                        } }
                        tbody {
                            @for item in &form.items {
                                @let value = values.get(&item.id);
                                @let derived = v.derived.get(instance).and_then(|d| d.get(&item.id));
                                @if value.is_some() || derived.is_some() {
                                    tr id=(format!("i-{instance}-{}", item.id)) {
                                        td { (study_text(lang, &item.label)) " " small { code { (item.id) } } }
                                        td.value {
                                            @if let Some(x) = value { (shown(study, Some(item), x, lang)) }
                                            @else if let Some(x) = derived { (shown(study, Some(item), x, lang)) " " small { (tr(lang, "(derived)", "（推导）")) } }
                                            @if let Some(u) = &item.unit { " " (u) }
                                        }
                                        td {
                                            @if v.verified.contains(&(instance.clone(), item.id.clone())) { "✓" }
                                            @else if may_verify && value.is_some() {
                                                form.inline method="post" action=(format!("{base}/sdv")) {
                                                    input type="hidden" name="csrf" value=(csrf);
                                                    input type="hidden" name="form" value=(instance);
                                                    input type="hidden" name="item" value=(item.id);
                                                    button type="submit" { (tr(lang, "Mark verified", "标记为已核查")) }
                                                }
                                            }
                                        }
                                        td {
                                            details {
                                                summary { (v.trail(instance, &item.id).count()) " " (tr(lang, "changes", "次修改")) }
                                                ol.trail {
                                                    @for c in v.trail(instance, &item.id) {
                                                        li {
                                                            span.when { (c.utc) } " " strong { (c.user) } " (" (c.role) ") "
                                                            (c.old_value.as_deref().and_then(|j| Value::from_json(j).ok()).map(|x| shown(study, Some(item), &x, lang)).unwrap_or_else(|| "∅".into()))
                                                            " → "
                                                            (c.new_value.as_deref().and_then(|j| Value::from_json(j).ok()).map(|x| shown(study, Some(item), &x, lang)).unwrap_or_else(|| "∅".into()))
                                                            @if let Some(r) = &c.reason { " · " em { (r) } }
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if may_raise {
                        form.raise method="post" action=(format!("{base}/queries")) {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="form" value=(instance);
                            label { (tr(lang, "Raise a query on", "就以下项目提出质疑"))
                                select name="item" {
                                    @for item in &form.items { option value=(item.id) { (item.id) " — " (study_text(lang, &item.label)) } }
                                }
                            }
                            label { (tr(lang, "Question", "问题")) textarea name="text" required maxlength="2000" {} }
                            button type="submit" { (tr(lang, "Raise the query", "提出质疑")) }
                        }
                    }
                }
            }
        }
        h2 { (tr(lang, "Signatures", "签名")) }
        @if v.signatures.is_empty() { p { (tr(lang, "Not signed.", "未签名。")) } }
        ul { @for sig in &v.signatures {
            li { (sig.scope) ": " (sig.name) " (" (sig.signer) ") " (sig.utc) " · "
                @if sig.valid { (tr(lang, "valid", "有效")) } @else { strong { (tr(lang, "no longer valid: values changed since", "已失效：签名后数值有修改")) } } }
        } }
    }
}

/// `GET /web/api/consort`: the CONSORT counts of the user's sites as JSON (the dashboard's
/// numbers, for scripts and the test that holds them equal to `ecrf screening consort`).
pub async fn consort_json(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let s = session(&web, &headers).await?;
    let d = dashboard_of(&web, &s).await?;
    let c = &d.consort.counts;
    let body = serde_json::json!({
        "screened": c.screened,
        "not_eligible": c.not_eligible,
        "by_criterion": c.by_criterion,
        "consent_not_obtained": c.consent_not_obtained,
        "pending": c.pending,
        "randomized": c.randomized,
        "by_arm": d.consort.by_arm,
        "lost": d.lost,
        "analysed": d.analysed,
    });
    json_reply(&body)
}

/// The sites where the session may see results by arm.
fn by_arm_sites(s: &Session) -> Vec<String> {
    s.sites
        .iter()
        .filter(|(_, a)| a.role.may(Action::ViewByArm))
        .map(|(site, _)| site.clone())
        .collect()
}

async fn closed_report(web: &Web, s: &Session) -> Result<crate::dmc::ClosedReport, WebError> {
    let sites = by_arm_sites(s);
    if sites.is_empty() {
        return Err(WebError::Forbidden(
            "only the trial statistician sees results by arm (the closed report); the \
             dashboard shows pooled figures"
                .into(),
        ));
    }
    let trial = web.trial.read(&web.pool, Utc::now()).await?;
    Ok(crate::dmc::report(&trial, &sites))
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.1}%", 100.0 * v))
        .unwrap_or_else(|| "—".into())
}

/// `GET /web/dmc`: the closed report for the data monitoring committee.
pub async fn dmc(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Result<Response, WebError> {
    let (lang, cookie) = page_lang(&headers, &q);
    let s = session(&web, &headers).await?;
    let r = closed_report(&web, &s).await?;
    let arms = arms(&web.study, lang);
    let label = |code: &str| {
        arms.iter()
            .find(|(c, _)| c == code)
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| code.to_string())
    };
    let body = html! {
        h1 { (tr(lang, "Closed report for the data monitoring committee", "数据监查委员会闭门报告")) }
        p.error { (tr(lang, "Confidential: results by arm. Do not share outside the closed session.",
                      "机密：分组结果。请勿在闭门会议之外传播。")) }
        table.data #dmc-table {
            thead { tr {
                th { (tr(lang, "Arm", "组别")) }
                th { (tr(lang, "Randomized", "随机")) }
                th { (tr(lang, "Primary endpoint known", "主要终点已知")) }
                th { (tr(lang, "Deaths by day 30", "30天内死亡")) }
                th { (tr(lang, "30-day mortality (95% CI, Wilson)", "30天死亡率（95%CI，Wilson）")) }
                th { (tr(lang, "Serious adverse events (subjects)", "严重不良事件（受试者数）")) }
                th { (tr(lang, "Crossovers", "交叉")) }
                th { (tr(lang, "IABP late or never", "IABP延迟或未置入")) }
            } }
            tbody {
                @for a in r.arms.iter().chain(std::iter::once(&r.pooled)) {
                    tr data-arm=(a.arm) {
                        td { @if a.arm.is_empty() { strong { (tr(lang, "All arms", "全部")) } } @else { (label(&a.arm)) } }
                        td.num { (a.randomized) }
                        td.num { (a.known) " (" (pct((a.randomized > 0).then(|| a.known as f64 / a.randomized as f64))) ")" }
                        td.num { (a.deaths) }
                        td.num { (pct(a.mortality)) @if let Some((lo, hi)) = a.ci { " (" (format!("{:.1}–{:.1}%", 100.0 * lo, 100.0 * hi)) ")" } }
                        td.num { (a.serious_aes) " (" (a.subjects_with_sae) ")" }
                        td.num { (a.crossovers) }
                        td.num { (a.deviations) }
                    }
                }
            }
        }
        h2 { (tr(lang, "Kaplan–Meier survival to day 30", "至第30天Kaplan–Meier生存曲线")) }
        (PreEscaped(svg::kaplan_meier(&r, &arms, lang)))
        p.note { (tr(lang,
            "Subjects whose primary endpoint is not known yet are left out of the mortality and the curves; the completeness column counts them.",
            "主要终点尚未知晓的受试者不计入死亡率和生存曲线；“主要终点已知”一栏反映完整性。")) }
    };
    Ok(respond(
        page(lang, tr(lang, "Closed report", "闭门报告"), Some(&s), body),
        cookie,
    ))
}

/// `GET /web/api/dmc`: the closed report as JSON (statistician only).
pub async fn dmc_json(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let s = session(&web, &headers).await?;
    let r = closed_report(&web, &s).await?;
    json_reply(&r)
}

/// `GET /web/sites/{site}/subjects/{subject}/casebook.pdf`: the subject's filled CRF with its
/// audit appendix, printed by `ecrf_pdf` from the same record a laptop prints (audited).
pub async fn casebook_pdf(
    State(web): State<Arc<Web>>,
    Path((site, subject)): Path<(String, String)>,
    axum::extract::ConnectInfo(addr): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let lang = lang_of(&headers);
    let s = session(&web, &headers).await?;
    s.at(&site)?;
    let v = crate::subject::load(&web.pool, &web.study, &site, &subject, Utc::now()).await?;
    let names: BTreeMap<String, String> = {
        let trial = web.trial.read(&web.pool, Utc::now()).await?;
        trial
            .sites
            .get(&site)
            .map(|st| {
                st.projection
                    .users
                    .iter()
                    .map(|(u, p)| (u.clone(), p.name.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let casebook = crate::subject::casebook(&web.study, &v, names);
    let by = format!("{} ({})", s.name, s.username);
    let web2 = Arc::clone(&web);
    let printed = tokio::task::spawn_blocking(move || {
        let printer = web2
            .printer
            .get_or_init(|| ecrf_pdf::Printer::new().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| format!("the printout's font: {e}"))?;
        printer
            .subject(
                &web2.study,
                &casebook,
                &ecrf_pdf::PrintOptions::now(lang.code(), &by),
            )
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| WebError::Internal(e.to_string()))?
    .map_err(WebError::Internal)?;
    crate::auth::audit(
        &web.pool,
        &s.username,
        &addr.ip().to_string(),
        "print",
        &format!("{site} {subject}: {} pages", printed.pages),
    )
    .await?;
    let disposition = HeaderValue::from_str(&format!("inline; filename=\"{subject}.pdf\""))
        .unwrap_or_else(|_| HeaderValue::from_static("inline"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        printed.bytes,
    )
        .into_response())
}

/// `GET /web/study`: the definition versions the server holds, each site's activations, and
/// what each amendment changes from the version before it (`ecrf study diff`'s lines).
pub async fn study_versions(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Result<Response, WebError> {
    let (lang, cookie) = page_lang(&headers, &q);
    let s = session(&web, &headers).await?;
    let defs = ecrf_server::db::versions::definitions(&web.pool, Arc::clone(&web.study)).await?;
    let all = defs.all();
    let sites: Vec<String> = sqlx::query_scalar("SELECT code FROM sites ORDER BY code")
        .fetch_all(&web.pool)
        .await?;
    let body = html! {
        h1 { (tr(lang, "Study definition versions", "研究定义版本")) }
        table.data #activations {
            thead { tr {
                th { (tr(lang, "Site", "中心")) }
                th { (tr(lang, "Activations (version from date)", "启用（版本 自 日期）")) }
            } }
            tbody {
                @for site in &sites {
                    tr data-site=(site) {
                        td { (site) }
                        td {
                            (defs.base().version) " "
                            @for a in defs.activations(site) {
                                " → " (a.version) " " (tr(lang, "from", "自")) " " (a.from.to_string())
                            }
                        }
                    }
                }
            }
        }
        @for pair in all.windows(2) {
            h2 { (pair[0].version) " → " (pair[1].version) }
            ul.diff data-version=(pair[1].version) {
                @for d in ecrf_core::study::versions::diff(&pair[0], &pair[1]) {
                    li { (d.to_string()) }
                }
            }
        }
    };
    Ok(respond(
        page(
            lang,
            tr(lang, "Study versions", "研究定义版本"),
            Some(&s),
            body,
        ),
        cookie,
    ))
}
