//! Eligibility and consent, derived from the SCR and CON values: the 4 inclusion and
//! 10 exclusion criteria of the registry entry (NCT06872021), each with its evidence, and the
//! consent record: how consent was obtained (prospective / deferred), who signed, the outcome
//! of deferred consent, the patient's own consent after a representative's, and what a
//! withdrawal or refusal still allows ([`withdrawal`], [`withheld`]: exports follow it).
//!
//! Owns the decision "may this patient be randomized?" apart from the allocation itself.
//! A criterion counts as met only when it is answered **and** its evidence is on the form; an
//! exclusion counts as absent only when it is answered "no". Anything unanswered is a reason,
//! so a half-filled checklist can never randomize a patient.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::value::{Decimal, Value};

/// Values of one form instance, by item id.
pub type Values = BTreeMap<String, Value>;

/// One reason a patient is not eligible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The criterion: `I1`..`I4`, `E1`..`E10`.
    pub criterion: &'static str,
    /// What is wrong, in English (the label of the criterion is in the study definition).
    pub text: String,
}

/// The screening verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eligibility {
    /// All inclusion criteria met with evidence and no exclusion criterion present or open.
    pub eligible: bool,
    /// Why not, criterion by criterion (empty when eligible).
    pub reasons: Vec<Reason>,
}

impl Eligibility {
    /// The reasons on one line (`I2: lactate not above 3 mmol/L; E5: present`).
    pub fn summary(&self) -> String {
        self.reasons
            .iter()
            .map(|r| format!("{}: {}", r.criterion, r.text))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn code<'a>(v: &'a Values, item: &str) -> Option<&'a str> {
    match v.get(item) {
        Some(Value::Code(c)) => Some(c),
        _ => None,
    }
}

fn yes(v: &Values, item: &str) -> bool {
    code(v, item) == Some("Y")
}

fn has_codes(v: &Values, item: &str) -> bool {
    matches!(v.get(item), Some(Value::Codes(c)) if !c.is_empty())
}

fn has_datetime(v: &Values, item: &str) -> bool {
    matches!(v.get(item), Some(Value::DateTime(_)))
}

fn int(v: &Values, item: &str) -> Option<i64> {
    match v.get(item) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

/// The ten exclusion criteria: (criterion, item).
pub const EXCLUSIONS: [(&str, &str); 10] = [
    ("E1", "EXC1_AI_DISSECTION"),
    ("E2", "EXC2_PVD"),
    ("E3", "EXC3_POSTCARDIOTOMY"),
    ("E4", "EXC4_NONCARDIAC"),
    ("E5", "EXC5_ECPR"),
    ("E6", "EXC6_PRIOR_MCS"),
    ("E7", "EXC7_BLEEDING"),
    ("E8", "EXC8_MALIGNANCY"),
    ("E9", "EXC9_NEURO"),
    ("E10", "EXC10_PREGNANCY"),
];

/// Judges the SCR values. Inclusion 4 (consent) is judged here from the checklist; the consent
/// record itself is judged by [`consent`].
pub fn assess(scr: &Values) -> Eligibility {
    let mut reasons = Vec::new();
    let mut why = |criterion: &'static str, text: &str| {
        reasons.push(Reason {
            criterion,
            text: text.to_string(),
        })
    };
    // I1: age ≥ 18, answered and consistent with the recorded age.
    match int(scr, "AGE") {
        None => why("I1", "age not recorded"),
        Some(a) if a < 18 => why("I1", "under 18 years"),
        Some(_) if !yes(scr, "INC1_AGE") => why("I1", "not answered yes"),
        Some(_) => {}
    }
    // I2: cardiogenic shock with its evidence.
    if !yes(scr, "INC2_CS") {
        why("I2", "cardiogenic shock not answered yes");
    }
    let sbp = yes(scr, "SBP_LT90") && int(scr, "SBP_DURATION").is_some_and(|m| m > 30);
    let cat = yes(scr, "CATECHOL") && has_codes(scr, "CATECHOL_DRUGS");
    if !sbp && !cat {
        why(
            "I2",
            "no evidence of SBP < 90 mmHg for > 30 min nor of catecholamines to keep SBP > 90",
        );
    }
    let lactate_high = matches!(scr.get("LACTATE"), Some(Value::Dec(d)) if *d > Decimal::from_int(3))
        || matches!(scr.get("LACTATE"), Some(Value::Int(i)) if *i > 3);
    if !yes(scr, "LACT_GT3") || !lactate_high {
        why("I2", "arterial lactate > 3 mmol/L not shown");
    }
    if !has_datetime(scr, "LACTATE_DT") {
        why("I2", "lactate sampling time not recorded");
    }
    if !yes(scr, "HYPOPERF") || !has_codes(scr, "HYPOPERF_SIGNS") {
        why("I2", "no recorded sign of impaired organ perfusion");
    }
    // I3: peripheral VA-ECMO with its start time.
    if !yes(scr, "INC3_ECMO") {
        why("I3", "VA-ECMO implantation not answered yes");
    } else if !has_datetime(scr, "ECMO_START_DT") {
        why("I3", "ECMO start time not recorded");
    }
    // I4: consent (the CON form is checked separately).
    if !yes(scr, "INC4_CONSENT") {
        why("I4", "informed consent not answered yes");
    }
    let female = code(scr, "SEX") == Some("F");
    for (criterion, item) in EXCLUSIONS {
        if item == "EXC10_PREGNANCY" && !female {
            if code(scr, "SEX").is_none() {
                why(criterion, "sex not recorded");
            }
            continue;
        }
        match code(scr, item) {
            Some("N") => {}
            Some("Y") => why(criterion, "present"),
            _ => why(criterion, "not answered"),
        }
    }
    Eligibility {
        eligible: reasons.is_empty(),
        reasons,
    }
}

