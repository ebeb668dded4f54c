//! CDISC ODM 1.3.2: the study definition as `Study/MetaDataVersion`, the data as `ClinicalData`
//! with an `AuditRecord` per change, and `AdminData` (users, sites).
//!
//! Owns the mapping between the study model and ODM, used both ways ([`crate::odm_import`]
//! reads what this writes). Native ODM carries what it can express: events, forms, item groups
//! (sections), items with data types, lengths, significant digits, questions and descriptions in
//! English and Chinese, units, hard and soft range checks, code lists, derivations
//! (`MethodDef`). What ODM has no element for is carried in `Alias` elements with `ecrf:`
//! contexts (item type, missing-data codes, ask-when conditions, repeat kind, entry, file) and
//! edit rules as `ConditionDef`s whose `FormalExpression` (context `ecrf-rule`) holds the rule as
//! JSON. Invariant: definition → ODM → definition gives back the same definition.
//!
//! Data: a snapshot (`FileType="Snapshot"`) has one `ItemData` per current value; with the
//! audit trail (`FileType="Transactional"`) every `item.set` change of the log is one `ItemData`
//! (Insert / Update / Remove) with its `AuditRecord` (user, site, local time with offset, reason,
//! change id), and every `subject.create` is the `AuditRecord` of its `SubjectData`. Missing-data
//! codes are written as the value `@ND`, `@UNK`, `@NA`.
//!
//! Signatures: `AdminData` has one `SignatureDef` per meaning (approval, review; electronic,
//! user id + password); a form instance's signature is the `Signature` of its `FormData`, a
//! casebook's the `Signature` of its `SubjectData` (user, site, meaning, local time stamp). ODM
//! allows one signature per element: the latest of its scope is written — in a snapshot only while
//! it still holds (no value it covers changed since), with the audit trail whether or not it
//! still holds. Every signature is in `audit_trail.csv` (`signature.sign`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use chrono::{DateTime, FixedOffset};
use ecrf_core::signature::SignatureMeaning;
use ecrf_core::study::{Entry, ItemType, Repeat, RuleKind};
use ecrf_core::{FormDef, Study, Text, Value};

use crate::ExportError;
use crate::source::{SignatureRecord, TrialData};

/// The ODM namespace.
pub const NS: &str = "http://www.cdisc.org/ns/odm/v1.3";

/// XML escaping for text and attribute values; line breaks and tabs become character references
/// so attribute values keep them.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A tiny indenting XML writer: elements, attributes (escaped) and text.
struct Xml<W: Write> {
    out: W,
    depth: usize,
    /// Indent nested elements (the metadata); the clinical data are written one element a line.
    pretty: bool,
}

/// Writes `s` escaped, without allocating when nothing needs escaping.
fn write_escaped<W: Write>(out: &mut W, s: &str) -> std::io::Result<()> {
    let plain = s
        .bytes()
        .all(|b| b >= 0x20 && !matches!(b, b'&' | b'<' | b'>' | b'"' | b'\''));
    if plain {
        out.write_all(s.as_bytes())
    } else {
        out.write_all(esc(s).as_bytes())
    }
}

