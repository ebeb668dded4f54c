//! The screening log on paper: the site's CONSORT counts, then every screened patient with
//! eligibility, its reasons, consent and randomization. Drawn from a [`ScreeningLog`] the app
//! hands over (already judged by `core::eligibility`); nothing is decided here.

use ecrf_core::Text;

use crate::layout::{BODY, Column, Doc, LEFT, RIGHT, SMALL};
use crate::words::screening_words;

/// Where a screened patient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreeningStatus {
    /// Randomized.
    Randomized,
    /// Eligible and consented, not randomized yet.
    Pending,
    /// Eligible, consent not obtained.
    NoConsent,
    /// Not eligible.
    NotEligible,
}

/// One screened patient as printed.
#[derive(Debug, Clone)]
pub struct ScreenedRow {
    /// Screening number.
    pub subject: String,
    /// Screening date-time as stored.
    pub screened_at: Option<String>,
    /// Age in years.
    pub age: Option<String>,
    /// Sex label.
    pub sex: Option<Text>,
    /// Eligible from the checklist.
    pub eligible: bool,
    /// (criterion label, what is wrong) for each reason.
    pub reasons: Vec<(Text, String)>,
    /// Where the patient stands.
    pub status: ScreeningStatus,
    /// Why consent is not counted.
    pub consent_note: Option<String>,
    /// The screen-failure reason recorded on SCR.
    pub screen_failure: Option<Text>,
    /// The arm's label, once randomized.
    pub arm: Option<Text>,
}

/// One site's CONSORT counts as printed.
#[derive(Debug, Clone)]
pub struct SiteCounts {
    /// Site code.
    pub site: String,
    /// Screened.
    pub screened: usize,
    /// Not eligible.
    pub not_eligible: usize,
    /// Not eligible, by criterion label.
    pub by_criterion: Vec<(Text, usize)>,
    /// Eligible.
    pub eligible: usize,
    /// Eligible, consent not obtained.
    pub consent_not_obtained: usize,
    /// Consented.
    pub consented: usize,
    /// Consented, not randomized yet.
    pub pending: usize,
    /// Randomized.
    pub randomized: usize,
    /// Randomized, by arm label.
    pub by_arm: Vec<(Text, usize)>,
}

/// The screening log to print.
#[derive(Debug, Clone)]
pub struct ScreeningLog {
    /// Every screened patient.
    pub patients: Vec<ScreenedRow>,
    /// CONSORT counts per site.
    pub sites: Vec<SiteCounts>,
}

pub(crate) fn draw(doc: &mut Doc<'_>, log: &ScreeningLog, lang: &str) {
    let w = screening_words(lang);
    doc.start_form(w.title);
    doc.title(w.title, w.intro);
    for s in &log.sites {
        let heading = format!("{} — {} {}", w.consort, doc.words.site, s.site);
        doc.section(&heading, 60.0);
        doc.table_start(vec![
            Column {
                title: String::new(),
                width: RIGHT - LEFT - 80.0,
            },
            Column {
                title: w.col_count.into(),
                width: 80.0,
            },
        ]);
        // Leading spaces do not survive wrapping: nesting is shown by dots.
        let line = |doc: &mut Doc<'_>, label: String, n: usize| {
            doc.table_row(&[label, n.to_string()], BODY);
        };
        line(doc, w.screened.into(), s.screened);
        line(doc, w.not_eligible_count.into(), s.not_eligible);
        for (label, n) in &s.by_criterion {
            line(doc, format!("· {}", label.get(lang)), *n);
        }
        line(doc, w.eligible.into(), s.eligible);
        line(
            doc,
            format!("· {}", w.consent_not_obtained),
            s.consent_not_obtained,
        );
        line(doc, format!("· {}", w.consented), s.consented);
        line(doc, format!("· · {}", w.waiting), s.pending);
        line(doc, format!("· · {}", w.randomized_count), s.randomized);
        for (label, n) in &s.by_arm {
            line(doc, format!("· · · {}", label.get(lang)), *n);
        }
        doc.table_end();
    }
    doc.section(w.patients, 60.0);
    if log.patients.is_empty() {
        doc.paragraph(LEFT, RIGHT - LEFT, BODY, w.none);
        return;
    }
    doc.table_start(vec![
        Column {
            title: w.col_subject.into(),
            width: 62.0,
        },
        Column {
            title: w.col_screened.into(),
            width: 78.0,
        },
        Column {
            title: w.col_age_sex.into(),
            width: 50.0,
        },
        Column {
            title: w.col_eligible.into(),
            width: 40.0,
        },
        Column {
            title: w.col_reasons.into(),
            width: RIGHT - LEFT - 62.0 - 78.0 - 50.0 - 40.0 - 110.0,
        },
        Column {
            title: w.col_status.into(),
            width: 110.0,
        },
    ]);
    for p in &log.patients {
        let age_sex = format!(
            "{} / {}",
            p.age.as_deref().unwrap_or("—"),
            p.sex.as_ref().map(|s| s.get(lang)).unwrap_or("—")
        );
        let mut reasons: Vec<String> = p
            .reasons
            .iter()
            .map(|(label, text)| format!("{}: {text}", label.get(lang)))
            .collect();
        if let Some(f) = &p.screen_failure {
            reasons.push(format!("{}: {}", w.screen_failure, f.get(lang)));
        }
        let status = match p.status {
            ScreeningStatus::Randomized => match &p.arm {
                Some(arm) => format!("{} — {}", w.randomized, arm.get(lang)),
                None => w.randomized.to_string(),
            },
            ScreeningStatus::Pending => w.pending.to_string(),
            ScreeningStatus::NoConsent => match &p.consent_note {
                Some(why) => format!("{} ({why})", w.no_consent),
                None => w.no_consent.to_string(),
            },
            ScreeningStatus::NotEligible => w.not_eligible.to_string(),
        };
        doc.table_row(
            &[
                p.subject.clone(),
                p.screened_at.clone().unwrap_or_else(|| "—".into()),
                age_sex,
                if p.eligible { w.yes } else { w.no }.to_string(),
                reasons.join("; "),
                status,
            ],
            SMALL,
        );
    }
    doc.table_end();
}
