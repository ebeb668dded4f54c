//! FHIR R4 `Bundle`s of `Observation`s (JSON) read into [`LabResult`]s.
//!
//! This module owns the FHIR reading: a minimal serde model of the few parts of `Bundle`,
//! `Observation` and `Patient` that a laboratory result needs, and nothing else. No FHIR crate
//! is used: `fhirbolt` turns on serde_json features for the whole workspace and is no longer
//! maintained; `fhir-model` has no R4 model that keeps decimals exact (it reads them as
//! floating point, so "5.10" would come back as 5.1). Here `valueQuantity.value` is kept as its
//! exact JSON text through serde_json's `raw_value`.
//!
//! Invariants:
//! - the file is refused whole ([`ReadError::Malformed`], naming the place) when it is not
//!   JSON, its `resourceType` is not `Bundle`, `entry` is not a list of objects, or an entry's
//!   `resource` is not an object;
//! - entries that are not `Observation`s (`Patient`, `DiagnosticReport`, …) are skipped
//!   silently: they are normal in a bundle (a `Patient` may be used to resolve a subject);
//! - every `Observation` becomes either one [`LabResult`] or one [`Problem`] whose place is
//!   `entry N (Observation <id>)` (N 1-based) and whose message lists every reason;
//! - only `final`, `amended` and `corrected` results are used; `issued` is never taken as the
//!   specimen time; a time without a UTC offset is [`Taken::Local`], one with it
//!   [`Taken::Zoned`], a date without a time of day is a problem;
//! - values are not parsed as numbers here (the plan does that, with its own messages): a
//!   `valueQuantity.value` is passed on exactly as written.
//!
//! Nesting: serde_json skips unknown members without recursion and stops typed nesting at its
//! recursion limit (128) with an error, so deeply nested input is refused or skipped, never a
//! stack overflow.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{LabResult, Problem, ReadError, ReadReport, Taken};

/// The LOINC code system's URI.
const LOINC: &str = "http://loinc.org";

/// Reads a FHIR R4 `Bundle` (JSON text) into results and problems.
pub fn read(text: &str) -> Result<ReadReport, ReadError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| malformed_json("the file", &e))?;
    if !raw.get().trim_start().starts_with('{') {
        return Err(malformed(
            "the whole file",
            format!(
                "the JSON is {}, not a FHIR Bundle (an object with \"resourceType\": \"Bundle\")",
                json_kind(raw)
            ),
        ));
    }
    let head: BundleHead<'_> =
        serde_json::from_str(raw.get()).map_err(|e| malformed_json("the Bundle", &e))?;
    match head.resource_type.as_deref() {
        Some("Bundle") => {}
        Some(other) => {
            return Err(malformed(
                "resourceType",
                format!("resourceType is \"{}\", not \"Bundle\"", clip(other)),
            ));
        }
        None => {
            return Err(malformed(
                "resourceType",
                "the JSON object has no \"resourceType\" (a Bundle is needed)".into(),
            ));
        }
    }

    // First pass: every entry's resource as its type, refusing the file on a broken entry.
    let mut resources: Vec<(usize, Option<(&RawValue, String)>)> = Vec::new();
    let mut patients: HashMap<String, String> = HashMap::new();
    for (i, entry_raw) in head.entry.iter().enumerate() {
        let n = i + 1;
        let place = format!("entry {n}");
        if !entry_raw.get().trim_start().starts_with('{') {
            return Err(malformed(
                &place,
                format!("the entry is {}, not an object", json_kind(entry_raw)),
            ));
        }
        let entry: Entry<'_> =
            serde_json::from_str(entry_raw.get()).map_err(|e| malformed_json(&place, &e))?;
        let Some(resource) = entry.resource else {
            resources.push((n, None));
            continue;
        };
        if !resource.get().trim_start().starts_with('{') {
            return Err(malformed(
                &place,
                format!("its \"resource\" is {}, not an object", json_kind(resource)),
            ));
        }
        let kind: ResourceKind =
            serde_json::from_str(resource.get()).map_err(|e| malformed_json(&place, &e))?;
        let kind = kind.resource_type.unwrap_or_default();
        if kind == "Patient"
            && let Some(url) = entry.full_url.as_deref()
            && let Ok(p) = serde_json::from_str::<Patient>(resource.get())
            && let Some(record) = p.record_number()
        {
            patients.insert(url.to_string(), record);
        }
        resources.push((n, Some((resource, kind))));
    }

    let mut report = ReadReport::default();
    for (n, resource) in resources {
        match resource {
            None => report.problems.push(Problem {
                place: format!("entry {n}"),
                message: "the entry has no \"resource\": nothing to read".into(),
            }),
            Some((raw, kind)) if kind == "Observation" => match serde_json::from_str::<
                Observation<'_>,
            >(raw.get())
            {
                Ok(obs) => match observation(n, &obs, &patients) {
                    Ok(r) => report.results.push(r),
                    Err(p) => report.problems.push(p),
                },
                Err(e) => report.problems.push(Problem {
                    place: format!("entry {n} (Observation)"),
                    message: format!("the Observation does not follow FHIR R4 ({e}); not imported"),
                }),
            },
            Some(_) => {}
        }
    }
    Ok(report)
}

