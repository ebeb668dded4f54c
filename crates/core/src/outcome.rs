//! A subject's derived outcomes and protocol flags, computed from the values of all its forms.
//!
//! Owns every derivation that needs more than one form: the 6-hour IABP window, deviation and
//! crossover, time on each device, lengths of stay, successful ECMO weaning, the day-30 status,
//! the **primary endpoint** and days alive, and the protocol flags a monitor would otherwise
//! look for by hand. The study definition declares which form items show these values
//! (`derived = "iabp_delay"`, …); [`derive_item`] maps those names onto a [`SubjectOutcome`].
//! Pure: the caller passes every form instance's values and the clock. Nothing here refuses a
//! save; the save-time refusals are `compare` rules of the study definition (see `check`).
//!
//! # Inputs
//! `values` maps a form instance (`RND`, `DLY#3`, `EVT#2`) to its current item values.
//!
//! # Derivations
//! - **Randomized at / arm / day 0**: `RND.RND_DT`, `RND.ARM` (`ECMO_IABP` or `ECMO`); day 0 is
//!   the local calendar date of `RND.RND_DT`. "Day N" counts calendar days from day 0.
//! - **ECMO start**: `ECMO.START_DT`, time zero of the 6-hour window.
//! - **IABP insertion**: `IABP.INSERT_DT` when `IABP.INSERTED = Y`.
//! - **IABP delay**: insertion − ECMO start, in whole minutes (`IABP.DELAY_MIN`) and in hours
//!   with two decimals.
//! - **6-hour deviation** (ECMO+IABP arm only): yes when `IABP.INSERTED = N`, or the delay is
//!   more than 360 minutes; no when the delay is at most 360 minutes; unknown (`None`) while
//!   nothing is recorded (then a flag says so once the 6 hours have passed). Not applicable
//!   (`None`) in the ECMO arm.
//! - **Crossover** (ECMO arm only): yes when any mechanical unloading starts at most 6 h after
//!   the ECMO start: an IABP on the IABP form, or an EVT of type `UNLOADING_ESCALATION`
//!   (Impella, septostomy, LV vent) or `IABP_REINSERTION`; otherwise no. Not applicable
//!   (`None`) in the ECMO+IABP arm or before the arm and ECMO start are known.
//! - **ECMO end**: the last EVT `ECMO_DECANNULATION`, else the time of an EVT `DEATH`; none
//!   while ECMO runs again after an EVT `ECMO_RECANNULATION` later than the last decannulation.
//!   **Days on ECMO**: the ECMO start and each re-cannulation are paired with the last
//!   decannulation before the next of them (or the death); the periods are summed, in hours /
//!   24 with one decimal; `None` while running. (A 1.0.0 record could not say "re-cannulated":
//!   two decannulations there still count as one period to the last.)
//! - **Days on IABP**: each insertion (IABP form, EVT `IABP_REINSERTION`) is paired with the
//!   first EVT `IABP_REMOVAL` after it (or the EVT `DEATH` time); the periods are summed, in
//!   hours / 24 with one decimal; `None` while an IABP is still in or none was inserted.
//! - **ICU length of stay** = `DIS.ICU_DIS_DATE − DIS.ICU_ADM_DATE`, **hospital length of
//!   stay** = `DIS.DIS_DATE − DIS.HOSP_ADM_DATE`, in calendar days.
//! - **Successful ECMO weaning** (for a decannulation at time T): no when a death, an ECMO
//!   re-cannulation, a VAD or a heart transplant is recorded at or before T + 48 h (a death
//!   known only by its date counts when that date is on or before the date of T + 48 h); yes
//!   when the patient is known alive later than that (a later event, a daily log dated after
//!   that date, discharge alive after it, alive at day 30, or death after it); otherwise
//!   unknown. `None` without decannulation.
//! - **Date of death**: from every place it is recorded: an EVT `DEATH` (date of `EVT_DT`),
//!   `DIS.DIS_DATE` when `DIS.STATUS = DEAD`, `D30.DEATH_DATE` when `D30.VITAL_STATUS = DEAD`.
//!   The earliest is used; different dates raise the flag `DEATH_DATES_CONFLICT`.
//! - **Primary endpoint** (death from any cause within 30 days of randomization): yes when the
//!   date of death is day 0 to day 30; no when the patient is known alive on or after day 30:
//!   death after day 30, or a date on or after day 30 on which the patient was alive (the day-30
//!   contact saying alive, discharge alive, an event, a daily log); otherwise unknown (lost to
//!   follow-up, vital status unknown, not yet day 30, or last known alive before day 30: an
//!   early "alive" contact never decides the endpoint, it raises `ALIVE_ONLY_BEFORE_DAY30`).
//! - **Day-30 status**: dead (endpoint yes), alive (endpoint no) or unknown.
//! - **Days alive to day 30**: the day of death N when the endpoint is yes (death on day 12 →
//!   12), 30 when it is no, `None` when unknown.
//!
//! # Flags (each with its reason in English and Chinese)
//! `IABP_LATE`, `IABP_NEVER`, `IABP_NOT_RECORDED` (ECMO+IABP arm), `CROSSOVER` (ECMO arm),
//! `DAILY_LOG_MISSING` (a day from day 0 to the day after the last device came out — at most day
//! 30, the day of death, or yesterday while on support — without a daily log),
//! `D30_OUTSIDE_WINDOW` (contact before day 30 or after day 37), `ALIVE_ONLY_BEFORE_DAY30` (vital
//! status alive, but every date the patient is known alive is before day 30), `DEATH_DATES_CONFLICT`,
//! `DEATH_BEFORE_RANDOMIZATION`, `DEATH_IN_FUTURE` (both also refused at save by the rules),
//! `EXCLUSION_IN_DATA` (a randomized subject whose later forms show an exclusion criterion or a
//! failed inclusion: aortic regurgitation moderate or worse (E1) or post-cardiotomy shock after
//! a non-CABG operation (E3) on BAS, a central ECMO configuration (I3: peripheral VA-ECMO);
//! see [`EXCLUSIONS_IN_DATA`]), `CONSENT_RECORD` (a randomized subject's consent record
//! inconsistent or open: [`crate::eligibility::consent_problems`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
use serde::Serialize;

