//! The boundaries of the workspace, checked on the real dependency graph (`cargo metadata`):
//! the pure crates do no I/O through a dependency, and the sync client, the server, exports and
//! printouts reach the log only through `ecrf-log`, never through the laptop's store (so the
//! server never links SQLCipher or OpenSSL through it).

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

/// This machine's target triple (`rustc -vV`): the graph is resolved for it, from the packages
/// already downloaded (other platforms' packages are not).
fn host() -> String {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc names its host")
        .to_string()
}

/// Normal (non-dev) dependencies of each package, by name.
fn graph() -> HashMap<String, Vec<String>> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let name_of: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .map(|n| {
            let deps = n["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].is_null() || k["kind"] == "build")
                })
                .map(|d| name_of[d["pkg"].as_str().unwrap()].to_string())
                .collect();
            (name_of[n["id"].as_str().unwrap()].to_string(), deps)
        })
        .collect()
}

/// Every package `root` depends on, directly or not (normal and build dependencies).
fn reach(graph: &HashMap<String, Vec<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_string()];
    while let Some(p) = todo.pop() {
        for d in graph.get(&p).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn sync_server_export_and_pdf_never_reach_the_store() {
    let g = graph();
    for krate in [
        "ecrf-wire",
        "ecrf-sync",
        "ecrf-server",
        "ecrf-export",
        "ecrf-pdf",
        "ecrf-web",
    ] {
        let deps = reach(&g, krate);
        assert!(deps.contains("ecrf-log"), "{krate} speaks the log");
        for forbidden in ["ecrf-store", "rusqlite", "libsqlite3-sys"] {
            assert!(
                !deps.contains(forbidden),
                "{krate} depends on {forbidden}: the change log's types are ecrf-log's"
            );
        }
    }
}

#[test]
fn the_pure_crates_stay_pure() {
    let g = graph();
    for krate in ["ecrf-core", "ecrf-log", "ecrf-wire", "ecrf-randomize"] {
        let deps = reach(&g, krate);
        for io in [
            "ecrf-store",
            "rusqlite",
            "ureq",
            "tokio",
            "sqlx",
            "tauri",
            "printpdf",
        ] {
            assert!(!deps.contains(io), "{krate} is pure but depends on {io}");
        }
    }
    // The test itself can fail: the store does reach SQLite.
    assert!(reach(&g, "ecrf-store").contains("rusqlite"));
}

/// ARCHITECTURE.md stays a true map: every crate of the workspace and every module file of
/// each crate (test-only files aside) is named in it, and every crate it names exists.
#[test]
fn the_architecture_map_names_every_crate_and_module() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut missing = Vec::new();
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).expect("crates/") {
        let dir = entry.expect("an entry").path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !map.contains(&format!("crates/{name} ")) {
            missing.push(format!("crates/{name}"));
        }
        crates.push(name);
        for file in std::fs::read_dir(dir.join("src")).expect("src/") {
            let file = file.expect("a file").path();
            let module = file.file_name().unwrap().to_string_lossy().into_owned();
            if module.ends_with(".rs") && !module.ends_with("tests.rs") && !map.contains(&module) {
                missing.push(file.display().to_string());
            }
        }
    }
    assert!(missing.is_empty(), "not in ARCHITECTURE.md: {missing:?}");
    // And the other way: a crate the map names is there.
    for named in map.split("crates/").skip(1) {
        let name: String = named
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        if !name.is_empty() {
            assert!(
                crates.contains(&name),
                "ARCHITECTURE.md names crates/{name}, which does not exist"
            );
        }
    }
}
