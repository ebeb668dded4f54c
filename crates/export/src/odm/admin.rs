//! `AdminData`: the users of every site (with their site), the sites as `Location`s, and one
//! `SignatureDef` per signature meaning.
//!
//! Invariant: every `UserRef`, `LocationRef` and `SignatureRef` the clinical data write points
//! at an element written here (same [`oid`] functions, same meaning names).

use std::io::Write;

use ecrf_core::Study;
use ecrf_core::signature::SignatureMeaning;

use super::{Xml, oid};
use crate::source::TrialData;

/// `AdminData`: users, sites, signature meanings.
pub(super) fn write_admin<W: Write>(
    x: &mut Xml<W>,
    study: &Study,
    data: &TrialData,
) -> std::io::Result<()> {
    x.open("AdminData", &[("StudyOID", &study.id)])?;
    for u in &data.users {
        let user_type = match u.role.as_str() {
            "investigator" => "Investigator",
            "data_manager" | "monitor" => "Sponsor",
            _ => "Other",
        };
        x.open(
            "User",
            &[
                ("OID", &oid::user(&u.site, &u.username)),
                ("UserType", user_type),
            ],
        )?;
        x.text("LoginName", &[], &u.username)?;
        x.text("DisplayName", &[], &format!("{} ({})", u.username, u.role))?;
        x.text("FullName", &[], &u.name)?;
        x.empty("LocationRef", &[("LocationOID", &oid::location(&u.site))])?;
        x.close("User")?;
    }
    let mdv = oid::mdv(&study.version);
    for site in &data.sites {
        x.open(
            "Location",
            &[
                ("OID", &oid::location(site)),
                ("Name", &format!("Site {site}")),
                ("LocationType", "Site"),
            ],
        )?;
        x.empty(
            "MetaDataVersionRef",
            &[
                ("StudyOID", &study.id),
                ("MetaDataVersionOID", &mdv),
                ("EffectiveDate", "2025-10-01"),
            ],
        )?;
        x.close("Location")?;
    }
    for meaning in [SignatureMeaning::Approval, SignatureMeaning::Review] {
        x.open(
            "SignatureDef",
            &[
                ("OID", &oid::signature_def(meaning_name(meaning))),
                ("Methodology", "Electronic"),
            ],
        )?;
        let (en, zh) = meaning.statement();
        x.text("Meaning", &[], &format!("{en} / {zh}"))?;
        x.text(
            "LegalReason",
            &[],
            "Electronic signature (21 CFR Part 11): the signer's user id and password, bound to \
             the SHA-256 of every value it covers",
        )?;
        x.close("SignatureDef")?;
    }
    x.close("AdminData")
}

/// A signature meaning's name (`approval`, `review`), as in the store.
pub(super) fn meaning_name(m: SignatureMeaning) -> &'static str {
    match m {
        SignatureMeaning::Approval => "approval",
        SignatureMeaning::Review => "review",
    }
}