use crate::study::Text;
use crate::value::{Decimal, Value};

/// Every form instance of a subject (`RND`, `DLY#3`, `EVT#2`) with its current values.
pub type SubjectValues = BTreeMap<String, BTreeMap<String, Value>>;

/// The 6-hour window, in minutes.
pub const WINDOW_MIN: i64 = 6 * 60;

/// Treatment arm (code list `arms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Arm {
    /// ECMO+IABP: IABP within 6 h of ECMO start.
    #[serde(rename = "ECMO_IABP")]
    EcmoIabp,
    /// ECMO alone: no mechanical unloading within 6 h.
    #[serde(rename = "ECMO")]
    Ecmo,
}

/// A yes / no / not (yet) known answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Answer {
    /// Yes.
    Yes,
    /// No.
    No,
    /// Not known from what is recorded.
    Unknown,
}

impl Answer {
    /// The code of the built-in yes/no answers (`Y`, `N`), or none when unknown.
    pub fn code(self) -> Option<&'static str> {
        match self {
            Answer::Yes => Some("Y"),
            Answer::No => Some("N"),
            Answer::Unknown => None,
        }
    }
}

/// Vital status at day 30.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Day30Status {
    /// Known alive at day 30.
    Alive,
    /// Died on or before day 30.
    Dead,
    /// Not known.
    Unknown,
}

/// A protocol flag: what, where, and why (in both languages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtocolFlag {
    /// Stable code (`IABP_LATE`, `DAILY_LOG_MISSING`, …).
    pub code: String,
    /// The form instance it concerns (`IABP`, `DLY#3`).
    pub form: String,
    /// The item, when one item is at fault.
    pub item: Option<String>,
    /// The reason shown to the user.
    pub message: Text,
}

/// Everything derived for one subject. See the module documentation for each rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubjectOutcome {
    /// `RND.RND_DT`.
    pub randomized_at: Option<DateTime<FixedOffset>>,
    /// Local date of randomization.
    pub day_zero: Option<NaiveDate>,
    /// `RND.ARM`.
    pub arm: Option<Arm>,
    /// `ECMO.START_DT`.
    pub ecmo_start: Option<DateTime<FixedOffset>>,
    /// `IABP.INSERT_DT` (when inserted).
    pub iabp_inserted_at: Option<DateTime<FixedOffset>>,
    /// IABP insertion − ECMO start, minutes.
    pub iabp_delay_min: Option<i64>,
    /// The same in hours, two decimals.
    pub iabp_delay_hours: Option<Decimal>,
    /// ECMO+IABP arm: IABP later than 6 h or never. `None`: not applicable or not yet known.
    pub iabp_deviation: Option<bool>,
    /// ECMO arm: unloading within 6 h. `None`: not applicable or not yet known.
    pub crossover: Option<bool>,
    /// Last decannulation (or death) time.
    pub ecmo_end: Option<DateTime<FixedOffset>>,
    /// When the last device came out (`None` while ECMO or an IABP runs).
    pub support_end: Option<DateTime<FixedOffset>>,
    /// The last study day a daily log is due or allowed: the day after `support_end`, never
    /// after day 30 or the day of death (day 30 while support runs).
    pub last_log_day: Option<i64>,
    /// Days on ECMO, one decimal.
    pub days_on_ecmo: Option<Decimal>,
    /// Days on IABP (all periods), one decimal.
    pub days_on_iabp: Option<Decimal>,
    /// ICU length of stay, days.
    pub icu_los_days: Option<i64>,
    /// Hospital length of stay, days.
    pub hospital_los_days: Option<i64>,
    /// Successful weaning after the last decannulation; `None` when never decannulated.
    pub successful_weaning: Option<Answer>,
    /// Earliest recorded date of death.
    pub death_date: Option<NaiveDate>,
    /// Study day of death.
    pub death_day: Option<i64>,
    /// Vital status at day 30.
    pub day30_status: Day30Status,
    /// Death within 30 days of randomization.
    pub primary_endpoint: Answer,
    /// Days alive from randomization to day 30.
    pub days_alive_to_day30: Option<i64>,
    /// Protocol flags with their reasons.
    pub flags: Vec<ProtocolFlag>,
}

impl SubjectOutcome {
    /// True when a flag with this code was raised.
    pub fn has_flag(&self, code: &str) -> bool {
        self.flags.iter().any(|f| f.code == code)
    }
}

struct Get<'a>(&'a SubjectValues);

