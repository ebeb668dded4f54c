//! What screens, printouts and exports read about a subject, whoever read it (a laptop's store
//! from its projections, the server from its copy of the log through [`crate::project`]).
//!
//! Owns the read-model records only; they are built elsewhere and never written back.

use ecrf_core::query::QueryState;
use ecrf_core::signature::SignatureMeaning;
use ecrf_core::{Role, Value};
use serde::Serialize;

use crate::change::Change;

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
    /// Current values, by subject, form instance and item.
    pub values: Vec<ExportValue>,
    /// Users of the store.
    pub users: Vec<User>,
    /// Electronic signatures in signing order, each with whether it still holds (a covered
    /// value changed since: broken).
    pub signatures: Vec<Signature>,
    /// The whole change log in append order, as consecutive parts (read in parallel; none when
    /// not asked for), without what no export shows: `warning` and `base` are `None` and
    /// `prev_hash` is empty (the chain is checked by `ecrf audit verify`, not by exports).
    pub changes: Vec<Vec<Change>>,
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
