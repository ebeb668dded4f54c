//! Key slots: the random store key, wrapped once per user and once for the recovery key.
//!
//! The store file is encrypted with a random 256-bit key that nobody types. Each user's password
//! is stretched with Argon2id into a key that wraps (ChaCha20-Poly1305) a copy of it; the recovery
//! key shown once at set-up wraps another copy. The slots live in a small JSON file beside the
//! store (`<store>.keys`), because they must be read before the store can be opened; it holds no
//! trial data. Invariants: the file is replaced atomically (write, fsync, rename, fsync folder);
//! each slot's associated data binds it to this store and this user, so slots cannot be swapped.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use ecrf_log::AuthorKey;

use crate::error::StoreError;

/// The hash SQLCipher uses for each page's HMAC (its tamper check). It is part of the file format,
/// so it is recorded in the key file and set before the store is first read.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum PageHmac {
    /// SQLCipher 4's default; stores made before the key file recorded the setting use it.
    #[serde(rename = "HMAC_SHA512")]
    Sha512,
    /// Used for new stores: as strong a tamper check, at under half the CPU cost per page on
    /// processors with SHA extensions, which is most of what encryption adds to a save.
    #[serde(rename = "HMAC_SHA256")]
    Sha256,
}

impl PageHmac {
    fn pragma_value(self) -> &'static str {
        match self {
            PageHmac::Sha512 => "HMAC_SHA512",
            PageHmac::Sha256 => "HMAC_SHA256",
        }
    }
}

/// The page size of new stores. Smaller than SQLCipher's 4096 because every page a save
/// touches is encrypted and HMACed whole: a daily log's save changes a few rows in each of six
/// B-trees, and with 2 KiB pages it encrypts about a third fewer bytes (the encrypted save
/// measured 9% faster, the same save on plain SQLite no slower; `ecrf bench`).
pub const NEW_STORE_PAGE_SIZE: u32 = 2048;

/// Stores made before the key file recorded the page size use SQLCipher's default.
fn legacy_page_size() -> u32 {
    4096
}

/// A 256-bit store key with the page settings of its file. Never written anywhere unwrapped;
/// wiped from memory when dropped.
#[derive(Clone)]
pub struct StoreKey {
    pub(crate) bytes: [u8; 32],
    pub(crate) hmac: PageHmac,
    pub(crate) page_size: u32,
}

impl Drop for StoreKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl StoreKey {
    /// A fresh random key for a new store.
    pub fn generate() -> Result<Self, StoreError> {
        Ok(StoreKey {
            bytes: random_bytes()?,
            hmac: PageHmac::Sha256,
            page_size: NEW_STORE_PAGE_SIZE,
        })
    }

    /// The statements that open the file with this key: `PRAGMA key` with the raw key, then the
    /// page HMAC and page size (all must come before the first read).
    pub(crate) fn pragmas(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "PRAGMA key = \"x'{}'\"; PRAGMA cipher_hmac_algorithm = {}; PRAGMA cipher_page_size = {};",
            *Zeroizing::new(hex::encode(self.bytes)),
            self.hmac.pragma_value(),
            self.page_size
        ))
    }
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| StoreError::Keyring(format!("no randomness: {e}")))?;
    Ok(b)
}

/// A new signing key for a user, from the system's randomness.
pub fn new_author_key() -> Result<AuthorKey, StoreError> {
    let seed = Zeroizing::new(random_bytes::<32>()?);
    Ok(AuthorKey::from_seed(&seed))
}

/// Argon2id cost for a password slot. Recorded in each slot, so a slot keeps opening with the
/// cost it was written with; a weaker slot is rewritten at its user's next login
/// ([`Keyring::is_weaker_than_current`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// What slots written before the cost was raised use (19 MiB, 2 passes: OWASP's minimum),
    /// and what a slot without recorded settings means.
    pub const LEGACY: KdfParams = KdfParams {
        m_kib: 19 * 1024,
        t: 2,
        p: 1,
    };

    /// The cost of every slot written now: 64 MiB, 3 passes, one lane. About 3.4 times the
    /// memory and 5 times the work of [`KdfParams::LEGACY`] per guess against a stolen key
    /// file, and still well under half a second per login (`ecrf bench` prints it).
    pub const CURRENT: KdfParams = KdfParams {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };

    /// True when a guess costs less memory or fewer passes than with `other`.
    pub fn weaker_than(self, other: KdfParams) -> bool {
        self.m_kib < other.m_kib || self.t < other.t
    }
}

