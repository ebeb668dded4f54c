//! `ClinicalData`: a snapshot (one `ItemData` per current value and per derived item, computed
//! by `ecrf_core::outcome::derive_instance` as in every output; only signatures that still
//! hold) or, with the audit trail, every `item.set` of the log as an `ItemData` (Insert / Update
//! / Remove) with its `AuditRecord`, and every signature whether or not it still holds.
//!
//! Invariants: subjects in the export's order, form instances in definition order (then repeat),
//! item groups in section order; only the forms asked for; a stored value that cannot be read is
//! an error naming subject, form instance and item, never skipped.
//!
//! Cost: with the audit trail this writes every change of the log (half a million for a trial,
//! five million for ten), so the log is walked once and each change placed by indices: its
//! subject's position (looked up once per run of changes of one subject, as a save writes
//! them), its instance's slot among the subject's instances and its item's section, then sorted
//! by (instance, section, log order); a value's ODM text is read once per distinct JSON text.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

use ecrf_core::{FormDef, ItemDef, Study, Value};

use super::audit::{StampCache, write_audit_record, write_signature};
use super::{Xml, odm_value, oid};
use crate::ExportError;
use crate::source::{SignatureRecord, SiteChange, SubjectRecord, TrialData};

/// A form's sections in definition order, each with its items in definition order, and the
/// section of each item (its position): built once per export instead of per form instance.
struct Layout<'a> {
    sections: Vec<Vec<&'a ItemDef>>,
    section_of: HashMap<&'a str, usize>,
}

impl<'a> Layout<'a> {
    fn of(form: &'a FormDef) -> Layout<'a> {
        let sections = form
            .sections
            .iter()
            .map(|s| form.items.iter().filter(|i| i.section == s.id).collect())
            .collect();
        let mut section_of = HashMap::new();
        for item in &form.items {
            if let Some(pos) = form.sections.iter().position(|s| s.id == item.section) {
                section_of.insert(item.id.as_str(), pos);
            }
        }
        Layout {
            sections,
            section_of,
        }
    }
}

/// What the whole `ClinicalData` element shares: the study, the forms asked for, each form's
/// layout, the signature written for each (subject, scope) and the XML writer's caches.
struct Clinical<'a> {
    study: &'a Study,
    wanted: BTreeSet<&'a str>,
    /// Position of each form in the study (the first of an id).
    form_pos: HashMap<&'a str, usize>,
    layouts: Vec<Layout<'a>>,
    /// The signature written for each (subject, scope): the latest; in a snapshot only a valid
    /// one.
    signatures: BTreeMap<(&'a str, &'a str), &'a SignatureRecord>,
    audit: bool,
    stamps: StampCache,
    /// Each stored value's ODM text by its JSON (a trial's values are a few thousand distinct
    /// texts).
    spelled: HashMap<&'a str, String>,
    /// The ODM text of a current value (snapshot), reused from value to value.
    buf: String,
}

/// A form instance of a subject: its form's position, repeat number and name (`DLY#3`).
type Instance<'a> = (usize, Option<u32>, &'a str);

fn io(e: std::io::Error) -> ExportError {
    ExportError::Io {
        path: Default::default(),
        source: e,
    }
}

