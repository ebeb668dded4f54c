//! Trial data from change logs alone — the central server's copy of every site's log — with
//! the projections a store makes at save and sync time: subjects from `subject.create`, current
//! values from the heads of each item (`item.set` with its `base`), users from `user.add` and
//! role changes, signatures from `signature.sign` (still valid while the values they cover hash
//! as when signed).
//!
//! Owns nothing but this replay; it follows `ecrf_store`'s rules (store.rs `apply`,
//! replica.rs `apply_item`): an item's heads are the values no change names in its `base` (a
//! change without `base` replaces whatever the item held); the value shown is the head with the
//! greatest change id; a cleared head shows nothing. A test checks the replay against real
//! stores (an export from the server equals the merge of the site stores' exports).

use std::collections::{BTreeMap, HashMap, HashSet};

use ecrf_core::signature::{SignatureScope, values_hash};
use ecrf_core::{FormKey, Role, Value};
use ecrf_store::Change;
use ecrf_store::log::kind;
use ecrf_store::oversight::{SignatureBody, kind as oversight};

use crate::ExportError;
use crate::source::{SignatureRecord, SiteLog, SubjectRecord, TrialData, UserRecord};

/// An item's values that no later change replaced: change id → value (JSON; `None` = cleared).
type Heads = BTreeMap<String, Option<String>>;

/// Replays the logs of sites (each in its commit order) into trial data; the changes are kept
/// only when `with_changes`. `sites` lists every site, also those without changes yet.
pub fn from_logs(
    sites: &[String],
    logs: Vec<(String, Vec<Change>)>,
    with_changes: bool,
) -> Result<TrialData, ExportError> {
    let mut data = TrialData::default();
    data.sites.extend(sites.iter().cloned());
    let mut seen_subjects: HashSet<String> = HashSet::new();
    for (site, log) in logs {
        data.sites.insert(site.clone());
        let mut heads: HashMap<(String, String, String), Heads> = HashMap::new();
        let mut superseded: HashSet<String> = HashSet::new();
        let mut users: BTreeMap<String, UserRecord> = BTreeMap::new();
        let mut signed: Vec<&Change> = Vec::new();
        for c in &log {
            match c.kind.as_str() {
                kind::SUBJECT_CREATED => {
                    let Some(subject) = c.subject.clone() else {
                        continue;
                    };
                    if seen_subjects.insert(subject.clone()) {
                        data.subjects.push(SubjectRecord {
                            subject,
                            site: c.new_value.clone().unwrap_or_default(),
                        });
                    }
                }
                kind::ITEM_SET => {
                    let key = (
                        c.subject.clone().unwrap_or_default(),
                        c.form.clone().unwrap_or_default(),
                        c.item.clone().unwrap_or_default(),
                    );
                    let item_heads = heads.entry(key).or_default();
                    let replaced: Vec<String> = match &c.base {
                        None => item_heads.keys().cloned().collect(),
                        Some(b) => serde_json::from_str(b).map_err(|e| {
                            ExportError::Data(format!(
                                "{}: its base is not a list of ids: {e}",
                                c.describe()
                            ))
                        })?,
                    };
                    for id in replaced {
                        item_heads.remove(&id);
                        superseded.insert(id);
                    }
                    if !superseded.contains(&c.change_id) {
                        item_heads.insert(c.change_id.clone(), c.new_value.clone());
                    }
                }
                kind::USER_ADDED => {
                    let info: serde_json::Value = c
                        .new_value
                        .as_deref()
                        .and_then(|v| serde_json::from_str(v).ok())
                        .unwrap_or_default();
                    let username = c.item.clone().unwrap_or_default();
                    users.insert(
                        username.clone(),
                        UserRecord {
                            username,
                            name: info["name"].as_str().unwrap_or_default().to_string(),
                            role: role_name(info["role"].as_str().unwrap_or_default(), c)?,
                            site: site.clone(),
                        },
                    );
                }
                oversight::SIGNED => signed.push(c),
                oversight::USER_ROLE => {
                    if let Some(u) = c.item.as_deref().and_then(|n| users.get_mut(n)) {
                        u.role = role_name(c.new_value.as_deref().unwrap_or_default(), c)?;
                    }
                }
                _ => {}
            }
        }
        // The value shown: the head with the greatest change id (none when it was cleared).
        let shown: BTreeMap<(String, String, String), String> = heads
            .into_iter()
            .filter_map(|(k, h)| {
                h.into_iter()
                    .next_back()
                    .and_then(|(_, v)| v)
                    .map(|v| (k, v))
            })
            .collect();
        for c in signed {
            data.signatures.push(signature(&site, c, &shown)?);
        }
        for ((subject, form, item), json) in shown {
            let value = Value::from_json(&json).map_err(|e| {
                ExportError::Data(format!(
                    "{subject} {form} {item}: stored value is unreadable: {e}"
                ))
            })?;
            data.values
                .entry(subject)
                .or_default()
                .entry(form)
                .or_default()
                .insert(item, value);
        }
        data.users.extend(users.into_values());
        if with_changes {
            data.logs.push(SiteLog {
                site: site.clone(),
                changes: log,
            });
        }
    }
    for s in &data.subjects {
        data.values.entry(s.subject.clone()).or_default();
    }
    Ok(data)
}

/// A signature from its signing event, valid while the values of its scope hash as signed.
fn signature(
    site: &str,
    c: &Change,
    shown: &BTreeMap<(String, String, String), String>,
) -> Result<SignatureRecord, ExportError> {
    let bad = |e: &dyn std::fmt::Display| ExportError::Data(format!("{}: {e}", c.describe()));
    let body: SignatureBody =
        serde_json::from_str(c.new_value.as_deref().unwrap_or_default()).map_err(|e| bad(&e))?;
    let subject = c.subject.clone().unwrap_or_default();
    let scope_text = c.form.clone().unwrap_or_default();
    let scope = if scope_text == "casebook" {
        SignatureScope::Casebook
    } else {
        let (form, repeat) = match scope_text.split_once('#') {
            Some((f, n)) => (f, Some(n.parse::<u32>().map_err(|e| bad(&e))?)),
            None => (scope_text.as_str(), None),
        };
        SignatureScope::Form(FormKey {
            form: form.to_string(),
            repeat,
        })
    };
    let covered = shown
        .range((subject.clone(), String::new(), String::new())..)
        .take_while(|((s, _, _), _)| *s == subject)
        .filter(|((_, f, _), _)| scope_text == "casebook" || *f == scope_text)
        .map(|((_, f, i), v)| (f.as_str(), i.as_str(), v.as_str()));
    let valid = values_hash(&subject, &scope, covered) == body.values_hash;
    Ok(SignatureRecord {
        site: site.to_string(),
        id: c.change_id.clone(),
        subject,
        scope: scope_text,
        meaning: body.meaning,
        signer: c.user.clone(),
        name: body.name,
        utc: c.utc.clone(),
        local_offset: c.local_offset.clone(),
        valid,
    })
}

fn role_name(role: &str, c: &Change) -> Result<String, ExportError> {
    role.parse::<Role>()
        .map(|r| r.to_string())
        .map_err(|e| ExportError::Data(format!("{}: {e}", c.describe())))
}
