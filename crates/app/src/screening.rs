//! The screening log and the CONSORT counts: every screened patient of the store with
//! eligibility and its reasons, consent and randomization, counted per site. The desktop's
//! Screening log page, its printout and `ecrf screening log|consort` all read [`screened`] and
//! [`consort_by_site`], so the laptop and the command line never disagree.
//!
//! Invariant: nothing is judged here. Eligibility, consent and where a patient stands come from
//! `core::eligibility` (`assess`, `outcome`, `Consort`); this module only reads the SCR, CON and
//! RND values of each subject and words the verdict for the screen and the paper.

use std::collections::BTreeMap;

use ecrf_core::eligibility::{self, EXCLUSIONS, Outcome, Values};
use ecrf_store::{Store, StoreError};

use super::*;

pub use ecrf_core::eligibility::{Screened, SiteConsort, consort_by_site};

/// Every subject of the store with its SCR, CON and RND values, in subject order.
pub fn screened(store: &Store) -> Result<Vec<Screened>, StoreError> {
    let mut out = Vec::new();
    for subject in store.subjects()? {
        let forms: BTreeMap<String, Values> = store
            .subject_values(&subject)?
            .into_iter()
            .map(|(form, items)| (form, items.into_iter().map(|s| (s.item, s.value)).collect()))
            .collect();
        out.push(Screened::of(&subject, &forms));
    }
    Ok(out)
}

/// The SCR item that states a criterion (`I2` → `INC2_CS`, `E5` → `EXC5_ECPR`), whose label
/// names the criterion on screen and paper.
pub fn criterion_item<'a>(
    study: &'a Study,
    criterion: &str,
) -> Option<&'a ecrf_core::study::ItemDef> {
    let scr = study.form("SCR")?;
    if let Some((_, item)) = EXCLUSIONS.iter().find(|(c, _)| *c == criterion) {
        return scr.item(item);
    }
    let n = criterion.strip_prefix('I')?;
    let prefix = format!("INC{n}_");
    scr.items.iter().find(|i| i.id.starts_with(&prefix))
}

/// The label of a code of `form.item` in the study, or the code itself.
fn code_label(study: &Study, form: &str, item: &str, code: &str) -> Txt {
    study
        .form(form)
        .and_then(|f| f.item(item))
        .and_then(|i| study.codes_for(i).into_iter().find(|c| c.code == code))
        .map(|c| txt(&c.label))
        .unwrap_or_else(|| Txt {
            en: code.to_string(),
            zh: code.to_string(),
        })
}

fn criterion_label(study: &Study, criterion: &str) -> Txt {
    criterion_item(study, criterion)
        .map(|i| txt(&i.label))
        .unwrap_or_else(|| Txt {
            en: criterion.to_string(),
            zh: criterion.to_string(),
        })
}

fn arm_label(study: &Study, arm: &str) -> Txt {
    study
        .codelists
        .get("arms")
        .and_then(|l| l.codes.iter().find(|c| c.code == arm))
        .map(|c| txt(&c.label))
        .unwrap_or_else(|| Txt {
            en: arm.to_string(),
            zh: arm.to_string(),
        })
}

/// The screening log as the page and the printout show it.
pub(crate) fn log_dto(study: &Study, rows: &[Screened]) -> ScreeningLog {
    let shown = |v: &Values, item: &str| {
        v.get(item).map(|x| match x {
            // Date, time and offset as a nurse reads them, not ISO's `T`.
            Value::DateTime(d) => d.format("%Y-%m-%d %H:%M %:z").to_string(),
            other => other.to_string(),
        })
    };
    let patients = rows
        .iter()
        .map(|r| {
            let verdict = eligibility::assess(&r.scr);
            let (status, consent_note) = match r.outcome() {
                Outcome::Randomized => (ScreeningStatus::Randomized, None),
                Outcome::Pending => (ScreeningStatus::Pending, None),
                Outcome::NoConsent(why) => (ScreeningStatus::NoConsent, Some(why)),
                Outcome::NotEligible(_) => (ScreeningStatus::NotEligible, None),
            };
            ScreenedPatient {
                subject: r.subject.clone(),
                screened_at: shown(&r.scr, "SCR_DT"),
                age: shown(&r.scr, "AGE"),
                sex: match r.scr.get("SEX") {
                    Some(Value::Code(c)) => Some(code_label(study, "SCR", "SEX", c)),
                    _ => None,
                },
                eligible: verdict.eligible,
                reasons: verdict
                    .reasons
                    .iter()
                    .map(|x| ReasonDto {
                        criterion: x.criterion.to_string(),
                        label: criterion_label(study, x.criterion),
                        text: x.text.clone(),
                    })
                    .collect(),
                status,
                consent_note,
                screen_failure: match r.scr.get("SF_REASON") {
                    Some(Value::Code(c)) => Some(code_label(study, "SCR", "SF_REASON", c)),
                    _ => None,
                },
                arm: r.arm.as_deref().map(|a| arm_label(study, a)),
            }
        })
        .collect();
    let sites = consort_by_site(rows)
        .into_iter()
        .map(|(site, c)| ConsortDto {
            site,
            screened: c.counts.screened as u32,
            not_eligible: c.counts.not_eligible as u32,
            by_criterion: c
                .counts
                .by_criterion
                .iter()
                .map(|(criterion, n)| CriterionCount {
                    criterion: criterion.to_string(),
                    label: criterion_label(study, criterion),
                    count: *n as u32,
                })
                .collect(),
            eligible: (c.counts.screened - c.counts.not_eligible) as u32,
            consent_not_obtained: c.counts.consent_not_obtained as u32,
            consented: (c.counts.pending + c.counts.randomized) as u32,
            pending: c.counts.pending as u32,
            randomized: c.counts.randomized as u32,
            by_arm: c
                .by_arm
                .iter()
                .map(|(arm, n)| ArmCount {
                    arm: arm.clone(),
                    label: arm_label(study, arm),
                    count: *n as u32,
                })
                .collect(),
        })
        .collect();
    ScreeningLog { patients, sites }
}

