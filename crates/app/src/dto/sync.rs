//! The Sync page: status, conflicts with their values, progress events and the result of a sync.

use serde::Serialize;
use ts_rs::TS;

/// Where this laptop stands with the server (the Sync page and the header badge).
#[derive(Debug, Clone, Serialize, TS)]
pub struct SyncStatusDto {
    /// Enrolled with a server.
    pub enrolled: bool,
    /// The server's address.
    pub server: Option<String>,
    /// This laptop's device id: the administrator makes its enrolment code for it.
    pub device: String,
    /// The site CA certificate file the sync trusts (none: public CAs).
    pub ca_file: Option<String>,
    /// When the last sync finished without error (UTC), if ever.
    pub last_success: Option<String>,
    /// This laptop's changes the server does not hold yet.
    pub waiting: u32,
    /// Items two devices changed without seeing each other's value.
    pub conflicts: Vec<ConflictDto>,
    /// The session may enrol the laptop (administrator).
    pub may_enrol: bool,
    /// The session may resolve conflicts (whoever may change data: the value chosen is a
    /// correction with a reason, like any other).
    pub may_resolve: bool,
    /// A newer release of the app the server offers (its own release is newer than this
    /// app's): ask IT to install it.
    pub update: Option<String>,
}

/// Every event the shell sends the UI: its name and its payload's TypeScript type
/// (`ui/src/commands.ts` gets one typed listener per entry).
pub const EVENTS: [(&str, TsName); 1] = [(SYNC_PROGRESS, || {
    SyncProgressDto::name(&ts_rs::Config::new())
})];

/// A payload's TypeScript type name.
pub type TsName = fn() -> String;

/// A sync's page moved: the payload is a [`SyncProgressDto`].
pub const SYNC_PROGRESS: &str = "sync-progress";

/// An item in conflict, with every value kept.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ConflictDto {
    /// Subject.
    pub subject: String,
    /// Form instance.
    pub form: String,
    /// Item.
    pub item: String,
    /// The values, each with who wrote it where and when.
    pub values: Vec<ConflictValueDto>,
}

/// One value of an item in conflict.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ConflictValueDto {
    /// The value as shown and as typed back to choose it (none: cleared).
    pub value: Option<String>,
    /// Who wrote it.
    pub user: String,
    /// On which device.
    pub device: String,
    /// When (UTC).
    pub utc: String,
}

/// Where a running sync is (sent to the window as `sync-progress` events).
#[derive(Debug, Clone, Copy, Serialize, TS)]
pub struct SyncProgressDto {
    /// Own changes the server holds now.
    pub sent: u32,
    /// Own changes to send in all.
    pub to_send: u32,
    /// Changes received so far.
    pub received: u32,
}

/// What a sync did.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SyncDone {
    /// Own changes the server stored.
    pub sent: u32,
    /// Other devices' changes applied here.
    pub received: u32,
    /// Items in conflict after the sync.
    pub conflicts: u32,
    /// What the server flagged (this laptop's clock off, an event dated before what it changes,
    /// a change held back under a lock), in the server's words.
    pub flags: Vec<String>,
    /// Changes held back under a lock, for the data manager.
    pub held: u32,
    /// When it finished (UTC).
    pub finished: String,
}

/// Sealed envelopes on this laptop (counts only: an unopened envelope's arm is never shown).
#[derive(Debug, Clone, Serialize, TS)]
pub struct EnvelopesDto {
    /// The session may load a lease from the server (administrator).
    pub may_load: bool,
    /// Enrolled with a server (a lease comes from there).
    pub enrolled: bool,
    /// Per stratum: sealed and opened envelopes.
    pub strata: Vec<EnvelopeCountDto>,
}

/// Sealed and opened envelopes of one stratum on this laptop.
#[derive(Debug, Clone, Serialize, TS)]
pub struct EnvelopeCountDto {
    /// Stratum key (the site code today).
    pub stratum: String,
    /// Still sealed.
    pub sealed: u32,
    /// Opened.
    pub opened: u32,
}