impl Default for KdfParams {
    /// [`KdfParams::CURRENT`].
    fn default() -> Self {
        KdfParams::CURRENT
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Slot {
    /// User name, or `None` for the recovery slot.
    user: Option<String>,
    /// The slot's Argon2id cost; `None` (never written so for a password slot, but read as
    /// such) is [`KdfParams::LEGACY`].
    kdf: Option<KdfParams>,
    salt: String,
    nonce: String,
    wrapped: String,
    /// The user's signing key ([`AuthorKey`]'s seed), wrapped by the same password-derived key
    /// under its own nonce and associated data. `None` in slots written before changes were
    /// signed, and in the recovery slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    author: Option<WrappedSecret>,
}

/// A 32-byte secret wrapped with ChaCha20-Poly1305.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct WrappedSecret {
    nonce: String,
    wrapped: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyFile {
    format: u32,
    store_id: String,
    /// Missing in key files written before it was recorded: those stores use SHA-512.
    #[serde(default = "legacy_hmac")]
    page_hmac: PageHmac,
    /// Missing in key files written before it was recorded: those stores use 4096.
    #[serde(default = "legacy_page_size")]
    page_size: u32,
    slots: Vec<Slot>,
    /// Set at enrolment: opens the store for a registered user's first login on this laptop
    /// (the server gives the secret after checking their password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device: Option<DeviceSlot>,
}

/// The store key wrapped by a secret only the server holds (given at a registered user's first
/// login), with where to ask for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceSlot {
    /// Server URL.
    pub server: String,
    /// PEM of the site CA, when the server's certificate is not from a public one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// This laptop's device id.
    pub device: String,
    /// Its site.
    pub site: String,
    nonce: String,
    wrapped: String,
}

/// The name under which the device slot's wrapping key is kept for rekeys.
pub const DEVICE_SLOT: &str = "#device";

fn device_aad(store_id: &str, device: &str) -> Vec<u8> {
    format!("ecrf-device-v1|{store_id}|{device}").into_bytes()
}

fn legacy_hmac() -> PageHmac {
    PageHmac::Sha512
}

/// The key slots of one store.
#[derive(Debug, Clone)]
pub struct Keyring {
    path: PathBuf,
    file: KeyFile,
}

/// The recovery key, shown once at set-up: 256 bits in Crockford base32, in groups of four.
/// Wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryKey(String);

impl Drop for RecoveryKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl RecoveryKey {
    /// The text to show and to type back.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn bytes(&self) -> Result<Zeroizing<[u8; 32]>, StoreError> {
        decode_base32(&self.0)
            .map(Zeroizing::new)
            .ok_or(StoreError::WrongRecoveryKey)
    }

    /// Reads a recovery key as typed (any case, dashes and spaces ignored).
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let bytes = Zeroizing::new(decode_base32(text).ok_or(StoreError::WrongRecoveryKey)?);
        Ok(RecoveryKey(encode_base32(&bytes)))
    }
}

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn encode_base32(bytes: &[u8; 32]) -> String {
    let mut bits: u32 = 0;
    let mut n = 0;
    let mut out = String::new();
    for &b in bytes {
        bits = (bits << 8) | u32::from(b);
        n += 8;
        while n >= 5 {
            n -= 5;
            out.push(ALPHABET[((bits >> n) & 31) as usize] as char);
        }
    }
    if n > 0 {
        out.push(ALPHABET[((bits << (5 - n)) & 31) as usize] as char);
    }
    out.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

fn decode_base32(text: &str) -> Option<[u8; 32]> {
    let mut bits: u32 = 0;
    let mut n = 0;
    let mut out = Vec::with_capacity(32);
    for c in text.chars().filter(|c| !matches!(c, '-' | ' ')) {
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        let v = ALPHABET.iter().position(|&a| a as char == c)? as u32;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out.try_into().ok()
}

fn derive_password_key(
    password: &str,
    salt: &[u8],
    kdf: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let params = Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32))
        .map_err(|e| StoreError::Keyring(format!("bad key-derivation settings: {e}")))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), salt, &mut *out)
        .map_err(|e| StoreError::Keyring(format!("key derivation failed: {e}")))?;
    Ok(out)
}

