//! Text that looks like markup or SQL is data: stored, shown and printed literally, and the
//! desktop's Content-Security-Policy forbids inline scripts (the UI builds no HTML from text).

use std::path::Path;
use std::process::Command;

mod common;
use common::{ADMIN_PW, NURSE_PW, ecrf, ok};

const MARKUP: &str = "<img src=x onerror=alert(1)>";
const SQL: &str = "'); DROP TABLE subjects;--";

fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn markup_and_sql_in_values_and_reasons_are_kept_and_printed_literally() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ward.ecrf");
    ok(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["init", "--site", "01", "--admin", "admin"],
    ));
    ok(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["user", "add", "li", "--role", "nurse"],
    ));
    let li = |args: &[&str]| ecrf(&store, "li", NURSE_PW, args);
    assert_eq!(ok(&li(&["subject", "new"])).trim(), "01-0001");
    let v = format!("CONFIG_OTH={MARKUP}");
    ok(&li(&[
        "form",
        "set",
        "01-0001",
        "ECMO",
        "CONFIG=OTHER_PERIPHERAL",
        &v,
    ]));
    let v = format!("CONFIG_OTH={SQL}");
    let reason = format!("{MARKUP} {SQL}");
    ok(&li(&[
        "form", "set", "01-0001", "ECMO", &v, "--reason", &reason,
    ]));

    let shown = ok(&li(&["form", "show", "01-0001", "ECMO"]));
    assert!(shown.contains(SQL), "{shown}");
    let audit = ok(&li(&["audit", "log", "01-0001"]));
    assert!(audit.contains(MARKUP) && audit.contains(&reason), "{audit}");
    assert_eq!(ok(&li(&["subject", "list"])).trim(), "01-0001");
    assert!(ok(&li(&["store", "check"])).starts_with("OK:"));

    let pdf = dir.path().join("crf.pdf");
    ok(&li(&[
        "print",
        "subject",
        "01-0001",
        "-o",
        pdf.to_str().unwrap(),
    ]));
    let out = Command::new("pdftotext")
        .args(["-raw", "-enc", "UTF-8"])
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext (scripts/setup.sh installs poppler-utils)");
    let text = squeeze(&String::from_utf8_lossy(&out.stdout));
    assert!(
        text.contains(&squeeze(MARKUP)),
        "markup not printed literally"
    );
    assert!(text.contains(&squeeze(SQL)), "SQL not printed literally");
}

#[test]
fn the_desktop_forbids_inline_scripts_and_builds_no_html_from_text() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let conf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("tauri.conf.json")).unwrap())
            .unwrap();
    let csp = conf["app"]["security"]["csp"]
        .as_str()
        .expect("a CSP is set");
    let directive = |name: &str| {
        csp.split(';')
            .map(str::trim)
            .find(|d| d.starts_with(name))
            .unwrap_or_default()
            .to_string()
    };
    let scripts = directive("script-src");
    assert_eq!(scripts, "script-src 'self'", "{csp}");
    assert!(directive("default-src").contains("'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    for entry in std::fs::read_dir(root.join("ui/src")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ts") {
            let code = std::fs::read_to_string(&path).unwrap();
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ] {
                assert!(!code.contains(sink), "{} uses {sink}", path.display());
            }
        }
    }
}
