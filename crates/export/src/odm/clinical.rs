//! `ClinicalData`: a snapshot (one `ItemData` per current value and per derived item, computed
//! by `ecrf_core::outcome::derive_instance` as in every output; only signatures that still
//! hold) or, with the audit trail, every `item.set` of the log as an `ItemData` (Insert / Update
//! / Remove) with its `AuditRecord`, and every signature whether or not it still holds.
//!
//! Invariants: subjects in the export's order, form instances in definition order (then repeat),
//! item groups in section order; only the forms asked for; a stored value that cannot be read is
//! an error naming subject, form instance and item, never skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use ecrf_core::{FormDef, Study, Value};

use super::audit::{StampCache, write_audit_record, write_signature};
use super::{Xml, odm_value, oid};
use crate::ExportError;
use crate::source::{SignatureRecord, TrialData};

/// `ClinicalData` of the forms asked for (`audit`: every change with its `AuditRecord`).
pub(super) fn write_clinical<W: Write>(
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
    // Derived items travel in a snapshot beside the typed values (they are never changes, so a
    // transactional file with the audit trail carries only what was typed).
    let derived = if audit {
        Default::default()
    } else {
        data.derived(study, chrono::Utc::now())
    };
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
                    let own_derived = derived.get(&subject.subject).and_then(|d| d.get(&inst));
                    for item in form.section_items(&section.id) {
                        let v = vals
                            .get(&item.id)
                            .or_else(|| own_derived.and_then(|d| d.get(&item.id)));
                        if let Some(v) = v {
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