/// True when consent is (or was) deferred: `CONSENT_PROCESS = DEFERRED`, or a definition 1.0.0
/// record that said `CONSENT_BY = DEFERRED` and has no `CONSENT_PROCESS`.
pub fn is_deferred(con: &Values) -> bool {
    match code(con, "CONSENT_PROCESS") {
        Some(p) => p == "DEFERRED",
        None => code(con, "CONSENT_BY") == Some("DEFERRED"),
    }
}

/// Judges the consent record (CON) for randomization: how consent was obtained; prospective
/// consent needs who signed (patient or representative), when, on which form version and
/// obtained by whom; deferred consent (where the ethics approval allows it) randomizes before
/// anyone signs, unless it was already refused or the patient died; never after a withdrawal.
/// `Err` holds what is missing, in English.
pub fn consent(con: &Values) -> Result<(), String> {
    if con.get("CONSENT_BY").is_none() && con.get("CONSENT_PROCESS").is_none() {
        return Err("no consent recorded (CON form: how consent was obtained, who signed)".into());
    }
    if yes(con, "WITHDRAWN") {
        return Err("consent was withdrawn".into());
    }
    if is_deferred(con) {
        return match code(con, "DEFERRED_OUTCOME") {
            Some("REFUSED") => Err("deferred consent was refused".into()),
            Some("DIED") => Err("the patient died before consent".into()),
            _ => Ok(()),
        };
    }
    match code(con, "CONSENT_BY") {
        Some("PATIENT" | "LAR") => {}
        Some(_) => {
            return Err(
                "prospective consent but not signed: CONSENT_BY must be the patient or the representative"
                    .into(),
            );
        }
        None => return Err("consent record incomplete: CONSENT_BY (who signed)".into()),
    }
    let missing: Vec<&str> = ["CONSENT_DT", "ICF_VERSION", "OBTAINED_BY"]
        .into_iter()
        .filter(|i| con.get(*i).is_none_or(Value::is_missing))
        .collect();
    if !missing.is_empty() {
        return Err(format!("consent record incomplete: {}", missing.join(", ")));
    }
    Ok(())
}