impl<W: Write> Xml<W> {
    fn start(&mut self, name: &str, a: &[(&str, &str)]) -> std::io::Result<()> {
        if self.pretty {
            for _ in 0..self.depth {
                self.out.write_all(b"  ")?;
            }
        }
        self.out.write_all(b"<")?;
        self.out.write_all(name.as_bytes())?;
        for (k, v) in a {
            self.out.write_all(b" ")?;
            self.out.write_all(k.as_bytes())?;
            self.out.write_all(b"=\"")?;
            write_escaped(&mut self.out, v)?;
            self.out.write_all(b"\"")?;
        }
        Ok(())
    }
    /// Like [`Xml::start`], each attribute value the concatenation of its parts (each part
    /// escaped): `("ItemOID", &["IT.", form, ".", item])` without building the string.
    fn start_parts(&mut self, name: &str, a: &[(&str, &[&str])]) -> std::io::Result<()> {
        if self.pretty {
            for _ in 0..self.depth {
                self.out.write_all(b"  ")?;
            }
        }
        self.out.write_all(b"<")?;
        self.out.write_all(name.as_bytes())?;
        for (k, parts) in a {
            self.out.write_all(b" ")?;
            self.out.write_all(k.as_bytes())?;
            self.out.write_all(b"=\"")?;
            for p in *parts {
                write_escaped(&mut self.out, p)?;
            }
            self.out.write_all(b"\"")?;
        }
        Ok(())
    }
    fn open_parts(&mut self, name: &str, a: &[(&str, &[&str])]) -> std::io::Result<()> {
        self.start_parts(name, a)?;
        self.out.write_all(b">\n")?;
        self.depth += 1;
        Ok(())
    }
    fn empty_parts(&mut self, name: &str, a: &[(&str, &[&str])]) -> std::io::Result<()> {
        self.start_parts(name, a)?;
        self.out.write_all(b"/>\n")
    }
    fn open(&mut self, name: &str, a: &[(&str, &str)]) -> std::io::Result<()> {
        self.start(name, a)?;
        self.out.write_all(b">\n")?;
        self.depth += 1;
        Ok(())
    }
    fn close(&mut self, name: &str) -> std::io::Result<()> {
        self.depth -= 1;
        if self.pretty {
            for _ in 0..self.depth {
                self.out.write_all(b"  ")?;
            }
        }
        self.out.write_all(b"</")?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(b">\n")
    }
    fn empty(&mut self, name: &str, a: &[(&str, &str)]) -> std::io::Result<()> {
        self.start(name, a)?;
        self.out.write_all(b"/>\n")
    }
    fn text(&mut self, name: &str, a: &[(&str, &str)], text: &str) -> std::io::Result<()> {
        self.start(name, a)?;
        self.out.write_all(b">")?;
        write_escaped(&mut self.out, text)?;
        self.out.write_all(b"</")?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(b">\n")
    }
    /// `<NAME><TranslatedText xml:lang="en">…</TranslatedText><… "zh">…</…></NAME>`
    fn translated(&mut self, name: &str, t: &Text) -> std::io::Result<()> {
        self.open(name, &[])?;
        self.text("TranslatedText", &[("xml:lang", "en")], &t.en)?;
        self.text("TranslatedText", &[("xml:lang", "zh")], &t.zh)?;
        self.close(name)
    }
    fn alias(&mut self, context: &str, name: &str) -> std::io::Result<()> {
        self.empty("Alias", &[("Context", context), ("Name", name)])
    }
}

/// OIDs, in one place so writer and reader agree.
pub mod oid {
    /// Study event of a form.
    pub fn event(form: &str) -> String {
        format!("SE.{form}")
    }
    /// Form.
    pub fn form(form: &str) -> String {
        format!("F.{form}")
    }
    /// Item group (section).
    pub fn group(form: &str, section: &str) -> String {
        format!("IG.{form}.{section}")
    }
    /// Item.
    pub fn item(form: &str, item: &str) -> String {
        format!("IT.{form}.{item}")
    }
    /// Code list.
    pub fn codelist(name: &str) -> String {
        format!("CL.{name}")
    }
    /// Built-in yes/no (and unknown) answers.
    pub fn builtin(item_type: &str) -> String {
        format!("CLB.{item_type}")
    }
    /// Derivation.
    pub fn method(name: &str) -> String {
        format!("MT.{name}")
    }
    /// Edit rule.
    pub fn rule(id: &str) -> String {
        format!("RULE.{id}")
    }
    /// Site.
    pub fn location(site: &str) -> String {
        format!("LOC.{site}")
    }
    /// User of a site.
    pub fn user(site: &str, username: &str) -> String {
        format!("USR.{site}.{username}")
    }
    /// Meaning of a signature.
    pub fn signature_def(meaning: &str) -> String {
        format!("SD.{meaning}")
    }
    /// Metadata version.
    pub fn mdv(version: &str) -> String {
        format!("MDV.{version}")
    }
}

/// Our item type's name (the `ecrf:type` alias).
pub fn type_name(t: ItemType) -> &'static str {
    match t {
        ItemType::Integer => "integer",
        ItemType::Decimal => "decimal",
        ItemType::Date => "date",
        ItemType::DateTime => "datetime",
        ItemType::Choice => "choice",
        ItemType::MultiChoice => "multichoice",
        ItemType::YesNo => "yesno",
        ItemType::YesNoUnk => "yesnounk",
        ItemType::Text => "text",
    }
}

fn odm_type(t: ItemType) -> &'static str {
    match t {
        ItemType::Integer => "integer",
        ItemType::Decimal => "float",
        ItemType::Date => "date",
        ItemType::DateTime => "datetime",
        _ => "text",
    }
}

