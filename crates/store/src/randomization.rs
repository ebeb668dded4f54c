//! Sealed envelopes and randomization: loading a lease of whole blocks, and opening the next
//! envelope for a subject as one audited, irreversible event.
//!
//! Owns the `envelopes` projection (written only by [`apply`], from `lease.load` and
//! `subject.randomize` changes) and the refusal reasons. Invariants: an envelope is opened at
//! most once (the randomize transaction is IMMEDIATE, and [`apply`] refuses to reopen one);
//! the RND form is written only here; an unopened envelope's arm never leaves the store.

use std::collections::BTreeMap;

use chrono::{Local, SecondsFormat, Timelike};
use ecrf_core::eligibility::{self, Values};
use ecrf_core::{Action, Value};
use ecrf_randomize::{Stratum, parse_csv};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::error::StoreError;
use crate::store::{Draft, Store, decode_value};
use ecrf_log::body::{Body, LeasedEnvelope, Opened};
use ecrf_log::{Change, ChangeKind};
use ecrf_wire::ServerSlot;

/// Why a subject cannot be randomized (shown on screen as is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Eligibility criteria not met or not shown.
    #[error("not eligible: {0}")]
    NotEligible(String),
    /// No valid consent record.
    #[error("no consent: {0}")]
    NoConsent(String),
    /// Randomized before: irreversible.
    #[error("already randomized as {subject_no} ({arm})")]
    AlreadyRandomized {
        /// The subject number given then.
        subject_no: String,
        /// The arm code.
        arm: String,
    },
    /// Outside the window after ECMO start, or LV unloading already started (or not answered).
    #[error("{0}")]
    Timing(ecrf_core::randomization::TimingRefusal),
    /// The device holds no unopened envelope for this stratum.
    #[error("no sealed envelope left for stratum {0}: connect and sync to receive more")]
    NoEnvelope(String),
}

/// A subject's randomization, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Randomization {
    /// Screening number (the subject's key in the store).
    pub subject: String,
    /// Subject number given at randomization: site code + envelope sequence, `01-R0007`.
    pub subject_no: String,
    /// Arm code (`ECMO_IABP` or `ECMO`).
    pub arm: String,
    /// Envelope opened.
    pub envelope: String,
    /// Stratum key.
    pub stratum: String,
    /// When (RFC 3339 with the local offset).
    pub at: String,
    /// Who.
    pub by: String,
}

/// Unopened and opened envelopes of one stratum on this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvelopeCount {
    /// Stratum key.
    pub stratum: String,
    /// Still sealed.
    pub unopened: i64,
    /// Opened.
    pub opened: i64,
}

/// Applies `lease.load` and `subject.randomize` changes to the envelopes projection.
pub(crate) fn apply(tx: &Connection, c: &Change) -> Result<(), StoreError> {
    // Envelopes are the device's own: another device's lease or opening (received by sync)
    // stays in the log as its audit, never becomes an envelope this device could open.
    if crate::store::get_meta(tx, "device")?.as_deref() != Some(c.device.as_str()) {
        return Ok(());
    }
    match crate::store::body_of(c)? {
        Body::LeaseLoaded(list) => {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO envelopes (envelope, stratum, seq, block, block_size, arm, lease) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for e in list {
                stmt.execute(params![
                    e.envelope,
                    e.stratum,
                    e.seq,
                    e.block,
                    e.block_size,
                    e.arm,
                    c.item
                ])?;
            }
        }
        Body::Randomized(o) => {
            if o.server {
                // Taken from the server's list online: no envelope of this device was opened.
                return Ok(());
            }
            let n = tx
                .prepare_cached(
                    "UPDATE envelopes SET subject = ?1, opened_seq = ?2 \
                     WHERE envelope = ?3 AND opened_seq IS NULL",
                )?
                .execute(params![c.subject, c.seq, o.envelope])?;
            if n != 1 {
                return Err(StoreError::Invalid(format!(
                    "envelope {} is not a sealed envelope of this store",
                    o.envelope
                )));
            }
        }
        // `store::apply` sends only the two kinds above here.
        Body::StoreCreated(_)
        | Body::UserAdded(_)
        | Body::SubjectCreated { .. }
        | Body::ItemSet { .. }
        | Body::DataExported(_)
        | Body::LoginFailed(_)
        | Body::QueryRaised(_)
        | Body::QueryAnswered(_)
        | Body::QueryClosed(_)
        | Body::QueryReopened(_)
        | Body::SdvMarked { .. }
        | Body::Signed(_)
        | Body::Locked(_)
        | Body::Unlocked(_)
        | Body::UserRole { .. }
        | Body::UserDeactivated
        | Body::PasswordReset
        | Body::PasswordChanged
        | Body::LockHeld(_) => {}
    }
    Ok(())
}

