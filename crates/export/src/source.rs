//! Where exported data come from: [`TrialData`], one snapshot of subjects, current values,
//! users and the change log of one site or several, behind the [`DataSource`] interface.
//!
//! A local store hands its snapshot over as an [`ExportView`] ([`TrialData::from_view`]);
//! several stores (one per site) merge into one trial; the central server's database is a
//! [`DataSource`] whose logs are replayed ([`crate::logs`]). This crate never opens a store.
//! Invariant: every value of a `TrialData` belongs to one of its subjects, and every subject
//! to one of its sites.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use ecrf_core::Value;
use ecrf_log::record::{PackedChange, PackedLog};
use ecrf_log::{ExportView, Signature};

use crate::ExportError;

/// A subject of the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRecord {
    /// Screening number (the key of every row).
    pub subject: String,
    /// Site code.
    pub site: String,
}

/// A user named in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Login name.
    pub username: String,
    /// Full name.
    pub name: String,
    /// Role.
    pub role: String,
    /// The site whose store knows the user.
    pub site: String,
}

/// An electronic signature of a form instance or a casebook, with the site whose log holds
/// it (its fields are the signature's: `s.subject`, `s.valid`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRecord {
    /// Site code.
    pub site: String,
    /// The signature and whether it still holds.
    pub signature: Signature,
}

impl std::ops::Deref for SignatureRecord {
    type Target = Signature;

    fn deref(&self) -> &Signature {
        &self.signature
    }
}

/// A run of one site's change log, in append order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteLog {
    /// Site code of the store that holds the changes.
    pub site: String,
    /// The changes, packed, and shared: a copy of the data (one site, or within consent) keeps
    /// the same log without copying its half a million changes.
    pub changes: Arc<PackedLog>,
}

/// A change of the log with the site it was made at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteChange<'a> {
    /// Site code of the store that holds the change.
    pub site: &'a str,
    /// The change.
    pub change: PackedChange<'a>,
}

/// Everything an export needs, from one site or several.
#[derive(Debug, Clone, Default)]
pub struct TrialData {
    /// Site codes, sorted.
    pub sites: BTreeSet<String>,
    /// Subjects, site by site in order of creation.
    pub subjects: Vec<SubjectRecord>,
    /// Current values: subject → form instance (`DLY#3`) → item → value.
    pub values: BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>>,
    /// Users of every site.
    pub users: Vec<UserRecord>,
    /// Electronic signatures, site by site in signing order.
    pub signatures: Vec<SignatureRecord>,
    /// Every site's change log, site by site in append order (when read), as the runs it was
    /// read in: half a million changes are kept where they were read, not copied again.
    pub logs: Vec<SiteLog>,
    /// Definition versions the data came with (protocol amendments): version → its files.
    pub definitions: BTreeMap<String, Vec<(String, String)>>,
    /// The version of each form instance that records one: (subject, instance) → version;
    /// any other instance is the base version's ([`TrialData::version_of`]).
    pub versions: BTreeMap<(String, String), String>,
}

/// Something that can hand the export a snapshot of trial data.
pub trait DataSource {
    /// Reads one consistent snapshot; the change log only when `with_changes` (audit trail).
    fn trial_data(&mut self, with_changes: bool) -> Result<TrialData, ExportError>;
}

impl TrialData {
    /// One store's snapshot as trial data.
    pub fn from_view(view: ExportView) -> Result<TrialData, ExportError> {
        let mut data = TrialData::default();
        data.add_view(view)?;
        Ok(data)
    }

    /// Adds one store's snapshot. Two stores that hold the same subject number are refused:
    /// the rows would be ambiguous.
    pub fn add_view(&mut self, view: ExportView) -> Result<(), ExportError> {
        self.sites.insert(view.site.clone());
        let known: HashSet<String> = self.subjects.iter().map(|s| s.subject.clone()).collect();
        for s in view.subjects {
            if self.values.contains_key(&s.subject) || known.contains(&s.subject) {
                return Err(ExportError::Data(format!(
                    "subject {} appears in two stores (site {})",
                    s.subject, view.site
                )));
            }
            self.values.entry(s.subject.clone()).or_default();
            self.subjects.push(SubjectRecord {
                subject: s.subject,
                site: s.site,
            });
        }
        // A subject's values move in whole (this store's subjects have none yet).
        for (subject, forms) in view.values {
            match self.values.entry(subject) {
                Entry::Vacant(v) => {
                    v.insert(forms);
                }
                Entry::Occupied(mut o) if o.get().is_empty() => {
                    o.insert(forms);
                }
                Entry::Occupied(mut o) => {
                    let mine = o.get_mut();
                    for (form, items) in forms {
                        mine.entry(form).or_default().extend(items);
                    }
                }
            }
        }
        for u in view.users {
            self.users.push(UserRecord {
                username: u.username,
                name: u.name,
                role: u.role.to_string(),
                site: view.site.clone(),
            });
        }
        for signature in view.signatures {
            self.signatures.push(SignatureRecord {
                site: view.site.clone(),
                signature,
            });
        }
        for (version, files) in view.definitions {
            self.definitions.entry(version).or_insert(files);
        }
        for (subject, form, version) in view.instance_versions {
            self.versions.entry((subject, form)).or_insert(version);
        }
        for changes in view.changes {
            self.logs.push(SiteLog {
                site: view.site.clone(),
                changes: Arc::new(changes),
            });
        }
        Ok(())
    }

