//! SVG drawn on the server: the cumulative enrolment plot and the CONSORT flow diagram. Every
//! text goes through [`esc`]; no style attributes (the page's policy forbids inline style), only
//! presentation attributes and the classes of the stylesheet.

use std::fmt::Write;

use chrono::NaiveDate;

use crate::dashboard::Dashboard;
use crate::words::{Lang, tr};

/// Escapes text for XML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The cumulative enrolment against the target, with the projection as a dashed line.
pub fn enrolment(d: &Dashboard, today: NaiveDate, lang: Lang) -> String {
    let (w, h, left, bottom, top, right) = (640.0, 300.0, 50.0, 30.0, 20.0, 20.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" \
         height=\"{h}\" role=\"img\" aria-label=\"{}\" class=\"plot\">",
        esc(tr(lang, "Cumulative enrolment", "累计入组"))
    );
    let first = d.enrolment.first().map(|(t, _)| *t).unwrap_or(today);
    let last = d.projected.unwrap_or(today).max(today);
    let span = ((last - first).num_days().max(1)) as f64;
    let ymax = d
        .target
        .max(d.enrolment.last().map(|(_, n)| *n).unwrap_or(0))
        .max(1) as f64;
    let x = |t: NaiveDate| left + (t - first).num_days() as f64 / span * (w - left - right);
    let y = |n: f64| h - bottom - n / ymax * (h - bottom - top);
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#555\"/>\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{b}\" stroke=\"#555\"/>",
        b = h - bottom,
        r = w - right
    );
    let ty = y(d.target as f64);
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{ty:.1}\" x2=\"{r}\" y2=\"{ty:.1}\" stroke=\"#b00\" \
         stroke-dasharray=\"4 3\"/><text x=\"{tx}\" y=\"{ly:.1}\" font-size=\"11\">{}</text>",
        esc(&format!("{} {}", tr(lang, "target", "目标"), d.target)),
        r = w - right,
        tx = left + 4.0,
        ly = ty - 4.0
    );
    let mut points = format!("{left:.1},{:.1}", y(0.0));
    for (t, n) in &d.enrolment {
        let _ = write!(points, " {:.1},{:.1}", x(*t), y(*n as f64));
    }
    let now_n = d.enrolment.last().map(|(_, n)| *n).unwrap_or(0);
    let _ = write!(points, " {:.1},{:.1}", x(today), y(now_n as f64));
    let _ = write!(
        s,
        "<polyline points=\"{points}\" fill=\"none\" stroke=\"#06c\" stroke-width=\"2\"/>"
    );
    if let Some(p) = d.projected.filter(|p| *p > today) {
        let _ = write!(
            s,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{ty:.1}\" stroke=\"#06c\" \
             stroke-dasharray=\"2 3\"/>",
            x(today),
            y(now_n as f64),
            x(p)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{left}\" y=\"{h}\" font-size=\"11\">{}</text>\
         <text x=\"{rx}\" y=\"{h}\" font-size=\"11\" text-anchor=\"end\">{}</text>\
         <text x=\"4\" y=\"{ty:.1}\" font-size=\"11\">{}</text></svg>",
        first,
        last,
        d.target,
        rx = w - right
    );
    s
}

