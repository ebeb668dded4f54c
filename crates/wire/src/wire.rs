//! What travels between a device and the server, with the limits every body is held to.
//!
//! Owns the JSON shapes of the API (`/api/v1/…`) and their validation. Invariants: a change
//! travels as the one [`Change`] record (its local `seq` never travels), byte for byte, so its
//! hash checks on every replica; a kind this version does not know is refused at parsing;
//! every text has a length limit and every list a page limit; unknown fields are refused;
//! parsing never panics, whatever the bytes.

use ecrf_log::Change;
use serde::{Deserialize, Serialize};

/// Largest request or reply body accepted (bytes).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Most changes in one push or pull page.
pub const MAX_PAGE: usize = 1000;
/// How a push's refusal (409) of a change that does not continue the device's chain the server
/// holds (a gap, or another branch) ends: the one refusal after which a laptop that sent a
/// page before the page it follows was acknowledged sends it again (`ecrf_sync`).
pub const NOT_FOLLOWING: &str = "the server holds of this device";
/// Longest value (JSON of a value, a lease's envelopes, a list of replaced ids), in bytes.
pub const MAX_VALUE_BYTES: usize = 256 * 1024;
/// Longest short text (ids, names, item codes), in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest reason for a change, in bytes.
pub const MAX_REASON_BYTES: usize = 4096;

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

/// Checks a change's every field, its shape and limit, and that its hash is the hash of its
/// content. `at` names the change in messages (`changes[3]`).
pub fn validate_change(c: &Change, at: &str) -> Result<(), Invalid> {
    check_change(c, &|| at.to_string())
}

/// [`validate_change`] with the change's name made only for a message: a pulled page checks
/// 1,000 changes of twenty fields, nearly always valid.
fn check_change(c: &Change, at: &dyn Fn() -> String) -> Result<(), Invalid> {
    check_fields(c, at)?;
    if !c.hash_holds() {
        return Err(invalid(
            format!("{}.hash", at()),
            "is not the SHA-256 of the change's content (altered or damaged)",
        ));
    }
    Ok(())
}

/// A change's fields, their shapes and limits; not its hash.
fn check_fields(c: &Change, at: &dyn Fn() -> String) -> Result<(), Invalid> {
    let f = |name: &str| format!("{}.{name}", at());
    let name = |field: &str, v: &str| name_rule(v).map_err(|rule| invalid(f(field), rule));
    name("change_id", &c.change_id)?;
    name("device", &c.device)?;
    if c.device_seq < 1 {
        return Err(invalid(f("device_seq"), "must be 1 or more"));
    }
    let names = [
        ("subject", &c.subject),
        ("form", &c.form),
        ("item", &c.item),
    ];
    for (field, v) in names.iter().filter_map(|(n, v)| v.as_ref().map(|v| (n, v))) {
        name(field, v)?;
    }
    for (field, v) in [
        ("old_value", &c.old_value),
        ("new_value", &c.new_value),
        ("warning", &c.warning),
        ("base", &c.base),
    ] {
        if v.as_ref().is_some_and(|v| v.len() > MAX_VALUE_BYTES) {
            return Err(invalid(
                f(field),
                format!("longer than {MAX_VALUE_BYTES} bytes"),
            ));
        }
    }
    name("user", &c.user)?;
    name("role", &c.role)?;
    name("utc", &c.utc)?;
    name("local_offset", &c.local_offset)?;
    if c.reason
        .as_ref()
        .is_some_and(|r| r.len() > MAX_REASON_BYTES)
    {
        return Err(invalid(
            f("reason"),
            format!("longer than {MAX_REASON_BYTES} bytes"),
        ));
    }
    for (field, v) in [("prev_hash", &c.prev_hash), ("hash", &c.hash)] {
        if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(f(field), "must be 64 hexadecimal digits"));
        }
    }
    Ok(())
}

fn check_name(field: &str, v: &str) -> Result<(), Invalid> {
    name_rule(v).map_err(|rule| invalid(field, rule))
}

