//! What the client accepts before it talks to a server or believes what one says: the server
//! address (plain HTTP only to this computer) and the bounds every reply must keep.
//!
//! Invariants: nothing here does I/O, so each rule is unit-tested on its own; a server that
//! breaks a bound gets [`SyncError::Reply`] naming the bound, and the store is left as it was
//! (nothing of the offending reply is applied or recorded).

use ecrf_log::{Change, HashChecked};
use ecrf_wire::wire::{DeviceReply, MAX_PAGE, MAX_REASON_BYTES, PullReply, PushReply, Receipt};

use crate::client::SyncError;

/// Most pull pages one sync takes (a whole site's first sync is under a hundred): a server
/// saying "more" beyond that is not followed; the next sync continues from the cursor.
pub const MAX_PULL_PAGES: usize = 10_000;

/// A server address the client may use: `https://` to any host, `http://` only to this
/// computer (`localhost`, `127.0.0.0/8`, `::1`), where nothing travels over a network.
pub fn check_server_url(url: &str) -> Result<(), SyncError> {
    let refuse = |why: &str| {
        Err(SyncError::Address(format!(
            "server address {url:?}: {why} / 服务器地址 {url:?}：必须以 https:// 开头（http:// \
             仅限本机 localhost、127.0.0.1、::1）"
        )))
    };
    let uri: ureq::http::Uri = match url.trim().parse() {
        Ok(u) => u,
        Err(_) => return refuse("not a web address; give https://host[:port]"),
    };
    let host = uri.host().unwrap_or("");
    if host.is_empty() {
        return refuse("no host; give https://host[:port]");
    }
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => refuse(
            "plain http:// is allowed only to this computer (localhost, 127.0.0.1, ::1), \
             because it is not encrypted; use https://",
        ),
        _ => refuse("must start with https://"),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn broke(bound: String) -> SyncError {
    SyncError::Reply(format!(
        "the server broke the protocol: {bound}; nothing of it was kept"
    ))
}

fn check_flags(flags: &[String], most: usize) -> Result<(), SyncError> {
    if flags.len() > most {
        return Err(broke(format!(
            "{} flags where at most {most} can concern what was sent",
            flags.len()
        )));
    }
    if let Some(f) = flags.iter().find(|f| f.len() > MAX_REASON_BYTES) {
        return Err(broke(format!(
            "a flag of {} bytes (at most {MAX_REASON_BYTES})",
            f.len()
        )));
    }
    Ok(())
}

/// Where the server says this device stands: about this device and site, and holding no more
/// of this device's changes than it made (`own_last`, its last `device_seq`).
pub fn check_device_reply(
    reply: &DeviceReply,
    device: &str,
    site: &str,
    own_last: i64,
) -> Result<(), SyncError> {
    if reply.device != device || reply.site != site {
        return Err(broke(format!(
            "it answered for device {} of site {}, not this device {device} of site {site}",
            reply.device, reply.site
        )));
    }
    if reply.acked < 0 || reply.acked > own_last {
        return Err(broke(format!(
            "it says it holds this device's changes up to #{}, but this device has made {own_last} \
             (if this laptop was restored from an older backup, ask the coordinating centre)",
            reply.acked
        )));
    }
    check_flags(reply.clock_flag.as_slice(), 1)
}

/// A push's reply: it acknowledges more than before (`acked_before`) and no more than the page
/// sent, stores at most the page, and flags at most one thing per change.
pub fn check_push_reply(
    reply: &PushReply,
    acked_before: i64,
    sent: &[Change],
) -> Result<(), SyncError> {
    let last_sent = sent.last().map_or(acked_before, |c| c.device_seq);
    if reply.acked <= acked_before {
        return Err(SyncError::Reply(format!(
            "the server did not take changes after #{acked_before}"
        )));
    }
    if reply.acked > last_sent {
        return Err(broke(format!(
            "it acknowledged changes up to #{} but only up to #{last_sent} were sent",
            reply.acked
        )));
    }
    if reply.stored > sent.len() {
        return Err(broke(format!(
            "it stored {} changes of a page of {}",
            reply.stored,
            sent.len()
        )));
    }
    check_flags(&reply.flags, sent.len())
}

/// A receipt is for this device, for what the reply acknowledged, over the hash of the change
/// sent at that place, and signed by the server pinned at enrolment (`server_key`; stores
/// enrolled before servers signed have none to check with).
pub fn check_receipt(
    r: &Receipt,
    device: &str,
    reply: &PushReply,
    sent: &[Change],
    server_key: Option<&str>,
) -> Result<(), SyncError> {
    if r.device != device || r.device_seq != reply.acked {
        return Err(broke(format!(
            "its receipt is for change #{} of device {}, not #{} of this device",
            r.device_seq, r.device, reply.acked
        )));
    }
    if let Some(c) = sent.iter().find(|c| c.device_seq == r.device_seq)
        && c.hash != r.hash
    {
        return Err(broke(format!(
            "its receipt names hash {} for change #{}, which was sent with hash {}",
            r.hash, r.device_seq, c.hash
        )));
    }
    if let Some(key) = server_key
        && !r.verifies(key)
    {
        return Err(broke(
            "its receipt is not signed by the server this laptop enrolled with".into(),
        ));
    }
    Ok(())
}

/// A pulled page that passed [`check_pull_reply`]: its changes' hashes checked (on the thread
/// that pulled it), or several pages in a row with the last one's cursor.
#[derive(Debug)]
pub struct Pulled {
    /// The changes, in server order.
    pub changes: HashChecked,
    /// The cursor to ask from next.
    pub cursor: i64,
    /// More changes wait after this page.
    pub more: bool,
    /// The server's release, if it said.
    pub server_version: Option<String>,
}

impl Pulled {
    /// Takes the next page after this one.
    pub fn absorb(&mut self, next: Pulled) {
        self.changes.append(next.changes);
        self.cursor = next.cursor;
        self.more = next.more;
        if next.server_version.is_some() {
            self.server_version = next.server_version;
        }
    }
}

/// A pull page: at most `limit` changes (and [`MAX_PAGE`]), each valid and matching its hash
/// (checked once, here), a cursor that never goes back, and one that moves when the server
/// says more follow (else "more" would never end).
pub fn check_pull_reply(reply: PullReply, after: i64, limit: usize) -> Result<Pulled, SyncError> {
    reply
        .validate_fields()
        .map_err(|e| SyncError::Reply(e.to_string()))?;
    if reply.changes.len() > limit.min(MAX_PAGE) {
        return Err(broke(format!(
            "a page of {} changes where at most {} were asked for",
            reply.changes.len(),
            limit.min(MAX_PAGE)
        )));
    }
    if reply.cursor < after || (reply.more && reply.cursor == after) {
        return Err(broke(format!(
            "its cursor went from {after} to {} (more pages: {}): no progress",
            reply.cursor, reply.more
        )));
    }
    let changes = HashChecked::check(reply.changes)
        .map_err(|e| SyncError::Reply(format!("{e}; nothing of this page was applied")))?;
    Ok(Pulled {
        changes,
        cursor: reply.cursor,
        more: reply.more,
        server_version: reply.server_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr_err(url: &str) -> String {
        match check_server_url(url) {
            Err(SyncError::Address(why)) => why,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn plain_http_only_to_this_computer() {
        for ok in [
            "https://ecrf.example.org",
            "https://10.0.0.5:8443/",
            "HTTPS://ecrf.example.org",
            "http://127.0.0.1:8080",
            "http://127.8.9.1",
            "http://localhost:3000",
            "http://LOCALHOST",
            "http://[::1]:8080",
        ] {
            assert!(check_server_url(ok).is_ok(), "{ok}");
        }
        for (bad, words) in [
            ("http://10.0.0.5:8080", "only to this computer"),
            ("http://ecrf.example.org", "only to this computer"),
            ("http://127.0.0.1.evil.example", "only to this computer"),
            ("http://localhost.evil.example", "only to this computer"),
            ("http://[::2]:80", "only to this computer"),
            ("http://0.0.0.0:8080", "only to this computer"),
            ("ftp://127.0.0.1", "must start with https://"),
            ("ecrf.example.org", "https://"),
            ("https://", "https://host"),
            ("", "https://host"),
        ] {
            let why = addr_err(bad);
            assert!(why.contains(words), "{bad}: {why}");
            assert!(why.contains("服务器地址"), "{bad}: {why}");
        }
    }

    fn change(device_seq: i64) -> Change {
        let mut c = Change {
            seq: 0,
            change_id: format!("00000000-0000-7000-8000-{device_seq:012}"),
            device: "dev-a".into(),
            device_seq,
            kind: ecrf_log::ChangeKind::ItemSet,
            subject: Some("01-0001".into()),
            form: Some("BAS".into()),
            item: Some("HR".into()),
            old_value: None,
            new_value: Some("80".into()),
            user: "nurse".into(),
            role: "nurse".into(),
            utc: "2026-01-01T00:00:00.000Z".into(),
            local_offset: "+00:00".into(),
            reason: None,
            warning: None,
            prev_hash: "0".repeat(64),
            hash: String::new(),
            base: None,
            source: None,
            signature: None,
        };
        c.hash = c.compute_hash();
        c
    }

    #[test]
    fn a_server_cannot_acknowledge_more_than_was_sent() {
        let sent = [change(4), change(5), change(6)];
        let reply = |acked, stored, flags: usize| PushReply {
            acked,
            stored,
            flags: vec!["f".into(); flags],
            receipt: None,
        };
        assert!(check_push_reply(&reply(6, 3, 0), 3, &sent).is_ok());
        assert!(check_push_reply(&reply(5, 2, 3), 3, &sent).is_ok());
        for (r, words) in [
            (reply(7, 3, 0), "only up to #6 were sent"),
            (reply(1_000_000, 3, 0), "only up to #6 were sent"),
            (reply(3, 0, 0), "did not take changes after #3"),
            (reply(6, 4, 0), "stored 4 changes of a page of 3"),
            (reply(6, 3, 4), "4 flags"),
        ] {
            let why = check_push_reply(&r, 3, &sent).unwrap_err().to_string();
            assert!(why.contains(words), "{r:?}: {why}");
        }
        let long = PushReply {
            acked: 6,
            stored: 3,
            flags: vec!["x".repeat(MAX_REASON_BYTES + 1)],
            receipt: None,
        };
        assert!(check_push_reply(&long, 3, &sent).is_err());
    }

    #[test]
    fn a_receipt_must_be_the_pinned_servers_for_what_was_sent() {
        let server = ecrf_log::AuthorKey::from_seed(&[8; 32]);
        let impostor = ecrf_log::AuthorKey::from_seed(&[9; 32]);
        let sent = [change(4), change(5)];
        let receipt = |key: &ecrf_log::AuthorKey, device: &str, seq: i64, hash: &str| {
            let utc = "2026-03-01T00:00:00.000Z";
            Receipt {
                device: device.into(),
                device_seq: seq,
                hash: hash.into(),
                utc: utc.into(),
                signature: key.sign_bytes(&Receipt::message(device, seq, hash, utc)),
            }
        };
        let reply = PushReply {
            acked: 5,
            stored: 2,
            flags: Vec::new(),
            receipt: None,
        };
        let pinned = Some(server.public_hex());
        let good = receipt(&server, "dev-a", 5, &sent[1].hash);
        assert!(check_receipt(&good, "dev-a", &reply, &sent, pinned.as_deref()).is_ok());
        for (r, words) in [
            (
                receipt(&impostor, "dev-a", 5, &sent[1].hash),
                "not signed by the server",
            ),
            (
                receipt(&server, "dev-b", 5, &sent[1].hash),
                "not #5 of this device",
            ),
            (
                receipt(&server, "dev-a", 4, &sent[0].hash),
                "not #5 of this device",
            ),
            (
                receipt(&server, "dev-a", 5, &sent[0].hash),
                "was sent with hash",
            ),
        ] {
            let why = check_receipt(&r, "dev-a", &reply, &sent, pinned.as_deref())
                .unwrap_err()
                .to_string();
            assert!(why.contains(words), "{r:?}: {why}");
        }
        let mut altered = good.clone();
        altered.utc = "2026-03-02T00:00:00.000Z".into();
        assert!(check_receipt(&altered, "dev-a", &reply, &sent, pinned.as_deref()).is_err());
    }

    #[test]
    fn a_server_cannot_claim_changes_this_device_never_made_or_answer_for_another() {
        let reply = |device: &str, acked| DeviceReply {
            device: device.into(),
            site: "01".into(),
            acked,
            clock_offset_seconds: None,
            clock_flag: None,
        };
        assert!(check_device_reply(&reply("d1", 0), "d1", "01", 0).is_ok());
        assert!(check_device_reply(&reply("d1", 7), "d1", "01", 7).is_ok());
        let why = check_device_reply(&reply("d1", 8), "d1", "01", 7)
            .unwrap_err()
            .to_string();
        assert!(
            why.contains("up to #8") && why.contains("has made 7"),
            "{why}"
        );
        assert!(check_device_reply(&reply("d1", -1), "d1", "01", 7).is_err());
        let why = check_device_reply(&reply("d2", 0), "d1", "01", 7)
            .unwrap_err()
            .to_string();
        assert!(why.contains("device d2"), "{why}");
        assert!(check_device_reply(&reply("d1", 0), "d1", "02", 7).is_err());
    }

    #[test]
    fn more_pages_must_move_the_cursor_and_keep_to_the_page_size() {
        let page = |n: i64, cursor, more| PullReply {
            changes: (1..=n).map(change).collect(),
            cursor,
            more,
            server_version: None,
        };
        assert!(check_pull_reply(page(2, 12, true), 10, MAX_PAGE).is_ok());
        assert!(check_pull_reply(page(0, 10, false), 10, MAX_PAGE).is_ok());
        assert!(check_pull_reply(page(0, 11, true), 10, MAX_PAGE).is_ok());
        for (p, limit, words) in [
            (page(0, 10, true), MAX_PAGE, "no progress"),
            (page(1, 9, false), MAX_PAGE, "no progress"),
            (page(3, 20, false), 2, "a page of 3 changes where at most 2"),
        ] {
            let why = check_pull_reply(p, 10, limit).unwrap_err().to_string();
            assert!(why.contains(words), "{why}");
        }
        let too_big = page(MAX_PAGE as i64 + 1, 5000, false);
        assert!(check_pull_reply(too_big, 10, usize::MAX).is_err());
    }

    #[test]
    fn a_pulled_change_that_does_not_match_its_hash_is_named() {
        let mut changes: Vec<Change> = (1..=3).map(change).collect();
        changes[2].reason = Some("altered".into());
        let id = changes[2].change_id.clone();
        let reply = PullReply {
            changes,
            cursor: 13,
            more: false,
            server_version: None,
        };
        let why = check_pull_reply(reply, 10, MAX_PAGE)
            .unwrap_err()
            .to_string();
        assert!(
            why.contains("does not match its hash") && why.contains(&id),
            "{why}"
        );
    }
}
