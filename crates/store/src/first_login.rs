//! A registered user's first login on an enrolled laptop, and the device slot that allows it.
//!
//! At enrolment the laptop wraps its store key in a device slot with a random secret that only
//! the server keeps ([`Store::new_device_slot`]). A user created on the server has no key slot
//! here: their first login asks the server (the caller's `ask`, over the network), which checks
//! their password against its verifier and answers with the secret and their escrowed signing
//! key; this module opens the device slot with the secret, the escrow with the password, and
//! writes the user's own key slot (store key and signing key, Argon2id), so later logins work
//! offline. Invariants: nothing is written unless both open; the user's role until the
//! server's `user.add` is pulled is the one the server stated; the secret's wrapping key is
//! kept inside the store so a rekey can rewrap the device slot.

use std::path::Path;
use std::sync::Arc;

use ecrf_core::{Role, Study};
use ecrf_wire::wire::LoginReply;

use crate::error::StoreError;
use crate::keyring::{DEVICE_SLOT, DeviceSlot, KdfParams, Keyring, random_bytes};
use crate::store::Store;

impl Store {
    /// Makes (or replaces) this laptop's device slot for its server at `server` (with the site
    /// CA `ca_pem`, if any); returns the secret to give the server (64 hex digits).
    pub fn new_device_slot(
        &self,
        server: &str,
        ca_pem: Option<&str>,
    ) -> Result<String, StoreError> {
        let secret: [u8; 32] = random_bytes()?;
        let mut ring = Keyring::load(&self.path)?;
        ring.set_device_slot(
            server,
            ca_pem,
            (self.device_id(), self.site()),
            &secret,
            &self.key,
        )?;
        crate::rekey::keep_slot_key(&self.conn, Some(DEVICE_SLOT), &secret)?;
        ring.save()?;
        Ok(hex::encode(secret))
    }

    /// A first login: `ask` sends the user name and password to the server named in the
    /// device slot and returns its answer; the store opens with the secret it gives, and the
    /// user's key slot is written for their password. The caller then syncs, which brings the
    /// server's `user.add` of this user.
    pub fn first_login<E: std::fmt::Display>(
        path: &Path,
        study: Arc<Study>,
        user: &str,
        password: &str,
        ask: impl FnOnce(&DeviceSlot) -> Result<LoginReply, E>,
    ) -> Result<Store, StoreError> {
        let mut ring = Keyring::load(path)?;
        let Some(slot) = ring.device_slot().cloned() else {
            return Err(StoreError::UnknownUser(user.to_string()));
        };
        let reply = ask(&slot).map_err(|e| StoreError::Invalid(format!("first login: {e}")))?;
        let secret: [u8; 32] = hex::decode(&reply.unlock_secret)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                StoreError::Invalid("first login: the server's secret is malformed".into())
            })?;
        let key = ring.unlock_device(&secret)?;
        let author = ecrf_identity::open_escrow(&reply.escrow, password)
            .map_err(|e| StoreError::Invalid(format!("first login: {e}")))?;
        let role: Role = reply.role.parse().map_err(StoreError::Invalid)?;
        let kek = ring.set_user(user, password, &key, Some(&author), KdfParams::CURRENT)?;
        ring.save()?;
        let mut store =
            Store::open_as_role(path, study, ring, Some(key), (user, Some(role)), true)?;
        store.author = Some(author);
        crate::rekey::keep_slot_key(&store.conn, Some(user), &kek)?;
        Ok(store)
    }
}
