//! Edit checks: is what a nurse typed acceptable, and what must she confirm?
//!
//! Owns parsing typed text into an item's [`Value`] and every check of a save: item type,
//! missing-data codes, questions not asked, hard ranges (refused), soft ranges (warned), and the
//! study's rules (date order, cross-form comparisons, "not in the future", conditional
//! requirements). Pure: the caller passes the current values, the other forms and the clock.
//! Invariant: only items changed by a save are judged, so a value saved earlier with a confirmed
//! warning never blocks an unrelated later save.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset, Utc};

use crate::study::{FormDef, ItemDef, ItemRef, ItemType, Rule, RuleKind, Severity, Study, Text};
use crate::value::{Decimal, MissingCode, Value, parse_date, parse_datetime};

/// One broken check: where, which rule, how bad, and the words for the user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Form id.
    pub form: String,
    /// Item id the finding is shown beside.
    pub item: String,
    /// Rule id, or the built-in check (`type`, `hard_range`, `soft_range`, `missing_code`,
    /// `not_asked`, `derived`, `required`).
    pub rule: String,
    /// Hard (refused) or soft (needs a confirmation).
    pub severity: Severity,
    /// What the user is told, in both languages.
    pub message: Text,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message.en)
    }
}

/// The verdict on a save.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SaveCheck {
    /// Hard findings: the save is refused while any exists.
    pub errors: Vec<Finding>,
    /// Soft findings: the save needs an explicit confirmation, and they are kept with it.
    pub warnings: Vec<Finding>,
}

impl SaveCheck {
    fn push(&mut self, f: Finding) {
        match f.severity {
            Severity::Hard => self.errors.push(f),
            Severity::Soft => self.warnings.push(f),
        }
    }
}

fn finding(
    form: &FormDef,
    item: &ItemDef,
    rule: &str,
    severity: Severity,
    en: String,
    zh: String,
) -> Finding {
    Finding {
        form: form.id.clone(),
        item: item.id.clone(),
        rule: rule.into(),
        severity,
        message: Text { en, zh },
    }
}

fn unit_suffix(item: &ItemDef) -> String {
    item.unit
        .as_deref()
        .map(|u| format!(" {u}"))
        .unwrap_or_default()
}

/// Reads what was typed into an item. An empty text clears the item (`Ok(None)`); `@ND`, `@UNK`
/// and `@NA` are the missing-data codes. Date-times without an offset take `default_offset`.
// A refused input is rare and its whole finding is what the user reads: no need to box it.
#[allow(clippy::result_large_err)]
pub fn parse_input(
    study: &Study,
    form: &FormDef,
    item: &ItemDef,
    text: &str,
    default_offset: Option<FixedOffset>,
) -> Result<Option<Value>, Finding> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let bad = |en: String, zh: String| finding(form, item, "type", Severity::Hard, en, zh);
    let head_en = format!("{} {} ({}) = {:?}", form.id, item.id, item.label.en, t);
    let head_zh = format!("{} {}（{}）= {:?}", form.id, item.id, item.label.zh, t);
    if let Some(code) = t.strip_prefix('@') {
        return match MissingCode::from_code(code) {
            Some(m) if item.missing.contains(&m) => Ok(Some(Value::Missing(m))),
            Some(m) => Err(finding(
                form,
                item,
                "missing_code",
                Severity::Hard,
                format!(
                    "{head_en}: \"{}\" is not allowed for this item",
                    m.label_en()
                ),
                format!("{head_zh}：此项不允许“{}”", m.label_zh()),
            )),
            None => Err(bad(
                format!("{head_en}: unknown missing-data code (use @ND, @UNK or @NA)"),
                format!("{head_zh}：未知的缺失代码（请用 @ND、@UNK 或 @NA）"),
            )),
        };
    }
    let value = match item.item_type {
        ItemType::Integer => t.parse::<i64>().map(Value::Int).map_err(|_| {
            bad(
                format!("{head_en}: not a whole number"),
                format!("{head_zh}：不是整数"),
            )
        })?,
        ItemType::Decimal => {
            let d: Decimal = t
                .parse()
                .map_err(|e| bad(format!("{head_en}: {e}"), format!("{head_zh}：不是数字")))?;
            if let Some(max) = item.decimals
                && d.scale() > max
            {
                return Err(bad(
                    format!("{head_en}: at most {max} digit(s) after the decimal point"),
                    format!("{head_zh}：小数点后最多 {max} 位"),
                ));
            }
            Value::Dec(d)
        }
        ItemType::Date => Value::Date(parse_date(t).map_err(|e| {
            bad(
                format!("{head_en}: {e}"),
                format!("{head_zh}：日期格式应为 2026-03-01"),
            )
        })?),
        ItemType::DateTime => Value::DateTime(parse_datetime(t, default_offset).map_err(|e| {
            bad(
                format!("{head_en}: {e}"),
                format!("{head_zh}：日期时间格式应为 2026-03-01T08:30+08:00"),
            )
        })?),
        ItemType::Choice | ItemType::YesNo | ItemType::YesNoUnk => {
            Value::Code(pick_code(study, form, item, t, &head_en, &head_zh)?)
        }
        ItemType::MultiChoice => {
            let mut chosen = BTreeSet::new();
            for part in t.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                chosen.insert(pick_code(study, form, item, part, &head_en, &head_zh)?);
            }
            // Code-list order, so one choice has one spelling.
            let ordered = study
                .codes_for(item)
                .into_iter()
                .map(|c| c.code)
                .filter(|c| chosen.contains(c))
                .collect();
            Value::Codes(ordered)
        }
        ItemType::Text => {
            let n = t.chars().count();
            if n > item.max_length {
                return Err(bad(
                    format!(
                        "{} {}: text of {n} characters is longer than the {} allowed",
                        form.id, item.id, item.max_length
                    ),
                    format!(
                        "{} {}：文字 {n} 字，超过上限 {} 字",
                        form.id, item.id, item.max_length
                    ),
                ));
            }
            Value::Text(t.to_string())
        }
    };
    Ok(Some(value))
}

