//! The server's rules: every decision that needs no database, as pure functions over what the
//! handlers read. Who may push what (the permission table, own device, own site), whether an
//! enrolment code is good, where a pushed change fits in its device's chain, whether an
//! envelope was the device's to open, what a lock holds back, whether a change is dated before
//! the one it replaces, a pull's page and cursor, a device clock's offset.
//!
//! Invariants: nothing here reads or writes the database, the clock or the network (the
//! handlers pass the time in), so each rule is tested below without PostgreSQL; a refusal is a
//! [`Refusal`] whose kind the API maps to its status (401, 403, 409, 400) and whose text it sends
//! unchanged.

use ecrf_core::lock::{LockScope, Locks};
use ecrf_log::author::AuthorKeys;
use ecrf_log::body::Body;
use ecrf_log::{Change, ChangeKind, Permission, permission};

/// Why a request is refused; the API gives each kind its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a known, valid credential (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Known, but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// Disagrees with what the server holds (409).
    #[error("{0}")]
    Conflict(String),
    /// A bad request (400).
    #[error("{0}")]
    Invalid(String),
}

/// A device acts only on its own site.
pub fn own_site(device_site: &str, site: &str) -> Result<(), Refusal> {
    if device_site != site {
        return Err(Refusal::Forbidden(format!(
            "this device belongs to site {device_site}, not site {site}"
        )));
    }
    Ok(())
}

/// A subject number belongs to a site when it starts with the site's code and a dash (`01-…`).
pub fn of_site(subject: &str, site: &str) -> bool {
    subject
        .strip_prefix(site)
        .is_some_and(|rest| rest.starts_with('-'))
}

/// An enrolment code as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolCode {
    /// The site it enrols a device with.
    pub site: String,
    /// The one device id it may enrol (`None`: a code made before codes named their device).
    pub device: Option<String>,
    /// Spent already.
    pub used: bool,
    /// Past its expiry.
    pub expired: bool,
}

/// A code enrols a device once, before it expires, only with the site the laptop's store was
/// made for (`asked`), and only the device it was made for (`device`). `None` is a code the
/// server does not know.
pub fn enrol_code(code: Option<&EnrolCode>, asked: &str, device: &str) -> Result<(), Refusal> {
    let code = code.ok_or_else(|| Refusal::Unauthorized("unknown enrolment code".into()))?;
    if code.used {
        return Err(Refusal::Unauthorized(
            "this enrolment code was used already; ask for a new one".into(),
        ));
    }
    if code.expired {
        return Err(Refusal::Unauthorized(
            "this enrolment code has expired; ask for a new one".into(),
        ));
    }
    if code.site != asked {
        return Err(Refusal::Forbidden(format!(
            "this code is for site {}, but this laptop's store was made for site {asked}",
            code.site
        )));
    }
    match &code.device {
        Some(d) if d == device => Ok(()),
        Some(d) => Err(Refusal::Forbidden(format!(
            "this code was made for device {d}, not for this device {device}; ask for a code \
             for this device"
        ))),
        None => Err(Refusal::Unauthorized(
            "this enrolment code names no device (made before codes did); ask for a new one".into(),
        )),
    }
}

/// Device ids the server keeps for itself: its own chain at each site is `server-<site>`.
pub const RESERVED_DEVICE_PREFIX: &str = "server-";

/// A device id a code may be made for and a laptop may enrol as: not reserved.
pub fn new_device_id(device: &str) -> Result<(), Refusal> {
    if device
        .get(..RESERVED_DEVICE_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_DEVICE_PREFIX))
    {
        return Err(Refusal::Forbidden(format!(
            "device id {device:?}: ids starting with {RESERVED_DEVICE_PREFIX:?} are the \
             server's own"
        )));
    }
    Ok(())
}

/// Refuses a page holding a change its author's role may not make (the permission table of
/// `ecrf-core`, through [`ecrf_log::permission`]), naming the change and the rule.
pub fn permissions(changes: &[Change]) -> Result<(), Refusal> {
    for (i, ch) in changes.iter().enumerate() {
        let forbidden = |rule: String| {
            Refusal::Forbidden(format!(
                "changes[{i}] (change {}, {}{} by {} as {}): {rule}; nothing of this push was \
                 stored",
                ch.change_id,
                ch.kind,
                [&ch.subject, &ch.form, &ch.item]
                    .into_iter()
                    .flatten()
                    .fold(String::new(), |acc, p| acc + " " + p),
                ch.user,
                ch.role
            ))
        };
        let role: ecrf_core::Role = ch.role.parse().map_err(|e: String| forbidden(e))?;
        match permission(ch) {
            Permission::Anyone => {}
            Permission::Needs(action) if role.may(action) => {}
            Permission::Needs(action) => {
                let roles: Vec<&str> = action.roles().iter().map(|r| r.as_str()).collect();
                return Err(forbidden(format!(
                    "the role {role} may not {action} (permission table: {action} is for {})",
                    roles.join(", ")
                )));
            }
            Permission::ServerOnly => {
                return Err(forbidden(
                    "only the server makes this kind of change".into(),
                ));
            }
        }
    }
    Ok(())
}

/// A laptop's own change `seq` has `hash` now; the server holds `held` there (`None` when it
/// holds none: nothing to compare). Words for the data manager when they differ: the laptop's
/// history was rewritten after it was pushed.
pub fn history(seq: i64, hash: &str, held: Option<&str>) -> Option<String> {
    match held {
        Some(h) if h != hash => Some(format!(
            "this laptop's change #{seq} has hash {hash} now, but the server holds hash {h} \
             for it since it was pushed: the laptop's history was rewritten after it was \
             synced; sync stopped, the coordinating centre is told"
        )),
        _ => None,
    }
}

/// True when some change creates or alters a user.
pub fn touches_users(changes: &[&Change]) -> bool {
    changes.iter().any(|c| c.kind.alters_users())
}