impl Get<'_> {
    fn value(&self, instance: &str, item: &str) -> Option<&Value> {
        self.0.get(instance)?.get(item)
    }
    fn time(&self, instance: &str, item: &str) -> Option<DateTime<FixedOffset>> {
        match self.value(instance, item)? {
            Value::DateTime(t) => Some(*t),
            _ => None,
        }
    }
    fn date(&self, instance: &str, item: &str) -> Option<NaiveDate> {
        match self.value(instance, item)? {
            Value::Date(d) => Some(*d),
            Value::DateTime(t) => Some(t.date_naive()),
            _ => None,
        }
    }
    fn code(&self, instance: &str, item: &str) -> Option<&str> {
        match self.value(instance, item)? {
            Value::Code(c) => Some(c),
            _ => None,
        }
    }
    /// Every instance of a repeating form with its number.
    fn repeats<'b>(
        &'b self,
        form: &'b str,
    ) -> impl Iterator<Item = (u32, &'b str, &'b BTreeMap<String, Value>)> + 'b {
        self.0.iter().filter_map(move |(k, v)| {
            let (f, n) = k.split_once('#')?;
            (f == form).then_some(())?;
            Some((n.parse().ok()?, k.as_str(), v))
        })
    }
    /// Events of one type: (instance, date-time).
    fn events(&self, kinds: &[&str]) -> Vec<(String, DateTime<FixedOffset>)> {
        let mut out: Vec<_> = self
            .repeats("EVT")
            .filter_map(|(_, k, v)| match (v.get("EVT_TYPE"), v.get("EVT_DT")) {
                (Some(Value::Code(c)), Some(Value::DateTime(t))) if kinds.contains(&c.as_str()) => {
                    Some((k.to_string(), *t))
                }
                _ => None,
            })
            .collect();
        out.sort_by_key(|(_, t)| *t);
        out
    }
}

fn flag(code: &str, form: &str, item: Option<&str>, en: String, zh: String) -> ProtocolFlag {
    ProtocolFlag {
        code: code.into(),
        form: form.into(),
        item: item.map(str::to_string),
        message: Text { en, zh },
    }
}

fn hm(min: i64) -> String {
    format!("{} h {:02} min", min / 60, min % 60)
}

fn hm_zh(min: i64) -> String {
    format!("{}小时{:02}分", min / 60, min % 60)
}

/// A recorded date of death and where.
struct DeathRecord {
    date: NaiveDate,
    time: Option<DateTime<FixedOffset>>,
    form: String,
    item: &'static str,
}

fn death_records(g: &Get) -> Vec<DeathRecord> {
    let mut out: Vec<DeathRecord> = g
        .events(&["DEATH"])
        .into_iter()
        .map(|(k, t)| DeathRecord {
            date: t.date_naive(),
            time: Some(t),
            form: k,
            item: "EVT_DT",
        })
        .collect();
    if g.code("DIS", "STATUS") == Some("DEAD")
        && let Some(d) = g.date("DIS", "DIS_DATE")
    {
        out.push(DeathRecord {
            date: d,
            time: None,
            form: "DIS".into(),
            item: "DIS_DATE",
        });
    }
    if g.code("D30", "VITAL_STATUS") == Some("DEAD")
        && let Some(d) = g.date("D30", "DEATH_DATE")
    {
        out.push(DeathRecord {
            date: d,
            time: None,
            form: "D30".into(),
            item: "DEATH_DATE",
        });
    }
    out
}

/// The periods a device was in: each start (sorted) is paired with an end at or after it and
/// not after the next start (the first such end, or the last when `last_end`), or else with
/// the death.
struct Periods {
    /// Minutes in, all periods.
    minutes: i64,
    /// A start has no end yet (the device is in).
    open: bool,
    /// The end of the last closed period.
    last_out: Option<DateTime<FixedOffset>>,
}

fn periods(
    starts: &[DateTime<FixedOffset>],
    ends: &[DateTime<FixedOffset>],
    death: Option<DateTime<FixedOffset>>,
    last_end: bool,
) -> Periods {
    let mut p = Periods {
        minutes: 0,
        open: false,
        last_out: None,
    };
    for (n, start) in starts.iter().enumerate() {
        let next = starts.get(n + 1);
        let mut within = ends
            .iter()
            .filter(|e| *e >= start && next.is_none_or(|nx| *e <= nx));
        let end = if last_end {
            within.next_back()
        } else {
            within.next()
        };
        let out = end.copied().or(death.filter(|d| d >= start));
        match out {
            Some(o) => {
                p.minutes += (o - *start).num_minutes();
                p.last_out = Some(o);
            }
            None => p.open = true,
        }
    }
    p
}

