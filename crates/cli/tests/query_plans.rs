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