/// Users are created and changed on the server: a laptop's user changes are taken only as the
/// history it had when it enrolled (`enrolled`: its change count then; `None` for devices
/// enrolled before it was recorded). A user's own password change stays the laptop's.
pub fn user_changes_before_enrolment<'a>(
    changes: impl IntoIterator<Item = &'a Change>,
    enrolled: Option<i64>,
) -> Result<(), Refusal> {
    let Some(enrolled) = enrolled else {
        return Ok(());
    };
    for ch in changes {
        if ch.kind.alters_users() && ch.device_seq > enrolled {
            return Err(Refusal::Forbidden(format!(
                "{} by {} as {}: users are created and changed on the server only (ecrf \
                 server user …), not by a laptop; nothing of this push was stored",
                ch.describe(),
                ch.user,
                ch.role
            )));
        }
    }
    Ok(())
}

/// What the user registry holds of one user: their public keys and role history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registered {
    /// Public signing keys (64 hex digits).
    pub keys: Vec<String>,
    /// `(from_utc, role)` in time order; `from_utc` `""` = since before any change; role `""`
    /// = deactivated from then.
    pub roles: Vec<(String, String)>,
}

impl Registered {
    /// The role held at `utc` (`""` = deactivated), `None` before the first.
    pub fn role_at(&self, utc: &str) -> Option<&str> {
        self.roles
            .iter()
            .rev()
            .find(|(from, _)| from.as_str() <= utc)
            .map(|(_, role)| role.as_str())
    }
}

/// Every pushed change is signed by its author with a key the site's user registry holds for
/// them, and its author held its stated role at the change's time (`registry`: the registry's
/// entries of the page's authors).
pub fn authors<'a>(
    changes: impl IntoIterator<Item = &'a Change>,
    registry: &std::collections::HashMap<String, Registered>,
) -> Result<(), Refusal> {
    let changes: Vec<&Change> = changes.into_iter().collect();
    let keys: std::collections::HashMap<&str, AuthorKeys> = registry
        .iter()
        .map(|(user, reg)| (user.as_str(), AuthorKeys::parse(&reg.keys)))
        .collect();
    let signatures = signatures(&changes, &keys);
    for (ch, signature) in changes.iter().zip(signatures) {
        let forbidden = |rule: String| {
            Refusal::Forbidden(format!(
                "{} by {} as {}: {rule}; nothing of this push was stored",
                ch.describe(),
                ch.user,
                ch.role
            ))
        };
        let Some(reg) = registry.get(&ch.user) else {
            return Err(forbidden(format!(
                "{} is not in the site's user registry (users are made on the server: ecrf \
                 server user add)",
                ch.user
            )));
        };
        signature.map_err(|e| forbidden(e.rule()))?;
        match reg.role_at(&ch.utc) {
            Some(role) if role == ch.role => {}
            Some("") => {
                return Err(forbidden(format!(
                    "{} was deactivated at {}",
                    ch.user, ch.utc
                )));
            }
            Some(role) => {
                return Err(forbidden(format!(
                    "{} held the role {role}, not {}, at {}",
                    ch.user, ch.role, ch.utc
                )));
            }
            None => {
                return Err(forbidden(format!(
                    "{} held no role yet at {}",
                    ch.user, ch.utc
                )));
            }
        }
    }
    Ok(())
}

/// Each change's author signature checked against its author's keys (a change whose author
/// has no entry passes here: [`authors`] refuses it for that). Checking signatures is the
/// costliest step of a push that is not PostgreSQL's, and it is pure: a page is spread over the
/// machine's cores, each part checked as one batch ([`ecrf_log::author::check_many`]; a full
/// page took 16 ms checked one by one on two cores, under half that in two batches).
fn signatures(
    changes: &[&Change],
    keys: &std::collections::HashMap<&str, AuthorKeys>,
) -> Vec<Result<(), ecrf_log::AuthorError>> {
    let check =
        |chunk: &[&Change]| ecrf_log::author::check_many(chunk, |ch| keys.get(ch.user.as_str()));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    // Below this, starting threads costs more than it saves.
    const SPREAD_FROM: usize = 64;
    if threads < 2 || changes.len() < SPREAD_FROM {
        return check(changes);
    }
    let part = changes.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = changes
            .chunks(part)
            .map(|chunk| scope.spawn(move || check(chunk)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// A device pushes only its own changes, about subjects of its own site, and creates subjects
/// only there.
pub fn own_changes(changes: &[Change], device: &str, site: &str) -> Result<(), Refusal> {
    for (i, ch) in changes.iter().enumerate() {
        if ch.device != device {
            return Err(Refusal::Forbidden(format!(
                "changes[{i}].device: a device pushes only its own changes"
            )));
        }
        if let Some(subject) = &ch.subject
            && !of_site(subject, site)
        {
            return Err(Refusal::Forbidden(format!(
                "changes[{i}].subject: subject {subject} is not of site {site}"
            )));
        }
        if ch.kind == ChangeKind::SubjectCreated && ch.new_value.as_deref() != Some(site) {
            return Err(Refusal::Forbidden(format!(
                "changes[{i}].new_value: a subject of site {site} must be created there"
            )));
        }
    }
    Ok(())
}

/// Where a pushed change stands against the device's chain the server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// At or before the last change held: a replay, to compare with the change held there.
    Held,
    /// The next change of the chain: to store.
    Next,
}

/// Change `i` of a push continues the chain held up to `acked` (whose last hash is
/// `last_hash`), or is a replay; anything else (a gap, another branch) is refused.
pub fn link(i: usize, ch: &Change, acked: i64, last_hash: &str) -> Result<Link, Refusal> {
    if ch.device_seq <= acked {
        return Ok(Link::Held);
    }
    if ch.device_seq != acked + 1 || ch.prev_hash != last_hash {
        return Err(Refusal::Conflict(format!(
            "changes[{i}]: change #{} does not follow change #{acked} {}",
            ch.device_seq,
            ecrf_wire::wire::NOT_FOLLOWING
        )));
    }
    Ok(Link::Next)
}

/// A replayed change must be the very change held at its place (`held`: that change's hash).
pub fn replay(i: usize, ch: &Change, held: Option<&str>) -> Result<(), Refusal> {
    if held != Some(ch.hash.as_str()) {
        return Err(Refusal::Conflict(format!(
            "changes[{i}]: the server holds another change #{} of this device",
            ch.device_seq
        )));
    }
    Ok(())
}

/// A lease takes whole free blocks only: fewer than asked is refused, not a smaller lease.
pub fn enough_blocks(found: usize, asked: u32, site: &str) -> Result<(), Refusal> {
    if (found as u64) < u64::from(asked) {
        return Err(Refusal::Conflict(format!(
            "blocks: the server has {found} whole free blocks for site {site}, not {asked}"
        )));
    }
    Ok(())
}

/// An online slot is asked for a subject of the device's own site.
pub fn slot_subject(subject: &str, site: &str) -> Result<(), Refusal> {
    if !of_site(subject, site) {
        return Err(Refusal::Forbidden(format!(
            "subject: subject {subject} is not of site {site}"
        )));
    }
    Ok(())
}

/// A subject randomized online already gets its slot again, but only on the device that opened
/// it (`holder`).
pub fn same_slot(
    subject: &str,
    envelope: &str,
    holder: Option<&str>,
    device: &str,
) -> Result<(), Refusal> {
    if holder != Some(device) {
        return Err(Refusal::Forbidden(format!(
            "subject: {subject} was randomized on another device, with envelope {envelope}"
        )));
    }
    Ok(())
}

/// A slot of the server's list as a pushed opening finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotState<'a> {
    /// `free`, `leased`, `opened` or `withdrawn`.
    pub state: &'a str,
    /// The device it is leased to or was opened on.
    pub holder: Option<&'a str>,
    /// The subject it was opened for.
    pub subject: Option<&'a str>,
}

/// What the server does with a pushed opening of a slot it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// Leased to this device and opened from its lease: mark it opened.
    Mark,
    /// Already opened by this device for this subject (online, or a replay): nothing to do.
    Agrees,
    /// Not this device's to open: keep the change, flag it for review.
    Flag,
}

