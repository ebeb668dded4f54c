//! The dashboard's numbers, from the subject summaries of the sites a user may see: enrolment
//! against the target with its projection, CONSORT (core's counts, the same as `ecrf screening
//! consort`), allocation balance (counts of arms opened by randomization only), protocol
//! flags, overdue work and device health. Pure but for [`devices`], which reads the server's
//! device table.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use ecrf_core::eligibility::{SiteConsort, consort_by_site};
use ecrf_core::outcome::Answer;
use ecrf_core::query::QueryState;
use sqlx::{PgPool, Row};

use crate::WebError;
use crate::model::{Day30Work, Trial};

/// Query ages counted on the dashboard: under 7 days, 7–13, 14–29, 30 and more.
pub const QUERY_AGES: [&str; 4] = ["<7", "7-13", "14-29", "30+"];

/// One site's row.
#[derive(Debug, Clone, Default)]
pub struct SiteRow {
    /// Site code.
    pub site: String,
    /// Site name.
    pub name: String,
    /// CONSORT counts (with randomized per arm: the allocation balance).
    pub consort: SiteConsort,
    /// Daily logs missing (one per subject and day).
    pub missing_logs: usize,
    /// Day-30 follow-ups in their window, not recorded.
    pub day30_due: usize,
    /// Day-30 follow-ups past day 37, not recorded.
    pub day30_overdue: usize,
    /// Randomized subjects whose follow-up is done and whose casebook is not signed.
    pub unsigned: usize,
    /// Queries not answered, by age ([`QUERY_AGES`]).
    pub open_queries: [usize; 4],
    /// Queries answered, waiting to be closed.
    pub answered_queries: usize,
    /// Items with two values from two laptops, not yet resolved.
    pub conflicts: usize,
    /// Protocol flags by code.
    pub flags: BTreeMap<String, usize>,
}

/// The whole dashboard of one user.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    /// The target sample size.
    pub target: usize,
    /// One row per site the user may see.
    pub sites: Vec<SiteRow>,
    /// The sum of those sites' CONSORT counts.
    pub consort: SiteConsort,
    /// Randomized, follow-up over (day 37 passed) and the primary endpoint unknown, by arm.
    pub lost: BTreeMap<String, usize>,
    /// Randomized with the primary endpoint known, by arm.
    pub analysed: BTreeMap<String, usize>,
    /// Cumulative randomizations: (date, total by then), one point per date.
    pub enrolment: Vec<(NaiveDate, usize)>,
    /// When the target would be reached at the rate of the last 90 days.
    pub projected: Option<NaiveDate>,
    /// Randomizations per day over the last 90 days (or since the first).
    pub rate_per_day: f64,
}

/// The dashboard over `sites` (codes the user may see) on `now`.
pub fn dashboard(trial: &Trial, sites: &[String], target: usize, now: DateTime<Utc>) -> Dashboard {
    let today = now.date_naive();
    let mut d = Dashboard {
        target,
        ..Dashboard::default()
    };
    let mut randomized_on: Vec<NaiveDate> = Vec::new();
    for code in sites {
        let Some(state) = trial.sites.get(code) else {
            continue;
        };
        let mut row = SiteRow {
            site: code.clone(),
            name: state.name.clone(),
            ..SiteRow::default()
        };
        // Core's counts over this site's subjects, exactly as the laptop counts them.
        row.consort = consort_by_site(state.subjects.values().map(|s| &s.screened))
            .remove(code)
            .unwrap_or_default();
        for s in state.subjects.values() {
            for f in &s.outcome.flags {
                if f.code == "DAILY_LOG_MISSING" {
                    row.missing_logs += 1;
                }
                *row.flags.entry(f.code.clone()).or_default() += 1;
            }
            match s.day30 {
                Day30Work::Due => row.day30_due += 1,
                Day30Work::Overdue => row.day30_overdue += 1,
                Day30Work::Done | Day30Work::NotYet => {}
            }
            if !s.screened.randomized {
                continue;
            }
            if let Some(t) = s.outcome.randomized_at {
                randomized_on.push(t.date_naive());
            }
            if s.day30 == Day30Work::Done && !s.casebook_signed {
                row.unsigned += 1;
            }
            let arm = s.screened.arm.clone().unwrap_or_default();
            let over = s
                .outcome
                .day_zero
                .is_some_and(|d0| (today - d0).num_days() > 37);
            match s.outcome.primary_endpoint {
                Answer::Yes | Answer::No => *d.analysed.entry(arm).or_default() += 1,
                Answer::Unknown if over => *d.lost.entry(arm).or_default() += 1,
                Answer::Unknown => {}
            }
        }
        for q in state.projection.queries.values() {
            match q.state {
                QueryState::Open => {
                    let age = DateTime::parse_from_rfc3339(&q.raised_utc)
                        .map(|t| (now - t.with_timezone(&Utc)).num_days())
                        .unwrap_or(0);
                    let bucket = match age {
                        ..7 => 0,
                        7..14 => 1,
                        14..30 => 2,
                        _ => 3,
                    };
                    row.open_queries[bucket] += 1;
                }
                QueryState::Answered => row.answered_queries += 1,
                QueryState::Closed => {}
            }
        }
        row.conflicts = state.projection.conflicts().count();
        d.consort.merge(&row.consort);
        d.sites.push(row);
    }
    randomized_on.sort();
    for (i, day) in randomized_on.iter().enumerate() {
        match d.enrolment.last_mut() {
            Some((last, n)) if last == day => *n = i + 1,
            _ => d.enrolment.push((*day, i + 1)),
        }
    }
    (d.rate_per_day, d.projected) = projection(&randomized_on, target, today);
    d
}

