//! `ecrf-randomize`: allocation lists for the trial, pure (no I/O, no clock, no global RNG).
//!
//! Owns: the 1:1 arms, strata (site, with room for one more factor), permuted blocks of random
//! size drawn from a seeded ChaCha20 generator (reproducible from the 32-byte seed, unguessable
//! without it), the CSV form of lists and leases with line-numbered errors, the per-stratum
//! balance report and the "guess the arm that is behind" predictability figure.
//!
//! Invariant: a stratum's list depends only on the seed, the stratum key and the block sizes;
//! each stratum draws from its own generator seeded with SHA-256(seed ‖ stratum key), so adding
//! a site never changes another site's list.
#![deny(missing_docs)]

pub mod csv;
pub mod list;
pub mod seal;
pub mod stats;

pub use csv::{parse_csv, to_csv};
pub use list::{Arm, ListSpec, RandomizeError, Slot, Stratum, generate, parse_seed};
pub use seal::{SealError, SealedEnvelope, SealedLease};
pub use stats::{Balance, GuessStats, balance, guess_stats};