/// Whether `device` could open `slot` for `subject` (`online`: the change says the slot came
/// from the server, which opened it then).
pub fn opening(slot: &SlotState, device: &str, subject: Option<&str>, online: bool) -> Opening {
    let mine = slot.holder == Some(device);
    match slot.state {
        "leased" if mine && !online => Opening::Mark,
        "opened" if mine && slot.subject == subject => Opening::Agrees,
        _ => Opening::Flag,
    }
}

/// A lease is asked by an administrator: the request is signed (within
/// [`MAX_CLOCK_SKEW_SECONDS`](ecrf_wire::wire::MAX_CLOCK_SKEW_SECONDS) of `now`) by `req.administrator` with a key the site's
/// registry holds for them (`registered`), and they are an active administrator now.
pub fn lease_request(
    req: &ecrf_wire::wire::LeaseRequest,
    (device, site): (&str, &str),
    now: chrono::DateTime<chrono::Utc>,
    registered: Option<&Registered>,
) -> Result<(), Refusal> {
    let message = ecrf_wire::wire::LeaseRequest::message(
        device,
        site,
        req.blocks,
        &req.administrator,
        &req.utc,
    );
    signed_by_admin(
        AdminRequest {
            what: "lease envelopes",
            administrator: &req.administrator,
            utc: &req.utc,
            signature: &req.signature,
            message: &message,
        },
        site,
        now,
        registered,
    )
}

/// A request an administrator signed on a laptop: what it asks, who, when, the signature and
/// the text it signs.
pub struct AdminRequest<'a> {
    /// What it asks, in words (`lease envelopes`).
    pub what: &'a str,
    /// The administrator named.
    pub administrator: &'a str,
    /// When it was signed.
    pub utc: &'a str,
    /// The signature (128 hex digits).
    pub signature: &'a str,
    /// The signed text.
    pub message: &'a [u8],
}

/// An administrator's request is signed (within [`MAX_CLOCK_SKEW_SECONDS`](ecrf_wire::wire::MAX_CLOCK_SKEW_SECONDS) of `now`)
/// by the administrator it names, with a key the site's registry holds for them
/// (`registered`), and they are an active administrator of the site now.
pub fn signed_by_admin(
    req: AdminRequest<'_>,
    site: &str,
    now: chrono::DateTime<chrono::Utc>,
    registered: Option<&Registered>,
) -> Result<(), Refusal> {
    let user = req.administrator;
    let what = req.what;
    let refused = |why: &str| {
        Refusal::Forbidden(format!(
            "administrator: {user} {why}; only an active administrator of site {site} may \
             {what}, by a request signed on this device"
        ))
    };
    let Some(reg) = registered else {
        return Err(refused("is not in the site's user registry"));
    };
    let now_text = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    match reg.role_at(&now_text) {
        Some("admin") => {}
        Some("") => return Err(refused("is deactivated")),
        _ => return Err(refused("is not an administrator")),
    }
    let stated = chrono::DateTime::parse_from_rfc3339(req.utc)
        .map_err(|_| refused("sent a request with no signing time"))?;
    let skew = (now - stated.with_timezone(&chrono::Utc))
        .num_seconds()
        .abs();
    if skew > ecrf_wire::wire::MAX_CLOCK_SKEW_SECONDS {
        return Err(refused(
            "signed this request too long ago (or the device clock is off)",
        ));
    }
    if !reg
        .keys
        .iter()
        .any(|k| ecrf_log::author::verifies(k, req.message, req.signature))
    {
        return Err(refused("did not sign this request with a registered key"));
    }
    Ok(())
}

