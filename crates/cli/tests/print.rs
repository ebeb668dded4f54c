//! `ecrf print` driven as a user would: a real store, real PDFs, read back with `pdftotext`.

use std::path::Path;
use std::process::Command;

mod common;
use common::{ADMIN_PW, NURSE_PW, ecrf, ok};

fn pdf_text(pdf: &Path) -> String {
    let out = Command::new("pdftotext")
        .args(["-raw", "-enc", "UTF-8"])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (scripts/setup.sh installs poppler-utils)");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

#[test]
fn print_blank_book_and_subject_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ward.ecrf");
    ok(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["init", "--site", "03", "--admin", "admin"],
    ));
    ok(&ecrf(
        &store,
        "admin",
        ADMIN_PW,
        &["user", "add", "li", "--role", "nurse", "--name", "李娜"],
    ));
    let li = |args: &[&str]| ecrf(&store, "li", NURSE_PW, args);
    assert_eq!(ok(&li(&["subject", "new"])).trim(), "03-0001");
    ok(&li(&[
        "form",
        "set",
        "03-0001",
        "DLY#1",
        "DATE=2026-03-02",
        "MAP=68",
        "CVP=@UNK",
    ]));
    ok(&li(&[
        "form",
        "set",
        "03-0001",
        "DLY#1",
        "MAP=74",
        "--reason",
        "wrong line copied",
    ]));

    // The blank book needs no store and no log-in.
    let blank = dir.path().join("blank-zh.pdf");
    let out = ok(&Command::new(env!("CARGO_BIN_EXE_ecrf"))
        .args(["print", "blank", "--lang", "zh", "-o"])
        .arg(&blank)
        .env_remove("ECRF_STORE")
        .env_remove("ECRF_USER")
        .output()
        .unwrap());
    assert!(out.contains("pages"), "{out}");
    let text = pdf_text(&blank);
    for needle in ["每日记录", "筛选与入选", "平均动脉压", "第1页，共"] {
        assert!(text.contains(needle), "{needle} not in the blank book");
    }

    let form = dir.path().join("dly.pdf");
    ok(&li(&[
        "print",
        "blank",
        "--form",
        "DLY",
        "-o",
        form.to_str().unwrap(),
    ]));
    assert!(pdf_text(&form).contains("DLY—Dailylog"));

    let filled = dir.path().join("subject.pdf");
    ok(&li(&[
        "print",
        "subject",
        "03-0001",
        "-o",
        filled.to_str().unwrap(),
    ]));
    let text = pdf_text(&filled);
    for needle in [
        "Site03",
        "Subject03-0001",
        "74mmHg",
        "@UNKUnknown",
        "68mmHg→74mmHg",
        "wronglinecopied",
        "li(nurse)",
        "li=李娜",
        "Printed",
    ] {
        assert!(text.contains(needle), "{needle} not in the subject's CRF");
    }

    // A subject that does not exist: one clear line, nothing written.
    let missing = dir.path().join("nobody.pdf");
    let o = li(&[
        "print",
        "subject",
        "03-0999",
        "-o",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("03-0999"));
    assert!(!missing.exists());
}