fn derive_recovery_key(recovery: &[u8; 32], salt: &[u8]) -> Zeroizing<[u8; 32]> {
    // The recovery key is already 256 random bits: a hash binds it to the slot, no stretching.
    let mut h = Sha256::new();
    h.update(b"ecrf recovery slot v1");
    h.update(salt);
    h.update(recovery);
    Zeroizing::new(h.finalize().into())
}

fn aad(store_id: &str, user: Option<&str>) -> Vec<u8> {
    format!("ecrf-slot-v1|{store_id}|{}", user.unwrap_or("#recovery")).into_bytes()
}

fn wrap(kek: &[u8; 32], key: &StoreKey, aad: &[u8]) -> Result<(String, String), StoreError> {
    let w = wrap_secret(kek, &key.bytes, aad)?;
    Ok((w.nonce, w.wrapped))
}

fn author_aad(store_id: &str, user: &str) -> Vec<u8> {
    format!("ecrf-author-v1|{store_id}|{user}").into_bytes()
}

fn wrap_secret(kek: &[u8; 32], secret: &[u8; 32], aad: &[u8]) -> Result<WrappedSecret, StoreError> {
    let nonce: [u8; 12] = random_bytes()?;
    let cipher = ChaCha20Poly1305::new(&(*kek).into());
    let wrapped = cipher
        .encrypt(&nonce.into(), Payload { msg: secret, aad })
        .map_err(|_| StoreError::Keyring("could not wrap a key".into()))?;
    Ok(WrappedSecret {
        nonce: hex::encode(nonce),
        wrapped: hex::encode(wrapped),
    })
}

fn unwrap_secret(kek: &[u8; 32], w: &WrappedSecret, aad: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
    let nonce: [u8; 12] = hex::decode(&w.nonce).ok()?.try_into().ok()?;
    let wrapped = hex::decode(&w.wrapped).ok()?;
    let cipher = ChaCha20Poly1305::new(&(*kek).into());
    let plain = Zeroizing::new(
        cipher
            .decrypt(&nonce.into(), Payload { msg: &wrapped, aad })
            .ok()?,
    );
    Some(Zeroizing::new(plain.as_slice().try_into().ok()?))
}

/// The store key in `slot`, with the page settings `file` records.
fn unwrap(kek: &[u8; 32], slot: &Slot, aad: &[u8], file: &KeyFile) -> Option<StoreKey> {
    let w = WrappedSecret {
        nonce: slot.nonce.clone(),
        wrapped: slot.wrapped.clone(),
    };
    let bytes = unwrap_secret(kek, &w, aad)?;
    Some(StoreKey {
        bytes: *bytes,
        hmac: file.page_hmac,
        page_size: file.page_size,
    })
}