    /// The derived items (BMI, VIS, pulse pressure, IABP delay, endpoint…) of every form
    /// instance with data, subject by subject, as every output shows them: computed by
    /// `ecrf_core::outcome::derive_subject` from these values, never read from a store; a
    /// missing-data code where one cannot be computed.
    pub fn derived(
        &self,
        study: &ecrf_core::Study,
        now: chrono::DateTime<chrono::Utc>,
    ) -> BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>> {
        self.values
            .iter()
            .map(|(subject, values)| {
                (
                    subject.clone(),
                    ecrf_core::outcome::derive_subject(study, values, now),
                )
            })
            .collect()
    }

    /// Every change, site by site in append order.
    pub fn changes(&self) -> impl Iterator<Item = SiteChange<'_>> {
        self.logs.iter().flat_map(|l| {
            l.changes.iter().map(move |change| SiteChange {
                site: &l.site,
                change,
            })
        })
    }

    /// How many changes [`TrialData::changes`] gives.
    pub fn change_count(&self) -> usize {
        self.logs.iter().map(|l| l.changes.len()).sum()
    }

    /// Merges several sources (one store per site) into one trial.
    pub fn merge(
        sources: &mut [&mut dyn DataSource],
        with_changes: bool,
    ) -> Result<TrialData, ExportError> {
        let mut all = TrialData::default();
        let mut seen: HashSet<String> = HashSet::new();
        for s in sources.iter_mut() {
            let d = s.trial_data(with_changes)?;
            all.sites.extend(d.sites);
            for subj in d.subjects {
                if !seen.insert(subj.subject.clone()) {
                    return Err(ExportError::Data(format!(
                        "subject {} appears in two sources",
                        subj.subject
                    )));
                }
                all.subjects.push(subj);
            }
            all.values.extend(d.values);
            all.users.extend(d.users);
            all.signatures.extend(d.signatures);
            all.logs.extend(d.logs);
        }
        Ok(all)
    }

    /// Keeps one site only (`--site`); an unknown site is an error naming the sites there are.
    pub fn only_site(mut self, site: &str) -> Result<TrialData, ExportError> {
        if !self.sites.contains(site) {
            return Err(ExportError::Options(format!(
                "--site {site}: no such site in the data (sites: {})",
                self.sites.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let keep: BTreeSet<String> = self
            .subjects
            .iter()
            .filter(|s| s.site == site)
            .map(|s| s.subject.clone())
            .collect();
        self.subjects.retain(|s| keep.contains(&s.subject));
        self.values.retain(|k, _| keep.contains(k));
        self.users.retain(|u| u.site == site);
        self.signatures.retain(|s| s.site == site);
        self.logs.retain(|l| l.site == site);
        self.sites = BTreeSet::from([site.to_string()]);
        Ok(self)
    }

    /// The site of a subject.
    pub fn site_of(&self, subject: &str) -> Option<&str> {
        self.subjects
            .iter()
            .find(|s| s.subject == subject)
            .map(|s| s.site.as_str())
    }

    /// The data a consent still allows (issue 20, point 6): `None` when no subject's consent
    /// record limits its data; otherwise a copy without the form instances a withdrawal or a
    /// refusal withholds ([`ecrf_core::eligibility::withheld`]: after its date, or everything
    /// but consent and randomization when data so far may not be used). The subject stays in
    /// the export (it was randomized); the audit trail keeps every change, as the regulator
    /// requires.
    pub fn within_consent(&self) -> Option<TrialData> {
        use ecrf_core::eligibility::{withdrawal, withheld};
        let limited: Vec<(&String, ecrf_core::eligibility::Withdrawal)> = self
            .values
            .iter()
            .filter_map(|(subject, forms)| Some((subject, withdrawal(forms.get("CON")?)?)))
            .collect();
        if limited.is_empty() {
            return None;
        }
        let mut out = self.clone();
        for (subject, w) in limited {
            if let Some(forms) = out.values.get_mut(subject) {
                forms.retain(|instance, values| {
                    let form = instance.split('#').next().unwrap_or(instance);
                    !withheld(&w, form, values)
                });
            }
        }
        Some(out)
    }

    /// The definition version a form instance was entered under.
    pub fn version_of(&self, subject: &str, instance: &str) -> &str {
        if self.versions.is_empty() {
            // No amendment: every instance is the base version's (no key built per row).
            return ecrf_core::trial::BASE_VERSION;
        }
        self.versions
            .get(&(subject.to_string(), instance.to_string()))
            .map_or(ecrf_core::trial::BASE_VERSION, String::as_str)
    }

    /// Every definition version of the data over `base` (the app's).
    pub fn definitions(&self, base: &ecrf_core::Study) -> ecrf_core::study::versions::Definitions {
        let mut d = ecrf_core::study::versions::Definitions::new(std::sync::Arc::new(base.clone()));
        for (v, files) in &self.definitions {
            d.add(v, files);
        }
        d
    }

    /// The current value of an item of a form instance.
    pub fn value(&self, subject: &str, instance: &str, item: &str) -> Option<&Value> {
        self.values.get(subject)?.get(instance)?.get(item)
    }
}
