//! Trial data from change logs alone — the central server's copy of every site's log — folded
//! with the projection rules of [`ecrf_log::project`] (the rules a store applies at save and
//! sync time): subjects, the value shown of each item, users, signatures.
//!
//! Owns only turning each site's [`Projection`] into [`TrialData`]: a subject seen at two sites
//! is kept once (the first), users are every device's `user.add` of the site. A test checks the
//! replay against real stores (an export from the server equals the merge of the site stores'
//! exports).

use std::collections::HashSet;

use ecrf_log::{Change, Projection};

use crate::ExportError;
use crate::source::{SignatureRecord, SiteLog, SubjectRecord, TrialData, UserRecord};

/// Replays the logs of sites (each in its commit order) into trial data; the changes are kept
/// only when `with_changes`. `sites` lists every site, also those without changes yet.
pub fn from_logs(
    sites: &[String],
    logs: Vec<(String, Vec<Change>)>,
    with_changes: bool,
) -> Result<TrialData, ExportError> {
    let data_error = |e: ecrf_log::project::ProjectError| ExportError::Data(e.to_string());
    let mut data = TrialData::default();
    data.sites.extend(sites.iter().cloned());
    let mut seen_subjects: HashSet<String> = HashSet::new();
    for (site, log) in logs {
        data.sites.insert(site.clone());
        let projection = Projection::of(&log).map_err(data_error)?;
        for s in &projection.subjects {
            if seen_subjects.insert(s.subject.clone()) {
                data.subjects.push(SubjectRecord {
                    subject: s.subject.clone(),
                    site: s.site.clone(),
                });
            }
        }
        for signature in projection.signatures().map_err(data_error)? {
            data.signatures.push(SignatureRecord {
                site: site.clone(),
                signature,
            });
        }
        for (version, p) in &projection.versions {
            data.definitions
                .entry(version.clone())
                .or_insert_with(|| p.files.clone());
        }
        for (key, version) in &projection.instance_versions {
            data.versions
                .entry(key.clone())
                .or_insert_with(|| version.clone());
        }
        for (subject, forms) in projection.values().map_err(data_error)? {
            let mine = data.values.entry(subject).or_default();
            for (form, items) in forms {
                mine.entry(form).or_default().extend(items);
            }
        }
        data.users.extend(
            projection
                .users
                .into_iter()
                .map(|(username, u)| UserRecord {
                    username,
                    name: u.name,
                    role: u.role.to_string(),
                    site: site.clone(),
                }),
        );
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
