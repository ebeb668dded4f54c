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
//! many threads as there are cores ([`LogFolder`]), each as soon as it is given (the server's
//! export reads the next site meanwhile, and gives the stored records unparsed so that parsing
//! runs on every core too), then merged in the order given: the result is the same as folding
//! them one after the other. The thread that folds a site's log also packs it for the exports
//! ([`PackedLog`]) and frees the changes as received.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, mpsc};

use ecrf_core::Value;
use ecrf_log::body::StudyPublished;
use ecrf_log::project::{ProjectError, ProjectedSubject, ProjectedUser};
use ecrf_log::record::PackedLog;
use ecrf_log::{Change, Projection, Signature, StoredRecords};

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

/// Folds one site's log, change by change in its commit order, and packs it when `keep`.
///
/// Each change is folded (and packed) as it is parsed, then dropped: the projection and the
/// packed log keep what they need, so a site's parsed changes are never all held at once
/// (holding them had every site's hundred megabytes allocated, freed and given back to the
/// system in turn: a third of the 10× export's CPU went to the kernel's page faults).
fn fold(
    site: &str,
    changes: impl ExactSizeIterator<Item = Result<Change, ExportError>>,
    keep: bool,
) -> Result<Folded, ExportError> {
    let data_error = |e: ProjectError| ExportError::Data(format!("site {site}: {e}"));
    let mut projection = Projection::default();
    let mut log = keep.then(|| PackedLog::with_capacity(changes.len()));
    for c in changes {
        let c = c?;
        projection.apply(&c).map_err(data_error)?;
        if let Some(log) = log.as_mut() {
            log.push_change(&c)
                .map_err(|e| ExportError::Data(format!("site {site}: {e}")))?;
        }
    }
    let signatures = projection.signatures().map_err(data_error)?;
    let values = projection.values().map_err(data_error)?;
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

/// What a site's log arrives as.
enum SiteInput {
    /// Parsed changes.
    Changes(Vec<Change>),
    /// Each change's `seq` and its JSON record as the server stores it.
    Records(StoredRecords),
}

/// A site's stored records parsed one by one, each given its `seq`.
fn parse_records<'a>(
    site: &'a str,
    records: &'a StoredRecords,
) -> impl ExactSizeIterator<Item = Result<Change, ExportError>> + 'a {
    records.changes().map(move |c| {
        c.map_err(|e| {
            ExportError::Source(format!(
                "server change #{} of site {site}: {}",
                e.seq, e.why
            ))
        })
    })
}

type Work = (usize, String, SiteInput);
type Done = (usize, String, Result<Folded, ExportError>);

/// Folds sites' logs on every core while the caller goes on reading the next ones;
/// [`LogFolder::finish`] merges them in the order they were added (the same result as folding
/// them one after the other).
pub struct LogFolder {
    work: Option<Queue>,
    /// Record buffers the folding threads are done with, cleared, for the reader to fill again.
    spare: Arc<Mutex<Vec<StoredRecords>>>,
    workers: Vec<std::thread::JoinHandle<Vec<Done>>>,
    added: usize,
}

/// How sites wait for a folding thread.
enum Queue {
    /// At most [`WAITING`]: adding one more waits for a thread to take one.
    Bounded(mpsc::SyncSender<Work>),
    /// Without limit: adding never waits.
    Unbounded(mpsc::Sender<Work>),
}

/// Sites read but not yet taken by a folding thread, at most, when the reader may wait: reading
/// is faster than folding, and a 10× trial's records, read ahead whole, held 2 GB.
const WAITING: usize = 2;

/// Record buffers kept for the reader, at most: as many as can be between the reader and the
/// folding threads of a usual machine at once.
const SPARES: usize = WAITING + 2;

impl LogFolder {
    /// A folder with one thread per core; the changes are kept only when `with_changes`.
    /// Adding a site ([`LogFolder::add`], [`LogFolder::add_records`]) waits while [`WAITING`]
    /// sites wait to be folded, so the records in memory are those of a few sites, not of the
    /// whole trial.
    pub fn new(with_changes: bool) -> Result<LogFolder, ExportError> {
        let (work, queue) = mpsc::sync_channel::<Work>(WAITING);
        LogFolder::start(with_changes, Queue::Bounded(work), queue)
    }

    /// A folder whose [`LogFolder::add_records`] never waits (for a reader on an async
    /// runtime's thread, which must not block): every site read waits in memory.
    pub fn unbounded(with_changes: bool) -> Result<LogFolder, ExportError> {
        let (work, queue) = mpsc::channel::<Work>();
        LogFolder::start(with_changes, Queue::Unbounded(work), queue)
    }