#[allow(clippy::result_large_err)]
fn pick_code(
    study: &Study,
    form: &FormDef,
    item: &ItemDef,
    t: &str,
    head_en: &str,
    head_zh: &str,
) -> Result<String, Finding> {
    let codes = study.codes_for(item);
    codes
        .iter()
        .find(|c| {
            c.code.eq_ignore_ascii_case(t) || c.label.en.eq_ignore_ascii_case(t) || c.label.zh == t
        })
        .map(|c| c.code.clone())
        .ok_or_else(|| {
            let list: Vec<_> = codes
                .iter()
                .map(|c| format!("{} {}", c.code, c.label.en))
                .collect();
            let list_zh: Vec<_> = codes
                .iter()
                .map(|c| format!("{} {}", c.code, c.label.zh))
                .collect();
            finding(
                form,
                item,
                "type",
                Severity::Hard,
                format!("{head_en}: not one of the answers ({})", list.join(", ")),
                format!("{head_zh}：不是可选答案（{}）", list_zh.join("，")),
            )
        })
}

/// Is an item asked, given the form's values? (Its `ask_when` condition, if any.)
pub fn is_asked(item: &ItemDef, values: &BTreeMap<String, Value>) -> bool {
    match &item.ask_when {
        None => true,
        Some(c) => condition_holds(&c.item, &c.is, values),
    }
}

fn condition_holds(item: &str, is: &[String], values: &BTreeMap<String, Value>) -> bool {
    values.get(item).is_some_and(|v| code_in(v, is))
}

/// True when a coded value is (or, multiple choice, includes) one of `is`.
fn code_in(v: &Value, is: &[String]) -> bool {
    match v {
        Value::Code(c) => is.contains(c),
        Value::Codes(cs) => cs.iter().any(|c| is.contains(c)),
        _ => false,
    }
}

