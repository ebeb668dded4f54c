//! Changing the store key, and removing key slots the server's user registry takes away.
//!
//! A deactivated user's slot is removed at the laptop's next sync and the store key changes
//! (`Store::rekey`, also `ecrf store rekey`), so an old copy of the key file and their old
//! password open nothing: the file is encrypted with a key that slot never held. The other
//! slots are rewrapped without their passwords, with the wrapping keys kept inside the
//! encrypted store (`slot_keys`, written whenever a slot is).
//!
//! Invariants: the new key file is written beside the current one before the store's key
//! changes, and made current only after: after a crash whichever of the two opens the store
//! is the true one (`Store::open` tries the next one when the current does not open); the key
//! changes in DELETE journal mode (SQLCipher cannot rekey a WAL database), and WAL is back
//! before anything else runs; a slot whose wrapping key is unknown (written before they were
//! kept) is dropped and named, never left with the old key.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};
use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::keyring::{Keyring, StoreKey, random_bytes};
use crate::store::Store;

/// The slot name of the recovery slot in `slot_keys`.
const RECOVERY: &str = "#recovery";

/// Keeps the key that wraps `user`'s slot (`None` = the recovery slot) inside the store.
pub(crate) fn keep_slot_key(
    conn: &Connection,
    user: Option<&str>,
    kek: &[u8; 32],
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT OR REPLACE INTO slot_keys (slot, kek) VALUES (?1, ?2)")?
        .execute(params![
            user.unwrap_or(RECOVERY),
            Zeroizing::new(hex::encode(kek)).as_str()
        ])?;
    Ok(())
}

fn slot_keys(
    conn: &Connection,
) -> Result<BTreeMap<Option<String>, Zeroizing<[u8; 32]>>, StoreError> {
    let mut out = BTreeMap::new();
    let mut stmt = conn.prepare("SELECT slot, kek FROM slot_keys")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let slot: String = r.get(0)?;
        let kek: Zeroizing<String> = Zeroizing::new(r.get(1)?);
        let Some(bytes) = hex::decode(kek.as_str())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        else {
            continue;
        };
        let key = (slot != RECOVERY).then_some(slot);
        out.insert(key, Zeroizing::new(bytes));
    }
    Ok(out)
}

/// What a rekey did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rekeyed {
    /// Users whose slots were rewrapped with the new key.
    pub kept: Vec<String>,
    /// Slots dropped because their wrapping key was not kept (they need a new password).
    pub dropped: Vec<String>,
}

impl Store {
    /// Changes the store key (administrators, `ecrf store rekey`): a new random key encrypts
    /// the file; every slot whose wrapping key the store keeps is rewrapped; an old key file
    /// opens nothing any more.
    pub fn rekey(&mut self) -> Result<Rekeyed, StoreError> {
        self.require(ecrf_core::Action::ManageDevices)?;
        self.rekey_now()
    }

    /// [`Store::rekey`] for whoever is logged in (a deactivation received by sync).
    pub(crate) fn rekey_now(&mut self) -> Result<Rekeyed, StoreError> {
        let new = StoreKey {
            bytes: random_bytes()?,
            hmac: self.key.hmac,
            page_size: self.key.page_size,
        };
        let keks = slot_keys(&self.conn)?;
        let mut ring = Keyring::load(&self.path)?;
        let dropped = ring.rewrap(&new, &keks)?;
        ring.save_pending()?;
        // SQLCipher rekeys only outside WAL: checkpoint everything into the file first.
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        self.conn
            .query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
        let rekeyed = self.conn.execute_batch(&format!(
            "PRAGMA rekey = \"x'{}'\";",
            *Zeroizing::new(hex::encode(new.bytes))
        ));
        let wal = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()));
        rekeyed?;
        wal?;
        ring.promote_pending()?;
        let kept = ring.users();
        self.key = new;
        self.keyring = ring;
        Ok(Rekeyed { kept, dropped })
    }

    /// Removes the slots of `users` (their password no longer opens this store) and forgets
    /// their wrapping keys; with `rekey`, changes the store key too, so an old copy of the key
    /// file opens nothing either.
    pub(crate) fn remove_slots(&mut self, users: &[String], rekey: bool) -> Result<(), StoreError> {
        if users.is_empty() {
            return Ok(());
        }
        let mut ring = Keyring::load(&self.path)?;
        for u in users {
            ring.remove_user(u);
            self.conn
                .execute("DELETE FROM slot_keys WHERE slot = ?1", [u])?;
        }
        ring.save()?;
        self.keyring = ring;
        if rekey {
            self.rekey_now()?;
        }
        Ok(())
    }
}
