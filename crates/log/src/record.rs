//! What screens, printouts and exports read about a subject, whoever read it (a laptop's store
//! from its projections, the server from its copy of the log through [`crate::project`]).
//!
//! Owns the read-model records only; they are built elsewhere and never written back.

use ecrf_core::query::QueryState;
use ecrf_core::signature::SignatureMeaning;
use std::collections::BTreeMap;

use ecrf_core::{Role, Value};
use serde::Serialize;

use crate::change::Change;
use crate::kind::ChangeKind;

/// One item's current value as shown on a form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemState {
    /// Item id.
    pub item: String,
    /// Current value.
    pub value: Value,
    /// Confirmed warnings (JSON list of findings), if any.
    pub warning: Option<String>,
}

/// A query as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Query {
    /// Id.
    pub id: String,
    /// Subject.
    pub subject: String,
    /// Form instance.
    pub form: String,
    /// Item.
    pub item: String,
    /// State.
    pub state: QueryState,
    /// The question.
    pub text: String,
    /// Raised by.
    pub raised_by: String,
    /// When raised (UTC).
    pub raised_utc: String,
}

/// A signature and whether it still holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// The signing event's change id.
    pub id: String,
    /// Subject.
    pub subject: String,
    /// `DLY#3` or `casebook`.
    pub scope: String,
    /// Meaning.
    pub meaning: SignatureMeaning,
    /// Signer user name.
    pub signer: String,
    /// Printed name.
    pub name: String,
    /// UTC time.
    pub utc: String,
    /// Device offset at signing.
    pub local_offset: String,
    /// False once a covered value changed: the record needs re-signing.
    pub valid: bool,
}

/// A user of a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct User {
    /// Login name.
    pub username: String,
    /// Full name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// False once deactivated (users are never deleted).
    pub active: bool,
}

/// A subject as the export sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSubject {
    /// Screening number (the store's key).
    pub subject: String,
    /// Site code.
    pub site: String,
    /// When the subject was created (UTC, RFC 3339).
    pub created_utc: String,
}

/// One current value.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportValue {
    /// Subject number.
    pub subject: String,
    /// Form instance, like `DLY#3`.
    pub form: String,
    /// Item id.
    pub item: String,
    /// The value.
    pub value: Value,
    /// Sequence of the change that set it.
    pub change_seq: i64,
}

/// A consistent snapshot of one store for exporting.
#[derive(Debug, Clone)]
pub struct ExportView {
    /// The store's site code.
    pub site: String,
    /// The store's id.
    pub store_id: String,
    /// Subjects in order of creation.
    pub subjects: Vec<ExportSubject>,
    /// Current values: subject → form instance → item → value (each name held once, however
    /// many values it has).
    pub values: BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>>,
    /// Users of the store.
    pub users: Vec<User>,
    /// Electronic signatures in signing order, each with whether it still holds (a covered
    /// value changed since: broken).
    pub signatures: Vec<Signature>,
    /// The whole change log in append order, as consecutive parts (read in parallel; none when
    /// not asked for), packed, without what no export shows (`warning`, `base`, `prev_hash`:
    /// the chain is checked by `ecrf audit verify`, not by exports).
    pub changes: Vec<PackedLog>,
    /// Definition versions the store received: version → its files.
    pub definitions: Vec<(String, Vec<(String, String)>)>,
    /// The version each form instance was started under: (subject, instance, version); an
    /// instance not listed is the base version's.
    pub instance_versions: Vec<(String, String, String)>,
}

/// One form instance of a casebook with its values (typed and derived).
#[derive(Debug, Clone, PartialEq)]
pub struct CasebookForm {
    /// Form instance.
    pub key: ecrf_core::FormKey,
    /// Current values in the form's item order, then derived values.
    pub values: Vec<ItemState>,
    /// Items verified against the source (and unchanged since).
    pub verified: Vec<String>,
    /// The study definition version it was entered under (printed on its pages).
    pub version: String,
}

/// A subject's whole record, as a printout (or the coordinating centre's casebook view) reads
/// it: read in one go by whoever holds the data, handed to the printer.
#[derive(Debug, Clone, PartialEq)]
pub struct Casebook {
    /// Subject number.
    pub subject: String,
    /// Site code.
    pub site: String,
    /// Instances with data, in schedule order then repeat number.
    pub forms: Vec<CasebookForm>,
    /// Every change of the subject, in log order.
    pub audit: Vec<Change>,
    /// Full names by login name.
    pub names: std::collections::BTreeMap<String, String>,
    /// The subject's queries.
    pub queries: Vec<Query>,
    /// The subject's signatures.
    pub signatures: Vec<Signature>,
}

