//! A subject's filled CRF: every form instance with data, then the audit appendix.
//!
//! Owns how a [`Casebook`] handed to it reads on paper: code labels with their codes, numbers
//! with their unit, missing-data codes in words, confirmed warnings in words. Invariants: it
//! reads nothing but the casebook and the study (whoever holds the data reads the casebook:
//! `ecrf_store::Store::casebook`); the instances printed are the casebook's, in its order
//! (schedule order then repeat number); the appendix lists every change of the subject, each
//! item's history together and oldest first.

use chrono::{DateTime, FixedOffset};
use ecrf_core::{FormKey, Study, Value};
use ecrf_log::{Casebook, CasebookForm, Change, ChangeKind, Query, Signature};

use crate::blank::form_heading;
use crate::layout::{BODY, Column, Doc, LEFT, RIGHT, SMALL};

/// `DLY#3 — Daily log, day 3`.
fn instance_heading(study: &Study, key: &FormKey, lang: &str) -> String {
    let Some(form) = study.form(&key.form) else {
        return key.to_string();
    };
    let base = form_heading(form, lang);
    match (key.repeat, form.repeat) {
        (None, _) => base,
        (Some(n), ecrf_core::study::Repeat::ByDay) => {
            if lang == "zh" {
                format!("{base}（第{n}天）")
            } else {
                format!("{base}, day {n}")
            }
        }
        (Some(n), _) => {
            if lang == "zh" {
                format!("{base}（事件{n}）")
            } else {
                format!("{base}, event {n}")
            }
        }
    }
}

/// A value as read on paper: `Running [RUNNING]`, `72 mmHg`, `@ND Not done`.
pub(crate) fn value_text(
    study: &Study,
    form_id: &str,
    item: &str,
    v: &Value,
    lang: &str,
) -> String {
    let def = study.form(form_id).and_then(|f| f.item(item));
    let label = |code: &str| -> String {
        def.and_then(|d| study.codes_for(d).into_iter().find(|k| k.code == code))
            .map(|k| format!("{} [{code}]", k.label.get(lang)))
            .unwrap_or_else(|| code.to_string())
    };
    match v {
        Value::Code(c) => label(c),
        Value::Codes(cs) => cs.iter().map(|c| label(c)).collect::<Vec<_>>().join("; "),
        Value::Missing(m) => {
            let words = if lang == "zh" {
                m.label_zh()
            } else {
                m.label_en()
            };
            format!("{v} {words}")
        }
        Value::Int(_) | Value::Dec(_) => match def.and_then(|d| d.unit.as_ref()) {
            Some(u) => format!("{v} {u}"),
            None => v.to_string(),
        },
        _ => v.to_string(),
    }
}

/// The messages of confirmed warnings (stored as a JSON list of findings).
fn warning_text(json: &str, lang: &str) -> String {
    let parsed: Result<Vec<serde_json::Value>, _> = serde_json::from_str(json);
    match parsed {
        Ok(list) => list
            .iter()
            .filter_map(|f| f.get("message").and_then(|m| m.get(lang)))
            .filter_map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => json.to_string(),
    }
}

fn local_time(c: &Change) -> String {
    let offset: Option<FixedOffset> = c.local_offset.parse().ok();
    match (DateTime::parse_from_rfc3339(&c.utc), offset) {
        (Ok(t), Some(off)) => t
            .with_timezone(&off)
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        _ => format!("{} ({})", c.utc, c.local_offset),
    }
}

