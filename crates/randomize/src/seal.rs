//! Sealed envelopes: a lease's arms hidden from everyone but the device it is for, and a
//! commitment per envelope that anyone can check once the envelope is opened.
//!
//! Owns the commitment (`SHA-256("ecrf-envelope v1" ‖ stratum ‖ seq ‖ arm ‖ nonce)` with a
//! random 256-bit nonce per envelope) and the seal: each envelope's arm and nonce encrypted
//! with ChaCha20-Poly1305 under a key agreed by X25519 between a fresh key of the lease (the
//! sender) and the device's key, bound to the envelope's id and commitment.
//!
//! Invariants: the commitment is all a lease shows of an envelope until it is opened;
//! [`open`] returns an arm only when it decrypts *and* matches the envelope's commitment, so a
//! swapped, edited or re-sealed arm is refused; nothing here draws randomness (callers pass
//! the sender's secret and the nonces), so the crate stays pure.

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::list::{Arm, Slot};

/// Bytes of an envelope's nonce (and of X25519 keys).
pub const NONCE_BYTES: usize = 32;

/// Why a seal could not be made or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// A key or nonce is not 32 bytes of hex, or is a weak X25519 key.
    #[error("{0}")]
    Key(String),
    /// One nonce per slot is needed.
    #[error("{slots} slots but {nonces} nonces")]
    Nonces {
        /// Slots to seal.
        slots: usize,
        /// Nonces given.
        nonces: usize,
    },
    /// The sealed text does not decrypt with this device's key (another device's lease, or
    /// altered in transit or at rest).
    #[error(
        "envelope {0}: its seal does not open with this device's key (altered, or not this device's)"
    )]
    Unreadable(String),
    /// The arm inside does not match the envelope's commitment (tampered).
    #[error("envelope {0}: the arm inside does not match the envelope's commitment (tampered)")]
    Mismatch(String),
}

/// The commitment to an envelope's arm (hex of SHA-256 over the stratum, position, arm and
/// nonce): published with the lease, checked against the arm and nonce recorded at opening.
pub fn commitment(stratum: &str, seq: u32, arm: &str, nonce: &[u8; NONCE_BYTES]) -> String {
    let mut h = Sha256::new();
    h.update(b"ecrf-envelope v1\0");
    h.update(stratum.as_bytes());
    h.update([0]);
    h.update(seq.to_be_bytes());
    h.update(arm.as_bytes());
    h.update([0]);
    h.update(nonce);
    hex::encode(h.finalize())
}

/// Does this (arm, nonce hex) match the commitment? False for any unreadable nonce.
pub fn matches(stratum: &str, seq: u32, arm: &str, nonce_hex: &str, commitment_hex: &str) -> bool {
    match key_bytes(nonce_hex, "nonce") {
        Ok(n) => commitment(stratum, seq, arm, &n) == commitment_hex,
        Err(_) => false,
    }
}

/// 32 bytes from 64 hex digits.
pub fn key_bytes(hex_text: &str, what: &str) -> Result<[u8; 32], SealError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text.trim(), &mut out)
        .map_err(|_| SealError::Key(format!("{what}: expected 64 hex digits")))?;
    Ok(out)
}

/// The public key (hex) of a device's X25519 secret.
pub fn public_key(secret: &[u8; 32]) -> String {
    hex::encode(PublicKey::from(&StaticSecret::from(*secret)).as_bytes())
}

/// One envelope of a sealed lease: what it shows (id, place, commitment) and its sealed arm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedEnvelope {
    /// Envelope id, `01-E0007`.
    pub envelope: String,
    /// Stratum key.
    pub stratum: String,
    /// Position in the stratum's list.
    pub seq: u32,
    /// Block number.
    pub block: u32,
    /// Block size.
    pub block_size: u32,
    /// Hex of [`commitment`].
    pub commitment: String,
    /// Hex of the ChaCha20-Poly1305 ciphertext of nonce ‖ arm code.
    pub sealed: String,
}

/// A lease sealed to one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedLease {
    /// Hex of the lease's own X25519 public key (its secret is dropped after sealing).
    pub sender: String,
    /// The envelopes, in list order.
    pub envelopes: Vec<SealedEnvelope>,
}