/// A pushed opening of a slot leased from the server's list must carry the arm the list holds
/// and the nonce given with the lease (together they open the commitment the device's lease
/// published); otherwise the arm was tampered with and the push is refused (403) whole. The
/// reason names no arm, neither the list's nor the one claimed. `nonce` is none for slots
/// leased before sealing, which prove only the arm.
pub fn proven_arm(
    i: usize,
    ch: &Change,
    envelope: &str,
    claimed: (&str, Option<&str>),
    listed: (&str, Option<&str>),
) -> Result<(), Refusal> {
    let (arm, nonce) = claimed;
    let ok = arm == listed.0
        && match listed.1 {
            Some(n) => nonce == Some(n),
            None => true,
        };
    if ok {
        return Ok(());
    }
    Err(Refusal::Forbidden(format!(
        "changes[{i}] ({}) opens envelope {envelope} with an arm and nonce that do not match \
         the commitment of that envelope in the site's list: a tampered arm; nothing of this \
         push was stored and the coordinating centre is told",
        ch.change_id
    )))
}

/// A pushed RND.ARM value must be the arm of the slot the server's list opened for that
/// subject (RND is written only by randomizing; an ARM that differs is tampering): 403, whole.
pub fn recorded_arm(
    i: usize,
    ch: &Change,
    envelope: &str,
    recorded: &str,
    listed: &str,
) -> Result<(), Refusal> {
    if recorded == listed {
        return Ok(());
    }
    Err(Refusal::Forbidden(format!(
        "changes[{i}] ({}) records an RND ARM for {} that is not the arm of envelope \
         {envelope} opened for that subject: a tampered arm; nothing of this push was stored \
         and the coordinating centre is told",
        ch.change_id,
        ch.subject.as_deref().unwrap_or("?")
    )))
}

/// The scope a `lock.set` / `lock.release` change names, if it names one.
fn lock_scope(ch: &Change) -> Option<LockScope> {
    if let Ok(Body::Locked(b) | Body::Unlocked(b)) = ch.body() {
        b.scope(ch.subject.as_deref(), ch.form.as_deref())
    } else {
        None
    }
}

fn is_lock(ch: &Change) -> bool {
    matches!(ch.kind, ChangeKind::Locked | ChangeKind::Unlocked)
}

/// Whether a push's stored changes need the site's locks: it sets or releases one, or it
/// holds data a lock might cover.
pub fn touches_locks(fresh: &[&Change]) -> bool {
    fresh
        .iter()
        .any(|ch| is_lock(ch) || ch.kind == ChangeKind::ItemSet)
}

/// One change to the site's lock table, keyed by the scope as text.
#[derive(Debug, PartialEq, Eq)]
pub enum LockStep<'a> {
    /// A lock set: keep its `lock.set` change.
    Set(String, &'a Change),
    /// A lock released.
    Release(String),
}

/// What a push's stored changes do to the site's locks.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LockPlan<'a> {
    /// The lock table's changes, in push order (a scope may be set and released in one push).
    pub steps: Vec<LockStep<'a>>,
    /// Each `item.set` a lock covered when it arrived, with that lock (as text).
    pub held: Vec<(&'a Change, String)>,
}

/// The site's locks (`kept`: the `lock.set` changes the server holds), then the stored changes
/// in order: each lock change updates them, each `item.set` they cover then is held. The test
/// of "covered" is [`Locks::covering`], the one the store and the app ask too.
pub fn lock_plan<'a>(site: &str, kept: &[Change], fresh: &[&'a Change]) -> LockPlan<'a> {
    let mut locks = Locks::default();
    for ch in kept {
        if let Some(scope) = lock_scope(ch) {
            // A scope kept twice cannot happen (the table's key); the first one stands.
            let _ = locks.lock(scope, "held");
        }
    }
    let mut plan = LockPlan::default();
    for ch in fresh {
        if is_lock(ch) {
            let Some(scope) = lock_scope(ch) else {
                continue;
            };
            let key = scope.to_string();
            // Locking what is locked, or releasing what is not, leaves the set as it is: the
            // change was made against its device's view, and is kept either way.
            if ch.kind == ChangeKind::Locked {
                let _ = locks.lock(scope, "locked");
                plan.steps.push(LockStep::Set(key, ch));
            } else {
                let _ = locks.unlock(&scope, "unlocked");
                plan.steps.push(LockStep::Release(key));
            }
        } else if ch.kind == ChangeKind::ItemSet
            && let (Some(subject), Some(form)) = (&ch.subject, &ch.form)
            && let Some(scope) = locks.covering(site, subject, form)
        {
            plan.held.push((*ch, scope.to_string()));
        }
    }
    plan
}

/// The change ids each stored `item.set` names as replaced (its `base`), with its index.
pub fn named_bases(fresh: &[&Change]) -> Vec<(usize, String)> {
    let mut named = Vec::new();
    for (i, ch) in fresh.iter().enumerate() {
        if ch.kind != ChangeKind::ItemSet {
            continue;
        }
        // A base that is not a JSON list names nothing (validation let it through as text).
        let base: Vec<String> = ch
            .base
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or_default();
        named.extend(base.into_iter().map(|id| (i, id)));
    }
    named
}

/// The flag for `ch` when it is dated before change `base_id` it replaces (dated `base_utc`):
/// one of the two clocks was wrong. Times that do not parse decide nothing.
pub fn dated_before(ch: &Change, base_id: &str, base_utc: &str) -> Option<String> {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let (at, before) = (parse(&ch.utc)?, parse(base_utc)?);
    (at < before).then(|| {
        format!(
            "change {} ({} of {} {}) is dated {} but modifies change {base_id} dated {}",
            ch.change_id,
            ch.item.as_deref().unwrap_or("?"),
            ch.subject.as_deref().unwrap_or("?"),
            ch.form.as_deref().unwrap_or("?"),
            ch.utc,
            before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
    })
}

/// A pull's page: changes after site `seq` `after`, at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// The cursor the device holds.
    pub after: i64,
    /// Page size, 1 to `max`.
    pub limit: i64,
}

