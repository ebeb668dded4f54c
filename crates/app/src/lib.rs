//! `ecrf-app`: what the desktop app does, without Tauri.
//!
//! Each public method of [`App`] is one Tauri command's whole body, so the shell in `src-tauri`
//! stays a list of one-line calls and everything here can be tested without a window. Owns the
//! session (which store, who is logged in, failed-login throttling) and the conversion of store
//! and core types into the UI's types ([`dto`]). Invariants: no data is read or written without
//! a logged-in store; locking drops the open store (and with it the key) from memory.

#![deny(missing_docs)]

pub mod bindings;
// The trial's own types the shell's commands take, so the shell needs no other crate.
pub use ecrf_core::query::QueryStep;
pub use ecrf_core::{Lang, Role};
pub use ecrf_log::record::User;
mod clinical;
#[cfg(test)]
mod command_bindings;
pub mod demo;
pub mod dto;
mod export;
mod oversight;
mod safekeeping;
pub mod sync;
mod throttle;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Local;
use ecrf_core::schedule::{FormStatus, day_zero, instance_status, schedule};
use ecrf_core::study::{Entry as EntryKind, ItemType};
use ecrf_core::{Finding, FormKey, MissingCode, Study, Value};
use ecrf_store::{CreateOptions, SaveOptions, Store, StoreError};

use crate::dto::*;
use crate::throttle::Throttle;

/// Result of an app call.
pub type AppResult<T> = Result<T, AppError>;

fn err(code: ErrorCode, message: impl Into<String>) -> AppError {
    AppError {
        code,
        message: message.into(),
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::NoStore(_) => ErrorCode::NoStore,
            StoreError::WrongPassword(_) | StoreError::UnknownUser(_) => ErrorCode::BadLogin,
            StoreError::NotAllowed { .. } => ErrorCode::NotAllowed,
            StoreError::Damaged(_) => ErrorCode::Damaged,
            StoreError::DiskFull(_) => ErrorCode::DiskFull,
            StoreError::Invalid(_)
            | StoreError::Refused(_)
            | StoreError::AlreadyExists(_)
            | StoreError::Rejected(_)
            | StoreError::NeedsConfirmation(_)
            | StoreError::ReasonRequired { .. } => ErrorCode::Invalid,
            _ => ErrorCode::Internal,
        };
        err(code, e.to_string())
    }
}

fn txt(t: &ecrf_core::Text) -> Txt {
    Txt {
        en: t.en.clone(),
        zh: t.zh.clone(),
    }
}

fn status_dto(s: FormStatus) -> StatusDto {
    match s {
        FormStatus::NotStarted => StatusDto::NotStarted,
        FormStatus::InProgress => StatusDto::InProgress,
        FormStatus::Complete => StatusDto::Complete,
        FormStatus::Warnings => StatusDto::Warnings,
        FormStatus::Overdue => StatusDto::Overdue,
        FormStatus::Due => StatusDto::Due,
        FormStatus::Missing => StatusDto::Missing,
    }
}

fn finding_dto(f: &Finding) -> FindingDto {
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
    }
}

/// A form instance of a subject's schedule: its key, due date and status.
type ScheduleState = (FormKey, Option<chrono::NaiveDate>, FormStatus);

/// Default minutes of inactivity before the screen locks.
pub const DEFAULT_LOCK_MINUTES: u32 = 15;

/// The desktop app's state: which store, and the logged-in session if any.
pub struct App {
    study: Arc<Study>,
    store_path: PathBuf,
    demo_path: PathBuf,
    using_demo: bool,
    store: Option<Store>,
    throttle: Throttle,
    printer: Option<ecrf_pdf::Printer>,
}

impl App {
    /// An app on the store at `store_path`; the demo store, if chosen, lives at `demo_path`.
    pub fn new(store_path: PathBuf, demo_path: PathBuf) -> AppResult<App> {
        let study =
            ecrf_core::trial::definition().map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
        Ok(App {
            study: Arc::new(study),
            store_path,
            demo_path,
            using_demo: false,
            store: None,
            throttle: Throttle::default(),
            printer: None,
        })
    }