/// A name's rule: 1 to [`MAX_NAME_BYTES`] bytes, no control character.
fn name_rule(v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > MAX_NAME_BYTES {
        return Err(format!("must be 1 to {MAX_NAME_BYTES} bytes"));
    }
    if v.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
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
    /// The device's X25519 public key (64 hex digits): leases are sealed to it. A device
    /// enrolled without one (an older app) receives no lease until it enrols again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealing_key: Option<String>,
    /// The active users the laptop had when it was enrolled (made there before it had a
    /// server): registered once in the server's user registry, or checked against it.
    #[serde(default)]
    pub users: Vec<EnrolUser>,
    /// How many changes the laptop had made when it enrolled: its user changes up to there are
    /// history; later ones are refused (users change only on the server).
    #[serde(default)]
    pub head_seq: i64,
    /// A random secret (64 hex digits) that wraps the store key in the laptop's device slot;
    /// the server gives it back only at a registered user's first login there, after checking
    /// their password. Useless without the laptop's own files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlock_secret: Option<String>,
}

/// `POST /api/v1/login`: a registered user's first login on an enrolled laptop (no token:
/// the laptop's store is closed until then; rate-limited like enrolment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The laptop's device id.
    pub device: String,
    /// Its site.
    pub site: String,
    /// User name.
    pub username: String,
    /// Password, checked against the registry's verifier; never kept.
    pub password: String,
}

impl LoginRequest {
    /// Shapes and limits.
    pub fn validate(&self) -> Result<(), Invalid> {
        check_name("device", &self.device)?;
        check_name("site", &self.site)?;
        check_name("username", &self.username)?;
        if self.password.is_empty() || self.password.len() > 1024 {
            return Err(invalid("password", "must be 1 to 1024 bytes"));
        }
        Ok(())
    }
}

/// What a first login needs: who the user is, their escrowed signing key, and the secret that
/// opens the laptop's device slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginReply {
    /// Full name.
    pub name: String,
    /// Current role.
    pub role: String,
    /// The signing key wrapped by the password (`ecrf_identity` escrow text).
    pub escrow: String,
    /// The device's unlock secret (64 hex digits).
    pub unlock_secret: String,
}

/// Most users one enrolment may register.
pub const MAX_ENROL_USERS: usize = 200;

/// A user a laptop had before it was enrolled, with their public signing keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolUser {
    /// User name.
    pub username: String,
    /// Full name.
    pub name: String,
    /// Role (`nurse`, `admin`…).
    pub role: String,
    /// Public keys (64 hex digits each) their slot on this laptop signs with.
    pub public_keys: Vec<String>,
}

impl EnrolRequest {
    /// Shapes and limits.
    pub fn validate(&self) -> Result<(), Invalid> {
        check_name("code", &self.code)?;
        check_name("device", &self.device)?;
        check_name("site", &self.site)?;
        if let Some(k) = &self.sealing_key {
            check_hex32("sealing_key", k)?;
        }
        if let Some(k) = &self.unlock_secret {
            check_hex32("unlock_secret", k)?;
        }
        if self.head_seq < 0 {
            return Err(invalid("head_seq", "must be 0 or more"));
        }
        if self.users.len() > MAX_ENROL_USERS {
            return Err(invalid("users", format!("at most {MAX_ENROL_USERS} users")));
        }
        for (i, u) in self.users.iter().enumerate() {
            check_name(&format!("users[{i}].username"), &u.username)?;
            check_name(&format!("users[{i}].name"), &u.name)?;
            if u.role.parse::<ecrf_core::Role>().is_err() {
                return Err(invalid(format!("users[{i}].role"), "must be a role"));
            }
            if u.public_keys.len() > 16 {
                return Err(invalid(
                    format!("users[{i}].public_keys"),
                    "at most 16 keys",
                ));
            }
            for (j, k) in u.public_keys.iter().enumerate() {
                check_hex32(&format!("users[{i}].public_keys[{j}]"), k)?;
            }
        }
        Ok(())
    }
}

fn check_hex32(field: &str, v: &str) -> Result<(), Invalid> {
    if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(field, "must be 64 hex digits"));
    }
    Ok(())
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
    /// The server's public signing key (64 hex digits), pinned by the laptop: it checks the
    /// server's own changes (held changes, the user registry's) and its receipts with it.
    pub server_key: String,
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
    pub changes: Vec<Change>,
}