fn repeat_name(r: Repeat) -> &'static str {
    match r {
        Repeat::Once => "once",
        Repeat::ByDay => "by_day",
        Repeat::ByEvent => "by_event",
    }
}

/// A rule as the JSON of its `FormalExpression`.
fn rule_json(form: &FormDef, rule: &ecrf_core::study::Rule) -> String {
    let sev = match rule.severity {
        ecrf_core::Severity::Hard => "hard",
        ecrf_core::Severity::Soft => "soft",
    };
    let mut v = match &rule.kind {
        RuleKind::Compare { left, op, right } => serde_json::json!({
            "form": form.id, "kind": "compare", "left": left.to_string(),
            "op": op.symbol(), "right": right.to_string(), "severity": sev,
        }),
        RuleKind::NotFuture { item } => serde_json::json!({
            "form": form.id, "kind": "not_future", "item": item, "severity": sev,
        }),
        RuleKind::RequiredIf { item, when } => serde_json::json!({
            "form": form.id, "kind": "required_if", "item": item,
            "when": { "item": when.item, "is": when.is }, "severity": sev,
        }),
    };
    // A guard of a compare or not-future rule ("only when …").
    if let Some(w) = &rule.when {
        v["when"] = serde_json::json!({ "item": w.item, "is": w.is });
    }
    v.to_string()
}