/// What a seal hides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The arm.
    pub arm: Arm,
    /// Hex of the envelope's nonce.
    pub nonce: String,
}

fn cipher(
    own: &StaticSecret,
    their: &PublicKey,
    sender: &PublicKey,
    device: &PublicKey,
) -> Result<ChaCha20Poly1305, SealError> {
    let shared = own.diffie_hellman(their);
    if !shared.was_contributory() {
        return Err(SealError::Key("a weak X25519 public key".into()));
    }
    let mut h = Sha256::new();
    h.update(b"ecrf-lease v1\0");
    h.update(shared.as_bytes());
    h.update(sender.as_bytes());
    h.update(device.as_bytes());
    let key = Zeroizing::new(<[u8; 32]>::from(h.finalize()));
    Ok(ChaCha20Poly1305::new(&(*key).into()))
}

/// The AEAD nonce of an envelope: unique within a lease (one key per lease).
fn aead_nonce(stratum: &str, seq: u32) -> [u8; 12] {
    let mut h = Sha256::new();
    h.update(stratum.as_bytes());
    h.update([0]);
    h.update(seq.to_be_bytes());
    let d = h.finalize();
    let mut n = [0u8; 12];
    n.copy_from_slice(&d[..12]);
    n
}

fn aad(envelope: &str, commitment: &str) -> Vec<u8> {
    format!("{envelope}\0{commitment}").into_bytes()
}

/// Seals `slots` to the device whose X25519 public key is `device`: `sender` is a fresh random
/// secret used for this lease only, `nonces` one fresh random nonce per slot.
pub fn seal(
    slots: &[Slot],
    device: &[u8; 32],
    sender: [u8; 32],
    nonces: &[[u8; NONCE_BYTES]],
) -> Result<SealedLease, SealError> {
    if nonces.len() != slots.len() {
        return Err(SealError::Nonces {
            slots: slots.len(),
            nonces: nonces.len(),
        });
    }
    let secret = StaticSecret::from(sender);
    let sender_pub = PublicKey::from(&secret);
    let device = PublicKey::from(*device);
    let c = cipher(&secret, &device, &sender_pub, &device)?;
    let mut envelopes = Vec::with_capacity(slots.len());
    for (s, nonce) in slots.iter().zip(nonces) {
        let arm = s.arm.code();
        let commitment = commitment(&s.stratum, s.seq, arm, nonce);
        let envelope = s.envelope();
        let mut plain = Zeroizing::new(Vec::with_capacity(NONCE_BYTES + arm.len()));
        plain.extend_from_slice(nonce);
        plain.extend_from_slice(arm.as_bytes());
        let sealed = c
            .encrypt(
                &aead_nonce(&s.stratum, s.seq).into(),
                Payload {
                    msg: &plain,
                    aad: &aad(&envelope, &commitment),
                },
            )
            .map_err(|_| SealError::Key("sealing failed".into()))?;
        envelopes.push(SealedEnvelope {
            envelope,
            stratum: s.stratum.clone(),
            seq: s.seq,
            block: s.block,
            block_size: s.block_size,
            commitment,
            sealed: hex::encode(sealed),
        });
    }
    Ok(SealedLease {
        sender: hex::encode(sender_pub.as_bytes()),
        envelopes,
    })
}

