//! `ecrf randomize` and the window after ECMO start (study.toml `[randomization]`, 6 hours):
//! refused after it with both times and the limit, refused while the screening says LV
//! unloading has already started, randomized once both are right.

mod common;
use common::{NURSE_PW, NURSE_USER, ecrf, err, ok, site_01};

fn minutes_ago(m: i64) -> String {
    (chrono::Local::now().fixed_offset() - chrono::Duration::minutes(m))
        .format("%Y-%m-%dT%H:%M%:z")
        .to_string()
}

#[test]
fn randomize_refuses_after_the_window_and_once_unloading_has_started() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.ecrf");
    drop(site_01().with_lease(4, [9; 32]).create(&path));
    let mut s = ecrf_testkit::open_as(&path, &NURSE_USER);
    let id = ecrf_testkit::eligible_subject(&mut s, "01-001");
    drop(s);
    let nurse = |args: &[&str]| ecrf(&path, NURSE_USER.username, NURSE_PW, args);
    let set = |item: &str, value: &str| {
        let pair = format!("{item}={value}");
        ok(&nurse(&[
            "form",
            "set",
            &id,
            "SCR",
            &pair,
            "--reason",
            "checked with the perfusionist",
            "--confirm-warnings",
        ]));
    };

    // ECMO started 6 h 20 min ago: too late, naming both times and the limit.
    let start = minutes_ago(380);
    set("ECMO_START_DT", &start);
    let e = err(&nurse(&["randomize", &id]));
    assert!(
        e.contains("not randomized: too late: randomization at "),
        "{e}"
    );
    let start_shown = start[..16].replace('T', " ");
    assert!(
        e.contains(&format!("after ECMO start at {start_shown}")),
        "{e}"
    );
    assert!(
        e.contains("6 h 20 min after") || e.contains("6 h 21 min after"),
        "{e}"
    );
    assert!(e.contains("the 6 h 00 min the protocol allows"), "{e}");
    assert!(!ok(&nurse(&["form", "show", &id, "RND"])).contains("R0001"));

    // Within the window, but an Impella is already in: refused with the reason.
    set("ECMO_START_DT", &minutes_ago(90));
    set("LV_UNLOADING_STARTED", "Y");
    let e = err(&nurse(&["randomize", &id]));
    assert!(e.contains("mechanical LV unloading"), "{e}");
    assert!(e.contains("LV_UNLOADING_STARTED = yes"), "{e}");

    // No unloading: randomized.
    set("LV_UNLOADING_STARTED", "N");
    let said = ok(&nurse(&["randomize", &id]));
    assert!(said.contains("subject number 01-R0001"), "{said}");

    // The new item is on the screening form, in both languages.
    let shown = ok(&nurse(&["form", "show", &id, "SCR"]));
    assert!(shown.contains("LV_UNLOADING_STARTED"), "{shown}");
    assert!(
        shown.contains("Mechanical LV unloading already started"),
        "{shown}"
    );
    let zh = ok(&nurse(&["--lang", "zh", "form", "show", &id, "SCR"]));
    assert!(zh.contains("已开始机械性左心室减负"), "{zh}");
}