fn write_study<W: Write>(x: &mut Xml<W>, study: &Study) -> std::io::Result<()> {
    x.open("Study", &[("OID", &study.id)])?;
    x.open("GlobalVariables", &[])?;
    x.text("StudyName", &[], &study.id)?;
    x.text("StudyDescription", &[], &study.title.en)?;
    x.text("ProtocolName", &[], &study.registry)?;
    x.close("GlobalVariables")?;

    let units: BTreeSet<&str> = study
        .forms
        .iter()
        .flat_map(|f| f.items.iter().filter_map(|i| i.unit.as_deref()))
        .collect();
    let unit_oid: BTreeMap<&str, String> = units
        .iter()
        .enumerate()
        .map(|(n, u)| (*u, format!("MU.{}", n + 1)))
        .collect();
    if !units.is_empty() {
        x.open("BasicDefinitions", &[])?;
        for (u, o) in &unit_oid {
            x.open("MeasurementUnit", &[("OID", o), ("Name", u)])?;
            x.open("Symbol", &[])?;
            x.text("TranslatedText", &[("xml:lang", "en")], u)?;
            x.close("Symbol")?;
            x.close("MeasurementUnit")?;
        }
        x.close("BasicDefinitions")?;
    }

    let mdv_name = format!("{} {}", study.id, study.version);
    x.open(
        "MetaDataVersion",
        &[("OID", &oid::mdv(&study.version)), ("Name", &mdv_name)],
    )?;
    x.open("Protocol", &[])?;
    x.translated("Description", &study.title)?;
    for (n, f) in study.forms.iter().enumerate() {
        let order = (n + 1).to_string();
        x.empty(
            "StudyEventRef",
            &[
                ("StudyEventOID", &oid::event(&f.id)),
                ("OrderNumber", &order),
                ("Mandatory", "No"),
            ],
        )?;
    }
    x.close("Protocol")?;

    for f in &study.forms {
        let kind = match f.repeat {
            Repeat::Once => "Scheduled",
            Repeat::ByDay => "Scheduled",
            Repeat::ByEvent => "Unscheduled",
        };
        x.open(
            "StudyEventDef",
            &[
                ("OID", &oid::event(&f.id)),
                ("Name", &f.name.en),
                (
                    "Repeating",
                    if f.repeat == Repeat::Once {
                        "No"
                    } else {
                        "Yes"
                    },
                ),
                ("Type", kind),
            ],
        )?;
        if let Some(w) = &f.when {
            x.translated("Description", w)?;
        }
        x.empty(
            "FormRef",
            &[("FormOID", &oid::form(&f.id)), ("Mandatory", "No")],
        )?;
        x.close("StudyEventDef")?;
    }

    for f in &study.forms {
        x.open(
            "FormDef",
            &[
                ("OID", &oid::form(&f.id)),
                ("Name", &f.name.en),
                ("Repeating", "No"),
            ],
        )?;
        x.translated("Description", &f.name)?;
        for (n, s) in f.sections.iter().enumerate() {
            let order = (n + 1).to_string();
            x.empty(
                "ItemGroupRef",
                &[
                    ("ItemGroupOID", &oid::group(&f.id, &s.id)),
                    ("Mandatory", "No"),
                    ("OrderNumber", &order),
                ],
            )?;
        }
        x.alias("ecrf:repeat", repeat_name(f.repeat))?;
        x.alias("ecrf:max_repeats", &f.max_repeats.to_string())?;
        x.alias(
            "ecrf:entry",
            if f.entry == Entry::System {
                "system"
            } else {
                "user"
            },
        )?;
        x.alias("ecrf:file", &f.file)?;
        x.close("FormDef")?;
    }

    for f in &study.forms {
        for s in &f.sections {
            x.open(
                "ItemGroupDef",
                &[
                    ("OID", &oid::group(&f.id, &s.id)),
                    ("Name", &s.id),
                    ("Repeating", "No"),
                ],
            )?;
            x.translated("Description", &s.label)?;
            for (n, item) in f.items.iter().enumerate() {
                if item.section != s.id {
                    continue;
                }
                let order = (n + 1).to_string();
                let item_oid = oid::item(&f.id, &item.id);
                let method = item.derived.as_deref().map(oid::method);
                let mut a: Vec<(&str, &str)> = vec![
                    ("ItemOID", &item_oid),
                    ("OrderNumber", &order),
                    ("Mandatory", if item.required { "Yes" } else { "No" }),
                ];
                if let Some(m) = &method {
                    a.push(("MethodOID", m));
                }
                x.empty("ItemRef", &a)?;
            }
            x.close("ItemGroupDef")?;
        }
    }

    for f in &study.forms {
        for item in &f.items {
            let item_oid = oid::item(&f.id, &item.id);
            let length = item.max_length.to_string();
            let digits = item.decimals.map(|d| d.to_string());
            let mut a: Vec<(&str, &str)> = vec![
                ("OID", &item_oid),
                ("Name", &item.id),
                ("DataType", odm_type(item.item_type)),
            ];
            if item.item_type == ItemType::Text {
                a.push(("Length", &length));
            }
            if let Some(d) = &digits {
                a.push(("SignificantDigits", d));
            }
            x.open("ItemDef", &a)?;
            if let Some(h) = &item.help {
                x.translated("Description", h)?;
            }
            x.translated("Question", &item.label)?;
            if let Some(u) = item.unit.as_deref().and_then(|u| unit_oid.get(u)) {
                x.empty("MeasurementUnitRef", &[("MeasurementUnitOID", u)])?;
            }
            for (range, soft_hard) in [(item.hard, "Hard"), (item.soft, "Soft")] {
                if let Some(r) = range {
                    for (cmp, v) in [("GE", r.min), ("LE", r.max)] {
                        x.open(
                            "RangeCheck",
                            &[("Comparator", cmp), ("SoftHard", soft_hard)],
                        )?;
                        x.text("CheckValue", &[], &v.to_string())?;
                        x.close("RangeCheck")?;
                    }
                }
            }
            match (item.item_type, &item.codelist) {
                (_, Some(cl)) => x.empty("CodeListRef", &[("CodeListOID", &oid::codelist(cl))])?,
                (t @ (ItemType::YesNo | ItemType::YesNoUnk), None) => x.empty(
                    "CodeListRef",
                    &[("CodeListOID", &oid::builtin(type_name(t)))],
                )?,
                _ => {}
            }
            x.alias("ecrf:type", type_name(item.item_type))?;
            if !item.missing.is_empty() {
                let codes: Vec<&str> = item.missing.iter().map(|m| m.code()).collect();
                x.alias("ecrf:missing", &codes.join(" "))?;
            }
            if let Some(c) = &item.ask_when {
                let v = serde_json::json!({ "item": c.item, "is": c.is });
                x.alias("ecrf:ask_when", &v.to_string())?;
            }
            x.close("ItemDef")?;
        }
    }

    let mut lists: Vec<(String, String, Option<Text>, Vec<ecrf_core::study::Code>)> = study
        .codelists
        .values()
        .map(|cl| {
            (
                oid::codelist(&cl.name),
                cl.name.clone(),
                Some(cl.label.clone()),
                cl.codes.clone(),
            )
        })
        .collect();
    for t in [ItemType::YesNo, ItemType::YesNoUnk] {
        let probe = ecrf_core::ItemDef {
            id: String::new(),
            section: String::new(),
            label: Text {
                en: String::new(),
                zh: String::new(),
            },
            help: None,
            item_type: t,
            unit: None,
            hard: None,
            soft: None,
            decimals: None,
            codelist: None,
            max_length: 0,
            required: false,
            missing: Vec::new(),
            ask_when: None,
            derived: None,
        };
        lists.push((
            oid::builtin(type_name(t)),
            type_name(t).to_string(),
            None,
            study.codes_for(&probe),
        ));
    }
    for (list_oid, name, label, codes) in &lists {
        x.open(
            "CodeList",
            &[("OID", list_oid), ("Name", name), ("DataType", "text")],
        )?;
        if let Some(l) = label {
            x.translated("Description", l)?;
        }
        for c in codes {
            x.open("CodeListItem", &[("CodedValue", &c.code)])?;
            x.translated("Decode", &c.label)?;
            x.close("CodeListItem")?;
        }
        if label.is_none() {
            x.alias("ecrf:builtin", name)?;
        }
        x.close("CodeList")?;
    }

    for f in &study.forms {
        for rule in &f.rules {
            x.open(
                "ConditionDef",
                &[("OID", &oid::rule(&rule.id)), ("Name", &rule.id)],
            )?;
            x.translated("Description", &rule.message)?;
            x.text(
                "FormalExpression",
                &[("Context", "ecrf-rule")],
                &rule_json(f, rule),
            )?;
            x.close("ConditionDef")?;
        }
    }

    let methods: BTreeSet<&str> = study
        .forms
        .iter()
        .flat_map(|f| f.items.iter().filter_map(|i| i.derived.as_deref()))
        .collect();
    for m in methods {
        x.open(
            "MethodDef",
            &[
                ("OID", &oid::method(m)),
                ("Name", m),
                ("Type", "Computation"),
            ],
        )?;
        x.open("Description", &[])?;
        x.text(
            "TranslatedText",
            &[("xml:lang", "en")],
            crate::csv::derivation_text(m),
        )?;
        x.close("Description")?;
        x.text("FormalExpression", &[("Context", "ecrf")], m)?;
        x.close("MethodDef")?;
    }
    x.close("MetaDataVersion")?;
    x.close("Study")
}