/// What is inconsistent or still open in the consent record of a randomized patient: (item,
/// English, Chinese), for the protocol flags (`CONSENT_RECORD`). Nothing here refuses a save:
/// the nurse records what happened, in any order.
pub fn consent_problems(con: &Values) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let signer = code(con, "CONSENT_BY");
    let mut need = |item: &'static str, en: &str, zh: &str| {
        out.push((item, en.to_string(), zh.to_string()));
    };
    match code(con, "DEFERRED_OUTCOME").filter(|_| is_deferred(con)) {
        Some(outcome @ ("CONFIRMED_PATIENT" | "CONFIRMED_LAR")) => {
            let who = if outcome == "CONFIRMED_PATIENT" {
                "PATIENT"
            } else {
                "LAR"
            };
            if signer != Some(who) {
                need(
                    "CONSENT_BY",
                    &format!(
                        "Deferred consent confirmed ({outcome}) but 'Signed by' is not {who}: record who signed"
                    ),
                    &format!(
                        "延迟知情同意已同意（{outcome}），但签署人不是 {who}：请填写实际签署人"
                    ),
                );
            }
            if con.get("CONSENT_DT").is_none_or(Value::is_missing) {
                need(
                    "CONSENT_DT",
                    "Deferred consent confirmed: record the date-time of the signature",
                    "延迟知情同意已同意：请填写签署日期时间",
                );
            }
        }
        Some("REFUSED") if !yes(con, "WITHDRAWN") => need(
            "WITHDRAWN",
            "Deferred consent refused: record the withdrawal and what may still be used (scope)",
            "延迟知情同意被拒绝：请填写撤回及仍可使用的数据范围",
        ),
        _ => {}
    }
    if code(con, "RECONSENT") == Some("REFUSED") && !yes(con, "WITHDRAWN") {
        need(
            "WITHDRAWN",
            "The patient refused after the representative's consent: record the withdrawal and its scope",
            "代理人签署后患者本人拒绝：请填写撤回及其范围",
        );
    }
    out
}

/// What a withdrawal of consent (or a refusal) still allows (code list `withdrawal_scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawalScope {
    /// `NO_TREATMENT_DATA`: no further study data, but vital status at day 30 may be sought;
    /// data so far may be used.
    VitalStatusOnly,
    /// `NO_FOLLOW_UP`: no further data or follow-up; data so far may be used.
    NoFurtherData,
    /// `ALL_DATA`: no further data, and data so far may not be used.
    AllData,
}

/// A withdrawal of consent: from when, and what it still allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Withdrawal {
    /// The date it takes effect (`WD_DATE`; for a refusal not yet recorded as a withdrawal,
    /// the date of the refusal). `None` when not recorded.
    pub date: Option<NaiveDate>,
    /// What it allows.
    pub scope: WithdrawalScope,
}

/// The withdrawal of a consent record, if any: `WITHDRAWN = Y` with its date and scope; a
/// refusal (of deferred consent, or the patient's after a representative's) not yet recorded
/// as a withdrawal counts as "no further data" from its date until the scope is recorded (the
/// `CONSENT_RECORD` flag asks for it). A withdrawal without a scope is read the same way.
pub fn withdrawal(con: &Values) -> Option<Withdrawal> {
    let date = |item: &str| match con.get(item) {
        Some(Value::Date(d)) => Some(*d),
        Some(Value::DateTime(t)) => Some(t.date_naive()),
        _ => None,
    };
    if yes(con, "WITHDRAWN") {
        let scope = match code(con, "WD_SCOPE") {
            Some("NO_TREATMENT_DATA") => WithdrawalScope::VitalStatusOnly,
            Some("ALL_DATA") => WithdrawalScope::AllData,
            _ => WithdrawalScope::NoFurtherData,
        };
        return Some(Withdrawal {
            date: date("WD_DATE"),
            scope,
        });
    }
    let refused = if is_deferred(con) && code(con, "DEFERRED_OUTCOME") == Some("REFUSED") {
        Some(date("DEFERRED_OUTCOME_DATE"))
    } else if code(con, "RECONSENT") == Some("REFUSED") {
        Some(date("RECONSENT_DATE"))
    } else {
        None
    };
    refused.map(|date| Withdrawal {
        date,
        scope: WithdrawalScope::NoFurtherData,
    })
}

