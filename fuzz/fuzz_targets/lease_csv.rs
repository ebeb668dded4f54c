//! Allocation lists and leases (`ecrf randomization load-lease`): any text, no panic; what is
//! accepted writes back to the same list.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(slots) = ecrf_randomize::parse_csv(text) {
        let again = ecrf_randomize::parse_csv(&ecrf_randomize::to_csv(&slots));
        assert_eq!(again.ok(), Some(slots));
    }
});