fn write_admin<W: Write>(x: &mut Xml<W>, study: &Study, data: &TrialData) -> std::io::Result<()> {
    x.open("AdminData", &[("StudyOID", &study.id)])?;
    for u in &data.users {
        let user_type = match u.role.as_str() {
            "investigator" => "Investigator",
            "data_manager" | "monitor" => "Sponsor",
            _ => "Other",
        };
        x.open(
            "User",
            &[
                ("OID", &oid::user(&u.site, &u.username)),
                ("UserType", user_type),
            ],
        )?;
        x.text("LoginName", &[], &u.username)?;
        x.text("DisplayName", &[], &format!("{} ({})", u.username, u.role))?;
        x.text("FullName", &[], &u.name)?;
        x.empty("LocationRef", &[("LocationOID", &oid::location(&u.site))])?;
        x.close("User")?;
    }
    let mdv = oid::mdv(&study.version);
    for site in &data.sites {
        x.open(
            "Location",
            &[
                ("OID", &oid::location(site)),
                ("Name", &format!("Site {site}")),
                ("LocationType", "Site"),
            ],
        )?;
        x.empty(
            "MetaDataVersionRef",
            &[
                ("StudyOID", &study.id),
                ("MetaDataVersionOID", &mdv),
                ("EffectiveDate", "2025-10-01"),
            ],
        )?;
        x.close("Location")?;
    }
    for meaning in [SignatureMeaning::Approval, SignatureMeaning::Review] {
        x.open(
            "SignatureDef",
            &[
                ("OID", &oid::signature_def(meaning_name(meaning))),
                ("Methodology", "Electronic"),
            ],
        )?;
        let (en, zh) = meaning.statement();
        x.text("Meaning", &[], &format!("{en} / {zh}"))?;
        x.text(
            "LegalReason",
            &[],
            "Electronic signature (21 CFR Part 11): the signer's user id and password, bound to \
             the SHA-256 of every value it covers",
        )?;
        x.close("SignatureDef")?;
    }
    x.close("AdminData")
}