/// The item that dates a form instance, for forms filled in after randomization: an instance
/// dated after a withdrawal was collected after it. Forms not listed (screening, consent,
/// randomization, baseline, ECMO and IABP implantation) describe the time before or at
/// randomization.
pub const INSTANCE_DATES: &[(&str, &str)] = &[
    ("DLY", "DATE"),
    ("EVT", "EVT_DT"),
    ("AE", "ONSET_DT"),
    ("DEV", "DEV_DATE"),
    ("DIS", "DIS_DATE"),
    ("D30", "CONTACT_DATE"),
    ("EOS", "EOS_DATE"),
];

/// Whether a withdrawal keeps a form instance (`form`, with its `values`) out of the data used
/// for analysis (exports): with [`WithdrawalScope::AllData`] everything but the consent and
/// randomization records (which document the withdrawal and account for the allocation);
/// otherwise instances dated (see [`INSTANCE_DATES`]) after the withdrawal date, except the
/// day-30 follow-up and the end of study when vital status may still be sought. An instance
/// without its date, or a withdrawal without a date, withholds nothing but under `AllData`.
pub fn withheld(w: &Withdrawal, form: &str, values: &Values) -> bool {
    if w.scope == WithdrawalScope::AllData {
        return !matches!(form, "CON" | "RND");
    }
    if w.scope == WithdrawalScope::VitalStatusOnly && matches!(form, "D30" | "EOS") {
        return false;
    }
    let Some(item) = INSTANCE_DATES
        .iter()
        .find(|(f, _)| *f == form)
        .map(|(_, i)| *i)
    else {
        return false;
    };
    let dated = match values.get(item) {
        Some(Value::Date(d)) => Some(*d),
        Some(Value::DateTime(t)) => Some(t.date_naive()),
        _ => None,
    };
    matches!((dated, w.date), (Some(d), Some(wd)) if d > wd)
}

/// Where a screened patient stands, for the screening log and the CONSORT diagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Randomized (whatever was edited later: randomization is irreversible).
    Randomized,
    /// Not eligible, with the reasons.
    NotEligible(Vec<Reason>),
    /// Eligible, but consent not obtained (or withdrawn before randomization).
    NoConsent(String),
    /// Eligible and consented, not randomized yet.
    Pending,
}

/// Judges one screened patient from SCR, CON and whether RND exists.
pub fn outcome(scr: &Values, con: &Values, randomized: bool) -> Outcome {
    if randomized {
        return Outcome::Randomized;
    }
    let e = assess(scr);
    if !e.eligible {
        return Outcome::NotEligible(e.reasons);
    }
    match consent(con) {
        Err(why) => Outcome::NoConsent(why),
        Ok(()) => Outcome::Pending,
    }
}

/// One screened patient as screening reads it: SCR, CON and whether RND holds a subject number.
/// The laptop's screening log, `ecrf screening consort` and the server's dashboard all count
/// these with [`consort_by_site`], so they never disagree.
#[derive(Debug, Clone, Default)]
pub struct Screened {
    /// Screening number (the subject id, `01-0007`).
    pub subject: String,
    /// The screening checklist (SCR).
    pub scr: Values,
    /// The consent record (CON).
    pub con: Values,
    /// The arm, once randomized (RND.ARM).
    pub arm: Option<String>,
    /// RND holds a subject number.
    pub randomized: bool,
}

impl Screened {
    /// Reads a subject's SCR, CON and RND values (form instance → items).
    pub fn of(subject: &str, forms: &BTreeMap<String, Values>) -> Screened {
        let take = |f: &str| forms.get(f).cloned().unwrap_or_default();
        let rnd = forms.get("RND");
        Screened {
            subject: subject.to_string(),
            scr: take("SCR"),
            con: take("CON"),
            arm: match rnd.and_then(|r| r.get("ARM")) {
                Some(Value::Code(c)) => Some(c.clone()),
                _ => None,
            },
            randomized: rnd.is_some_and(|r| r.contains_key("SUBJ_NO")),
        }
    }