impl App {
    /// The screening log and the CONSORT counts of this store's subjects.
    pub fn screening_log(&self) -> AppResult<ScreeningLog> {
        let store = self.store()?;
        Ok(log_dto(&self.study, &screened(store)?))
    }

    /// Prints the screening log and the CONSORT counts (PDF in `printouts/`).
    pub fn print_screening_log(&mut self) -> AppResult<Printout> {
        let printed = self.screening_printout()?;
        let stamp = Local::now().format("%Y%m%d-%H%M%S");
        self.save_printout(&format!("screening-log-{stamp}.pdf"), &printed)
    }

    /// The screening log's PDF in the session's language.
    pub(crate) fn screening_printout(&mut self) -> AppResult<ecrf_pdf::Printed> {
        let session = self.session()?;
        let opts = self.print_options(&session);
        let log = self.screening_log()?;
        let paper = ecrf_pdf::ScreeningLog {
            patients: log.patients.iter().map(patient_paper).collect(),
            sites: log.sites.iter().map(site_paper).collect(),
        };
        let study = Arc::clone(&self.study);
        self.printer()?
            .screening_log(&study, &paper, &opts)
            .map_err(|e| err(ErrorCode::Invalid, e.to_string()))
    }
}

fn pick(t: &Txt) -> ecrf_core::Text {
    ecrf_core::Text {
        en: t.en.clone(),
        zh: t.zh.clone(),
    }
}

fn patient_paper(p: &ScreenedPatient) -> ecrf_pdf::ScreenedRow {
    ecrf_pdf::ScreenedRow {
        subject: p.subject.clone(),
        screened_at: p.screened_at.clone(),
        age: p.age.clone(),
        sex: p.sex.as_ref().map(pick),
        eligible: p.eligible,
        reasons: p
            .reasons
            .iter()
            .map(|r| (pick(&r.label), r.text.clone()))
            .collect(),
        status: match p.status {
            ScreeningStatus::Randomized => ecrf_pdf::ScreeningStatus::Randomized,
            ScreeningStatus::Pending => ecrf_pdf::ScreeningStatus::Pending,
            ScreeningStatus::NoConsent => ecrf_pdf::ScreeningStatus::NoConsent,
            ScreeningStatus::NotEligible => ecrf_pdf::ScreeningStatus::NotEligible,
        },
        consent_note: p.consent_note.clone(),
        screen_failure: p.screen_failure.as_ref().map(pick),
        arm: p.arm.as_ref().map(pick),
    }
}

fn site_paper(c: &ConsortDto) -> ecrf_pdf::SiteCounts {
    ecrf_pdf::SiteCounts {
        site: c.site.clone(),
        screened: c.screened as usize,
        not_eligible: c.not_eligible as usize,
        by_criterion: c
            .by_criterion
            .iter()
            .map(|x| (pick(&x.label), x.count as usize))
            .collect(),
        eligible: c.eligible as usize,
        consent_not_obtained: c.consent_not_obtained as usize,
        consented: c.consented as usize,
        pending: c.pending as usize,
        randomized: c.randomized as usize,
        by_arm: c
            .by_arm
            .iter()
            .map(|x| (pick(&x.label), x.count as usize))
            .collect(),
    }
}

#[cfg(test)]
#[path = "screening_tests.rs"]
mod tests;
