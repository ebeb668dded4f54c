//! Subjects and their form values: creating subjects, saving a form instance, reading values
//! and a subject's audit trail back.
//!
//! Owns [`Store::save`], the one path by which form data is written. Invariants: a save is
//! parsed and checked whole (types, hard ranges, rules, locks) before anything is written; it
//! writes nothing when a check fails, a warning is unconfirmed, or a saved value changes without
//! a reason; unchanged values write nothing; a warning confirmed without a comment raises a
//! query. Subject numbers are counted inside the write lock, so no two processes hand out one.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{FixedOffset, Local, Utc};
use ecrf_core::check::{check_save, parse_input};
use ecrf_core::study::Entry;
use ecrf_core::{Action, Finding, FormKey, Value};
use ecrf_log::{Body, Change, ChangeKind, ItemState, body};
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::{Draft, Store, decode_value, get_meta};
use crate::error::StoreError;
use crate::log::{COLUMNS, text};

/// The values of the subjects from `from` (inclusive) up to `to` (exclusive; none: to the
/// end), grouped by subject then instance, in key order: one pass over the primary key.
fn read_values(
    conn: &Connection,
    from: &str,
    to: Option<&str>,
) -> Result<Vec<(String, SubjectInstances)>, StoreError> {
    const SELECT: &str = "SELECT subject, form, item, value, warning FROM item_values";
    let mut stmt;
    let mut rows = match to {
        Some(to) => {
            stmt = conn.prepare(&format!(
                "{SELECT} WHERE subject >= ?1 AND subject < ?2 ORDER BY subject, form, item"
            ))?;
            stmt.query([from, to])?
        }
        None => {
            stmt = conn.prepare(&format!(
                "{SELECT} WHERE subject >= ?1 ORDER BY subject, form, item"
            ))?;
            stmt.query([from])?
        }
    };
    // Rows come grouped by subject, then by instance: each row belongs to the last subject
    // and, within it, to the last instance (a new one starts when the name changes).
    let mut subjects: Vec<(String, SubjectInstances)> = Vec::new();
    while let Some(r) = rows.next()? {
        let (subject, form, item) = (text(r, 0)?, text(r, 1)?, text(r, 2)?);
        let state = ItemState {
            item: item.to_string(),
            value: decode_value(form, item, text(r, 3)?)?,
            warning: r.get(4)?,
        };
        if subjects.last().is_none_or(|(name, _)| name != subject) {
            subjects.push((subject.to_string(), BTreeMap::new()));
        }
        if let Some((_, forms)) = subjects.last_mut() {
            if forms.last_key_value().is_none_or(|(key, _)| key != form) {
                forms.insert(form.to_string(), Vec::new());
            }
            if let Some(mut items) = forms.last_entry() {
                items.get_mut().push(state);
            }
        }
    }
    Ok(subjects)
}

/// One subject's current values: instance (`BAS`, `DLY#3`) → items.
pub type SubjectInstances = BTreeMap<String, Vec<ItemState>>;

/// Every subject's current values: subject → instance → items.
pub type AllSubjectValues = BTreeMap<String, SubjectInstances>;

/// Options of a save.
#[derive(Debug, Clone, Default)]
pub struct SaveOptions {
    /// Why saved values change (required when one does).
    pub reason: Option<String>,
    /// The user confirmed the soft warnings.
    pub confirm_warnings: bool,
}

/// What a save did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SaveOutcome {
    /// Changes written (items whose value changed).
    pub changes: usize,
    /// Confirmed warnings kept with the save.
    pub warnings: Vec<Finding>,
}