/// The texts of a change that exports show, borrowed (from a store's row or a [`Change`]), to be
/// packed into a [`PackedLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeTexts<'a> {
    /// Change id.
    pub change_id: &'a str,
    /// Device.
    pub device: &'a str,
    /// Subject.
    pub subject: Option<&'a str>,
    /// Form instance.
    pub form: Option<&'a str>,
    /// Item (or user name).
    pub item: Option<&'a str>,
    /// Value before.
    pub old_value: Option<&'a str>,
    /// Value after, or the kind's body.
    pub new_value: Option<&'a str>,
    /// Who.
    pub user: &'a str,
    /// In which role.
    pub role: &'a str,
    /// When (UTC).
    pub utc: &'a str,
    /// The device's UTC offset.
    pub local_offset: &'a str,
    /// Why.
    pub reason: Option<&'a str>,
    /// Hash of the change.
    pub hash: &'a str,
    /// The author's signature.
    pub signature: Option<&'a str>,
    /// Provenance of a value that was not typed.
    pub source: Option<&'a str>,
}

impl<'a> ChangeTexts<'a> {
    /// The texts of a change.
    pub fn of(c: &'a Change) -> ChangeTexts<'a> {
        ChangeTexts {
            change_id: &c.change_id,
            device: &c.device,
            subject: c.subject.as_deref(),
            form: c.form.as_deref(),
            item: c.item.as_deref(),
            old_value: c.old_value.as_deref(),
            new_value: c.new_value.as_deref(),
            user: &c.user,
            role: &c.role,
            utc: &c.utc,
            local_offset: &c.local_offset,
            reason: c.reason.as_deref(),
            hash: &c.hash,
            signature: c.signature.as_deref(),
            source: c.source.as_deref(),
        }
    }

    /// The texts in packing order ([`PackedChange::text`] reads them back by position).
    fn in_order(&self) -> [Option<&'a str>; TEXTS] {
        [
            Some(self.change_id),
            Some(self.device),
            self.subject,
            self.form,
            self.item,
            self.old_value,
            self.new_value,
            Some(self.user),
            Some(self.role),
            Some(self.utc),
            Some(self.local_offset),
            self.reason,
            Some(self.hash),
            self.signature,
            self.source,
        ]
    }
}

/// How many texts a packed change has ([`ChangeTexts::in_order`]).
const TEXTS: usize = 15;

/// A change's numbers and where its texts lie in its log's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PackedRow {
    seq: i64,
    device_seq: i64,
    /// Where the change's texts start in the buffer.
    start: usize,
    /// Where each text ends, counted from `start` (each starts where the one before ends).
    ends: [u32; TEXTS],
    /// Bit `i` set: text `i` is present (the optional texts may be absent).
    present: u16,
    kind: ChangeKind,
}

/// The changes of a log as exports read them, packed: the texts of every change one after
/// the other in one buffer, and per change its numbers and where its texts end.
///
/// Why: a whole trial's log is half a million changes (five million for ten trials). As
/// [`Change`]s they are a dozen separate strings each, a million allocations to make and free
/// per 80,000 changes and a kilobyte of scattered memory per change for every export format to
/// walk; packed they are two allocations and about half the memory, read in order. Holds only
/// what exports show: no `warning`, `base` or `prev_hash`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackedLog {
    text: String,
    rows: Vec<PackedRow>,
}

/// A change whose texts do not fit a packed log (more than 4 GiB).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("change {0}: its texts are longer than a packed log holds")]
pub struct TooLong(pub String);

impl PackedLog {
    /// An empty log with room for `changes` changes of a usual size.
    pub fn with_capacity(changes: usize) -> PackedLog {
        PackedLog {
            text: String::with_capacity(changes.saturating_mul(512)),
            rows: Vec::with_capacity(changes),
        }
    }

    /// Appends a change.
    pub fn push(
        &mut self,
        seq: i64,
        device_seq: i64,
        kind: ChangeKind,
        texts: ChangeTexts<'_>,
    ) -> Result<(), TooLong> {
        let start = self.text.len();
        let mut ends = [0u32; TEXTS];
        let mut present = 0u16;
        for (i, t) in texts.in_order().into_iter().enumerate() {
            if let Some(t) = t {
                self.text.push_str(t);
                present |= 1 << i;
            }
            ends[i] = u32::try_from(self.text.len() - start).map_err(|_| {
                self.text.truncate(start);
                TooLong(texts.change_id.to_string())
            })?;
        }
        self.rows.push(PackedRow {
            seq,
            device_seq,
            start,
            ends,
            present,
            kind,
        });
        Ok(())
    }

    /// Appends a [`Change`] (what exports show of it).
    pub fn push_change(&mut self, c: &Change) -> Result<(), TooLong> {
        self.push(c.seq, c.device_seq, c.kind, ChangeTexts::of(c))
    }

    /// How many changes.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The changes, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = PackedChange<'_>> + '_ {
        self.rows.iter().map(|row| PackedChange {
            text: &self.text[row.start..],
            row,
        })
    }
}

