//! The study definition: forms, items, code lists and rules, read from the TOML files in `study/`.
//!
//! Owns the model ([`Study`], [`FormDef`], [`ItemDef`], [`Rule`]) and its loader, which checks the
//! whole definition before anything uses it. Invariant: a `Study` that exists is consistent:
//! ids are unique, every reference (section, code list, rule item, condition) resolves, both
//! languages are present for every text, and soft ranges lie inside hard ranges. Everything
//! downstream (edit checks, screens, PDFs, exports) may rely on that without checking again.
//!
//! This file holds the model and the definition's errors; the loader is split by step:
//! - `raw`: the TOML shapes as written, every text optional (a missing language is our error);
//! - `load`: `study.toml` and each form file into the model, item by item and rule by rule
//!   ([`Study::from_sources`], [`Study::with_form_file`]);
//! - `refs`: what needs the whole study at once: rule and condition references across forms.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::value::{Decimal, MissingCode};

mod load;
mod raw;
mod refs;
pub mod versions;

/// A text in both languages of the trial.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Text {
    /// English.
    pub en: String,
    /// Simplified Chinese.
    pub zh: String,
}

impl Text {
    /// The text in a language (`"zh"` or anything else for English).
    pub fn get(&self, lang: &str) -> &str {
        if lang == "zh" { &self.zh } else { &self.en }
    }
}

/// The whole trial as data.
#[derive(Debug, Clone)]
pub struct Study {
    /// Study id, e.g. `EARLY-IABP`.
    pub id: String,
    /// Definition version; protocol amendments add versions.
    pub version: String,
    /// Registry number, e.g. `NCT06872021`.
    pub registry: String,
    /// The oldest app version that may use this definition (study.toml `requires_app`): an
    /// older app refuses to enter data under it (`versions::Definitions`).
    pub requires_app: Option<String>,
    /// Title.
    pub title: Text,
    /// Forms in schedule order.
    pub forms: Vec<FormDef>,
    /// Shared code lists by name.
    pub codelists: BTreeMap<String, CodeList>,
    /// When a patient may be randomized (`[randomization]` of study.toml).
    pub randomization: RandomizationRules,
}

/// The study's timing rules of randomization (`crate::randomization` applies them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomizationRules {
    /// The latest randomization after ECMO start, in minutes: study.toml's
    /// `latest_after_ecmo_start_min`, by default the protocol's 6-hour IABP window
    /// ([`crate::outcome::WINDOW_MIN`]), and never longer than it (the loader refuses more: a
    /// patient randomized later could not receive the IABP in time in the ECMO+IABP arm).
    pub latest_after_ecmo_start_min: i64,
    /// Whether SCR asks `LV_UNLOADING_STARTED` (from definition 1.1.0; the loader sets it). A
    /// definition that asks it refuses randomization until it is answered "no"; one that does
    /// not (1.0.0) never asked, so the question cannot refuse.
    pub asks_unloading: bool,
}

impl Default for RandomizationRules {
    fn default() -> Self {
        RandomizationRules {
            latest_after_ecmo_start_min: crate::outcome::WINDOW_MIN,
            asks_unloading: true,
        }
    }
}

/// A named list of codes for choice items.
#[derive(Debug, Clone)]
pub struct CodeList {
    /// Name used by items.
    pub name: String,
    /// What the list is.
    pub label: Text,
    /// Codes in display order.
    pub codes: Vec<Code>,
}

/// One answer of a code list.
#[derive(Debug, Clone)]
pub struct Code {
    /// Stored code.
    pub code: String,
    /// What a person reads.
    pub label: Text,
}

/// How often a form is filled in for a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Repeat {
    /// Once per subject.
    Once,
    /// Once per study day (the repeat number is the day, from 0).
    ByDay,
    /// Once per event (numbered from 1).
    ByEvent,
}

/// Who writes a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    /// Staff type it.
    User,
    /// The app writes it (randomization); never typed.
    System,
}

