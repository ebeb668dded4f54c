//! OIDs, in one place so writer and reader agree ([`super::write_definition`] writes them,
//! [`crate::odm_import`] reads them back).
//!
//! Invariant: an OID is a fixed prefix and the ids of the definition (`IT.<form>.<item>`), so
//! each is unique as long as the ids it is made of are; the clinical data spell a few of them
//! in parts without building the string (`IT.`, `USR.`, `LOC.`), which must stay the same.

/// Study event of a form.
pub fn event(form: &str) -> String {
    format!("SE.{form}")
}
/// Form.
pub fn form(form: &str) -> String {
    format!("F.{form}")
}
/// Item group (section).
pub fn group(form: &str, section: &str) -> String {
    format!("IG.{form}.{section}")
}
/// Item.
pub fn item(form: &str, item: &str) -> String {
    format!("IT.{form}.{item}")
}
/// Code list.
pub fn codelist(name: &str) -> String {
    format!("CL.{name}")
}
/// Built-in yes/no (and unknown) answers.
pub fn builtin(item_type: &str) -> String {
    format!("CLB.{item_type}")
}
/// Derivation.
pub fn method(name: &str) -> String {
    format!("MT.{name}")
}
/// Edit rule.
pub fn rule(id: &str) -> String {
    format!("RULE.{id}")
}
/// Site.
pub fn location(site: &str) -> String {
    format!("LOC.{site}")
}
/// User of a site.
pub fn user(site: &str, username: &str) -> String {
    format!("USR.{site}.{username}")
}
/// Meaning of a signature.
pub fn signature_def(meaning: &str) -> String {
    format!("SD.{meaning}")
}
/// Metadata version.
pub fn mdv(version: &str) -> String {
    format!("MDV.{version}")
}
