//! Loading: `study.toml` and the form files, from TOML text into the model, every problem
//! collected rather than the first one returned.
//!
//! Owns [`Study::from_sources`] and [`Study::with_form_file`], and the steps of a form file
//! (`load_form`): its repeat count, sections, items (section, ranges, code list, missing codes,
//! derivation) and rules. Invariants: nothing here stops at a problem (each step reports what it
//! finds to `Problems` and goes on with a placeholder, so one run names every problem, in file
//! order); a `Study` is returned only when no problem was found, after `refs` checked what needs
//! the whole study.

use std::collections::{BTreeMap, BTreeSet};

use super::raw::{RawForm, RawItem, RawNumber, RawRule, RawSection, RawStudy, RawText};
use super::refs::check_references;
use super::{
    Code, CodeList, CompareOp, DefinitionError, DefinitionProblem, FormDef, ItemDef, ItemRef,
    ItemType, KNOWN_DERIVATIONS, Range, Repeat, Rule, RuleKind, Section, Study, Text,
};
use crate::value::MissingCode;

/// The problems found so far, in the order found.
pub(super) struct Problems {
    list: Vec<DefinitionProblem>,
}

impl Problems {
    fn new() -> Self {
        Problems { list: Vec::new() }
    }

    /// Notes a problem of `file`, at `place` (an item, rule, code list or section) if any.
    pub(super) fn add(&mut self, file: &str, place: Option<&str>, message: impl Into<String>) {
        self.list.push(DefinitionProblem {
            file: file.to_string(),
            place: place.map(str::to_string),
            message: message.into(),
        });
    }

    /// A text in both languages; each missing or blank one is a problem (and an empty text).
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

    /// `value` when nothing was found, else every problem.
    fn finish<T>(self, value: T) -> Result<T, DefinitionError> {
        if self.list.is_empty() {
            Ok(value)
        } else {
            Err(self.into_error())
        }
    }