/// Judges a save. `proposed` is the form instance's values as they would be after the save,
/// `changed` the items this save touches, `other` reads an item of another (once-only) form of
/// the same subject, and `now` is the clock for "not in the future".
pub fn check_save(
    form: &FormDef,
    proposed: &BTreeMap<String, Value>,
    changed: &BTreeSet<String>,
    other: &dyn Fn(&str, &str) -> Option<Value>,
    now: DateTime<Utc>,
) -> SaveCheck {
    let mut out = SaveCheck::default();
    for id in changed {
        let Some(item) = form.item(id) else { continue };
        let Some(v) = proposed.get(id) else { continue };
        check_item(form, item, v, proposed, &mut out);
    }
    for rule in &form.rules {
        // A conditional requirement is about completeness (see `missing_required`), never a
        // reason to refuse a partial save: a nurse saves what she has and comes back.
        if matches!(rule.kind, RuleKind::RequiredIf { .. }) {
            continue;
        }
        let touches = rule.local_items().iter().any(|i| changed.contains(*i));
        if touches && let Some(f) = check_rule(form, rule, proposed, other, now) {
            out.push(f);
        }
    }
    out
}

fn check_item(
    form: &FormDef,
    item: &ItemDef,
    v: &Value,
    values: &BTreeMap<String, Value>,
    out: &mut SaveCheck,
) {
    if item.derived.is_some() {
        out.push(finding(
            form,
            item,
            "derived",
            Severity::Hard,
            format!(
                "{} {} is calculated by the app and cannot be typed",
                form.id, item.id
            ),
            format!("{} {} 由系统计算，不能手工录入", form.id, item.id),
        ));
        return;
    }
    if !is_asked(item, values) {
        let cond = item
            .ask_when
            .as_ref()
            .map(|c| format!("{} is {}", c.item, c.is.join("/")))
            .unwrap_or_default();
        out.push(finding(
            form,
            item,
            "not_asked",
            Severity::Hard,
            format!("{} {} is only asked when {cond}", form.id, item.id),
            format!("{} {} 仅在 {cond} 时填写", form.id, item.id),
        ));
        return;
    }
    if let Value::Missing(m) = v {
        if !item.missing.contains(m) {
            out.push(finding(
                form,
                item,
                "missing_code",
                Severity::Hard,
                format!(
                    "{} {}: \"{}\" is not allowed for this item",
                    form.id,
                    item.id,
                    m.label_en()
                ),
                format!("{} {}：此项不允许“{}”", form.id, item.id, m.label_zh()),
            ));
        }
        return;
    }
    let Some(d) = v.as_decimal() else { return };
    let unit = unit_suffix(item);
    if let Some(h) = item.hard
        && !h.contains(d)
    {
        out.push(finding(
            form,
            item,
            "hard_range",
            Severity::Hard,
            format!(
                "{} {} ({}) = {d}{unit}: outside the possible range {h}{unit}",
                form.id, item.id, item.label.en
            ),
            format!(
                "{} {}（{}）= {d}{unit}：超出可能范围 {h}{unit}",
                form.id, item.id, item.label.zh
            ),
        ));
        return;
    }
    if let Some(s) = item.soft
        && !s.contains(d)
    {
        out.push(finding(
            form,
            item,
            "soft_range",
            Severity::Soft,
            format!(
                "{} {} ({}) = {d}{unit}: outside the usual range {s}{unit}; please confirm",
                form.id, item.id, item.label.en
            ),
            format!(
                "{} {}（{}）= {d}{unit}：超出常见范围 {s}{unit}，请确认",
                form.id, item.id, item.label.zh
            ),
        ));
    }
}

fn check_rule(
    form: &FormDef,
    rule: &Rule,
    values: &BTreeMap<String, Value>,
    other: &dyn Fn(&str, &str) -> Option<Value>,
    now: DateTime<Utc>,
) -> Option<Finding> {
    let get = |r: &ItemRef| -> Option<Value> {
        match &r.form {
            None => values.get(&r.item).cloned(),
            Some(f) => other(f, &r.item),
        }
    };
    if let Some(w) = &rule.when {
        let holds = match w.item.split_once('.') {
            // `RND.ARM is ECMO_IABP`: another once-only form's answer.
            Some((f, i)) => other(f, i).is_some_and(|v| code_in(&v, &w.is)),
            None => condition_holds(&w.item, &w.is, values),
        };
        if !holds {
            return None;
        }
    }
    let make = |item: &str, detail: String| Finding {
        form: form.id.clone(),
        item: item.to_string(),
        rule: rule.id.clone(),
        severity: rule.severity,
        message: Text {
            en: format!("{} {}: {}{detail}", form.id, item, rule.message.en),
            zh: format!("{} {}：{}{detail}", form.id, item, rule.message.zh),
        },
    };
    match &rule.kind {
        RuleKind::Compare { left, op, right } => {
            let (a, b) = (get(left)?, get(right)?);
            let ord = compare_values(&a, &b)?;
            if op.holds(ord) {
                return None;
            }
            // Shown beside the side that lives in this form.
            let at = if left.form.is_none() {
                &left.item
            } else {
                &right.item
            };
            Some(make(at, format!(" ({left} = {a}, {right} = {b})")))
        }
        RuleKind::NotFuture { item } => {
            let v = values.get(item)?;
            let future = match v {
                Value::DateTime(t) => t.with_timezone(&Utc) > now,
                // A date is in the future only when it is after today everywhere on Earth.
                Value::Date(d) => *d > (now + chrono::Duration::hours(14)).date_naive(),
                _ => false,
            };
            future.then(|| make(item, format!(" ({item} = {v})")))
        }
        RuleKind::RequiredIf { .. } => None,
    }
}