    fn start(
        with_changes: bool,
        work: Queue,
        queue: mpsc::Receiver<Work>,
    ) -> Result<LogFolder, ExportError> {
        let queue = Arc::new(Mutex::new(queue));
        let spare: Arc<Mutex<Vec<StoredRecords>>> = Arc::default();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            let spares = Arc::clone(&spare);
            let worker = std::thread::Builder::new()
                .name(format!("fold-{i}"))
                .spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        // The lock is held only to take the next site.
                        let next = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => break,
                        };
                        let Ok((index, site, input)) = next else {
                            break;
                        };
                        let folded = match input {
                            SiteInput::Changes(log) => {
                                fold(&site, log.into_iter().map(Ok), with_changes)
                            }
                            SiteInput::Records(mut records) => {
                                let folded =
                                    fold(&site, parse_records(&site, &records), with_changes);
                                // Kept for the reader only while it may still want one: a
                                // reader that never waits has read every site long before
                                // the last are folded, and their buffers would all be kept.
                                records.clear();
                                if let Ok(mut spares) = spares.lock()
                                    && spares.len() < SPARES
                                {
                                    spares.push(records);
                                }
                                folded
                            }
                        };
                        done.push((index, site, folded));
                    }
                    done
                })
                .map_err(|e| ExportError::Data(format!("no thread to fold logs: {e}")))?;
            workers.push(worker);
        }
        Ok(LogFolder {
            work: Some(work),
            spare,
            workers,
            added: 0,
        })
    }

    fn send(&mut self, site: String, input: SiteInput) -> Result<(), ExportError> {
        let stopped = || ExportError::Data("folding the logs stopped (a bug)".into());
        let work = (self.added, site, input);
        match self.work.as_ref().ok_or_else(stopped)? {
            Queue::Bounded(q) => q.send(work).map_err(|_| stopped())?,
            Queue::Unbounded(q) => q.send(work).map_err(|_| stopped())?,
        }
        self.added += 1;
        Ok(())
    }

    /// A site's log, in its commit order.
    pub fn add(&mut self, site: String, log: Vec<Change>) -> Result<(), ExportError> {
        self.send(site, SiteInput::Changes(log))
    }

    /// A site's log as the server stores it: each change's `seq` and JSON record, in commit
    /// order; parsed on the folding thread. Returns an empty buffer to read the next site into:
    /// one a folding thread is done with when there is one (so that the records of a trial's
    /// sites take turns in a few buffers instead of each site's being allocated anew), or a new
    /// one.
    pub fn add_records(
        &mut self,
        site: String,
        records: StoredRecords,
    ) -> Result<StoredRecords, ExportError> {
        self.send(site, SiteInput::Records(records))?;
        let spare = self.spare.lock().ok().and_then(|mut s| s.pop());
        Ok(spare.unwrap_or_default())
    }

    /// Waits for every site's fold and merges them into trial data. `sites` lists every site,
    /// also those without changes yet.
    pub fn finish(mut self, sites: &[String]) -> Result<TrialData, ExportError> {
        self.work = None;
        let mut slots: Vec<Option<(String, Result<Folded, ExportError>)>> =
            (0..self.added).map(|_| None).collect();
        for worker in self.workers.drain(..) {
            let done = worker
                .join()
                .map_err(|_| ExportError::Data("folding a site's log failed (a bug)".into()))?;
            for (index, site, folded) in done {
                if let Some(slot) = slots.get_mut(index) {
                    *slot = Some((site, folded));
                }
            }
        }
        // The reader is done: the spare buffers go before the merge needs the memory.
        if let Ok(mut spares) = self.spare.lock() {
            *spares = Vec::new();
        }
        merge(sites, slots)
    }
}

/// Replays the logs of sites (each in its commit order) into trial data; the changes are kept
/// only when `with_changes`. `sites` lists every site, also those without changes yet.
pub fn from_logs(
    sites: &[String],
    logs: Vec<(String, Vec<Change>)>,
    with_changes: bool,
) -> Result<TrialData, ExportError> {
    let mut folder = LogFolder::new(with_changes)?;
    for (site, log) in logs {
        folder.add(site, log)?;
    }
    folder.finish(sites)
}

/// The folds, in the order the sites were added, merged into one trial's data.
#[allow(clippy::type_complexity)]
fn merge(
    sites: &[String],
    slots: Vec<Option<(String, Result<Folded, ExportError>)>>,
) -> Result<TrialData, ExportError> {
    let mut data = TrialData::default();
    data.sites.extend(sites.iter().cloned());
    let mut seen_subjects: HashSet<String> = HashSet::new();
    for slot in slots {
        let (site, folded) =
            slot.ok_or_else(|| ExportError::Data("a site's replay stopped (a bug)".into()))?;
        let folded = folded?;
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