/// One Observation as a result, or a problem naming every reason it cannot be used.
fn observation(
    n: usize,
    obs: &Observation<'_>,
    patients: &HashMap<String, String>,
) -> Result<LabResult, Problem> {
    let own_id = obs.id.clone().filter(|s| !s.trim().is_empty()).or_else(|| {
        obs.identifier
            .iter()
            .find_map(|i| i.value.clone().filter(|v| !v.trim().is_empty()))
    });
    let place = match &own_id {
        Some(id) => format!("entry {n} (Observation {id})"),
        None => format!("entry {n} (Observation without id)"),
    };
    let problem = |message: String| Problem {
        place: place.clone(),
        message,
    };

    // Status first: a result that is not final is not imported whatever else it holds.
    match obs.status.as_deref() {
        Some("final" | "amended" | "corrected") => {}
        Some("preliminary" | "registered") => {
            return Err(problem(format!(
                "preliminary result, not imported (status \"{}\")",
                obs.status.as_deref().unwrap_or_default()
            )));
        }
        Some("cancelled") => {
            return Err(problem(
                "the result was cancelled (status \"cancelled\"), not imported".into(),
            ));
        }
        Some("entered-in-error") => {
            return Err(problem(
                "the result was entered in error (status \"entered-in-error\"), not imported"
                    .into(),
            ));
        }
        Some(other) => {
            return Err(problem(format!(
                "status \"{}\" is not a final result (final, amended or corrected needed), not imported",
                clip(other)
            )));
        }
        None => {
            return Err(problem(
                "the Observation has no status (final, amended or corrected needed), not imported"
                    .into(),
            ));
        }
    }
    if let Some(reason) = &obs.data_absent_reason {
        return Err(problem(format!(
            "no value: the result is absent (dataAbsentReason \"{}\")",
            clip(&reason.words())
        )));
    }

    let mut reasons: Vec<String> = Vec::new();

    let value = match value(obs) {
        Ok(v) => Some(v),
        Err(why) => {
            reasons.push(why);
            None
        }
    };
    let unit = obs
        .value_quantity
        .as_ref()
        .and_then(|q| {
            q.unit
                .clone()
                .filter(|u| !u.trim().is_empty())
                .or_else(|| q.code.clone())
        })
        .unwrap_or_default();

    let taken = match taken(obs) {
        Ok(t) => Some(t),
        Err(why) => {
            reasons.push(why);
            None
        }
    };

    let patient = match patient(obs, patients) {
        Ok(p) => Some(p),
        Err(why) => {
            reasons.push(why);
            None
        }
    };

    let (loinc, name) = match &obs.code {
        None => {
            reasons.push("no code: the Observation has no \"code\"".into());
            (None, String::new())
        }
        Some(code) => {
            let loinc_coding = code.coding.iter().find(|c| {
                c.system.as_deref() == Some(LOINC)
                    && c.code.as_deref().is_some_and(|s| !s.trim().is_empty())
            });
            let loinc = loinc_coding
                .and_then(|c| c.code.as_ref())
                .map(|s| s.trim().to_string());
            let name = code
                .text
                .clone()
                .filter(|t| !t.trim().is_empty())
                .or_else(|| loinc_coding.and_then(|c| c.display.clone()))
                .or_else(|| code.coding.iter().find_map(|c| c.display.clone()))
                .or_else(|| code.coding.iter().find_map(|c| c.code.clone()))
                .unwrap_or_default();
            if loinc.is_none() && name.trim().is_empty() {
                reasons.push("no code: \"code\" has neither a coding nor a text".into());
            }
            (loinc, name)
        }
    };

    match (value, taken, patient, reasons.is_empty()) {
        (Some(value), Some(taken), Some(patient), true) => Ok(LabResult {
            id: own_id.unwrap_or_else(|| format!("entry {n}")),
            patient,
            loinc,
            name,
            value,
            unit,
            taken,
            place,
        }),
        _ => Err(problem(format!("{}; not imported", reasons.join("; ")))),
    }
}