fn values_in(tx: &Connection, subject: &str, form: &str) -> Result<Values, StoreError> {
    let mut stmt =
        tx.prepare_cached("SELECT item, value FROM item_values WHERE subject = ?1 AND form = ?2")?;
    let mut rows = stmt.query([subject, form])?;
    let mut out = BTreeMap::new();
    while let Some(r) = rows.next()? {
        let item: String = r.get(0)?;
        let json: String = r.get(1)?;
        let v = decode_value(form, &item, &json)?;
        out.insert(item, v);
    }
    Ok(out)
}

/// Not randomized yet, eligible (SCR), consented (CON) and in time at `at` (within the
/// study's window after ECMO start, no LV unloading started), or the refusal.
fn randomizable(
    conn: &Connection,
    subject: &str,
    rules: &ecrf_core::study::RandomizationRules,
    at: chrono::DateTime<chrono::FixedOffset>,
) -> Result<(), StoreError> {
    let rnd = values_in(conn, subject, "RND")?;
    if rnd.contains_key("SUBJ_NO") {
        return Err(StoreError::Refused(Refusal::AlreadyRandomized {
            subject_no: text(&rnd, "SUBJ_NO"),
            arm: text(&rnd, "ARM"),
        }));
    }
    let verdict = eligibility::assess(&values_in(conn, subject, "SCR")?);
    if !verdict.eligible {
        return Err(StoreError::Refused(Refusal::NotEligible(verdict.summary())));
    }
    eligibility::consent(&values_in(conn, subject, "CON")?)
        .map_err(|e| StoreError::Refused(Refusal::NoConsent(e)))?;
    let (scr, ecmo) = (
        values_in(conn, subject, "SCR")?,
        values_in(conn, subject, "ECMO")?,
    );
    ecrf_core::randomization::check_timing(rules, &scr, &ecmo, at)
        .map_err(|e| StoreError::Refused(Refusal::Timing(e)))
}

fn text(v: &Values, item: &str) -> String {
    v.get(item).map(Value::to_string).unwrap_or_default()
}

