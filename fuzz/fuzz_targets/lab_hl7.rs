//! HL7 v2 ORU^R01 files as `ecrf lab import` reads them: any text, no panic; every result
//! names its message and OBX.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(report) = ecrf_lab::hl7::read(text) {
        for r in &report.results {
            assert!(r.place.starts_with("message ") && r.place.contains(", OBX "));
        }
    }
});
