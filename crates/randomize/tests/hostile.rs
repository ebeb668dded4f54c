//! Hostile input to the allocation-list and lease parser (`parse_csv`): random text, valid
//! lists cut, edited, shuffled and blown up. It must never panic; a refusal names the line; what
//! it accepts is whole 1:1 blocks that write back to the same list.

use ecrf_randomize::{ListSpec, RandomizeError, Stratum, generate, parse_csv, to_csv};
use proptest::prelude::*;

fn valid_list() -> String {
    let spec = ListSpec {
        stratum: Stratum::site("07").unwrap(),
        count: 40,
        block_sizes: vec![4, 6, 8],
    };
    to_csv(&generate(&spec, &[7; 32]).unwrap())
}

/// Cuts a string at a byte position, rounded down to a character boundary.
fn cut(s: &str, at: usize) -> &str {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    &s[..at]
}

fn judge(text: &str) {
    match parse_csv(text) {
        Ok(slots) => {
            // Accepted means re-writable to an equivalent list, block by block.
            assert_eq!(parse_csv(&to_csv(&slots)).unwrap(), slots);
        }
        // A file with no rows says so; any other refusal names the line.
        Err(RandomizeError::EmptyList) => {}
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("line"),
                "refusal does not name the line: {msg}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_text_is_refused_cleanly(text in ".{0,400}") {
        judge(&text);
    }

    #[test]
    fn random_bytes_as_lossy_text_are_refused_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        judge(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn cut_lists_are_refused_or_whole(at in 0usize..2000) {
        let list = valid_list();
        judge(cut(&list, at));
    }

    #[test]
    fn edited_lists_never_panic(pos in 0usize..2000, with in "[-0-9A-Z_,#\u{0}\u{FEFF}é漢 ]{1,5}") {
        let list = valid_list();
        let head = cut(&list, pos);
        let tail = &list[head.len()..];
        let mut chars = tail.chars();
        chars.next();
        judge(&format!("{head}{with}{}", chars.as_str()));
    }

    #[test]
    fn shuffled_and_duplicated_rows_never_panic(swap in 1usize..40, dup in 1usize..40) {
        let list = valid_list();
        let mut lines: Vec<&str> = list.lines().collect();
        let n = lines.len();
        lines.swap(swap % n, (swap * 7) % n);
        let d = lines[dup % n];
        lines.insert(dup % n, d);
        judge(&lines.join("\n"));
    }
}

#[test]
fn huge_numbers_and_fields_are_refused_with_the_line() {
    let header = ecrf_randomize::csv::HEADER;
    for row in [
        "07,99999999999999999999,1,4,ECMO".to_string(),
        format!("07,1,1,4,{}", "X".repeat(1 << 20)),
        format!("{},1,1,4,ECMO", "7".repeat(1 << 16)),
        "07,1,1,4294967295,ECMO".to_string(),
        "07,1,1,4,ECMO,".to_string(),
    ] {
        let e = parse_csv(&format!("{header}\n{row}\n")).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
