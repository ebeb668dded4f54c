//! When a patient may be randomized, besides eligibility and consent ([`crate::eligibility`]):
//! not later than the study's limit after ECMO start, and only while no mechanical LV unloading
//! has started.
//!
//! Owns the timing refusals of `randomize` (the store asks [`check_timing`] inside its
//! randomization transaction, before an envelope is opened). Rules:
//! - **ECMO start** is the screening checklist's `SCR.ECMO_START_DT`, recorded before
//!   randomization (I3). When the ECMO form's `ECMO.START_DT` is already entered too, the
//!   earlier of the two counts: the window closes at the first recorded start.
//! - **The window**: randomization at most `latest_after_ecmo_start_min` minutes after ECMO start
//!   (study.toml `[randomization]`, by default the protocol's 6-hour IABP window
//!   [`crate::outcome::WINDOW_MIN`]); later, the ECMO+IABP arm could no longer get its IABP in
//!   time. A randomization time before the ECMO start is refused too (the times disagree).
//! - **Unloading**: `SCR.LV_UNLOADING_STARTED` (IABP, Impella, atrial septostomy, LV vent since
//!   ECMO start) must be answered "no"; "yes" refuses (the ECMO arm could not comply), and so
//!   does no answer (a half-filled checklist never randomizes a patient).
//!
//! Pure: the caller passes the values and the randomization time.

use std::fmt;

use chrono::{DateTime, FixedOffset};

use crate::eligibility::Values;
use crate::study::{RandomizationRules, Text};
use crate::value::Value;

/// Why a patient cannot be randomized at this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimingRefusal {
    /// Neither SCR nor ECMO records when ECMO started.
    NoEcmoStart,
    /// Randomization later than the limit after ECMO start.
    TooLate {
        /// ECMO start.
        ecmo_start: DateTime<FixedOffset>,
        /// The randomization time asked for.
        at: DateTime<FixedOffset>,
        /// The limit, minutes after ECMO start.
        limit_min: i64,
    },
    /// Randomization time before the ECMO start.
    BeforeEcmoStart {
        /// ECMO start.
        ecmo_start: DateTime<FixedOffset>,
        /// The randomization time asked for.
        at: DateTime<FixedOffset>,
    },
    /// SCR says mechanical LV unloading has already started.
    UnloadingStarted,
    /// SCR does not say whether mechanical LV unloading has started.
    UnloadingNotAnswered,
}

fn hm(min: i64) -> String {
    format!("{} h {:02} min", min / 60, min % 60)
}

fn hm_zh(min: i64) -> String {
    format!("{}小时{:02}分", min / 60, min % 60)
}

fn at(t: &DateTime<FixedOffset>) -> String {
    t.format("%Y-%m-%d %H:%M (UTC%:z)").to_string()
}

impl TimingRefusal {
    /// The reason, in English and Chinese, naming the times and the limit.
    pub fn message(&self) -> Text {
        let (en, zh) = match self {
            TimingRefusal::NoEcmoStart => (
                "ECMO start time not recorded (SCR ECMO_START_DT): the randomization window \
                 cannot be checked"
                    .to_string(),
                "未记录ECMO启动时间（SCR ECMO_START_DT）：无法核对随机分组时间窗".to_string(),
            ),
            TimingRefusal::TooLate {
                ecmo_start,
                at: t,
                limit_min,
            } => {
                let elapsed = (*t - *ecmo_start).num_minutes();
                (
                    format!(
                        "too late: randomization at {} is {} after ECMO start at {}, later \
                         than the {} the protocol allows",
                        at(t),
                        hm(elapsed),
                        at(ecmo_start),
                        hm(*limit_min)
                    ),
                    format!(
                        "超出时间窗：随机分组时间 {} 距ECMO启动（{}）已{}，超过方案允许的{}",
                        at(t),
                        at(ecmo_start),
                        hm_zh(elapsed),
                        hm_zh(*limit_min)
                    ),
                )
            }
            TimingRefusal::BeforeEcmoStart { ecmo_start, at: t } => (
                format!(
                    "randomization at {} is before the recorded ECMO start at {}: correct the \
                     ECMO start time first",
                    at(t),
                    at(ecmo_start)
                ),
                format!(
                    "随机分组时间 {} 早于记录的ECMO启动时间 {}：请先更正ECMO启动时间",
                    at(t),
                    at(ecmo_start)
                ),
            ),
            TimingRefusal::UnloadingStarted => (
                "mechanical LV unloading (IABP, Impella, atrial septostomy or LV vent) has \
                 already started (SCR LV_UNLOADING_STARTED = yes)"
                    .to_string(),
                "已开始机械性左心室减负（IABP、Impella、房间隔造口术或左心室引流）\
                 （SCR LV_UNLOADING_STARTED = 是）"
                    .to_string(),
            ),
            TimingRefusal::UnloadingNotAnswered => (
                "not answered whether mechanical LV unloading has already started (SCR \
                 LV_UNLOADING_STARTED)"
                    .to_string(),
                "未回答是否已开始机械性左心室减负（SCR LV_UNLOADING_STARTED）".to_string(),
            ),
        };
        Text { en, zh }
    }
}

