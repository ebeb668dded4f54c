//! Who wrote a change, proved: each person's Ed25519 key signs every change they write, over
//! its hash; the public keys travel in the log (`user.add`, password resets and changes) and in
//! the server's user registry, so anyone can check a change offline.
//!
//! Invariants: the signature is not part of the hash (it signs the hash); the signed message is
//! [`SIGNED_PREFIX`] followed by the hash's hex text, so a signature over a change can never be
//! taken for one over anything else we sign (receipts, requests); a key is 32 bytes, shown as
//! 64 hex characters, a signature 64 bytes as 128. The server's own changes (`lock.held`, the
//! user registry's changes) are signed by the server's key under the author name
//! [`SERVER_AUTHOR`].

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use zeroize::Zeroizing;

use crate::body::Body;
use crate::change::Change;
use crate::kind::ChangeKind;

/// What every change signature signs, before the change's hash.
pub const SIGNED_PREFIX: &str = "ecrf-change-signature-v1|";

/// The author name of the changes the server writes itself.
pub const SERVER_AUTHOR: &str = "server";

/// Why a change's author signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorError {
    /// The change carries no signature.
    #[error("{0}: it carries no author signature")]
    Missing(String),
    /// The signature or a key is not well-formed.
    #[error("{0}: its author signature is malformed")]
    Malformed(String),
    /// No key is known for the author.
    #[error("{change}: no key is registered for its author {user}")]
    NoKey {
        /// The change, described.
        change: String,
        /// Its author.
        user: String,
    },
    /// The signature does not verify against any of the author's keys.
    #[error("{change}: its signature does not verify against any key registered for {user}")]
    Forged {
        /// The change, described.
        change: String,
        /// Its author.
        user: String,
    },
}

impl AuthorError {
    /// What is wrong, without naming the change (for messages that name it already).
    pub fn rule(&self) -> String {
        match self {
            AuthorError::Missing(_) => "it carries no author signature".into(),
            AuthorError::Malformed(_) => "its author signature is malformed".into(),
            AuthorError::NoKey { user, .. } => {
                format!("no key is registered for its author {user}")
            }
            AuthorError::Forged { user, .. } => {
                format!("its signature does not verify against any key registered for {user}")
            }
        }
    }
}

/// A person's (or the server's) signing key. Its secret half is wiped from memory when dropped
/// (ed25519-dalek zeroizes it).
#[derive(Clone)]
pub struct AuthorKey(SigningKey);

impl std::fmt::Debug for AuthorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthorKey({})", self.public_hex())
    }
}

impl AuthorKey {
    /// The key of a 32-byte secret seed (drawn by the caller from the system's randomness).
    pub fn from_seed(seed: &[u8; 32]) -> AuthorKey {
        AuthorKey(SigningKey::from_bytes(seed))
    }

    /// The 32-byte secret seed, to be wrapped (never written in the clear).
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public key as 64 hex characters.
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().to_bytes())
    }

    /// A signature (128 hex characters) over `message`, for other signed texts than changes
    /// (each with its own prefix).
    pub fn sign_bytes(&self, message: &[u8]) -> String {
        hex::encode(self.0.sign(message).to_bytes())
    }

    /// Signs a hashed change: sets its `signature`.
    pub fn sign(&self, c: &mut Change) {
        c.signature = Some(self.sign_bytes(&signed_message(&c.hash)));
    }
}

fn signed_message(hash: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNED_PREFIX.len() + hash.len());
    m.extend_from_slice(SIGNED_PREFIX.as_bytes());
    m.extend_from_slice(hash.as_bytes());
    m
}

/// True when `signature_hex` is a signature by `public_hex` over `message`.
pub fn verifies(public_hex: &str, message: &[u8], signature_hex: &str) -> bool {
    let Some(key) = parse_public(public_hex) else {
        return false;
    };
    let Ok(sig) = hex::decode(signature_hex) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(sig.as_slice()) else {
        return false;
    };
    key.verify(message, &Signature::from_bytes(&sig)).is_ok()
}

