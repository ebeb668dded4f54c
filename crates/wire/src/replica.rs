//! What one sync needs of a device's store: its identity, the settings enrolment keeps, its own
//! changes to push, and applying pulled pages atomically with their cursor.
//!
//! Invariants an implementation keeps: [`Replica::apply_pulled`] applies whole pages and the
//! cursor after them in one transaction or nothing of them; a change already held is skipped; the pushed
//! mark and the pull cursor only move forward.

use ecrf_log::{Change, HashChecked};

/// A device's store as the sync client drives it.
pub trait Replica {
    /// Why the store refused.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The site the store belongs to.
    fn site(&self) -> &str;
    /// This device's id.
    fn device_id(&self) -> &str;
    /// This device's X25519 public key (hex), registered at enrolment: the server seals the
    /// envelopes it leases to this device with it.
    fn sealing_key(&self) -> Result<String, Self::Error>;
    /// The active users this store had when it is enrolled, with their public keys (the
    /// server registers them once).
    fn enrolment_users(&self) -> Result<Vec<crate::wire::EnrolUser>, Self::Error>;
    /// Makes the device slot that lets a registered user log in here the first time (the
    /// store key wrapped by a new random secret); returns the secret (64 hex digits) for the
    /// enrolment request.
    fn new_device_slot(&self, server: &str, ca_pem: Option<&str>) -> Result<String, Self::Error>;
    /// A setting of the sync client (server address, token, CA), if set.
    fn sync_setting(&self, name: &str) -> Result<Option<String>, Self::Error>;
    /// Keeps a setting of the sync client.
    fn set_sync_setting(&self, name: &str, value: &str) -> Result<(), Self::Error>;
    /// How many of this device's changes come after `device_seq` (to push).
    fn own_change_count_after(&self, device_seq: i64) -> Result<usize, Self::Error>;
    /// This device's changes after `device_seq`, at most `limit`, in `device_seq` order.
    fn own_changes_after(&self, device_seq: i64, limit: usize) -> Result<Vec<Change>, Self::Error>;
    /// The server holds this device's changes up to `device_seq`.
    fn set_pushed(&self, device_seq: i64) -> Result<(), Self::Error>;
    /// This device's change the server last acknowledged (`device_seq`, its hash now), if any:
    /// stated at each sync, so the server can tell a history rewritten since.
    fn pushed_head(&self) -> Result<Option<(i64, String)>, Self::Error>;
    /// Keeps a receipt the server signed (checked by the client against the pinned key).
    fn keep_receipt(&self, receipt: &crate::wire::Receipt) -> Result<(), Self::Error>;
    /// The pull cursor: the server's position after the last page applied.
    fn pulled(&self) -> Result<i64, Self::Error>;
    /// Applies pulled pages (one, or several in a row), hashes checked, and the cursor after
    /// the last in one transaction; returns how many changes were new here.
    fn apply_pulled(&mut self, pages: HashChecked, cursor: i64) -> Result<usize, Self::Error>;
    /// Items in conflict now.
    fn conflict_count(&self) -> Result<usize, Self::Error>;
    /// Changes held back by a lock now.
    fn held_count(&self) -> Result<usize, Self::Error>;
    /// Records a sync that ended without error, at `utc`.
    fn set_sync_success(&self, utc: &str) -> Result<(), Self::Error>;
}