/// One form of the CRF.
#[derive(Debug, Clone)]
pub struct FormDef {
    /// Form id, e.g. `DLY`.
    pub id: String,
    /// The file it was read from.
    pub file: String,
    /// Name.
    pub name: Text,
    /// When it is due, in words.
    pub when: Option<Text>,
    /// How often.
    pub repeat: Repeat,
    /// Highest repeat number for repeating forms.
    pub max_repeats: u32,
    /// Who writes it.
    pub entry: Entry,
    /// Sections in order.
    pub sections: Vec<Section>,
    /// Items in order.
    pub items: Vec<ItemDef>,
    /// Edit checks beyond each item's own type, range and required flag.
    pub rules: Vec<Rule>,
}

/// A titled group of items on a form.
#[derive(Debug, Clone)]
pub struct Section {
    /// Section id.
    pub id: String,
    /// Title.
    pub label: Text,
}

/// The kind of answer an item takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemType {
    /// Whole number.
    Integer,
    /// Exact decimal with a unit.
    Decimal,
    /// Calendar date.
    Date,
    /// Local date-time with UTC offset.
    DateTime,
    /// One code of a code list.
    Choice,
    /// Several codes of a code list.
    MultiChoice,
    /// Yes / no.
    YesNo,
    /// Yes / no / unknown.
    YesNoUnk,
    /// Free text.
    Text,
}

impl ItemType {
    fn is_number(self) -> bool {
        matches!(self, ItemType::Integer | ItemType::Decimal)
    }
    fn is_time(self) -> bool {
        matches!(self, ItemType::Date | ItemType::DateTime)
    }
    fn is_coded(self) -> bool {
        matches!(
            self,
            ItemType::Choice | ItemType::MultiChoice | ItemType::YesNo | ItemType::YesNoUnk
        )
    }
}

/// An inclusive range of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Lowest allowed.
    pub min: Decimal,
    /// Highest allowed.
    pub max: Decimal,
}

impl Range {
    /// True when `v` lies within.
    pub fn contains(&self, v: Decimal) -> bool {
        self.min <= v && v <= self.max
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}–{}", self.min, self.max)
    }
}

/// "Item X has one of these codes" (same form).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Item id in the same form.
    pub item: String,
    /// Codes that make the condition true.
    pub is: Vec<String>,
}

/// One item (field) of a form.
#[derive(Debug, Clone)]
pub struct ItemDef {
    /// Item id, unique in the form.
    pub id: String,
    /// Section id.
    pub section: String,
    /// Field label.
    pub label: Text,
    /// Longer help.
    pub help: Option<Text>,
    /// Kind of answer.
    pub item_type: ItemType,
    /// Unit shown beside the field.
    pub unit: Option<String>,
    /// Possible range: outside is refused.
    pub hard: Option<Range>,
    /// Usual range: outside needs a confirmation.
    pub soft: Option<Range>,
    /// Most digits after the point (decimal items).
    pub decimals: Option<u32>,
    /// Code list name (choice items).
    pub codelist: Option<String>,
    /// Longest text (text items).
    pub max_length: usize,
    /// Needed for the form to be complete.
    pub required: bool,
    /// Missing-data codes allowed instead of a value.
    pub missing: Vec<MissingCode>,
    /// Only asked when this holds.
    pub ask_when: Option<Condition>,
    /// Computed by the app, never typed.
    pub derived: Option<String>,
    /// Filled from laboratory results (`[items.lab]`): LOINC codes, units, worst of a day.
    pub lab: Option<crate::lab::LabSource>,
}

/// A reference to an item: in the same form, or `FORM.ITEM` in another (once-only) form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRef {
    /// The other form, when not the same one.
    pub form: Option<String>,
    /// Item id.
    pub item: String,
}

impl fmt::Display for ItemRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.form {
            Some(form) => write!(f, "{form}.{}", self.item),
            None => f.write_str(&self.item),
        }
    }
}

/// Comparison operators of `compare` rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl CompareOp {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "<" => Self::Lt,
            "<=" => Self::Le,
            ">" => Self::Gt,
            ">=" => Self::Ge,
            "==" => Self::Eq,
            "!=" => Self::Ne,
            _ => return None,
        })
    }

    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }

    /// Applies the operator to an ordering of left against right.
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Self::Lt => ord == Less,
            Self::Le => ord != Greater,
            Self::Gt => ord == Greater,
            Self::Ge => ord != Less,
            Self::Eq => ord == Equal,
            Self::Ne => ord != Equal,
        }
    }
}

/// How bad a broken rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Severity {
    /// Saving needs an explicit confirmation; the warning is kept.
    Soft,
    /// Refused.
    Hard,
}

