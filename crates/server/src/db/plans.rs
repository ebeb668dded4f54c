//! The statements every sync runs (a request's device, a push's chain head and authors, a
//! pull's page), each the very text the server prepares, and their plans: how `bench-scale`
//! shows them at each size and how a test holds that none reads a whole table.
//!
//! Plans are asked as the server runs them: prepared, with `plan_cache_mode =
//! force_generic_plan` (see [`super::connect`]), so the plan shown is the one used for every
//! value.

use sqlx::{Connection, PgConnection, Row};

/// One hot statement: its name, text and the values to plan it with (SQL literals, in order).
pub struct HotStatement {
    /// What it does.
    pub name: &'static str,
    /// Its text, as the server prepares it.
    pub sql: &'static str,
    /// Values for its parameters.
    pub args: Vec<String>,
    /// The index every read of `changes` must go through, where one is the right one.
    pub changes_index: Option<&'static str>,
}

/// The hot statements, planned for `site` and `device`.
pub fn hot_statements(site: &str, device: &str) -> Vec<HotStatement> {
    let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
    vec![
        HotStatement {
            name: "a request's device by its token",
            sql: super::device::BY_TOKEN,
            args: vec![lit("0000")],
            changes_index: None,
        },
        HotStatement {
            name: "a push's locks and chain head",
            sql: super::changes::PUSH_HEAD,
            args: vec![lit(site), lit(device)],
            changes_index: None,
        },
        HotStatement {
            name: "a pushed change held already",
            sql: super::changes::HELD_HASH,
            args: vec![lit(device), "1".into()],
            changes_index: Some("changes_device_device_seq_key"),
        },
        HotStatement {
            name: "a push's authors' keys and roles",
            sql: super::users::REGISTRY,
            args: vec![lit(site), "ARRAY['nurse']".into()],
            changes_index: None,
        },
        HotStatement {
            name: "the changes a push replaces",
            sql: super::changes::TIMES_OF,
            args: vec!["ARRAY['0']".into()],
            changes_index: Some("changes_change_id_key"),
        },
        HotStatement {
            name: "a pull's page",
            sql: super::changes::PULL_PAGE,
            args: vec![lit(site), "0".into(), lit(device), "1001".into()],
            changes_index: Some("changes_site_seq"),
        },
        HotStatement {
            name: "a subject's changes (the web view's subject page)",
            sql: super::logs::SUBJECT_CHANGES,
            args: vec![lit(site), lit(&format!("{site}-001"))],
            changes_index: Some("changes_site_subject"),
        },
    ]
}

/// The plan PostgreSQL uses for `stmt` (its generic plan), one line per node. With
/// `index_wherever_possible` sequential scans are priced out (`enable_seqscan = off`): one that
/// remains means no index can serve the statement, whatever the table's size; that is how a
/// test on a small database sees what a large one would do.
pub async fn plan(
    conn: &mut PgConnection,
    stmt: &HotStatement,
    index_wherever_possible: bool,
) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::raw_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        .execute(&mut *tx)
        .await?;
    if index_wherever_possible {
        sqlx::raw_sql("SET LOCAL enable_seqscan = off")
            .execute(&mut *tx)
            .await?;
    }
    // The texts are this crate's constants and the values literals made above.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "PREPARE ecrf_hot AS {}",
        stmt.sql
    )))
    .execute(&mut *tx)
    .await?;
    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "EXPLAIN EXECUTE ecrf_hot({})",
        stmt.args.join(", ")
    )))
    .fetch_all(&mut *tx)
    .await?;
    let plan = rows.iter().map(|r| r.get::<String, _>(0)).collect();
    // PREPARE outlives a transaction: dropped before the rollback ends this one.
    sqlx::raw_sql("DEALLOCATE ecrf_hot")
        .execute(&mut *tx)
        .await?;
    tx.rollback().await?;
    Ok(plan)
}

/// The tables a plan reads whole (`Seq Scan on <table>`).
pub fn sequential_scans(plan: &[String]) -> Vec<String> {
    plan.iter()
        .filter_map(|line| {
            let at = line.find("Seq Scan on ")?;
            let rest = &line[at + "Seq Scan on ".len()..];
            Some(rest.split_whitespace().next().unwrap_or(rest).to_string())
        })
        .collect()
}

/// The index scans of `plan` over `changes` through another index than `stmt`'s (none when it
/// names none). A bitmap heap scan is judged by the bitmap index scan under it.
pub fn wrong_index(plan: &[String], stmt: &HotStatement) -> Vec<String> {
    let Some(index) = stmt.changes_index else {
        return Vec::new();
    };
    plan.iter()
        .filter(|l| {
            let index_scan = l.contains("Index Scan") || l.contains("Index Only Scan");
            let of_changes = l.contains(" on changes") || l.contains(" on changes_");
            index_scan && of_changes && !l.contains(&format!(" {index} "))
        })
        .map(|l| l.trim().to_string())
        .collect()
}
