//! `ecrf-identity`: a person's credentials away from a laptop.
//!
//! - [`verifier`] / [`verify`]: an Argon2id verifier of a password, which the server keeps and
//!   checks at a user's first login on a laptop (it never sees the password again after it is
//!   set, and never stores it);
//! - [`escrow`] / [`open_escrow`]: the user's Ed25519 signing key wrapped (ChaCha20-Poly1305)
//!   by a key derived from the same password with its own salt, so the server can hand it to a
//!   laptop where the person logs in but cannot read it itself.
//!
//! Invariants: each text is JSON naming its version and Argon2id cost, so a stronger cost
//! later still reads older ones; the verifier and the escrow use different salts, so the one
//! reveals nothing of the other's key; the escrow's associated data binds it to the public key
//! it carries, so a key swapped into someone else's escrow does not open.
#![deny(missing_docs)]

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use ecrf_log::AuthorKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Why credentials could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The text is not a verifier or an escrow of this format.
    #[error("damaged credentials: {0}")]
    Damaged(String),
    /// The password does not open the escrow.
    #[error("the password does not open the escrowed signing key")]
    WrongPassword,
    /// No randomness or a bad cost.
    #[error("{0}")]
    Crypto(String),
}

/// Argon2id cost: memory (KiB), passes, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

/// The cost of everything written now: 64 MiB, 3 passes (as the laptop's key slots).
pub const COST: Cost = Cost {
    m_kib: 64 * 1024,
    t: 3,
    p: 1,
};

fn derive(password: &str, salt: &[u8], cost: Cost) -> Result<Zeroizing<[u8; 32]>, IdentityError> {
    let params = Params::new(cost.m_kib, cost.t, cost.p, Some(32))
        .map_err(|e| IdentityError::Crypto(format!("bad Argon2id cost: {e}")))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), salt, &mut *out)
        .map_err(|e| IdentityError::Crypto(format!("key derivation failed: {e}")))?;
    Ok(out)
}

fn random<const N: usize>() -> Result<[u8; N], IdentityError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| IdentityError::Crypto(format!("no randomness: {e}")))?;
    Ok(b)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifierText {
    v: u32,
    cost: Cost,
    salt: String,
    hash: String,
}

/// A verifier of `password` to keep on the server.
pub fn verifier(password: &str) -> Result<String, IdentityError> {
    let salt: [u8; 16] = random()?;
    let hash = derive(password, &salt, COST)?;
    serde_json::to_string(&VerifierText {
        v: 1,
        cost: COST,
        salt: hex::encode(salt),
        hash: hex::encode(*hash),
    })
    .map_err(|e| IdentityError::Damaged(e.to_string()))
}

/// True when `password` is the one `verifier` was made from. Compares in constant time.
pub fn verify(verifier: &str, password: &str) -> Result<bool, IdentityError> {
    let v: VerifierText =
        serde_json::from_str(verifier).map_err(|e| IdentityError::Damaged(e.to_string()))?;
    let salt = hex::decode(&v.salt).map_err(|e| IdentityError::Damaged(e.to_string()))?;
    let want = hex::decode(&v.hash).map_err(|e| IdentityError::Damaged(e.to_string()))?;
    let got = derive(password, &salt, v.cost)?;
    Ok(want.len() == got.len()
        && want
            .iter()
            .zip(got.iter())
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EscrowText {
    v: u32,
    cost: Cost,
    salt: String,
    nonce: String,
    wrapped: String,
    public_key: String,
}

fn escrow_aad(public_key: &str) -> Vec<u8> {
    format!("ecrf-escrow-v1|{public_key}").into_bytes()
}

/// `key` wrapped by a key derived from `password`, to keep on the server.
pub fn escrow(password: &str, key: &AuthorKey) -> Result<String, IdentityError> {
    let salt: [u8; 16] = random()?;
    let nonce: [u8; 12] = random()?;
    let kek = derive(password, &salt, COST)?;
    let public_key = key.public_hex();
    let wrapped = ChaCha20Poly1305::new(&(*kek).into())
        .encrypt(
            &nonce.into(),
            Payload {
                msg: key.seed().as_slice(),
                aad: &escrow_aad(&public_key),
            },
        )
        .map_err(|_| IdentityError::Crypto("could not wrap the signing key".into()))?;
    serde_json::to_string(&EscrowText {
        v: 1,
        cost: COST,
        salt: hex::encode(salt),
        nonce: hex::encode(nonce),
        wrapped: hex::encode(wrapped),
        public_key,
    })
    .map_err(|e| IdentityError::Damaged(e.to_string()))
}

/// The public key an escrow carries (readable without the password).
pub fn escrow_public_key(escrow: &str) -> Result<String, IdentityError> {
    let e: EscrowText =
        serde_json::from_str(escrow).map_err(|e| IdentityError::Damaged(e.to_string()))?;
    Ok(e.public_key)
}

/// The signing key in `escrow`, opened with `password`.
pub fn open_escrow(escrow: &str, password: &str) -> Result<AuthorKey, IdentityError> {
    let e: EscrowText =
        serde_json::from_str(escrow).map_err(|e| IdentityError::Damaged(e.to_string()))?;
    let salt = hex::decode(&e.salt).map_err(|e| IdentityError::Damaged(e.to_string()))?;
    let nonce: [u8; 12] = hex::decode(&e.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| IdentityError::Damaged("escrow nonce".into()))?;
    let wrapped = hex::decode(&e.wrapped).map_err(|e| IdentityError::Damaged(e.to_string()))?;
    let kek = derive(password, &salt, e.cost)?;
    let seed = Zeroizing::new(
        ChaCha20Poly1305::new(&(*kek).into())
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: &wrapped,
                    aad: &escrow_aad(&e.public_key),
                },
            )
            .map_err(|_| IdentityError::WrongPassword)?,
    );
    let seed: [u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| IdentityError::Damaged("escrowed key length".into()))?;
    let key = AuthorKey::from_seed(&seed);
    if key.public_hex() != e.public_key {
        return Err(IdentityError::Damaged(
            "the escrowed key is not the public key it names".into(),
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verifier_accepts_only_its_password() {
        let v = verifier("quiet heron lantern 42").unwrap();
        assert!(verify(&v, "quiet heron lantern 42").unwrap());
        assert!(!verify(&v, "quiet heron lantern 43").unwrap());
        assert!(!v.contains("quiet"), "{v}");
        assert!(verify("{}", "x").is_err());
    }

    #[test]
    fn an_escrow_opens_only_with_its_password_and_keeps_its_key() {
        let key = AuthorKey::from_seed(&[6; 32]);
        let e = escrow("quiet heron lantern 42", &key).unwrap();
        assert_eq!(escrow_public_key(&e).unwrap(), key.public_hex());
        let back = open_escrow(&e, "quiet heron lantern 42").unwrap();
        assert_eq!(back.public_hex(), key.public_hex());
        assert!(matches!(
            open_escrow(&e, "wrong password here"),
            Err(IdentityError::WrongPassword)
        ));
        // Another public key named beside the wrapped seed: the associated data no longer fits.
        let other = AuthorKey::from_seed(&[7; 32]).public_hex();
        let swapped = e.replace(&key.public_hex(), &other);
        assert!(open_escrow(&swapped, "quiet heron lantern 42").is_err());
    }
}
