//! A realistic trial written as its laptops would write it, for the benchmarks over many sites
//! (`bench-web`, `bench-scale`): each site's changes on one device's hash chain, every change
//! hashed and signed by its author's key, values parsed by the study's own rules.
//!
//! A subject: created, screened eligible, consented, randomized (arms alternate), the ECMO and
//! baseline forms, the IABP form in the ECMO+IABP arm, a daily log for each study day, the ECMO
//! decannulation event (and death for one in eight, who then has no day-30 follow-up), the
//! day-30 follow-up for every other subject; one in three has a monitor's query on a daily
//! log's heart rate, answered by the nurse and closed; every subject's baseline form is signed
//! by the investigator over its exact values. About 1,400 changes per subject with 30 daily
//! logs.

use chrono::{NaiveDate, Utc};
use ecrf_core::signature::{SignatureMeaning, SignatureScope};
use ecrf_core::{FormKey, Study};
use ecrf_log::{AuthorKey, Body, Change, ChangeKind};

use crate::Failure;
use crate::bench_sync::fail;

/// The people whose changes a site's laptop carries, with their signing keys.
pub struct Staff {
    /// Enters the data and answers queries (`nurse`).
    pub nurse: AuthorKey,
    /// Raises and closes queries (`monitor`).
    pub monitor: AuthorKey,
    /// Signs the forms (`pi`).
    pub investigator: AuthorKey,
}

impl Staff {
    /// The benchmarks' staff: fixed keys (the data is synthetic), the same at every site.
    pub fn new() -> Staff {
        Staff {
            nurse: AuthorKey::from_seed(&[9; 32]),
            monitor: AuthorKey::from_seed(&[10; 32]),
            investigator: AuthorKey::from_seed(&[11; 32]),
        }
    }

    /// `(username, printed name, role, key)` of each.
    pub fn people(&self) -> [(&'static str, &'static str, ecrf_core::Role, &AuthorKey); 3] {
        use ecrf_core::Role;
        [
            ("nurse", "Research Nurse", Role::Nurse, &self.nurse),
            ("monitor", "Site Monitor", Role::Monitor, &self.monitor),
            (
                "pi",
                "Principal Investigator",
                Role::Investigator,
                &self.investigator,
            ),
        ]
    }
}

/// Who writes a change.
#[derive(Clone, Copy)]
enum Who {
    Nurse,
    Monitor,
    Investigator,
}

/// One site's device chain: the changes in order, chained and signed.
pub struct Chain<'a> {
    /// Site code.
    pub site: String,
    /// The device's id.
    pub device: String,
    /// Its last device_seq.
    pub seq: i64,
    /// Its last hash.
    pub prev: String,
    staff: &'a Staff,
    /// The changes made so far (taken by the caller as it sends them).
    pub changes: Vec<Change>,
}

