//! The subject-level analysis file: one row per randomized subject, for the primary analysis.
//!
//! Owns only the layout (columns, labels, codes). Every value is taken from
//! `ecrf_core::outcome::subject_outcome`, the one derivation of the trial's outcomes, never
//! computed a second time here. Written as `subjects.csv` (and `.dta`, `.sav`, `.xpt`) beside
//! the form files, from a [`Table`] like any form.

use chrono::{DateTime, Utc};
use ecrf_core::outcome::{Answer, Day30Status, SubjectOutcome, subject_outcome};
use ecrf_core::{Study, Text, Value};

use crate::source::TrialData;
use crate::table::{Cell, CodedValue, Column, ColumnKind, Table};

/// The table's name (file `subjects.*`).
pub const NAME: &str = "SUBJECTS";

fn t(en: &str, zh: &str) -> Text {
    Text {
        en: en.into(),
        zh: zh.into(),
    }
}

fn coded(pairs: &[(i32, &str, &str, &str)]) -> ColumnKind {
    ColumnKind::Coded(
        pairs
            .iter()
            .map(|(n, code, en, zh)| CodedValue {
                number: *n,
                code: (*code).into(),
                label: t(en, zh),
            })
            .collect(),
    )
}

fn yes_no_unknown() -> ColumnKind {
    coded(&[
        (1, "Y", "Yes", "是"),
        (0, "N", "No", "否"),
        (9, "U", "Unknown", "不详"),
    ])
}

fn col(name: &str, label: Text, kind: ColumnKind, unit: Option<&str>) -> Column {
    Column {
        name: name.into(),
        label,
        kind,
        item: None,
        choice: None,
        unit: unit.map(str::to_string),
        missing: Vec::new(),
    }
}

/// The columns of the analysis file.
pub fn columns(study: &Study) -> Vec<Column> {
    let arms = study
        .form("RND")
        .and_then(|f| f.item("ARM"))
        .map(|i| crate::table::coded_values(study, i))
        .unwrap_or_default();
    vec![
        col(
            "SUBJECT",
            t("Screening number", "筛选号"),
            ColumnKind::Text,
            None,
        ),
        col(
            "SUBJ_NO",
            t("Subject number", "受试者编号"),
            ColumnKind::Text,
            None,
        ),
        col("SITE", t("Site", "中心"), ColumnKind::Text, None),
        col(
            "ARM",
            t("Randomized arm", "随机分组"),
            ColumnKind::Coded(arms),
            None,
        ),
        col(
            "RND_DT",
            t("Randomization date-time", "随机化时间"),
            ColumnKind::DateTime,
            None,
        ),
        col(
            "ECMO_START",
            t("ECMO start", "ECMO启动时间"),
            ColumnKind::DateTime,
            None,
        ),
        col(
            "IABP_INSERT",
            t("IABP insertion", "IABP置入时间"),
            ColumnKind::DateTime,
            None,
        ),
        col(
            "IABP_DELAY_H",
            t("IABP delay after ECMO start", "ECMO启动至IABP置入时间"),
            ColumnKind::Decimal,
            Some("h"),
        ),
        col(
            "DEVIATION",
            t(
                "6-hour protocol deviation (ECMO+IABP arm)",
                "6小时方案偏离（ECMO+IABP组）",
            ),
            yes_no_unknown(),
            None,
        ),
        col(
            "CROSSOVER",
            t(
                "Crossover to unloading within 6 h (ECMO arm)",
                "6小时内交叉至减负治疗（ECMO组）",
            ),
            yes_no_unknown(),
            None,
        ),
        col(
            "DAY30_STATUS",
            t("Vital status at day 30", "第30天生存状态"),
            coded(&[
                (1, "ALIVE", "Alive", "存活"),
                (2, "DEAD", "Dead", "死亡"),
                (9, "UNKNOWN", "Unknown", "不详"),
            ]),
            None,
        ),
        col(
            "PRIMARY_ENDPOINT",
            t(
                "Death from any cause within 30 days (primary endpoint)",
                "30天内全因死亡（主要终点）",
            ),
            yes_no_unknown(),
            None,
        ),
        col(
            "DEATH_DATE",
            t("Date of death", "死亡日期"),
            ColumnKind::Date,
            None,
        ),
        col(
            "DAYS_ALIVE",
            t(
                "Days alive from randomization to day 30",
                "随机化至第30天存活天数",
            ),
            ColumnKind::Integer,
            Some("d"),
        ),
        col(
            "FLAGS",
            t("Protocol flags", "方案标记"),
            ColumnKind::Text,
            None,
        ),
    ]
}

fn answer(a: Option<bool>) -> Cell {
    match a {
        Some(true) => Cell::Int(1),
        Some(false) => Cell::Int(0),
        None => Cell::Empty,
    }
}

fn time(t: Option<DateTime<chrono::FixedOffset>>) -> Cell {
    t.map(Cell::DateTime).unwrap_or(Cell::Empty)
}

/// The row of one subject from its outcome.
fn row(
    study: &Study,
    subject: &str,
    site: &str,
    subj_no: Option<&Value>,
    o: &SubjectOutcome,
) -> Vec<Cell> {
    let arm_code = o.arm.map(|a| match a {
        ecrf_core::outcome::Arm::EcmoIabp => "ECMO_IABP",
        ecrf_core::outcome::Arm::Ecmo => "ECMO",
    });
    let arm = match (&columns(study)[3].kind, arm_code) {
        (ColumnKind::Coded(codes), Some(c)) => codes
            .iter()
            .find(|k| k.code == c)
            .map(|k| Cell::Int(i64::from(k.number)))
            .unwrap_or(Cell::Empty),
        _ => Cell::Empty,
    };
    vec![
        Cell::Text(subject.into()),
        match subj_no {
            Some(Value::Text(t)) => Cell::Text(t.clone()),
            _ => Cell::Empty,
        },
        Cell::Text(site.into()),
        arm,
        time(o.randomized_at),
        time(o.ecmo_start),
        time(o.iabp_inserted_at),
        o.iabp_delay_hours.map(Cell::Dec).unwrap_or(Cell::Empty),
        answer(o.iabp_deviation),
        answer(o.crossover),
        Cell::Int(match o.day30_status {
            Day30Status::Alive => 1,
            Day30Status::Dead => 2,
            Day30Status::Unknown => 9,
        }),
        Cell::Int(match o.primary_endpoint {
            Answer::Yes => 1,
            Answer::No => 0,
            Answer::Unknown => 9,
        }),
        o.death_date.map(Cell::Date).unwrap_or(Cell::Empty),
        o.days_alive_to_day30.map(Cell::Int).unwrap_or(Cell::Empty),
        Cell::Text(
            o.flags
                .iter()
                .map(|f| f.code.clone())
                .collect::<Vec<_>>()
                .join(" "),
        ),
    ]
}

/// The analysis table: randomized subjects only, in the order of the data. `now` is the clock
/// the derivation judges "not yet day 30" by.
pub fn subject_table(study: &Study, data: &TrialData, now: DateTime<Utc>) -> Table {
    let mut rows = Vec::new();
    for s in &data.subjects {
        let Some(values) = data.values.get(&s.subject) else {
            continue;
        };
        let outcome = subject_outcome(values, now);
        if outcome.arm.is_none() {
            continue;
        }
        let subj_no = values.get("RND").and_then(|v| v.get("SUBJ_NO"));
        rows.push(row(study, &s.subject, &s.site, subj_no, &outcome));
    }
    Table {
        form: NAME.into(),
        name: t("Subject-level analysis file", "受试者水平分析数据"),
        columns: columns(study),
        rows,
    }
}
