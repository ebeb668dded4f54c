//! Sealed envelopes and randomization: loading a lease of whole blocks, and opening the next
//! envelope for a subject as one audited, irreversible event.
//!
//! Owns the `envelopes` projection (written only by [`apply`], from `lease.load` and
//! `subject.randomize` changes), the sealed arms (`sealed_envelopes`, outside the log, and this
//! device's X25519 secret in `sealing_key`) and the refusal reasons. Invariants: an envelope is
//! opened at most once (the randomize transaction is IMMEDIATE, and [`apply`] refuses to reopen
//! one); the log shows only each envelope's commitment until it is opened, and the opening
//! records the arm and nonce, which [`apply`] checks against that commitment (a tampered arm is
//! refused, nothing written); only [`Store::randomize`] decrypts a sealed arm, the next one;
//! the RND form is written only here.

use std::collections::BTreeMap;

use chrono::{Local, SecondsFormat, Timelike};
use ecrf_core::eligibility::{self, Values};
use ecrf_core::{Action, Value};
use ecrf_randomize::seal::{self, SealedEnvelope, SealedLease};
use ecrf_randomize::{Stratum, parse_csv};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::error::StoreError;
use crate::keyring::random_bytes;
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
    /// The next envelope's sealed arm does not open, or does not match the commitment its
    /// lease published: it was altered. Nothing is opened; the coordinating centre decides.
    #[error(
        "envelope {0} was altered (its arm does not match the lease's commitment): nothing was opened; tell the coordinating centre"
    )]
    Tampered(String),
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
                "INSERT INTO envelopes \
                 (envelope, stratum, seq, block, block_size, commitment, arm, lease) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for e in list {
                stmt.execute(params![
                    e.envelope,
                    e.stratum,
                    e.seq,
                    e.block,
                    e.block_size,
                    e.commitment,
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
            let sealed: Option<(String, u32, Option<String>, Option<String>)> = tx
                .prepare_cached(
                    "SELECT stratum, seq, commitment, arm FROM envelopes \
                     WHERE envelope = ?1 AND opened_seq IS NULL",
                )?
                .query_row([&o.envelope], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()?;
            let Some((stratum, seq, commitment, arm)) = sealed else {
                return Err(StoreError::Invalid(format!(
                    "envelope {} is not a sealed envelope of this store",
                    o.envelope
                )));
            };
            let proven = match (&commitment, &arm) {
                (Some(cm), _) => o
                    .nonce
                    .as_deref()
                    .is_some_and(|n| seal::matches(&stratum, seq, &o.arm, n, cm)),
                // A lease loaded before sealing: its log holds the arm itself.
                (None, Some(a)) => *a == o.arm,
                (None, None) => false,
            };
            if !proven {
                return Err(StoreError::Refused(Refusal::Tampered(o.envelope)));
            }
            tx.prepare_cached(
                "UPDATE envelopes SET subject = ?1, opened_seq = ?2, arm = ?3 WHERE envelope = ?4",
            )?
            .execute(params![c.subject, c.seq, o.arm, o.envelope])?;
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
        | Body::PasswordReset(_)
        | Body::PasswordChanged(_)
        | Body::LockHeld(_)
        | Body::StudyPublished(_)
        | Body::SiteActivated(_)
        | Body::FormVersioned { .. } => {}
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

/// This device's X25519 secret for sealed leases, made on first use (kept in the store's
/// `sealing_key` table, encrypted with the store; never shown, exported or synced).
fn sealing_secret(conn: &Connection) -> Result<zeroize::Zeroizing<[u8; 32]>, StoreError> {
    let read = |conn: &Connection| -> Result<Option<String>, StoreError> {
        Ok(conn
            .query_row("SELECT secret FROM sealing_key WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?)
    };
    let hex_secret = match read(conn)? {
        Some(h) => h,
        None => {
            let fresh = zeroize::Zeroizing::new(hex::encode(random_bytes::<32>()?));
            // Two sessions making it at once keep the first one written.
            conn.execute(
                "INSERT OR IGNORE INTO sealing_key (id, secret) VALUES (1, ?1)",
                [fresh.as_str()],
            )?;
            read(conn)?.ok_or_else(|| StoreError::Invalid("no sealing key".into()))?
        }
    };
    let hex_secret = zeroize::Zeroizing::new(hex_secret);
    seal::key_bytes(&hex_secret, "sealing key")
        .map(zeroize::Zeroizing::new)
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

/// An envelope (or a server slot) being opened for a subject.
struct Opening {
    envelope: String,
    seq: i64,
    arm: String,
    /// Hex of its nonce (none for server slots and leases loaded before sealing).
    nonce: Option<String>,
}

/// The lowest sealed envelope of the stratum, opened. A sealed arm is decrypted here and
/// nowhere else, and only when it matches the commitment its lease published in the log;
/// otherwise [`Refusal::Tampered`] and nothing is written.
fn open_next_envelope(tx: &Connection, stratum: &str) -> Result<Option<Opening>, StoreError> {
    let next: Option<(String, u32, Option<String>, Option<String>)> = tx
        .query_row(
            "SELECT envelope, seq, commitment, arm FROM envelopes \
             WHERE stratum = ?1 AND opened_seq IS NULL ORDER BY seq LIMIT 1",
            [stratum],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((envelope, seq, commitment, legacy_arm)) = next else {
        return Ok(None);
    };
    let Some(commitment) = commitment else {
        // A lease loaded before envelopes were sealed: its arm is in its log already.
        return Ok(legacy_arm.map(|arm| Opening {
            envelope,
            seq: seq.into(),
            arm,
            nonce: None,
        }));
    };
    let tampered = || StoreError::Refused(Refusal::Tampered(envelope.clone()));
    let row: Option<(String, String)> = tx
        .query_row(
            "SELECT sender, sealed FROM sealed_envelopes WHERE envelope = ?1",
            [&envelope],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (sender, sealed) = row.ok_or_else(tampered)?;
    let mut sealed: SealedEnvelope = serde_json::from_str(&sealed).map_err(|_| tampered())?;
    // What the log published is the commitment the arm must match, not what sits beside it.
    sealed.commitment = commitment;
    if sealed.envelope != envelope || sealed.stratum != stratum || sealed.seq != seq {
        return Err(tampered());
    }
    let secret = sealing_secret(tx)?;
    let opened = seal::open(&sender, &sealed, &secret).map_err(|_| tampered())?;
    Ok(Some(Opening {
        envelope,
        seq: seq.into(),
        arm: opened.arm.code().to_string(),
        nonce: Some(opened.nonce),
    }))
}

impl Store {
    /// Loads a lease file (CSV of whole blocks made by `ecrf randomization lease`) as sealed
    /// envelopes: each arm is sealed at once to this device's own key with a fresh nonce, and
    /// the log records only the commitments. Administrators only; every envelope must be for
    /// this store's site and new to it. Returns how many envelopes were added.
    pub fn load_lease(&mut self, csv: &str) -> Result<usize, StoreError> {
        self.require(Action::LoadLease)?;
        let slots = parse_csv(csv).map_err(|e| StoreError::Invalid(format!("lease: {e}")))?;
        let device = seal::key_bytes(&self.sealing_public_key()?, "device key")
            .map_err(|e| StoreError::Invalid(format!("lease: {e}")))?;
        let mut nonces = Vec::with_capacity(slots.len());
        for _ in &slots {
            nonces.push(random_bytes::<32>()?);
        }
        let lease = seal::seal(&slots, &device, random_bytes::<32>()?, &nonces)
            .map_err(|e| StoreError::Invalid(format!("lease: {e}")))?;
        self.load_sealed_lease(&lease)
    }

    /// Loads a lease sealed to this device (from the server, or made by [`Store::load_lease`]):
    /// checks that every envelope is for this store's site, new to it, and opens with this
    /// device's key to an arm matching its commitment (what is decrypted here is dropped); then
    /// keeps the sealed arms outside the log and appends `lease.load` with the commitments only.
    /// Administrators only. Returns how many envelopes were added.
    pub fn load_sealed_lease(&mut self, lease: &SealedLease) -> Result<usize, StoreError> {
        self.require(Action::LoadLease)?;
        let site = self.site().to_string();
        let secret = sealing_secret(self.conn())?;
        let mut list = Vec::with_capacity(lease.envelopes.len());
        let mut seen = std::collections::BTreeSet::new();
        for e in &lease.envelopes {
            let stratum = Stratum::from_key(&e.stratum)
                .map_err(|err| StoreError::Invalid(format!("lease: {err}")))?;
            if stratum.site != site {
                return Err(StoreError::Invalid(format!(
                    "lease: envelope {} is for site {}, this store is site {site}",
                    e.envelope, stratum.site
                )));
            }
            if e.envelope != format!("{}-E{:04}", e.stratum, e.seq) || !seen.insert(&e.envelope) {
                return Err(StoreError::Invalid(format!(
                    "lease: envelope {} does not fit its stratum and position, or appears twice",
                    e.envelope
                )));
            }
            seal::open(&lease.sender, e, &secret)
                .map_err(|err| StoreError::Invalid(format!("lease: {err}; nothing loaded")))?;
            list.push(LeasedEnvelope {
                envelope: e.envelope.clone(),
                stratum: e.stratum.clone(),
                seq: e.seq,
                block: e.block,
                block_size: e.block_size,
                commitment: Some(e.commitment.clone()),
                arm: None,
            });
        }
        if list.is_empty() {
            return Err(StoreError::Invalid("lease: no envelope in it".into()));
        }
        let n = list.len();
        let body =
            serde_json::to_string(&list).map_err(|e| StoreError::Invalid(format!("lease: {e}")))?;
        self.commit_with(|tx| {
            for e in &lease.envelopes {
                let seen: Option<i64> = tx
                    .query_row(
                        "SELECT 1 FROM envelopes WHERE envelope = ?1 \
                         UNION ALL SELECT 1 FROM sealed_envelopes WHERE envelope = ?1",
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
                let json = serde_json::to_string(e)
                    .map_err(|err| StoreError::Invalid(format!("lease: {err}")))?;
                tx.execute(
                    "INSERT INTO sealed_envelopes (envelope, sender, sealed) VALUES (?1, ?2, ?3)",
                    params![e.envelope, lease.sender, json],
                )?;
            }
            let mut d = Draft::new(ChangeKind::LeaseLoaded);
            d.item = Some(uuid::Uuid::now_v7().to_string());
            d.new_value = Some(body);
            Ok((vec![d], ()))
        })?;
        Ok(n)
    }

    /// This device's X25519 public key (hex), to which leases are sealed; the key pair is made
    /// the first time it is asked for and its secret never leaves the store.
    pub fn sealing_public_key(&self) -> Result<String, StoreError> {
        Ok(seal::public_key(&*sealing_secret(self.conn())?))
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
            let next = match server {
                Some(slot) if slot.stratum != stratum => {
                    return Err(StoreError::Invalid(format!(
                        "the server's slot {} is for stratum {}, this subject's is {stratum}",
                        slot.envelope, slot.stratum
                    )));
                }
                Some(slot) => Some(Opening {
                    envelope: slot.envelope.clone(),
                    seq: slot.seq.into(),
                    arm: slot.arm.clone(),
                    nonce: None,
                }),
                None => open_next_envelope(tx, &stratum)?,
            };
            let Opening {
                envelope,
                seq,
                arm,
                nonce,
            } = next.ok_or_else(|| StoreError::Refused(Refusal::NoEnvelope(stratum.clone())))?;
            let subject_no = format!("{site}-R{seq:04}");
            let opened = Opened {
                envelope: envelope.clone(),
                arm: arm.clone(),
                subject_no: subject_no.clone(),
                stratum: stratum.clone(),
                server: server.is_some(),
                nonce,
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