    fn path(&self) -> &Path {
        if self.using_demo {
            &self.demo_path
        } else {
            &self.store_path
        }
    }

    fn store(&self) -> AppResult<&Store> {
        self.store
            .as_ref()
            .ok_or_else(|| err(ErrorCode::NotLoggedIn, "locked: log in to continue"))
    }

    fn store_mut(&mut self) -> AppResult<&mut Store> {
        self.store
            .as_mut()
            .ok_or_else(|| err(ErrorCode::NotLoggedIn, "locked: log in to continue"))
    }

    /// What the first screen shows.
    pub fn welcome(&self) -> AppResult<Welcome> {
        Ok(Welcome {
            store_exists: self.path().exists(),
            store_path: self.path().display().to_string(),
            demo: self.using_demo,
            session: match &self.store {
                Some(_) => Some(self.session()?),
                None => None,
            },
        })
    }

    /// The study definition.
    pub fn study(&self) -> StudyDto {
        study_dto(&self.study)
    }

    /// First-run set-up: creates the store and logs the administrator in.
    pub fn setup(&mut self, mut input: SetupInput) -> AppResult<SetupDone> {
        let path = self.path().to_path_buf();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(ErrorCode::Internal, format!("{}: {e}", dir.display())))?;
        }
        let (store, recovery) = Store::create(
            &path,
            Arc::clone(&self.study),
            CreateOptions {
                site: std::mem::take(&mut input.site),
                admin_user: std::mem::take(&mut input.admin_user),
                admin_name: std::mem::take(&mut input.admin_name),
                // Taken, not copied: `CreateOptions` wipes it when dropped.
                admin_password: std::mem::take(&mut input.password),
            },
        )?;
        self.store = Some(store);
        Ok(SetupDone {
            recovery_key: recovery.as_str().to_string(),
        })
    }

    /// Switches to the demo store, creating it with sample data the first time.
    pub fn use_demo(&mut self) -> AppResult<Welcome> {
        self.store = None;
        self.using_demo = true;
        if !self.demo_path.exists() {
            demo::create(&self.demo_path, Arc::clone(&self.study))
                .map_err(|e| err(ErrorCode::Internal, e))?;
        }
        self.welcome()
    }

    /// Logs in. Failed attempts are slowed: after three, each further try must wait longer.
    pub fn login(&mut self, user: &str, password: &str) -> AppResult<SessionDto> {
        let user = user.trim();
        if let Some(wait) = self.throttle.wait_for(user) {
            return Err(err(
                ErrorCode::Throttled,
                format!("too many failed attempts: wait {} s", wait.as_secs().max(1)),
            ));
        }
        self.store = None;
        match Store::open(self.path(), Arc::clone(&self.study), user, password) {
            Ok(store) => {
                self.throttle.succeeded(user);
                self.store = Some(store);
                self.session()
            }
            // One answer for both, so a login screen does not reveal which user names exist.
            Err(StoreError::WrongPassword(_) | StoreError::UnknownUser(_)) => {
                self.throttle.failed(user);
                Err(err(ErrorCode::BadLogin, "wrong user name or password"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Locks: forgets the open store; the user must log in again.
    pub fn lock(&mut self) {
        if let Some(mut store) = self.store.take() {
            // Best effort: the WAL is checkpointed on close anyway.
            let _ = store.checkpoint();
        }
    }

    /// The logged-in session.
    pub fn session(&self) -> AppResult<SessionDto> {
        let store = self.store()?;
        let s = store.session();
        let name = store
            .users()?
            .into_iter()
            .find(|u| u.username == s.user)
            .map(|u| u.name)
            .unwrap_or_default();
        Ok(SessionDto {
            user: s.user.clone(),
            name,
            role: s.role,
            // A preference this version cannot read falls back to English.
            lang: store
                .preference("lang")?
                .and_then(|l| l.parse().ok())
                .unwrap_or_default(),
            lock_minutes: store
                .preference("lock_minutes")?
                .and_then(|m| m.parse().ok())
                .unwrap_or(DEFAULT_LOCK_MINUTES),
            site: store.site().to_string(),
            may_enter: s.role.may(ecrf_core::Action::EnterData),
            may_manage_users: s.role.may(ecrf_core::Action::ManageUsers),
            may_export: s.role.may(ecrf_core::Action::Export),
        })
    }

    /// Remembers the user's language.
    pub fn set_lang(&mut self, lang: Lang) -> AppResult<SessionDto> {
        self.store()?.set_preference("lang", lang.code())?;
        self.session()
    }

    /// Remembers the user's lock delay (1–120 minutes).
    pub fn set_lock_minutes(&mut self, minutes: u32) -> AppResult<SessionDto> {
        if !(1..=120).contains(&minutes) {
            return Err(err(ErrorCode::Invalid, "lock after: 1 to 120 minutes"));
        }
        self.store()?
            .set_preference("lock_minutes", &minutes.to_string())?;
        self.session()
    }

    /// Users of the store, active or not.
    pub fn users(&self) -> AppResult<Vec<User>> {
        Ok(self.store()?.users()?)
    }

    /// Adds a user (administrators).
    pub fn add_user(
        &mut self,
        username: &str,
        name: &str,
        role: Role,
        password: &str,
    ) -> AppResult<()> {
        self.store_mut()?
            .add_user(username.trim(), name.trim(), role, password)?;
        Ok(())
    }

    fn subject_state(
        &self,
        subject: &str,
    ) -> AppResult<(Option<chrono::NaiveDate>, Vec<ScheduleState>)> {
        let store = self.store()?;
        let raw = store.subject_values(subject)?;
        let mut values: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        let mut warned: BTreeMap<String, bool> = BTreeMap::new();
        for (key, items) in &raw {
            let entry = values.entry(key.clone()).or_default();
            for s in items {
                entry.insert(s.item.clone(), s.value.clone());
                if s.warning.is_some() {
                    warned.insert(key.clone(), true);
                }
            }
        }
        let existing: Vec<FormKey> = raw
            .keys()
            .filter_map(|k| FormKey::parse(&self.study, k).ok())
            .collect();
        let day0 = day_zero(&values);
        let today = Local::now().date_naive();
        // Daily logs end the day after the last device came out (core::outcome).
        let last_log_day = ecrf_core::outcome::subject_outcome(&values, chrono::Utc::now())
            .last_log_day
            .and_then(|d| u32::try_from(d).ok());
        let rows = schedule(&self.study, day0, &existing, today)
            .into_iter()
            .filter(|e| {
                e.key.form != "DLY"
                    || raw.contains_key(&e.key.to_string())
                    || last_log_day.is_none_or(|last| e.key.repeat.is_none_or(|n| n <= last))
            })
            .filter_map(|e| {
                let form = self.study.form(&e.key.form)?;
                let key = e.key.to_string();
                let empty = BTreeMap::new();
                let v = values.get(&key).unwrap_or(&empty);
                let due = if form.entry == EntryKind::System {
                    None
                } else {
                    e.due
                };
                let st = instance_status(form, v, warned.contains_key(&key), due, today);
                Some((e.key, e.due, st))
            })
            .collect();
        Ok((day0, rows))
    }

    /// The subject list with each subject's form status.
    pub fn subjects(&self) -> AppResult<Vec<SubjectRow>> {
        let store = self.store()?;
        let mut out = Vec::new();
        for subject in store.subjects()? {
            let (day0, rows) = self.subject_state(&subject)?;
            let count = |s: FormStatus| rows.iter().filter(|r| r.2 == s).count() as u32;
            let (complete, in_progress, overdue, warnings) = (
                count(FormStatus::Complete),
                count(FormStatus::InProgress),
                count(FormStatus::Overdue) + count(FormStatus::Missing),
                count(FormStatus::Warnings),
            );
            let status = if overdue > 0 {
                StatusDto::Overdue
            } else if warnings > 0 {
                StatusDto::Warnings
            } else if in_progress > 0 {
                StatusDto::InProgress
            } else if complete > 0 {
                StatusDto::Complete
            } else {
                StatusDto::NotStarted
            };
            out.push(SubjectRow {
                subject,
                day0: day0.map(|d| d.to_string()),
                status,
                complete,
                in_progress,
                overdue,
                warnings,
            });
        }
        Ok(out)
    }

    /// Creates a subject; returns its number.
    pub fn new_subject(&mut self) -> AppResult<String> {
        Ok(self.store_mut()?.new_subject()?)
    }

    /// A subject's page: its schedule with each form's status.
    pub fn subject(&self, subject: &str) -> AppResult<SubjectPage> {
        let (day0, rows) = self.subject_state(subject)?;
        Ok(SubjectPage {
            subject: subject.to_string(),
            day0: day0.map(|d| d.to_string()),
            schedule: rows
                .into_iter()
                .filter_map(|(key, due, st)| {
                    let form = self.study.form(&key.form)?;
                    Some(ScheduleRow {
                        key: key.to_string(),
                        form: key.form.clone(),
                        name: txt(&form.name),
                        repeat: key.repeat,
                        due: due.map(|d| d.to_string()),
                        status: status_dto(st),
                        system: form.entry == EntryKind::System,
                    })
                })
                .collect(),
            randomization: self.randomization_view(subject)?,
            outcome: self.outcome_view(subject)?,
            trends: self.trends(subject)?,
        })
    }

    /// Randomizes a subject (opens the next sealed envelope); refusals come back as errors
    /// whose message says why (not eligible…, no consent…, already randomized…, no envelope…).
    pub fn randomize(&mut self, subject: &str) -> AppResult<SubjectPage> {
        self.store_mut()?.randomize(subject)?;
        self.subject(subject)
    }

    fn randomization_view(&self, subject: &str) -> AppResult<Option<RandomizationView>> {
        let store = self.store()?;
        let Some(r) = store.randomization(subject)? else {
            return Ok(None);
        };
        let values = store.subject_values(subject)?;
        let find = |form: &str, item: &str| {
            values.get(form).and_then(|v| {
                v.iter()
                    .find(|s| s.item == item)
                    .and_then(|s| match &s.value {
                        Value::DateTime(d) => Some(*d),
                        _ => None,
                    })
            })
        };
        let start = find("ECMO", "START_DT").or_else(|| find("SCR", "ECMO_START_DT"));
        let arm_label = self
            .study
            .codelists
            .get("arms")
            .and_then(|l| l.codes.iter().find(|c| c.code == r.arm))
            .map(|c| txt(&c.label))
            .unwrap_or(Txt {
                en: r.arm.clone(),
                zh: r.arm.clone(),
            });
        Ok(Some(RandomizationView {
            subject_no: r.subject_no,
            arm: r.arm,
            arm_label,
            at: r.at,
            by: r.by,
            envelope: r.envelope,
            ecmo_start: start.map(|d| d.to_rfc3339()),
            window_end: start.map(|d| (d + chrono::Duration::hours(6)).to_rfc3339()),
        }))
    }

    fn key(&self, key: &str) -> AppResult<FormKey> {
        FormKey::parse(&self.study, key).map_err(|e| err(ErrorCode::Invalid, e))
    }

    /// The items of a form that are not asked given the texts on screen: their `ask_when`
    /// condition (decided by `ecrf_core::check::is_asked`, the rule saving applies) does not
    /// hold. The form page hides them. A text that does not parse counts as empty.
    pub fn unasked_items(&self, key: &str, entries: &[Entry]) -> AppResult<Vec<String>> {
        let key = self.key(key)?;
        let form = self
            .study
            .form(&key.form)
            .ok_or_else(|| err(ErrorCode::Invalid, format!("there is no form {}", key.form)))?;
        let values: BTreeMap<String, Value> = entries
            .iter()
            .filter_map(|e| {
                let item = form.item(&e.item)?;
                let value = ecrf_core::check::parse_input(&self.study, form, item, &e.text, None)
                    .ok()??;
                Some((e.item.clone(), value))
            })
            .collect();
        Ok(form
            .items
            .iter()
            .filter(|i| !ecrf_core::check::is_asked(i, &values))
            .map(|i| i.id.clone())
            .collect())
    }

    /// A form instance with its values, status and any draft.
    pub fn form(&self, subject: &str, key: &str) -> AppResult<FormPage> {
        let key = self.key(key)?;
        let store = self.store()?;
        let states = store.form_values(subject, &key)?;
        let whole = store.subject_value_map(subject)?;
        let outcome = ecrf_core::outcome::subject_outcome(&whole, chrono::Utc::now());
        let form = self
            .study
            .form(&key.form)
            .ok_or_else(|| err(ErrorCode::Invalid, format!("no form {}", key.form)))?;
        let values: BTreeMap<String, Value> = states
            .iter()
            .map(|s| (s.item.clone(), s.value.clone()))
            .collect();
        let warned = states.iter().any(|s| s.warning.is_some());
        let today = Local::now().date_naive();
        let status = instance_status(form, &values, warned, None, today);
        let draft = match store.draft(subject, &key)? {
            Some(json) => serde_json::from_str(&json).ok(),
            None => None,
        };
        Ok(FormPage {
            subject: subject.to_string(),
            key: key.to_string(),
            form: key.form.clone(),
            values: states
                .iter()
                .map(|s| FieldValue {
                    item: s.item.clone(),
                    text: s.value.to_string(),
                    warning: s.warning.as_deref().and_then(warning_text),
                })
                .collect(),
            derived: ecrf_core::outcome::derive_instance(form, &key.to_string(), &whole, &outcome)
                .into_iter()
                .map(|(item, v)| FieldValue {
                    item,
                    text: v.to_string(),
                    warning: None,
                })
                .collect(),
            status: status_dto(status),
            missing: ecrf_core::check::missing_required(form, &values)
                .iter()
                .map(|i| i.id.clone())
                .collect(),
            draft,
            prefilled_from: None,
        })
    }

    /// Saves entries. Returns what is needed next when the save cannot go through yet
    /// (errors to fix, warnings to confirm, a reason to give); nothing is written then.
    pub fn save_form(
        &mut self,
        subject: &str,
        key: &str,
        entries: &[Entry],
        reason: Option<String>,
        confirm: bool,
    ) -> AppResult<SaveReply> {
        let fkey = self.key(key)?;
        let pairs: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.item.as_str(), e.text.as_str()))
            .collect();
        let opts = SaveOptions {
            reason,
            confirm_warnings: confirm,
        };
        let store = self.store_mut()?;
        match store.save(subject, &fkey, &pairs, &opts) {
            Ok(outcome) => {
                store.clear_draft(subject, &fkey)?;
                store.idle()?;
                Ok(SaveReply::Saved {
                    page: self.form(subject, key)?,
                    changes: outcome.changes as u32,
                })
            }
            Err(StoreError::Rejected(errors)) => Ok(SaveReply::Refused {
                errors: errors.iter().map(finding_dto).collect(),
            }),
            Err(StoreError::NeedsConfirmation(warnings)) => Ok(SaveReply::Confirm {
                warnings: warnings.iter().map(finding_dto).collect(),
            }),
            Err(StoreError::ReasonRequired { items, .. }) => Ok(SaveReply::Reason {
                items: items
                    .into_iter()
                    .map(|(item, old)| ReasonItem { item, old })
                    .collect(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Keeps unsaved entries so they survive closing the window.
    pub fn save_draft(&self, subject: &str, key: &str, entries: &[Entry]) -> AppResult<()> {
        let fkey = self.key(key)?;
        let json =
            serde_json::to_string(entries).map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
        Ok(self.store()?.save_draft(subject, &fkey, &json)?)
    }

    /// Throws a draft away.
    pub fn discard_draft(&self, subject: &str, key: &str) -> AppResult<()> {
        let fkey = self.key(key)?;
        Ok(self.store()?.clear_draft(subject, &fkey)?)
    }

    /// The history of one field: who, when, old, new, why.
    pub fn history(&self, subject: &str, key: &str, item: &str) -> AppResult<Vec<HistoryRow>> {
        let fkey = self.key(key)?.to_string();
        let show = shown_value;
        Ok(self
            .store()?
            .audit_log(subject)?
            .into_iter()
            .filter(|c| c.form.as_deref() == Some(&fkey) && c.item.as_deref() == Some(item))
            .map(|c| HistoryRow {
                seq: c.seq as u32,
                utc: c.utc.clone(),
                offset: c.local_offset.clone(),
                user: c.user.clone(),
                role: c.role.clone(),
                old: show(&c.old_value),
                new: show(&c.new_value),
                reason: c.reason.clone(),
                warning: c.warning.is_some(),
            })
            .collect())
    }
}

impl App {
    /// Where printouts are saved: `printouts/` beside the store.
    pub(crate) fn printouts_dir(&self) -> PathBuf {
        self.path()
            .parent()
            .map(|p| p.join("printouts"))
            .unwrap_or_else(|| PathBuf::from("printouts"))
    }

    /// Prints the blank CRF book, or one blank form when `form` is given.
    pub fn print_blank(&mut self, form: Option<&str>) -> AppResult<Printout> {
        let session = self.session()?;
        let opts = self.print_options(&session);
        let study = Arc::clone(&self.study);
        let printed = match form {
            None => self.printer()?.blank_book(&study, &opts),
            Some(f) => self.printer()?.blank_form(&study, f, &opts),
        }
        .map_err(|e| err(ErrorCode::Invalid, e.to_string()))?;
        let name = format!("blank-{}-{}.pdf", form.unwrap_or("book"), session.lang);
        self.save_printout(&name, &printed)
    }

    /// Prints a subject's filled CRF with its audit appendix.
    pub fn print_subject(&mut self, subject: &str) -> AppResult<Printout> {
        let session = self.session()?;
        let opts = self.print_options(&session);
        self.printer()?;
        let (Some(printer), Some(store)) = (&self.printer, &self.store) else {
            return Err(err(ErrorCode::NotLoggedIn, "locked: log in to continue"));
        };
        let printed = printer
            .subject(store.study(), &store.casebook(subject)?, &opts)
            .map_err(|e| err(ErrorCode::Invalid, e.to_string()))?;
        let stamp = Local::now().format("%Y%m%d-%H%M%S");
        self.save_printout(&format!("{subject}-{stamp}.pdf"), &printed)
    }

    fn print_options(&self, session: &SessionDto) -> ecrf_pdf::PrintOptions {
        let who = if session.name.is_empty() {
            session.user.clone()
        } else {
            format!("{} ({})", session.name, session.user)
        };
        let mut opts = ecrf_pdf::PrintOptions::now(session.lang.code(), &who);
        opts.site = Some(session.site.clone());
        opts
    }

    /// The printer, with its font loaded once per run.
    fn printer(&mut self) -> AppResult<&ecrf_pdf::Printer> {
        if self.printer.is_none() {
            let p =
                ecrf_pdf::Printer::new().map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
            self.printer = Some(p);
        }
        self.printer
            .as_ref()
            .ok_or_else(|| err(ErrorCode::Internal, "no printer"))
    }

    /// Writes the PDF and hands it to the desktop's viewer (`xdg-open`), unless
    /// `ECRF_NO_OPEN` is set (tests).
    fn save_printout(&self, name: &str, printed: &ecrf_pdf::Printed) -> AppResult<Printout> {
        let dir = self.printouts_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| err(ErrorCode::Internal, format!("{}: {e}", dir.display())))?;
        let path = dir.join(name);
        printed
            .write_to(&path)
            .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
        let opened = std::env::var_os("ECRF_NO_OPEN").is_none()
            && std::process::Command::new("xdg-open")
                .arg(&path)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .is_ok();
        Ok(Printout {
            path: path.display().to_string(),
            pages: printed.pages as u32,
            opened,
        })
    }
}

/// The message of the first confirmed warning kept with a value.
fn warning_text(json: &str) -> Option<Txt> {
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

#[cfg(test)]
mod tests;