    /// Where the patient stands ([`outcome`]).
    pub fn outcome(&self) -> Outcome {
        outcome(&self.scr, &self.con, self.randomized)
    }

    /// The site: the screening number's first part (`01` of `01-0007`).
    pub fn site(&self) -> &str {
        self.subject.split('-').next().unwrap_or(&self.subject)
    }
}

/// CONSORT counts of one site, with the randomized patients counted per arm.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteConsort {
    /// The counts.
    pub counts: Consort,
    /// Randomized, by arm code (a randomized patient whose arm is unreadable counts under "").
    pub by_arm: BTreeMap<String, usize>,
}

impl SiteConsort {
    /// Counts one patient.
    pub fn add(&mut self, r: &Screened) {
        let outcome = r.outcome();
        if outcome == Outcome::Randomized {
            *self
                .by_arm
                .entry(r.arm.clone().unwrap_or_default())
                .or_default() += 1;
        }
        self.counts.add(&outcome);
    }

    /// Adds another site's counts (the trial's total).
    pub fn merge(&mut self, other: &SiteConsort) {
        let (a, b) = (&mut self.counts, &other.counts);
        a.screened += b.screened;
        a.not_eligible += b.not_eligible;
        a.consent_not_obtained += b.consent_not_obtained;
        a.pending += b.pending;
        a.randomized += b.randomized;
        for (c, n) in &b.by_criterion {
            *a.by_criterion.entry(c).or_default() += n;
        }
        for (arm, n) in &other.by_arm {
            *self.by_arm.entry(arm.clone()).or_default() += n;
        }
    }
}

/// The CONSORT counts per site.
pub fn consort_by_site<'a>(
    rows: impl IntoIterator<Item = &'a Screened>,
) -> BTreeMap<String, SiteConsort> {
    let mut by_site: BTreeMap<String, SiteConsort> = BTreeMap::new();
    for r in rows {
        by_site.entry(r.site().to_string()).or_default().add(r);
    }
    by_site
}

/// CONSORT counts of one site.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consort {
    /// Patients screened.
    pub screened: usize,
    /// Not eligible.
    pub not_eligible: usize,
    /// Not eligible, by criterion (a patient may count under several).
    pub by_criterion: BTreeMap<&'static str, usize>,
    /// Eligible, consent not obtained.
    pub consent_not_obtained: usize,
    /// Eligible and consented, not yet randomized.
    pub pending: usize,
    /// Randomized.
    pub randomized: usize,
}