/// A page of changes (pushed or pulled): its size and every change.
fn validate_page(changes: &[Change], hashes: bool) -> Result<(), Invalid> {
    if changes.len() > MAX_PAGE {
        return Err(invalid(
            "changes",
            format!("at most {MAX_PAGE} changes in one page"),
        ));
    }
    for (i, c) in changes.iter().enumerate() {
        let at = || format!("changes[{i}]");
        if hashes {
            check_change(c, &at)?;
        } else {
            check_fields(c, &at)?;
        }
    }
    Ok(())
}

impl PushRequest {
    /// Page size and every change.
    pub fn validate(&self) -> Result<(), Invalid> {
        validate_page(&self.changes, true)
    }

    /// The JSON of a push of `changes`, written from the page as it is: a client keeps its
    /// page to check the reply against, and a copy of 1,000 changes only to write them out
    /// cost as much as writing them.
    pub fn json_of(changes: &[Change]) -> Result<Vec<u8>, serde_json::Error> {
        #[derive(Serialize)]
        struct Borrowed<'a> {
            changes: &'a [Change],
        }
        serde_json::to_vec(&Borrowed { changes })
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
    /// The server's signed word that it holds this device's chain up to `acked` ending in that
    /// change's hash. `None` only from servers older than receipts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

/// The server vouches for a device's history: it holds the device's changes up to
/// `device_seq`, the last with `hash` (which, chained, covers every earlier one), as of `utc`.
/// Signed with the server's key, which the laptop pinned at enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The device.
    pub device: String,
    /// Its last change the server holds.
    pub device_seq: i64,
    /// That change's hash.
    pub hash: String,
    /// When the server said so (UTC, RFC 3339).
    pub utc: String,
    /// The server's Ed25519 signature over [`Receipt::message`] (128 hex digits).
    pub signature: String,
}

impl Receipt {
    /// What the signature signs: its own prefix, so a receipt is never taken for a change's
    /// signature, and every field, `|`-separated (none of them may hold `|`).
    pub fn message(device: &str, device_seq: i64, hash: &str, utc: &str) -> Vec<u8> {
        format!("ecrf-receipt-v1|{device}|{device_seq}|{hash}|{utc}").into_bytes()
    }

    /// True when the receipt is signed by `server_key` (64 hex digits).
    pub fn verifies(&self, server_key: &str) -> bool {
        !self.device.contains('|')
            && !self.utc.contains('|')
            && ecrf_log::author::verifies(
                server_key,
                &Receipt::message(&self.device, self.device_seq, &self.hash, &self.utc),
                &self.signature,
            )
    }
}

/// Header of `GET /api/v1/device`: `<device_seq>:<hash>` of the device's own change the
/// laptop last knew pushed. The server compares it with its copy: a laptop whose history was
/// rewritten after it was pushed is refused (409) and flagged.
pub const HISTORY_HEADER: &str = "x-ecrf-history";

/// A page of the site's changes from other devices, in server order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullReply {
    /// At most [`MAX_PAGE`].
    pub changes: Vec<Change>,
    /// The cursor to ask from next.
    pub cursor: i64,
    /// More changes wait after this page.
    pub more: bool,
    /// The server's release (the workspace version it was built as): a laptop whose app is
    /// older tells its user a newer version is offered (IT installs the package of the same
    /// release).
    #[serde(default)]
    pub server_version: Option<String>,
}

impl PullReply {
    /// Page size and every change's fields, not their hashes: the client checks those once, on
    /// the thread that pulls, into an [`ecrf_log::HashChecked`] the store takes as it is
    /// (`ecrf_sync::guard::check_pull_reply`).
    pub fn validate_fields(&self) -> Result<(), Invalid> {
        validate_page(&self.changes, false)
    }
}

/// The reply of `POST /api/v1/sites/{site}/sync` (a device's standing, its page pushed, the
/// first page pulled, in one request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncReply {
    /// As `GET /api/v1/device` answers.
    pub device: DeviceReply,
    /// As `POST …/changes` answers; `None` when nothing was sent or what was sent does not
    /// follow what the server holds (`device.acked` says where to push from).
    pub push: Option<PushReply>,
    /// As `GET …/changes` answers.
    pub pull: PullReply,
}