impl<'a> Chain<'a> {
    /// A new device's chain at `site`.
    pub fn new(site: &str, device: &str, staff: &'a Staff) -> Chain<'a> {
        Chain {
            site: site.to_string(),
            device: device.to_string(),
            seq: 0,
            prev: ecrf_log::GENESIS.to_string(),
            staff,
            changes: Vec::new(),
        }
    }

    /// Appends `c` as `who`'s change; its change id.
    fn push(&mut self, mut c: Change, who: Who) -> String {
        let (user, role, key) = match who {
            Who::Nurse => ("nurse", "nurse", &self.staff.nurse),
            Who::Monitor => ("monitor", "monitor", &self.staff.monitor),
            Who::Investigator => ("pi", "investigator", &self.staff.investigator),
        };
        self.seq += 1;
        c.user = user.into();
        c.role = role.into();
        c.device = self.device.clone();
        c.device_seq = self.seq;
        c.prev_hash = std::mem::take(&mut self.prev);
        c.change_id = uuid::Uuid::now_v7().to_string();
        c.hash = c.compute_hash();
        key.sign(&mut c);
        self.prev = c.hash.clone();
        let id = c.change_id.clone();
        self.changes.push(c);
        id
    }

    /// A form instance's values as the nurse's item changes (input text parsed by the study's
    /// rules); the `(item, stored JSON)` written.
    fn form(
        &mut self,
        study: &Study,
        subject: &str,
        instance: &str,
        entries: &[(String, String)],
    ) -> Result<Vec<(String, String)>, Failure> {
        let key = FormKey::parse(study, instance).map_err(fail)?;
        let def = study
            .form(&key.form)
            .ok_or_else(|| Failure(format!("no form {}", key.form)))?;
        let offset = chrono::FixedOffset::east_opt(8 * 3600);
        let mut written = Vec::new();
        for (item, text) in entries {
            let Some(item_def) = def.item(item) else {
                continue;
            };
            let value = ecrf_core::check::parse_input(study, def, item_def, text, offset)
                .map_err(|f| Failure(format!("{instance} {item}: {}", f.message.en)))?;
            let Some(value) = value else { continue };
            let json = value.to_json();
            self.push(
                change(
                    ChangeKind::ItemSet,
                    Some(subject),
                    Some(instance),
                    Some(item),
                    Some(json.clone()),
                ),
                Who::Nurse,
            );
            written.push((item.clone(), json));
        }
        Ok(written)
    }

    /// A query's life: raised by the monitor, answered by the nurse, closed by the monitor
    /// (the query's id made apart from its changes' ids, as the store does).
    fn query(&mut self, subject: &str, instance: &str, item: &str, text: &str) {
        let id = uuid::Uuid::now_v7().to_string();
        let steps = [
            (ChangeKind::QueryRaised, Who::Monitor, text),
            (
                ChangeKind::QueryAnswered,
                Who::Nurse,
                "Checked against the ICU chart: the value is correct.",
            ),
            (ChangeKind::QueryClosed, Who::Monitor, "Thank you."),
        ];
        for (kind, who, text) in steps {
            let step = ecrf_log::body::QueryStep {
                query: id.clone(),
                text: text.to_string(),
                auto: false,
            };
            let mut c = change(kind, Some(subject), Some(instance), Some(item), None);
            c.new_value = serde_json::to_string(&step).ok();
            self.push(c, who);
        }
    }

    /// The investigator's signature on one form instance over its values.
    fn sign(&mut self, subject: &str, instance: &str, values: &[(String, String)]) {
        let scope = SignatureScope::Form(FormKey {
            form: instance.to_string(),
            repeat: None,
        });
        let hash = ecrf_core::signature::values_hash(
            subject,
            &scope,
            values
                .iter()
                .map(|(item, json)| (instance, item.as_str(), json.as_str())),
        );
        let mut c = change(
            ChangeKind::Signed,
            Some(subject),
            Some(instance),
            None,
            None,
        );
        c.new_value = Body::Signed(ecrf_log::body::Signed {
            meaning: SignatureMeaning::Approval,
            name: "Principal Investigator".into(),
            values_hash: hash,
        })
        .new_value();
        self.push(c, Who::Investigator);
    }
}

/// A change as a store drafts it (author, device and chain filled in by [`Chain::push`]).
pub fn change(
    kind: ChangeKind,
    subject: Option<&str>,
    form: Option<&str>,
    item: Option<&str>,
    new_value: Option<String>,
) -> Change {
    Change {
        subject: subject.map(str::to_string),
        form: form.map(str::to_string),
        item: item.map(str::to_string),
        new_value,
        user: "nurse".into(),
        role: "nurse".into(),
        utc: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        local_offset: "+08:00".into(),
        ..Change::blank(kind)
    }
}

fn owned(v: Vec<(&str, &str)>) -> Vec<(String, String)> {
    v.into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Subjects `first..first + count` of the chain's site (ids `<site>-B<n>`), randomized over
/// the last two years, arms alternating.
pub fn site_changes(
    study: &Study,
    chain: &mut Chain,
    first: usize,
    count: usize,
    days: u32,
    today: NaiveDate,
) -> Result<(), Failure> {
    let span = (first + count).max(1) as i64;
    for n in first..first + count {
        let subject = format!("{}-B{n:04}", chain.site);
        let site = chain.site.clone();
        chain.push(
            change(
                ChangeKind::SubjectCreated,
                Some(&subject),
                None,
                None,
                Some(site.clone()),
            ),
            Who::Nurse,
        );
        // Enrolled from two years ago until about four months ago: every follow-up is done.
        let start = today - chrono::Duration::days(730 - (n as i64 * 600 / span));
        let day = start.format("%Y-%m-%d");
        let mut scr = owned(ecrf_core::sample::eligible_screening(&subject));
        for (k, v) in scr.iter_mut() {
            match k.as_str() {
                "SCR_DT" => *v = format!("{day}T03:00+08:00"),
                "LACTATE_DT" => *v = format!("{day}T02:50+08:00"),
                "ECMO_START_DT" => *v = format!("{day}T02:40+08:00"),
                _ => {}
            }
        }
        chain.form(study, &subject, "SCR", &scr)?;
        let mut con = owned(ecrf_core::sample::CONSENT_BY_SPOUSE.to_vec());
        con.push(("CONSENT_DT".into(), format!("{day}T03:10+08:00")));
        chain.form(study, &subject, "CON", &con)?;
        let iabp = n % 2 == 0;
        let arm = if iabp { "ECMO_IABP" } else { "ECMO" };
        let rnd = vec![
            ("SUBJ_NO".to_string(), format!("{site}{n:04}")),
            ("ARM".to_string(), arm.to_string()),
            ("RND_DT".to_string(), format!("{day}T03:30+08:00")),
        ];
        chain.form(study, &subject, "RND", &rnd)?;
        chain.form(study, &subject, "ECMO", &ecrf_app::demo::ecmo_form(start))?;
        let bas = chain.form(
            study,
            &subject,
            "BAS",
            &ecrf_app::demo::baseline_form(n % 4, start),
        )?;
        if iabp {
            let at = format!("{day}T04:15+08:00");
            chain.form(study, &subject, "IABP", &ecrf_app::demo::iabp_form(&at))?;
        }
        for d in 1..=days {
            let log = ecrf_app::demo::daily_log_with_iabp(n, start, d, iabp);
            chain.form(study, &subject, &format!("DLY#{d}"), &log)?;
        }
        let off = (start + chrono::Duration::days(6)).format("%Y-%m-%d");
        let event = vec![
            ("EVT_TYPE".to_string(), "ECMO_DECANNULATION".to_string()),
            ("EVT_DT".to_string(), format!("{off}T10:00+08:00")),
        ];
        chain.form(study, &subject, "EVT#1", &event)?;
        if n % 8 == 1 {
            let died = (start + chrono::Duration::days(12)).format("%Y-%m-%d");
            let death = vec![
                ("EVT_TYPE".to_string(), "DEATH".to_string()),
                ("EVT_DT".to_string(), format!("{died}T22:40+08:00")),
            ];
            chain.form(study, &subject, "EVT#2", &death)?;
        } else if n % 2 == 0 {
            let contact = (start + chrono::Duration::days(31)).format("%Y-%m-%d");
            let d30 = vec![
                ("CONTACT_DATE".to_string(), contact.to_string()),
                ("METHOD".to_string(), "PHONE".to_string()),
                ("VITAL_STATUS".to_string(), "ALIVE".to_string()),
            ];
            chain.form(study, &subject, "D30", &d30)?;
        }
        if n % 3 == 0 {
            chain.query(
                &subject,
                "DLY#2",
                "HR",
                "Heart rate on day 2: please check against the chart.",
            );
        }
        chain.sign(&subject, "BAS", &bas);
    }
    Ok(())
}