/// Makes a rename in `path`'s folder durable.
#[cfg(not(windows))]
fn sync_folder(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Windows cannot flush a folder (FlushFileBuffers needs a handle open for writing, which a
/// folder never is: "access denied"); NTFS journals the rename itself, and the file's own
/// bytes were flushed before it.
#[cfg(windows)]
fn sync_folder(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Where the key slots of the store at `store_path` live.
pub fn keyring_path(store_path: &Path) -> PathBuf {
    let mut s = store_path.as_os_str().to_owned();
    s.push(".keys");
    PathBuf::from(s)
}

impl Keyring {
    /// A new keyring for a new store, with the recovery slot. Returns the recovery key to show.
    pub fn create(
        store_path: &Path,
        store_id: &str,
        key: &StoreKey,
    ) -> Result<(Keyring, RecoveryKey), StoreError> {
        let recovery_bytes = Zeroizing::new(random_bytes::<32>()?);
        let recovery = RecoveryKey(encode_base32(&recovery_bytes));
        let salt: [u8; 16] = random_bytes()?;
        let kek = derive_recovery_key(&recovery_bytes, &salt);
        let (nonce, wrapped) = wrap(&kek, key, &aad(store_id, None))?;
        let ring = Keyring {
            path: keyring_path(store_path),
            file: KeyFile {
                format: 1,
                store_id: store_id.to_string(),
                page_hmac: key.hmac,
                page_size: key.page_size,
                slots: vec![Slot {
                    user: None,
                    kdf: None,
                    salt: hex::encode(salt),
                    nonce,
                    wrapped,
                    author: None,
                }],
                device: None,
            },
        };
        Ok((ring, recovery))
    }

    /// Reads the keyring beside a store.
    pub fn load(store_path: &Path) -> Result<Keyring, StoreError> {
        let path = keyring_path(store_path);
        let text = fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::NoStore(store_path.to_path_buf())
            } else {
                StoreError::io(&path, e)
            }
        })?;
        let file: KeyFile = serde_json::from_str(&text)
            .map_err(|e| StoreError::Keyring(format!("{} is damaged: {e}", path.display())))?;
        if !(512..=65536).contains(&file.page_size) || !file.page_size.is_power_of_two() {
            return Err(StoreError::Keyring(format!(
                "{} is damaged: page_size {} is not a power of two from 512 to 65536",
                path.display(),
                file.page_size
            )));
        }
        Ok(Keyring { path, file })
    }

    /// The store id the keyring belongs to.
    pub fn store_id(&self) -> &str {
        &self.file.store_id
    }

    /// True when the user has a slot.
    pub fn has_user(&self, user: &str) -> bool {
        self.file
            .slots
            .iter()
            .any(|s| s.user.as_deref() == Some(user))
    }

    /// Unwraps the store key with a user's password.
    pub fn unlock(&self, user: &str, password: &str) -> Result<StoreKey, StoreError> {
        self.unlock_author(user, password).map(|(key, _)| key)
    }

    /// Unwraps the store key and the user's signing key (`None` for a slot written before
    /// changes were signed) with their password: one Argon2id derivation.
    pub fn unlock_author(
        &self,
        user: &str,
        password: &str,
    ) -> Result<(StoreKey, Option<AuthorKey>), StoreError> {
        let slot = self
            .file
            .slots
            .iter()
            .find(|s| s.user.as_deref() == Some(user))
            .ok_or_else(|| StoreError::UnknownUser(user.to_string()))?;
        let salt = hex::decode(&slot.salt)
            .map_err(|_| StoreError::Keyring("a key slot's salt is damaged".into()))?;
        let kek = derive_password_key(password, &salt, slot.kdf.unwrap_or(KdfParams::LEGACY))?;
        let key = unwrap(
            &kek,
            slot,
            &aad(&self.file.store_id, Some(user)),
            &self.file,
        )
        .ok_or_else(|| StoreError::WrongPassword(user.to_string()))?;
        let author = match &slot.author {
            None => None,
            Some(w) => Some(
                unwrap_secret(&kek, w, &author_aad(&self.file.store_id, user))
                    .map(|seed| AuthorKey::from_seed(&seed))
                    .ok_or_else(|| {
                        StoreError::Keyring(format!(
                            "{user}'s signing key in the key file is damaged"
                        ))
                    })?,
            ),
        };
        Ok((key, author))
    }

    /// The Argon2id cost of a user's slot, `None` when the user has no slot.
    pub fn kdf_of(&self, user: &str) -> Option<KdfParams> {
        self.slot(user).map(|s| s.kdf.unwrap_or(KdfParams::LEGACY))
    }

    /// True when the user's slot was written with a weaker cost than [`KdfParams::CURRENT`]
    /// (rewritten at their next successful login).
    pub fn is_weaker_than_current(&self, user: &str) -> bool {
        self.kdf_of(user)
            .is_some_and(|k| k.weaker_than(KdfParams::CURRENT))
    }

    /// True when `other` holds the very slot this keyring holds for `user` (same salt and
    /// wrapped key): nobody rewrote it in between.
    pub(crate) fn same_slot(&self, other: &Keyring, user: &str) -> bool {
        match (self.slot(user), other.slot(user)) {
            (Some(a), Some(b)) => a.salt == b.salt && a.wrapped == b.wrapped,
            _ => false,
        }
    }

    fn slot(&self, user: &str) -> Option<&Slot> {
        self.file
            .slots
            .iter()
            .find(|s| s.user.as_deref() == Some(user))
    }

    /// Unwraps the store key with the recovery key.
    pub fn unlock_with_recovery(&self, recovery: &RecoveryKey) -> Result<StoreKey, StoreError> {
        let slot = self
            .file
            .slots
            .iter()
            .find(|s| s.user.is_none())
            .ok_or(StoreError::WrongRecoveryKey)?;
        let salt = hex::decode(&slot.salt).map_err(|_| StoreError::WrongRecoveryKey)?;
        let bytes = recovery.bytes()?;
        let kek = derive_recovery_key(&bytes, &salt);
        unwrap(&kek, slot, &aad(&self.file.store_id, None), &self.file)
            .ok_or(StoreError::WrongRecoveryKey)
    }

    /// Adds (or replaces) a user's slot, wrapping the store key and the user's signing key.
    /// Call [`Keyring::save`] to keep it.
    pub fn set_user(
        &mut self,
        user: &str,
        password: &str,
        key: &StoreKey,
        author: Option<&AuthorKey>,
        kdf: KdfParams,
    ) -> Result<Zeroizing<[u8; 32]>, StoreError> {
        let salt: [u8; 16] = random_bytes()?;
        let kek = derive_password_key(password, &salt, kdf)?;
        let (nonce, wrapped) = wrap(&kek, key, &aad(&self.file.store_id, Some(user)))?;
        let author = author
            .map(|a| wrap_secret(&kek, &a.seed(), &author_aad(&self.file.store_id, user)))
            .transpose()?;
        self.file.slots.retain(|s| s.user.as_deref() != Some(user));
        self.file.slots.push(Slot {
            user: Some(user.to_string()),
            kdf: Some(kdf),
            salt: hex::encode(salt),
            nonce,
            wrapped,
            author,
        });
        Ok(kek)
    }

    /// The key that wraps the recovery slot, from the recovery key (kept inside the store so a
    /// rekey can rewrap the slot without it).
    pub fn recovery_wrapping_key(
        &self,
        recovery: &RecoveryKey,
    ) -> Result<Zeroizing<[u8; 32]>, StoreError> {
        let slot = self
            .file
            .slots
            .iter()
            .find(|s| s.user.is_none())
            .ok_or(StoreError::WrongRecoveryKey)?;
        let salt = hex::decode(&slot.salt).map_err(|_| StoreError::WrongRecoveryKey)?;
        Ok(derive_recovery_key(&*recovery.bytes()?, &salt))
    }

    /// Sets the device slot: `key` wrapped by `secret`, with where to ask for the secret.
    /// Call [`Keyring::save`] to keep it.
    pub fn set_device_slot(
        &mut self,
        server: &str,
        ca_pem: Option<&str>,
        (device, site): (&str, &str),
        secret: &[u8; 32],
        key: &StoreKey,
    ) -> Result<(), StoreError> {
        let (nonce, wrapped) = wrap(secret, key, &device_aad(&self.file.store_id, device))?;
        self.file.device = Some(DeviceSlot {
            server: server.to_string(),
            ca_pem: ca_pem.map(str::to_string),
            device: device.to_string(),
            site: site.to_string(),
            nonce,
            wrapped,
        });
        Ok(())
    }

    /// The device slot, when the laptop is enrolled.
    pub fn device_slot(&self) -> Option<&DeviceSlot> {
        self.file.device.as_ref()
    }

    /// The store key from the device slot, with the secret the server gave.
    pub fn unlock_device(&self, secret: &[u8; 32]) -> Result<StoreKey, StoreError> {
        let d = self
            .file
            .device
            .as_ref()
            .ok_or_else(|| StoreError::Keyring("this laptop has no device slot".into()))?;
        let slot = Slot {
            user: None,
            kdf: None,
            salt: String::new(),
            nonce: d.nonce.clone(),
            wrapped: d.wrapped.clone(),
            author: None,
        };
        unwrap(
            secret,
            &slot,
            &device_aad(&self.file.store_id, &d.device),
            &self.file,
        )
        .ok_or_else(|| {
            StoreError::Keyring(
                "the server's secret does not open this laptop's device slot".into(),
            )
        })
    }

    /// Removes a user's slot (deactivated, or their password reset on the server). True when
    /// there was one. Call [`Keyring::save`] to keep it.
    pub fn remove_user(&mut self, user: &str) -> bool {
        let before = self.file.slots.len();
        self.file.slots.retain(|s| s.user.as_deref() != Some(user));
        self.file.slots.len() != before
    }

    /// The users with a slot.
    pub fn users(&self) -> Vec<String> {
        self.file
            .slots
            .iter()
            .filter_map(|s| s.user.clone())
            .collect()
    }

    /// Wraps `new` in every slot whose wrapping key is in `keks` (by user; `None` = the
    /// recovery slot), keeping each slot's salt, cost and signing key; drops the slots whose
    /// wrapping key is unknown and returns their users. Call [`Keyring::save_pending`] then
    /// [`Keyring::promote_pending`] around the store's own rekey.
    pub fn rewrap(
        &mut self,
        new: &StoreKey,
        keks: &std::collections::BTreeMap<Option<String>, Zeroizing<[u8; 32]>>,
    ) -> Result<Vec<String>, StoreError> {
        let store_id = self.file.store_id.clone();
        let mut dropped = Vec::new();
        let mut kept = Vec::new();
        for mut slot in std::mem::take(&mut self.file.slots) {
            match keks.get(&slot.user) {
                Some(kek) => {
                    let (nonce, wrapped) = wrap(kek, new, &aad(&store_id, slot.user.as_deref()))?;
                    slot.nonce = nonce;
                    slot.wrapped = wrapped;
                    kept.push(slot);
                }
                None => dropped.push(slot.user.unwrap_or_else(|| "#recovery".into())),
            }
        }
        self.file.slots = kept;
        if let Some(d) = self.file.device.as_mut() {
            match keks.get(&Some(DEVICE_SLOT.to_string())) {
                Some(secret) => {
                    let (nonce, wrapped) = wrap(secret, new, &device_aad(&store_id, &d.device))?;
                    d.nonce = nonce;
                    d.wrapped = wrapped;
                }
                None => {
                    self.file.device = None;
                    dropped.push(DEVICE_SLOT.to_string());
                }
            }
        }
        Ok(dropped)
    }

    fn pending_path(&self) -> PathBuf {
        self.path.with_extension("keys.next")
    }

    /// Writes this keyring beside the current one as the next (durably), before the store's
    /// key changes: whichever of the two opens the store is the true one after a crash.
    pub fn save_pending(&self) -> Result<(), StoreError> {
        let next = Keyring {
            path: self.pending_path(),
            file: self.file.clone(),
        };
        next.save()
    }

    /// Makes the next keyring the current one (after the store's key changed).
    pub fn promote_pending(&self) -> Result<(), StoreError> {
        let next = self.pending_path();
        fs::rename(&next, &self.path).map_err(|e| StoreError::io(&self.path, e))?;
        sync_folder(&self.path).map_err(|e| StoreError::io(&self.path, e))
    }

    /// The next keyring left by a rekey a crash interrupted, if any.
    pub fn load_pending(store_path: &Path) -> Result<Option<Keyring>, StoreError> {
        let current = keyring_path(store_path);
        let next = current.with_extension("keys.next");
        if !next.exists() {
            return Ok(None);
        }
        let text = fs::read_to_string(&next).map_err(|e| StoreError::io(&next, e))?;
        let file: KeyFile = serde_json::from_str(&text)
            .map_err(|e| StoreError::Keyring(format!("{} is damaged: {e}", next.display())))?;
        Ok(Some(Keyring {
            path: current,
            file,
        }))
    }

    /// Removes a next keyring a rekey left before it changed the store's key (the current one
    /// opens the store).
    pub fn discard_pending(store_path: &Path) {
        let next = keyring_path(store_path).with_extension("keys.next");
        let _ = fs::remove_file(next);
    }

    /// Writes the keyring durably: a temporary file (owner-only, created new), fsync, rename
    /// over the old one, fsync the folder. A crash leaves either the old or the new keyring,
    /// never half of one.
    pub fn save(&self) -> Result<(), StoreError> {
        let text = serde_json::to_string_pretty(&self.file)
            .map_err(|e| StoreError::Keyring(e.to_string()))?;
        let tmp = self.path.with_extension(format!(
            "{}.tmp",
            self.path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("keys")
        ));
        let write = || -> std::io::Result<()> {
            // Owner-only, created new: a leftover or a link in its place is removed first.
            let mut f = crate::secret_file::create_temporary(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            sync_folder(&self.path)
        };
        write().map_err(|e| StoreError::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_keys_round_trip_through_text() {
        let bytes: [u8; 32] = random_bytes().unwrap();
        let text = encode_base32(&bytes);
        assert_eq!(decode_base32(&text), Some(bytes));
        assert_eq!(
            decode_base32(&text.to_lowercase().replace('-', " ")),
            Some(bytes)
        );
        assert_eq!(decode_base32("ABCD"), None);
    }

    #[test]
    fn slots_open_only_with_their_password_and_recovery_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.ecrf");
        let key = StoreKey::generate().unwrap();
        let (mut ring, recovery) = Keyring::create(&store, "id1", &key).unwrap();
        ring.set_user("alice", "correct horse", &key, None, KdfParams::default())
            .unwrap();
        ring.save().unwrap();
        let ring = Keyring::load(&store).unwrap();
        assert_eq!(
            ring.unlock("alice", "correct horse").unwrap().bytes,
            key.bytes
        );
        assert!(matches!(
            ring.unlock("alice", "wrong"),
            Err(StoreError::WrongPassword(_))
        ));
        assert!(matches!(
            ring.unlock("bob", "x"),
            Err(StoreError::UnknownUser(_))
        ));
        assert_eq!(
            ring.unlock_with_recovery(&recovery).unwrap().bytes,
            key.bytes
        );
        let other = RecoveryKey(encode_base32(&random_bytes().unwrap()));
        assert!(ring.unlock_with_recovery(&other).is_err());
    }

    #[test]
    fn page_settings_are_recorded_for_new_stores_and_sqlciphers_defaults_for_older_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.ecrf");
        let key = StoreKey::generate().unwrap();
        let (mut ring, _) = Keyring::create(&store, "id1", &key).unwrap();
        ring.set_user("alice", "correct horse", &key, None, KdfParams::default())
            .unwrap();
        ring.save().unwrap();
        let text = fs::read_to_string(keyring_path(&store)).unwrap();
        assert!(text.contains("\"page_hmac\": \"HMAC_SHA256\""), "{text}");
        assert!(text.contains("\"page_size\": 2048"), "{text}");
        let unlocked = Keyring::load(&store)
            .unwrap()
            .unlock("alice", "correct horse")
            .unwrap();
        assert_eq!(unlocked.hmac, PageHmac::Sha256);
        assert_eq!(unlocked.page_size, NEW_STORE_PAGE_SIZE);
        let pragmas = unlocked.pragmas();
        assert!(pragmas.contains("cipher_hmac_algorithm = HMAC_SHA256"));
        assert!(pragmas.contains("cipher_page_size = 2048"));

        // A key file from before the settings were recorded: its store uses SHA-512 and 4096.
        let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json.as_object_mut().unwrap().remove("page_hmac");
        json.as_object_mut().unwrap().remove("page_size");
        fs::write(keyring_path(&store), json.to_string()).unwrap();
        let unlocked = Keyring::load(&store)
            .unwrap()
            .unlock("alice", "correct horse")
            .unwrap();
        assert_eq!(unlocked.hmac, PageHmac::Sha512);
        assert_eq!(unlocked.page_size, 4096);
        let pragmas = unlocked.pragmas();
        assert!(pragmas.contains("cipher_hmac_algorithm = HMAC_SHA512"));
        assert!(pragmas.contains("cipher_page_size = 4096"));

        // A page size SQLCipher cannot use is a damaged key file, said so at load.
        json["page_size"] = serde_json::json!(3000);
        fs::write(keyring_path(&store), json.to_string()).unwrap();
        let e = Keyring::load(&store).err().map(|e| e.to_string());
        assert!(
            e.as_deref().is_some_and(|e| e.contains("page_size 3000")),
            "{e:?}"
        );
    }
}
