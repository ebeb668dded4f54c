//! The trial as the server holds it: every site's change log folded by `ecrf_log::Projection`
//! (the same rules a laptop's store applies), kept in memory and advanced at each request by
//! the changes that arrived since, and one [`SubjectSummary`] per subject.
//!
//! Invariants: a site's changes are read in its commit order (`changes.seq` within a site:
//! pushes of a site hold its row lock), so a cursor per site never skips one; a summary is
//! recomputed when one of its subject's changes arrives (at the next read), and all of them
//! when the clock has moved on by [`RECOMPUTE_AFTER`] (overdue work and flags depend on today),
//! by a background task a few hundred at a time between requests; every number of
//! the dashboard is computed by `core` from these values (eligibility, outcome), never here.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use ecrf_core::eligibility::Screened;
use ecrf_core::outcome::{SubjectOutcome, subject_outcome};
use ecrf_log::{Change, Projection};
use sqlx::{PgPool, Row};
use tokio::sync::{Mutex, MutexGuard};

use crate::WebError;

/// Summaries older than this are recomputed even without new changes.
pub const RECOMPUTE_AFTER: Duration = Duration::minutes(10);

/// At most this many summaries are recomputed for the clock at a time, by a background task
/// between requests (those of subjects that changed are recomputed at the next read): a 10×
/// trial's recompute never stalls a page.
pub const RECOMPUTE_PER_TICK: usize = 400;

/// Changes read per query while advancing a site's fold.
const PAGE: i64 = 20_000;

/// How often the background task looks for summaries to recompute for the clock.
pub const TICK: std::time::Duration = std::time::Duration::from_millis(500);

/// The day-30 follow-up of a randomized subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Day30Work {
    /// Before day 30.
    NotYet,
    /// Day 30 to day 37 (the window), not yet recorded.
    Due,
    /// After day 37, not recorded.
    Overdue,
    /// Recorded, or not needed (death recorded before day 30).
    Done,
}

/// One subject, as the dashboard counts it.
#[derive(Debug, Clone)]
pub struct SubjectSummary {
    /// SCR, CON and RND as screening reads them.
    pub screened: Screened,
    /// Core's outcome and protocol flags.
    pub outcome: SubjectOutcome,
    /// The day-30 follow-up.
    pub day30: Day30Work,
    /// Serious adverse events recorded (AE with `SERIOUS = Y`).
    pub serious_aes: usize,
    /// Forms the subject has values in.
    pub forms: usize,
    /// A casebook signature holds (valid: the values have not changed since).
    pub casebook_signed: bool,
}

/// One site's fold.
#[derive(Default)]
pub struct SiteState {
    /// The site's name.
    pub name: String,
    /// The fold of its log.
    pub projection: Projection,
    /// Its last change read (`changes.seq`).
    pub cursor: i64,
    /// Each subject's summary.
    pub subjects: BTreeMap<String, SubjectSummary>,
    dirty: BTreeSet<String>,
    /// Summaries computed with an older clock, recomputed by the background task.
    stale: BTreeSet<String>,
}

/// Every site's fold.
#[derive(Default)]
pub struct Trial {
    /// By site code.
    pub sites: BTreeMap<String, SiteState>,
    /// When the summaries were last all computed.
    pub computed_at: Option<DateTime<Utc>>,
}

/// The fold behind a lock, advanced at each read.
#[derive(Default)]
pub struct TrialCache {
    trial: Mutex<Trial>,
}

impl TrialCache {
    /// Starts the background work: folds everything there is now (so that the first page
    /// does not wait for a whole trial's log), then every [`TICK`] recomputes up to
    /// [`RECOMPUTE_PER_TICK`] summaries the clock has made stale.
    pub fn warm_up(self: &std::sync::Arc<Self>, pool: PgPool) {
        let me = std::sync::Arc::clone(self);
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            match me.read(&pool, Utc::now()).await {
                Ok(t) => tracing::info!(
                    subjects = t.sites.values().map(|s| s.subjects.len()).sum::<usize>(),
                    ms = started.elapsed().as_millis() as u64,
                    "web view: trial folded"
                ),
                Err(e) => tracing::warn!(error = %e, "web view: fold at start failed"),
            }
            loop {
                tokio::time::sleep(TICK).await;
                me.trial
                    .lock()
                    .await
                    .refresh_for_clock(Utc::now(), RECOMPUTE_PER_TICK);
            }
        });
    }

    /// The trial up to the last change committed, its summaries as of `now`.
    pub async fn read(
        &self,
        pool: &PgPool,
        now: DateTime<Utc>,
    ) -> Result<MutexGuard<'_, Trial>, WebError> {
        let mut trial = self.trial.lock().await;
        trial.advance(pool).await?;
        trial.summarize(now);
        Ok(trial)
    }
}