impl<'a> Clinical<'a> {
    /// The form instance `inst` names when its form is one asked for.
    fn instance(&self, inst: &'a str) -> Option<Instance<'a>> {
        let (form, rep) = match inst.split_once('#') {
            Some((f, n)) => (f, n.parse().ok()),
            None => (inst, None),
        };
        let pos = *self.form_pos.get(form)?;
        self.wanted.contains(form).then_some((pos, rep, inst))
    }

    /// Opens `StudyEventData` and `FormData` of an instance, with its signature.
    fn open_instance<W: Write>(
        &self,
        x: &mut Xml<W>,
        subject: &str,
        (pos, rep, inst): Instance<'_>,
    ) -> std::io::Result<()> {
        let form = &self.study.forms[pos];
        let event = oid::event(&form.id);
        let rep_s = rep.map(|r| r.to_string());
        let mut ea = vec![("StudyEventOID", event.as_str())];
        if let Some(r) = &rep_s {
            ea.push(("StudyEventRepeatKey", r));
        }
        if self.audit {
            ea.push(("TransactionType", "Upsert"));
        }
        x.open("StudyEventData", &ea)?;
        let form_oid = oid::form(&form.id);
        let mut fa = vec![("FormOID", form_oid.as_str())];
        if self.audit {
            fa.push(("TransactionType", "Upsert"));
        }
        x.open("FormData", &fa)?;
        if let Some(s) = self.signatures.get(&(subject, inst)) {
            write_signature(x, s)?;
        }
        Ok(())
    }

    /// Opens the `ItemGroupData` of a section of a form.
    fn open_group<W: Write>(
        &self,
        x: &mut Xml<W>,
        form: &FormDef,
        section: usize,
    ) -> std::io::Result<()> {
        let ga_oid = oid::group(&form.id, &form.sections[section].id);
        let mut ga = vec![("ItemGroupOID", ga_oid.as_str())];
        if self.audit {
            ga.push(("TransactionType", "Upsert"));
        }
        x.open("ItemGroupData", &ga)
    }

    /// `SubjectData` of a snapshot: each current (and derived) value of the instances asked
    /// for.
    fn snapshot_subject<W: Write>(
        &mut self,
        x: &mut Xml<W>,
        data: &'a TrialData,
        derived: &crate::table::Derived,
        subject: &'a SubjectRecord,
    ) -> Result<(), ExportError> {
        let Some(values) = data.values.get(&subject.subject) else {
            return Ok(());
        };
        let instances: BTreeSet<Instance> = values
            .keys()
            .filter_map(|inst| self.instance(inst))
            .collect();
        let subject_derived = derived.get(&subject.subject);
        for inst in instances {
            let (pos, _, name) = inst;
            let form = &self.study.forms[pos];
            self.open_instance(x, &subject.subject, inst).map_err(io)?;
            let vals = &values[name];
            let own_derived = subject_derived.and_then(|d| d.get(name));
            for (section, items) in self.layouts[pos].sections.iter().enumerate() {
                let mut entries = items
                    .iter()
                    .filter_map(|item| {
                        let v = vals
                            .get(&item.id)
                            .or_else(|| own_derived.and_then(|d| d.get(&item.id)))?;
                        Some((item.id.as_str(), v))
                    })
                    .peekable();
                if entries.peek().is_none() {
                    continue;
                }
                self.open_group(x, form, section).map_err(io)?;
                for (item, v) in entries {
                    self.buf.clear();
                    odm_value_into(&mut self.buf, v);
                    let item_oid: [&str; 4] = ["IT.", &form.id, ".", item];
                    x.empty_parts(
                        "ItemData",
                        &[("ItemOID", &item_oid), ("Value", &[self.buf.as_str()])],
                    )
                    .map_err(io)?;
                }
                x.close("ItemGroupData").map_err(io)?;
            }
            x.close("FormData").map_err(io)?;
            x.close("StudyEventData").map_err(io)?;
        }
        Ok(())
    }

    /// `SubjectData` with the audit trail: every `item.set` of the instances asked for, by
    /// instance, section and log order, each with its `AuditRecord`.
    fn audit_subject<W: Write>(
        &mut self,
        x: &mut Xml<W>,
        subject: &'a SubjectRecord,
        changes: &[SiteChange<'a>],
    ) -> Result<(), ExportError> {
        // The subject's instances asked for (slots, in order of first change) and its item
        // changes as (slot, section, place in `changes`); a save's changes are of one instance,
        // one after the other, so an instance is looked up once per save.
        let mut slots: Vec<Instance> = Vec::new();
        let mut slot_of: HashMap<&str, Option<usize>> = HashMap::new();
        let mut last: Option<(&str, Option<usize>)> = None;
        let mut rows: Vec<(usize, usize, usize)> = Vec::new();
        for (n, c) in changes.iter().enumerate() {
            let ch = c.change;
            if ch.kind() != ecrf_log::ChangeKind::ItemSet {
                continue;
            }
            let Some(inst) = ch.form() else {
                continue;
            };
            let slot = match last {
                Some((l, slot)) if l == inst => slot,
                _ => {
                    let slot = match slot_of.entry(inst) {
                        Entry::Occupied(o) => *o.get(),
                        Entry::Vacant(v) => *v.insert(self.instance(inst).map(|i| {
                            slots.push(i);
                            slots.len() - 1
                        })),
                    };
                    last = Some((inst, slot));
                    slot
                }
            };
            let (Some(slot), Some(item)) = (slot, ch.item()) else {
                continue;
            };
            if let Some(&section) = self.layouts[slots[slot].0].section_of.get(item) {
                rows.push((slot, section, n));
            }
        }
        // Instances in definition order, then repeat; changes by instance, section, log order.
        let mut order: Vec<usize> = (0..slots.len()).collect();
        order.sort_by(|a, b| slots[*a].cmp(&slots[*b]));
        let mut rank = vec![0; slots.len()];
        for (r, slot) in order.iter().enumerate() {
            rank[*slot] = r;
        }
        rows.sort_unstable_by_key(|&(slot, section, n)| (rank[slot], section, n));
        let mut rows = rows.into_iter().peekable();
        for slot in order {
            let inst = slots[slot];
            let (pos, _, name) = inst;
            let form = &self.study.forms[pos];
            self.open_instance(x, &subject.subject, inst).map_err(io)?;
            let mut group: Option<usize> = None;
            while let Some((_, section, n)) = rows.next_if(|r| r.0 == slot) {
                if group != Some(section) {
                    if group.is_some() {
                        x.close("ItemGroupData").map_err(io)?;
                    }
                    self.open_group(x, form, section).map_err(io)?;
                    group = Some(section);
                }
                let c = changes[n];
                let ch = c.change;
                let item = ch.item().unwrap_or_default();
                let value: Option<&str> = match ch.new_value() {
                    None => None,
                    Some(j) => Some(match self.spelled.entry(j) {
                        Entry::Occupied(o) => o.into_mut().as_str(),
                        Entry::Vacant(v) => {
                            let text = Value::from_json(j).map(|v| odm_value(&v)).map_err(|e| {
                                ExportError::Data(format!(
                                    "{} {name} {item}: stored value is unreadable: {e}",
                                    subject.subject
                                ))
                            })?;
                            v.insert(text).as_str()
                        }
                    }),
                };
                let tt = match (ch.old_value(), value) {
                    (_, None) => "Remove",
                    (None, Some(_)) => "Insert",
                    (Some(_), Some(_)) => "Update",
                };
                let (attr, v) = match value {
                    Some(v) => ("Value", v),
                    None => ("IsNull", "Yes"),
                };
                let item_oid: [&str; 4] = ["IT.", &form.id, ".", item];
                x.open_parts(
                    "ItemData",
                    &[
                        ("ItemOID", &item_oid),
                        ("TransactionType", &[tt]),
                        (attr, &[v]),
                    ],
                )
                .map_err(io)?;
                write_audit_record(x, &mut self.stamps, c.site, ch).map_err(io)?;
                x.close("ItemData").map_err(io)?;
            }
            if group.is_some() {
                x.close("ItemGroupData").map_err(io)?;
            }
            x.close("FormData").map_err(io)?;
            x.close("StudyEventData").map_err(io)?;
        }
        Ok(())
    }
}

/// [`odm_value`] written into `buf` (no allocation of its own).
fn odm_value_into(buf: &mut String, v: &Value) {
    use std::fmt::Write as _;
    let _ = match v {
        Value::DateTime(t) => write!(buf, "{}", t.format("%Y-%m-%dT%H:%M:%S%:z")),
        Value::Codes(cs) => {
            for (i, c) in cs.iter().enumerate() {
                if i > 0 {
                    buf.push(' ');
                }
                buf.push_str(c);
            }
            Ok(())
        }
        other => write!(buf, "{other}"),
    };
}

/// `ClinicalData` of the forms asked for (`audit`: every change with its `AuditRecord`).
pub(super) fn write_clinical<W: Write>(
    x: &mut Xml<W>,
    study: &Study,
    data: &TrialData,
    forms: &[&FormDef],
    audit: bool,
) -> Result<(), ExportError> {
    let mut form_pos = HashMap::new();
    for (pos, f) in study.forms.iter().enumerate() {
        form_pos.entry(f.id.as_str()).or_insert(pos);
    }
    let mut signatures = BTreeMap::new();
    for s in &data.signatures {
        if audit || s.valid {
            signatures.insert((s.subject.as_str(), s.scope.as_str()), s);
        }
    }
    let mut clinical = Clinical {
        study,
        wanted: forms.iter().map(|f| f.id.as_str()).collect(),
        form_pos,
        layouts: study.forms.iter().map(Layout::of).collect(),
        signatures,
        audit,
        stamps: StampCache::default(),
        spelled: HashMap::new(),
        buf: String::new(),
    };
    x.open(
        "ClinicalData",
        &[
            ("StudyOID", &study.id),
            ("MetaDataVersionOID", &oid::mdv(&study.version)),
        ],
    )
    .map_err(io)?;
    x.pretty = false;
    // Derived items travel in a snapshot beside the typed values (they are never changes, so a
    // transactional file with the audit trail carries only what was typed).
    let derived = if audit {
        Default::default()
    } else {
        data.derived(study, chrono::Utc::now())
    };
    // Each subject's changes, in log order; a run of changes of one subject (a save) looks its
    // subject up once.
    let mut by_subject: Vec<Vec<SiteChange>> = vec![Vec::new(); data.subjects.len()];
    if audit {
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, s) in data.subjects.iter().enumerate() {
            index.entry(s.subject.as_str()).or_insert(i);
        }
        let mut last: Option<(&str, Option<usize>)> = None;
        for sc in data.changes() {
            let Some(s) = sc.change.subject() else {
                continue;
            };
            let i = match last {
                Some((l, i)) if l == s => i,
                _ => {
                    let i = index.get(s).copied();
                    last = Some((s, i));
                    i
                }
            };
            if let Some(i) = i {
                by_subject[i].push(sc);
            }
        }
    }
    for (subject, changes) in data.subjects.iter().zip(&by_subject) {
        let mut a = vec![("SubjectKey", subject.subject.as_str())];
        if audit {
            a.push(("TransactionType", "Upsert"));
        }
        x.open("SubjectData", &a).map_err(io)?;
        if let Some(created) = changes
            .iter()
            .find(|c| c.change.kind() == ecrf_log::ChangeKind::SubjectCreated)
        {
            write_audit_record(x, &mut clinical.stamps, created.site, created.change)
                .map_err(io)?;
        }
        if let Some(s) = clinical
            .signatures
            .get(&(subject.subject.as_str(), "casebook"))
        {
            write_signature(x, s).map_err(io)?;
        }
        x.empty("SiteRef", &[("LocationOID", &oid::location(&subject.site))])
            .map_err(io)?;
        if audit {
            clinical.audit_subject(x, subject, changes)?;
        } else {
            clinical.snapshot_subject(x, data, &derived, subject)?;
        }
        x.close("SubjectData").map_err(io)?;
    }
    x.close("ClinicalData").map_err(io)?;
    Ok(())
}
