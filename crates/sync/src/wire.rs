//! What travels between a device and the server, with the limits every body is held to.
//!
//! Owns the JSON shapes of the API (`/api/v1/…`) and their validation. Invariants: a
//! [`WireChange`] is a [`Change`] without the local `seq`, byte for byte otherwise (so its hash
//! checks on every replica); every text has a length limit and every list a page limit; unknown
//! fields are refused; parsing never panics, whatever the bytes.

use ecrf_store::Change;
use ecrf_store::log::kind;
use ecrf_store::oversight::kind as ov;
use serde::{Deserialize, Serialize};

/// Largest request or reply body accepted (bytes).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Most changes in one push or pull page.
pub const MAX_PAGE: usize = 1000;
/// Longest value (JSON of a value, a lease's envelopes, a list of replaced ids), in bytes.
pub const MAX_VALUE_BYTES: usize = 256 * 1024;
/// Longest short text (ids, names, item codes), in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest reason for a change, in bytes.
pub const MAX_REASON_BYTES: usize = 4096;

/// Kinds of change that travel (what each needs of its author's role is
/// [`ecrf_store::log::permission`]).
pub const KINDS: &[&str] = &[
    kind::STORE_CREATED,
    kind::USER_ADDED,
    kind::SUBJECT_CREATED,
    kind::ITEM_SET,
    kind::LEASE_LOADED,
    kind::RANDOMIZED,
    kind::DATA_EXPORTED,
    ecrf_store::login_audit::LOGIN_FAILED,
    ov::QUERY_RAISED,
    ov::QUERY_ANSWERED,
    ov::QUERY_CLOSED,
    ov::QUERY_REOPENED,
    ov::SDV_MARKED,
    ov::SIGNED,
    ov::LOCKED,
    ov::UNLOCKED,
    ov::USER_ROLE,
    ov::USER_DEACTIVATED,
    ov::PASSWORD_RESET,
    ov::PASSWORD_CHANGED,
    ov::LOCK_HELD,
];

/// Request header with the device's clock (UTC, RFC 3339) when it asks where it stands, so
/// the server can flag a clock that is off.
pub const DEVICE_TIME_HEADER: &str = "x-ecrf-device-time";
/// How far a device's clock may be off the server's before it is flagged (seconds).
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 5 * 60;

/// A body that breaks a rule, naming the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct Invalid {
    /// Where, like `changes[3].hash`.
    pub field: String,
    /// What is wrong.
    pub rule: String,
}

fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        rule: rule.into(),
    }
}

/// One change on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct WireChange {
    pub change_id: String,
    pub device: String,
    pub device_seq: i64,
    pub kind: String,
    pub subject: Option<String>,
    pub form: Option<String>,
    pub item: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub user: String,
    pub role: String,
    pub utc: String,
    pub local_offset: String,
    pub reason: Option<String>,
    pub warning: Option<String>,
    pub prev_hash: String,
    pub hash: String,
    #[serde(default)]
    pub base: Option<String>,
}

impl From<&Change> for WireChange {
    fn from(c: &Change) -> Self {
        WireChange {
            change_id: c.change_id.clone(),
            device: c.device.clone(),
            device_seq: c.device_seq,
            kind: c.kind.clone(),
            subject: c.subject.clone(),
            form: c.form.clone(),
            item: c.item.clone(),
            old_value: c.old_value.clone(),
            new_value: c.new_value.clone(),
            user: c.user.clone(),
            role: c.role.clone(),
            utc: c.utc.clone(),
            local_offset: c.local_offset.clone(),
            reason: c.reason.clone(),
            warning: c.warning.clone(),
            prev_hash: c.prev_hash.clone(),
            hash: c.hash.clone(),
            base: c.base.clone(),
        }
    }
}

impl WireChange {
    /// The change as the store holds it (`seq` is given when appended).
    pub fn to_change(&self) -> Change {
        Change {
            seq: 0,
            change_id: self.change_id.clone(),
            device: self.device.clone(),
            device_seq: self.device_seq,
            kind: self.kind.clone(),
            subject: self.subject.clone(),
            form: self.form.clone(),
            item: self.item.clone(),
            old_value: self.old_value.clone(),
            new_value: self.new_value.clone(),
            user: self.user.clone(),
            role: self.role.clone(),
            utc: self.utc.clone(),
            local_offset: self.local_offset.clone(),
            reason: self.reason.clone(),
            warning: self.warning.clone(),
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
            base: self.base.clone(),
        }
    }