/// A public key from its 64 hex characters, `None` when it is not one.
fn parse_public(public_hex: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(public_hex).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// True when `public_hex` is a well-formed public key.
pub fn is_public_key(public_hex: &str) -> bool {
    parse_public(public_hex).is_some()
}

/// Checks `c`'s author signature against `keys`, the public keys registered for its author.
pub fn check(c: &Change, keys: &[String]) -> Result<(), AuthorError> {
    check_parsed(c, &AuthorKeys::parse(keys))
}

/// [`check_parsed`] for many changes at once, in order: `keys_of` gives each change's
/// author's keys (`None`: the author is not registered, which is the caller's rule, so `Ok`
/// here). Changes whose author holds one key are checked together ([`batch_holds`]); when the
/// batch fails, each of its changes is checked alone to name the forged one. An author with
/// several keys has each change checked alone.
pub fn check_many<'k>(
    changes: &[&Change],
    keys_of: impl Fn(&Change) -> Option<&'k AuthorKeys>,
) -> Vec<Result<(), AuthorError>> {
    let mut results: Vec<Result<(), AuthorError>> = Vec::with_capacity(changes.len());
    // (position, message, signature, key) of each change checked in the batch.
    let mut batch: Vec<(usize, Vec<u8>, Signature, VerifyingKey)> = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        let Some(keys) = keys_of(c) else {
            results.push(Ok(()));
            continue;
        };
        match (keys.keys.as_slice(), parsed_signature(c, keys)) {
            ([key], Ok(signature)) => {
                batch.push((i, signed_message(&c.hash), signature, *key));
                results.push(Ok(()));
            }
            (_, Ok(_)) => results.push(check_parsed(c, keys)),
            (_, Err(e)) => results.push(Err(e)),
        }
    }
    if batch.is_empty() {
        return results;
    }
    let signed: Vec<(&[u8], &Signature, &VerifyingKey)> = batch
        .iter()
        .map(|(_, m, s, k)| (m.as_slice(), s, k))
        .collect();
    if !batch_holds(&signed) {
        for (i, message, signature, key) in &batch {
            if key.verify(message, signature).is_err() {
                results[*i] = Err(AuthorError::Forged {
                    change: changes[*i].describe(),
                    user: changes[*i].user.clone(),
                });
            }
        }
    }
    results
}

