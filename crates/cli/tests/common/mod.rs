//! Helpers shared by the command-line tests: run `ecrf` as a user would and read its answer.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use ecrf_testkit::{ADMIN, NURSE, Site, User};

pub const ADMIN_PW: &str = "admin-secret-1";
pub const NURSE_PW: &str = "nurse-secret-1";

/// The administrator of a store made for `ecrf`, with [`ADMIN_PW`].
pub const ADMIN_USER: User = ADMIN.with_password(ADMIN_PW);
/// Its nurse `nurse` (Li Na), with [`NURSE_PW`].
pub const NURSE_USER: User = User {
    name: "Li Na",
    ..NURSE.with_password(NURSE_PW)
};

/// Site 01 with [`ADMIN_USER`] and [`NURSE_USER`]: `site_01().create(&path)` makes a store
/// `ecrf` can be run on with these passwords.
pub fn site_01() -> Site {
    Site::new("01").admin(ADMIN_USER).with(NURSE_USER)
}

pub fn ecrf(store: &Path, user: &str, password: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ecrf"))
        .args(args)
        .env("ECRF_STORE", store)
        .env("ECRF_USER", user)
        .env("ECRF_PASSWORD", password)
        .env("ECRF_NEW_PASSWORD", NURSE_PW)
        .env_remove("ECRF_LANG")
        .env_remove("ECRF_CJK_FONT")
        .output()
        .expect("run ecrf")
}

pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "ecrf failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A failure: exit code 1, one line on stderr starting `error:`, and no panic.
pub fn err(o: &Output) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected a clean failure, got {o:?}"
    );
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}