    /// Checks every field's shape and limit, and that the hash is the hash of the content.
    /// `at` names the change in messages (`changes[3]`).
    pub fn validate(&self, at: &str) -> Result<(), Invalid> {
        let f = |name: &str| format!("{at}.{name}");
        check_name(&f("change_id"), &self.change_id)?;
        check_name(&f("device"), &self.device)?;
        if self.device_seq < 1 {
            return Err(invalid(f("device_seq"), "must be 1 or more"));
        }
        if !KINDS.contains(&self.kind.as_str()) {
            return Err(invalid(
                f("kind"),
                format!("must be one of {}", KINDS.join(", ")),
            ));
        }
        let names = [
            ("subject", &self.subject),
            ("form", &self.form),
            ("item", &self.item),
        ];
        for (name, v) in names.iter().filter_map(|(n, v)| v.as_ref().map(|v| (n, v))) {
            check_name(&f(name), v)?;
        }
        for (name, v) in [
            ("old_value", &self.old_value),
            ("new_value", &self.new_value),
            ("warning", &self.warning),
            ("base", &self.base),
        ] {
            if v.as_ref().is_some_and(|v| v.len() > MAX_VALUE_BYTES) {
                return Err(invalid(
                    f(name),
                    format!("longer than {MAX_VALUE_BYTES} bytes"),
                ));
            }
        }
        check_name(&f("user"), &self.user)?;
        check_name(&f("role"), &self.role)?;
        check_name(&f("utc"), &self.utc)?;
        check_name(&f("local_offset"), &self.local_offset)?;
        if self
            .reason
            .as_ref()
            .is_some_and(|r| r.len() > MAX_REASON_BYTES)
        {
            return Err(invalid(
                f("reason"),
                format!("longer than {MAX_REASON_BYTES} bytes"),
            ));
        }
        for (name, v) in [("prev_hash", &self.prev_hash), ("hash", &self.hash)] {
            if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(f(name), "must be 64 hexadecimal digits"));
            }
        }
        if self.to_change().compute_hash() != self.hash {
            return Err(invalid(
                f("hash"),
                "is not the SHA-256 of the change's content (altered or damaged)",
            ));
        }
        Ok(())
    }
}

fn check_name(field: &str, v: &str) -> Result<(), Invalid> {
    if v.is_empty() || v.len() > MAX_NAME_BYTES {
        return Err(invalid(
            field,
            format!("must be 1 to {MAX_NAME_BYTES} bytes"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// A device asks to join a site with a one-time code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The one-time enrolment code an administrator made.
    pub code: String,
    /// The device's id (made when its store was created).
    pub device: String,
    /// The site code its store was created for.
    pub site: String,
}

impl EnrolRequest {
    /// Shapes and limits.
    pub fn validate(&self) -> Result<(), Invalid> {
        check_name("code", &self.code)?;
        check_name("device", &self.device)?;
        check_name("site", &self.site)
    }
}

/// What an enrolled device keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolReply {
    /// Device id.
    pub device: String,
    /// Site code.
    pub site: String,
    /// Secret token for every later request (the server keeps only its hash).
    pub token: String,
    /// Prefix of the subject numbers this device gives (`D2` → `01-D2-0001`).
    pub subject_prefix: String,
}

/// Where the server stands with the calling device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceReply {
    /// Device id.
    pub device: String,
    /// Site code.
    pub site: String,
    /// This device's last `device_seq` the server holds.
    pub acked: i64,
    /// The device's clock minus the server's, in seconds, when the request stated it.
    #[serde(default)]
    pub clock_offset_seconds: Option<i64>,
    /// Set when the device's clock is more than [`MAX_CLOCK_SKEW_SECONDS`] off (the server
    /// records it too): words to show the user.
    #[serde(default)]
    pub clock_flag: Option<String>,
}

/// A page of this device's changes, in `device_seq` order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// At most [`MAX_PAGE`].
    pub changes: Vec<WireChange>,
}

/// A page of changes (pushed or pulled): its size and every change.
fn validate_page(changes: &[WireChange]) -> Result<(), Invalid> {
    if changes.len() > MAX_PAGE {
        return Err(invalid(
            "changes",
            format!("at most {MAX_PAGE} changes in one page"),
        ));
    }
    for (i, c) in changes.iter().enumerate() {
        c.validate(&format!("changes[{i}]"))?;
    }
    Ok(())
}

impl PushRequest {
    /// Page size and every change.
    pub fn validate(&self) -> Result<(), Invalid> {
        validate_page(&self.changes)
    }
}

/// What the server holds after a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushReply {
    /// This device's last `device_seq` the server holds.
    pub acked: i64,
    /// Changes stored by this push (replays are not counted).
    pub stored: usize,
    /// What the server flagged in the changes it stored (e.g. an event dated before the change
    /// it modifies); each also recorded on the server.
    #[serde(default)]
    pub flags: Vec<String>,
}