/// Successful weaning after a decannulation at `t` (see the module documentation).
fn weaning_after(g: &Get, deaths: &[DeathRecord], t: DateTime<FixedOffset>) -> Answer {
    let limit = t + Duration::hours(48);
    let failed = deaths.iter().any(|d| match d.time {
        Some(dt) => dt <= limit,
        None => d.date <= limit.date_naive(),
    }) || g
        .events(&["VAD", "HEART_TX", "ECMO_RECANNULATION"])
        .iter()
        .any(|(_, e)| *e >= t && *e <= limit);
    if failed {
        return Answer::No;
    }
    let later_event = g.events(&[
        "ECMO_WEAN_TRIAL",
        "ECMO_DECANNULATION",
        "IABP_REMOVAL",
        "IABP_REINSERTION",
        "UNLOADING_ESCALATION",
        "VAD",
        "HEART_TX",
        "RRT_START",
        "ECMO_RECANNULATION",
        "ECMO_RECONFIGURATION",
        "WLST",
        "DEATH",
    ]);
    let alive_later = later_event.iter().any(|(_, e)| *e > limit)
        || g.repeats("DLY")
            .any(|(_, k, _)| g.date(k, "DATE").is_some_and(|d| d > limit.date_naive()))
        || (g.code("DIS", "STATUS") == Some("ALIVE")
            && g.date("DIS", "DIS_DATE")
                .is_some_and(|d| d > limit.date_naive()))
        || g.code("D30", "VITAL_STATUS") == Some("ALIVE")
        || deaths.iter().any(|d| d.date > limit.date_naive());
    if alive_later {
        Answer::Yes
    } else {
        Answer::Unknown
    }
}