/// Orders two values of comparable kinds: numbers by value, dates and date-times by local time
/// (a date against a date-time compares calendar dates). `None` when not comparable or missing.
pub fn compare_values(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    if let (Some(x), Some(y)) = (a.as_decimal(), b.as_decimal()) {
        return Some(x.cmp(&y));
    }
    if let (Value::DateTime(x), Value::DateTime(y)) = (a, b) {
        return Some(x.cmp(y));
    }
    let (da, _) = a.as_local_time()?;
    let (db, _) = b.as_local_time()?;
    Some(da.cmp(&db))
}

/// Items still needed for the form to be complete: required and asked, or required by a rule
/// whose condition holds; and not filled in (a missing-data code counts as filled in).
pub fn missing_required<'a>(
    form: &'a FormDef,
    values: &BTreeMap<String, Value>,
) -> Vec<&'a ItemDef> {
    let mut needed: Vec<&ItemDef> = form
        .items
        .iter()
        .filter(|i| i.required && is_asked(i, values) && !values.contains_key(&i.id))
        .collect();
    for rule in &form.rules {
        if let RuleKind::RequiredIf { item, when } = &rule.kind
            && condition_holds(&when.item, &when.is, values)
            && !values.contains_key(item)
            && let Some(i) = form.item(item)
            && !needed.iter().any(|n| n.id == i.id)
        {
            needed.push(i);
        }
    }
    needed
}

#[cfg(test)]
mod tests {
    use super::*;

    const STUDY: &str = r#"
id = "T"
version = "1"
registry = "NCT0"
title = { en = "Test", zh = "测试" }
forms = ["V", "E"]
"#;
    const V: &str = r#"
id = "V"
name = { en = "Vitals", zh = "体征" }
repeat = "by_day"
max_repeats = 30
[[sections]]
id = "s"
label = { en = "S", zh = "节" }
[[items]]
id = "DATE"
label = { en = "Date", zh = "日期" }
type = "date"
required = true
[[items]]
id = "SBP"
label = { en = "Systolic", zh = "收缩压" }
type = "integer"
unit = "mmHg"
hard = [0, 300]
soft = [40, 250]
missing = ["ND"]
[[items]]
id = "DBP"
label = { en = "Diastolic", zh = "舒张压" }
type = "integer"
unit = "mmHg"
hard = [0, 300]
[[items]]
id = "LAC"
label = { en = "Lactate", zh = "乳酸" }
type = "decimal"
decimals = 1
unit = "mmol/L"
hard = [0, 30]
soft = [0.3, 25]
[[rules]]
id = "V_DBP_LT_SBP"
kind = "compare"
left = "DBP"
op = "<"
right = "SBP"
severity = "hard"
message = { en = "diastolic must be below systolic", zh = "舒张压须低于收缩压" }
[[rules]]
id = "V_DATE_AFTER_START"
kind = "compare"
left = "DATE"
op = ">="
right = "E.START"
severity = "hard"
message = { en = "date before ECMO start", zh = "日期早于ECMO开始" }
[[rules]]
id = "V_DATE_NOT_FUTURE"
kind = "not_future"
item = "DATE"
severity = "hard"
message = { en = "date in the future", zh = "日期在将来" }
"#;
    const E: &str = r#"
id = "E"
name = { en = "ECMO", zh = "ECMO" }
repeat = "once"
[[items]]
id = "START"
label = { en = "Start", zh = "开始" }
type = "datetime"
"#;

