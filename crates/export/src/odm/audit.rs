//! Who did what when: an `AuditRecord` per change and a `Signature` per signature, each with
//! user, site and the local time of the device with its offset.
//!
//! Invariants: `ID`s are the change ids (`AR.<change id>`, `SG.<change id>`), so each record is
//! traceable to the log; a time whose offset cannot be read is written in UTC, never dropped.

use std::io::Write;

use chrono::{DateTime, FixedOffset};
use ecrf_log::record::PackedChange;

use super::admin::meaning_name;
use super::{Xml, oid};
use crate::source::SignatureRecord;

/// One `Signature`: `ID` is `SG.` + the signing event's change id; signer, site, meaning, local
/// time.
pub(super) fn write_signature<W: Write>(
    x: &mut Xml<W>,
    s: &SignatureRecord,
) -> std::io::Result<()> {
    let id = ["SG.", s.id.as_str()].concat();
    x.open("Signature", &[("ID", &id)])?;
    x.empty("UserRef", &[("UserOID", &oid::user(&s.site, &s.signer))])?;
    x.empty("LocationRef", &[("LocationOID", &oid::location(&s.site))])?;
    x.empty(
        "SignatureRef",
        &[("SignatureOID", &oid::signature_def(meaning_name(s.meaning)))],
    )?;
    x.text("DateTimeStamp", &[], &local_stamp(&s.utc, &s.local_offset))?;
    x.close("Signature")
}

/// The local time of a change, with its offset (UTC when the offset is unreadable).
fn local_stamp(utc: &str, offset: &str) -> String {
    let Ok(t) = DateTime::parse_from_rfc3339(utc) else {
        return utc.to_string();
    };
    match offset.parse::<FixedOffset>() {
        Ok(off) => t
            .with_timezone(&off)
            .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string(),
        Err(_) => utc.to_string(),
    }
}

/// The local time stamp of the last change written (a save's changes share one).
#[derive(Default)]
pub(super) struct StampCache {
    key: (String, String),
    stamp: String,
}

/// One `AuditRecord`: `ID` is `AR.` + the change id; user, site, local time, reason. The OIDs
/// are written in parts ([`oid::user`], [`oid::location`] spell the same).
pub(super) fn write_audit_record<W: Write>(
    x: &mut Xml<W>,
    cache: &mut StampCache,
    site: &str,
    c: PackedChange<'_>,
) -> std::io::Result<()> {
    let (utc, offset) = (c.utc(), c.local_offset());
    if cache.key.0 != utc || cache.key.1 != offset {
        cache.stamp = local_stamp(utc, offset);
        cache.key = (utc.to_string(), offset.to_string());
    }
    x.open_parts("AuditRecord", &[("ID", &["AR.", c.change_id()])])?;
    x.empty_parts("UserRef", &[("UserOID", &["USR.", site, ".", c.user()])])?;
    x.empty_parts("LocationRef", &[("LocationOID", &["LOC.", site])])?;
    x.text("DateTimeStamp", &[], &cache.stamp)?;
    if let Some(r) = c.reason() {
        x.text("ReasonForChange", &[], r)?;
    }
    x.close("AuditRecord")
}
