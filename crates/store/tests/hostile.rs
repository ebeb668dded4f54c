//! Hostile files the store reads before any password is checked: backup headers and key-slot
//! files. Random and edited bytes must give a clear error, never a panic.

use std::path::Path;

use ecrf_store::Keyring;
use ecrf_store::backup::{MAGIC, read_header};
use proptest::prelude::*;

const HEADER: &str = r#"{"store_id":"s","site":"01","taken_utc":"2026-01-01T00:00:00Z","head_seq":4,"head_hash":"ab","db_bytes":10,"db_sha256":"89f0e6086f76ff49d732372d272f813f4e196bc96784cbdb1b43ba4d7f4ceda3","keys":"{}"}"#;

fn valid() -> Vec<u8> {
    format!("{MAGIC}\n{HEADER}\n0123456789").into_bytes()
}

fn judge_backup(bytes: &[u8]) {
    match read_header(Path::new("b.ecrfbak"), &mut &bytes[..]) {
        Ok((h, offset)) => assert!(offset as usize <= bytes.len() && h.db_sha256.len() == 64),
        Err(e) => assert!(e.to_string().contains("b.ecrfbak"), "{e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_are_not_a_backup(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        judge_backup(&bytes);
    }

    #[test]
    fn edited_backup_headers_never_panic(at in 0usize..300, with in proptest::collection::vec(any::<u8>(), 1..6)) {
        let mut b = valid();
        let at = at % b.len();
        b.splice(at..(at + 1).min(b.len()), with);
        judge_backup(&b);
    }

    #[test]
    fn cut_backup_headers_never_panic(at in 0usize..300) {
        let b = valid();
        judge_backup(&b[..at.min(b.len())]);
    }

    #[test]
    fn random_key_files_are_refused_cleanly(text in ".{0,200}") {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("w.ecrf");
        std::fs::write(dir.path().join("w.ecrf.keys"), text).unwrap();
        if let Ok(ring) = Keyring::load(&store) {
            let _ = ring.unlock("nurse", "password-1");
        }
    }
}

#[test]
fn an_endless_header_line_is_refused_without_reading_it_all() {
    let mut b = format!("{MAGIC}\n").into_bytes();
    b.extend(std::iter::repeat_n(b'{', 3 << 20));
    let e = read_header(Path::new("b.ecrfbak"), &mut &b[..]).unwrap_err();
    assert!(e.to_string().contains("cut off or too long"), "{e}");
}
