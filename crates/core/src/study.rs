//! The study definition: forms, items, code lists and rules, read from the TOML files in `study/`.
//!
//! Owns the model ([`Study`], [`FormDef`], [`ItemDef`], [`Rule`]) and its loader, which checks the
//! whole definition before anything uses it. Invariant: a `Study` that exists is consistent:
//! ids are unique, every reference (section, code list, rule item, condition) resolves, both
//! languages are present for every text, and soft ranges lie inside hard ranges. Everything
//! downstream (edit checks, screens, PDFs, exports) may rely on that without checking again.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

use crate::value::{Decimal, MissingCode};

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
    /// Title.
    pub title: Text,
    /// Forms in schedule order.
    pub forms: Vec<FormDef>,
    /// Shared code lists by name.
    pub codelists: BTreeMap<String, CodeList>,
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
    /// the same form has one of these codes), e.g. `EVT_TYPE is DEATH`.
    pub when: Option<Condition>,
}

impl Rule {
    /// Items of this form (no other form) that the rule reads.
    pub fn local_items(&self) -> Vec<&str> {
        match &self.kind {
            RuleKind::Compare { left, right, .. } => [left, right]
                .into_iter()
                .filter(|r| r.form.is_none())
                .map(|r| r.item.as_str())
                .chain(self.when.iter().map(|w| w.item.as_str()))
                .collect(),
            RuleKind::NotFuture { item } => std::iter::once(item.as_str())
                .chain(self.when.iter().map(|w| w.item.as_str()))
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

// ---- raw TOML shapes: every text optional so a missing language is our error, not serde's ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    en: Option<String>,
    zh: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStudy {
    id: String,
    version: String,
    registry: String,
    title: Option<RawText>,
    forms: Vec<String>,
    #[serde(default)]
    codelists: BTreeMap<String, RawCodeList>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCodeList {
    label: Option<RawText>,
    codes: Vec<RawCode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCode {
    code: String,
    en: Option<String>,
    zh: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForm {
    id: String,
    name: Option<RawText>,
    when: Option<RawText>,
    repeat: Repeat,
    max_repeats: Option<u32>,
    #[serde(default = "default_entry")]
    entry: Entry,
    #[serde(default)]
    sections: Vec<RawSection>,
    #[serde(default)]
    items: Vec<RawItem>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

fn default_entry() -> Entry {
    Entry::User
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    id: String,
    label: Option<RawText>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum RawNumber {
    Int(i64),
    Float(f64),
}

impl RawNumber {
    fn to_decimal(self) -> Option<Decimal> {
        match self {
            RawNumber::Int(i) => Some(Decimal::from_int(i)),
            // f64's shortest round-trip text is what was written in the file.
            RawNumber::Float(f) => f.to_string().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    id: String,
    section: Option<String>,
    label: Option<RawText>,
    help: Option<RawText>,
    #[serde(rename = "type")]
    item_type: ItemType,
    unit: Option<String>,
    hard: Option<[RawNumber; 2]>,
    soft: Option<[RawNumber; 2]>,
    decimals: Option<u32>,
    codelist: Option<String>,
    max_length: Option<usize>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    missing: Vec<String>,
    ask_when: Option<Condition>,
    derived: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    kind: String,
    left: Option<String>,
    op: Option<String>,
    right: Option<String>,
    item: Option<String>,
    when: Option<Condition>,
    severity: Severity,
    message: Option<RawText>,
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

struct Problems {
    list: Vec<DefinitionProblem>,
}

impl Problems {
    fn add(&mut self, file: &str, place: Option<&str>, message: impl Into<String>) {
        self.list.push(DefinitionProblem {
            file: file.to_string(),
            place: place.map(str::to_string),
            message: message.into(),
        });
    }

    fn text(&mut self, file: &str, place: &str, what: &str, raw: Option<RawText>) -> Text {
        let raw = raw.unwrap_or(RawText { en: None, zh: None });
        let mut pick = |lang: &str, name: &str, v: Option<String>| match v {
            Some(s) if !s.trim().is_empty() => s,
            _ => {
                self.add(
                    file,
                    Some(place),
                    format!("{what} has no {name} ({lang}) text"),
                );
                String::new()
            }
        };
        let en = pick("en", "English", raw.en);
        let zh = pick("zh", "Chinese", raw.zh);
        Text { en, zh }
    }
}

fn parse_toml<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
    problems: &mut Problems,
) -> Option<T> {
    match toml::from_str(text) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.add(file, None, e.to_string().trim().replace('\n', " "));
            None
        }
    }
}

fn valid_item_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

impl Study {
    /// Reads and checks a study definition: `study` is `(file name, text)` of `study.toml`,
    /// `forms` the form files. Every problem found is reported, each naming its file and item.
    pub fn from_sources(
        study: (&str, &str),
        forms: &[(&str, &str)],
    ) -> Result<Study, DefinitionError> {
        let mut p = Problems { list: Vec::new() };
        let (study_file, study_text) = study;
        let Some(raw) = parse_toml::<RawStudy>(study_file, study_text, &mut p) else {
            return Err(DefinitionError { problems: p.list });
        };
        let title = p.text(study_file, "title", "the study title", raw.title);

        let mut codelists = BTreeMap::new();
        for (name, cl) in raw.codelists {
            let place = format!("code list {name}");
            let label = p.text(study_file, &place, "the label", cl.label);
            let mut seen = BTreeSet::new();
            let mut codes = Vec::new();
            for c in cl.codes {
                if !seen.insert(c.code.clone()) {
                    p.add(
                        study_file,
                        Some(&place),
                        format!("code {} appears twice", c.code),
                    );
                }
                let label = p.text(
                    study_file,
                    &format!("{place}, code {}", c.code),
                    "the code",
                    Some(RawText { en: c.en, zh: c.zh }),
                );
                codes.push(Code {
                    code: c.code,
                    label,
                });
            }
            if codes.is_empty() {
                p.add(study_file, Some(&place), "has no codes");
            }
            codelists.insert(name.clone(), CodeList { name, label, codes });
        }

        let mut parsed_forms = Vec::new();
        let mut seen_forms = BTreeSet::new();
        for id in &raw.forms {
            if !seen_forms.insert(id.clone()) {
                p.add(
                    study_file,
                    Some(&format!("form {id}")),
                    "is listed twice in forms",
                );
                continue;
            }
            let expected = format!("{id}.toml");
            let Some((file, text)) = forms
                .iter()
                .find(|(f, _)| f.rsplit(['/', '\\']).next() == Some(expected.as_str()))
            else {
                p.add(
                    study_file,
                    Some(&format!("form {id}")),
                    format!("is listed in forms but there is no file forms/{expected}"),
                );
                continue;
            };
            if let Some(rf) = parse_toml::<RawForm>(file, text, &mut p) {
                if rf.id != *id {
                    p.add(
                        file,
                        None,
                        format!("the file's id is {} but it is listed as {id}", rf.id),
                    );
                }
                parsed_forms.push(load_form(file, rf, &codelists, &mut p));
            }
        }
        for (file, _) in forms {
            let listed = raw
                .forms
                .iter()
                .any(|id| file.rsplit(['/', '\\']).next() == Some(format!("{id}.toml").as_str()));
            if !listed {
                p.add(
                    file,
                    None,
                    "this form file is not listed in study.toml forms",
                );
            }
        }

        let study = Study {
            id: raw.id,
            version: raw.version,
            registry: raw.registry,
            title,
            forms: parsed_forms,
            codelists,
        };
        check_references(&study, &mut p);
        if p.list.is_empty() {
            Ok(study)
        } else {
            Err(DefinitionError { problems: p.list })
        }
    }
}

impl Study {
    /// This study with one form file read again from `text` (`file` names it, like
    /// `study/forms/DLY.toml`), checked against the study's code lists and the other forms as
    /// [`Study::from_sources`] would, without reading the rest of the definition again (the
    /// fuzz target of form files uses it: one file per input, the study loaded once).
    pub fn with_form_file(&self, file: &str, text: &str) -> Result<Study, DefinitionError> {
        let mut p = Problems { list: Vec::new() };
        let Some(rf) = parse_toml::<RawForm>(file, text, &mut p) else {
            return Err(DefinitionError { problems: p.list });
        };
        let Some(at) = self.forms.iter().position(|f| f.id == rf.id) else {
            p.add(
                file,
                None,
                format!("the file's id is {} but the study has no such form", rf.id),
            );
            return Err(DefinitionError { problems: p.list });
        };
        let mut study = self.clone();
        study.forms[at] = load_form(file, rf, &self.codelists, &mut p);
        check_references(&study, &mut p);
        if p.list.is_empty() {
            Ok(study)
        } else {
            Err(DefinitionError { problems: p.list })
        }
    }
}

fn load_form(
    file: &str,
    rf: RawForm,
    codelists: &BTreeMap<String, CodeList>,
    p: &mut Problems,
) -> FormDef {
    let form_place = format!("form {}", rf.id);
    let name = p.text(file, &form_place, "the form name", rf.name);
    let when = rf.when.map(|w| p.text(file, &form_place, "when", Some(w)));
    let max_repeats = match (rf.repeat, rf.max_repeats) {
        (Repeat::Once, None) => 0,
        (Repeat::Once, Some(_)) => {
            p.add(
                file,
                Some(&form_place),
                "max_repeats is only for repeating forms",
            );
            0
        }
        (_, Some(n)) if n > 0 => n,
        _ => {
            p.add(
                file,
                Some(&form_place),
                "a repeating form needs max_repeats of at least 1",
            );
            1
        }
    };

    let mut sections = Vec::new();
    let mut section_ids = BTreeSet::new();
    for s in rf.sections {
        let place = format!("section {}", s.id);
        if !section_ids.insert(s.id.clone()) {
            p.add(file, Some(&place), "duplicate section id");
        }
        let label = p.text(file, &place, "the section title", s.label);
        sections.push(Section { id: s.id, label });
    }

    let mut items = Vec::new();
    let mut item_ids = BTreeSet::new();
    for ri in rf.items {
        let place = format!("item {}", ri.id);
        let pl = Some(place.as_str());
        if !valid_item_id(&ri.id) {
            p.add(file, pl, "item ids use A-Z, 0-9 and _ only");
        }
        if !item_ids.insert(ri.id.clone()) {
            p.add(file, pl, "duplicate item id");
        }
        let section = match ri.section {
            Some(s) if section_ids.contains(&s) => s,
            Some(s) => {
                p.add(
                    file,
                    pl,
                    format!("names section {s}, which this form does not have"),
                );
                s
            }
            None if sections.len() <= 1 => {
                sections.first().map(|s| s.id.clone()).unwrap_or_default()
            }
            None => {
                p.add(file, pl, "needs a section");
                String::new()
            }
        };
        let label = p.text(file, &place, "the label", ri.label);
        let help = ri.help.map(|h| p.text(file, &place, "the help", Some(h)));
        let range = |p: &mut Problems, what: &str, r: Option<[RawNumber; 2]>| -> Option<Range> {
            let [a, b] = r?;
            match (a.to_decimal(), b.to_decimal()) {
                (Some(min), Some(max)) if min <= max => Some(Range { min, max }),
                _ => {
                    p.add(
                        file,
                        pl,
                        format!("the {what} range must be [min, max] with min ≤ max"),
                    );
                    None
                }
            }
        };
        let hard = range(p, "hard", ri.hard);
        let soft = range(p, "soft", ri.soft);
        if (hard.is_some() || soft.is_some()) && !ri.item_type.is_number() {
            p.add(file, pl, "only integer and decimal items can have ranges");
        }
        if let (Some(h), Some(s)) = (hard, soft)
            && (s.min < h.min || s.max > h.max)
        {
            p.add(
                file,
                pl,
                format!("the soft range {s} must lie inside the hard range {h}"),
            );
        }
        if ri.decimals.is_some() && ri.item_type != ItemType::Decimal {
            p.add(file, pl, "decimals is only for decimal items");
        }
        if ri.decimals.is_some_and(|d| d > crate::value::MAX_SCALE) {
            p.add(file, pl, "decimals must be 9 or fewer");
        }
        match (&ri.codelist, ri.item_type) {
            (None, ItemType::Choice | ItemType::MultiChoice) => {
                p.add(file, pl, "a choice item needs a codelist")
            }
            (Some(cl), ItemType::Choice | ItemType::MultiChoice) => {
                if !codelists.contains_key(cl) {
                    p.add(
                        file,
                        pl,
                        format!("names code list {cl}, which study.toml does not define"),
                    );
                }
            }
            (Some(_), _) => p.add(file, pl, "only choice items take a codelist"),
            (None, _) => {}
        }
        if ri.max_length.is_some() && ri.item_type != ItemType::Text {
            p.add(file, pl, "max_length is only for text items");
        }
        let mut missing = Vec::new();
        for m in &ri.missing {
            match MissingCode::from_code(m) {
                Some(c) => missing.push(c),
                None => p.add(
                    file,
                    pl,
                    format!("unknown missing-data code {m} (use ND, UNK or NA)"),
                ),
            }
        }
        if let Some(d) = &ri.derived {
            if !KNOWN_DERIVATIONS.contains(&d.as_str()) {
                p.add(file, pl, format!("unknown derivation {d}"));
            }
            if ri.required {
                p.add(
                    file,
                    pl,
                    "a derived item cannot be required (nobody types it)",
                );
            }
        }
        items.push(ItemDef {
            id: ri.id,
            section,
            label,
            help,
            item_type: ri.item_type,
            unit: ri.unit,
            hard,
            soft,
            decimals: ri.decimals,
            codelist: ri.codelist,
            max_length: ri.max_length.unwrap_or(500),
            required: ri.required,
            missing,
            ask_when: ri.ask_when,
            derived: ri.derived,
        });
    }

    let mut rules = Vec::new();
    for rr in rf.rules {
        let place = format!("rule {}", rr.id);
        let pl = Some(place.as_str());
        let message = p.text(file, &place, "the message", rr.message);
        let parse_ref = |s: &str| match s.split_once('.') {
            Some((f, i)) => ItemRef {
                form: Some(f.to_string()),
                item: i.to_string(),
            },
            None => ItemRef {
                form: None,
                item: s.to_string(),
            },
        };
        let mut guard = None;
        let kind = match rr.kind.as_str() {
            "compare" => match (
                &rr.left,
                rr.op.as_deref().and_then(CompareOp::parse),
                &rr.right,
            ) {
                (Some(l), Some(op), Some(r)) => {
                    guard = rr.when.clone();
                    Some(RuleKind::Compare {
                        left: parse_ref(l),
                        op,
                        right: parse_ref(r),
                    })
                }
                _ => {
                    p.add(
                        file,
                        pl,
                        "a compare rule needs left, op (< <= > >= == !=) and right",
                    );
                    None
                }
            },
            "not_future" => match &rr.item {
                Some(i) => {
                    guard = rr.when.clone();
                    Some(RuleKind::NotFuture { item: i.clone() })
                }
                None => {
                    p.add(file, pl, "a not_future rule needs item");
                    None
                }
            },
            "required_if" => match (&rr.item, rr.when) {
                (Some(i), Some(w)) => Some(RuleKind::RequiredIf {
                    item: i.clone(),
                    when: w,
                }),
                _ => {
                    p.add(file, pl, "a required_if rule needs item and when");
                    None
                }
            },
            other => {
                p.add(
                    file,
                    pl,
                    format!("unknown rule kind {other} (compare, not_future, required_if)"),
                );
                None
            }
        };
        if let Some(kind) = kind {
            rules.push(Rule {
                id: rr.id,
                kind,
                severity: rr.severity,
                message,
                when: guard,
            });
        }
    }

    FormDef {
        id: rf.id,
        file: file.to_string(),
        name,
        when,
        repeat: rf.repeat,
        max_repeats,
        entry: rf.entry,
        sections,
        items,
        rules,
    }
}

/// Checks what needs the whole study: rule and condition references across items and forms.
fn check_references(study: &Study, p: &mut Problems) {
    let mut rule_ids = BTreeSet::new();
    for form in &study.forms {
        let file = form.file.as_str();
        let check_condition =
            |p: &mut Problems, place: &str, c: &Condition| match form.item(&c.item) {
                None => p.add(
                    file,
                    Some(place),
                    format!(
                        "its condition names item {}, which form {} does not have",
                        c.item, form.id
                    ),
                ),
                Some(ci) if !ci.item_type.is_coded() => p.add(
                    file,
                    Some(place),
                    format!("its condition item {} is not a coded item", c.item),
                ),
                Some(ci) => {
                    let codes = study.codes_for(ci);
                    for code in &c.is {
                        if !codes.iter().any(|k| &k.code == code) {
                            p.add(
                                file,
                                Some(place),
                                format!("its condition code {code} is not an answer of {}", c.item),
                            );
                        }
                    }
                }
            };
        for item in &form.items {
            if let Some(c) = &item.ask_when {
                check_condition(p, &format!("item {}", item.id), c);
            }
        }
        for rule in &form.rules {
            let place = format!("rule {}", rule.id);
            if !rule_ids.insert(rule.id.clone()) {
                p.add(
                    file,
                    Some(&place),
                    "duplicate rule id (rule ids are unique in the study)",
                );
            }
            if let Some(w) = &rule.when {
                check_condition(p, &place, w);
            }
            let resolve = |p: &mut Problems, r: &ItemRef| -> Option<ItemType> {
                let target = match &r.form {
                    None => form,
                    Some(fid) if fid == crate::outcome::SUBJECT => {
                        return match crate::outcome::subject_item_type(&r.item) {
                            Some(t) => Some(t),
                            None => {
                                p.add(
                                    file,
                                    Some(&place),
                                    format!(
                                        "refers to unknown subject value {r} ({})",
                                        crate::outcome::SUBJECT_ITEMS.join(", ")
                                    ),
                                );
                                None
                            }
                        };
                    }
                    Some(fid) => {
                        match study.form(fid) {
                            Some(f) if f.repeat == Repeat::Once => f,
                            Some(_) => {
                                p.add(file, Some(&place), format!("refers to {r}, but form {fid} repeats, so which one is unclear"));
                                return None;
                            }
                            None => {
                                p.add(
                                    file,
                                    Some(&place),
                                    format!("refers to {r}, but there is no form {fid}"),
                                );
                                return None;
                            }
                        }
                    }
                };
                match target.item(&r.item) {
                    Some(i) => Some(i.item_type),
                    None => {
                        p.add(file, Some(&place), format!("refers to unknown item {r}"));
                        None
                    }
                }
            };
            match &rule.kind {
                RuleKind::Compare { left, right, .. } => {
                    if let (Some(a), Some(b)) = (resolve(p, left), resolve(p, right)) {
                        let comparable =
                            (a.is_number() && b.is_number()) || (a.is_time() && b.is_time());
                        if !comparable {
                            p.add(file, Some(&place), format!("cannot compare {left} with {right}: compare numbers with numbers and dates with dates"));
                        }
                    }
                }
                RuleKind::NotFuture { item } => {
                    let r = ItemRef {
                        form: None,
                        item: item.clone(),
                    };
                    if let Some(t) = resolve(p, &r)
                        && !t.is_time()
                    {
                        p.add(
                            file,
                            Some(&place),
                            format!("{item} is not a date or date-time"),
                        );
                    }
                }
                RuleKind::RequiredIf { item, when } => {
                    let r = ItemRef {
                        form: None,
                        item: item.clone(),
                    };
                    resolve(p, &r);
                    check_condition(p, &place, when);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STUDY: &str = r#"
id = "T"
version = "1"
registry = "NCT0"
title = { en = "Test", zh = "测试" }
forms = ["A"]
[codelists.sex]
label = { en = "Sex", zh = "性别" }
codes = [ { code = "M", en = "Male", zh = "男" }, { code = "F", en = "Female", zh = "女" } ]
"#;

    fn form(body: &str) -> String {
        format!(
            "id = \"A\"\nname = {{ en = \"A\", zh = \"甲\" }}\nrepeat = \"once\"\n[[sections]]\nid = \"s\"\nlabel = {{ en = \"S\", zh = \"节\" }}\n{body}"
        )
    }

    fn load(body: &str) -> Result<Study, DefinitionError> {
        let f = form(body);
        Study::from_sources(("study.toml", STUDY), &[("forms/A.toml", f.as_str())])
    }

    const HR: &str = "[[items]]\nid = \"HR\"\nlabel = { en = \"HR\", zh = \"心率\" }\ntype = \"integer\"\nhard = [0, 300]\n";

    #[test]
    fn a_good_form_loads() {
        let s = load(HR).unwrap();
        assert_eq!(s.forms[0].items[0].id, "HR");
        assert_eq!(s.forms[0].items[0].section, "s");
    }

    #[test]
    fn one_form_file_read_again_is_checked_like_the_whole_definition() {
        let s = load(HR).unwrap();
        let two = form(&format!("{HR}{}", HR.replace("\"HR\"", "\"RR\"")));
        let again = s.with_form_file("forms/A.toml", &two).unwrap();
        assert_eq!(again.forms[0].items.len(), 2);
        let dup = form(&format!("{HR}{HR}"));
        assert_eq!(
            s.with_form_file("forms/A.toml", &dup)
                .unwrap_err()
                .to_string(),
            load(&format!("{HR}{HR}")).unwrap_err().to_string()
        );
        let other = two.replace("id = \"A\"", "id = \"B\"");
        assert!(s.with_form_file("forms/B.toml", &other).is_err());
        assert!(s.with_form_file("forms/A.toml", "not = [toml").is_err());
    }

    #[test]
    fn duplicate_item_is_named_with_its_file() {
        let e = load(&format!("{HR}{HR}")).unwrap_err();
        assert_eq!(e.problems.len(), 1, "{e}");
        assert_eq!(
            e.problems[0].to_string(),
            "forms/A.toml: item HR: duplicate item id"
        );
    }

    #[test]
    fn missing_translation_is_named() {
        let e =
            load("[[items]]\nid = \"X\"\nlabel = { en = \"X\" }\ntype = \"text\"\n").unwrap_err();
        assert_eq!(
            e.problems[0].to_string(),
            "forms/A.toml: item X: the label has no Chinese (zh) text"
        );
    }

    #[test]
    fn rule_naming_unknown_item_is_named() {
        let e = load(&format!(
            "{HR}[[rules]]\nid = \"R1\"\nkind = \"compare\"\nleft = \"HR\"\nop = \"<\"\nright = \"NOPE\"\nseverity = \"hard\"\nmessage = {{ en = \"m\", zh = \"信息\" }}\n"
        ))
        .unwrap_err();
        assert_eq!(
            e.problems[0].to_string(),
            "forms/A.toml: rule R1: refers to unknown item NOPE"
        );
        let e = load(&format!(
            "{HR}[[rules]]\nid = \"R2\"\nkind = \"compare\"\nleft = \"HR\"\nop = \"<\"\nright = \"B.X\"\nseverity = \"hard\"\nmessage = {{ en = \"m\", zh = \"信息\" }}\n"
        ))
        .unwrap_err();
        assert!(e.problems[0].message.contains("there is no form B"), "{e}");
    }

    #[test]
    fn soft_range_outside_hard_range_is_refused() {
        let e = load("[[items]]\nid = \"X\"\nlabel = { en = \"X\", zh = \"叉\" }\ntype = \"decimal\"\nhard = [0, 10]\nsoft = [0.5, 12.5]\n").unwrap_err();
        assert!(e.problems[0].message.contains("0.5–12.5"), "{e}");
    }

    #[test]
    fn toml_syntax_errors_name_the_file() {
        let e =
            Study::from_sources(("study.toml", STUDY), &[("forms/A.toml", "id = ")]).unwrap_err();
        assert!(
            e.problems[0].to_string().starts_with("forms/A.toml: "),
            "{e}"
        );
    }

    #[test]
    fn unlisted_and_missing_form_files_are_named() {
        let e = Study::from_sources(("study.toml", STUDY), &[]).unwrap_err();
        assert!(e.to_string().contains("no file forms/A.toml"), "{e}");
    }
}