/// What a rule checks.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// `left op right`; skipped while either side is empty or a missing code.
    Compare {
        /// Left side.
        left: ItemRef,
        /// Operator.
        op: CompareOp,
        /// Right side.
        right: ItemRef,
    },
    /// A date or date-time must not lie in the future.
    NotFuture {
        /// Item in this form.
        item: String,
    },
    /// An item is needed when a condition holds.
    RequiredIf {
        /// Item in this form.
        item: String,
        /// Condition.
        when: Condition,
    },
}

/// An edit check declared in the study definition.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id.
    pub id: String,
    /// What it checks.
    pub kind: RuleKind,
    /// Hard or soft.
    pub severity: Severity,
    /// What the user is told.
    pub message: Text,
    /// `compare` and `not_future` only: the rule is checked only while this holds (an item of
    /// the same form, or `FORM.ITEM` of a once-only form, has one of these codes), e.g.
    /// `EVT_TYPE is DEATH`, `RND.ARM is ECMO_IABP`.
    pub when: Option<Condition>,
}

impl Rule {
    /// The `when` item when it is of this form (not `FORM.ITEM`).
    fn local_when(&self) -> impl Iterator<Item = &str> {
        self.when
            .iter()
            .map(|w| w.item.as_str())
            .filter(|i| !i.contains('.'))
    }

    /// Items of this form (no other form) that the rule reads.
    pub fn local_items(&self) -> Vec<&str> {
        match &self.kind {
            RuleKind::Compare { left, right, .. } => [left, right]
                .into_iter()
                .filter(|r| r.form.is_none())
                .map(|r| r.item.as_str())
                .chain(self.local_when())
                .collect(),
            RuleKind::NotFuture { item } => std::iter::once(item.as_str())
                .chain(self.local_when())
                .collect(),
            RuleKind::RequiredIf { item, when } => vec![item, &when.item],
        }
    }
}

impl Study {
    /// The form with this id.
    pub fn form(&self, id: &str) -> Option<&FormDef> {
        self.forms.iter().find(|f| f.id == id)
    }

    /// The codes an item accepts (its code list, or the built-in yes/no answers).
    pub fn codes_for(&self, item: &ItemDef) -> Vec<Code> {
        let t = |code: &str, en: &str, zh: &str| Code {
            code: code.into(),
            label: Text {
                en: en.into(),
                zh: zh.into(),
            },
        };
        match item.item_type {
            ItemType::YesNo => vec![t("Y", "Yes", "是"), t("N", "No", "否")],
            ItemType::YesNoUnk => vec![
                t("Y", "Yes", "是"),
                t("N", "No", "否"),
                t("U", "Unknown", "不详"),
            ],
            _ => item
                .codelist
                .as_ref()
                .and_then(|name| self.codelists.get(name))
                .map(|cl| cl.codes.clone())
                .unwrap_or_default(),
        }
    }
}

impl FormDef {
    /// The item with this id.
    pub fn item(&self, id: &str) -> Option<&ItemDef> {
        self.items.iter().find(|i| i.id == id)
    }

    /// The items of one section, in form order.
    pub fn section_items(&self, section: &str) -> Vec<&ItemDef> {
        self.items.iter().filter(|i| i.section == section).collect()
    }
}

/// One thing wrong with the study definition: the file, the item or rule, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionProblem {
    /// File name as given to the loader.
    pub file: String,
    /// Item, rule, code list or section id, when the problem is in one.
    pub place: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DefinitionProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.place {
            Some(p) => write!(f, "{}: {}: {}", self.file, p, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// The study definition could not be loaded; every problem found is listed.
#[derive(Debug, Clone, thiserror::Error)]
pub struct DefinitionError {
    /// All problems, in file order.
    pub problems: Vec<DefinitionProblem>,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the study definition has {} problem(s):",
            self.problems.len()
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// Names of derived values a definition may declare (computed in [`crate::derive`]).
pub const KNOWN_DERIVATIONS: &[&str] = &[
    "bmi",
    "vis",
    "pulse_pressure",
    "iabp_delay",
    "iabp_deviation",
    "crossover",
    "eligible",
    "ineligibility_reasons",
    "successful_weaning",
    "icu_los",
    "hospital_los",
    "primary_endpoint",
];