/// The CONSORT flow diagram of the dashboard's sites.
pub fn consort(d: &Dashboard, arms: &[(String, String)], lang: Lang) -> String {
    let c = &d.consort.counts;
    let mut s = String::from(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 700 520\" width=\"700\" \
         height=\"520\" role=\"img\" class=\"consort\">",
    );
    let boxed = |s: &mut String, x: f64, y: f64, w: f64, lines: &[String], id: &str| {
        let h = 8.0 + 16.0 * lines.len() as f64;
        let _ = write!(
            s,
            "<g id=\"{id}\"><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"#fff\" \
             stroke=\"#333\"/>"
        );
        for (i, l) in lines.iter().enumerate() {
            let _ = write!(
                s,
                "<text x=\"{tx}\" y=\"{ty}\" font-size=\"12\">{}</text>",
                esc(l),
                tx = x + 6.0,
                ty = y + 18.0 + 16.0 * i as f64
            );
        }
        s.push_str("</g>");
    };
    let arrow = |s: &mut String, x1: f64, y1: f64, x2: f64, y2: f64| {
        let _ = write!(
            s,
            "<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" stroke=\"#333\"/>"
        );
    };
    boxed(
        &mut s,
        220.0,
        10.0,
        260.0,
        &[format!(
            "{} (n = {})",
            tr(lang, "Screened", "筛选"),
            c.screened
        )],
        "screened",
    );
    let mut excluded = vec![format!(
        "{} (n = {})",
        tr(lang, "Not eligible", "不符合条件"),
        c.not_eligible
    )];
    for (criterion, n) in &c.by_criterion {
        excluded.push(format!("  {criterion}: {n}"));
    }
    excluded.push(format!(
        "{} (n = {})",
        tr(lang, "Consent not obtained", "未获知情同意"),
        c.consent_not_obtained
    ));
    excluded.push(format!(
        "{} (n = {})",
        tr(lang, "Eligible, not yet randomized", "符合条件，尚未随机"),
        c.pending
    ));
    arrow(&mut s, 350.0, 34.0, 350.0, 250.0);
    arrow(&mut s, 350.0, 60.0, 420.0, 60.0);
    boxed(&mut s, 420.0, 50.0, 270.0, &excluded, "excluded");
    boxed(
        &mut s,
        220.0,
        250.0,
        260.0,
        &[format!(
            "{} (n = {})",
            tr(lang, "Randomized", "随机"),
            c.randomized
        )],
        "randomized",
    );
    for (i, (code, label)) in arms.iter().enumerate() {
        let x = 30.0 + 350.0 * i as f64;
        arrow(&mut s, 350.0, 274.0, x + 140.0, 310.0);
        let n = |m: &std::collections::BTreeMap<String, usize>| m.get(code).copied().unwrap_or(0);
        boxed(
            &mut s,
            x,
            310.0,
            300.0,
            &[
                format!("{label} (n = {})", n(&d.consort.by_arm)),
                format!("{}: {}", tr(lang, "Lost to follow-up", "失访"), n(&d.lost)),
                format!(
                    "{}: {}",
                    tr(lang, "Analysed (primary endpoint)", "纳入分析（主要终点）"),
                    n(&d.analysed)
                ),
            ],
            &format!("arm-{}", esc(code)),
        );
    }
    s.push_str("</svg>");
    s
}

/// Kaplan–Meier curves to day 30, one per arm (step lines).
pub fn kaplan_meier(
    report: &crate::dmc::ClosedReport,
    labels: &[(String, String)],
    lang: Lang,
) -> String {
    let (w, h, left, bottom, top, right) = (640.0, 320.0, 50.0, 40.0, 20.0, 160.0);
    let x = |d: i64| left + d as f64 / 30.0 * (w - left - right);
    let y = |s: f64| top + (1.0 - s) * (h - top - bottom);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" \
         height=\"{h}\" role=\"img\" aria-label=\"{}\" class=\"plot\">",
        esc(tr(
            lang,
            "Kaplan–Meier survival to day 30 by arm",
            "各组至第30天Kaplan–Meier生存曲线"
        ))
    );
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#555\"/>\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{b}\" stroke=\"#555\"/>",
        b = h - bottom,
        r = x(30)
    );
    for d in [0, 10, 20, 30] {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{d}</text>",
            x(d),
            h - bottom + 14.0
        );
    }
    for s in [0.0, 0.5, 1.0] {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{s:.1}</text>",
            left - 4.0,
            y(s) + 4.0
        );
    }
    let _ = write!(
        out,
        "<text x=\"{:.1}\" y=\"{h}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
        x(15),
        esc(tr(lang, "days since randomization", "随机化后天数"))
    );
    let colours = ["#06c", "#c60", "#393", "#939"];
    for (i, arm) in report.arms.iter().enumerate() {
        let colour = colours[i % colours.len()];
        let mut points = String::new();
        let mut last = 1.0;
        for (d, s) in &arm.km {
            let _ = write!(
                points,
                "{:.1},{:.1} {:.1},{:.1} ",
                x(*d),
                y(last),
                x(*d),
                y(*s)
            );
            last = *s;
        }
        let _ = write!(points, "{:.1},{:.1}", x(30), y(last));
        let label = labels
            .iter()
            .find(|(c, _)| *c == arm.arm)
            .map(|(_, l)| l.as_str())
            .unwrap_or(arm.arm.as_str());
        let _ = write!(
            out,
            "<polyline points=\"{points}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{colour}\">{} (n = {})</text>",
            x(30) + 6.0,
            y(last) + 4.0 + 14.0 * i as f64,
            esc(&label.chars().take(22).collect::<String>()),
            arm.known
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