/// The value as written: `valueQuantity.value`'s exact JSON text, else a number-like
/// `valueString` or a `valueInteger`.
fn value(obs: &Observation<'_>) -> Result<String, String> {
    if let Some(q) = &obs.value_quantity {
        if let Some(c) = q.comparator.as_deref().filter(|c| !c.is_empty()) {
            let shown = q.value.map(|v| v.get().trim()).unwrap_or("");
            return Err(format!(
                "the value is a bound (valueQuantity.comparator \"{}\" {}), not a measured number",
                clip(c),
                clip(shown)
            ));
        }
        let Some(raw) = q.value else {
            return Err("no value: valueQuantity has no \"value\"".into());
        };
        let text = raw.get().trim();
        return match serde_json::from_str::<serde_json::Value>(text) {
            // A JSON number (even one too large for f64) keeps its exact text.
            _ if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => Ok(text.to_string()),
            // A quoted number is not FHIR but is read as the text it holds.
            Ok(serde_json::Value::String(s)) if looks_numeric(&s) => Ok(s.trim().to_string()),
            Ok(serde_json::Value::Null) => Err("no value: valueQuantity.value is null".into()),
            _ => Err(format!(
                "valueQuantity.value {} is not a number",
                clip(text)
            )),
        };
    }
    if let Some(s) = &obs.value_string {
        return if looks_numeric(s) {
            Ok(s.trim().to_string())
        } else {
            Err(format!("not a number result: valueString \"{}\"", clip(s)))
        };
    }
    if let Some(raw) = obs.value_integer {
        return Ok(raw.get().trim().to_string());
    }
    let other = [
        ("valueCodeableConcept", obs.value_codeable_concept.is_some()),
        ("valueBoolean", obs.value_boolean.is_some()),
        ("valueRange", obs.value_range.is_some()),
        ("valueRatio", obs.value_ratio.is_some()),
        ("valueSampledData", obs.value_sampled_data.is_some()),
        ("valueTime", obs.value_time.is_some()),
        ("valueDateTime", obs.value_date_time.is_some()),
        ("valuePeriod", obs.value_period.is_some()),
    ]
    .into_iter()
    .find(|(_, present)| *present);
    match other {
        Some((name, _)) => Err(format!(
            "not a number result: the value is a {name}, not a valueQuantity"
        )),
        None => Err("no value: the Observation has no valueQuantity".into()),
    }
}

/// The specimen time: `effectiveDateTime`, else `effectivePeriod.start`, else
/// `effectiveInstant`; never `issued` (the report time).
fn taken(obs: &Observation<'_>) -> Result<Taken, String> {
    let (field, text) = if let Some(t) = &obs.effective_date_time {
        ("effectiveDateTime", t)
    } else if let Some(t) = obs.effective_period.as_ref().and_then(|p| p.start.as_ref()) {
        ("effectivePeriod.start", t)
    } else if let Some(t) = &obs.effective_instant {
        ("effectiveInstant", t)
    } else if let Some(issued) = &obs.issued {
        return Err(format!(
            "no specimen time: no effectiveDateTime or effectivePeriod.start (issued \"{}\" is the report time, not the specimen's)",
            clip(issued)
        ));
    } else {
        return Err("no specimen time: no effectiveDateTime or effectivePeriod.start".into());
    };
    parse_time(text).map_err(|why| format!("{why}: {field} \"{}\"", clip(text)))
}

/// A FHIR `dateTime` with a time of day.
fn parse_time(text: &str) -> Result<Taken, &'static str> {
    let t = text.trim();
    if let Ok(z) = DateTime::parse_from_rfc3339(t) {
        return Ok(Taken::Zoned(z));
    }
    if let Ok(z) = DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M%:z") {
        return Ok(Taken::Zoned(z));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(l) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(Taken::Local(l));
        }
    }
    let date_only = NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok()
        || (t.len() <= 7 && t.bytes().all(|b| b.is_ascii_digit() || b == b'-') && t.len() >= 4);
    if date_only {
        Err("no specimen time: a date without a time of day")
    } else {
        Err("no specimen time: not a FHIR dateTime")
    }
}

/// The hospital record number: `subject.identifier.value`, else the id of a `Patient/<id>`
/// reference, else (a bundle-internal `urn:…` reference) the referenced Patient's record number.
fn patient(obs: &Observation<'_>, patients: &HashMap<String, String>) -> Result<String, String> {
    let Some(subject) = &obs.subject else {
        return Err("no patient: the Observation has no \"subject\"".into());
    };
    if let Some(v) = subject
        .identifier
        .as_ref()
        .and_then(|i| i.value.as_deref())
        .map(str::trim)
        && !v.is_empty()
    {
        return Ok(v.to_string());
    }
    let Some(reference) = subject
        .reference
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    else {
        return Err("no patient: subject has neither an identifier value nor a reference".into());
    };
    if let Some(record) = patients.get(reference) {
        return Ok(record.clone());
    }
    let segments: Vec<&str> = reference.split('/').collect();
    if let Some(i) = segments.iter().position(|s| *s == "Patient")
        && let Some(id) = segments.get(i + 1).filter(|s| !s.is_empty())
    {
        return Ok((*id).to_string());
    }
    Err(format!(
        "no patient: subject.reference \"{}\" is not a Patient/<id> reference nor a Patient in this bundle",
        clip(reference)
    ))
}