/// Opens one envelope of a lease with the device's secret: its arm and nonce, only if the seal
/// decrypts and the arm matches the envelope's commitment.
pub fn open(
    sender_hex: &str,
    e: &SealedEnvelope,
    device_secret: &[u8; 32],
) -> Result<Opened, SealError> {
    let unreadable = || SealError::Unreadable(e.envelope.clone());
    let secret = StaticSecret::from(*device_secret);
    let device_pub = PublicKey::from(&secret);
    let sender = PublicKey::from(key_bytes(sender_hex, "lease sender key")?);
    let c = cipher(&secret, &sender, &sender, &device_pub)?;
    let sealed = hex::decode(&e.sealed).map_err(|_| unreadable())?;
    let plain = Zeroizing::new(
        c.decrypt(
            &aead_nonce(&e.stratum, e.seq).into(),
            Payload {
                msg: &sealed,
                aad: &aad(&e.envelope, &e.commitment),
            },
        )
        .map_err(|_| unreadable())?,
    );
    if plain.len() <= NONCE_BYTES {
        return Err(unreadable());
    }
    let (nonce, arm) = plain.split_at(NONCE_BYTES);
    let arm = std::str::from_utf8(arm)
        .ok()
        .and_then(Arm::from_code)
        .ok_or_else(|| SealError::Mismatch(e.envelope.clone()))?;
    let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| unreadable())?;
    if commitment(&e.stratum, e.seq, arm.code(), &nonce) != e.commitment {
        return Err(SealError::Mismatch(e.envelope.clone()));
    }
    Ok(Opened {
        arm,
        nonce: hex::encode(nonce),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::{ListSpec, Stratum, generate};

    fn lease() -> (Vec<Slot>, [u8; 32], SealedLease, Vec<[u8; 32]>) {
        let slots = generate(
            &ListSpec {
                stratum: Stratum::site("01").unwrap(),
                count: 8,
                block_sizes: vec![4],
            },
            &[3; 32],
        )
        .unwrap();
        let device_secret = [42u8; 32];
        let device = key_bytes(&public_key(&device_secret), "device").unwrap();
        let nonces: Vec<[u8; 32]> = (0..slots.len() as u8).map(|i| [i + 1; 32]).collect();
        let sealed = seal(&slots, &device, [9; 32], &nonces).unwrap();
        (slots, device_secret, sealed, nonces)
    }

    #[test]
    fn the_device_opens_each_envelope_to_its_arm_and_the_commitment_checks() {
        let (slots, secret, lease, nonces) = lease();
        for ((s, e), n) in slots.iter().zip(&lease.envelopes).zip(&nonces) {
            let o = open(&lease.sender, e, &secret).unwrap();
            assert_eq!(o.arm, s.arm);
            assert_eq!(o.nonce, hex::encode(n));
            assert!(matches(
                &s.stratum,
                s.seq,
                s.arm.code(),
                &o.nonce,
                &e.commitment
            ));
            assert!(!matches(
                &s.stratum,
                s.seq,
                s.arm.other().code(),
                &o.nonce,
                &e.commitment
            ));
            // What the lease shows names no arm.
            let shown = serde_json_like(e);
            assert!(!shown.contains("ECMO"), "{shown}");
        }
    }

    fn serde_json_like(e: &SealedEnvelope) -> String {
        format!("{e:?}")
    }

    #[test]
    fn another_device_or_an_altered_seal_or_commitment_is_refused() {
        let (slots, secret, lease, _) = lease();
        let e = &lease.envelopes[0];
        assert_eq!(
            open(&lease.sender, e, &[7; 32]),
            Err(SealError::Unreadable(e.envelope.clone()))
        );
        let mut bad = e.clone();
        let mut bytes = hex::decode(&bad.sealed).unwrap();
        bytes[0] ^= 1;
        bad.sealed = hex::encode(bytes);
        assert!(matches!(
            open(&lease.sender, &bad, &secret),
            Err(SealError::Unreadable(_))
        ));
        // A commitment swapped for the other arm's no longer opens (bound as associated data),
        // and a seal made for another arm with a correct-looking commitment does not match.
        let mut swapped = e.clone();
        swapped.commitment = commitment(&e.stratum, e.seq, slots[0].arm.other().code(), &[0; 32]);
        assert!(open(&lease.sender, &swapped, &secret).is_err());
        let mut other = slots[0].clone();
        other.arm = other.arm.other();
        let device = key_bytes(&public_key(&secret), "d").unwrap();
        let forged = seal(&[other], &device, [5; 32], &[[1; 32]]).unwrap();
        let mut mixed = forged.envelopes[0].clone();
        mixed.commitment = e.commitment.clone();
        assert!(open(&forged.sender, &mixed, &secret).is_err());
        assert!(matches!(
            seal(&slots, &device, [1; 32], &[[0; 32]]),
            Err(SealError::Nonces { .. })
        ));
        assert!(matches!(
            seal(&slots[..1], &[0; 32], [1; 32], &[[0; 32]]),
            Err(SealError::Key(_))
        ));
    }
}
