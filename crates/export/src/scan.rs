//! Whether a text holds one of the few bytes that make a CSV field need quotes or an XML value
//! need escapes, tested eight bytes at a time.
//!
//! Why: the audit trail writes half a million changes of a dozen fields each (hashes and
//! signatures of 64 and 128 characters), and a byte-by-byte test of each field was a quarter of
//! the CSV writer's time. Each word of eight bytes is first tested for a byte below a bound that
//! every byte sought is under (hex digits, ids, times and codes rarely are); only a word that
//! has one is tested byte by byte. Exact: no byte sought is ever missed.

/// `0x01` in every byte.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte.
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// True when some byte of the word `x` is below `n` (`n` at most 128; the classic test, exact
/// for whether there is one).
fn has_below(x: u64, n: u8) -> bool {
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS != 0
}

/// True when `hit(b)` holds for some byte `b` of `s`; every byte `hit` holds for is below
/// `bound` (at most 128) or is one of the `also` bytes.
fn any<const N: usize>(s: &[u8], bound: u8, also: [u8; N], hit: impl Fn(u8) -> bool) -> bool {
    let mut words = s.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let x = u64::from_le_bytes(bytes);
        let maybe = has_below(x, bound)
            || also
                .iter()
                .any(|&a| has_below(x ^ (ONES * u64::from(a)), 1));
        if maybe && word.iter().any(|&b| hit(b)) {
            return true;
        }
    }
    words.remainder().iter().any(|&b| hit(b))
}

/// True when `s` holds a comma, a double quote or a line break (`\n`, `\r`): a CSV field that
/// needs quotes (edge spaces are the caller's test).
pub fn csv_special(s: &str) -> bool {
    // All four are below `-` (0x2d).
    any(s.as_bytes(), 0x2d, [], |b| {
        matches!(b, b',' | b'"' | b'\n' | b'\r')
    })
}

/// True when `s` holds a byte XML writes escaped: a control character, `&`, `<`, `>`, `"` or
/// `'`.
pub fn xml_special(s: &str) -> bool {
    // Control characters, `"`, `&` and `'` are below `(` (0x28); `<` and `>` are tested apart.
    any(s.as_bytes(), 0x28, [b'<', b'>'], |b| {
        b < 0x20 || matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_special_byte_at_every_place_and_nothing_else() {
        let plain = "0123456789abcdefABCDEF-:.T+Z_xyz/ 中文";
        assert!(!csv_special(plain));
        // A space is below `(`, so it is looked at, and it is not special.
        assert!(!xml_special(plain));
        for len in 0..24 {
            let base: String = "a".repeat(len);
            assert!(!csv_special(&base) && !xml_special(&base));
            for at in 0..=len {
                for b in 0u8..128 {
                    let mut s = base.clone();
                    s.insert(at, char::from(b));
                    let csv = matches!(b, b',' | b'"' | b'\n' | b'\r');
                    let xml = b < 0x20 || matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'');
                    assert_eq!(csv_special(&s), csv, "{s:?}");
                    assert_eq!(xml_special(&s), xml, "{s:?}");
                }
            }
        }
    }
}