/// Whether every `(message, signature, key)` verifies, checked as one Ed25519 batch: with a
/// random 128-bit `z` per signature, `-(sum z s) B + sum z R + sum z H(R, A, M) A = 0`, one
/// multi-scalar multiplication instead of one per signature. The terms of one key are summed
/// before it (`(sum z H) A`): a site's page is nearly all one or two nurses' changes, so the
/// multiplication has about half the points of `ed25519_dalek::verify_batch`'s (whose batch
/// took 9 ms for a page of 1,000 on two cores; `make bench-sync`'s push 2.1-2.2 s -> 1.8-1.9
/// s). A batch that fails says only that one of them does not verify, and the caller checks
/// them alone. Same equation as one by one (cofactorless, `s` and `R` canonical, keys without
/// a small-order part), with one gap: an `R` its signer gave a small-order part on purpose
/// fails one by one but passes a batch when the random `z` happen to cancel that part (odds of
/// about one half). Only the key's holder can make one (it is still their signature over the
/// hash), and `ecrf store check` on every laptop checks one by one and names it.
fn batch_holds(signed: &[(&[u8], &Signature, &VerifyingKey)]) -> bool {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
    use sha2::{Digest, Sha512};

    let mut random = vec![0u8; 16 * signed.len()];
    if getrandom::fill(&mut random).is_err() {
        return false;
    }
    let mut b_coefficient = Scalar::ZERO;
    let mut r_coefficients = Vec::with_capacity(signed.len());
    let mut r_points = Vec::with_capacity(signed.len());
    // Each key met, with the sum of z H(R, A, M) over its signatures.
    let mut keys: Vec<(&VerifyingKey, Scalar)> = Vec::new();
    for ((message, signature, key), z) in signed.iter().zip(random.chunks_exact(16)) {
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(*signature.s_bytes()))
        else {
            return false;
        };
        // One by one, `R` must be the canonical encoding of the point the equation gives: a
        // non-canonical `y`, or a small-order `R` (the only points a sign bit can encode twice),
        // never passes there, so it sends the page there.
        if !canonical_y(signature.r_bytes()) {
            return false;
        }
        let Some(r) = CompressedEdwardsY(*signature.r_bytes()).decompress() else {
            return false;
        };
        if r.is_small_order() {
            return false;
        }
        let mut z_bytes = [0u8; 32];
        z_bytes[..16].copy_from_slice(z);
        let z = Scalar::from_bytes_mod_order(z_bytes);
        let h: [u8; 64] = Sha512::new()
            .chain_update(signature.r_bytes())
            .chain_update(key.as_bytes())
            .chain_update(message)
            .finalize()
            .into();
        let zh = z * Scalar::from_bytes_mod_order_wide(&h);
        b_coefficient += z * s;
        r_coefficients.push(z);
        r_points.push(r);
        match keys
            .iter_mut()
            .find(|(k, _)| k.as_bytes() == key.as_bytes())
        {
            Some((_, sum)) => *sum += zh,
            // A key with a small-order part could let terms cancel that one by one do not.
            None if !key.to_edwards().is_torsion_free() => return false,
            None => keys.push((key, zh)),
        }
    }
    let sum = EdwardsPoint::vartime_multiscalar_mul(
        std::iter::once(-b_coefficient)
            .chain(r_coefficients)
            .chain(keys.iter().map(|(_, c)| *c)),
        std::iter::once(ED25519_BASEPOINT_POINT)
            .chain(r_points)
            .chain(keys.iter().map(|(k, _)| k.to_edwards())),
    );
    sum.is_identity()
}

/// Whether a point's 32 bytes hold its `y` below the field's prime 2^255 - 19 (the top bit
/// is the sign of `x`).
fn canonical_y(bytes: &[u8; 32]) -> bool {
    let at_least_prime =
        bytes[31] & 0x7f == 0x7f && bytes[1..31].iter().all(|b| *b == 0xff) && bytes[0] >= 0xed;
    !at_least_prime
}

/// `c`'s signature, decoded, or why it cannot be checked against `keys` at all.
fn parsed_signature(c: &Change, keys: &AuthorKeys) -> Result<Signature, AuthorError> {
    let Some(sig) = c.signature.as_deref() else {
        return Err(AuthorError::Missing(c.describe()));
    };
    if sig.len() != 128 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthorError::Malformed(c.describe()));
    }
    if !keys.registered {
        return Err(AuthorError::NoKey {
            change: c.describe(),
            user: c.user.clone(),
        });
    }
    let mut bytes = [0u8; 64];
    if hex::decode_to_slice(sig, &mut bytes).is_err() {
        return Err(AuthorError::Malformed(c.describe()));
    }
    Ok(Signature::from_bytes(&bytes))
}

/// An author's registered public keys, parsed once: checking many changes of one author
/// ([`check_parsed`]) then skips decoding each key (a point decompression) per change.
#[derive(Debug, Clone, Default)]
pub struct AuthorKeys {
    /// The keys that parse (a malformed one verifies nothing).
    keys: Vec<VerifyingKey>,
    /// Whether any key is registered at all (none: [`AuthorError::NoKey`]).
    registered: bool,
}

impl AuthorKeys {
    /// `keys` as 64 hex characters each.
    pub fn parse(keys: &[String]) -> AuthorKeys {
        AuthorKeys {
            keys: keys.iter().filter_map(|k| parse_public(k)).collect(),
            registered: !keys.is_empty(),
        }
    }
}