/// True for text that is a number as a laboratory writes it (digits, one sign, a decimal
/// point or comma); the plan parses it.
fn looks_numeric(s: &str) -> bool {
    let t = s.trim();
    t.bytes().any(|b| b.is_ascii_digit())
        && t.bytes()
            .all(|b| b.is_ascii_digit() || b".,+-eE".contains(&b))
}

/// What kind of JSON value a raw value is, in words.
fn json_kind(raw: &RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'[') => "a list",
        Some(b'{') => "an object",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// At most 60 characters of a text from the file, for a message.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if s.chars().nth(60).is_some() {
        out.push('…');
    }
    out
}

fn malformed(place: &str, message: String) -> ReadError {
    ReadError::Malformed {
        format: "fhir",
        place: place.to_string(),
        message,
    }
}

fn malformed_json(what: &str, e: &serde_json::Error) -> ReadError {
    let message = match e.classify() {
        serde_json::error::Category::Io
        | serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof => {
            format!("not JSON: {e}")
        }
        serde_json::error::Category::Data => format!("not a FHIR R4 Bundle: {e}"),
    };
    ReadError::Malformed {
        format: "fhir",
        place: format!("{what}, line {}, column {}", e.line(), e.column()),
        message,
    }
}

// ---- The minimal model: only what a laboratory result needs; unknown members are ignored. ----

#[derive(Deserialize)]
struct BundleHead<'a> {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    #[serde(borrow, default)]
    entry: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(rename = "fullUrl")]
    full_url: Option<String>,
    #[serde(borrow)]
    resource: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ResourceKind {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
}

#[derive(Deserialize)]
struct Patient {
    id: Option<String>,
    #[serde(default)]
    identifier: Vec<Identifier>,
}

impl Patient {
    /// The medical record number (identifier typed `MR`), else the first identifier, else the id.
    fn record_number(&self) -> Option<String> {
        let mr = self.identifier.iter().find(|i| {
            i.r#type
                .as_ref()
                .is_some_and(|t| t.coding.iter().any(|c| c.code.as_deref() == Some("MR")))
        });
        mr.or_else(|| self.identifier.first())
            .and_then(|i| i.value.clone())
            .or_else(|| self.id.clone())
            .filter(|s| !s.trim().is_empty())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Observation<'a> {
    id: Option<String>,
    #[serde(default)]
    identifier: Vec<Identifier>,
    status: Option<String>,
    code: Option<CodeableConcept>,
    subject: Option<Reference>,
    effective_date_time: Option<String>,
    effective_period: Option<Period>,
    effective_instant: Option<String>,
    issued: Option<String>,
    #[serde(borrow)]
    value_quantity: Option<Quantity<'a>>,
    value_string: Option<String>,
    #[serde(borrow)]
    value_integer: Option<&'a RawValue>,
    #[serde(borrow)]
    value_codeable_concept: Option<&'a RawValue>,
    #[serde(borrow)]
    value_boolean: Option<&'a RawValue>,
    #[serde(borrow)]
    value_range: Option<&'a RawValue>,
    #[serde(borrow)]
    value_ratio: Option<&'a RawValue>,
    #[serde(borrow)]
    value_sampled_data: Option<&'a RawValue>,
    #[serde(borrow)]
    value_time: Option<&'a RawValue>,
    #[serde(borrow)]
    value_date_time: Option<&'a RawValue>,
    #[serde(borrow)]
    value_period: Option<&'a RawValue>,
    data_absent_reason: Option<CodeableConcept>,
}

#[derive(Deserialize)]
struct Identifier {
    r#type: Option<CodeableConcept>,
    value: Option<String>,
}

#[derive(Deserialize)]
struct CodeableConcept {
    #[serde(default)]
    coding: Vec<Coding>,
    text: Option<String>,
}

impl CodeableConcept {
    /// Its text, else its first coding's code or display, for a message.
    fn words(&self) -> String {
        self.text
            .clone()
            .or_else(|| {
                self.coding
                    .iter()
                    .find_map(|c| c.code.clone().or_else(|| c.display.clone()))
            })
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct Coding {
    system: Option<String>,
    code: Option<String>,
    display: Option<String>,
}

#[derive(Deserialize)]
struct Reference {
    reference: Option<String>,
    identifier: Option<Identifier>,
}

#[derive(Deserialize)]
struct Period {
    start: Option<String>,
}

#[derive(Deserialize)]
struct Quantity<'a> {
    #[serde(borrow)]
    value: Option<&'a RawValue>,
    comparator: Option<String>,
    unit: Option<String>,
    code: Option<String>,
}