/// The page a pull's query string asks for (`after=…&limit=…`, both optional; `max` when no
/// limit is given).
pub fn page(query: Option<&str>, max: usize) -> Result<Page, Refusal> {
    let max = max as i64;
    let mut page = Page {
        after: 0,
        limit: max,
    };
    let bad = Refusal::Invalid;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let n: i64 = v
            .parse()
            .map_err(|_| bad(format!("{k}: must be a whole number, not {v:?}")))?;
        match k {
            "after" if n >= 0 => page.after = n,
            "limit" if (1..=max).contains(&n) => page.limit = n,
            "after" => return Err(bad("after: must be 0 or more".into())),
            "limit" => return Err(bad(format!("limit: must be 1 to {max}"))),
            _ => return Err(bad(format!("{k}: unknown parameter"))),
        }
    }
    Ok(page)
}

/// The cursor a page leaves the device at: its last change (`last`), or, on the last page
/// (`more` false), the site's head as the page saw it. Pushes commit a site's changes in `seq`
/// order under the site's row lock, so everything up to that head is in the page or the
/// device's own: the next pull does not read the device's own changes again.
pub fn cursor(after: i64, last: Option<i64>, head: i64, more: bool) -> i64 {
    let cursor = last.unwrap_or(after);
    if more { cursor } else { cursor.max(head) }
}

/// A device's clock against the server's: the offset in whole seconds (positive: ahead), and a
/// flag when it is more than `max_skew` seconds off.
pub fn clock(
    stated: chrono::DateTime<chrono::FixedOffset>,
    now: chrono::DateTime<chrono::Utc>,
    max_skew: i64,
) -> (i64, Option<String>) {
    let ms = (stated.with_timezone(&chrono::Utc) - now).num_milliseconds();
    let offset = (ms as f64 / 1000.0).round() as i64;
    let flag = (offset.abs() > max_skew).then(|| {
        format!(
            "this device's clock is {} {} the server's (more than {} minutes): times of its \
             changes may be wrong; set the clock right",
            words_of_seconds(offset.abs()),
            if offset > 0 { "ahead of" } else { "behind" },
            max_skew / 60
        )
    });
    (offset, flag)
}