impl Store {
    /// Creates a subject and returns its screening number: site code and a sequence, `01-0007`.
    pub fn new_subject(&mut self) -> Result<String, StoreError> {
        self.require(Action::EnterData)?;
        let site = self.site.clone();
        // A device enrolled for sync numbers within its own prefix (`01-D2-0001`), so devices
        // of one site never hand out the same number offline.
        let prefix = match get_meta(&self.conn, "sync.setting.subject_prefix")? {
            Some(p) => format!("{site}-{p}-"),
            None => format!("{site}-"),
        };
        // Counted inside the write lock, so two processes never hand out the same number.
        let (_, number) = self.commit_with(|tx| {
            let n: i64 = tx.query_row(
                "SELECT count(*) FROM subjects WHERE substr(subject, 1, length(?1)) = ?1 \
                 AND length(subject) = length(?1) + 4",
                [&prefix],
                |r| r.get(0),
            )?;
            let number = format!("{prefix}{:04}", n + 1);
            let mut d = Draft::new(ChangeKind::SubjectCreated);
            d.subject = Some(number.clone());
            d.new_value = Some(site.clone());
            Ok((vec![d], number))
        })?;
        Ok(number)
    }

    /// Subject numbers, in order of creation.
    pub fn subjects(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT subject FROM subjects ORDER BY created_seq")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn require_subject(&self, subject: &str) -> Result<(), StoreError> {
        let found: Option<i64> = self
            .conn
            .query_row(
                "SELECT 1 FROM subjects WHERE subject = ?1",
                [subject],
                |r| r.get(0),
            )
            .optional()?;
        found
            .map(|_| ())
            .ok_or_else(|| StoreError::Invalid(format!("no subject {subject} in this store")))
    }

