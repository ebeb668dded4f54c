//! The statements every sync runs read through an index, never a whole table, and `changes`
//! through the index that fits (a pull's page through `(site, seq)`): their generic plans (as
//! the server prepares them) are asked of a real PostgreSQL with sequential scans priced out,
//! so a scan that remains is one no index can serve, at any size of the trial.

mod server;

use ecrf_server::db::plans::{HotStatement, hot_statements, plan, sequential_scans, wrong_index};
use sqlx::Connection;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn no_hot_statement_reads_a_whole_table() {
    let url = server::fresh_database();
    runtime().block_on(async {
        // The server's own schema, brought up to date as it starts.
        let pool = ecrf_server::db::connect(&url, 2).await.unwrap();
        drop(pool);
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        let statements = hot_statements("01", "device-1");
        assert!(statements.len() >= 7, "every hot statement is listed");
        for stmt in &statements {
            let lines = plan(&mut conn, stmt, true).await.unwrap();
            assert!(!lines.is_empty(), "{}: no plan", stmt.name);
            assert_eq!(
                sequential_scans(&lines),
                Vec::<String>::new(),
                "{} reads a whole table:\n{}",
                stmt.name,
                lines.join("\n")
            );
            assert_eq!(
                wrong_index(&lines, stmt),
                Vec::<String>::new(),
                "{} reads `changes` through another index than {:?}:\n{}",
                stmt.name,
                stmt.changes_index,
                lines.join("\n")
            );
        }

        // With statistics of a trial of few sites, each loaded in turn (so `seq` and `site`
        // go together), as the plans the server really gets: `changes` still through the
        // right index. A pull asked as `site = $1 AND seq > $2` walked the primary key here.
        for sql in [
            "INSERT INTO sites (code, name) SELECT lpad(i::text, 2, '0'), 'Site' \
             FROM generate_series(1, 5) i",
            "INSERT INTO devices (device, site, device_no, token_hash, last_hash, acked, \
             pulled_seq) SELECT 'device-' || i, lpad(i::text, 2, '0'), 1, 'token-' || i, '', 0, 0 \
             FROM generate_series(1, 5) i",
            "INSERT INTO changes (site, change_id, device, device_seq, hash, body, subject) \
             SELECT lpad(s::text, 2, '0'), s || '-' || n, 'device-' || s, n, md5(s || '-' || n), \
             '{\"subject\":\"' || lpad(s::text, 2, '0') || '-B' || (n / 1000) || '\"}', \
             lpad(s::text, 2, '0') || '-B' || (n / 1000) \
             FROM generate_series(1, 5) s, generate_series(1, 20000) n ORDER BY s, n",
            "ANALYZE",
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        for stmt in &statements {
            let lines = plan(&mut conn, stmt, false).await.unwrap();
            assert_eq!(
                wrong_index(&lines, stmt),
                Vec::<String>::new(),
                "{} (with statistics) reads `changes` through another index than {:?}:\n{}",
                stmt.name,
                stmt.changes_index,
                lines.join("\n")
            );
            assert!(
                !sequential_scans(&lines).contains(&"changes".to_string()),
                "{} (with statistics) reads `changes` whole:\n{}",
                stmt.name,
                lines.join("\n")
            );
        }

        // Every change from one device (a trial's first site with one laptop): PostgreSQL
        // estimated `device <> $3` as no row at all, and the generic plan of a pull's page read
        // the site's whole rest by a bitmap scan and sorted it at every page (a first full
        // sync: 40 ms a page instead of 1 ms, growing with the site).
        for sql in ["DELETE FROM changes WHERE site <> '01'", "ANALYZE"] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let pull = statements
            .iter()
            .find(|s| s.name == "a pull's page")
            .unwrap();
        let lines = plan(&mut conn, pull, false).await.unwrap();
        assert!(
            !lines.iter().any(|l| l.contains("Sort")) && wrong_index(&lines, pull).is_empty(),
            "a pull's page (one device's changes) sorts the site's rest instead of reading it \
             in the index's order:\n{}",
            lines.join("\n")
        );

        // The check sees a statement no index serves (a change by its hash alone).
        let unindexed = HotStatement {
            name: "a change by its hash",
            sql: "SELECT seq FROM changes WHERE hash = $1",
            args: vec!["'00'".into()],
            changes_index: None,
        };
        let lines = plan(&mut conn, &unindexed, true).await.unwrap();
        assert_eq!(sequential_scans(&lines), vec!["changes".to_string()]);
    });
}

/// `changes` names its site and device without a foreign key (a trigger and an index probe per
/// stored row): what holds instead is that neither row can go.
#[test]
fn sites_and_devices_are_never_removed() {
    let url = server::fresh_database();
    runtime().block_on(async {
        drop(ecrf_server::db::connect(&url, 2).await.unwrap());
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        for sql in [
            "INSERT INTO sites (code, name) VALUES ('01', 'Site')",
            "INSERT INTO devices (device, site, device_no, token_hash, last_hash, acked, \
             pulled_seq) VALUES ('device-1', '01', 1, 'token-1', '', 0, 0)",
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        for sql in [
            "DELETE FROM devices WHERE device = 'device-1'",
            "UPDATE devices SET device = 'device-2'",
            "TRUNCATE devices CASCADE",
            "DELETE FROM sites",
            "UPDATE sites SET code = '02'",
        ] {
            let refused = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .expect_err(sql)
                .to_string();
            assert!(
                refused.contains("never deleted or renamed"),
                "{sql}: {refused}"
            );
        }
        // A revoked device keeps its row; other columns still change.
        sqlx::raw_sql("UPDATE devices SET revoked = now(), acked = 1")
            .execute(&mut conn)
            .await
            .unwrap();
        let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM devices")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(kept, 1);
    });
}
