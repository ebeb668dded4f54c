//! The subject list and a subject's page: schedule, randomization, outcome flags and trends.

use ecrf_core::schedule::FormStatus;
use serde::Serialize;
use ts_rs::TS;

use super::Txt;

/// One subject in the list.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SubjectRow {
    /// Subject number.
    pub subject: String,
    /// Day 0, if known.
    pub day0: Option<String>,
    /// The worst status of its forms.
    pub status: FormStatus,
    /// Forms complete.
    pub complete: u32,
    /// Forms in progress.
    pub in_progress: u32,
    /// Forms overdue.
    pub overdue: u32,
    /// Forms with warnings.
    pub warnings: u32,
}

/// One row of a subject's schedule.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ScheduleRow {
    /// Instance key (`DLY#3`).
    pub key: String,
    /// Form id.
    pub form: String,
    /// Form name.
    pub name: Txt,
    /// Repeat number.
    pub repeat: Option<u32>,
    /// Due date.
    pub due: Option<String>,
    /// Status.
    pub status: FormStatus,
    /// Written by the app, not typed.
    pub system: bool,
}

/// A subject's randomization, as shown after it (never before: sealed envelopes stay hidden).
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
pub struct RandomizationView {
    /// Subject number given at randomization (`01-R0007`).
    pub subject_no: String,
    /// Arm code: `ECMO_IABP` or `ECMO`.
    pub arm: String,
    /// The arm's label.
    pub arm_label: Txt,
    /// When randomized (RFC 3339 with offset).
    pub at: String,
    /// Who randomized.
    pub by: String,
    /// Envelope opened.
    pub envelope: String,
    /// ECMO start (ECMO form, else the screening form), RFC 3339; none when not recorded.
    pub ecmo_start: Option<String>,
    /// End of the 6-hour window from ECMO start (IABP due by then in the ECMO+IABP arm; no
    /// mechanical unloading before then in the ECMO arm), RFC 3339.
    pub window_end: Option<String>,
}

/// A subject's page.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SubjectPage {
    /// Subject number.
    pub subject: String,
    /// Day 0, if known.
    pub day0: Option<String>,
    /// The schedule.
    pub schedule: Vec<ScheduleRow>,
    /// The randomization, once done.
    pub randomization: Option<RandomizationView>,
    /// Derived outcomes and protocol flags.
    pub outcome: OutcomeView,
    /// Daily values over days, for the trend charts.
    pub trends: Trends,
}

/// A protocol flag and its reason.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
pub struct FlagView {
    /// Stable code (`IABP_LATE`, `CROSSOVER`, `DAILY_LOG_MISSING`…).
    pub code: String,
    /// Form instance it concerns.
    pub form: String,
    /// Item at fault, if one.
    pub item: Option<String>,
    /// Why.
    pub message: Txt,
}

/// A subject's derived outcomes (`core::outcome`), ready to show; `None` while not known.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
pub struct OutcomeView {
    /// IABP insertion − ECMO start, minutes.
    pub iabp_delay_min: Option<i32>,
    /// The same in hours (two decimals).
    pub iabp_delay_hours: Option<String>,
    /// ECMO+IABP arm: IABP later than 6 h or never.
    pub iabp_deviation: Option<bool>,
    /// ECMO arm: mechanical unloading within 6 h.
    pub crossover: Option<bool>,
    /// Days on ECMO (one decimal).
    pub days_on_ecmo: Option<String>,
    /// Days on IABP (one decimal).
    pub days_on_iabp: Option<String>,
    /// ICU length of stay, days.
    pub icu_los_days: Option<i32>,
    /// Hospital length of stay, days.
    pub hospital_los_days: Option<i32>,
    /// Successful ECMO weaning: `yes`, `no`, `unknown`; none without decannulation.
    pub successful_weaning: Option<String>,
    /// Earliest recorded date of death.
    pub death_date: Option<String>,
    /// Vital status at day 30: `alive`, `dead`, `unknown`.
    pub day30_status: String,
    /// Death within 30 days of randomization: `yes`, `no`, `unknown`.
    pub primary_endpoint: String,
    /// Days alive to day 30.
    pub days_alive_to_day30: Option<i32>,
    /// Protocol flags with reasons.
    pub flags: Vec<FlagView>,
}

/// One study day's values for the trend charts (worst of the day, as logged).
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
pub struct TrendPoint {
    /// Study day.
    pub day: u32,
    /// Lactate, mmol/L.
    pub lactate: Option<f64>,
    /// Mean arterial pressure, mmHg.
    pub map: Option<f64>,
    /// Pulse pressure, mmHg (derived).
    pub pulse_pressure: Option<f64>,
    /// ECMO flow, L/min.
    pub flow: Option<f64>,
    /// Vasoactive-inotropic score (derived).
    pub vis: Option<f64>,
}

/// A moment marked on the charts.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
pub struct TrendMark {
    /// Study day with the time of day as a fraction (day 1 at 18:00 = 1.75).
    pub day: f64,
    /// `iabp_in` or `iabp_out`.
    pub kind: String,
}

/// The daily values and the IABP insertions and removals.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
pub struct Trends {
    /// One point per daily log, by day.
    pub points: Vec<TrendPoint>,
    /// IABP insertion and removal times.
    pub marks: Vec<TrendMark>,
}
