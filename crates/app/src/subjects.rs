//! Subjects: the list with each schedule's status, a new subject, the subject page and
//! randomization (the 6-hour IABP window shown from the ECMO start).

use super::*;
use ecrf_store::ItemState;

/// A subject's day 0 and schedule with each instance's status, from its current values
/// (taken, not copied). `today` and `now` are the clock's, read once by the caller.
fn state_of(
    study: &Study,
    raw: BTreeMap<String, Vec<ItemState>>,
    today: chrono::NaiveDate,
    now: chrono::DateTime<chrono::Utc>,
) -> (Option<chrono::NaiveDate>, Vec<ScheduleState>) {
    let mut values: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    let mut warned: BTreeMap<String, bool> = BTreeMap::new();
    for (key, items) in raw {
        if items.iter().any(|s| s.warning.is_some()) {
            warned.insert(key.clone(), true);
        }
        values.insert(key, items.into_iter().map(|s| (s.item, s.value)).collect());
    }
    let existing: Vec<FormKey> = values
        .keys()
        .filter_map(|k| FormKey::parse(study, k).ok())
        .collect();
    let day0 = day_zero(&values);
    // Daily logs end the day after the last device came out (core::outcome).
    let last_log_day = ecrf_core::outcome::subject_outcome(&values, now)
        .last_log_day
        .and_then(|d| u32::try_from(d).ok());
    let rows = schedule(study, day0, &existing, today)
        .into_iter()
        .filter(|e| {
            e.key.form != "DLY"
                || values.contains_key(&e.key.to_string())
                || last_log_day.is_none_or(|last| e.key.repeat.is_none_or(|n| n <= last))
        })
        .filter_map(|e| {
            let form = study.form(&e.key.form)?;
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
    (day0, rows)
}

/// One row of the subject list: the schedule's counts and the worst status among them.
fn row_of(study: &Study, subject: String, raw: BTreeMap<String, Vec<ItemState>>) -> SubjectRow {
    let (day0, rows) = state_of(study, raw, Local::now().date_naive(), chrono::Utc::now());
    let count = |s: FormStatus| rows.iter().filter(|r| r.2 == s).count() as u32;
    let (complete, in_progress, overdue, warnings) = (
        count(FormStatus::Complete),
        count(FormStatus::InProgress),
        count(FormStatus::Overdue) + count(FormStatus::Missing),
        count(FormStatus::Warnings),
    );
    let status = if overdue > 0 {
        FormStatus::Overdue
    } else if warnings > 0 {
        FormStatus::Warnings
    } else if in_progress > 0 {
        FormStatus::InProgress
    } else if complete > 0 {
        FormStatus::Complete
    } else {
        FormStatus::NotStarted
    };
    SubjectRow {
        subject,
        day0: day0.map(|d| d.to_string()),
        status,
        complete,
        in_progress,
        overdue,
        warnings,
    }
}

impl App {
    pub(crate) fn subject_state(
        &self,
        subject: &str,
    ) -> AppResult<(Option<chrono::NaiveDate>, Vec<ScheduleState>)> {
        let raw = self.store()?.subject_values(subject)?;
        Ok(state_of(
            &self.study,
            raw,
            Local::now().date_naive(),
            chrono::Utc::now(),
        ))
    }

    /// The subject list with each subject's form status. Every value of the site is read in
    /// one pass, then the subjects' statuses are worked out on all cores: for a site of 600
    /// subjects (880,000 values, 18,600 instances) this is the first screen after a login.
    pub fn subjects(&self) -> AppResult<Vec<SubjectRow>> {
        let store = self.store()?;
        let mut all = store.all_subject_values()?;
        let work: Vec<(String, BTreeMap<String, Vec<ItemState>>)> = store
            .subjects()?
            .into_iter()
            .map(|s| {
                let raw = all.remove(&s).unwrap_or_default();
                (s, raw)
            })
            .collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let per_thread = work.len().div_ceil(threads).max(1);
        let mut chunks: Vec<Vec<_>> = Vec::new();
        let mut work = work.into_iter().peekable();
        while work.peek().is_some() {
            chunks.push(work.by_ref().take(per_thread).collect());
        }
        let study: &Study = &self.study;
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .into_iter()
                            .map(|(subject, raw)| row_of(study, subject, raw))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let mut rows = Vec::new();
            for h in handles {
                rows.extend(h.join().map_err(|_| {
                    err(
                        ErrorCode::Internal,
                        "the subject list could not be worked out",
                    )
                })?);
            }
            Ok(rows)
        })
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
                        status: st,
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

    pub(crate) fn randomization_view(&self, subject: &str) -> AppResult<Option<RandomizationView>> {
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
            // The IABP window (core's one 6-hour constant, which the outcome judges).
            window_end: start.map(|d| {
                (d + chrono::Duration::minutes(ecrf_core::outcome::WINDOW_MIN)).to_rfc3339()
            }),
        }))
    }
}