/// Computes a subject's derived outcomes and protocol flags. `now` is the clock (for "the 6
/// hours have passed", "yesterday" and "in the future").
pub fn subject_outcome(values: &SubjectValues, now: DateTime<Utc>) -> SubjectOutcome {
    let g = Get(values);
    let mut flags = Vec::new();

    let randomized_at = g.time("RND", "RND_DT");
    let day_zero = randomized_at.map(|t| t.date_naive());
    let arm = match g.code("RND", "ARM") {
        Some("ECMO_IABP") => Some(Arm::EcmoIabp),
        Some("ECMO") => Some(Arm::Ecmo),
        _ => None,
    };
    let ecmo_start = g.time("ECMO", "START_DT");
    let inserted = g.code("IABP", "INSERTED");
    let iabp_inserted_at = if inserted == Some("Y") {
        g.time("IABP", "INSERT_DT")
    } else {
        None
    };
    let iabp_delay_min = match (ecmo_start, iabp_inserted_at) {
        (Some(s), Some(i)) => Some((i - s).num_minutes()),
        _ => None,
    };
    let iabp_delay_hours =
        iabp_delay_min.and_then(|m| Decimal::from_f64_rounded(m as f64 / 60.0, 2));
    // A local "today" in the subject's own offset (that of randomization or ECMO start).
    let offset = randomized_at
        .or(ecmo_start)
        .map(|t| *t.offset())
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
    let now_local = now.with_timezone(&offset);
    let today = now_local.date_naive();

    // ------------------------------------------------------------ the 6-hour window
    let window_passed = ecmo_start.is_some_and(|s| now_local > s + Duration::minutes(WINDOW_MIN));
    let iabp_deviation = match (arm, ecmo_start) {
        (Some(Arm::EcmoIabp), Some(_)) => match (inserted, iabp_delay_min) {
            (Some("N"), _) => {
                flags.push(flag(
                    "IABP_NEVER",
                    "IABP",
                    Some("INSERTED"),
                    "Protocol deviation: ECMO+IABP arm and the IABP was never inserted".into(),
                    "方案偏离：ECMO+IABP组未置入IABP".into(),
                ));
                Some(true)
            }
            (_, Some(m)) if m > WINDOW_MIN => {
                flags.push(flag(
                    "IABP_LATE",
                    "IABP",
                    Some("INSERT_DT"),
                    format!(
                        "Protocol deviation: IABP inserted {} after ECMO start (more than 6 h)",
                        hm(m)
                    ),
                    format!("方案偏离：IABP于ECMO启动后{}置入（超过6小时）", hm_zh(m)),
                ));
                Some(true)
            }
            (_, Some(_)) => Some(false),
            _ => {
                if window_passed {
                    flags.push(flag(
                        "IABP_NOT_RECORDED",
                        "IABP",
                        Some("INSERT_DT"),
                        "ECMO+IABP arm: 6 h have passed since ECMO start and no IABP insertion is recorded".into(),
                        "ECMO+IABP组：ECMO启动已超过6小时，尚未记录IABP置入".into(),
                    ));
                }
                None
            }
        },
        _ => None,
    };
    let crossover = match (arm, ecmo_start) {
        (Some(Arm::Ecmo), Some(s)) => {
            let limit = s + Duration::minutes(WINDOW_MIN);
            let mut starts: Vec<(String, &'static str, DateTime<FixedOffset>)> = g
                .events(&["UNLOADING_ESCALATION", "IABP_REINSERTION"])
                .into_iter()
                .map(|(k, t)| (k, "EVT_DT", t))
                .collect();
            if let Some(t) = iabp_inserted_at {
                starts.push(("IABP".into(), "INSERT_DT", t));
            }
            starts.sort_by_key(|(_, _, t)| *t);
            match starts.into_iter().find(|(_, _, t)| *t <= limit) {
                Some((form, item, t)) => {
                    let what = match g.code(&form, "ESCALATION") {
                        Some("IMPELLA") => ("Impella", "Impella"),
                        Some("ATRIAL_SEPTOSTOMY") => ("atrial septostomy", "房间隔造口术"),
                        Some(_) => ("LV vent", "左心室引流"),
                        None => ("IABP", "IABP"),
                    };
                    let m = (t - s).num_minutes();
                    flags.push(flag(
                        "CROSSOVER",
                        &form,
                        Some(item),
                        format!(
                            "Crossover: ECMO arm and mechanical unloading ({}) started {} after ECMO start (within 6 h)",
                            what.0,
                            hm(m)
                        ),
                        format!(
                            "交叉：ECMO组于ECMO启动后{}开始机械减负（{}），在6小时内",
                            hm_zh(m),
                            what.1
                        ),
                    ));
                    Some(true)
                }
                None => Some(false),
            }
        }
        _ => None,
    };

    // ------------------------------------------------------------ deaths
    let deaths = death_records(&g);
    let death = deaths.iter().min_by_key(|d| d.date);
    let death_date = death.map(|d| d.date);
    let death_time = deaths.iter().filter_map(|d| d.time).min();
    let mut distinct: Vec<NaiveDate> = deaths.iter().map(|d| d.date).collect();
    distinct.sort();
    distinct.dedup();
    if distinct.len() > 1 {
        let list: Vec<String> = deaths
            .iter()
            .map(|d| format!("{}.{} = {}", d.form, d.item, d.date))
            .collect();
        flags.push(flag(
            "DEATH_DATES_CONFLICT",
            &deaths[0].form,
            Some(deaths[0].item),
            format!("Conflicting dates of death: {}", list.join(", ")),
            format!("死亡日期不一致：{}", list.join("，")),
        ));
    }
    for d in &deaths {
        if day_zero.is_some_and(|z| d.date < z) {
            flags.push(flag(
                "DEATH_BEFORE_RANDOMIZATION",
                &d.form,
                Some(d.item),
                format!(
                    "{}.{}: the date of death {} is before randomization",
                    d.form, d.item, d.date
                ),
                format!("{}.{}：死亡日期 {} 早于随机分组", d.form, d.item, d.date),
            ));
        }
        let future = match d.time {
            Some(t) => t.with_timezone(&Utc) > now,
            None => d.date > today,
        };
        if future {
            flags.push(flag(
                "DEATH_IN_FUTURE",
                &d.form,
                Some(d.item),
                format!(
                    "{}.{}: the date of death {} is in the future",
                    d.form, d.item, d.date
                ),
                format!("{}.{}：死亡日期 {} 晚于今天", d.form, d.item, d.date),
            ));
        }
    }
    let death_day = match (death_date, day_zero) {
        (Some(d), Some(z)) => Some((d - z).num_days()),
        _ => None,
    };

    // ------------------------------------------------------------ devices
    let times = |kinds: &[&str]| -> Vec<DateTime<FixedOffset>> {
        g.events(kinds).into_iter().map(|(_, t)| t).collect()
    };
    let decannulations = times(&["ECMO_DECANNULATION"]);
    let last_decannulation = decannulations.last().copied();
    let mut cannulations = times(&["ECMO_RECANNULATION"]);
    cannulations.extend(ecmo_start);
    cannulations.sort();
    // The last decannulation of a period: a definition 1.0.0 store has no re-cannulation event,
    // so two decannulations there mean one long period (as 1.0.0 counted it).
    let ecmo = periods(&cannulations, &decannulations, death_time, true);
    let ecmo_end = if ecmo.open {
        None
    } else {
        ecmo.last_out.or(last_decannulation).or(death_time)
    };
    let days_on_ecmo = (!cannulations.is_empty() && !ecmo.open)
        .then(|| Decimal::from_f64_rounded(ecmo.minutes as f64 / 1440.0, 1))
        .flatten();
    let mut insertions = times(&["IABP_REINSERTION"]);
    insertions.extend(iabp_inserted_at);
    insertions.sort();
    let iabp = periods(&insertions, &times(&["IABP_REMOVAL"]), death_time, false);
    let (iabp_open, iabp_last_out) = (iabp.open, iabp.last_out);
    let days_on_iabp = (!insertions.is_empty() && !iabp_open)
        .then(|| Decimal::from_f64_rounded(iabp.minutes as f64 / 1440.0, 1))
        .flatten();

    // ------------------------------------------------------------ stays and weaning
    let span = |a: Option<NaiveDate>, b: Option<NaiveDate>| match (a, b) {
        (Some(a), Some(b)) if b >= a => Some((b - a).num_days()),
        _ => None,
    };
    let icu_los_days = span(g.date("DIS", "ICU_ADM_DATE"), g.date("DIS", "ICU_DIS_DATE"));
    let hospital_los_days = span(g.date("DIS", "HOSP_ADM_DATE"), g.date("DIS", "DIS_DATE"));
    let successful_weaning = last_decannulation.map(|t| weaning_after(&g, &deaths, t));

    // ------------------------------------------------------------ day 30 and the endpoint
    let day30 = day_zero.map(|z| z + Duration::days(30));
    let dead_by_30 = death_day.is_some_and(|d| (0..=30).contains(&d));
    // The latest date the patient is known alive.
    let said_alive = g.code("D30", "VITAL_STATUS") == Some("ALIVE");
    let last_alive = [
        said_alive.then(|| g.date("D30", "CONTACT_DATE")).flatten(),
        (g.code("DIS", "STATUS") == Some("ALIVE"))
            .then(|| g.date("DIS", "DIS_DATE"))
            .flatten(),
    ]
    .into_iter()
    .flatten()
    // Any event but a death, at its own date.
    .chain(
        g.repeats("EVT")
            .filter_map(|(_, _, v)| match (v.get("EVT_TYPE"), v.get("EVT_DT")) {
                (Some(Value::Code(c)), Some(Value::DateTime(t))) if c != "DEATH" => {
                    Some(t.date_naive())
                }
                _ => None,
            }),
    )
    .chain(g.repeats("DLY").filter_map(|(_, k, _)| g.date(k, "DATE")))
    .max();
    let alive_at_30 = !dead_by_30
        && (death_day.is_some_and(|d| d > 30)
            || day30.is_some_and(|d30| last_alive.is_some_and(|d| d >= d30)));
    // Not alive at day 30 means every date known alive (if any) is before it.
    if said_alive
        && !alive_at_30
        && !dead_by_30
        && let Some(z) = day_zero
    {
        let day = last_alive.map(|d| (d - z).num_days());
        let (en, zh) = match day {
            Some(day) => (
                format!(
                    "Known alive only up to day {day}: the day-30 vital status needs a contact on or after day 30; the endpoint stays unknown"
                ),
                format!(
                    "仅知第{day}天存活：30天生存状态需第30天或之后的随访确认；主要终点暂为未知"
                ),
            ),
            None => (
                "Vital status alive without a contact date: the endpoint stays unknown".to_string(),
                "生存状态为存活但无随访日期：主要终点暂为未知".to_string(),
            ),
        };
        flags.push(flag(
            "ALIVE_ONLY_BEFORE_DAY30",
            "D30",
            Some("CONTACT_DATE"),
            en,
            zh,
        ));
    }
    let (primary_endpoint, day30_status, days_alive_to_day30) = if dead_by_30 {
        (Answer::Yes, Day30Status::Dead, death_day)
    } else if alive_at_30 && day_zero.is_some() {
        (Answer::No, Day30Status::Alive, Some(30))
    } else {
        (Answer::Unknown, Day30Status::Unknown, None)
    };

    flags.extend(exclusions_in_data(&g));
    if randomized_at.is_some()
        && let Some(con) = values.get("CON")
    {
        for (item, en, zh) in crate::eligibility::consent_problems(con) {
            flags.push(flag("CONSENT_RECORD", "CON", Some(item), en, zh));
        }
    }

    // ------------------------------------------------------------ visit windows
    if let (Some(z), Some(c)) = (day_zero, g.date("D30", "CONTACT_DATE")) {
        let day = (c - z).num_days();
        if !(30..=37).contains(&day) {
            flags.push(flag(
                "D30_OUTSIDE_WINDOW",
                "D30",
                Some("CONTACT_DATE"),
                format!("Day-30 contact on day {day}: outside its window (day 30 to day 37)"),
                format!("30天随访在第{day}天：超出时间窗（第30–37天）"),
            ));
        }
    }

    // ------------------------------------------------------------ daily logs on support
    let ecmo_running = ecmo_start.is_some() && ecmo_end.is_none();
    let support_end = if ecmo_running || iabp_open {
        None
    } else {
        [ecmo_end, iabp_last_out].into_iter().flatten().max()
    };
    let last_log_day = day_zero.map(|z| {
        let mut last = match support_end {
            Some(t) => ((t.date_naive() - z).num_days() + 1).min(30),
            None => 30,
        };
        if let Some(d) = death_day {
            last = last.min(d);
        }
        last
    });
    if let (Some(z), Some(last_allowed)) = (day_zero, last_log_day) {
        // Due so far: up to yesterday while a device runs (today's log is not late yet).
        let yesterday = (today - z).num_days() - 1;
        let last = if ecmo_start.is_none() {
            -1
        } else {
            last_allowed.min(yesterday)
        };
        let present: Vec<u32> = g
            .repeats("DLY")
            .filter(|(_, _, v)| !v.is_empty())
            .map(|(n, _, _)| n)
            .collect();
        for day in 0..=last {
            if !present.contains(&(day as u32)) {
                flags.push(flag(
                    "DAILY_LOG_MISSING",
                    &format!("DLY#{day}"),
                    None,
                    format!(
                        "Daily log missing for day {day} ({}), a day on support",
                        z + Duration::days(day)
                    ),
                    format!(
                        "缺少第{day}天（{}）的每日记录（当日在辅助中）",
                        z + Duration::days(day)
                    ),
                ));
            }
        }
    }

    SubjectOutcome {
        randomized_at,
        day_zero,
        arm,
        ecmo_start,
        iabp_inserted_at,
        iabp_delay_min,
        iabp_delay_hours,
        iabp_deviation,
        crossover,
        ecmo_end,
        support_end,
        last_log_day,
        days_on_ecmo,
        days_on_iabp,
        icu_los_days,
        hospital_los_days,
        successful_weaning,
        death_date,
        death_day,
        day30_status,
        primary_endpoint,
        days_alive_to_day30,
        flags,
    }
}

/// An answer on a later form that contradicts the eligibility of a randomized patient.
#[derive(Debug, Clone, Copy)]
pub struct ExclusionInData {
    /// Form and item holding the answer.
    pub form: &'static str,
    /// Item.
    pub item: &'static str,
    /// The answers that break the criterion.
    pub codes: &'static [&'static str],
    /// The criterion (`E1`, `I3`).
    pub criterion: &'static str,
    /// What the answer shows, in English.
    pub en: &'static str,
    /// The same in Chinese.
    pub zh: &'static str,
}