/// The whole filled CRF of one subject.
pub(crate) fn subject(doc: &mut Doc<'_>, study: &Study, data: &Casebook, lang: &str) {
    let w = doc.words;
    doc.set_subject(&data.subject);
    doc.start_form(&format!("{} {}", w.filled_crf, data.subject));
    doc.title(
        study.title.get(lang),
        &format!(
            "{} · {} · {} {} · {} {} · {} {}",
            study.id,
            study.registry,
            w.version,
            study.version,
            w.site,
            data.site,
            w.subject,
            data.subject
        ),
    );
    doc.section(w.forms_printed, 20.0);
    if data.forms.is_empty() {
        doc.paragraph(LEFT + 4.0, RIGHT - LEFT - 4.0, BODY, w.no_data);
    }
    for f in &data.forms {
        let text = format!(
            "{}  ({})",
            instance_heading(study, &f.key, lang),
            f.values.len()
        );
        doc.paragraph(LEFT + 4.0, RIGHT - LEFT - 4.0, BODY, &text);
    }
    let without: Vec<String> = study
        .forms
        .iter()
        .filter(|f| !data.forms.iter().any(|i| i.key.form == f.id))
        .map(|f| form_heading(f, lang))
        .collect();
    if !without.is_empty() {
        doc.section(w.forms_without_data, 20.0);
        doc.paragraph(LEFT + 4.0, RIGHT - LEFT - 4.0, BODY, &without.join(";  "));
    }

    let casebook: Vec<&Signature> = data
        .signatures
        .iter()
        .filter(|s| s.scope == "casebook")
        .collect();
    if !casebook.is_empty() {
        doc.section(w.esignatures, 20.0);
        for s in casebook {
            let line = signature_line(s, data, lang);
            doc.paragraph(LEFT + 4.0, RIGHT - LEFT - 4.0, BODY, &line);
        }
    }

    for f in &data.forms {
        instance(doc, study, f, data, lang);
    }
    appendix(doc, study, data, lang);
}

/// `Signed electronically by Dr Wang (wang), 2026-04-01 10:12:03 +08:00 — "I approve…" — valid`.
fn signature_line(s: &Signature, data: &Casebook, lang: &str) -> String {
    let w = crate::words::words(lang);
    let (en, zh) = s.meaning.statement();
    let meaning = if lang == "zh" { zh } else { en };
    let when = match (
        DateTime::parse_from_rfc3339(&s.utc),
        s.local_offset.parse::<FixedOffset>(),
    ) {
        (Ok(t), Ok(off)) => t
            .with_timezone(&off)
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        _ => format!("{} UTC ({})", s.utc, s.local_offset),
    };
    let scope = if s.scope == "casebook" {
        w.casebook
    } else {
        s.scope.as_str()
    };
    let name = data
        .names
        .get(&s.signer)
        .filter(|n| !n.is_empty())
        .unwrap_or(&s.name);
    format!(
        "{}: {name} ({}), {when}, {scope} — “{meaning}” — {}",
        w.signed_by,
        s.signer,
        if s.valid {
            w.signature_valid
        } else {
            w.signature_broken
        }
    )
}

fn query_state_word(w: &crate::words::Words, q: &Query) -> &'static str {
    match q.state {
        ecrf_core::query::QueryState::Open => w.query_states[0],
        ecrf_core::query::QueryState::Answered => w.query_states[1],
        ecrf_core::query::QueryState::Closed => w.query_states[2],
    }
}

