//! The CSV form of a list or a lease: a header, then one row a slot.
//!
//! `stratum,seq,block,block_size,arm` — the same format for the statistician's full list and
//! for the whole blocks leased to a device. Reading checks every row and that every block is
//! whole and 1:1, so a cut or edited file is refused with the line that is wrong.

use std::collections::BTreeMap;

use crate::list::{Arm, RandomizeError, Slot, Stratum};

/// The header line.
pub const HEADER: &str = "stratum,seq,block,block_size,arm";

/// Writes slots as CSV (header + one line each, `\n` line ends).
pub fn to_csv(slots: &[Slot]) -> String {
    let mut out = String::with_capacity(32 * (slots.len() + 1));
    out.push_str(HEADER);
    out.push('\n');
    for s in slots {
        out.push_str(&format!(
            "{},{},{},{},{}\n",
            s.stratum,
            s.seq,
            s.block,
            s.block_size,
            s.arm.code()
        ));
    }
    out
}

fn err(line: usize, message: impl Into<String>) -> RandomizeError {
    RandomizeError::Csv {
        line,
        message: message.into(),
    }
}

/// Reads CSV written by [`to_csv`], checking that each block is whole and balanced 1:1 and
/// that no (stratum, seq) appears twice.
pub fn parse_csv(text: &str) -> Result<Vec<Slot>, RandomizeError> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim() == HEADER => {}
        _ => return Err(err(1, format!("the first line must be `{HEADER}`"))),
    }
    let mut slots = Vec::new();
    let mut rows = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, line) in lines {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.trim().split(',').collect();
        if f.len() != 5 {
            return Err(err(n, format!("expected 5 fields, found {}", f.len())));
        }
        Stratum::from_key(f[0]).map_err(|e| err(n, e.to_string()))?;
        let num = |s: &str, what: &str| -> Result<u32, RandomizeError> {
            s.parse::<u32>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| err(n, format!("{what} {s:?} is not a positive whole number")))
        };
        let slot = Slot {
            stratum: f[0].to_string(),
            seq: num(f[1], "seq")?,
            block: num(f[2], "block")?,
            block_size: num(f[3], "block_size")?,
            arm: Arm::from_code(f[4])
                .ok_or_else(|| err(n, format!("arm {:?} is not ECMO_IABP or ECMO", f[4])))?,
        };
        if !seen.insert((slot.stratum.clone(), slot.seq)) {
            return Err(err(
                n,
                format!("slot {} {} appears twice", slot.stratum, slot.seq),
            ));
        }
        slots.push(slot);
        rows.push(n);
    }
    if slots.is_empty() {
        return Err(RandomizeError::EmptyList);
    }
    // Per block: size, arms counted, and the line of its first row (named in a refusal).
    let mut blocks: BTreeMap<(String, u32), (u32, u32, u32, usize)> = BTreeMap::new();
    for (s, &line) in slots.iter().zip(&rows) {
        let e = blocks
            .entry((s.stratum.clone(), s.block))
            .or_insert((s.block_size, 0, 0, line));
        if e.0 != s.block_size {
            return Err(err(
                line,
                format!("block {} of {} has two different sizes", s.block, s.stratum),
            ));
        }
        if s.arm == Arm::EcmoIabp {
            e.1 += 1
        } else {
            e.2 += 1
        }
    }
    for ((stratum, block), (size, a, b, line)) in blocks {
        if a + b != size || a != b {
            return Err(err(
                line,
                format!(
                    "block {block} of {stratum} is not whole and 1:1 ({a} + {b} of {size}); lease whole blocks only"
                ),
            ));
        }
    }
    Ok(slots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::{ListSpec, generate};

    #[test]
    fn round_trip_and_clear_errors() {
        let spec = ListSpec {
            stratum: Stratum::site("03").unwrap(),
            count: 30,
            block_sizes: vec![4, 6, 8],
        };
        let list = generate(&spec, &[9; 32]).unwrap();
        let text = to_csv(&list);
        assert_eq!(parse_csv(&text).unwrap(), list);
        // Cutting the last row leaves a partial block.
        let cut: Vec<&str> = text.lines().collect();
        let cut = cut[..cut.len() - 1].join("\n");
        let e = parse_csv(&cut).unwrap_err().to_string();
        assert!(e.contains("not whole"), "{e}");
        let bad = text.replacen("ECMO_IABP", "IABP", 1);
        let e = parse_csv(&bad).unwrap_err();
        assert!(
            matches!(e, RandomizeError::Csv { line, .. } if line >= 2),
            "{e}"
        );
        assert!(parse_csv("a,b\n").is_err());
        assert!(parse_csv(HEADER).is_err());
    }
}