/// What the echo, the cannulation or the history can show after randomization that the
/// screening checklist ([`crate::eligibility`], judged before it) would have excluded.
pub const EXCLUSIONS_IN_DATA: &[ExclusionInData] = &[
    ExclusionInData {
        form: "BAS",
        item: "AR_GRADE",
        codes: &["MODERATE", "MODERATE_SEVERE", "SEVERE"],
        criterion: "E1",
        en: "moderate or worse aortic regurgitation",
        zh: "中度及以上主动脉瓣反流",
    },
    ExclusionInData {
        form: "BAS",
        item: "SHOCK_CAUSE",
        codes: &["POST_CARDIOTOMY"],
        criterion: "E3",
        en: "post-cardiotomy shock after a non-CABG operation",
        zh: "非CABG心脏手术后心源性休克",
    },
    ExclusionInData {
        form: "ECMO",
        item: "CONFIG",
        codes: &["CENTRAL"],
        criterion: "I3",
        en: "central, not peripheral, VA-ECMO",
        zh: "中心插管而非外周VA-ECMO",
    },
];

/// `EXCLUSION_IN_DATA` flags of a randomized subject (see [`EXCLUSIONS_IN_DATA`]).
fn exclusions_in_data(g: &Get) -> Vec<ProtocolFlag> {
    if g.time("RND", "RND_DT").is_none() {
        return Vec::new();
    }
    EXCLUSIONS_IN_DATA
        .iter()
        .filter_map(|x| {
            let (form, item, criterion) = (x.form, x.item, x.criterion);
            let code = g.code(form, item).filter(|c| x.codes.contains(c))?;
            Some(flag(
                "EXCLUSION_IN_DATA",
                form,
                Some(item),
                format!(
                    "Randomized, but {form}.{item} = {code} shows {} (eligibility criterion {criterion}): review eligibility and record a protocol deviation",
                    x.en
                ),
                format!(
                    "已随机，但{form}.{item} = {code} 提示{}（入选/排除标准 {criterion}）：请复核入选资格并记录方案偏离",
                    x.zh
                ),
            ))
        })
        .collect()
}

