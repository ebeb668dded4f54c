//! FHIR R4 bundles as `ecrf lab import` reads them: any text, no panic; every result names
//! its entry.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(report) = ecrf_lab::fhir::read(text) {
        for r in &report.results {
            assert!(r.place.starts_with("entry "));
        }
    }
});
