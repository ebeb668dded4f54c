//! Trial data from change logs alone — the central server's copy of every site's log — folded
//! with the projection rules of [`ecrf_log::project`] (the rules a store applies at save and
//! sync time): subjects, the value shown of each item, users, signatures.
//!
//! Owns only turning each site's [`Projection`] into [`TrialData`]: a subject seen at two sites
//! is kept once (the first), users are every device's `user.add` of the site. A test checks the
//! replay against real stores (an export from the server equals the merge of the site stores'
//! exports).
//!
//! Each site's log folds on its own (a projection is one site's), so the sites are folded by as
//! many threads as there are cores, then merged in the order given: the result is the same as
//! folding them one after the other. The thread that folds a site's log also packs it for the
//! exports ([`PackedLog`]) and frees the changes as received.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ecrf_core::Value;
use ecrf_log::body::StudyPublished;
use ecrf_log::project::{ProjectError, ProjectedSubject, ProjectedUser};
use ecrf_log::record::PackedLog;
use ecrf_log::{Change, Projection, Signature};

use crate::ExportError;
use crate::source::{SignatureRecord, SiteLog, SubjectRecord, TrialData, UserRecord};

/// What one site's log says, folded, and the log packed when kept.
struct Folded {
    log: Option<PackedLog>,
    subjects: Vec<ProjectedSubject>,
    signatures: Vec<Signature>,
    versions: BTreeMap<String, StudyPublished>,
    instance_versions: BTreeMap<(String, String), String>,
    values: BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>>,
    users: BTreeMap<String, ProjectedUser>,
}

/// Folds one site's log, and packs it when `keep`.
fn fold(log: Vec<Change>, keep: bool) -> Result<Folded, ExportError> {
    let data_error = |e: ProjectError| ExportError::Data(e.to_string());
    let projection = Projection::of(&log).map_err(data_error)?;
    let signatures = projection.signatures().map_err(data_error)?;
    let values = projection.values().map_err(data_error)?;
    let log = if keep {
        let mut packed = PackedLog::with_capacity(log.len());
        for c in &log {
            packed
                .push_change(c)
                .map_err(|e| ExportError::Data(e.to_string()))?;
        }
        Some(packed)
    } else {
        None
    };
    Ok(Folded {
        log,
        signatures,
        values,
        subjects: projection.subjects,
        versions: projection.versions,
        instance_versions: projection.instance_versions,
        users: projection.users,
    })
}

/// Replays the logs of sites (each in its commit order) into trial data; the changes are kept
/// only when `with_changes`. `sites` lists every site, also those without changes yet.
pub fn from_logs(
    sites: &[String],
    logs: Vec<(String, Vec<Change>)>,
    with_changes: bool,
) -> Result<TrialData, ExportError> {
    // Each site's fold, by threads that take the next site not yet taken.
    let count = logs.len();
    let mut names = Vec::with_capacity(count);
    let mut inputs = Vec::with_capacity(count);
    for (site, log) in logs {
        names.push(site);
        inputs.push(Mutex::new(Some(log)));
    }
    let slots: Vec<Mutex<Option<Result<Folded, ExportError>>>> =
        (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(count);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let (Some(slot), Some(input)) = (slots.get(i), inputs.get(i)) else {
                break;
            };
            let Some(log) = input.lock().ok().and_then(|mut l| l.take()) else {
                continue;
            };
            let folded = fold(log, with_changes);
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(folded);
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
    let mut data = TrialData::default();
    data.sites.extend(sites.iter().cloned());
    let mut seen_subjects: HashSet<String> = HashSet::new();
    for (site, slot) in names.into_iter().zip(slots) {
        let folded = slot.into_inner().ok().flatten().ok_or_else(|| {
            ExportError::Data(format!("site {site}: the replay stopped (a bug)"))
        })??;
        data.sites.insert(site.clone());
        for s in folded.subjects {
            if seen_subjects.insert(s.subject.clone()) {
                data.subjects.push(SubjectRecord {
                    subject: s.subject,
                    site: s.site,
                });
            }
        }
        for signature in folded.signatures {
            data.signatures.push(SignatureRecord {
                site: site.clone(),
                signature,
            });
        }
        for (version, p) in folded.versions {
            data.definitions.entry(version).or_insert(p.files);
        }
        for (key, version) in folded.instance_versions {
            data.versions.entry(key).or_insert(version);
        }
        for (subject, forms) in folded.values {
            match data.values.entry(subject) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(forms);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    let mine = o.get_mut();
                    for (form, items) in forms {
                        mine.entry(form).or_default().extend(items);
                    }
                }
            }
        }
        data.users
            .extend(folded.users.into_iter().map(|(username, u)| UserRecord {
                username,
                name: u.name,
                role: u.role.to_string(),
                site: site.clone(),
            }));
        if let Some(log) = folded.log {
            data.logs.push(SiteLog {
                site,
                changes: Arc::new(log),
            });
        }
    }
    for s in &data.subjects {
        data.values.entry(s.subject.clone()).or_default();
    }
    Ok(data)
}