impl Store {
    /// Loads a lease (CSV of whole blocks made by `ecrf randomization generate` or, later, the
    /// server) as sealed envelopes. Administrators only; every envelope must be for this store's
    /// site and new to it. Returns how many envelopes were added.
    pub fn load_lease(&mut self, csv: &str) -> Result<usize, StoreError> {
        self.require(Action::LoadLease)?;
        let slots = parse_csv(csv).map_err(|e| StoreError::Invalid(format!("lease: {e}")))?;
        let site = self.site().to_string();
        let mut list = Vec::with_capacity(slots.len());
        for s in &slots {
            let stratum = Stratum::from_key(&s.stratum)
                .map_err(|e| StoreError::Invalid(format!("lease: {e}")))?;
            if stratum.site != site {
                return Err(StoreError::Invalid(format!(
                    "lease: envelope {} is for site {}, this store is site {site}",
                    s.envelope(),
                    stratum.site
                )));
            }
            list.push(LeasedEnvelope {
                envelope: s.envelope(),
                stratum: s.stratum.clone(),
                seq: s.seq,
                block: s.block,
                block_size: s.block_size,
                arm: s.arm.code().to_string(),
            });
        }
        let n = list.len();
        let body =
            serde_json::to_string(&list).map_err(|e| StoreError::Invalid(format!("lease: {e}")))?;
        self.commit_with(|tx| {
            for e in &list {
                let seen: Option<i64> = tx
                    .query_row(
                        "SELECT 1 FROM envelopes WHERE envelope = ?1",
                        [&e.envelope],
                        |r| r.get(0),
                    )
                    .optional()?;
                if seen.is_some() {
                    return Err(StoreError::Invalid(format!(
                        "lease: envelope {} is already in this store; nothing loaded",
                        e.envelope
                    )));
                }
            }
            let mut d = Draft::new(ChangeKind::LeaseLoaded);
            d.item = Some(uuid::Uuid::now_v7().to_string());
            d.new_value = Some(body);
            Ok((vec![d], ()))
        })?;
        Ok(n)
    }

    /// Sealed and opened envelopes per stratum (counts only: never an unopened arm).
    pub fn envelope_counts(&self) -> Result<Vec<EnvelopeCount>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT stratum, sum(opened_seq IS NULL), sum(opened_seq IS NOT NULL) \
             FROM envelopes GROUP BY stratum ORDER BY stratum",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(EnvelopeCount {
                stratum: r.get(0)?,
                unopened: r.get(1)?,
                opened: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The subject's randomization, if it has one.
    pub fn randomization(&self, subject: &str) -> Result<Option<Randomization>, StoreError> {
        self.require_subject(subject)?;
        let rnd = values_in(self.conn(), subject, "RND")?;
        Ok(rnd.contains_key("SUBJ_NO").then(|| Randomization {
            subject: subject.to_string(),
            subject_no: text(&rnd, "SUBJ_NO"),
            arm: text(&rnd, "ARM"),
            envelope: text(&rnd, "ENVELOPE_ID"),
            stratum: text(&rnd, "STRATUM"),
            at: match rnd.get("RND_DT") {
                Some(Value::DateTime(d)) => d.to_rfc3339_opts(SecondsFormat::Secs, false),
                _ => String::new(),
            },
            by: text(&rnd, "RND_BY"),
        }))
    }

    /// Randomizes a subject: in one IMMEDIATE transaction, checks that it is not randomized
    /// yet, eligible (SCR), consented (CON) and in time (`ecrf_core::randomization`: within the
    /// study's window after ECMO start, no LV unloading started), opens the lowest sealed envelope of its stratum,
    /// and appends the `subject.randomize` event with the RND values (subject number, arm,
    /// date-time, envelope, stratum, who, device). Refusals write nothing.
    pub fn randomize(&mut self, subject: &str) -> Result<Randomization, StoreError> {
        let now = Local::now().fixed_offset();
        self.randomize_at(subject, now.with_nanosecond(0).unwrap_or(now))
    }

    /// [`Store::randomize`] with the envelope opened at `now` rather than at this instant: for
    /// an envelope opened during a power or laptop failure and recorded afterwards, and for
    /// scripted subjects in tests. The change log still records when it was entered; a time in
    /// the future is refused.
    pub fn randomize_at(
        &mut self,
        subject: &str,
        now: chrono::DateTime<chrono::FixedOffset>,
    ) -> Result<Randomization, StoreError> {
        self.open_slot(subject, now, None)
    }

    /// Refuses (writing nothing) unless the subject may be randomized now: not randomized
    /// yet, eligible and consented. Asked before taking a slot from the server, so a refusal
    /// never uses one; [`Store::randomize_with_server_slot`] checks again when it writes.
    pub fn check_randomizable(&self, subject: &str) -> Result<(), StoreError> {
        self.require(Action::Randomize)?;
        self.require_subject(subject)?;
        let now = Local::now().fixed_offset();
        randomizable(self.conn(), subject, &self.study().randomization, now)
    }

