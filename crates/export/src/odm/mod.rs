//! CDISC ODM 1.3.2: the study definition as `Study/MetaDataVersion`, the data as `ClinicalData`
//! with an `AuditRecord` per change, and `AdminData` (users, sites).
//!
//! Owns the mapping between the study model and ODM, used both ways ([`crate::odm_import`]
//! reads what this writes). Native ODM carries what it can express: events, forms, item groups
//! (sections), items with data types, lengths, significant digits, questions and descriptions in
//! English and Chinese, units, hard and soft range checks, code lists, derivations
//! (`MethodDef`). What ODM has no element for is carried in `Alias` elements with `ecrf:`
//! contexts (item type, missing-data codes, ask-when conditions, repeat kind, entry, file) and
//! edit rules as `ConditionDef`s whose `FormalExpression` (context `ecrf-rule`) holds the rule as
//! JSON. Invariant: definition → ODM → definition gives back the same definition.
//!
//! Data: a snapshot (`FileType="Snapshot"`) has one `ItemData` per current value; with the
//! audit trail (`FileType="Transactional"`) every `item.set` change of the log is one `ItemData`
//! (Insert / Update / Remove) with its `AuditRecord` (user, site, local time with offset, reason,
//! change id), and every `subject.create` is the `AuditRecord` of its `SubjectData`. Missing-data
//! codes are written as the value `@ND`, `@UNK`, `@NA`.
//!
//! Signatures: `AdminData` has one `SignatureDef` per meaning (approval, review; electronic,
//! user id + password); a form instance's signature is the `Signature` of its `FormData`, a
//! casebook's the `Signature` of its `SubjectData` (user, site, meaning, local time stamp). ODM
//! allows one signature per element: the latest of its scope is written — in a snapshot only while
//! it still holds (no value it covers changed since), with the audit trail whether or not it
//! still holds. Every signature is in `audit_trail.csv` (`signature.sign`).
//!
//! The writer is split by part of the file: `xml` (the small escaping XML writer), [`oid`] (every
//! OID), `metadata` (`Study`, `MetaDataVersion`), `admin` (`AdminData`: users, sites,
//! `SignatureDef`s), `clinical` (`ClinicalData`: snapshot or transactional) and `audit` (each
//! `AuditRecord` and `Signature` with its local time stamp).

use std::io::Write;

use ecrf_core::study::ItemType;
use ecrf_core::{FormDef, Study, Value};

use crate::ExportError;
use crate::source::TrialData;

mod admin;
mod audit;
mod clinical;
mod metadata;
pub mod oid;
mod xml;

use admin::write_admin;
use clinical::write_clinical;
use metadata::write_study;
use xml::Xml;
pub use xml::esc;

/// The ODM namespace.
pub const NS: &str = "http://www.cdisc.org/ns/odm/v1.3";

/// Our item type's name (the `ecrf:type` alias).
pub fn type_name(t: ItemType) -> &'static str {
    match t {
        ItemType::Integer => "integer",
        ItemType::Decimal => "decimal",
        ItemType::Date => "date",
        ItemType::DateTime => "datetime",
        ItemType::Choice => "choice",
        ItemType::MultiChoice => "multichoice",
        ItemType::YesNo => "yesno",
        ItemType::YesNoUnk => "yesnounk",
        ItemType::Text => "text",
    }
}

/// An item value as ODM writes it.
pub fn odm_value(v: &Value) -> String {
    match v {
        Value::DateTime(t) => t.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        Value::Codes(cs) => cs.join(" "),
        other => other.to_string(),
    }
}

/// Writes the definition only (for `ecrf study export-odm` and the round trip).
pub fn write_definition<W: Write>(out: W, study: &Study, created: &str) -> std::io::Result<()> {
    let mut x = Xml {
        out,
        depth: 0,
        pretty: true,
    };
    header(&mut x, study, created, "Snapshot")?;
    write_study(&mut x, study)?;
    x.close("ODM")?;
    x.out.flush()
}

fn header<W: Write>(
    x: &mut Xml<W>,
    study: &Study,
    created: &str,
    file_type: &str,
) -> std::io::Result<()> {
    x.out
        .write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
    let file_oid = format!("{}.{}.{}", study.id, file_type, created);
    x.open(
        "ODM",
        &[
            ("xmlns", NS),
            ("FileType", file_type),
            ("FileOID", &file_oid),
            ("CreationDateTime", created),
            ("ODMVersion", "1.3.2"),
            ("Originator", "ecrf"),
            ("SourceSystem", "ecrf"),
            ("SourceSystemVersion", env!("CARGO_PKG_VERSION")),
        ],
    )
}

/// Writes the definition, admin data and clinical data (`audit`: every change with its
/// `AuditRecord`, else the current values).
pub fn write_odm<W: Write>(
    out: W,
    study: &Study,
    data: &TrialData,
    forms: &[&FormDef],
    audit: bool,
    created: &str,
) -> Result<(), ExportError> {
    let io = |e: std::io::Error| ExportError::Io {
        path: Default::default(),
        source: e,
    };
    let mut x = Xml {
        out,
        depth: 0,
        pretty: true,
    };
    header(
        &mut x,
        study,
        created,
        if audit { "Transactional" } else { "Snapshot" },
    )
    .map_err(io)?;
    write_study(&mut x, study).map_err(io)?;
    write_admin(&mut x, study, data).map_err(io)?;
    write_clinical(&mut x, study, data, forms, audit)?;
    x.close("ODM").map_err(io)?;
    x.out.flush().map_err(io)
}
