//! Generation of one stratum's list: permuted blocks of random size from a seeded ChaCha20.

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// Everything that can go wrong building, reading or checking a list.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RandomizeError {
    /// Block sizes must be even (1:1) and at least 2, and there must be at least one.
    #[error("block sizes {0:?}: give one or more even sizes of at least 2, e.g. 4,6,8")]
    BlockSizes(Vec<usize>),
    /// A list needs at least one slot.
    #[error("the list needs at least one slot")]
    EmptyList,
    /// The seed is neither 32 raw bytes nor 64 hex digits.
    #[error("the seed must be 32 bytes or 64 hex digits (got {0} bytes)")]
    Seed(usize),
    /// A stratum key is unusable.
    #[error("stratum {0:?}: use 1 to 20 letters, digits or '-'")]
    Stratum(String),
    /// A CSV line could not be read.
    #[error("line {line}: {message}")]
    Csv {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// The two arms, allocated 1:1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arm {
    /// ECMO plus IABP within 6 hours of ECMO start.
    EcmoIabp,
    /// ECMO alone: no mechanical unloading within 6 hours.
    Ecmo,
}

impl Arm {
    /// The code of the study's `arms` code list.
    pub fn code(self) -> &'static str {
        match self {
            Arm::EcmoIabp => "ECMO_IABP",
            Arm::Ecmo => "ECMO",
        }
    }

    /// Reads a code of the `arms` code list.
    pub fn from_code(code: &str) -> Option<Arm> {
        match code {
            "ECMO_IABP" => Some(Arm::EcmoIabp),
            "ECMO" => Some(Arm::Ecmo),
            _ => None,
        }
    }

    /// The other arm.
    pub fn other(self) -> Arm {
        match self {
            Arm::EcmoIabp => Arm::Ecmo,
            Arm::Ecmo => Arm::EcmoIabp,
        }
    }
}

/// A stratum: the site, and room for one more stratification factor (e.g. `STEMI`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stratum {
    /// Site code, e.g. `01`.
    pub site: String,
    /// A second factor's level, if the trial ever stratifies by one.
    pub extra: Option<String>,
}

fn check_key(k: &str) -> Result<(), RandomizeError> {
    let ok =
        (1..=20).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(RandomizeError::Stratum(k.to_string()))
    }
}

impl Stratum {
    /// A site-only stratum.
    pub fn site(site: &str) -> Result<Stratum, RandomizeError> {
        check_key(site)?;
        Ok(Stratum {
            site: site.to_string(),
            extra: None,
        })
    }

    /// The stratum's key: `01`, or `01/STEMI` with a second factor.
    pub fn key(&self) -> String {
        match &self.extra {
            Some(e) => format!("{}/{e}", self.site),
            None => self.site.clone(),
        }
    }

    /// Reads a key made by [`Stratum::key`].
    pub fn from_key(key: &str) -> Result<Stratum, RandomizeError> {
        let (site, extra) = match key.split_once('/') {
            Some((s, e)) => (s, Some(e)),
            None => (key, None),
        };
        check_key(site)?;
        if let Some(e) = extra {
            check_key(e)?;
        }
        Ok(Stratum {
            site: site.to_string(),
            extra: extra.map(str::to_string),
        })
    }
}

/// What to generate for one stratum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSpec {
    /// The stratum.
    pub stratum: Stratum,
    /// At least this many slots; the list ends with a whole block, so it may be a little longer.
    pub count: usize,
    /// Block sizes, each drawn with equal probability (default 4, 6, 8).
    pub block_sizes: Vec<usize>,
}

/// Default block sizes.
pub const DEFAULT_BLOCK_SIZES: [usize; 3] = [4, 6, 8];

/// One slot (a sealed envelope once leased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Stratum key.
    pub stratum: String,
    /// Position in the stratum's list, from 1.
    pub seq: u32,
    /// Block number, from 1.
    pub block: u32,
    /// Size of this slot's block.
    pub block_size: u32,
    /// The arm.
    pub arm: Arm,
}

impl Slot {
    /// The envelope id: stratum key and position, `01-E0007` (`01/STEMI-E0007`).
    pub fn envelope(&self) -> String {
        format!("{}-E{:04}", self.stratum, self.seq)
    }
}

/// Reads a seed file: 32 raw bytes, or 64 hex digits (surrounding white space allowed).
pub fn parse_seed(bytes: &[u8]) -> Result<[u8; 32], RandomizeError> {
    let text = std::str::from_utf8(bytes).ok().map(str::trim);
    if let Some(t) = text.filter(|t| t.len() == 64) {
        let mut out = [0u8; 32];
        if hex::decode_to_slice(t, &mut out).is_ok() {
            return Ok(out);
        }
    }
    <[u8; 32]>::try_from(bytes).map_err(|_| RandomizeError::Seed(bytes.len()))
}

