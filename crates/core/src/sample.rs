//! Sample answers for this trial's forms, for the benchmarks and the tests: one list per form,
//! so a change to the screening checklist or the consent record of `CRF.md` is made in one place.

/// The screening checklist of an eligible 61-year-old man: every inclusion criterion met, no
/// exclusion. Without the screening number and the three times (screening, ECMO start, lactate
/// drawn), which each use sets.
pub const ELIGIBLE_SCREENING: &[(&str, &str)] = &[
    ("AGE", "61"),
    ("SEX", "M"),
    ("INC1_AGE", "Y"),
    ("INC2_CS", "Y"),
    ("SBP_LT90", "Y"),
    ("SBP_LOW", "70"),
    ("SBP_DURATION", "40"),
    ("CATECHOL", "N"),
    ("LACT_GT3", "Y"),
    ("LACTATE", "4.5"),
    ("HYPOPERF", "Y"),
    ("HYPOPERF_SIGNS", "COLD,OLIGURIA"),
    ("INC3_ECMO", "Y"),
    ("LV_UNLOADING_STARTED", "N"),
    ("INC4_CONSENT", "Y"),
    ("EXC1_AI_DISSECTION", "N"),
    ("EXC2_PVD", "N"),
    ("EXC3_POSTCARDIOTOMY", "N"),
    ("EXC4_NONCARDIAC", "N"),
    ("EXC5_ECPR", "N"),
    ("EXC6_PRIOR_MCS", "N"),
    ("EXC7_BLEEDING", "N"),
    ("EXC8_MALIGNANCY", "N"),
    ("EXC9_NEURO", "N"),
];

/// [`ELIGIBLE_SCREENING`] with a screening number and the times of a patient screened on
/// 1 March 2026 at 10:00 (UTC+8): ECMO started at 09:00, lactate drawn at 09:40.
pub fn eligible_screening(scrno: &str) -> Vec<(&'static str, &str)> {
    let own = [
        ("SCRNO", scrno),
        ("SCR_DT", "2026-03-01T10:00+08:00"),
        ("LACTATE_DT", "2026-03-01T09:40+08:00"),
        ("ECMO_START_DT", "2026-03-01T09:00+08:00"),
    ];
    own.into_iter()
        .chain(ELIGIBLE_SCREENING.iter().copied())
        .collect()
}

/// Prospective consent signed by the patient's spouse as legally authorised representative,
/// without its date-time, which each use sets.
pub const CONSENT_BY_SPOUSE: &[(&str, &str)] = &[
    ("CONSENT_PROCESS", "PROSPECTIVE"),
    ("CONSENT_BY", "LAR"),
    ("LAR_RELATION", "SPOUSE"),
    ("ICF_VERSION", "V1.0 2025-10-01"),
    ("OBTAINED_BY", "Dr Wang 王医生"),
];

/// [`CONSENT_BY_SPOUSE`] given at 10:10, ten minutes after [`eligible_screening`]'s screening.
pub fn consent_by_spouse() -> Vec<(&'static str, &'static str)> {
    std::iter::once(("CONSENT_DT", "2026-03-01T10:10+08:00"))
        .chain(CONSENT_BY_SPOUSE.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_screening_is_eligible() {
        let study = crate::trial::definition().unwrap();
        let mut values = std::collections::BTreeMap::new();
        let scr = study.form("SCR").unwrap();
        let offset = chrono::FixedOffset::east_opt(8 * 3600);
        for (id, text) in eligible_screening("07-001") {
            let item = scr.item(id).unwrap();
            let value = crate::check::parse_input(&study, scr, item, text, offset)
                .unwrap()
                .unwrap();
            values.insert(id.to_string(), value);
        }
        let verdict = crate::eligibility::assess(&values);
        assert!(verdict.eligible, "{}", verdict.summary());
    }
}