/// One change of a [`PackedLog`], read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedChange<'a> {
    /// The log's texts from this change's first.
    text: &'a str,
    row: &'a PackedRow,
}

impl<'a> PackedChange<'a> {
    /// Text `i` in [`ChangeTexts::in_order`] order (empty when absent).
    fn text(&self, i: usize) -> &'a str {
        let from = if i == 0 { 0 } else { self.row.ends[i - 1] };
        &self.text[from as usize..self.row.ends[i] as usize]
    }
    /// Text `i`, or `None` when absent.
    fn optional(&self, i: usize) -> Option<&'a str> {
        (self.row.present & (1 << i) != 0).then(|| self.text(i))
    }
    /// Position in the log that holds it.
    pub fn seq(&self) -> i64 {
        self.row.seq
    }
    /// That device's own counter.
    pub fn device_seq(&self) -> i64 {
        self.row.device_seq
    }
    /// What the change does.
    pub fn kind(&self) -> ChangeKind {
        self.row.kind
    }
    /// Change id.
    pub fn change_id(&self) -> &'a str {
        self.text(0)
    }
    /// Device.
    pub fn device(&self) -> &'a str {
        self.text(1)
    }
    /// Subject.
    pub fn subject(&self) -> Option<&'a str> {
        self.optional(2)
    }
    /// Form instance.
    pub fn form(&self) -> Option<&'a str> {
        self.optional(3)
    }
    /// Item (or user name).
    pub fn item(&self) -> Option<&'a str> {
        self.optional(4)
    }
    /// Value before.
    pub fn old_value(&self) -> Option<&'a str> {
        self.optional(5)
    }
    /// Value after, or the kind's body.
    pub fn new_value(&self) -> Option<&'a str> {
        self.optional(6)
    }
    /// Who.
    pub fn user(&self) -> &'a str {
        self.text(7)
    }
    /// In which role.
    pub fn role(&self) -> &'a str {
        self.text(8)
    }
    /// When (UTC).
    pub fn utc(&self) -> &'a str {
        self.text(9)
    }
    /// The device's UTC offset.
    pub fn local_offset(&self) -> &'a str {
        self.text(10)
    }
    /// Why.
    pub fn reason(&self) -> Option<&'a str> {
        self.optional(11)
    }
    /// Hash of the change.
    pub fn hash(&self) -> &'a str {
        self.text(12)
    }
    /// The author's signature.
    pub fn signature(&self) -> Option<&'a str> {
        self.optional(13)
    }
    /// Provenance of a value that was not typed.
    pub fn source(&self) -> Option<&'a str> {
        self.optional(14)
    }

    /// The change as a [`Change`] without what a packed log does not hold (`warning` and
    /// `base` `None`, `prev_hash` empty): for reading its body.
    pub fn to_change(&self) -> Change {
        let own = |t: Option<&str>| t.map(str::to_string);
        Change {
            seq: self.seq(),
            change_id: self.change_id().to_string(),
            device: self.device().to_string(),
            device_seq: self.device_seq(),
            kind: self.kind(),
            subject: own(self.subject()),
            form: own(self.form()),
            item: own(self.item()),
            old_value: own(self.old_value()),
            new_value: own(self.new_value()),
            user: self.user().to_string(),
            role: self.role().to_string(),
            utc: self.utc().to_string(),
            local_offset: self.local_offset().to_string(),
            reason: own(self.reason()),
            warning: None,
            prev_hash: String::new(),
            hash: self.hash().to_string(),
            base: None,
            signature: own(self.signature()),
            source: own(self.source()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_change_reads_back_as_it_was_pushed() {
        let mut a = crate::change::tests::change(ChangeKind::ItemSet, None, Some("{\"int\":60}"));
        a.seq = 7;
        a.subject = Some("01-0001".into());
        a.form = Some("DLY#3".into());
        a.item = Some("MAP".into());
        a.reason = Some(String::new());
        a.signature = Some("ab".repeat(64));
        a.warning = None;
        a.base = None;
        a.prev_hash = String::new();
        let mut b = crate::change::tests::change(ChangeKind::UserAdded, None, None);
        b.seq = 8;
        b.warning = None;
        b.base = None;
        b.prev_hash = String::new();
        let mut log = PackedLog::with_capacity(0);
        log.push_change(&a).unwrap();
        log.push_change(&b).unwrap();
        assert_eq!(log.len(), 2);
        let back: Vec<Change> = log.iter().map(|c| c.to_change()).collect();
        assert_eq!(back, vec![a.clone(), b]);
        // Present but empty stays present; absent stays absent.
        let first = log.iter().next().unwrap();
        assert_eq!(first.reason(), Some(""));
        assert_eq!(first.old_value(), None);
        assert_eq!(first.form(), Some("DLY#3"));
    }
}