    /// Randomizes a subject with a slot the server took for it online from the site's list
    /// (`ecrf_sync::randomize`): the same checks, event and RND values as [`Store::randomize`],
    /// no envelope of this device opened.
    pub fn randomize_with_server_slot(
        &mut self,
        subject: &str,
        slot: &ServerSlot,
    ) -> Result<Randomization, StoreError> {
        let now = Local::now().fixed_offset();
        self.open_slot(subject, now.with_nanosecond(0).unwrap_or(now), Some(slot))
    }

    fn open_slot(
        &mut self,
        subject: &str,
        now: chrono::DateTime<chrono::FixedOffset>,
        server: Option<&ServerSlot>,
    ) -> Result<Randomization, StoreError> {
        if now > chrono::Utc::now() {
            return Err(StoreError::Invalid(format!(
                "RND RND_DT = {now}: a randomization time cannot be in the future"
            )));
        }
        self.require(Action::Randomize)?;
        self.require_subject(subject)?;
        let site = self.site().to_string();
        let user = self.session().user.clone();
        let device = self.device_id().to_string();
        let rules = self.study().randomization;
        let (_, r) = self.commit_with(|tx| {
            randomizable(tx, subject, &rules, now)?;
            // One stratification factor today (site); a second would extend this key.
            let stratum = site.clone();
            let next: Option<(String, i64, String)> = match server {
                Some(slot) if slot.stratum != stratum => {
                    return Err(StoreError::Invalid(format!(
                        "the server's slot {} is for stratum {}, this subject's is {stratum}",
                        slot.envelope, slot.stratum
                    )));
                }
                Some(slot) => Some((slot.envelope.clone(), slot.seq.into(), slot.arm.clone())),
                None => tx
                    .query_row(
                        "SELECT envelope, seq, arm FROM envelopes \
                         WHERE stratum = ?1 AND opened_seq IS NULL ORDER BY seq LIMIT 1",
                        [&stratum],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?,
            };
            let (envelope, seq, arm) =
                next.ok_or_else(|| StoreError::Refused(Refusal::NoEnvelope(stratum.clone())))?;
            let subject_no = format!("{site}-R{seq:04}");
            let opened = Opened {
                envelope: envelope.clone(),
                arm: arm.clone(),
                subject_no: subject_no.clone(),
                stratum: stratum.clone(),
                server: server.is_some(),
            };
            let mut event = Draft::new(ChangeKind::Randomized);
            event.subject = Some(subject.to_string());
            event.form = Some("RND".into());
            event.item = Some(envelope.clone());
            event.new_value = Some(
                serde_json::to_string(&opened)
                    .map_err(|e| StoreError::Invalid(format!("randomization: {e}")))?,
            );
            let mut drafts = vec![event];
            for (item, v) in [
                ("SUBJ_NO", Value::Text(subject_no.clone())),
                ("ARM", Value::Code(arm.clone())),
                ("RND_DT", Value::DateTime(now)),
                ("ENVELOPE_ID", Value::Text(envelope.clone())),
                ("STRATUM", Value::Text(stratum.clone())),
                ("RND_BY", Value::Text(user.clone())),
                ("DEVICE", Value::Text(device.clone())),
            ] {
                let mut d = Draft::new(ChangeKind::ItemSet);
                d.subject = Some(subject.to_string());
                d.form = Some("RND".into());
                d.item = Some(item.into());
                d.new_value = Some(v.to_json());
                drafts.push(d);
            }
            Ok((
                drafts,
                Randomization {
                    subject: subject.to_string(),
                    subject_no,
                    arm,
                    envelope,
                    stratum,
                    at: now.to_rfc3339_opts(SecondsFormat::Secs, false),
                    by: user.clone(),
                },
            ))
        })?;
        Ok(r)
    }
}
