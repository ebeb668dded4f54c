//! HL7 v2.x `ORU^R01` files read into [`LabResult`]s, one per `OBX`.
//!
//! This module owns the HL7 reading: splitting a file into messages, handing each to
//! `hl7-parser` (which parses one message and would stop silently at the first segment it
//! cannot read), and taking the fields of `MSH`, `PID`, `OBR` and `OBX` a result needs.
//!
//! Invariants:
//! - line ends `\r\n`, `\r` and `\n` are all segment ends; blank lines are dropped; MLLP framing
//!   (`0x0B` before a message, `0x1C` after it) is removed; a message starts at each line
//!   beginning `MSH|`… (any field separator);
//! - text before the first `MSH`, a message the parser refuses, or a segment it cannot read
//!   refuses the whole file ([`ReadError::Malformed`] naming `message N, line M`, M the file's
//!   1-based line): a result from a half-read file cannot be trusted;
//! - a message that is not `ORU^R01` is one [`Problem`] (its results are not read), not a
//!   refusal of the file;
//! - every `OBX` of an `ORU^R01` becomes either one [`LabResult`] or one [`Problem`] at
//!   `message N (MSH-10 <id>), OBX K` (K its 1-based rank among the message's `OBX`s);
//! - a result's id is `MSH-10/OBX-1` (the OBX's rank when OBX-1 is empty); when OBX-1 repeats
//!   within the message (it restarts under each OBR), `MSH-10/R/OBX-1` with R the rank of the
//!   OBR above it (0 when none), so that ids stay unique;
//! - field values are decoded from HL7 escapes (`\F\ \S\ \T\ \R\ \E\ \Xhh\ \.br\`) here, not
//!   by `hl7-parser`'s decoder, which slices by character index and breaks on non-ASCII text;
//! - times are read here too: `YYYYMMDDHHMM[SS[.S…]][±ZZZZ]`; with an offset
//!   [`Taken::Zoned`], without [`Taken::Local`]; less than minute precision is a problem;
//! - values are not parsed as numbers (the plan does that); only the value type is checked.

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use hl7_parser::Message;
use hl7_parser::message::{Field, Segment, Separators};

use crate::{LabResult, Problem, ReadError, ReadReport, Taken};

/// Reads the HL7 v2 messages of a file into results and problems.
pub fn read(text: &str) -> Result<ReadReport, ReadError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut report = ReadReport::default();
    for (n, lines) in messages(text)?.iter().enumerate() {
        read_message(n + 1, lines, &mut report)?;
    }
    Ok(report)
}

/// One line of the file: its 1-based number and text (without its line end).
type Line<'t> = (usize, &'t str);

/// The file's non-blank lines grouped into messages, each starting with its `MSH`.
fn messages(text: &str) -> Result<Vec<Vec<Line<'_>>>, ReadError> {
    let mut out: Vec<Vec<Line<'_>>> = Vec::new();
    for (i, line) in split_lines(text).into_iter().enumerate() {
        let line = line
            .trim_start_matches('\u{0b}')
            .trim_end_matches(['\u{1c}', ' ', '\t']);
        if line.trim().is_empty() {
            continue;
        }
        if starts_message(line) {
            out.push(vec![(i + 1, line)]);
        } else if let Some(current) = out.last_mut() {
            current.push((i + 1, line));
        } else {
            return Err(ReadError::Malformed {
                format: "hl7",
                place: format!("line {}", i + 1),
                message: format!(
                    "text before the first MSH segment (\"{}\"): not an HL7 v2 file, or a damaged one",
                    clip(line)
                ),
            });
        }
    }
    if out.is_empty() {
        return Err(ReadError::Malformed {
            format: "hl7",
            place: "the whole file".into(),
            message: "no MSH segment: the file holds no HL7 v2 message".into(),
        });
    }
    Ok(out)
}

/// Lines split at `\r\n`, `\r` or `\n`.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['\r', '\n']) {
        lines.push(&rest[..i]);
        let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + skip..];
    }
    if !rest.is_empty() {
        lines.push(rest);
    }
    lines
}

/// `MSH` followed by a field separator (any ASCII punctuation, `|` in practice).
fn starts_message(line: &str) -> bool {
    line.strip_prefix("MSH")
        .and_then(|r| r.chars().next())
        .is_some_and(|c| c.is_ascii_punctuation())
}

