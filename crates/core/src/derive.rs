//! Derived values computed from the items of the same form instance: BMI, the
//! vasoactive-inotropic score and pulse pressure. Which item is derived, and how, is declared in
//! the study definition (`derived = "bmi"`); the formulas live here and nowhere else.
//! Derivations that need other forms (IABP delay, deviation, crossover, lengths of stay,
//! successful weaning, the primary endpoint) are [`crate::outcome`]'s. Pure; a derived value is absent while any input is missing or not a number.
//!
//! # The daily vasoactive-inotropic score
//! The VIS of a daily log (`DLY.VIS`) is the score of **one time point**: the doses of every
//! drug running together at the moment of the day with the highest combined support (the
//! nurse works out the score at each dose change and records the doses of the highest one).
//! It is never the sum of each drug's own daily maximum, which overstates the support whenever
//! the drugs peak at different times (noradrenaline 0.3 in the morning, dobutamine 10 in the
//! evening: VIS 30, not 40). The dose items of DLY are asked that way; definition 1.0.0 asked
//! "highest dose of the day", so a log entered under it may overstate its VIS. The baseline VIS
//! (`BAS.VIS`) is the score of the doses at baseline, also one time point.

use std::collections::BTreeMap;

use crate::study::FormDef;
use crate::value::{Decimal, Value};

fn number(values: &BTreeMap<String, Value>, item: &str) -> Option<f64> {
    values
        .get(item)
        .and_then(Value::as_decimal)
        .map(|d| d.to_f64())
}

/// Body-mass index, kg/m², from WEIGHT (kg) and HEIGHT (cm), one decimal.
fn bmi(values: &BTreeMap<String, Value>) -> Option<Value> {
    let (w, h) = (number(values, "WEIGHT")?, number(values, "HEIGHT")?);
    if h <= 0.0 {
        return None;
    }
    Decimal::from_f64_rounded(w / (h / 100.0).powi(2), 1).map(Value::Dec)
}

/// Vasoactive-inotropic score (Gaies 2010) of doses running together at one time point:
/// dopamine plus dobutamine plus 100 × epinephrine, 100 × norepinephrine, 10 × milrinone and
/// 10 000 × vasopressin (µg/kg/min; vasopressin in U/kg/min). Levosimendan is recorded but not
/// scored. See the module documentation for the daily score.
fn vis(values: &BTreeMap<String, Value>) -> Option<Value> {
    let terms = [
        ("DOPAMINE", 1.0),
        ("DOBUTAMINE", 1.0),
        ("EPINEPHRINE", 100.0),
        ("NOREPINEPHRINE", 100.0),
        ("MILRINONE", 10.0),
        ("VASOPRESSIN", 10_000.0),
    ];
    let mut total = 0.0;
    for (item, weight) in terms {
        total += number(values, item)? * weight;
    }
    Decimal::from_f64_rounded(total, 1).map(Value::Dec)
}

/// Pulse pressure, mmHg: SBP − DBP.
fn pulse_pressure(values: &BTreeMap<String, Value>) -> Option<Value> {
    let (s, d) = (values.get("SBP")?, values.get("DBP")?);
    match (s, d) {
        (Value::Int(s), Value::Int(d)) => Some(Value::Int(s - d)),
        _ => None,
    }
}

/// The derived values of one form instance that can be computed from its own items.
pub fn derive_form(form: &FormDef, values: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    form.items
        .iter()
        .filter_map(|item| {
            let value = match item.derived.as_deref()? {
                "bmi" => bmi(values),
                "vis" => vis(values),
                "pulse_pressure" => pulse_pressure(values),
                _ => None,
            }?;
            Some((item.id.clone(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trial::definition;

    fn vals(pairs: &[(&str, &str)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| {
                let value = match v.parse::<i64>() {
                    Ok(i) => Value::Int(i),
                    Err(_) => Value::Dec(v.parse().unwrap()),
                };
                (k.to_string(), value)
            })
            .collect()
    }

    #[test]
    fn bmi_and_vis_on_the_baseline_form() {
        let study = definition().unwrap();
        let bas = study.form("BAS").unwrap();
        let v = vals(&[
            ("HEIGHT", "172.0"),
            ("WEIGHT", "70.5"),
            ("DOPAMINE", "5"),
            ("DOBUTAMINE", "0"),
            ("EPINEPHRINE", "0.05"),
            ("NOREPINEPHRINE", "0.1"),
            ("MILRINONE", "0.25"),
            ("VASOPRESSIN", "0.0004"),
        ]);
        let d = derive_form(bas, &v);
        assert_eq!(d["BMI"].to_string(), "23.8"); // 70.5 / 1.72² = 23.83
        assert_eq!(d["VIS"].to_string(), "26.5"); // 5 + 0 + 5 + 10 + 2.5 + 4
    }

    #[test]
    fn nothing_is_derived_from_missing_inputs() {
        let study = definition().unwrap();
        let bas = study.form("BAS").unwrap();
        let mut v = vals(&[("HEIGHT", "172")]);
        v.insert("WEIGHT".into(), Value::Missing(crate::MissingCode::NotDone));
        assert!(derive_form(bas, &v).is_empty());
    }

    #[test]
    fn daily_vis_is_the_score_of_one_time_point_not_of_each_drugs_maximum() {
        let study = definition().unwrap();
        let dly = study.form("DLY").unwrap();
        let doses = |dobutamine: &str, norepinephrine: &str| {
            vals(&[
                ("DOPAMINE", "0"),
                ("DOBUTAMINE", dobutamine),
                ("EPINEPHRINE", "0"),
                ("NOREPINEPHRINE", norepinephrine),
                ("MILRINONE", "0"),
                ("VASOPRESSIN", "0"),
            ])
        };
        // 08:00 noradrenaline 0.3 alone; 20:00 dobutamine 10 with noradrenaline 0.05.
        let morning = derive_form(dly, &doses("0", "0.3"))["VIS"].clone();
        let evening = derive_form(dly, &doses("10", "0.05"))["VIS"].clone();
        assert_eq!(morning.to_string(), "30.0");
        assert_eq!(evening.to_string(), "15.0");
        // The day's VIS is the morning's (the highest simultaneous doses); each drug's own
        // maximum together (dobutamine 10 + noradrenaline 0.3) would give 40.
        let maxima = derive_form(dly, &doses("10", "0.3"))["VIS"].clone();
        assert_eq!(maxima.to_string(), "40.0");
        assert!(morning.as_decimal() > evening.as_decimal());
        // The definition asks for the doses of that one time point, and says why.
        let help = &dly.item("VIS").unwrap().help.as_ref().unwrap().en;
        assert!(help.contains("one time point"), "{help}");
        assert!(help.contains("Never the sum of each drug's own daily maximum"));
        for drug in [
            "DOPAMINE",
            "DOBUTAMINE",
            "EPINEPHRINE",
            "NOREPINEPHRINE",
            "MILRINONE",
        ] {
            let h = &dly.item(drug).unwrap().help.as_ref().unwrap();
            assert!(
                h.en.contains("time point of the day's highest VIS"),
                "{drug}"
            );
            assert!(h.zh.contains("同一时刻"), "{drug}");
        }
    }

    #[test]
    fn pulse_pressure_on_the_daily_log() {
        let study = definition().unwrap();
        let dly = study.form("DLY").unwrap();
        let d = derive_form(dly, &vals(&[("SBP", "92"), ("DBP", "85")]));
        assert_eq!(d["PULSE_PRESSURE"], Value::Int(7));
    }
}