/// [`check`] with the author's keys parsed already.
pub fn check_parsed(c: &Change, keys: &AuthorKeys) -> Result<(), AuthorError> {
    let signature = parsed_signature(c, keys)?;
    let message = signed_message(&c.hash);
    if keys
        .keys
        .iter()
        .any(|k| k.verify(&message, &signature).is_ok())
    {
        Ok(())
    } else {
        Err(AuthorError::Forged {
            change: c.describe(),
            user: c.user.clone(),
        })
    }
}

/// The public key a change registers for the user it names (its item), if any: `user.add`,
/// `user.password_reset` and `user.password_change` bodies carry the key made with the slot.
pub fn registered_key(c: &Change) -> Option<String> {
    match c.kind {
        ChangeKind::UserAdded | ChangeKind::PasswordReset | ChangeKind::PasswordChanged => {}
        _ => return None,
    }
    match c.body().ok()? {
        Body::UserAdded(b) => b.public_key,
        Body::PasswordReset(k) | Body::PasswordChanged(k) => k.public_key,
        _ => None,
    }
}

/// The public keys known from a log, by user: what `ecrf audit verify` checks signatures
/// against offline. Learnt in log order from the changes that register keys
/// ([`registered_key`]), plus the server's key pinned at enrolment.
#[derive(Debug, Clone, Default)]
pub struct KeyList {
    by_user: BTreeMap<String, BTreeSet<String>>,
}

impl KeyList {
    /// Adds a key for a user.
    pub fn add(&mut self, user: &str, public_hex: &str) {
        self.by_user
            .entry(user.to_string())
            .or_default()
            .insert(public_hex.to_string());
    }

    /// Learns the key `c` registers, if any.
    pub fn learn(&mut self, c: &Change) {
        if let (Some(user), Some(key)) = (c.item.as_deref(), registered_key(c)) {
            self.add(user, &key);
        }
    }