/// `3 h 12 min`, `7 min 5 s`.
fn words_of_seconds(s: i64) -> String {
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec} s"),
        (0, min, sec) => format!("{min} min {sec} s"),
        (h, min, _) => format!("{h} h {min} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecrf_log::GENESIS;
    use ecrf_log::body::Lock;

    /// A change of device `D1` at site `01`, as a nurse, of `kind`.
    fn change(kind: ChangeKind) -> Change {
        Change {
            seq: 0,
            change_id: "c1".into(),
            device: "D1".into(),
            device_seq: 1,
            kind,
            subject: Some("01-0001".into()),
            form: Some("DLY#1".into()),
            item: Some("hr".into()),
            old_value: None,
            new_value: Some("80".into()),
            user: "ann".into(),
            role: "nurse".into(),
            utc: "2026-03-01T08:00:00.000Z".into(),
            local_offset: "+08:00".into(),
            reason: None,
            warning: None,
            prev_hash: GENESIS.into(),
            base: None,
            source: None,
            hash: "h1".into(),
            signature: None,
        }
    }

    fn with_body(kind: ChangeKind, body: Body) -> Change {
        Change {
            new_value: body.new_value(),
            ..change(kind)
        }
    }

    fn forbidden(r: Result<(), Refusal>) -> String {
        match r {
            Err(Refusal::Forbidden(why)) => why,
            other => panic!("expected a 403 refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_change_is_taken_only_signed_by_its_author_while_they_held_its_role() {
        let ann = ecrf_log::AuthorKey::from_seed(&[3; 32]);
        let other = ecrf_log::AuthorKey::from_seed(&[4; 32]);
        let mut registry = std::collections::HashMap::new();
        registry.insert(
            "ann".to_string(),
            Registered {
                keys: vec![ann.public_hex()],
                roles: vec![
                    (String::new(), "nurse".into()),
                    ("2026-03-02T00:00:00.000Z".into(), "monitor".into()),
                    ("2026-03-03T00:00:00.000Z".into(), String::new()),
                ],
            },
        );
        let mut c = change(ChangeKind::ItemSet);
        c.hash = c.compute_hash();
        let why = forbidden(authors([&c], &registry));
        assert!(why.contains("carries no author signature"), "{why}");
        other.sign(&mut c);
        let why = forbidden(authors([&c], &registry));
        assert!(why.contains("does not verify"), "{why}");
        ann.sign(&mut c);
        assert_eq!(authors([&c], &registry), Ok(()));
        // Signed, but the stated role is not the one held then.
        let mut later = c.clone();
        later.utc = "2026-03-02T10:00:00.000Z".into();
        later.hash = later.compute_hash();
        ann.sign(&mut later);
        let why = forbidden(authors([&later], &registry));
        assert!(why.contains("held the role monitor, not nurse"), "{why}");
        let mut gone = c.clone();
        gone.utc = "2026-03-04T10:00:00.000Z".into();
        gone.hash = gone.compute_hash();
        ann.sign(&mut gone);
        let why = forbidden(authors([&gone], &registry));
        assert!(why.contains("deactivated"), "{why}");
        let mut stranger = c.clone();
        stranger.user = "bob".into();
        let why = forbidden(authors([&stranger], &registry));
        assert!(why.contains("not in the site's user registry"), "{why}");
    }

    #[test]
    fn a_lease_needs_a_fresh_request_signed_by_an_active_administrator() {
        let li = ecrf_log::AuthorKey::from_seed(&[5; 32]);
        let now = chrono::Utc::now();
        let utc = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let request =
            |key: &ecrf_log::AuthorKey, utc: &str, blocks| ecrf_wire::wire::LeaseRequest {
                blocks,
                administrator: "li".into(),
                utc: utc.to_string(),
                signature: key.sign_bytes(&ecrf_wire::wire::LeaseRequest::message(
                    "D1", "01", blocks, "li", utc,
                )),
            };
        let admin = Registered {
            keys: vec![li.public_hex()],
            roles: vec![(String::new(), "admin".into())],
        };
        let at = ("D1", "01");
        assert_eq!(
            lease_request(&request(&li, &utc, 2), at, now, Some(&admin)),
            Ok(())
        );
        let why = forbidden(lease_request(&request(&li, &utc, 2), at, now, None));
        assert!(why.contains("not in the site's user registry"), "{why}");
        let nurse = Registered {
            roles: vec![(String::new(), "nurse".into())],
            ..admin.clone()
        };
        let why = forbidden(lease_request(&request(&li, &utc, 2), at, now, Some(&nurse)));
        assert!(why.contains("is not an administrator"), "{why}");
        let gone = Registered {
            roles: vec![
                (String::new(), "admin".into()),
                (utc.clone(), String::new()),
            ],
            ..admin.clone()
        };
        let why = forbidden(lease_request(&request(&li, &utc, 2), at, now, Some(&gone)));
        assert!(why.contains("deactivated"), "{why}");
        let other = ecrf_log::AuthorKey::from_seed(&[6; 32]);
        let why = forbidden(lease_request(
            &request(&other, &utc, 2),
            at,
            now,
            Some(&admin),
        ));
        assert!(why.contains("registered key"), "{why}");
        // A signature over 1 block does not lease 20.
        let mut more = request(&li, &utc, 1);
        more.blocks = 20;
        assert!(lease_request(&more, at, now, Some(&admin)).is_err());
        let old = (now - chrono::Duration::minutes(30))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let why = forbidden(lease_request(&request(&li, &old, 2), at, now, Some(&admin)));
        assert!(why.contains("too long ago"), "{why}");
    }

    #[test]
    fn an_opening_proves_the_listed_arm_and_nonce() {
        let ch = change(ChangeKind::Randomized);
        let n = "ab".repeat(32);
        assert_eq!(
            proven_arm(0, &ch, "01-E0002", ("ECMO", Some(&n)), ("ECMO", Some(&n))),
            Ok(())
        );
        let why = forbidden(proven_arm(
            3,
            &ch,
            "01-E0002",
            ("ECMO_IABP", Some(&n)),
            ("ECMO", Some(&n)),
        ));
        assert!(why.starts_with("changes[3]"), "{why}");
        assert!(why.contains("tampered arm"), "{why}");
        assert!(!why.contains("ECMO"), "names no arm: {why}");
        assert!(proven_arm(0, &ch, "01-E0002", ("ECMO", None), ("ECMO", Some(&n))).is_err());
        let other = "cd".repeat(32);
        assert!(
            proven_arm(
                0,
                &ch,
                "01-E0002",
                ("ECMO", Some(&other)),
                ("ECMO", Some(&n))
            )
            .is_err()
        );
        // Leased before sealing: the arm alone.
        assert_eq!(
            proven_arm(0, &ch, "01-E0002", ("ECMO", None), ("ECMO", None)),
            Ok(())
        );
    }

    #[test]
    fn a_device_acts_on_its_own_site_only() {
        assert_eq!(own_site("01", "01"), Ok(()));
        let why = forbidden(own_site("01", "02"));
        assert_eq!(why, "this device belongs to site 01, not site 02");
    }

    #[test]
    fn a_subject_is_of_a_site_by_its_prefix() {
        assert!(of_site("01-0001", "01"));
        assert!(!of_site("02-0001", "01"));
        // Site 1 is not site 10, and the dash is required.
        assert!(!of_site("10-0001", "1"));
        assert!(!of_site("010001", "01"));
    }

    #[test]
    fn an_enrolment_code_is_good_once_in_time_for_its_site() {
        let good = EnrolCode {
            site: "01".into(),
            device: Some("laptop-a".into()),
            used: false,
            expired: false,
        };
        assert_eq!(enrol_code(Some(&good), "01", "laptop-a"), Ok(()));
        assert!(matches!(
            enrol_code(None, "01", "laptop-a"),
            Err(Refusal::Unauthorized(w)) if w == "unknown enrolment code"
        ));
        let used = EnrolCode {
            used: true,
            ..good.clone()
        };
        assert!(matches!(
            enrol_code(Some(&used), "01", "laptop-a"),
            Err(Refusal::Unauthorized(w)) if w.contains("used already")
        ));
        let expired = EnrolCode {
            expired: true,
            ..good.clone()
        };
        assert!(matches!(
            enrol_code(Some(&expired), "01", "laptop-a"),
            Err(Refusal::Unauthorized(w)) if w.contains("expired")
        ));
        let why = forbidden(enrol_code(Some(&good), "02", "laptop-a"));
        assert!(
            why.contains("this code is for site 01") && why.contains("site 02"),
            "{why}"
        );
    }

    #[test]
    fn an_enrolment_code_enrols_only_the_device_it_was_made_for() {
        let code = EnrolCode {
            site: "01".into(),
            device: Some("laptop-a".into()),
            used: false,
            expired: false,
        };
        let why = forbidden(enrol_code(Some(&code), "01", "laptop-b"));
        assert!(
            why.contains("made for device laptop-a") && why.contains("laptop-b"),
            "{why}"
        );
        let unbound = EnrolCode {
            device: None,
            ..code
        };
        assert!(matches!(
            enrol_code(Some(&unbound), "01", "laptop-a"),
            Err(Refusal::Unauthorized(w)) if w.contains("names no device")
        ));
    }

    #[test]
    fn server_device_ids_are_reserved() {
        assert_eq!(new_device_id("0190b7a2-laptop"), Ok(()));
        assert_eq!(new_device_id("my-server"), Ok(()));
        for reserved in ["server-01", "SERVER-01", "server-"] {
            let why = forbidden(new_device_id(reserved));
            assert!(why.contains("the server's own"), "{reserved}: {why}");
        }
    }

    #[test]
    fn the_permission_table_decides_a_push() {
        // A nurse enters data; an administrator may not; nobody but the server writes lock.held.
        assert_eq!(permissions(&[change(ChangeKind::ItemSet)]), Ok(()));
        let admin = Change {
            role: "admin".into(),
            ..change(ChangeKind::ItemSet)
        };
        let why = forbidden(permissions(&[change(ChangeKind::ItemSet), admin]));
        assert!(why.starts_with("changes[1] (change c1, item.set 01-0001 DLY#1 hr by ann as admin): the role admin may not enter data"), "{why}");
        assert!(why.ends_with("nothing of this push was stored"), "{why}");
        let nurse_locks = with_body(
            ChangeKind::Locked,
            Body::Locked(Lock {
                scope: "form".into(),
                site: None,
            }),
        );
        assert!(forbidden(permissions(&[nurse_locks])).contains("may not"));
        let manager_locks = Change {
            role: "data_manager".into(),
            ..with_body(
                ChangeKind::Locked,
                Body::Locked(Lock {
                    scope: "form".into(),
                    site: None,
                }),
            )
        };
        assert_eq!(permissions(&[manager_locks]), Ok(()));
        let held = Change {
            role: "data_manager".into(),
            ..change(ChangeKind::LockHeld)
        };
        assert!(forbidden(permissions(&[held])).contains("only the server"));
        let stranger = Change {
            role: "janitor".into(),
            ..change(ChangeKind::ItemSet)
        };
        assert!(forbidden(permissions(&[stranger])).contains("unknown role janitor"));
    }

    #[test]
    fn a_device_pushes_its_own_changes_of_its_own_site() {
        let ok = change(ChangeKind::ItemSet);
        assert_eq!(own_changes(std::slice::from_ref(&ok), "D1", "01"), Ok(()));
        assert_eq!(
            forbidden(own_changes(std::slice::from_ref(&ok), "D2", "01")),
            "changes[0].device: a device pushes only its own changes"
        );
        let elsewhere = Change {
            subject: Some("02-0001".into()),
            ..change(ChangeKind::ItemSet)
        };
        assert_eq!(
            forbidden(own_changes(&[ok.clone(), elsewhere], "D1", "01")),
            "changes[1].subject: subject 02-0001 is not of site 01"
        );
        let created = |at: &str| Change {
            new_value: Some(at.into()),
            ..change(ChangeKind::SubjectCreated)
        };
        assert_eq!(own_changes(&[created("01")], "D1", "01"), Ok(()));
        assert_eq!(
            forbidden(own_changes(&[created("02")], "D1", "01")),
            "changes[0].new_value: a subject of site 01 must be created there"
        );
    }

    #[test]
    fn a_push_continues_the_chain_or_replays_it() {
        let next = Change {
            device_seq: 4,
            prev_hash: "h3".into(),
            ..change(ChangeKind::ItemSet)
        };
        assert_eq!(link(0, &next, 3, "h3"), Ok(Link::Next));
        // Another branch after #3, or a gap: both 409.
        assert!(matches!(
            link(0, &next, 3, "other"),
            Err(Refusal::Conflict(_))
        ));
        assert!(matches!(
            link(2, &next, 2, "h3"),
            Err(Refusal::Conflict(w)) if w == "changes[2]: change #4 does not follow change #2 the server holds of this device"
        ));
        // At or before the head: a replay, equal to what is held or refused.
        assert_eq!(link(0, &next, 4, "h4"), Ok(Link::Held));
        assert_eq!(replay(0, &next, Some("h1")), Ok(()));
        assert!(matches!(
            replay(0, &next, Some("h9")),
            Err(Refusal::Conflict(w)) if w == "changes[0]: the server holds another change #4 of this device"
        ));
        assert!(matches!(replay(0, &next, None), Err(Refusal::Conflict(_))));
    }

    #[test]
    fn a_lease_is_whole_blocks_or_nothing() {
        assert_eq!(enough_blocks(2, 2, "01"), Ok(()));
        assert!(matches!(
            enough_blocks(1, 2, "01"),
            Err(Refusal::Conflict(w)) if w == "blocks: the server has 1 whole free blocks for site 01, not 2"
        ));
    }

    #[test]
    fn an_online_slot_is_for_a_subject_of_the_site_and_its_device() {
        assert_eq!(slot_subject("01-0001", "01"), Ok(()));
        assert_eq!(
            forbidden(slot_subject("02-0001", "01")),
            "subject: subject 02-0001 is not of site 01"
        );
        assert_eq!(same_slot("01-0001", "E7", Some("D1"), "D1"), Ok(()));
        assert_eq!(
            forbidden(same_slot("01-0001", "E7", Some("D2"), "D1")),
            "subject: 01-0001 was randomized on another device, with envelope E7"
        );
        assert!(same_slot("01-0001", "E7", None, "D1").is_err());
    }

    #[test]
    fn an_envelope_is_opened_only_by_the_device_it_was_leased_to() {
        let slot = |state, holder, subject| SlotState {
            state,
            holder,
            subject,
        };
        let s = Some("01-0001");
        assert_eq!(
            opening(&slot("leased", Some("D1"), None), "D1", s, false),
            Opening::Mark
        );
        // Leased to another device, or said to be online while leased: flagged.
        assert_eq!(
            opening(&slot("leased", Some("D2"), None), "D1", s, false),
            Opening::Flag
        );
        assert_eq!(
            opening(&slot("leased", Some("D1"), None), "D1", s, true),
            Opening::Flag
        );
        assert_eq!(
            opening(&slot("opened", Some("D1"), s), "D1", s, true),
            Opening::Agrees
        );
        assert_eq!(
            opening(&slot("opened", Some("D1"), Some("01-0002")), "D1", s, true),
            Opening::Flag
        );
        assert_eq!(
            opening(&slot("free", None, None), "D1", s, false),
            Opening::Flag
        );
        assert_eq!(
            opening(&slot("withdrawn", Some("D1"), None), "D1", s, false),
            Opening::Flag
        );
    }

    fn lock_change(kind: ChangeKind, scope: &str, form: Option<&str>) -> Change {
        let lock = Lock {
            scope: scope.into(),
            site: Some("01".into()),
        };
        let body = if kind == ChangeKind::Locked {
            Body::Locked(lock)
        } else {
            Body::Unlocked(lock)
        };
        Change {
            role: "data_manager".into(),
            form: form.map(str::to_string),
            item: None,
            ..with_body(kind, body)
        }
    }

    #[test]
    fn data_for_a_locked_form_is_held_and_other_data_is_not() {
        let data = |form: &str| Change {
            form: Some(form.into()),
            ..change(ChangeKind::ItemSet)
        };
        let kept = [lock_change(ChangeKind::Locked, "form", Some("DLY#1"))];
        let (locked, open) = (data("DLY#1"), data("DLY#2"));
        let plan = lock_plan("01", &kept, &[&locked, &open]);
        assert_eq!(plan.held.len(), 1);
        assert_eq!(plan.held[0].0.form.as_deref(), Some("DLY#1"));
        assert_eq!(plan.held[0].1, "DLY#1 of 01-0001");
        assert!(plan.steps.is_empty());
        // No lock kept: nothing held.
        assert!(lock_plan("01", &[], &[&locked]).held.is_empty());
    }

    #[test]
    fn locks_in_a_push_apply_in_order() {
        let data = change(ChangeKind::ItemSet);
        let set = lock_change(ChangeKind::Locked, "subject", None);
        let release = lock_change(ChangeKind::Unlocked, "subject", None);
        // Data after the lock is held; data after the release is not.
        let plan = lock_plan("01", &[], &[&set, &data, &release, &data]);
        let key = "casebook 01-0001".to_string();
        assert_eq!(
            plan.steps,
            vec![LockStep::Set(key.clone(), &set), LockStep::Release(key)]
        );
        assert_eq!(plan.held.len(), 1);
        // A site lock covers every subject of the site.
        let site = lock_change(ChangeKind::Locked, "site", None);
        let plan = lock_plan("01", &[site], &[&data]);
        assert_eq!(plan.held[0].1, "site 01");
        assert!(touches_locks(&[&data]));
        assert!(!touches_locks(&[&change(ChangeKind::SubjectCreated)]));
    }

    #[test]
    fn a_change_dated_before_the_one_it_replaces_is_flagged() {
        let ch = Change {
            base: Some("[\"b1\",\"b2\"]".into()),
            ..change(ChangeKind::ItemSet)
        };
        let other = Change {
            base: Some("[\"b3\"]".into()),
            ..change(ChangeKind::SubjectCreated)
        };
        assert_eq!(
            named_bases(&[&other, &ch]),
            vec![(1, "b1".to_string()), (1, "b2".to_string())]
        );
        let flag = dated_before(&ch, "b1", "2026-03-01T09:00:00Z").expect("flagged");
        assert_eq!(
            flag,
            "change c1 (hr of 01-0001 DLY#1) is dated 2026-03-01T08:00:00.000Z but modifies \
             change b1 dated 2026-03-01T09:00:00.000Z"
        );
        assert_eq!(dated_before(&ch, "b1", "2026-03-01T07:00:00Z"), None);
        assert_eq!(dated_before(&ch, "b1", "yesterday"), None);
    }

    #[test]
    fn a_pull_page_is_read_from_its_query() {
        let p = |after, limit| Ok(Page { after, limit });
        assert_eq!(page(None, 500), p(0, 500));
        assert_eq!(page(Some("after=7&limit=20"), 500), p(7, 20));
        let bad = |q| match page(Some(q), 500) {
            Err(Refusal::Invalid(why)) => why,
            other => panic!("expected a 400 for {q}, got {other:?}"),
        };
        assert_eq!(bad("after=-1"), "after: must be 0 or more");
        assert_eq!(bad("limit=0"), "limit: must be 1 to 500");
        assert_eq!(bad("limit=501"), "limit: must be 1 to 500");
        assert_eq!(bad("after=x"), "after: must be a whole number, not \"x\"");
        assert_eq!(bad("sort=1"), "sort: unknown parameter");
    }

    #[test]
    fn the_cursor_moves_to_the_head_only_on_the_last_page() {
        assert_eq!(cursor(5, Some(9), 20, true), 9);
        assert_eq!(cursor(5, Some(9), 20, false), 20);
        assert_eq!(cursor(5, None, 20, false), 20);
        assert_eq!(cursor(5, None, 0, false), 5);
    }

    #[test]
    fn a_clock_far_off_is_flagged() {
        let at = |t| chrono::DateTime::parse_from_rfc3339(t).expect("a time");
        let now = at("2026-03-01T08:00:00Z").with_timezone(&chrono::Utc);
        assert_eq!(clock(at("2026-03-01T08:04:59.6Z"), now, 300), (300, None));
        let (offset, flag) = clock(at("2026-03-01T08:07:05Z"), now, 300);
        assert_eq!(offset, 425);
        assert_eq!(
            flag.as_deref(),
            Some(
                "this device's clock is 7 min 5 s ahead of the server's (more than 5 minutes): \
                 times of its changes may be wrong; set the clock right"
            )
        );
        let (offset, flag) = clock(at("2026-03-01T04:48:00Z"), now, 300);
        assert_eq!(offset, -11520);
        assert!(flag.is_some_and(|f| f.contains("3 h 12 min behind")));
        assert_eq!(words_of_seconds(9), "9 s");
    }
}
