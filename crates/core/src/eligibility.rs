//! Eligibility and consent, derived from the SCR and CON values: the 4 inclusion and
//! 10 exclusion criteria of the registry entry (NCT06872021), each with its evidence.
//!
//! Owns the decision "may this patient be randomized?" apart from the allocation itself.
//! A criterion counts as met only when it is answered **and** its evidence is on the form; an
//! exclusion counts as absent only when it is answered "no". Anything unanswered is a reason,
//! so a half-filled checklist can never randomize a patient.

use std::collections::BTreeMap;

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

/// Judges the consent record (CON): someone consented (patient, representative or deferred
/// consent where the ethics approval allows it), when, on which form version, obtained by whom,
/// and not withdrawn. `Err` holds what is missing, in English.
pub fn consent(con: &Values) -> Result<(), String> {
    if con.get("CONSENT_BY").is_none() {
        return Err("no consent recorded (CON form: who consented)".into());
    }
    if yes(con, "WITHDRAWN") {
        return Err("consent was withdrawn".into());
    }
    // Deferred consent (where the ethics approval allows it): the signature, its date-time,
    // form version and who obtained it are recorded after randomization.
    if code(con, "CONSENT_BY") == Some("DEFERRED") {
        return Ok(());
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
}
