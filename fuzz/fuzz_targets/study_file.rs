//! Study definition files: any text as the daily-log form file, no panic.
#![no_main]
use ecrf_core::trial::{FORM_FILES, STUDY_FILE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let mut forms: Vec<(&str, &str)> = FORM_FILES.to_vec();
    forms[6].1 = text;
    let _ = ecrf_core::Study::from_sources(STUDY_FILE, &forms);
    let _ = ecrf_core::Study::from_sources(("study/study.toml", text), FORM_FILES);
});
