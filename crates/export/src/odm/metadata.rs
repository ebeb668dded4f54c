//! The definition as ODM: `Study` with `GlobalVariables`, `BasicDefinitions` (units) and one
//! `MetaDataVersion` (protocol, events, forms, item groups, items, code lists, edit rules as
//! `ConditionDef`s, derivations as `MethodDef`s).
//!
//! Invariant: everything the loader reads is written here, natively or in `ecrf:` aliases, so
//! [`crate::odm_import`] gives the same definition back (definition → ODM → definition).

use ecrf_core::lab::Conversion;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use ecrf_core::study::{Entry, ItemType, Repeat, RuleKind};
use ecrf_core::{FormDef, Study, Text};

use super::{Xml, oid, type_name};

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

/// `Study`: the whole definition.
pub(super) fn write_study<W: Write>(x: &mut Xml<W>, study: &Study) -> std::io::Result<()> {
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
            if let Some(lab) = &item.lab {
                // The first LOINC code as the usual ODM alias (one alias per context); every
                // code and the rest of the mapping in our own.
                if let Some(code) = lab.loinc.first() {
                    x.alias("LOINC", code)?;
                }
                let from: Vec<serde_json::Value> = lab
                    .units
                    .iter()
                    .skip(1)
                    .map(|u| match u.conversion {
                        Conversion::Multiply(m) => {
                            serde_json::json!({ "unit": u.unit, "multiply": m.to_string() })
                        }
                        Conversion::Divide(d) => {
                            serde_json::json!({ "unit": u.unit, "divide": d.to_string() })
                        }
                    })
                    .collect();
                let v = serde_json::json!({
                    "loinc": lab.loinc,
                    "worst": lab.worst.word(),
                    "from": from
                });
                x.alias("ecrf:lab", &v.to_string())?;
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
            lab: None,
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
