//! The closed report for the data monitoring committee: outcomes by arm, seen only by a role
//! that may see results by arm (`Action::ViewByArm`: the statistician); everyone else sees the
//! pooled figures of [`pooled`].
//!
//! Every number comes from core's outcome of each randomized subject (the one `subjects.csv`
//! carries): 30-day mortality = deaths within 30 days / subjects whose primary endpoint is known,
//! with the Wilson score 95% interval (R's `prop.test(x, n, correct = FALSE)`); Kaplan–Meier to
//! day 30 over the same subjects (time = days alive to day 30, event = death within 30 days);
//! serious adverse events, crossovers and 6-hour deviations by arm; completeness of the primary
//! endpoint. A test recomputes them in R from the export.

use std::collections::BTreeMap;

use ecrf_core::outcome::Answer;

use crate::model::{SubjectSummary, Trial};

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// One arm's figures.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ArmFigures {
    /// Arm code (`ECMO_IABP`, `ECMO`).
    pub arm: String,
    /// Randomized to it.
    pub randomized: usize,
    /// Primary endpoint known.
    pub known: usize,
    /// Deaths within 30 days.
    pub deaths: usize,
    /// deaths / known.
    pub mortality: Option<f64>,
    /// Wilson 95% interval of the mortality.
    pub ci: Option<(f64, f64)>,
    /// Kaplan–Meier survival: (day, S(day)) at day 0 and each day with a death, to day 30.
    pub km: Vec<(i64, f64)>,
    /// Serious adverse events recorded.
    pub serious_aes: usize,
    /// Subjects with at least one.
    pub subjects_with_sae: usize,
    /// Crossovers (ECMO arm).
    pub crossovers: usize,
    /// IABP later than 6 h or never (ECMO+IABP arm).
    pub deviations: usize,
}

/// The report: one entry per arm (in arm-code order) and the pooled figures.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ClosedReport {
    /// By arm.
    pub arms: Vec<ArmFigures>,
    /// All arms together.
    pub pooled: ArmFigures,
}

/// The Wilson score interval of `x` successes in `n`.
pub fn wilson(x: usize, n: usize, z: f64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (x, n) = (x as f64, n as f64);
    let p = x / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// Kaplan–Meier over (time, died): S at 0 and after each time with a death.
pub fn kaplan_meier(mut obs: Vec<(i64, bool)>) -> Vec<(i64, f64)> {
    obs.sort();
    let mut out = vec![(0, 1.0)];
    let mut at_risk = obs.len();
    let mut s = 1.0;
    let mut i = 0;
    while i < obs.len() {
        let t = obs[i].0;
        let same: Vec<&(i64, bool)> = obs[i..].iter().take_while(|o| o.0 == t).collect();
        let deaths = same.iter().filter(|o| o.1).count();
        if deaths > 0 && at_risk > 0 {
            s *= 1.0 - deaths as f64 / at_risk as f64;
            out.push((t, s));
        }
        at_risk -= same.len();
        i += same.len();
    }
    out
}

fn figures<'a>(arm: &str, subjects: impl Iterator<Item = &'a SubjectSummary>) -> ArmFigures {
    let mut f = ArmFigures {
        arm: arm.to_string(),
        ..ArmFigures::default()
    };
    let mut obs = Vec::new();
    for s in subjects {
        f.randomized += 1;
        let o = &s.outcome;
        match (o.primary_endpoint, o.days_alive_to_day30) {
            (Answer::Yes, Some(t)) => {
                f.known += 1;
                f.deaths += 1;
                obs.push((t, true));
            }
            (Answer::No, t) => {
                f.known += 1;
                obs.push((t.unwrap_or(30), false));
            }
            _ => {}
        }
        f.serious_aes += s.serious_aes;
        f.subjects_with_sae += usize::from(s.serious_aes > 0);
        f.crossovers += usize::from(o.crossover == Some(true));
        f.deviations += usize::from(o.iabp_deviation == Some(true));
    }
    f.mortality = (f.known > 0).then(|| f.deaths as f64 / f.known as f64);
    f.ci = wilson(f.deaths, f.known, Z95);
    f.km = kaplan_meier(obs);
    f
}

fn randomized<'a>(
    trial: &'a Trial,
    sites: &'a [String],
) -> impl Iterator<Item = &'a SubjectSummary> {
    sites
        .iter()
        .filter_map(|s| trial.sites.get(s))
        .flat_map(|s| s.subjects.values())
        .filter(|s| s.screened.randomized)
}

/// The pooled figures of `sites` (what every role may see).
pub fn pooled(trial: &Trial, sites: &[String]) -> ArmFigures {
    figures("", randomized(trial, sites))
}

/// The closed report over `sites`: only for a role that may see results by arm.
pub fn report(trial: &Trial, sites: &[String]) -> ClosedReport {
    let mut by_arm: BTreeMap<String, Vec<&SubjectSummary>> = BTreeMap::new();
    for s in randomized(trial, sites) {
        by_arm
            .entry(s.screened.arm.clone().unwrap_or_default())
            .or_default()
            .push(s);
    }
    ClosedReport {
        arms: by_arm
            .iter()
            .map(|(arm, list)| figures(arm, list.iter().copied()))
            .collect(),
        pooled: pooled(trial, sites),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_r_prop_test_without_correction() {
        // prop.test(7, 20, correct = FALSE)$conf.int: 0.1811918 0.5671457
        let (lo, hi) = wilson(7, 20, Z95).unwrap();
        assert!((lo - 0.181_191_8).abs() < 1e-6, "{lo}");
        assert!((hi - 0.567_145_7).abs() < 1e-6, "{hi}");
        assert_eq!(wilson(0, 0, Z95), None);
    }

    #[test]
    fn kaplan_meier_steps_at_deaths_and_censors_the_living() {
        // 5 subjects: deaths on day 2 and 2, one alive at 30, a death on day 10, alive at 30.
        let km = kaplan_meier(vec![
            (2, true),
            (30, false),
            (2, true),
            (10, true),
            (30, false),
        ]);
        assert_eq!(km[0], (0, 1.0));
        assert_eq!(km[1].0, 2);
        assert!((km[1].1 - 0.6).abs() < 1e-12);
        assert_eq!(km[2].0, 10);
        assert!((km[2].1 - 0.6 * (1.0 - 1.0 / 3.0)).abs() < 1e-12);
        assert_eq!(km.len(), 3);
    }
}
