//! Backup files as `ecrf restore` first reads them: any bytes, no panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = ecrf_store::backup::read_header(std::path::Path::new("fuzz.ecrfbak"), &mut &bytes[..]);
});