impl Trial {
    /// Reads every site's changes after its cursor into its fold.
    async fn advance(&mut self, pool: &PgPool) -> Result<(), WebError> {
        // Each site's last change: one step down the (site, seq) index per site, so that
        // nothing new (the common case) costs one query.
        let sites = sqlx::query(
            "SELECT s.code, s.name, (SELECT max(seq) FROM changes c WHERE c.site = s.code) \
             FROM sites s ORDER BY s.code",
        )
        .fetch_all(pool)
        .await?;
        for row in sites {
            let code: String = row.get(0);
            let state = self.sites.entry(code.clone()).or_default();
            state.name = row.get(1);
            let last: Option<i64> = row.get(2);
            let Some(last) = last.filter(|l| *l > state.cursor) else {
                continue;
            };
            // Pages along the (site, seq) index between two row comparisons: conditions only
            // that index can serve (a plain `seq > $2` lets the planner walk the primary key
            // through other sites' changes), and both bound the scan. With `site = $1` instead
            // of the upper bound the scan starts at the site's first change (38 ms for one new
            // change at 10×; 0.05 ms so).
            while state.cursor < last {
                let rows = sqlx::query(
                    "SELECT seq, body FROM changes \
                     WHERE (site, seq) > ($1, $2) AND (site, seq) <= ($1, $3) \
                     ORDER BY site, seq LIMIT $4",
                )
                .bind(&code)
                .bind(state.cursor)
                .bind(last)
                .bind(PAGE)
                .persistent(false)
                .fetch_all(pool)
                .await?;
                if rows.is_empty() {
                    break;
                }
                for r in rows {
                    let seq: i64 = r.get(0);
                    let body: &str = r.get(1);
                    state.cursor = seq;
                    let change: Change = match serde_json::from_str(body) {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!(site = %code, seq, error = %e, "unreadable change");
                            continue;
                        }
                    };
                    if let Err(e) = state.projection.apply(&change) {
                        tracing::warn!(site = %code, seq, error = %e, "change not folded");
                    }
                    if let Some(s) = change.subject {
                        state.dirty.insert(s);
                    }
                }
            }
        }
        Ok(())
    }

    /// Recomputes the summaries of the subjects that changed.
    fn summarize(&mut self, now: DateTime<Utc>) {
        if self.computed_at.is_none() {
            self.computed_at = Some(now);
        }
        self.recompute(now, 0);
    }

    /// When the clock has moved on by [`RECOMPUTE_AFTER`], marks every summary stale; then
    /// recomputes up to `budget` stale ones.
    pub fn refresh_for_clock(&mut self, now: DateTime<Utc>, budget: usize) {
        if self.computed_at.is_some_and(|t| now - t > RECOMPUTE_AFTER) {
            self.computed_at = Some(now);
            for state in self.sites.values_mut() {
                state.stale = state.subjects.keys().cloned().collect();
            }
        }
        self.recompute(now, budget);
    }

    /// Subjects whose summary waits for a recompute for the clock.
    pub fn stale(&self) -> usize {
        self.sites.values().map(|s| s.stale.len()).sum()
    }

    fn recompute(&mut self, now: DateTime<Utc>, mut budget: usize) {
        for state in self.sites.values_mut() {
            let mut todo: Vec<String> = std::mem::take(&mut state.dirty).into_iter().collect();
            while budget > 0 {
                let Some(s) = state.stale.pop_first() else {
                    break;
                };
                budget -= 1;
                todo.push(s);
            }
            for subject in todo {
                state.stale.remove(&subject);
                match summary(&state.projection, &subject, now) {
                    Ok(s) => {
                        state.subjects.insert(subject, s);
                    }
                    Err(e) => tracing::warn!(subject = %subject, error = %e, "not summarized"),
                }
            }
        }
    }
}

/// One subject's summary from the fold.
pub fn summary(
    projection: &Projection,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<SubjectSummary, ecrf_log::project::ProjectError> {
    let values = projection.subject_values(subject)?;
    let outcome = subject_outcome(&values, now);
    let screened = Screened::of(subject, &values);
    let day30 = day30_work(&outcome, values.contains_key("D30"), now.date_naive());
    let serious_aes = values
        .iter()
        .filter(|(k, _)| k.starts_with("AE#"))
        .filter(|(_, v)| matches!(v.get("SERIOUS"), Some(ecrf_core::Value::Code(c)) if c == "Y"))
        .count();
    let casebook_signed = projection
        .subject_signatures(subject)?
        .iter()
        .any(|s| s.valid && s.scope == "casebook");
    Ok(SubjectSummary {
        casebook_signed,
        screened,
        outcome,
        day30,
        serious_aes,
        forms: values.len(),
    })
}

/// Where a randomized subject's day-30 follow-up stands on `today` (window day 30–37).
pub fn day30_work(outcome: &SubjectOutcome, recorded: bool, today: NaiveDate) -> Day30Work {
    let Some(day0) = outcome.day_zero else {
        return Day30Work::NotYet;
    };
    let died_before = outcome.death_day.is_some_and(|d| d < 30);
    if recorded || died_before {
        return Day30Work::Done;
    }
    let day = (today - day0).num_days();
    match day {
        ..30 => Day30Work::NotYet,
        30..=37 => Day30Work::Due,
        _ => Day30Work::Overdue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome_from(day0: Option<NaiveDate>, death_day: Option<i64>) -> SubjectOutcome {
        let mut o = subject_outcome(&Default::default(), Utc::now());
        o.day_zero = day0;
        o.death_day = death_day;
        o
    }

    #[test]
    fn day30_is_due_in_its_window_and_overdue_after_day_37() {
        let d0 = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let o = outcome_from(Some(d0), None);
        let on = |n| d0 + Duration::days(n);
        assert_eq!(day30_work(&o, false, on(29)), Day30Work::NotYet);
        assert_eq!(day30_work(&o, false, on(30)), Day30Work::Due);
        assert_eq!(day30_work(&o, false, on(37)), Day30Work::Due);
        assert_eq!(day30_work(&o, false, on(38)), Day30Work::Overdue);
        assert_eq!(day30_work(&o, true, on(38)), Day30Work::Done);
        let dead = outcome_from(Some(d0), Some(12));
        assert_eq!(day30_work(&dead, false, on(40)), Day30Work::Done);
        assert_eq!(
            day30_work(&outcome_from(None, None), false, on(40)),
            Day30Work::NotYet
        );
    }
}