/// Flags for derived values outside the usual (soft) range their item declares, e.g. a pulse
/// pressure below 10 mmHg on a daily log (a sign of LV distension): the code is
/// `DERIVED_OUT_OF_RANGE`, the reason names the instance, item, value, range and the item's
/// help. Driven by the study definition; typed values get the same check at save instead.
pub fn derived_range_flags(
    study: &crate::study::Study,
    values: &SubjectValues,
) -> Vec<ProtocolFlag> {
    let mut out = Vec::new();
    for (instance, own) in values {
        let form_id = instance.split('#').next().unwrap_or(instance);
        let Some(form) = study.form(form_id) else {
            continue;
        };
        let derived = crate::derive::derive_form(form, own);
        for item in &form.items {
            let (Some(v), Some(soft)) = (derived.get(&item.id), item.soft) else {
                continue;
            };
            let Some(d) = v.as_decimal() else { continue };
            if soft.contains(d) {
                continue;
            }
            let unit = item
                .unit
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default();
            let (help_en, help_zh) = item
                .help
                .as_ref()
                .map(|h| (format!(" {}", h.en), h.zh.clone()))
                .unwrap_or_default();
            out.push(flag(
                "DERIVED_OUT_OF_RANGE",
                instance,
                Some(&item.id),
                format!(
                    "{instance} {} ({}) = {d}{unit}: outside the usual range {soft}{unit}.{help_en}",
                    item.id, item.label.en
                ),
                format!(
                    "{instance} {}（{}）= {d}{unit}：超出常见范围 {soft}{unit}。{help_zh}",
                    item.id, item.label.zh
                ),
            ));
        }
    }
    out
}

/// The pseudo-form whose items a rule of the study definition may compare with
/// (`right = "SUBJECT.LOG_DATE"`): values of the subject as a whole, from [`subject_item`].
pub const SUBJECT: &str = "SUBJECT";

/// The items of [`SUBJECT`]: `DAY0` (date of randomization), `DAY30`, `DAY37`, `LOG_DATE`
/// (for a daily form instance `DLY#N`: day 0 + N), `LAST_LOG_DATE` (the last date a daily log
/// is allowed: the day after the last device came out, at most day 30 and the day of death).
pub const SUBJECT_ITEMS: &[&str] = &["DAY0", "DAY30", "DAY37", "LOG_DATE", "LAST_LOG_DATE"];

/// The repeating form whose instances no [`SUBJECT`] item depends on: day 0 and the log dates
/// come from randomization, ECMO, IABP, the events, discharge and day 30, never from the daily
/// logs. The daily logs are most of a subject's values (30 of some 35 form instances), so a
/// save computes [`subject_item`] from an outcome read without them; a test holds this true.
pub const SUBJECT_ITEMS_IGNORE_FORM: &str = "DLY";

/// The type of a [`SUBJECT`] item (all are dates), for the definition's checks.
pub fn subject_item_type(item: &str) -> Option<crate::study::ItemType> {
    SUBJECT_ITEMS
        .contains(&item)
        .then_some(crate::study::ItemType::Date)
}

