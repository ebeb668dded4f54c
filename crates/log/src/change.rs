//! The change record: one immutable entry of the log, as hashed, chained, stored and synced.
//!
//! Invariants: the hash covers every field but `seq`, `hash` and `signature` (which signs it), each length-prefixed, so no two
//! different changes encode the same bytes; `seq` is only where the change sits in the log that
//! holds it (a laptop's append order, the server's commit order): it is never hashed and never
//! travels; values and bodies are kept as the exact text that was hashed, so a change read back
//! or received hashes as it was written, byte for byte.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::kind::ChangeKind;

/// `prev_hash` of a device's first change.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One change. Values are the JSON of [`ecrf_core::Value`]; other bodies are typed in
/// [`crate::body`] and read with [`Change::body`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Change {
    /// Position in the log that holds it, from 1 (a store's append order, the server's commit
    /// order); 0 until appended. Not hashed, not sent.
    #[serde(skip)]
    pub seq: i64,
    /// Globally unique id (UUID v7).
    pub change_id: String,
    /// Device that made the change.
    pub device: String,
    /// That device's own counter, from 1.
    pub device_seq: i64,
    /// What the change does.
    pub kind: ChangeKind,
    /// Subject number.
    pub subject: Option<String>,
    /// Form instance, like `DLY#3`.
    pub form: Option<String>,
    /// Item id (or user name for the user kinds).
    pub item: Option<String>,
    /// Value before.
    pub old_value: Option<String>,
    /// Value after, or the kind's body.
    pub new_value: Option<String>,
    /// Who.
    pub user: String,
    /// In which role.
    pub role: String,
    /// When, UTC, RFC 3339 with milliseconds.
    pub utc: String,
    /// The device's UTC offset at that moment, like `+08:00`.
    pub local_offset: String,
    /// Why (required when a saved value changes).
    pub reason: Option<String>,
    /// Soft warnings confirmed with this change (JSON list of findings).
    pub warning: Option<String>,
    /// Hash of the same device's previous change ([`GENESIS`] for its first).
    pub prev_hash: String,
    /// For `item.set`: JSON list of the change ids of the item's values this change replaces
    /// (the values its writer saw; two or more when it resolves a conflict). `None` in changes
    /// written before sync existed: they replace whatever the item held.
    #[serde(default)]
    pub base: Option<String>,
    /// Where the value came from when it was not typed: JSON of a [`crate::body::Provenance`]
    /// (a laboratory file's SHA-256, format and the result's own id). Hashed when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Hash of this change.
    pub hash: String,
    /// The author's Ed25519 signature over the hash ([`crate::author`]), 128 hex characters.
    /// Not hashed: it signs the hash. `None` in changes written before changes were signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl Change {
    /// A change of `kind` with every other field empty: what a writer fills in (subject, form,
    /// item, value, reason) before it is numbered, chained, dated, hashed and signed.
    pub fn blank(kind: ChangeKind) -> Change {
        Change {
            seq: 0,
            change_id: String::new(),
            device: String::new(),
            device_seq: 0,
            kind,
            subject: None,
            form: None,
            item: None,
            old_value: None,
            new_value: None,
            user: String::new(),
            role: String::new(),
            utc: String::new(),
            local_offset: String::new(),
            reason: None,
            warning: None,
            prev_hash: String::new(),
            base: None,
            source: None,
            hash: String::new(),
            signature: None,
        }
    }

    /// The canonical hash: SHA-256 over every field but `seq` and `hash`, each length-prefixed
    /// so no two different changes encode the same bytes.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |v: Option<&str>| match v {
            None => h.update(u32::MAX.to_be_bytes()),
            Some(s) => {
                h.update((s.len() as u32).to_be_bytes());
                h.update(s.as_bytes());
            }
        };
        let device_seq = self.device_seq.to_string();
        field(Some("ecrf-change-v1"));
        field(Some(&self.change_id));
        field(Some(&self.device));
        field(Some(&device_seq));
        field(Some(self.kind.as_str()));
        field(self.subject.as_deref());
        field(self.form.as_deref());
        field(self.item.as_deref());
        field(self.old_value.as_deref());
        field(self.new_value.as_deref());
        field(Some(&self.user));
        field(Some(&self.role));
        field(Some(&self.utc));
        field(Some(&self.local_offset));
        field(self.reason.as_deref());
        field(self.warning.as_deref());
        field(Some(&self.prev_hash));
        // Appended only when present, so changes written before it existed keep their hash
        // (length-prefixed fields: 17 and 18 fields never encode the same bytes).
        if let Some(base) = &self.base {
            field(Some(base));
        }
        // A source makes 19 fields (base written or marked absent, then the source): never
        // the bytes of a change without one.
        if let Some(source) = &self.source {
            if self.base.is_none() {
                field(None);
            }
            field(Some(source));
        }
        hex::encode(h.finalize())
    }

    /// True when the stored hash is the hash of the content.
    pub fn hash_holds(&self) -> bool {
        self.compute_hash() == self.hash
    }

    /// A short description for messages: `change #12 [item.set 01-0001 DLY#3 MAP, id …]`.
    pub fn describe(&self) -> String {
        let mut s = format!("change #{} [{}", self.seq, self.kind);
        for part in [&self.subject, &self.form, &self.item]
            .into_iter()
            .flatten()
        {
            s.push(' ');
            s.push_str(part);
        }
        s.push_str(&format!(", id {}]", self.change_id));
        s
    }
}