impl fmt::Display for TimingRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message().en)
    }
}

fn time(v: &Values, item: &str) -> Option<DateTime<FixedOffset>> {
    match v.get(item) {
        Some(Value::DateTime(t)) => Some(*t),
        _ => None,
    }
}

/// The ECMO start that opens the window: the earlier of `SCR.ECMO_START_DT` and
/// `ECMO.START_DT` (see the module documentation).
pub fn ecmo_start(scr: &Values, ecmo: &Values) -> Option<DateTime<FixedOffset>> {
    [time(scr, "ECMO_START_DT"), time(ecmo, "START_DT")]
        .into_iter()
        .flatten()
        .min()
}

/// May the patient be randomized at `at`, as far as time and unloading go?
pub fn check_timing(
    rules: &RandomizationRules,
    scr: &Values,
    ecmo: &Values,
    at: DateTime<FixedOffset>,
) -> Result<(), TimingRefusal> {
    match scr.get("LV_UNLOADING_STARTED") {
        Some(Value::Code(c)) if c == "N" => {}
        Some(Value::Code(c)) if c == "Y" => return Err(TimingRefusal::UnloadingStarted),
        _ if rules.asks_unloading => return Err(TimingRefusal::UnloadingNotAnswered),
        _ => {}
    }
    let start = ecmo_start(scr, ecmo).ok_or(TimingRefusal::NoEcmoStart)?;
    let elapsed = (at - start).num_minutes();
    if at < start {
        return Err(TimingRefusal::BeforeEcmoStart {
            ecmo_start: start,
            at,
        });
    }
    // Whole minutes: 6 h 00 min 59 s after the start is still within a 6-hour limit.
    if elapsed > rules.latest_after_ecmo_start_min {
        return Err(TimingRefusal::TooLate {
            ecmo_start: start,
            at,
            limit_min: rules.latest_after_ecmo_start_min,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trial::definition;

    fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn scr(start: Option<&str>, unloading: Option<&str>) -> Values {
        let mut v = Values::new();
        if let Some(s) = start {
            v.insert("ECMO_START_DT".into(), Value::DateTime(t(s)));
        }
        if let Some(u) = unloading {
            v.insert("LV_UNLOADING_STARTED".into(), Value::Code(u.into()));
        }
        v
    }

    fn rules() -> RandomizationRules {
        definition().unwrap().randomization
    }

    #[test]
    fn the_definition_states_the_six_hour_window() {
        assert_eq!(rules().latest_after_ecmo_start_min, 360);
        assert_eq!(
            rules().latest_after_ecmo_start_min,
            crate::outcome::WINDOW_MIN
        );
    }

    #[test]
    fn randomization_up_to_six_hours_after_ecmo_start_and_not_after() {
        let s = scr(Some("2026-03-01T09:00:00+08:00"), Some("N"));
        let none = Values::new();
        for ok in ["2026-03-01T09:00:00+08:00", "2026-03-01T15:00:59+08:00"] {
            assert_eq!(check_timing(&rules(), &s, &none, t(ok)), Ok(()), "{ok}");
        }
        // Seven hours later (in another offset: the same instant rules).
        let late = t("2026-03-01T09:00:00+01:00");
        let e = check_timing(&rules(), &s, &none, late).unwrap_err();
        assert_eq!(
            e,
            TimingRefusal::TooLate {
                ecmo_start: t("2026-03-01T09:00:00+08:00"),
                at: late,
                limit_min: 360
            }
        );
        let m = e.message();
        for needle in [
            "2026-03-01 09:00 (UTC+01:00)",
            "2026-03-01 09:00 (UTC+08:00)",
            "7 h 00 min",
            "6 h 00 min",
        ] {
            assert!(m.en.contains(needle), "{needle}: {}", m.en);
        }
        assert!(
            m.zh.contains("7小时00分") && m.zh.contains("6小时00分"),
            "{}",
            m.zh
        );
        let early = t("2026-03-01T08:59:00+08:00");
        assert!(matches!(
            check_timing(&rules(), &s, &none, early),
            Err(TimingRefusal::BeforeEcmoStart { .. })
        ));
    }

    #[test]
    fn the_earlier_of_the_two_recorded_ecmo_starts_opens_the_window() {
        let s = scr(Some("2026-03-01T09:00:00+08:00"), Some("N"));
        let mut ecmo = Values::new();
        ecmo.insert(
            "START_DT".into(),
            Value::DateTime(t("2026-03-01T08:00:00+08:00")),
        );
        let at = t("2026-03-01T14:30:00+08:00");
        assert_eq!(check_timing(&rules(), &s, &Values::new(), at), Ok(()));
        assert!(matches!(
            check_timing(&rules(), &s, &ecmo, at),
            Err(TimingRefusal::TooLate { .. })
        ));
        // Only the ECMO form: still judged.
        let no_scr_start = scr(None, Some("N"));
        assert!(check_timing(&rules(), &no_scr_start, &ecmo, at).is_err());
        assert_eq!(
            check_timing(&rules(), &no_scr_start, &Values::new(), at),
            Err(TimingRefusal::NoEcmoStart)
        );
    }

    #[test]
    fn unloading_started_or_unanswered_refuses() {
        let at = t("2026-03-01T10:00:00+08:00");
        let none = Values::new();
        let start = Some("2026-03-01T09:00:00+08:00");
        assert_eq!(
            check_timing(&rules(), &scr(start, Some("Y")), &none, at),
            Err(TimingRefusal::UnloadingStarted)
        );
        assert_eq!(
            check_timing(&rules(), &scr(start, None), &none, at),
            Err(TimingRefusal::UnloadingNotAnswered)
        );
        // A definition that never asked (1.0.0) cannot refuse on the unanswered question.
        let never_asked = RandomizationRules {
            asks_unloading: false,
            ..rules()
        };
        assert_eq!(
            check_timing(&never_asked, &scr(start, None), &none, at),
            Ok(())
        );
        let m = TimingRefusal::UnloadingStarted.message();
        assert!(m.en.contains("Impella") && m.zh.contains("左心室"));
    }

    #[test]
    fn a_window_longer_than_the_iabp_window_is_refused_by_the_loader() {
        let study = crate::trial::STUDY_FILE.1;
        let longer = study.replace(
            "latest_after_ecmo_start_min = 360",
            "latest_after_ecmo_start_min = 420",
        );
        assert_ne!(study, longer);
        let forms = crate::trial::FORM_FILES;
        let e = crate::study::Study::from_sources(("study.toml", &longer), forms).unwrap_err();
        assert!(
            e.to_string().contains("latest_after_ecmo_start_min = 420"),
            "{e}"
        );
        let shorter = study.replace(
            "latest_after_ecmo_start_min = 360",
            "latest_after_ecmo_start_min = 300",
        );
        let s = crate::study::Study::from_sources(("study.toml", &shorter), forms).unwrap();
        assert_eq!(s.randomization.latest_after_ecmo_start_min, 300);
    }
}