    fn into_error(self) -> DefinitionError {
        DefinitionError {
            problems: self.list,
        }
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

/// True when `file` (a path, `/` or `\` separated) is named `<id>.toml`.
fn is_form_file(file: &str, id: &str) -> bool {
    file.rsplit(['/', '\\']).next() == Some(format!("{id}.toml").as_str())
}

impl Study {
    /// Reads and checks a study definition: `study` is `(file name, text)` of `study.toml`,
    /// `forms` the form files. Every problem found is reported, each naming its file and item.
    pub fn from_sources(
        study: (&str, &str),
        forms: &[(&str, &str)],
    ) -> Result<Study, DefinitionError> {
        let mut p = Problems::new();
        let (study_file, study_text) = study;
        let Some(raw) = parse_toml::<RawStudy>(study_file, study_text, &mut p) else {
            return Err(p.into_error());
        };
        let title = p.text(study_file, "title", "the study title", raw.title);
        let codelists = load_codelists(study_file, raw.codelists, &mut p);
        let parsed_forms = load_listed_forms(study_file, &raw.forms, forms, &codelists, &mut p);
        for (file, _) in forms {
            if !raw.forms.iter().any(|id| is_form_file(file, id)) {
                p.add(
                    file,
                    None,
                    "this form file is not listed in study.toml forms",
                );
            }
        }

        let mut randomization = super::RandomizationRules::default();
        if let Some(min) = raw
            .randomization
            .and_then(|r| r.latest_after_ecmo_start_min)
        {
            if (1..=crate::outcome::WINDOW_MIN).contains(&min) {
                randomization.latest_after_ecmo_start_min = min;
            } else {
                p.add(
                    study_file,
                    None,
                    format!(
                        "randomization.latest_after_ecmo_start_min = {min}: must be from 1 to {} \
                         minutes (the protocol's IABP window after ECMO start)",
                        crate::outcome::WINDOW_MIN
                    ),
                );
            }
        }
        randomization.asks_unloading = parsed_forms
            .iter()
            .any(|f| f.id == "SCR" && f.item("LV_UNLOADING_STARTED").is_some());
        let study = Study {
            id: raw.id,
            version: raw.version,
            registry: raw.registry,
            requires_app: raw.requires_app,
            title,
            forms: parsed_forms,
            codelists,
            randomization,
        };
        check_references(&study, &mut p);
        p.finish(study)
    }

    /// This study with one form file read again from `text` (`file` names it, like
    /// `study/forms/DLY.toml`), checked against the study's code lists and the other forms as
    /// [`Study::from_sources`] would, without reading the rest of the definition again (the
    /// fuzz target of form files uses it: one file per input, the study loaded once).
    pub fn with_form_file(&self, file: &str, text: &str) -> Result<Study, DefinitionError> {
        let mut p = Problems::new();
        let Some(rf) = parse_toml::<RawForm>(file, text, &mut p) else {
            return Err(p.into_error());
        };
        let Some(at) = self.forms.iter().position(|f| f.id == rf.id) else {
            p.add(
                file,
                None,
                format!("the file's id is {} but the study has no such form", rf.id),
            );
            return Err(p.into_error());
        };
        let mut study = self.clone();
        study.forms[at] = load_form(file, rf, &self.codelists, &mut p);
        check_references(&study, &mut p);
        p.finish(study)
    }
}

/// The code lists of `study.toml`: each with its label, codes unique and labelled, not empty.
fn load_codelists(
    study_file: &str,
    raw: BTreeMap<String, super::raw::RawCodeList>,
    p: &mut Problems,
) -> BTreeMap<String, CodeList> {
    let mut codelists = BTreeMap::new();
    for (name, cl) in raw {
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
    codelists
}

/// The forms `study.toml` lists, in its order: each listed once, its file there (`<ID>.toml`),
/// with the id it is listed as. A form whose file is missing or unreadable is left out.
fn load_listed_forms(
    study_file: &str,
    listed: &[String],
    forms: &[(&str, &str)],
    codelists: &BTreeMap<String, CodeList>,
    p: &mut Problems,
) -> Vec<FormDef> {
    let mut parsed_forms = Vec::new();
    let mut seen_forms = BTreeSet::new();
    for id in listed {
        if !seen_forms.insert(id.clone()) {
            p.add(
                study_file,
                Some(&format!("form {id}")),
                "is listed twice in forms",
            );
            continue;
        }
        let Some((file, text)) = forms.iter().find(|(f, _)| is_form_file(f, id)) else {
            p.add(
                study_file,
                Some(&format!("form {id}")),
                format!("is listed in forms but there is no file forms/{id}.toml"),
            );
            continue;
        };
        if let Some(rf) = parse_toml::<RawForm>(file, text, p) {
            if rf.id != *id {
                p.add(
                    file,
                    None,
                    format!("the file's id is {} but it is listed as {id}", rf.id),
                );
            }
            parsed_forms.push(load_form(file, rf, codelists, p));
        }
    }
    parsed_forms
}

/// One form file into a [`FormDef`]: name, repeats, sections, items, rules, in that order.
fn load_form(
    file: &str,
    rf: RawForm,
    codelists: &BTreeMap<String, CodeList>,
    p: &mut Problems,
) -> FormDef {
    let form_place = format!("form {}", rf.id);
    let name = p.text(file, &form_place, "the form name", rf.name);
    let when = rf.when.map(|w| p.text(file, &form_place, "when", Some(w)));
    let max_repeats = max_repeats(file, &form_place, rf.repeat, rf.max_repeats, p);
    let sections = load_sections(file, rf.sections, p);

    let mut items = Vec::new();
    let mut item_ids = BTreeSet::new();
    for ri in rf.items {
        items.push(load_item(file, ri, &sections, &mut item_ids, codelists, p));
    }
    let rules = rf
        .rules
        .into_iter()
        .filter_map(|rr| load_rule(file, rr, p))
        .collect();

    FormDef {
        id: rf.id,
        file: file.to_string(),
        name,
        when,
        repeat: rf.repeat,
        max_repeats,
        entry: rf.entry,
        sections: sections.list,
        items,
        rules,
    }
}

/// The highest repeat number: none for a once-only form, at least 1 for a repeating one.
fn max_repeats(
    file: &str,
    form_place: &str,
    repeat: Repeat,
    max: Option<u32>,
    p: &mut Problems,
) -> u32 {
    match (repeat, max) {
        (Repeat::Once, None) => 0,
        (Repeat::Once, Some(_)) => {
            p.add(
                file,
                Some(form_place),
                "max_repeats is only for repeating forms",
            );
            0
        }
        (_, Some(n)) if n > 0 => n,
        _ => {
            p.add(
                file,
                Some(form_place),
                "a repeating form needs max_repeats of at least 1",
            );
            1
        }
    }
}

/// A form's sections in order, and their ids.
struct Sections {
    list: Vec<Section>,
    ids: BTreeSet<String>,
}

/// The sections of a form: ids unique, titles in both languages.
fn load_sections(file: &str, raw: Vec<RawSection>, p: &mut Problems) -> Sections {
    let mut list = Vec::new();
    let mut ids = BTreeSet::new();
    for s in raw {
        let place = format!("section {}", s.id);
        if !ids.insert(s.id.clone()) {
            p.add(file, Some(&place), "duplicate section id");
        }
        let label = p.text(file, &place, "the section title", s.label);
        list.push(Section { id: s.id, label });
    }
    Sections { list, ids }
}

/// One item: id (well-formed, unique in the form: `item_ids` holds those seen), section, texts,
/// ranges, decimals, code list, text length, missing-data codes, derivation.
fn load_item(
    file: &str,
    ri: RawItem,
    sections: &Sections,
    item_ids: &mut BTreeSet<String>,
    codelists: &BTreeMap<String, CodeList>,
    p: &mut Problems,
) -> ItemDef {
    let place = format!("item {}", ri.id);
    let pl = Some(place.as_str());
    if !valid_item_id(&ri.id) {
        p.add(file, pl, "item ids use A-Z, 0-9 and _ only");
    }
    if !item_ids.insert(ri.id.clone()) {
        p.add(file, pl, "duplicate item id");
    }
    let section = item_section(file, pl, ri.section, sections, p);
    let label = p.text(file, &place, "the label", ri.label);
    let help = ri.help.map(|h| p.text(file, &place, "the help", Some(h)));
    let hard = range(file, pl, "hard", ri.hard, p);
    let soft = range(file, pl, "soft", ri.soft, p);
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
    check_codelist(file, pl, ri.codelist.as_deref(), ri.item_type, codelists, p);
    if ri.max_length.is_some() && ri.item_type != ItemType::Text {
        p.add(file, pl, "max_length is only for text items");
    }
    let missing = missing_codes(file, pl, &ri.missing, p);
    if let Some(d) = &ri.derived {
        check_derivation(file, pl, d, ri.required, p);
    }
    let lab = ri
        .lab
        .and_then(|l| lab_source(file, pl, l, ri.item_type, ri.unit.as_deref(), p));
    ItemDef {
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
        lab,
    }
}

/// An item's section: one the form has; may be left out only when the form has at most one.
fn item_section(
    file: &str,
    pl: Option<&str>,
    named: Option<String>,
    sections: &Sections,
    p: &mut Problems,
) -> String {
    match named {
        Some(s) if sections.ids.contains(&s) => s,
        Some(s) => {
            p.add(
                file,
                pl,
                format!("names section {s}, which this form does not have"),
            );
            s
        }
        None if sections.list.len() <= 1 => sections
            .list
            .first()
            .map(|s| s.id.clone())
            .unwrap_or_default(),
        None => {
            p.add(file, pl, "needs a section");
            String::new()
        }
    }
}

/// A `[min, max]` range as exact decimals, min ≤ max (`what` is `hard` or `soft`).
fn range(
    file: &str,
    pl: Option<&str>,
    what: &str,
    r: Option<[RawNumber; 2]>,
    p: &mut Problems,
) -> Option<Range> {
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
}

/// `[items.lab]`: numeric items only; LOINC codes with valid check digits; a known `worst`;
/// each source unit converts by exactly one positive `multiply` or `divide`; no unit twice
/// (compared as `lab::unit_key` compares them).
fn lab_source(
    file: &str,
    pl: Option<&str>,
    raw: super::raw::RawLab,
    item_type: ItemType,
    unit: Option<&str>,
    p: &mut Problems,
) -> Option<crate::lab::LabSource> {
    use crate::lab::{Conversion, LabSource, LabUnit, Worst, loinc_is_valid, unit_key};
    let mut ok = true;
    let mut fail = |p: &mut Problems, m: String| {
        ok = false;
        p.add(file, pl, m);
    };
    if !item_type.is_number() {
        fail(
            p,
            "only integer and decimal items can be filled from laboratory results".into(),
        );
    }
    if raw.loinc.is_empty() {
        fail(p, "lab: name at least one LOINC code".into());
    }
    for code in &raw.loinc {
        if !loinc_is_valid(code) {
            fail(
                p,
                format!("lab: \"{code}\" is not a LOINC code (NNNNN-C with its check digit)"),
            );
        }
    }
    let worst = Worst::from_word(&raw.worst);
    if worst.is_none() {
        fail(
            p,
            format!(
                "lab: worst must be \"max\" or \"min\", not \"{}\"",
                raw.worst
            ),
        );
    }
    let mut units = vec![LabUnit {
        unit: unit.unwrap_or_default().to_string(),
        conversion: Conversion::Multiply(crate::value::Decimal::from_int(1)),
    }];
    for u in raw.from {
        let positive = |d: &crate::value::Decimal| d.to_f64() > 0.0 && d.to_f64().is_finite();
        let conversion = match (
            u.multiply.and_then(|m| m.to_decimal()),
            u.divide.and_then(|d| d.to_decimal()),
        ) {
            (Some(m), None) if positive(&m) => Some(Conversion::Multiply(m)),
            (None, Some(d)) if positive(&d) => Some(Conversion::Divide(d)),
            _ => None,
        };
        match conversion {
            Some(conversion) => units.push(LabUnit {
                unit: u.unit,
                conversion,
            }),
            None => fail(
                p,
                format!(
                    "lab: unit \"{}\" needs exactly one positive multiply or divide",
                    u.unit
                ),
            ),
        }
    }
    let mut seen = BTreeSet::new();
    for u in &units {
        if !seen.insert(unit_key(&u.unit)) {
            fail(p, format!("lab: unit \"{}\" is listed twice", u.unit));
        }
    }
    let worst = worst?;
    ok.then_some(LabSource {
        loinc: raw.loinc,
        units,
        worst,
    })
}

/// Choice items name a code list that `study.toml` defines; other items name none.
fn check_codelist(
    file: &str,
    pl: Option<&str>,
    codelist: Option<&str>,
    item_type: ItemType,
    codelists: &BTreeMap<String, CodeList>,
    p: &mut Problems,
) {
    match (codelist, item_type) {
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
}

/// The missing-data codes an item allows; an unknown one is a problem and left out.
fn missing_codes(
    file: &str,
    pl: Option<&str>,
    codes: &[String],
    p: &mut Problems,
) -> Vec<MissingCode> {
    let mut missing = Vec::new();
    for m in codes {
        match MissingCode::from_code(m) {
            Some(c) => missing.push(c),
            None => p.add(
                file,
                pl,
                format!("unknown missing-data code {m} (use ND, UNK or NA)"),
            ),
        }
    }
    missing
}

/// A derived item names a known derivation and is not required (nobody types it).
fn check_derivation(file: &str, pl: Option<&str>, derived: &str, required: bool, p: &mut Problems) {
    if !KNOWN_DERIVATIONS.contains(&derived) {
        p.add(file, pl, format!("unknown derivation {derived}"));
    }
    if required {
        p.add(
            file,
            pl,
            "a derived item cannot be required (nobody types it)",
        );
    }
}

/// `ITEM` (this form) or `FORM.ITEM` (another form, or `SUBJECT.*`); resolved by `refs`.
fn parse_ref(s: &str) -> ItemRef {
    match s.split_once('.') {
        Some((f, i)) => ItemRef {
            form: Some(f.to_string()),
            item: i.to_string(),
        },
        None => ItemRef {
            form: None,
            item: s.to_string(),
        },
    }
}

/// One rule: its message in both languages and its kind with the fields that kind needs. A rule
/// whose kind cannot be read is a problem and left out.
fn load_rule(file: &str, rr: RawRule, p: &mut Problems) -> Option<Rule> {
    let place = format!("rule {}", rr.id);
    let pl = Some(place.as_str());
    let message = p.text(file, &place, "the message", rr.message);
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
    Some(Rule {
        id: rr.id,
        kind: kind?,
        severity: rr.severity,
        message,
        when: guard,
    })
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
    fn lab_sources_are_checked_and_converted() {
        let item = "[[items]]\nid = \"CREAT\"\nlabel = { en = \"C\", zh = \"肌酐\" }\ntype = \"integer\"\nunit = \"µmol/L\"\n";
        let s = load(&format!(
            "{item}[items.lab]\nloinc = [\"2160-0\"]\nworst = \"max\"\nfrom = [{{ unit = \"mg/dL\", multiply = 88.4 }}]\n"
        ))
        .unwrap();
        let c = &s.forms[0].items[0];
        let lab = c.lab.as_ref().unwrap();
        assert!(lab.takes("2160-0"));
        // 1.23 mg/dL × 88.4 = 108.7 µmol/L, an integer item: 109.
        assert_eq!(lab.convert(c, "1.23", "mg/dl").unwrap().to_string(), "109");
        assert_eq!(lab.convert(c, "95", "umol/L").unwrap().to_string(), "95");
        let e = lab.convert(c, "1.2", "mmol/L").unwrap_err().to_string();
        assert!(
            e.contains("\"mmol/L\" is not one the study accepts for CREAT (µmol/L, mg/dL)"),
            "{e}"
        );

        let bad = load(&format!(
            "{item}[items.lab]\nloinc = [\"2160-1\"]\nworst = \"worse\"\nfrom = [{{ unit = \"UMOL/L\", multiply = 1 }}, {{ unit = \"mg/dL\" }}]\n"
        ))
        .unwrap_err()
        .to_string();
        for part in [
            "\"2160-1\" is not a LOINC code",
            "worst must be \"max\" or \"min\"",
            "unit \"mg/dL\" needs exactly one positive multiply or divide",
            "unit \"UMOL/L\" is listed twice",
        ] {
            assert!(bad.contains(part), "{part} in {bad}");
        }
        let text = load("[[items]]\nid = \"T\"\nlabel = { en = \"T\", zh = \"文\" }\ntype = \"text\"\n[items.lab]\nloinc = [\"2160-0\"]\nworst = \"max\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("only integer and decimal items can be filled from laboratory results"),
            "{text}"
        );
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