/// Changes as a server stores them (each one's `seq` and JSON record), many in one buffer:
/// a site's hundred thousand records read for an export are two allocations, not a string each,
/// and the buffer is cleared and filled again for the next site rather than freed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredRecords {
    /// The records' JSON, one after the other.
    json: Vec<u8>,
    /// Each record's `seq` and where its JSON ends in `json`.
    rows: Vec<(i64, usize)>,
}

/// A stored record that is not a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored change #{seq}: {why}")]
pub struct BadRecord {
    /// Its `seq`.
    pub seq: i64,
    /// What is wrong with it.
    pub why: String,
}

impl StoredRecords {
    /// Appends a record (its bytes are read as JSON only by [`StoredRecords::changes`]).
    pub fn push(&mut self, seq: i64, json: &[u8]) {
        self.json.extend_from_slice(json);
        self.rows.push((seq, self.json.len()));
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Forgets every record and keeps the room they took.
    pub fn clear(&mut self) {
        self.json.clear();
        self.rows.clear();
    }

    /// Each record's `seq` and JSON, in the order pushed.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (i64, &[u8])> + '_ {
        self.rows.iter().enumerate().map(|(i, &(seq, end))| {
            let start = if i == 0 { 0 } else { self.rows[i - 1].1 };
            (seq, &self.json[start..end])
        })
    }

    /// The records parsed, in the order pushed, each change given its record's `seq`. A record
    /// that is not a change's JSON (or not UTF-8) is an error naming its `seq`.
    pub fn changes(&self) -> impl ExactSizeIterator<Item = Result<Change, BadRecord>> + '_ {
        self.iter().map(|(seq, json)| {
            let mut change: Change = serde_json::from_slice(json).map_err(|e| BadRecord {
                seq,
                why: e.to_string(),
            })?;
            change.seq = seq;
            Ok(change)
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A change of `kind` by a nurse, hashed.
    pub(crate) fn change(kind: ChangeKind, old: Option<&str>, new: Option<&str>) -> Change {
        let mut c = Change {
            seq: 0,
            change_id: "c".into(),
            device: "d".into(),
            device_seq: 1,
            kind,
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
            prev_hash: GENESIS.into(),
            hash: String::new(),
            base: None,
            signature: None,
            source: None,
        };
        c.hash = c.compute_hash();
        c
    }

    /// The hash of a fixed change is the one earlier builds wrote: stores and servers holding
    /// changes from them still verify.
    #[test]
    fn the_hash_is_stable_across_versions() {
        let c = change(ChangeKind::ItemSet, None, Some("{\"int\":72}"));
        // Computed independently (Python's hashlib over the same length-prefixed fields).
        assert_eq!(
            c.hash,
            "617253b0d5b7d8c6170b5f7e515638d31ceb73e89891559b923ef4e1d525e780"
        );
        // Each field counts, seq does not.
        let mut other = c.clone();
        other.seq = 99;
        assert!(other.hash_holds());
        other.new_value = Some("{\"int\":73}".into());
        assert!(!other.hash_holds());
        let mut based = c.clone();
        based.base = Some("[]".into());
        assert_ne!(based.compute_hash(), c.hash);
    }

    #[test]
    fn seq_never_travels_and_unknown_fields_are_refused() {
        let mut c = change(ChangeKind::SubjectCreated, None, Some("01"));
        c.seq = 7;
        let json = serde_json::to_string(&c).unwrap();
        assert!(!json.contains("\"seq\""), "{json}");
        let back: Change = serde_json::from_str(&json).unwrap();
        assert_eq!(back.seq, 0);
        assert_eq!(back.hash, c.hash);
        let extra = json.replacen('{', "{\"seq\":3,", 1);
        assert!(serde_json::from_str::<Change>(&extra).is_err());
    }

    /// Records read back as pushed, parsed with their `seq`; a bad record names its `seq`, and
    /// a cleared buffer holds nothing.
    #[test]
    fn stored_records_read_back_as_pushed() {
        let a = change(ChangeKind::ItemSet, None, Some("{\"text\":\"é\"}"));
        let b = change(ChangeKind::SubjectCreated, None, Some("01"));
        let mut records = StoredRecords::default();
        assert!(records.is_empty());
        records.push(3, serde_json::to_string(&a).unwrap().as_bytes());
        records.push(9, serde_json::to_string(&b).unwrap().as_bytes());
        records.push(12, b"{\"change_id\":");
        records.push(13, b"");
        assert_eq!(records.len(), 4);
        let got: Vec<_> = records.changes().collect();
        let mut want_a = a.clone();
        want_a.seq = 3;
        let mut want_b = b.clone();
        want_b.seq = 9;
        assert_eq!(got[0], Ok(want_a));
        assert_eq!(got[1], Ok(want_b));
        assert!(matches!(&got[2], Err(BadRecord { seq: 12, .. })), "{got:?}");
        assert!(matches!(&got[3], Err(BadRecord { seq: 13, .. })), "{got:?}");
        assert_eq!(
            records.iter().map(|(seq, json)| (seq, json.len())).last(),
            Some((13, 0))
        );
        // Not UTF-8 inside a string: refused, not read as something else.
        let mut bad = StoredRecords::default();
        let mut json = serde_json::to_vec(&b).unwrap();
        let at = json.windows(2).position(|w| w == b"01").unwrap();
        json[at] = 0xff;
        bad.push(1, &json);
        assert!(bad.changes().next().unwrap().is_err());
        records.clear();
        assert!(records.is_empty());
        assert_eq!(records.iter().count(), 0);
    }
}