    fn instance_values(
        &self,
        subject: &str,
        form: &str,
    ) -> Result<BTreeMap<String, (Value, Option<String>)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT item, value, warning FROM item_values WHERE subject = ?1 AND form = ?2",
        )?;
        let mut rows = stmt.query([subject, form])?;
        let mut out = BTreeMap::new();
        while let Some(r) = rows.next()? {
            let item: String = r.get(0)?;
            let json: String = r.get(1)?;
            let value = decode_value(form, &item, &json)?;
            out.insert(item, (value, r.get(2)?));
        }
        Ok(out)
    }

    /// Saves typed values into a form instance: parse, edit checks, then one transaction.
    /// Nothing is written when any check fails, a warning is unconfirmed, or a saved value
    /// changes without a reason. Unchanged values write nothing.
    pub fn save(
        &mut self,
        subject: &str,
        key: &FormKey,
        entries: &[(&str, &str)],
        opts: &SaveOptions,
    ) -> Result<SaveOutcome, StoreError> {
        let (drafts, outcome) = self.prepare_save(subject, key, entries, opts, &BTreeMap::new())?;
        if !drafts.is_empty() {
            self.commit_changes(drafts)?;
        }
        Ok(outcome)
    }

    /// Everything [`Store::save`] checks, without writing: the changes it would write. A
    /// laboratory import prepares several instances and commits them at once; `sources`
    /// gives an item's provenance (JSON) for its change.
    pub(crate) fn prepare_save(
        &self,
        subject: &str,
        key: &FormKey,
        entries: &[(&str, &str)],
        opts: &SaveOptions,
        sources: &BTreeMap<String, String>,
    ) -> Result<(Vec<Draft>, SaveOutcome), StoreError> {
        self.require(Action::EnterData)?;
        self.require_subject(subject)?;
        let instance = key.to_string();
        // Checked under the instance's own definition version (an amendment never re-judges
        // what was entered before it); a new instance takes the version in force today.
        let defs = self.definitions()?;
        let (version, record_version) = self.instance_version_in(&defs, subject, &instance)?;
        let study = defs.version(&version)?;
        let form = study.form(&key.form).ok_or_else(|| {
            StoreError::Invalid(format!(
                "there is no form {} in study definition {version}",
                key.form
            ))
        })?;
        if form.entry == Entry::System {
            return Err(StoreError::Invalid(format!(
                "form {} is written by the app, not typed",
                form.id
            )));
        }
        let offset: FixedOffset = *Local::now().offset();
        let current = self.instance_values(subject, &instance)?;
        let mut proposed: BTreeMap<String, Value> = current
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect();
        let mut changed = BTreeSet::new();
        let mut errors = Vec::new();
        for (item_id, text) in entries {
            let Some(item) = form.item(item_id) else {
                return Err(StoreError::Invalid(format!(
                    "form {} has no item {item_id} in study definition {version}",
                    form.id
                )));
            };
            match parse_input(&study, form, item, text, Some(offset)) {
                Err(f) => errors.push(f),
                Ok(new) => {
                    if new.as_ref() != current.get(*item_id).map(|(v, _)| v) {
                        changed.insert(item_id.to_string());
                        match new {
                            Some(v) => proposed.insert(item_id.to_string(), v),
                            None => proposed.remove(*item_id),
                        };
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(StoreError::Rejected(errors));
        }
        if changed.is_empty() {
            return Ok((Vec::new(), SaveOutcome::default()));
        }
        // A saved value changed or cleared takes ChangeData, as the server reads the change
        // (`ecrf_log::permission`); typing into empty items takes EnterData (checked above).
        if changed.iter().any(|i| current.contains_key(i)) {
            self.require(Action::ChangeData)?;
        }
        let changed_items: Vec<&str> = changed.iter().map(String::as_str).collect();
        self.check_not_locked(subject, &instance, &changed_items)?;
        let conn = &self.conn;
        // Subject-wide values (`SUBJECT.LOG_DATE`…) are read only when a rule asks for one.
        let whole = std::cell::OnceCell::new();
        let other = |f: &str, i: &str| -> Option<Value> {
            if f == ecrf_core::outcome::SUBJECT {
                let outcome = whole.get_or_init(|| self.outcome_for_subject_items(subject).ok());
                return ecrf_core::outcome::subject_item(i, &instance, outcome.as_ref()?);
            }
            conn.query_row(
                "SELECT value FROM item_values WHERE subject = ?1 AND form = ?2 AND item = ?3",
                [subject, f, i],
                |r| r.get::<_, String>(0),
            )
            .ok()
            .and_then(|s| Value::from_json(&s).ok())
        };
        let verdict = check_save(form, &proposed, &changed, &other, Utc::now());
        if !verdict.errors.is_empty() {
            return Err(StoreError::Rejected(verdict.errors));
        }
        if !verdict.warnings.is_empty() && !opts.confirm_warnings {
            return Err(StoreError::NeedsConfirmation(verdict.warnings));
        }
        let reason = opts
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if reason.is_none() {
            let needing: Vec<(String, String)> = changed
                .iter()
                .filter_map(|i| current.get(i).map(|(v, _)| (i.clone(), v.to_string())))
                .collect();
            if !needing.is_empty() {
                return Err(StoreError::ReasonRequired {
                    form: instance,
                    items: needing,
                });
            }
        }
        let mut drafts = Vec::with_capacity(changed.len() + 1);
        if record_version {
            let mut d = Draft::of(Body::FormVersioned {
                version: version.clone(),
            });
            d.subject = Some(subject.to_string());
            d.form = Some(instance.clone());
            drafts.push(d);
        }
        for item_id in &changed {
            let old = current.get(item_id).map(|(v, _)| v);
            let mine: Vec<&Finding> = verdict
                .warnings
                .iter()
                .filter(|w| &w.item == item_id)
                .collect();
            let mut d = Draft::new(ChangeKind::ItemSet);
            d.subject = Some(subject.to_string());
            d.form = Some(instance.clone());
            d.item = Some(item_id.clone());
            d.old_value = old.map(Value::to_json);
            d.new_value = proposed.get(item_id).map(Value::to_json);
            d.reason = reason.map(str::to_string);
            d.warning =
                (!mine.is_empty()).then(|| serde_json::to_string(&mine).unwrap_or_default());
            d.source = sources.get(item_id).cloned();
            drafts.push(d);
        }
        let n = drafts.len();
        // A warning confirmed without a comment becomes a query for the monitor to look at.
        if reason.is_none() {
            for w in &verdict.warnings {
                let mut q = Draft::of(Body::QueryRaised(body::QueryStep {
                    query: uuid::Uuid::now_v7().to_string(),
                    text: format!("Confirmed without a comment: {}", w.message.en),
                    // Raised by the save itself, so it needs no right to raise queries.
                    auto: true,
                }));
                q.subject = Some(subject.to_string());
                q.form = Some(instance.clone());
                q.item = Some(w.item.clone());
                drafts.push(q);
            }
        }
        Ok((
            drafts,
            SaveOutcome {
                changes: n,
                warnings: verdict.warnings,
            },
        ))
    }

    /// Current values of a form instance, in the form's item order.
    pub fn form_values(&self, subject: &str, key: &FormKey) -> Result<Vec<ItemState>, StoreError> {
        self.require_subject(subject)?;
        let values = self.instance_values(subject, &key.to_string())?;
        let order: Vec<&str> = self
            .study
            .form(&key.form)
            .map(|f| f.items.iter().map(|i| i.id.as_str()).collect())
            .unwrap_or_default();
        let mut out: Vec<ItemState> = values
            .into_iter()
            .map(|(item, (value, warning))| ItemState {
                item,
                value,
                warning,
            })
            .collect();
        out.sort_by_key(|s| {
            order
                .iter()
                .position(|o| *o == s.item)
                .unwrap_or(usize::MAX)
        });
        Ok(out)
    }

    /// The audit trail of one subject, oldest first.
    pub fn audit_log(&self, subject: &str) -> Result<Vec<Change>, StoreError> {
        self.require_subject(subject)?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM change_log WHERE subject = ?1 ORDER BY seq"
        ))?;
        let rows = stmt.query_map([subject], crate::log::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Current values of every subject, by subject then instance, for the subject list (a
    /// site of 600 subjects holds 880,000 values): the subjects split into ranges read at
    /// once, each over its own connection on its own core (reading and decrypting the pages
    /// and decoding the values is the whole cost), each range one pass in key order instead
    /// of one lookup per subject (one range when the site is small). The store's own
    /// connection reads everything when no other can be opened (the plain benchmark store).
    /// Each range is read in its own
    /// snapshot: a save by another process meanwhile shows in the next list.
    pub fn all_subject_values(&self) -> Result<AllSubjectValues, StoreError> {
        let names: Vec<String> = self
            .conn
            .prepare("SELECT subject FROM subjects ORDER BY subject")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let parts = cores.min(4).min(names.len() / 64).max(1);
        // Range i runs from its first subject up to the next range's first subject.
        let bounds: Vec<&str> = (1..parts)
            .map(|i| names[i * names.len() / parts].as_str())
            .collect();
        // Every range over a connection of its own, closed after: the pages read for the list
        // do not push out of the store's own cache the pages a save needs, and their memory
        // goes back at once (a site of 600 subjects: 38 MB more at idle otherwise).
        let mut extra: Vec<Connection> = match (0..parts).map(|_| self.extra_connection()).collect()
        {
            Ok(extra) => extra,
            Err(_) => return Ok(read_values(&self.conn, "", None)?.into_iter().collect()),
        };
        let first = extra.remove(0);
        let stopped = |_| StoreError::Invalid("reading the values stopped (a bug)".into());
        std::thread::scope(|scope| {
            let others: Vec<_> = extra
                .into_iter()
                .enumerate()
                .map(|(i, conn)| {
                    let (from, to) = (bounds[i], bounds.get(i + 1).copied());
                    scope.spawn(move || read_values(&conn, from, to))
                })
                .collect();
            let mut all = read_values(&first, "", bounds.first().copied())?;
            drop(first);
            for other in others {
                all.extend(other.join().map_err(stopped)??);
            }
            Ok(all.into_iter().collect())
        })
    }

    /// Current values of every form instance of a subject, by instance (`BAS`, `DLY#3`).
    pub fn subject_values(
        &self,
        subject: &str,
    ) -> Result<BTreeMap<String, Vec<ItemState>>, StoreError> {
        self.require_subject(subject)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT form, item, value, warning FROM item_values WHERE subject = ?1",
        )?;
        let mut rows = stmt.query([subject])?;
        let mut out: BTreeMap<String, Vec<ItemState>> = BTreeMap::new();
        while let Some(r) = rows.next()? {
            let form: String = r.get(0)?;
            let item: String = r.get(1)?;
            let json: String = r.get(2)?;
            let value = decode_value(&form, &item, &json)?;
            out.entry(form).or_default().push(ItemState {
                item,
                value,
                warning: r.get(3)?,
            });
        }
        Ok(out)
    }
}
