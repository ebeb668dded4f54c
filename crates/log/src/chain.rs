//! The chain rules and their check: the log is one hash chain **per device**.
//!
//! Invariants checked: `seq` runs 1, 2, 3… in the holder's order; each change's `prev_hash` is
//! the `hash` of the same device's previous change ([`GENESIS`] for its first); each device's
//! `device_seq` runs 1, 2, 3…; each hash is the hash of its content. A replica that holds other
//! devices' changes byte for byte verifies every device's chain the same way. Each problem
//! names the change concerned and what was probably done to it.

use std::collections::HashMap;

use serde::Serialize;

use crate::change::{Change, GENESIS};

/// What a check found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Changes read.
    pub changes: i64,
    /// Problems, each naming the change concerned. Empty means the log is intact.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Received changes whose content was checked against their hashes. Made only by
/// [`HashChecked::check`], so whoever appends them need not hash each again: the sync client
/// checks each pulled page on the thread that fetched it, while the store's one writing thread
/// applies the page before (hashing was a twentieth of applying a large site's first sync).
#[derive(Debug, Clone, Default)]
pub struct HashChecked(Vec<Change>);

/// A received change whose content does not match its hash: altered on the way or where it
/// came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("received {0}: its content does not match its hash")]
pub struct HashMismatch(pub String);

impl HashChecked {
    /// Checks every change's hash; the first that does not match is named.
    pub fn check(changes: Vec<Change>) -> Result<Self, HashMismatch> {
        match changes.iter().find(|c| c.compute_hash() != c.hash) {
            Some(c) => Err(HashMismatch(c.describe())),
            None => Ok(HashChecked(changes)),
        }
    }

    /// The changes, for whoever appends them (and numbers them in its own log).
    pub fn into_changes(self) -> Vec<Change> {
        self.0
    }

    /// Adds the changes of a later page after these.
    pub fn append(&mut self, mut later: HashChecked) {
        self.0.append(&mut later.0);
    }
}

/// Read as the changes they are, in the order received (never written to: that would break
/// the check).
impl std::ops::Deref for HashChecked {
    type Target = [Change];

    fn deref(&self) -> &[Change] {
        &self.0
    }
}

/// Where a device's chain stands: its last `device_seq` and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceHead {
    /// Last `device_seq` (0 before its first change).
    pub device_seq: i64,
    /// Hash of that change ([`GENESIS`] before its first).
    pub hash: String,
}

impl Default for DeviceHead {
    fn default() -> Self {
        DeviceHead {
            device_seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

impl DeviceHead {
    /// True when `c` continues this chain: the next `device_seq`, the previous hash this one.
    pub fn is_followed_by(&self, c: &Change) -> bool {
        c.device_seq == self.device_seq + 1 && c.prev_hash == self.hash
    }
}

/// Checks a log change by change, in the order it is held (streaming: a store reads its
/// rows one at a time).
#[derive(Debug, Default)]
pub struct ChainCheck {
    report: VerifyReport,
    last_seq: i64,
    last_hash: Option<String>,
    /// Per device: its head and the description of its last change.
    devices: HashMap<String, (DeviceHead, String)>,
}

impl ChainCheck {
    /// A check from the start of a log.
    pub fn new() -> Self {
        ChainCheck::default()
    }

    /// Checks the next change.
    pub fn push(&mut self, c: &Change) {
        let report = &mut self.report;
        report.changes += 1;
        let desc = c.describe();
        if c.seq != self.last_seq + 1 {
            report.problems.push(format!(
                "changes #{} to #{} are missing: the log jumps from #{} to #{} (deleted)",
                self.last_seq + 1,
                c.seq - 1,
                self.last_seq,
                c.seq
            ));
        }
        let (head, head_desc) = self.devices.entry(c.device.clone()).or_insert_with(|| {
            (
                DeviceHead::default(),
                "the start of its device's log".to_string(),
            )
        });
        if c.prev_hash != head.hash {
            report.problems.push(format!(
                "{desc}: does not follow {head_desc} (its previous hash does not match): \
                 a change before it was deleted, inserted or moved"
            ));
        }
        if !c.hash_holds() {
            report.problems.push(format!(
                "{desc}: its content does not match its hash: it was altered after it was \
                 written (now reads {} → {}, by {}, at {})",
                c.old_value.as_deref().unwrap_or("∅"),
                c.new_value.as_deref().unwrap_or("∅"),
                c.user,
                c.utc
            ));
        }
        if c.device_seq != head.device_seq + 1 {
            report.problems.push(format!(
                "{desc}: device {} sequence goes from {} to {} (a change of that device was \
                 deleted or moved)",
                c.device, head.device_seq, c.device_seq
            ));
        }
        head.device_seq = c.device_seq;
        head.hash = c.hash.clone();
        *head_desc = desc;
        self.last_seq = c.seq;
        self.last_hash = Some(c.hash.clone());
    }

    /// The last change's `seq` and hash (0 and [`GENESIS`] for an empty log).
    pub fn last(&self) -> (i64, &str) {
        (self.last_seq, self.last_hash.as_deref().unwrap_or(GENESIS))
    }

    /// Adds a problem found outside the changes themselves (e.g. a recorded head).
    pub fn problem(&mut self, p: String) {
        self.report.problems.push(p);
    }

    /// The report.
    pub fn finish(self) -> VerifyReport {
        self.report
    }
}

/// Checks a whole log held in memory.
pub fn verify<'a>(changes: impl IntoIterator<Item = &'a Change>) -> VerifyReport {
    let mut check = ChainCheck::new();
    for c in changes {
        check.push(c);
    }
    check.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::ChangeKind;

    fn chain(device: &str, n: i64) -> Vec<Change> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|i| {
                let mut c = crate::change::tests::change(ChangeKind::SubjectCreated, None, None);
                c.device = device.into();
                c.device_seq = i;
                c.change_id = format!("{device}-{i}");
                c.prev_hash = prev.clone();
                c.hash = c.compute_hash();
                prev = c.hash.clone();
                c
            })
            .collect()
    }