/// The value of a [`SUBJECT`] item as seen from the form instance `instance`.
/// Day 0 is the date of randomization, or of the ECMO start while randomization is not
/// recorded (as in the schedule, which numbers the daily logs); `LAST_LOG_DATE` needs
/// randomization.
pub fn subject_item(item: &str, instance: &str, outcome: &SubjectOutcome) -> Option<Value> {
    let z = outcome
        .day_zero
        .or_else(|| outcome.ecmo_start.map(|t| t.date_naive()))?;
    let day = match item {
        "DAY0" => 0,
        "DAY30" => 30,
        "DAY37" => 37,
        "LOG_DATE" => instance.split_once('#')?.1.parse().ok()?,
        "LAST_LOG_DATE" => {
            outcome.day_zero?;
            outcome.last_log_day?
        }
        _ => return None,
    };
    Some(Value::Date(z + Duration::days(day)))
}

/// The value of a cross-form derived item (`derived = "iabp_delay"` and the like) of the form
/// instance `instance`, from the subject's outcome; `None` when not known or not one of them.
pub fn derive_item(
    derivation: &str,
    instance: &str,
    values: &SubjectValues,
    outcome: &SubjectOutcome,
) -> Option<Value> {
    let yes_no = |b: bool| Value::Code(if b { "Y" } else { "N" }.into());
    match derivation {
        "iabp_delay" => outcome.iabp_delay_min.map(Value::Int),
        "iabp_deviation" => outcome.iabp_deviation.map(yes_no),
        "crossover" => outcome.crossover.map(yes_no),
        "icu_los" => outcome.icu_los_days.map(Value::Int),
        "hospital_los" => outcome.hospital_los_days.map(Value::Int),
        "primary_endpoint" => outcome
            .primary_endpoint
            .code()
            .map(|c| Value::Code(c.into())),
        "eligible" => {
            let scr = values.get(instance)?;
            Some(yes_no(crate::eligibility::assess(scr).eligible))
        }
        "ineligibility_reasons" => {
            let scr = values.get(instance)?;
            let verdict = crate::eligibility::assess(scr);
            (!verdict.eligible).then(|| Value::Text(verdict.summary()))
        }
        "successful_weaning" => {
            let g = Get(values);
            if g.code(instance, "EVT_TYPE") != Some("ECMO_DECANNULATION") {
                return None;
            }
            let t = g.time(instance, "EVT_DT")?;
            let deaths = death_records(&g);
            weaning_after(&g, &deaths, t)
                .code()
                .map(|c| Value::Code(c.into()))
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod tests;

/// Every derived item of one form instance, as every output shows it (the form on screen,
/// `ecrf form show`, the printed CRF and each export all call this one function): those
/// computed from its own items ([`crate::derive::derive_form`]) and those that need the
/// subject's other forms ([`derive_item`]). What is derived, and where, is the study
/// definition's `derived = …`.
///
/// The missing-data convention: once the instance holds a typed value, a derived item that is
/// asked (its `ask_when` holds) but cannot be computed is a missing-data code rather than
/// nothing: `@NA` when the derivation does not apply to this subject (see
/// [`derivation_not_applicable`]), else `@UNK` (an input is missing, not a number, or not yet
/// known). An instance with no typed value shows only what can be computed.
pub fn derive_instance(
    form: &crate::study::FormDef,
    instance: &str,
    values: &SubjectValues,
    outcome: &SubjectOutcome,
) -> BTreeMap<String, Value> {
    let empty = BTreeMap::new();
    let own = values.get(instance).unwrap_or(&empty);
    let mut out = crate::derive::derive_form(form, own);
    for item in &form.items {
        let Some(d) = item.derived.as_deref() else {
            continue;
        };
        if out.contains_key(&item.id) {
            continue;
        }
        if let Some(v) = derive_item(d, instance, values, outcome) {
            out.insert(item.id.clone(), v);
        } else if !own.is_empty() && crate::check::is_asked(item, own) {
            let code = if derivation_not_applicable(d, instance, values, outcome) {
                crate::MissingCode::NotApplicable
            } else {
                crate::MissingCode::Unknown
            };
            out.insert(item.id.clone(), Value::Missing(code));
        }
    }
    out
}

/// True when a derivation that gave no value does not apply to this subject, rather than
/// being unknown: the 6-hour deviation in the ECMO arm, crossover in the ECMO+IABP arm, the
/// IABP delay when no IABP was inserted, the reasons not eligible of an eligible patient.
pub fn derivation_not_applicable(
    derivation: &str,
    instance: &str,
    values: &SubjectValues,
    outcome: &SubjectOutcome,
) -> bool {
    let g = Get(values);
    match derivation {
        "iabp_deviation" => outcome.arm == Some(Arm::Ecmo),
        "crossover" => outcome.arm == Some(Arm::EcmoIabp),
        "iabp_delay" => g.code("IABP", "INSERTED") == Some("N"),
        "ineligibility_reasons" => values
            .get(instance)
            .is_some_and(|scr| crate::eligibility::assess(scr).eligible),
        _ => false,
    }
}

/// The derived items of every form instance of a subject that holds a typed value
/// ([`derive_instance`] for each, with the study definition's forms): what the exports add to
/// the typed values. Instances of forms the definition does not know are left out.
pub fn derive_subject(
    study: &crate::study::Study,
    values: &SubjectValues,
    now: DateTime<Utc>,
) -> SubjectValues {
    let outcome = subject_outcome(values, now);
    values
        .iter()
        .filter(|(_, own)| !own.is_empty())
        .filter_map(|(instance, _)| {
            let form = study.form(instance.split('#').next().unwrap_or(instance))?;
            let derived = derive_instance(form, instance, values, &outcome);
            (!derived.is_empty()).then(|| (instance.clone(), derived))
        })
        .collect()
}