/// A signature meaning's name (`approval`, `review`), as in the store.
fn meaning_name(m: SignatureMeaning) -> &'static str {
    match m {
        SignatureMeaning::Approval => "approval",
        SignatureMeaning::Review => "review",
    }
}

/// One `Signature`: `ID` is `SG.` + the signing event's change id; signer, site, meaning, local
/// time.
fn write_signature<W: Write>(x: &mut Xml<W>, s: &SignatureRecord) -> std::io::Result<()> {
    let id = ["SG.", s.id.as_str()].concat();
    x.open("Signature", &[("ID", &id)])?;
    x.empty("UserRef", &[("UserOID", &oid::user(&s.site, &s.signer))])?;
    x.empty("LocationRef", &[("LocationOID", &oid::location(&s.site))])?;
    x.empty(
        "SignatureRef",
        &[("SignatureOID", &oid::signature_def(meaning_name(s.meaning)))],
    )?;
    x.text("DateTimeStamp", &[], &local_stamp(&s.utc, &s.local_offset))?;
    x.close("Signature")
}

/// The local time of a change, with its offset (UTC when the offset is unreadable).
fn local_stamp(utc: &str, offset: &str) -> String {
    let Ok(t) = DateTime::parse_from_rfc3339(utc) else {
        return utc.to_string();
    };
    match offset.parse::<FixedOffset>() {
        Ok(off) => t
            .with_timezone(&off)
            .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string(),
        Err(_) => utc.to_string(),
    }
}

/// An item value as ODM writes it.
pub fn odm_value(v: &Value) -> String {
    match v {
        Value::DateTime(t) => t.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        Value::Codes(cs) => cs.join(" "),
        other => other.to_string(),
    }
}

/// The local time stamp of the last change written (a save's changes share one).
#[derive(Default)]
struct StampCache {
    key: (String, String),
    stamp: String,
}

/// One `AuditRecord`: `ID` is `AR.` + the change id; user, site, local time, reason. The OIDs
/// are written in parts ([`oid::user`], [`oid::location`] spell the same).
fn write_audit_record<W: Write>(
    x: &mut Xml<W>,
    cache: &mut StampCache,
    site: &str,
    c: &ecrf_log::Change,
) -> std::io::Result<()> {
    if cache.key.0 != c.utc || cache.key.1 != c.local_offset {
        cache.stamp = local_stamp(&c.utc, &c.local_offset);
        cache.key = (c.utc.clone(), c.local_offset.clone());
    }
    x.open_parts("AuditRecord", &[("ID", &["AR.", &c.change_id])])?;
    x.empty_parts("UserRef", &[("UserOID", &["USR.", site, ".", &c.user])])?;
    x.empty_parts("LocationRef", &[("LocationOID", &["LOC.", site])])?;
    x.text("DateTimeStamp", &[], &cache.stamp)?;
    if let Some(r) = &c.reason {
        x.text("ReasonForChange", &[], r)?;
    }
    x.close("AuditRecord")
}