/// A page of the site's changes from other devices, in server order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullReply {
    /// At most [`MAX_PAGE`].
    pub changes: Vec<WireChange>,
    /// The cursor to ask from next.
    pub cursor: i64,
    /// More changes wait after this page.
    pub more: bool,
}

impl PullReply {
    /// Page size and every change.
    pub fn validate(&self) -> Result<(), Invalid> {
        validate_page(&self.changes)
    }
}

/// A device asks for whole blocks of its site's allocation list as sealed envelopes, for
/// randomizing offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// How many blocks (1 to [`MAX_LEASE_BLOCKS`]).
    pub blocks: u32,
}

/// Most blocks leased in one request.
pub const MAX_LEASE_BLOCKS: u32 = 20;

impl LeaseRequest {
    /// Limits.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !(1..=MAX_LEASE_BLOCKS).contains(&self.blocks) {
            return Err(invalid(
                "blocks",
                format!("must be 1 to {MAX_LEASE_BLOCKS}"),
            ));
        }
        Ok(())
    }
}

/// The leased envelopes, as the lease CSV a device loads (`Store::load_lease`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseReply {
    /// CSV: stratum,seq,block,block_size,arm.
    pub lease_csv: String,
    /// Envelopes in it.
    pub envelopes: usize,
}

/// A device randomizing online asks the server for the next slot of the site's list for a
/// subject. Asking again for the same subject gives the same slot (a retry after a cut).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotRequest {
    /// The subject (of the device's site).
    pub subject: String,
}

impl SlotRequest {
    /// Shapes and limits.
    pub fn validate(&self) -> Result<(), Invalid> {
        check_name("subject", &self.subject)
    }
}

/// Every refusal: the reason in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// Why.
    pub error: String,
}

/// Parses a JSON body of at most [`MAX_BODY_BYTES`]; never panics.
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Invalid> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(invalid(
            "body",
            format!("larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| invalid("body", format!("not valid JSON here: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecrf_store::log::{Permission, permission};

    fn change(kind: &str, old: Option<&str>, new: Option<&str>) -> ecrf_store::Change {
        ecrf_store::Change {
            seq: 0,
            change_id: "c".into(),
            device: "d".into(),
            device_seq: 1,
            kind: kind.into(),
            subject: None,
            form: None,
            item: None,
            old_value: old.map(str::to_string),
            new_value: new.map(str::to_string),
            user: "u".into(),
            role: "nurse".into(),
            utc: "2026-03-01T00:00:00.000Z".into(),
            local_offset: "+08:00".into(),
            reason: None,
            warning: None,
            prev_hash: ecrf_store::log::GENESIS.into(),
            hash: String::new(),
            base: None,
        }
    }

    /// Every kind that travels has a rule on who may make it; only `lock.held` is the server's.
    #[test]
    fn every_kind_that_travels_has_a_permission() {
        for k in KINDS {
            let p = permission(&change(k, None, None));
            assert_ne!(p, Permission::Unknown, "{k}");
            assert_eq!(p == Permission::ServerOnly, *k == ov::LOCK_HELD, "{k}");
        }
        assert_eq!(
            permission(&change("made.up", None, None)),
            Permission::Unknown
        );
    }

    #[test]
    fn entering_changing_and_automatic_queries_map_to_their_actions() {
        use ecrf_core::Action;
        let set = |old| permission(&change(kind::ITEM_SET, old, Some("{\"int\":1}")));
        assert_eq!(set(None), Permission::Needs(Action::EnterData));
        assert_eq!(
            set(Some("{\"int\":2}")),
            Permission::Needs(Action::ChangeData)
        );
        let raise = |body: &str| permission(&change(ov::QUERY_RAISED, None, Some(body)));
        assert_eq!(
            raise(r#"{"query":"q","text":"why?"}"#),
            Permission::Needs(Action::RaiseQuery)
        );
        assert_eq!(
            raise(r#"{"query":"q","text":"Confirmed without a comment","auto":true}"#),
            Permission::Needs(Action::EnterData)
        );
        assert_eq!(
            permission(&change(ov::LOCKED, None, None)),
            Permission::Needs(Action::Lock)
        );
    }
}
