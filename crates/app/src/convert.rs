//! The store's and core's types as the UI's types ([`crate::dto`]): texts, statuses, findings,
//! the study definition, stored values as shown. Pure conversions: nothing here reads the store.

use super::*;

pub(crate) fn txt(t: &ecrf_core::Text) -> Txt {
    Txt {
        en: t.en.clone(),
        zh: t.zh.clone(),
    }
}

pub(crate) fn finding_dto(f: &Finding) -> FindingDto {
    FindingDto {
        item: f.item.clone(),
        rule: f.rule.clone(),
        severity: f.severity,
        message: txt(&f.message),
    }
}

/// The study definition as the UI draws it.
pub fn study_dto(study: &Study) -> StudyDto {
    let range = |r: &Option<ecrf_core::study::Range>| {
        r.map(|r| RangeDto {
            min: r.min.to_string(),
            max: r.max.to_string(),
        })
    };
    let forms = study
        .forms
        .iter()
        .map(|f| FormDto {
            id: f.id.clone(),
            name: txt(&f.name),
            when: f.when.as_ref().map(txt),
            repeat: f.repeat,
            max_repeats: f.max_repeats,
            system: f.entry == EntryKind::System,
            sections: f
                .sections
                .iter()
                .map(|s| SectionDto {
                    id: s.id.clone(),
                    label: txt(&s.label),
                })
                .collect(),
            items: f
                .items
                .iter()
                .map(|i| ItemDto {
                    id: i.id.clone(),
                    section: i.section.clone(),
                    label: txt(&i.label),
                    help: i.help.as_ref().map(txt),
                    kind: match i.item_type {
                        ItemType::Integer => ItemKind::Integer,
                        ItemType::Decimal => ItemKind::Decimal,
                        ItemType::Date => ItemKind::Date,
                        ItemType::DateTime => ItemKind::DateTime,
                        ItemType::Choice | ItemType::YesNo | ItemType::YesNoUnk => ItemKind::Choice,
                        ItemType::MultiChoice => ItemKind::MultiChoice,
                        ItemType::Text => ItemKind::Text,
                    },
                    unit: i.unit.clone(),
                    hard: range(&i.hard),
                    soft: range(&i.soft),
                    decimals: i.decimals,
                    codes: study
                        .codes_for(i)
                        .iter()
                        .map(|c| CodeDto {
                            code: c.code.clone(),
                            label: txt(&c.label),
                        })
                        .collect(),
                    max_length: i.max_length as u32,
                    required: i.required,
                    missing: i.missing.iter().map(|m| m.code().to_string()).collect(),
                    conditional: i.ask_when.is_some(),
                    derived: i.derived.is_some(),
                })
                .collect(),
        })
        .collect();
    StudyDto {
        id: study.id.clone(),
        version: study.version.clone(),
        registry: study.registry.clone(),
        title: txt(&study.title),
        forms,
        missing_codes: MissingCode::ALL
            .iter()
            .map(|m| CodeDto {
                code: m.code().into(),
                label: Txt {
                    en: m.label_en().into(),
                    zh: m.label_zh().into(),
                },
            })
            .collect(),
        blocked: None,
    }
}

/// The message of the first confirmed warning kept with a value.
pub(crate) fn warning_text(json: &str) -> Option<Txt> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let first = v.as_array()?.first()?;
    Some(Txt {
        en: first["message"]["en"].as_str()?.to_string(),
        zh: first["message"]["zh"].as_str()?.to_string(),
    })
}

/// A stored value (JSON of `Value`) as the screen shows it; an unreadable one as stored.
pub(crate) fn shown_value(v: &Option<String>) -> Option<String> {
    v.as_deref().map(|j| {
        Value::from_json(j)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| j.to_string())
    })
}