impl Consort {
    /// Counts one patient.
    pub fn add(&mut self, o: &Outcome) {
        self.screened += 1;
        match o {
            Outcome::Randomized => self.randomized += 1,
            Outcome::NoConsent(_) => self.consent_not_obtained += 1,
            Outcome::Pending => self.pending += 1,
            Outcome::NotEligible(reasons) => {
                self.not_eligible += 1;
                let mut seen: Vec<&'static str> = reasons.iter().map(|r| r.criterion).collect();
                seen.dedup();
                for c in seen {
                    *self.by_criterion.entry(c).or_default() += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn dt() -> Value {
        Value::DateTime(DateTime::parse_from_rfc3339("2026-03-01T10:00:00+08:00").unwrap())
    }

    /// A complete, eligible checklist (male patient, shock shown by SBP and catecholamines).
    pub(crate) fn eligible_scr() -> Values {
        let c = |s: &str| Value::Code(s.into());
        let mut v = Values::new();
        v.insert("SCRNO".into(), Value::Text("01-001".into()));
        v.insert("SCR_DT".into(), dt());
        v.insert("AGE".into(), Value::Int(64));
        v.insert("SEX".into(), c("M"));
        v.insert("INC1_AGE".into(), c("Y"));
        v.insert("INC2_CS".into(), c("Y"));
        v.insert("SBP_LT90".into(), c("Y"));
        v.insert("SBP_LOW".into(), Value::Int(72));
        v.insert("SBP_DURATION".into(), Value::Int(45));
        v.insert("CATECHOL".into(), c("Y"));
        v.insert(
            "CATECHOL_DRUGS".into(),
            Value::Codes(vec!["NOREPINEPHRINE".into()]),
        );
        v.insert("LACT_GT3".into(), c("Y"));
        v.insert("LACTATE".into(), Value::Dec("5.2".parse().unwrap()));
        v.insert("LACTATE_DT".into(), dt());
        v.insert("HYPOPERF".into(), c("Y"));
        v.insert("HYPOPERF_SIGNS".into(), Value::Codes(vec!["COLD".into()]));
        v.insert("INC3_ECMO".into(), c("Y"));
        v.insert("ECMO_START_DT".into(), dt());
        v.insert("INC4_CONSENT".into(), c("Y"));
        for (_, item) in EXCLUSIONS {
            if item != "EXC10_PREGNANCY" {
                v.insert(item.into(), c("N"));
            }
        }
        v
    }

    fn refused_for(v: &Values, criterion: &str) {
        let e = assess(v);
        assert!(!e.eligible, "{criterion} should refuse");
        assert!(
            e.reasons.iter().any(|r| r.criterion == criterion),
            "{criterion}: {e:?}"
        );
    }

    #[test]
    fn complete_checklist_is_eligible() {
        let e = assess(&eligible_scr());
        assert!(e.eligible, "{}", e.summary());
    }

    #[test]
    fn inclusion_1_age() {
        let mut v = eligible_scr();
        v.insert("AGE".into(), Value::Int(17));
        refused_for(&v, "I1");
        let mut v = eligible_scr();
        v.insert("INC1_AGE".into(), Value::Code("N".into()));
        refused_for(&v, "I1");
        let mut v = eligible_scr();
        v.remove("AGE");
        refused_for(&v, "I1");
    }

    #[test]
    fn inclusion_2_shock_needs_each_piece_of_evidence() {
        let mut v = eligible_scr();
        v.insert("INC2_CS".into(), Value::Code("N".into()));
        refused_for(&v, "I2");
        // Neither hypotension > 30 min nor catecholamines.
        let mut v = eligible_scr();
        v.insert("SBP_DURATION".into(), Value::Int(30));
        v.insert("CATECHOL".into(), Value::Code("N".into()));
        refused_for(&v, "I2");
        // Catecholamines alone are enough.
        let mut v = eligible_scr();
        v.insert("SBP_LT90".into(), Value::Code("N".into()));
        assert!(assess(&v).eligible);
        // Lactate of exactly 3 is not above 3; a missing lactate time is missing evidence.
        let mut v = eligible_scr();
        v.insert("LACTATE".into(), Value::Dec("3.0".parse().unwrap()));
        refused_for(&v, "I2");
        let mut v = eligible_scr();
        v.remove("LACTATE_DT");
        refused_for(&v, "I2");
        let mut v = eligible_scr();
        v.insert("HYPOPERF_SIGNS".into(), Value::Codes(vec![]));
        refused_for(&v, "I2");
    }

    #[test]
    fn inclusion_3_ecmo_with_start_time() {
        let mut v = eligible_scr();
        v.insert("INC3_ECMO".into(), Value::Code("N".into()));
        refused_for(&v, "I3");
        let mut v = eligible_scr();
        v.remove("ECMO_START_DT");
        refused_for(&v, "I3");
    }

    #[test]
    fn inclusion_4_consent() {
        let mut v = eligible_scr();
        v.remove("INC4_CONSENT");
        refused_for(&v, "I4");
    }

    #[test]
    fn each_exclusion_present_or_unanswered_refuses() {
        for (criterion, item) in EXCLUSIONS {
            let mut v = eligible_scr();
            if item == "EXC10_PREGNANCY" {
                v.insert("SEX".into(), Value::Code("F".into()));
            }
            v.insert(item.into(), Value::Code("Y".into()));
            refused_for(&v, criterion);
            v.remove(item);
            refused_for(&v, criterion);
            v.insert(item.into(), Value::Code("N".into()));
            assert!(
                assess(&v).eligible,
                "{criterion} answered no: {}",
                assess(&v).summary()
            );
        }
    }

    #[test]
    fn consort_counts_each_patient_once_and_reasons_per_criterion() {
        let mut con = Values::new();
        con.insert("CONSENT_BY".into(), Value::Code("PATIENT".into()));
        con.insert("CONSENT_DT".into(), dt());
        con.insert("ICF_VERSION".into(), Value::Text("V1.0".into()));
        con.insert("OBTAINED_BY".into(), Value::Text("Dr Li".into()));
        let mut excluded = eligible_scr();
        excluded.insert("EXC5_ECPR".into(), Value::Code("Y".into()));
        excluded.insert("LACTATE".into(), Value::Dec("2.0".parse().unwrap()));
        excluded.remove("LACTATE_DT");
        let mut c = Consort::default();
        c.add(&outcome(&eligible_scr(), &con, true));
        c.add(&outcome(&eligible_scr(), &con, false));
        c.add(&outcome(&eligible_scr(), &Values::new(), false));
        c.add(&outcome(&excluded, &con, false));
        assert_eq!(
            (
                c.screened,
                c.randomized,
                c.pending,
                c.consent_not_obtained,
                c.not_eligible
            ),
            (4, 1, 1, 1, 1)
        );
        // Two I2 reasons count the patient once under I2.
        assert_eq!(c.by_criterion.get("I2"), Some(&1));
        assert_eq!(c.by_criterion.get("E5"), Some(&1));
    }

    #[test]
    fn consent_record_is_checked() {
        let mut con = Values::new();
        assert!(consent(&con).is_err());
        con.insert("CONSENT_BY".into(), Value::Code("LAR".into()));
        con.insert("CONSENT_DT".into(), dt());
        con.insert("ICF_VERSION".into(), Value::Text("V1.0".into()));
        assert!(consent(&con).unwrap_err().contains("OBTAINED_BY"));
        con.insert("OBTAINED_BY".into(), Value::Text("Dr Li".into()));
        assert_eq!(consent(&con), Ok(()));
        con.insert("WITHDRAWN".into(), Value::Code("Y".into()));
        assert!(consent(&con).unwrap_err().contains("withdrawn"));
        // Deferred consent randomizes before the signature is recorded, unless withdrawn.
        let mut deferred = Values::new();
        deferred.insert("CONSENT_BY".into(), Value::Code("DEFERRED".into()));
        assert_eq!(consent(&deferred), Ok(()));
        deferred.insert("WITHDRAWN".into(), Value::Code("Y".into()));
        assert!(consent(&deferred).is_err());
    }

    fn c(s: &str) -> Value {
        Value::Code(s.into())
    }

    fn day(s: &str) -> Value {
        Value::Date(crate::value::parse_date(s).unwrap())
    }

    /// Issue 20, point 6: how consent was obtained is apart from who signed; deferred consent
    /// randomizes unsigned unless refused or the patient died; prospective consent needs a
    /// signer; the 1.0.0 record (`CONSENT_BY = DEFERRED`, no process) still reads as deferred.
    #[test]
    fn consent_process_and_signer_are_judged_apart() {
        let mut pro = Values::new();
        pro.insert("CONSENT_PROCESS".into(), c("PROSPECTIVE"));
        assert!(consent(&pro).unwrap_err().contains("CONSENT_BY"));
        pro.insert("CONSENT_BY".into(), c("DEFERRED"));
        assert!(consent(&pro).unwrap_err().contains("not signed"));
        pro.insert("CONSENT_BY".into(), c("PATIENT"));
        pro.insert("CONSENT_DT".into(), dt());
        pro.insert("ICF_VERSION".into(), Value::Text("V1.1".into()));
        pro.insert("OBTAINED_BY".into(), Value::Text("Dr Li".into()));
        assert_eq!(consent(&pro), Ok(()));

        let mut deferred = Values::new();
        deferred.insert("CONSENT_PROCESS".into(), c("DEFERRED"));
        deferred.insert("CONSENT_BY".into(), c("DEFERRED"));
        assert!(is_deferred(&deferred));
        assert_eq!(consent(&deferred), Ok(()));
        deferred.insert("DEFERRED_OUTCOME".into(), c("REFUSED"));
        assert!(consent(&deferred).unwrap_err().contains("refused"));
        deferred.insert("DEFERRED_OUTCOME".into(), c("DIED"));
        assert!(consent(&deferred).unwrap_err().contains("died"));

        let mut legacy = Values::new();
        legacy.insert("CONSENT_BY".into(), c("DEFERRED"));
        assert!(is_deferred(&legacy));
        assert_eq!(consent(&legacy), Ok(()));
        assert!(consent_problems(&legacy).is_empty());
    }

    /// The outcome of deferred consent and the patient's own decision after a representative
    /// must agree with the rest of the record; a refusal asks for the withdrawal and its scope.
    #[test]
    fn consent_problems_name_the_item_to_fix() {
        let mut con = Values::new();
        con.insert("CONSENT_PROCESS".into(), c("DEFERRED"));
        con.insert("CONSENT_BY".into(), c("DEFERRED"));
        con.insert("DEFERRED_OUTCOME".into(), c("CONFIRMED_LAR"));
        let items: Vec<&str> = consent_problems(&con).iter().map(|p| p.0).collect();
        assert_eq!(items, ["CONSENT_BY", "CONSENT_DT"]);
        con.insert("CONSENT_BY".into(), c("LAR"));
        con.insert("CONSENT_DT".into(), dt());
        assert!(consent_problems(&con).is_empty());
        // The patient wakes up and refuses: the withdrawal must be recorded.
        con.insert("RECONSENT".into(), c("REFUSED"));
        con.insert("RECONSENT_DATE".into(), day("2026-03-05"));
        let p = consent_problems(&con);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "WITHDRAWN");
        assert!(p[0].2.contains("撤回"));
        // Until then the refusal counts as "no further data" from its date.
        assert_eq!(
            withdrawal(&con),
            Some(Withdrawal {
                date: crate::value::parse_date("2026-03-05").ok(),
                scope: WithdrawalScope::NoFurtherData
            })
        );
        con.insert("WITHDRAWN".into(), c("Y"));
        con.insert("WD_DATE".into(), day("2026-03-06"));
        con.insert("WD_SCOPE".into(), c("NO_TREATMENT_DATA"));
        assert!(consent_problems(&con).is_empty());
        assert_eq!(
            withdrawal(&con).map(|w| w.scope),
            Some(WithdrawalScope::VitalStatusOnly)
        );
    }

    /// What each withdrawal scope keeps out of the exported data.
    #[test]
    fn a_withdrawal_withholds_what_it_does_not_allow() {
        let w = |scope| Withdrawal {
            date: crate::value::parse_date("2026-03-05").ok(),
            scope,
        };
        let dly = |d: &str| Values::from([("DATE".to_string(), day(d))]);
        let d30 = Values::from([("CONTACT_DATE".to_string(), day("2026-03-31"))]);
        let nothing = Values::new();
        let no_more = w(WithdrawalScope::NoFurtherData);
        assert!(!withheld(&no_more, "DLY", &dly("2026-03-05")));
        assert!(withheld(&no_more, "DLY", &dly("2026-03-06")));
        assert!(withheld(&no_more, "D30", &d30));
        assert!(!withheld(&no_more, "BAS", &nothing));
        let vital = w(WithdrawalScope::VitalStatusOnly);
        assert!(withheld(&vital, "DLY", &dly("2026-03-06")));
        assert!(!withheld(&vital, "D30", &d30));
        let all = w(WithdrawalScope::AllData);
        assert!(withheld(&all, "BAS", &nothing));
        assert!(withheld(&all, "DLY", &dly("2026-03-01")));
        assert!(!withheld(&all, "CON", &nothing) && !withheld(&all, "RND", &nothing));
    }
}