    fn numbered(mut log: Vec<Change>) -> Vec<Change> {
        for (i, c) in log.iter_mut().enumerate() {
            c.seq = i as i64 + 1;
        }
        log
    }

    #[test]
    fn two_interleaved_device_chains_verify() {
        let (a, b) = (chain("a", 3), chain("b", 2));
        let log = numbered(vec![
            a[0].clone(),
            b[0].clone(),
            a[1].clone(),
            b[1].clone(),
            a[2].clone(),
        ]);
        let r = verify(&log);
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!(r.changes, 5);
    }

    #[test]
    fn altered_deleted_and_moved_changes_are_named() {
        let mut log = numbered(chain("a", 4));
        log[1].new_value = Some("forged".into());
        let r = verify(&log);
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(r.problems[0].contains("altered"), "{:?}", r.problems);

        let mut log = numbered(chain("a", 4));
        log.remove(1);
        let r = verify(&log);
        assert!(r.problems.iter().any(|p| p.contains("missing")), "{r:?}");
        assert!(
            r.problems.iter().any(|p| p.contains("does not follow")),
            "{r:?}"
        );
        assert!(r.problems.iter().any(|p| p.contains("sequence")), "{r:?}");

        let mut log = chain("a", 3);
        log.swap(1, 2);
        let r = verify(&numbered(log));
        assert!(
            r.problems.iter().any(|p| p.contains("does not follow")),
            "{r:?}"
        );
    }

    #[test]
    fn a_device_head_is_followed_only_by_its_next_change() {
        let log = chain("a", 2);
        let head = DeviceHead::default();
        assert!(head.is_followed_by(&log[0]));
        assert!(!head.is_followed_by(&log[1]));
        let after = DeviceHead {
            device_seq: 1,
            hash: log[0].hash.clone(),
        };
        assert!(after.is_followed_by(&log[1]));
    }

    #[test]
    fn pages_are_hash_checked_whole_and_the_altered_change_is_named() {
        let mut page = chain("a", 3);
        let mut checked = HashChecked::check(page.clone()).unwrap();
        assert_eq!(checked.len(), 3);
        checked.append(HashChecked::check(chain("b", 2)).unwrap());
        let devices: Vec<&str> = checked.iter().map(|c| c.device.as_str()).collect();
        assert_eq!(
            devices,
            ["a", "a", "a", "b", "b"],
            "a later page follows, in order"
        );
        page[1].reason = Some("altered".into());
        let err = HashChecked::check(page).unwrap_err();
        assert!(err.to_string().contains("id a-2"), "{err}");
        assert!(err.to_string().contains("does not match its hash"), "{err}");
    }
}