/// Parses one message and reads its OBX segments.
fn read_message(n: usize, lines: &[Line<'_>], report: &mut ReadReport) -> Result<(), ReadError> {
    let joined = lines.iter().map(|(_, l)| *l).collect::<Vec<_>>().join("\r");
    let first_line = lines.first().map(|(no, _)| *no).unwrap_or(0);
    let message = Message::parse(&joined).map_err(|e| ReadError::Malformed {
        format: "hl7",
        place: format!("message {n}, line {first_line}"),
        message: format!("the MSH segment cannot be read as HL7 v2 ({e})"),
    })?;
    let consumed = message.raw_value().len();
    if message.segments.len() != lines.len() || consumed != joined.len() {
        // The first line not read whole: the first whose end lies after what was consumed.
        let mut end = 0;
        let (line_no, text) = lines
            .iter()
            .find(|(_, l)| {
                end += l.len();
                let past = end > consumed;
                end += 1;
                past
            })
            .copied()
            .unwrap_or((first_line, ""));
        return Err(ReadError::Malformed {
            format: "hl7",
            place: format!("message {n}, line {line_no}"),
            message: format!(
                "segment \"{}\" cannot be read (a segment is a 3-character name, then fields separated by '{}')",
                clip(text),
                message.separators.field
            ),
        });
    }
    let seps = message.separators;
    let Some(msh) = message.segments.first() else {
        return Ok(());
    };
    // An MSH-2 of five encoding characters (v2.7's truncation `#`) shifts the parser's numbering.
    let msh_line = lines.first().map(|(_, l)| *l).unwrap_or("");
    let shift = usize::from(
        msh_line
            .as_bytes()
            .get(8)
            .is_some_and(|b| char::from(*b) != seps.field),
    );
    let msh_field = |k: usize| msh.field(k + shift);
    let control = msh_field(10)
        .map(|f| decode(f.raw_value(), &seps))
        .unwrap_or_default();
    let control = control.trim().to_string();
    let msg_place = if control.is_empty() {
        format!("message {n} (no MSH-10)")
    } else {
        format!("message {n} (MSH-10 {control})")
    };
    let id_prefix = if control.is_empty() {
        format!("message {n}")
    } else {
        control.clone()
    };

    let kind = msh_field(9);
    let event = (comp(kind, 1, &seps), comp(kind, 2, &seps));
    if event.0 != "ORU" || event.1 != "R01" {
        let written = kind.map(|f| f.raw_value()).unwrap_or("");
        report.problems.push(Problem {
            place: msg_place,
            message: format!(
                "message type (MSH-9) is \"{}\", not ORU^R01 (laboratory results): its segments are not read",
                clip(written)
            ),
        });
        return Ok(());
    }

    // OBX-1 (set id) restarts at 1 under each OBR in most messages: when it repeats within the
    // message, the OBR's rank is added so that every result keeps its own id.
    let mut set_ids: Vec<String> = Vec::new();
    let mut obx_rank = 0;
    for segment in message.segments.iter().filter(|s| s.name == "OBX") {
        obx_rank += 1;
        let set_id = comp(segment.field(1), 1, &seps).trim().to_string();
        set_ids.push(if set_id.is_empty() {
            obx_rank.to_string()
        } else {
            set_id
        });
    }
    let repeated = {
        let mut sorted = set_ids.clone();
        sorted.sort();
        sorted.windows(2).any(|w| w[0] == w[1])
    };

    let mut patient: Option<String> = None;
    let mut obr_time: Option<String> = None;
    let mut obr_rank = 0;
    let mut obx_rank = 0;
    for segment in message.segments.iter().skip(1) {
        match segment.name {
            "PID" => {
                patient = Some(comp(segment.field(3), 1, &seps));
                obr_time = None;
            }
            "OBR" => {
                obr_rank += 1;
                obr_time = Some(comp(segment.field(7), 1, &seps));
            }
            "OBX" => {
                obx_rank += 1;
                let place = format!("{msg_place}, OBX {obx_rank}");
                match obx(segment, &seps, patient.as_deref(), obr_time.as_deref()) {
                    Ok(r) => {
                        let set_id = set_ids.get(obx_rank - 1).cloned().unwrap_or_default();
                        let id = if repeated {
                            format!("{id_prefix}/{obr_rank}/{set_id}")
                        } else {
                            format!("{id_prefix}/{set_id}")
                        };
                        report.results.push(LabResult { id, place, ..r });
                    }
                    Err(message) => report.problems.push(Problem { place, message }),
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// One OBX as a result (its id and place filled by the caller), or every reason it cannot be
/// used.
fn obx(
    obx: &Segment<'_>,
    seps: &Separators,
    patient: Option<&str>,
    obr_time: Option<&str>,
) -> Result<LabResult, String> {
    // Status first: a result that is not final is not imported whatever else it holds.
    let status = comp(obx.field(11), 1, seps);
    match status.trim() {
        "" | "F" | "C" => {}
        "P" => return Err("preliminary result, not imported (OBX-11 \"P\")".into()),
        "X" => return Err("the result could not be obtained (OBX-11 \"X\"), not imported".into()),
        "D" => return Err("the result was deleted (OBX-11 \"D\"), not imported".into()),
        "W" => {
            return Err(
                "the result was posted to the wrong patient (OBX-11 \"W\"), not imported".into(),
            );
        }
        other => {
            return Err(format!(
                "OBX-11 status \"{}\" is not a final result (F or C needed), not imported",
                clip(other)
            ));
        }
    }

    let mut reasons: Vec<String> = Vec::new();

    let value_type = comp(obx.field(2), 1, seps);
    let value = match value_type.trim() {
        "NM" => {
            let v = field_text(obx.field(5), seps);
            if v.trim().is_empty() {
                reasons.push("no value (OBX-5 is empty)".into());
                None
            } else {
                Some(v.trim().to_string())
            }
        }
        "SN" => match structured_number(obx.field(5), seps) {
            Ok(v) => Some(v),
            Err(why) => {
                reasons.push(why);
                None
            }
        },
        other => {
            reasons.push(format!(
                "not a number result (OBX-2 value type \"{}\", NM needed; OBX-5 \"{}\")",
                clip(other),
                clip(&field_text(obx.field(5), seps))
            ));
            None
        }
    };
    let unit = comp(obx.field(6), 1, seps).trim().to_string();

    let id3 = |k| comp(obx.field(3), k, seps).trim().to_string();
    let loinc = if id3(3) == "LN" && !id3(1).is_empty() {
        Some(id3(1))
    } else if id3(6) == "LN" && !id3(4).is_empty() {
        Some(id3(4))
    } else {
        None
    };
    let name = [id3(2), id3(5), id3(1)]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    if loinc.is_none() && name.is_empty() {
        reasons.push("no test code (OBX-3 is empty)".into());
    }

    let own_time = comp(obx.field(14), 1, seps);
    let taken = if !own_time.trim().is_empty() {
        parse_ts(own_time.trim())
            .map_err(|why| format!("{why}: OBX-14 \"{}\"", clip(own_time.trim())))
    } else {
        match obr_time.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => parse_ts(t).map_err(|why| format!("{why}: OBR-7 \"{}\"", clip(t))),
            None => Err("no specimen time (OBX-14 and the OBR-7 before it are empty)".into()),
        }
    };
    let taken = match taken {
        Ok(t) => Some(t),
        Err(why) => {
            reasons.push(why);
            None
        }
    };

    let patient = match patient.map(str::trim) {
        None => {
            reasons.push("no patient: no PID segment before this OBX".into());
            None
        }
        Some("") => {
            reasons.push("no patient: PID-3 (the hospital record number) is empty".into());
            None
        }
        Some(p) => Some(p.to_string()),
    };

    match (value, taken, patient, reasons.is_empty()) {
        (Some(value), Some(taken), Some(patient), true) => Ok(LabResult {
            id: String::new(),
            patient,
            loinc,
            name,
            value,
            unit,
            taken,
            place: String::new(),
        }),
        _ => Err(format!("{}; not imported", reasons.join("; "))),
    }
}

/// An `SN` value that is a plain number (`^5.1` or `=^5.1`); bounds and ratios are refused.
fn structured_number(field: Option<&Field<'_>>, seps: &Separators) -> Result<String, String> {
    let comparator = comp(field, 1, seps);
    let number = comp(field, 2, seps);
    let separator = comp(field, 3, seps);
    let second = comp(field, 4, seps);
    let written = field.map(|f| f.raw_value()).unwrap_or("");
    if number.trim().is_empty() {
        return Err(format!(
            "no value (OBX-5 structured numeric \"{}\" has no number)",
            clip(written)
        ));
    }
    if !matches!(comparator.trim(), "" | "=")
        || !separator.trim().is_empty()
        || !second.trim().is_empty()
    {
        return Err(format!(
            "not a number result: structured numeric OBX-5 \"{}\" is a bound, range or ratio",
            clip(written)
        ));
    }
    Ok(number.trim().to_string())
}

/// Component `k` (1-based) of a field's first repetition, decoded; empty when absent.
fn comp(field: Option<&Field<'_>>, k: usize, seps: &Separators) -> String {
    field
        .and_then(|f| f.repeats.first())
        .and_then(|r| r.components.get(k - 1))
        .map(|c| decode(c.raw_value(), seps))
        .unwrap_or_default()
}

/// A field's first repetition, decoded (components joined by the component separator).
fn field_text(field: Option<&Field<'_>>, seps: &Separators) -> String {
    field
        .and_then(|f| f.repeats.first())
        .map(|r| decode(r.raw_value(), seps))
        .unwrap_or_default()
}

/// HL7 escapes decoded: `\F\ \S\ \T\ \R\ \E\` to the separators, `\Xhh…\` to its UTF-8 bytes,
/// `\.br\` to a line break, `\H\ \N\` (highlighting) removed; anything else kept as written.
fn decode(raw: &str, seps: &Separators) -> String {
    let esc = seps.escape;
    if !raw.contains(esc) {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find(esc) {
        out.push_str(&rest[..start]);
        let after = &rest[start + esc.len_utf8()..];
        let Some(end) = after.find(esc) else {
            // An unterminated escape is kept as written.
            out.push_str(&rest[start..]);
            return out;
        };
        let code = &after[..end];
        match code {
            "F" => out.push(seps.field),
            "S" => out.push(seps.component),
            "T" => out.push(seps.subcomponent),
            "R" => out.push(seps.repetition),
            "E" => out.push(esc),
            ".br" => out.push('\n'),
            "H" | "N" => {}
            _ => match hex_text(code) {
                Some(s) => out.push_str(&s),
                None => {
                    out.push(esc);
                    out.push_str(code);
                    out.push(esc);
                }
            },
        }
        rest = &after[end + esc.len_utf8()..];
    }
    out.push_str(rest);
    out
}

/// `Xhhhh…` as the UTF-8 text its bytes spell, if they do.
fn hex_text(code: &str) -> Option<String> {
    let hex = code.strip_prefix('X')?;
    if hex.is_empty() || hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// An HL7 `TS`/`DTM` with at least minute precision.
fn parse_ts(text: &str) -> Result<Taken, &'static str> {
    let (stamp, offset) = match text.find(['+', '-']) {
        Some(i) => (&text[..i], Some(&text[i..])),
        None => (text, None),
    };
    let (whole, fraction) = match stamp.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (stamp, None),
    };
    let bad = "not an HL7 date/time (YYYYMMDDHHMM[SS][±ZZZZ])";
    if !whole.bytes().all(|b| b.is_ascii_digit())
        || fraction.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad);
    }
    match whole.len() {
        4 | 6 | 8 | 10 => {
            return Err(
                "no specimen time: less than minute precision (a date without hours and minutes)",
            );
        }
        12 | 14 => {}
        _ => return Err(bad),
    }
    if fraction.is_some() && whole.len() != 14 {
        return Err(bad);
    }
    let num = |r: std::ops::Range<usize>| whole.get(r).and_then(|s| s.parse::<u32>().ok());
    let date = num(0..4)
        .zip(num(4..6))
        .zip(num(6..8))
        .and_then(|((y, m), d)| NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d))
        .ok_or("not a valid date")?;
    let second = if whole.len() == 14 {
        num(12..14)
    } else {
        Some(0)
    };
    let time = num(8..10)
        .zip(num(10..12))
        .zip(second)
        .and_then(|((h, mi), s)| NaiveTime::from_hms_opt(h, mi, s))
        .ok_or("not a valid time of day")?;
    let local = NaiveDateTime::new(date, time);
    let Some(offset) = offset else {
        return Ok(Taken::Local(local));
    };
    let digits = &offset[1..];
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the UTC offset is not ±HHMM");
    }
    let hours: i32 = digits[..2].parse().map_err(|_| bad)?;
    let minutes: i32 = digits[2..].parse().map_err(|_| bad)?;
    if minutes >= 60 {
        return Err("the UTC offset is not ±HHMM");
    }
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let zone = FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
        .ok_or("the UTC offset is out of range")?;
    local
        .and_local_timezone(zone)
        .single()
        .map(Taken::Zoned)
        .ok_or("the UTC offset is out of range")
}

/// At most 60 characters of a text from the file, for a message.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if s.chars().nth(60).is_some() {
        out.push('…');
    }
    out
}
