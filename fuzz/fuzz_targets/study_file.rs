//! Study definition files: any text as the daily-log form file, read against the study loaded
//! once (each input costs one form file, not the whole definition), and as `study.toml` alone
//! (its form files then missing, so none is read); no panic.
#![no_main]
use std::sync::OnceLock;

use ecrf_core::trial::{FORM_FILES, STUDY_FILE};
use libfuzzer_sys::fuzz_target;

fn study() -> &'static ecrf_core::Study {
    static S: OnceLock<ecrf_core::Study> = OnceLock::new();
    S.get_or_init(|| ecrf_core::Study::from_sources(STUDY_FILE, FORM_FILES).expect("the study"))
}

fuzz_target!(|text: &str| {
    let _ = study().with_form_file(FORM_FILES[6].0, text);
    let _ = ecrf_core::Study::from_sources(("study/study.toml", text), &[]);
});