    fn study() -> Study {
        Study::from_sources(
            ("study.toml", STUDY),
            &[("forms/V.toml", V), ("forms/E.toml", E)],
        )
        .unwrap()
    }

    fn run(study: &Study, typed: &[(&str, &str)], start: Option<&str>) -> SaveCheck {
        let form = study.form("V").unwrap();
        let mut proposed = BTreeMap::new();
        let mut changed = BTreeSet::new();
        for (id, t) in typed {
            let item = form.item(id).unwrap();
            if let Some(v) = parse_input(study, form, item, t, None).unwrap() {
                proposed.insert(id.to_string(), v);
            }
            changed.insert(id.to_string());
        }
        let start = start.map(|s| Value::DateTime(parse_datetime(s, None).unwrap()));
        let other =
            move |f: &str, i: &str| (f == "E" && i == "START").then(|| start.clone()).flatten();
        let now = parse_datetime("2026-06-01T12:00+08:00", None)
            .unwrap()
            .with_timezone(&Utc);
        check_save(form, &proposed, &changed, &other, now)
    }

    #[test]
    fn hard_range_error_names_form_item_value_and_range() {
        let s = study();
        let c = run(&s, &[("SBP", "320")], None);
        assert_eq!(c.errors.len(), 1);
        assert_eq!(
            c.errors[0].message.en,
            "V SBP (Systolic) = 320 mmHg: outside the possible range 0–300 mmHg"
        );
        assert!(c.errors[0].message.zh.contains("超出可能范围"));
    }

    #[test]
    fn soft_range_is_a_warning_with_decimals_exact() {
        let s = study();
        let c = run(&s, &[("LAC", "25.1")], None);
        assert!(c.errors.is_empty());
        assert_eq!(c.warnings.len(), 1);
        assert_eq!(c.warnings[0].rule, "soft_range");
        assert!(run(&s, &[("LAC", "25.0")], None).warnings.is_empty());
    }

    #[test]
    fn cross_item_and_cross_form_rules() {
        let s = study();
        let c = run(&s, &[("SBP", "90"), ("DBP", "95")], None);
        assert_eq!(c.errors[0].rule, "V_DBP_LT_SBP");
        let c = run(
            &s,
            &[("DATE", "2026-05-01")],
            Some("2026-05-02T01:00+08:00"),
        );
        assert_eq!(c.errors[0].rule, "V_DATE_AFTER_START");
        let c = run(
            &s,
            &[("DATE", "2026-05-02")],
            Some("2026-05-02T01:00+08:00"),
        );
        assert!(c.errors.is_empty(), "{c:?}");
        let c = run(&s, &[("DATE", "2026-07-01")], None);
        assert_eq!(c.errors[0].rule, "V_DATE_NOT_FUTURE");
    }

    #[test]
    fn bad_input_and_missing_codes() {
        let s = study();
        let form = s.form("V").unwrap();
        let lac = form.item("LAC").unwrap();
        assert!(
            parse_input(&s, form, lac, "2.35", None)
                .unwrap_err()
                .message
                .en
                .contains("at most 1 digit")
        );
        assert!(parse_input(&s, form, lac, "@ND", None).unwrap_err().rule == "missing_code");
        let sbp = form.item("SBP").unwrap();
        assert_eq!(
            parse_input(&s, form, sbp, "@nd", None).unwrap(),
            Some(Value::Missing(MissingCode::NotDone))
        );
        assert_eq!(parse_input(&s, form, sbp, "", None).unwrap(), None);
        assert!(
            parse_input(&s, form, sbp, "12.5", None)
                .unwrap_err()
                .message
                .en
                .contains("not a whole number")
        );
    }

    #[test]
    fn completeness_counts_required_items() {
        let s = study();
        let form = s.form("V").unwrap();
        let mut vals = BTreeMap::new();
        assert_eq!(missing_required(form, &vals).len(), 1);
        vals.insert(
            "DATE".into(),
            Value::Date(parse_date("2026-05-02").unwrap()),
        );
        assert!(missing_required(form, &vals).is_empty());
    }
}