    /// The keys of `user`.
    pub fn keys_of(&self, user: &str) -> Vec<String> {
        self.by_user
            .get(user)
            .map(|k| k.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every user with their keys, for exports (`user,public_key` lines).
    pub fn all(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_user
            .iter()
            .flat_map(|(u, ks)| ks.iter().map(move |k| (u.as_str(), k.as_str())))
    }

    /// Checks `c` against its author's keys.
    pub fn check(&self, c: &Change) -> Result<(), AuthorError> {
        check(c, &self.keys_of(&c.user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{KeyBody, UserAdded};
    use crate::change::tests::change;
    use ecrf_core::Role;

    #[test]
    fn a_signed_change_verifies_only_with_its_authors_key_and_unaltered() {
        let alice = AuthorKey::from_seed(&[7; 32]);
        let mallory = AuthorKey::from_seed(&[9; 32]);
        let mut c = change(ChangeKind::ItemSet, None, Some("{\"int\":72}"));
        assert!(matches!(
            check(&c, &[alice.public_hex()]),
            Err(AuthorError::Missing(_))
        ));
        alice.sign(&mut c);
        check(&c, &[alice.public_hex()]).unwrap();
        check(&c, &[mallory.public_hex(), alice.public_hex()]).unwrap();
        assert!(matches!(
            check(&c, &[mallory.public_hex()]),
            Err(AuthorError::Forged { .. })
        ));
        assert!(matches!(check(&c, &[]), Err(AuthorError::NoKey { .. })));
        // The signature is not hashed, but it signs the hash: any edit breaks it.
        assert!(c.hash_holds());
        let mut edited = c.clone();
        edited.new_value = Some("{\"int\":73}".into());
        edited.hash = edited.compute_hash();
        assert!(matches!(
            check(&edited, &[alice.public_hex()]),
            Err(AuthorError::Forged { .. })
        ));
        let mut garbled = c.clone();
        garbled.signature = Some("zz".into());
        assert!(matches!(
            check(&garbled, &[alice.public_hex()]),
            Err(AuthorError::Malformed(_))
        ));
    }

    #[test]
    fn a_batch_check_names_each_forged_change_and_only_those() {
        let ann = AuthorKey::from_seed(&[11; 32]);
        let bob = AuthorKey::from_seed(&[12; 32]);
        let old = AuthorKey::from_seed(&[13; 32]);
        let keys: BTreeMap<&str, AuthorKeys> = [
            ("ann", AuthorKeys::parse(&[ann.public_hex()])),
            // Two keys (a password reset): checked alone, by either key.
            (
                "bob",
                AuthorKeys::parse(&[old.public_hex(), bob.public_hex()]),
            ),
        ]
        .into_iter()
        .collect();
        let make = |user: &str, value: i64, key: &AuthorKey| {
            let mut c = change(
                ChangeKind::ItemSet,
                None,
                Some(&format!("{{\"int\":{value}}}")),
            );
            c.user = user.into();
            key.sign(&mut c);
            c
        };
        let mut page: Vec<Change> = (0..40)
            .map(|i| match i % 3 {
                0 => make("bob", i, &bob),
                _ => make("ann", i, &ann),
            })
            .collect();
        let keys_of = |c: &Change| keys.get(c.user.as_str());
        let all: Vec<&Change> = page.iter().collect();
        assert!(check_many(&all, keys_of).iter().all(Result::is_ok));
        // Ann's change 4 signed by Bob, ann's change 7 with its signature cut, a stranger's.
        page[4] = make("ann", 4, &bob);
        page[7].signature = None;
        page[9] = make("carl", 9, &bob);
        page[12] = make("bob", 12, &ann);
        // Ann's (one key: checked in the batch) with R replaced by the identity point,
        // canonically and not (y = p + 1): one by one refuses them.
        for (i, r) in [
            (16, "01".to_string() + &"00".repeat(31)),
            (17, "ee".to_string() + &"ff".repeat(30) + "7f"),
        ] {
            let sig = page[i].signature.clone().unwrap();
            page[i].signature = Some(r + &sig[64..]);
        }
        let all: Vec<&Change> = page.iter().collect();
        let results = check_many(&all, keys_of);
        for (i, r) in results.iter().enumerate() {
            match i {
                4 | 12 | 16 | 17 => {
                    assert!(matches!(r, Err(AuthorError::Forged { .. })), "{i}: {r:?}")
                }
                7 => assert!(matches!(r, Err(AuthorError::Missing(_))), "{i}: {r:?}"),
                // Carl is not registered: the caller's rule, not this check's.
                _ => assert!(r.is_ok(), "{i}: {r:?}"),
            }
        }
        // The batch agrees with checking each alone.
        for (c, r) in all.iter().zip(&results) {
            if let Some(k) = keys_of(c) {
                assert_eq!(check_parsed(c, k).is_ok(), r.is_ok());
            }
        }
    }

    #[test]
    fn the_batch_holds_only_when_every_signature_holds() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        use curve25519_dalek::edwards::CompressedEdwardsY;
        let ann = AuthorKey::from_seed(&[21; 32]);
        let bob = AuthorKey::from_seed(&[22; 32]);
        let key = |k: &AuthorKey| parse_public(&k.public_hex()).unwrap();
        let signed = |k: &AuthorKey, value: i64| {
            let mut c = change(
                ChangeKind::ItemSet,
                None,
                Some(&format!("{{\"int\":{value}}}")),
            );
            k.sign(&mut c);
            let signature = parsed_signature(&c, &AuthorKeys::parse(&[k.public_hex()])).unwrap();
            (signed_message(&c.hash), signature, key(k))
        };
        let page: Vec<(Vec<u8>, Signature, VerifyingKey)> = (0..12)
            .map(|i| signed(if i % 3 == 0 { &bob } else { &ann }, i))
            .collect();
        let holds = |page: &[(Vec<u8>, Signature, VerifyingKey)]| {
            let refs: Vec<(&[u8], &Signature, &VerifyingKey)> =
                page.iter().map(|(m, s, k)| (m.as_slice(), s, k)).collect();
            batch_holds(&refs)
        };
        assert!(holds(&page));
        // A signature checked against another key than its signer's.
        let mut wrong = page.clone();
        wrong[4].2 = key(&bob);
        assert!(!holds(&wrong));
        // The identity as R (small order).
        let mut identity = page.clone();
        let mut bytes = identity[5].1.to_bytes();
        bytes[..32].copy_from_slice(&[0; 32]);
        bytes[0] = 1;
        identity[5].1 = Signature::from_bytes(&bytes);
        assert!(!holds(&identity));
        // A key with a small-order part.
        let mut torsion_key = page.clone();
        let bent = (torsion_key[7].2.to_edwards() + EIGHT_TORSION[1]).compress();
        torsion_key[7].2 = VerifyingKey::from_bytes(bent.as_bytes()).unwrap();
        assert!(!holds(&torsion_key));
        // R given an order-2 part by someone without the key: the hash over R changes too, so
        // no z cancels it (only the key's holder could sign over such an R: the gap above).
        let mut bent_r = page.clone();
        let r = CompressedEdwardsY(*bent_r[2].1.r_bytes())
            .decompress()
            .unwrap();
        let mut bytes = bent_r[2].1.to_bytes();
        bytes[..32].copy_from_slice((r + EIGHT_TORSION[4]).compress().as_bytes());
        bent_r[2].1 = Signature::from_bytes(&bytes);
        assert!(bent_r[2].2.verify(&bent_r[2].0, &bent_r[2].1).is_err());
        assert!((0..16).all(|_| !holds(&bent_r)));
    }

    #[test]
    fn a_points_y_is_canonical_below_the_prime() {
        let mut y = [0u8; 32];
        assert!(canonical_y(&y));
        // p - 1 = 2^255 - 20, with and without the sign bit: canonical.
        y = [0xff; 32];
        y[0] = 0xec;
        y[31] = 0x7f;
        assert!(canonical_y(&y));
        y[31] = 0xff;
        assert!(canonical_y(&y));
        // p itself and above: not.
        for low in [0xed, 0xee, 0xff] {
            y[0] = low;
            assert!(!canonical_y(&y), "{low:#x}");
        }
    }

    #[test]
    fn the_key_list_learns_keys_from_user_changes() {
        let alice = AuthorKey::from_seed(&[1; 32]);
        let reset = AuthorKey::from_seed(&[2; 32]);
        let mut add = change(
            ChangeKind::UserAdded,
            None,
            Body::UserAdded(UserAdded {
                name: "Alice".into(),
                role: Role::Nurse,
                public_key: Some(alice.public_hex()),
            })
            .new_value()
            .as_deref(),
        );
        add.item = Some("alice".into());
        let mut again = change(
            ChangeKind::PasswordReset,
            None,
            Body::PasswordReset(KeyBody {
                public_key: Some(reset.public_hex()),
            })
            .new_value()
            .as_deref(),
        );
        again.item = Some("alice".into());
        let mut keys = KeyList::default();
        keys.learn(&add);
        keys.learn(&again);
        let mut c = change(ChangeKind::ItemSet, None, Some("{\"int\":1}"));
        c.user = "alice".into();
        reset.sign(&mut c);
        keys.check(&c).unwrap();
        alice.sign(&mut c);
        keys.check(&c).unwrap();
        assert_eq!(keys.keys_of("alice").len(), 2);
        c.user = "bob".into();
        assert!(matches!(keys.check(&c), Err(AuthorError::NoKey { .. })));
    }
}