fn instance(
    doc: &mut Doc<'_>,
    study: &Study,
    casebook_form: &CasebookForm,
    data: &Casebook,
    lang: &str,
) {
    let CasebookForm {
        key,
        values,
        verified,
        version,
    } = casebook_form;
    let instance_id = key.to_string();
    let w = doc.words;
    let heading = instance_heading(study, key, lang);
    doc.set_version(Some(version));
    doc.start_form(&heading);
    let Some(form) = study.form(&key.form) else {
        return;
    };
    let when = form
        .when
        .as_ref()
        .map(|t| format!("{}: {}", w.when, t.get(lang)))
        .unwrap_or_default();
    doc.title(&heading, &when);
    let cols = vec![
        Column {
            title: w.col_item.into(),
            width: 200.0,
        },
        Column {
            title: w.col_value.into(),
            width: 150.0,
        },
        Column {
            title: w.col_note.into(),
            width: RIGHT - LEFT - 350.0,
        },
    ];
    doc.table_start(cols);
    for section in &form.sections {
        let items = form.section_items(&section.id);
        if items.is_empty() {
            continue;
        }
        doc.table_group(section.label.get(lang));
        for item in items {
            let state = values.iter().find(|s| s.item == item.id);
            let value = state
                .map(|s| value_text(study, &form.id, &item.id, &s.value, lang))
                .unwrap_or_else(|| w.not_entered.to_string());
            let mut notes: Vec<String> = match state {
                Some(_) if item.derived.is_some() => vec![format!("({})", w.derived)],
                _ => state
                    .and_then(|s| s.warning.as_deref())
                    .map(|j| format!("{}: {}", w.warning_confirmed, warning_text(j, lang)))
                    .into_iter()
                    .collect(),
            };
            if verified.contains(&item.id) {
                notes.push(format!("✓ {}", w.sdv_verified));
            }
            for q in data
                .queries
                .iter()
                .filter(|q| q.form == instance_id && q.item == item.id)
            {
                notes.push(format!(
                    "{} ({}, {}): {}",
                    w.query,
                    query_state_word(w, q),
                    q.raised_by,
                    q.text
                ));
            }
            let note = notes.join("; ");
            let label = format!("{} [{}]", item.label.get(lang), item.id);
            doc.table_row(&[label, value, note], BODY - 0.5);
        }
    }
    doc.table_end();
    let signed: Vec<&Signature> = data
        .signatures
        .iter()
        .filter(|s| s.scope == instance_id)
        .collect();
    if signed.is_empty() {
        doc.signature_block(w.signature_note_filled);
    } else {
        doc.section(w.esignatures, 20.0);
        for s in signed {
            let line = signature_line(s, data, lang);
            doc.paragraph(LEFT + 4.0, RIGHT - LEFT - 4.0, BODY, &line);
        }
    }
}