/// A uniform integer in `0..n` (n ≥ 1) without modulo bias (rejection sampling).
fn below(rng: &mut ChaCha20Rng, n: u32) -> u32 {
    let zone = u32::MAX - (u32::MAX % n);
    loop {
        let x = rng.next_u32();
        if x < zone {
            return x % n;
        }
    }
}

fn stratum_rng(seed: &[u8; 32], stratum: &Stratum) -> ChaCha20Rng {
    let mut h = Sha256::new();
    h.update(b"ecrf-randomize v1\0");
    h.update(seed);
    h.update(stratum.key().as_bytes());
    ChaCha20Rng::from_seed(h.finalize().into())
}

/// Generates one stratum's list from the seed: blocks of a size drawn uniformly from
/// `block_sizes`, each holding half of each arm in a uniformly random order (Fisher–Yates).
pub fn generate(spec: &ListSpec, seed: &[u8; 32]) -> Result<Vec<Slot>, RandomizeError> {
    let sizes = &spec.block_sizes;
    if sizes.is_empty() || sizes.iter().any(|&s| s < 2 || s % 2 != 0 || s > 1000) {
        return Err(RandomizeError::BlockSizes(sizes.clone()));
    }
    if spec.count == 0 {
        return Err(RandomizeError::EmptyList);
    }
    let key = spec.stratum.key();
    let mut rng = stratum_rng(seed, &spec.stratum);
    let mut out = Vec::with_capacity(spec.count + 8);
    let mut block = 0u32;
    while out.len() < spec.count {
        block += 1;
        let size = sizes[below(&mut rng, sizes.len() as u32) as usize];
        let mut arms: Vec<Arm> = (0..size)
            .map(|i| {
                if i < size / 2 {
                    Arm::EcmoIabp
                } else {
                    Arm::Ecmo
                }
            })
            .collect();
        for i in (1..size).rev() {
            let j = below(&mut rng, i as u32 + 1) as usize;
            arms.swap(i, j);
        }
        for arm in arms {
            out.push(Slot {
                stratum: key.clone(),
                seq: out.len() as u32 + 1,
                block,
                block_size: size as u32,
                arm,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(count: usize) -> ListSpec {
        ListSpec {
            stratum: Stratum::site("01").unwrap(),
            count,
            block_sizes: DEFAULT_BLOCK_SIZES.to_vec(),
        }
    }

    #[test]
    fn same_seed_same_list_different_seed_different_list() {
        let a = generate(&spec(200), &[7; 32]).unwrap();
        let b = generate(&spec(200), &[7; 32]).unwrap();
        let c = generate(&spec(200), &[8; 32]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn strata_get_different_lists_and_whole_blocks() {
        let mut s2 = spec(50);
        s2.stratum = Stratum::site("02").unwrap();
        let a = generate(&spec(50), &[1; 32]).unwrap();
        let b = generate(&s2, &[1; 32]).unwrap();
        let arms = |l: &[Slot]| l.iter().map(|s| s.arm).collect::<Vec<_>>();
        assert_ne!(arms(&a), arms(&b));
        assert!(a.len() >= 50);
        let last = a.last().unwrap();
        assert_eq!(
            a.iter().filter(|s| s.block == last.block).count() as u32,
            last.block_size
        );
    }

    #[test]
    fn bad_inputs_are_refused() {
        let mut s = spec(10);
        s.block_sizes = vec![3];
        assert_eq!(
            generate(&s, &[0; 32]),
            Err(RandomizeError::BlockSizes(vec![3]))
        );
        assert_eq!(generate(&spec(0), &[0; 32]), Err(RandomizeError::EmptyList));
        assert!(Stratum::site("0 1").is_err());
        assert_eq!(parse_seed(&[1; 31]), Err(RandomizeError::Seed(31)));
        assert_eq!(parse_seed(&[5; 32]), Ok([5; 32]));
        let hex = format!("{}\n", "ab".repeat(32));
        assert_eq!(parse_seed(hex.as_bytes()), Ok([0xab; 32]));
    }

    #[test]
    fn stratum_keys_round_trip() {
        let s = Stratum {
            site: "01".into(),
            extra: Some("STEMI".into()),
        };
        assert_eq!(Stratum::from_key(&s.key()), Ok(s));
    }
}
