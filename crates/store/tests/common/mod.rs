//! Helpers shared by the store's integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use ecrf_core::{Role, Study};
use ecrf_store::{CreateOptions, Store};

/// The embedded study definition, loaded once per test binary.
pub fn study() -> Arc<Study> {
    static S: OnceLock<Arc<Study>> = OnceLock::new();
    Arc::clone(S.get_or_init(|| Arc::new(ecrf_core::trial::definition().expect("study"))))
}

/// A new store for site 07 at `path`, with `admin` (admin-password) logged in and a nurse
/// `nurse` (nurse-password) added.
pub fn site_07(path: &Path) -> Store {
    let opts = CreateOptions {
        site: "07".into(),
        admin_user: "admin".into(),
        admin_name: "A".into(),
        admin_password: "admin-password".into(),
    };
    let (mut admin, _) = Store::create(path, study(), opts).expect("create the store");
    admin
        .add_user("nurse", "N", Role::Nurse, "nurse-password")
        .expect("add the nurse");
    admin
}

/// An eligible male patient's SCR entries, without its three times (screening, ECMO start,
/// lactate drawn), which each test sets.
pub fn scr_eligible() -> Vec<(&'static str, &'static str)> {
    std::iter::once(("SCRNO", "07-001"))
        .chain(ecrf_core::sample::ELIGIBLE_SCREENING.iter().copied())
        .collect()
}