/// An oversight step in the audit appendix in words: `MAP: query raised “Chart says 62?”`.
fn oversight_text(c: &Change, w: &crate::words::Words) -> Option<String> {
    let item = c.item.as_deref().unwrap_or("");
    let text = || {
        c.new_value
            .as_deref()
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
            .and_then(|v| v["text"].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let step = match c.kind {
        ChangeKind::QueryRaised => w.query_steps[0],
        ChangeKind::QueryAnswered => w.query_steps[1],
        ChangeKind::QueryClosed => w.query_steps[2],
        ChangeKind::QueryReopened => w.query_steps[3],
        ChangeKind::SdvMarked => return Some(format!("{item}: ✓ {}", w.sdv_verified)),
        ChangeKind::Signed => return Some(w.signed_by.to_string()),
        // Printed as a value change, the subject's creation, or by the kind's name.
        ChangeKind::StoreCreated
        | ChangeKind::UserAdded
        | ChangeKind::SubjectCreated
        | ChangeKind::ItemSet
        | ChangeKind::LeaseLoaded
        | ChangeKind::Randomized
        | ChangeKind::DataExported
        | ChangeKind::LoginFailed
        | ChangeKind::Locked
        | ChangeKind::Unlocked
        | ChangeKind::UserRole
        | ChangeKind::UserDeactivated
        | ChangeKind::PasswordReset
        | ChangeKind::PasswordChanged
        | ChangeKind::LockHeld
        | ChangeKind::StudyPublished
        | ChangeKind::SiteActivated
        | ChangeKind::FormVersioned => return None,
    };
    Some(format!("{item}: {step} “{}”", text()))
}

fn appendix(doc: &mut Doc<'_>, study: &Study, data: &Casebook, lang: &str) {
    let w = doc.words;
    doc.set_version(None);
    doc.start_form(w.audit_title);
    doc.title(
        &format!("{} — {} {}", w.audit_title, w.subject, data.subject),
        "",
    );
    doc.paragraph(LEFT, RIGHT - LEFT, SMALL + 0.5, w.audit_intro);
    // Who is who: each user of the trail once, with the full name.
    let mut users: Vec<&str> = Vec::new();
    for c in &data.audit {
        if !users.contains(&c.user.as_str()) {
            users.push(&c.user);
        }
    }
    let legend: Vec<String> = users
        .iter()
        .map(|u| match data.names.get(*u).filter(|n| !n.is_empty()) {
            Some(name) => format!("{u} = {name}"),
            None => (*u).to_string(),
        })
        .collect();
    doc.paragraph(
        LEFT,
        RIGHT - LEFT,
        SMALL + 0.5,
        &format!("{}: {}", w.users, legend.join("; ")),
    );
    doc.y -= 4.0;
    // Group by instance (subject-level changes first), each item's history together.
    let mut groups: Vec<(Option<String>, Vec<&Change>)> = Vec::new();
    for c in &data.audit {
        match groups.iter_mut().find(|(f, _)| *f == c.form) {
            Some((_, list)) => list.push(c),
            None => groups.push((c.form.clone(), vec![c])),
        }
    }
    let form_pos = |f: &Option<String>| -> (usize, Option<u32>) {
        match f.as_deref().map(|f| FormKey::parse(study, f)) {
            None => (0, None),
            Some(Ok(k)) => (
                1 + study
                    .forms
                    .iter()
                    .position(|d| d.id == k.form)
                    .unwrap_or(study.forms.len()),
                k.repeat,
            ),
            Some(Err(_)) => (usize::MAX, None),
        }
    };
    groups.sort_by_key(|(f, _)| form_pos(f));
    let rest = RIGHT - LEFT - 24.0 - 108.0 - 70.0;
    doc.table_start(vec![
        Column {
            title: w.col_seq.into(),
            width: 24.0,
        },
        Column {
            title: w.col_when.into(),
            width: 108.0,
        },
        Column {
            title: w.col_who.into(),
            width: 70.0,
        },
        Column {
            title: w.col_change.into(),
            width: rest * 0.58,
        },
        Column {
            title: w.col_reason.into(),
            width: rest * 0.42,
        },
    ]);
    for (form, mut changes) in groups {
        let (form_def, heading) = match form.as_deref() {
            None => (None, format!("{} {}", w.subject, data.subject)),
            Some(f) => match FormKey::parse(study, f) {
                Ok(k) => (study.form(&k.form), instance_heading(study, &k, lang)),
                Err(_) => (None, f.to_string()),
            },
        };
        if let Some(def) = form_def {
            let pos = |i: &Option<String>| {
                i.as_deref()
                    .and_then(|i| def.items.iter().position(|d| d.id == i))
                    .unwrap_or(usize::MAX)
            };
            changes.sort_by_key(|c| (pos(&c.item), c.seq));
        }
        doc.table_group(&heading);
        for c in changes {
            let who = format!("{} ({})", c.user, c.role);
            let change = match (&c.form, &c.item) {
                (Some(f), Some(i)) => {
                    let form_id = f.split('#').next().unwrap_or(f);
                    let show = |v: &Option<String>| match v.as_deref() {
                        None => "∅".to_string(),
                        Some(j) => match Value::from_json(j) {
                            Ok(v) => value_text(study, form_id, i, &v, lang),
                            Err(_) => j.to_string(),
                        },
                    };
                    // The item id only: the form pages print each label with its id, and
                    // repeating every label here nearly doubles the Chinese text to lay out
                    // and subset (zh, 30 days: ~280 ms with labels, ~175 ms without).
                    format!("{i}: {} → {}", show(&c.old_value), show(&c.new_value))
                }
                _ if c.kind == ChangeKind::SubjectCreated => w.subject_created.to_string(),
                _ => c.kind.to_string(),
            };
            let change = oversight_text(c, w).unwrap_or(change);
            let mut reason = c.reason.clone().unwrap_or_default();
            if let Some(j) = &c.warning {
                if !reason.is_empty() {
                    reason.push_str("; ");
                }
                reason.push_str(&format!(
                    "{}: {}",
                    w.warning_confirmed,
                    warning_text(j, lang)
                ));
            }
            // A value taken from a laboratory file says which result it was.
            if let Some(p) = c
                .source
                .as_deref()
                .and_then(ecrf_log::body::Provenance::from_json)
            {
                if !reason.is_empty() {
                    reason.push_str("; ");
                }
                reason.push_str(&format!("{} {}", w.imported_from, p.summary()));
            }
            doc.table_row(
                &[c.seq.to_string(), local_time(c), who, change, reason],
                SMALL,
            );
        }
    }
    doc.table_end();
}