/// The rate of the last 90 days (or since the first randomization, if later) and the date the
/// target would be reached at it.
pub fn projection(
    dates: &[NaiveDate],
    target: usize,
    today: NaiveDate,
) -> (f64, Option<NaiveDate>) {
    let Some(first) = dates.first() else {
        return (0.0, None);
    };
    let since = (*first).max(today - Duration::days(90));
    let days = ((today - since).num_days() + 1).max(1) as f64;
    let recent = dates.iter().filter(|d| **d >= since).count() as f64;
    let rate = recent / days;
    let left = target.saturating_sub(dates.len()) as f64;
    if left == 0.0 {
        return (rate, dates.last().copied());
    }
    if rate <= 0.0 {
        return (rate, None);
    }
    (
        rate,
        Some(today + Duration::days((left / rate).ceil() as i64)),
    )
}

/// Changes waiting for a laptop are counted up to this many (shown as "1000+"), and only when
/// the site's last change is after the laptop's mark (one step down the (site, seq) index), so
/// an up-to-date laptop costs nothing even in a 10× trial. Each change counted is a row read,
/// at every dashboard load: counting to 10,000 took the warm dashboard at 10× (`make
/// bench-scale`, where ~140 laptops of one site were thousands behind) to 483 ms p95, 136 ms
/// counting to 1,000; beyond a thousand a laptop is simply far behind, as its last sync shows.
pub const WAITING_CAP: i64 = 1_000;

/// One laptop's health.
#[derive(Debug, Clone)]
pub struct DeviceHealth {
    /// Device id.
    pub device: String,
    /// Its site.
    pub site: String,
    /// When it last asked for changes.
    pub last_sync: Option<DateTime<Utc>>,
    /// The site's changes it has not received yet (at most [`WAITING_CAP`]).
    pub waiting: i64,
    /// Revoked.
    pub revoked: bool,
    /// Not synced for a day or more (or never).
    pub stale: bool,
}

/// The laptops of `sites`.
pub async fn devices(
    pool: &PgPool,
    sites: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<DeviceHealth>, WebError> {
    let rows = sqlx::query(
        "SELECT d.device, d.site, extract(epoch FROM d.last_sync)::float8, d.revoked IS NOT NULL, \
           CASE WHEN m.last > d.pulled_seq \
             THEN (SELECT count(*) FROM (SELECT 1 FROM changes c \
              WHERE (c.site, c.seq) > (d.site, d.pulled_seq) AND (c.site, c.seq) <= (d.site, m.last) \
              AND c.device <> d.device ORDER BY c.site, c.seq LIMIT $2) w) \
             ELSE 0 END \
         FROM devices d CROSS JOIN LATERAL (SELECT max(seq) AS last FROM changes x WHERE x.site = d.site) m \
         WHERE d.site = ANY($1) AND d.device NOT LIKE 'server-%' AND d.device NOT LIKE 'web-%' \
         ORDER BY d.site, d.device",
    )
    .bind(sites)
    .bind(WAITING_CAP)
    // Planned with each laptop's own mark, not a generic plan.
    .persistent(false)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let last_sync = r
                .get::<Option<f64>, _>(2)
                .and_then(|secs| DateTime::from_timestamp_millis((secs * 1000.0) as i64));
            let revoked: bool = r.get(3);
            DeviceHealth {
                device: r.get(0),
                site: r.get(1),
                stale: !revoked && last_sync.is_none_or(|t| now - t > Duration::hours(24)),
                last_sync,
                waiting: r.get(4),
                revoked,
            }
        })
        .collect())
}

/// Flags the server raised itself (clock, held changes, refused pushes), by site and kind.
pub async fn server_flags(
    pool: &PgPool,
    sites: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, i64>>, WebError> {
    let rows = sqlx::query(
        "SELECT site, flag, count(*) FROM flags WHERE site = ANY($1) GROUP BY site, flag",
    )
    .bind(sites)
    .fetch_all(pool)
    .await?;
    let mut out: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for r in rows {
        out.entry(r.get(0)).or_default().insert(r.get(1), r.get(2));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_divides_what_is_left_by_the_recent_rate() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
        // 91 days, one randomization a day: rate 1/day, 358 - 91 = 267 days left.
        let dates: Vec<NaiveDate> = (0..91).map(|i| today - Duration::days(90 - i)).collect();
        let (rate, when) = projection(&dates, 358, today);
        assert!((rate - 1.0).abs() < 1e-9, "{rate}");
        assert_eq!(when, Some(today + Duration::days(267)));
        assert_eq!(projection(&[], 358, today), (0.0, None));
    }
}