fn write_clinical<W: Write>(
    x: &mut Xml<W>,
    study: &Study,
    data: &TrialData,
    forms: &[&FormDef],
    audit: bool,
) -> Result<(), ExportError> {
    let io = |e: std::io::Error| ExportError::Io {
        path: Default::default(),
        source: e,
    };
    let wanted: BTreeSet<&str> = forms.iter().map(|f| f.id.as_str()).collect();
    let sections: std::collections::HashMap<(&str, &str), &str> = study
        .forms
        .iter()
        .flat_map(|f| {
            f.items
                .iter()
                .map(move |i| ((f.id.as_str(), i.id.as_str()), i.section.as_str()))
        })
        .collect();
    x.open(
        "ClinicalData",
        &[
            ("StudyOID", &study.id),
            ("MetaDataVersionOID", &oid::mdv(&study.version)),
        ],
    )
    .map_err(io)?;
    x.pretty = false;
    let mut stamps = StampCache::default();
    // Changes by subject, in log order.
    let mut by_subject: std::collections::HashMap<&str, Vec<crate::source::SiteChange>> =
        std::collections::HashMap::new();
    if audit {
        for sc in data.changes() {
            if let Some(s) = sc.change.subject.as_deref() {
                by_subject.entry(s).or_default().push(sc);
            }
        }
    }
    // The signature written for each (subject, scope): the latest; in a snapshot only a valid one.
    let mut signatures: BTreeMap<(&str, &str), &SignatureRecord> = BTreeMap::new();
    for s in &data.signatures {
        if audit || s.valid {
            signatures.insert((s.subject.as_str(), s.scope.as_str()), s);
        }
    }
    for subject in &data.subjects {
        let tx_attr: &[(&str, &str)] = if audit {
            &[("TransactionType", "Upsert")]
        } else {
            &[]
        };
        let mut a = vec![("SubjectKey", subject.subject.as_str())];
        a.extend_from_slice(tx_attr);
        x.open("SubjectData", &a).map_err(io)?;
        let changes: &[crate::source::SiteChange] = by_subject
            .get(subject.subject.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        if let Some(created) = changes
            .iter()
            .find(|c| c.change.kind == ecrf_log::ChangeKind::SubjectCreated)
        {
            write_audit_record(x, &mut stamps, created.site, created.change).map_err(io)?;
        }
        if let Some(s) = signatures.get(&(subject.subject.as_str(), "casebook")) {
            write_signature(x, s).map_err(io)?;
        }
        x.empty("SiteRef", &[("LocationOID", &oid::location(&subject.site))])
            .map_err(io)?;
        let values = data.values.get(&subject.subject);
        // Form instances with data (current values, or changes when auditing).
        let mut instances: BTreeSet<(usize, Option<u32>, String)> = BTreeSet::new();
        let mut add_instance = |inst: &str| {
            let (form, rep) = match inst.split_once('#') {
                Some((f, n)) => (f, n.parse().ok()),
                None => (inst, None),
            };
            if let Some(pos) = study.forms.iter().position(|f| f.id == form)
                && wanted.contains(form)
            {
                instances.insert((pos, rep, inst.to_string()));
            }
        };
        if audit {
            // A save's changes are of one form instance, one after the other.
            let mut last: Option<&str> = None;
            for c in changes {
                if c.change.kind == ecrf_log::ChangeKind::ItemSet
                    && let Some(f) = c.change.form.as_deref()
                    && last != Some(f)
                {
                    add_instance(f);
                    last = Some(f);
                }
            }
        } else if let Some(v) = values {
            for inst in v.keys() {
                add_instance(inst);
            }
        }
        // Clinical changes of this subject by (form instance, section), in log order.
        let mut by_group: std::collections::HashMap<(&str, &str), Vec<crate::source::SiteChange>> =
            std::collections::HashMap::new();
        for &c in changes {
            let ch = c.change;
            if ch.kind != ecrf_log::ChangeKind::ItemSet {
                continue;
            }
            let (Some(inst), Some(item)) = (ch.form.as_deref(), ch.item.as_deref()) else {
                continue;
            };
            let form_id = inst.split('#').next().unwrap_or_default();
            if let Some(section) = sections.get(&(form_id, item)) {
                by_group.entry((inst, section)).or_default().push(c);
            }
        }
        for (pos, rep, inst) in instances {
            let form = &study.forms[pos];
            let rep_s = rep.map(|r| r.to_string());
            let mut ea = vec![("StudyEventOID", oid::event(&form.id))];
            if let Some(r) = &rep_s {
                ea.push(("StudyEventRepeatKey", r.clone()));
            }
            if audit {
                ea.push(("TransactionType", "Upsert".into()));
            }
            let ea: Vec<(&str, &str)> = ea.iter().map(|(k, v)| (*k, v.as_str())).collect();
            x.open("StudyEventData", &ea).map_err(io)?;
            let mut fa = vec![("FormOID", oid::form(&form.id))];
            if audit {
                fa.push(("TransactionType", "Upsert".into()));
            }
            let fa: Vec<(&str, &str)> = fa.iter().map(|(k, v)| (*k, v.as_str())).collect();
            x.open("FormData", &fa).map_err(io)?;
            if let Some(s) = signatures.get(&(subject.subject.as_str(), inst.as_str())) {
                write_signature(x, s).map_err(io)?;
            }
            for section in &form.sections {
                // (item, value, change) in order: log order when auditing, form order otherwise.
                let mut entries: Vec<(&str, Option<String>, Option<crate::source::SiteChange>)> =
                    Vec::new();
                if audit {
                    for c in by_group
                        .get(&(inst.as_str(), section.id.as_str()))
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                    {
                        let ch = c.change;
                        let item = ch.item.as_deref().unwrap_or_default();
                        let v = ch
                            .new_value
                            .as_deref()
                            .map(|j| Value::from_json(j).map(|v| odm_value(&v)))
                            .transpose()
                            .map_err(|e| {
                                ExportError::Data(format!(
                                    "{} {inst} {item}: stored value is unreadable: {e}",
                                    subject.subject
                                ))
                            })?;
                        entries.push((item, v, Some(*c)));
                    }
                } else if let Some(vals) = values.and_then(|v| v.get(&inst)) {
                    for item in form.section_items(&section.id) {
                        if let Some(v) = vals.get(&item.id) {
                            entries.push((item.id.as_str(), Some(odm_value(v)), None));
                        }
                    }
                }
                if entries.is_empty() {
                    continue;
                }
                let ga_oid = oid::group(&form.id, &section.id);
                let mut ga = vec![("ItemGroupOID", ga_oid.as_str())];
                if audit {
                    ga.push(("TransactionType", "Upsert"));
                }
                x.open("ItemGroupData", &ga).map_err(io)?;
                for (item, value, change) in entries {
                    let item_oid: [&str; 4] = ["IT.", &form.id, ".", item];
                    let mut ia: Vec<(&str, &[&str])> = vec![("ItemOID", &item_oid)];
                    let tt = change.map(|c| match (&c.change.old_value, &value) {
                        (_, None) => "Remove",
                        (None, Some(_)) => "Insert",
                        (Some(_), Some(_)) => "Update",
                    });
                    let tt = tt.as_slice();
                    if !tt.is_empty() {
                        ia.push(("TransactionType", tt));
                    }
                    let (attr, v) = match value.as_deref() {
                        Some(v) => ("Value", v),
                        None => ("IsNull", "Yes"),
                    };
                    let v = [v];
                    ia.push((attr, &v));
                    match change {
                        Some(c) => {
                            x.open_parts("ItemData", &ia).map_err(io)?;
                            write_audit_record(x, &mut stamps, c.site, c.change).map_err(io)?;
                            x.close("ItemData").map_err(io)?;
                        }
                        None => x.empty_parts("ItemData", &ia).map_err(io)?,
                    }
                }
                x.close("ItemGroupData").map_err(io)?;
            }
            x.close("FormData").map_err(io)?;
            x.close("StudyEventData").map_err(io)?;
        }
        x.close("SubjectData").map_err(io)?;
    }
    x.close("ClinicalData").map_err(io)?;
    Ok(())
}

/// Writes the definition only (for `ecrf study export-odm` and the round trip).
pub fn write_definition<W: Write>(out: W, study: &Study, created: &str) -> std::io::Result<()> {
    let mut x = Xml {
        out,
        depth: 0,
        pretty: true,
    };
    header(&mut x, study, created, "Snapshot")?;
    write_study(&mut x, study)?;
    x.close("ODM")?;
    x.out.flush()
}

fn header<W: Write>(
    x: &mut Xml<W>,
    study: &Study,
    created: &str,
    file_type: &str,
) -> std::io::Result<()> {
    x.out
        .write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
    let file_oid = format!("{}.{}.{}", study.id, file_type, created);
    x.open(
        "ODM",
        &[
            ("xmlns", NS),
            ("FileType", file_type),
            ("FileOID", &file_oid),
            ("CreationDateTime", created),
            ("ODMVersion", "1.3.2"),
            ("Originator", "ecrf"),
            ("SourceSystem", "ecrf"),
            ("SourceSystemVersion", env!("CARGO_PKG_VERSION")),
        ],
    )
}

/// Writes the definition, admin data and clinical data (`audit`: every change with its
/// `AuditRecord`, else the current values).
pub fn write_odm<W: Write>(
    out: W,
    study: &Study,
    data: &TrialData,
    forms: &[&FormDef],
    audit: bool,
    created: &str,
) -> Result<(), ExportError> {
    let io = |e: std::io::Error| ExportError::Io {
        path: Default::default(),
        source: e,
    };
    let mut x = Xml {
        out,
        depth: 0,
        pretty: true,
    };
    header(
        &mut x,
        study,
        created,
        if audit { "Transactional" } else { "Snapshot" },
    )
    .map_err(io)?;
    write_study(&mut x, study).map_err(io)?;
    write_admin(&mut x, study, data).map_err(io)?;
    write_clinical(&mut x, study, data, forms, audit)?;
    x.close("ODM").map_err(io)?;
    x.out.flush().map_err(io)
}