/// A device asks for whole blocks of its site's allocation list as sealed envelopes, for
/// randomizing offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// How many blocks (1 to [`MAX_LEASE_BLOCKS`]).
    pub blocks: u32,
    /// The administrator asking (logged in on the device): the server leases only to a user
    /// its registry holds as an active administrator of the site now.
    pub administrator: String,
    /// When the request was signed (UTC, RFC 3339): the server takes it within
    /// [`MAX_CLOCK_SKEW_SECONDS`] of its own clock.
    #[serde(default)]
    pub utc: String,
    /// The administrator's signature over [`LeaseRequest::message`] (128 hex digits).
    #[serde(default)]
    pub signature: String,
}

/// Most blocks leased in one request.
pub const MAX_LEASE_BLOCKS: u32 = 20;

impl LeaseRequest {
    /// What the administrator signs: the device, site, blocks, their name and the time.
    pub fn message(
        device: &str,
        site: &str,
        blocks: u32,
        administrator: &str,
        utc: &str,
    ) -> Vec<u8> {
        format!("ecrf-lease-request-v1|{device}|{site}|{blocks}|{administrator}|{utc}").into_bytes()
    }

    /// Limits.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.utc.len() > 40 || self.utc.contains('|') {
            return Err(invalid("utc", "must be a UTC time in RFC 3339"));
        }
        if self.signature.len() > 128 {
            return Err(invalid("signature", "must be 128 hex digits"));
        }
        if !(1..=MAX_LEASE_BLOCKS).contains(&self.blocks) {
            return Err(invalid(
                "blocks",
                format!("must be 1 to {MAX_LEASE_BLOCKS}"),
            ));
        }
        check_name("administrator", &self.administrator)
    }
}

/// `POST /api/v1/sites/{site}/users`: a laptop's administrator, online, creates a user of the
/// site in the server's registry (what `ecrf server user add` does on the server). The laptop
/// made the credentials from the password typed there; the request is signed with the
/// administrator's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRequest {
    /// Login name of the new user.
    pub username: String,
    /// Full name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Password verifier (`ecrf_identity`).
    pub verifier: String,
    /// Escrowed signing key (`ecrf_identity`).
    pub escrow: String,
    /// The signing key's public half (64 hex digits).
    pub public_key: String,
    /// The administrator asking, logged in on the laptop.
    pub administrator: String,
    /// When it was signed (UTC, RFC 3339).
    pub utc: String,
    /// The administrator's signature over [`UserRequest::message`].
    pub signature: String,
}

impl UserRequest {
    /// What the administrator signs.
    pub fn message(&self, device: &str, site: &str) -> Vec<u8> {
        format!(
            "ecrf-user-request-v1|{device}|{site}|{}|{}|{}|{}|{}|{}",
            self.username, self.role, self.public_key, self.administrator, self.utc, self.name
        )
        .into_bytes()
    }

    /// Shapes and limits.
    pub fn validate(&self) -> Result<(), Invalid> {
        check_name("username", &self.username)?;
        check_name("administrator", &self.administrator)?;
        if self.name.len() > 200 || self.name.chars().any(char::is_control) {
            return Err(invalid("name", "at most 200 bytes, no control characters"));
        }
        if self.role.parse::<ecrf_core::Role>().is_err() {
            return Err(invalid("role", "must be a role"));
        }
        check_hex32("public_key", &self.public_key)?;
        for (field, v) in [("verifier", &self.verifier), ("escrow", &self.escrow)] {
            if v.is_empty() || v.len() > 2048 {
                return Err(invalid(field, "must be 1 to 2048 bytes"));
            }
        }
        if self.utc.len() > 40 || self.signature.len() > 128 {
            return Err(invalid(
                "signature",
                "must be 128 hex digits with a UTC time",
            ));
        }
        Ok(())
    }
}

/// The leased envelopes, sealed to the device's key (`Store::load_sealed_lease`): each shows
/// its id, place and commitment; its arm opens only with the device's secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseReply {
    /// The sealed lease.
    pub lease: ecrf_randomize::SealedLease,
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

/// A slot of the server's allocation list, taken online for one subject (its arm is known
/// only because it is being opened now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSlot {
    /// Envelope id, `01-E0007`.
    pub envelope: String,
    /// Stratum key.
    pub stratum: String,
    /// Position in the stratum's list.
    pub seq: u32,
    /// Arm code.
    pub arm: String,
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
