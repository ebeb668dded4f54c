//! CSV files: one per form, the data dictionary, and the audit trail.
//!
//! Owns the CSV spelling of cells (RFC 4180 quoting; UTF-8 without a byte-order mark; dates
//! `2026-03-01`; date-times ISO 8601 with their offset, `2026-03-01T08:30:00+08:00`; exact
//! decimals as typed; missing-data codes `@ND`, `@UNK`, `@NA`, distinct from an empty cell).

use std::collections::HashMap;
use std::io::Write;

use chrono::{Datelike, Timelike};

use ecrf_core::study::ItemType;
use ecrf_core::{MissingCode, Study};
use ecrf_log::ChangeKind;

use crate::ExportError;
use crate::source::TrialData;
use crate::table::{Cell, ColumnKind, Table};

/// How a missing-data code is written in CSV files (and read by the R script).
pub fn missing_text(m: MissingCode) -> String {
    format!("@{}", m.code())
}

/// A cell as CSV text (before quoting).
pub fn cell_text(c: &Cell) -> String {
    match c {
        Cell::Empty => String::new(),
        Cell::Missing(m) => missing_text(*m),
        Cell::Int(i) => i.to_string(),
        Cell::Dec(d) => d.to_string(),
        Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
        Cell::DateTime(t) => t.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        Cell::Text(t) => t.clone(),
    }
}

/// Quotes a field when it holds a comma, quote, line break or edge spaces.
pub fn quote(field: &str) -> std::borrow::Cow<'_, str> {
    let needs = crate::scan::csv_special(field) || field.starts_with(' ') || field.ends_with(' ');
    if needs {
        format!("\"{}\"", field.replace('"', "\"\"")).into()
    } else {
        field.into()
    }
}

fn write_line<W: Write + ?Sized, S: AsRef<str>>(w: &mut W, fields: &[S]) -> std::io::Result<()> {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        w.write_all(quote(f.as_ref()).as_bytes())?;
    }
    w.write_all(b"\r\n")
}

/// Writes a cell as [`cell_text`] spells it, quoted like [`quote`], without allocating for
/// numbers, dates and plain text.
fn write_cell<W: Write + ?Sized>(w: &mut W, c: &Cell) -> std::io::Result<()> {
    match c {
        Cell::Empty => Ok(()),
        Cell::Missing(m) => write!(w, "@{}", m.code()),
        Cell::Int(i) => write!(w, "{i}"),
        Cell::Dec(d) => write!(w, "{d}"),
        Cell::Date(d) => write_date(w, *d),
        Cell::DateTime(t) => {
            write_date(w, t.date_naive())?;
            write!(w, "T{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())?;
            let off = t.offset().local_minus_utc();
            let (sign, off) = if off < 0 { ('-', -off) } else { ('+', off) };
            write!(w, "{sign}{:02}:{:02}", off / 3600, off % 3600 / 60)
        }
        Cell::Text(t) => w.write_all(quote(t).as_bytes()),
    }
}

/// `2026-03-01` (years 0–9999, as chrono's `%Y-%m-%d` writes them).
fn write_date<W: Write + ?Sized>(w: &mut W, d: chrono::NaiveDate) -> std::io::Result<()> {
    if (0..=9999).contains(&d.year()) {
        write!(w, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
    } else {
        write!(w, "{}", d.format("%Y-%m-%d"))
    }
}

/// Writes one form table.
pub fn write_table<W: Write + ?Sized>(w: &mut W, t: &Table) -> std::io::Result<()> {
    let head: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    write_line(w, &head)?;
    for row in &t.rows {
        for (i, c) in row.iter().enumerate() {
            if i > 0 {
                w.write_all(b",")?;
            }
            write_cell(w, c)?;
        }
        w.write_all(b"\r\n")?;
    }
    Ok(())
}

/// What a derived value is computed from, in words.
pub fn derivation_text(name: &str) -> &'static str {
    match name {
        "bmi" => "weight (kg) / (height (cm) / 100)^2, from this form",
        "vis" => {
            "vasoactive-inotropic score: dopamine + dobutamine + 100 x epinephrine + 100 x norepinephrine + 10 x milrinone + 10000 x vasopressin"
        }
        "pulse_pressure" => "systolic - diastolic blood pressure",
        "iabp_delay" => "hours from ECMO start (ECMO.START_DT) to IABP insertion (IABP.INSERT_DT)",
        "iabp_deviation" => {
            "IABP arm without IABP within 6 h of ECMO start, or control arm with IABP within 6 h"
        }
        "crossover" => "control-arm subject who received an IABP",
        "eligible" => "all inclusion criteria met and no exclusion criterion present (SCR)",
        "ineligibility_reasons" => {
            "the inclusion criteria not met and exclusion criteria present (SCR)"
        }
        "successful_weaning" => "ECMO removed and alive without ECMO 24 h later",
        "icu_los" => "days from ICU admission to ICU discharge",
        "hospital_los" => "days from admission to hospital discharge",
        "primary_endpoint" => "death from any cause within 30 days of randomization",
        _ => "computed by the app",
    }
}

/// The code list of a column as `1, Yes | 0, No` and the stored codes as `1=Y | 0=N`.
pub fn code_texts(kind: &ColumnKind) -> (String, String) {
    match kind {
        ColumnKind::Coded(codes) => (
            codes
                .iter()
                .map(|c| format!("{}, {}", c.number, c.label.en))
                .collect::<Vec<_>>()
                .join(" | "),
            codes
                .iter()
                .map(|c| format!("{}={}", c.number, c.code))
                .collect::<Vec<_>>()
                .join(" | "),
        ),
        _ => (String::new(), String::new()),
    }
}

/// Writes the data dictionary: one row per column of every exported form.
pub fn write_dictionary<W: Write + ?Sized>(
    w: &mut W,
    study: &Study,
    tables: &[Table],
) -> std::io::Result<()> {
    let head = [
        "form",
        "variable",
        "item",
        "label_en",
        "label_zh",
        "type",
        "unit",
        "codes",
        "codes_zh",
        "stored_codes",
        "hard_range",
        "soft_range",
        "missing_codes",
        "derivation",
    ];
    write_line(w, &head)?;
    for t in tables {
        let form = study.form(&t.form);
        for c in &t.columns {
            let item = c.item.as_deref().and_then(|i| form.and_then(|f| f.item(i)));
            let (codes, stored) = code_texts(&c.kind);
            let codes_zh = match &c.kind {
                ColumnKind::Coded(cs) => cs
                    .iter()
                    .map(|k| format!("{}, {}", k.number, k.label.zh))
                    .collect::<Vec<_>>()
                    .join(" | "),
                _ => String::new(),
            };
            let range = |r: Option<ecrf_core::study::Range>| {
                r.map(|r| format!("[{}, {}]", r.min, r.max))
                    .unwrap_or_default()
            };
            let ty = match item.map(|i| i.item_type) {
                Some(ItemType::MultiChoice) => "coded (one of several choices: 1 chosen, 0 not)",
                _ => c.kind.name(),
            };
            let missing = c
                .missing
                .iter()
                .map(|m| format!("{} = {}", missing_text(*m), m.label_en()))
                .collect::<Vec<_>>()
                .join(" | ");
            let derivation = item
                .and_then(|i| i.derived.as_deref())
                .map(|d| format!("{d}: {}", derivation_text(d)))
                .unwrap_or_default();
            let fields = [
                t.form.clone(),
                c.name.clone(),
                c.item.clone().unwrap_or_default(),
                c.label.en.clone(),
                c.label.zh.clone(),
                ty.to_string(),
                c.unit.clone().unwrap_or_default(),
                codes,
                codes_zh,
                stored,
                range(item.and_then(|i| i.hard)),
                range(item.and_then(|i| i.soft)),
                missing,
                derivation,
            ];
            write_line(w, &fields)?;
        }
    }
    Ok(())
}

/// Writes the audit trail: one row per change of every exported site's log.
pub fn write_audit<'a, W: Write + ?Sized>(w: &mut W, data: &'a TrialData) -> std::io::Result<()> {
    let head = [
        "site",
        "seq",
        "change_id",
        "device",
        "device_seq",
        "kind",
        "subject",
        "form",
        "item",
        "old_value",
        "new_value",
        "user",
        "role",
        "utc",
        "local_offset",
        "reason",
        "hash",
        "signature",
    ];
    write_line(w, &head)?;
    // A stored value's JSON is shown as the value it is, quoted. A trial's half a million
    // changes hold a few thousand distinct values, so each JSON text is read and spelled once
    // and its cell kept by that text; the other fields are written straight from the change.
    let mut shown: HashMap<&str, Box<str>> = HashMap::new();
    let mut show = |w: &mut W, v: Option<&'a str>| -> std::io::Result<()> {
        let Some(json) = v else {
            return Ok(());
        };
        let cell = shown
            .entry(json)
            .or_insert_with(|| match ecrf_core::Value::from_json(json) {
                Ok(v) => quote(&v.to_string()).into(),
                Err(_) => quote(json).into(),
            });
        w.write_all(cell.as_bytes())
    };
    for sc in data.changes() {
        let c = sc.change;
        let field = |w: &mut W, f: &str| -> std::io::Result<()> {
            w.write_all(quote(f).as_bytes())?;
            w.write_all(b",")
        };
        field(w, sc.site)?;
        write_int(w, c.seq())?;
        w.write_all(b",")?;
        field(w, c.change_id())?;
        field(w, c.device())?;
        write_int(w, c.device_seq())?;
        w.write_all(b",")?;
        field(w, c.kind().as_str())?;
        field(w, c.subject().unwrap_or_default())?;
        field(w, c.form().unwrap_or_default())?;
        field(w, c.item().unwrap_or_default())?;
        show(w, c.old_value())?;
        w.write_all(b",")?;
        show(w, c.new_value())?;
        w.write_all(b",")?;
        field(w, c.user())?;
        field(w, c.role())?;
        field(w, c.utc())?;
        field(w, c.local_offset())?;
        field(w, c.reason().unwrap_or_default())?;
        field(w, c.hash())?;
        w.write_all(quote(c.signature().unwrap_or_default()).as_bytes())?;
        w.write_all(b"\r\n")?;
    }
    Ok(())
}

/// Writes a whole number as `{n}` spells it, without the formatting machinery (two of each
/// row of the audit trail).
fn write_int<W: Write + ?Sized>(w: &mut W, n: i64) -> std::io::Result<()> {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        w.write_all(b"-")?;
    }
    w.write_all(&digits[at..])
}

/// Writes the public keys the exported logs register for their authors (`user.add` and
/// password bodies), so a sponsor can check each change's `signature` without this software:
/// Ed25519 over the UTF-8 text `ecrf-change-signature-v1|` followed by the change's `hash`
/// (`ecrf_log::author`). One row per (site, user, key).
pub fn write_author_keys<W: Write + ?Sized>(w: &mut W, data: &TrialData) -> std::io::Result<()> {
    write_line(
        w,
        &["site", "user", "public_key_ed25519_hex", "signed_message"],
    )?;
    let mut keys: std::collections::BTreeSet<(&str, String, String)> = Default::default();
    for sc in data.changes() {
        // Only these kinds register a key: the others are not unpacked into a change.
        let registers = matches!(
            sc.change.kind(),
            ChangeKind::UserAdded | ChangeKind::PasswordReset | ChangeKind::PasswordChanged
        );
        if !registers {
            continue;
        }
        if let (Some(user), Some(key)) = (
            sc.change.item(),
            ecrf_log::author::registered_key(&sc.change.to_change()),
        ) {
            keys.insert((sc.site, user.to_string(), key));
        }
    }
    for (site, user, key) in keys {
        write_line(w, &[site, &user, &key, "ecrf-change-signature-v1|<hash>"])?;
    }
    Ok(())
}

/// File name of a form's CSV.
pub fn file_name(form: &str) -> String {
    format!("{}.csv", file_stem(form))
}

/// A form's file name without its extension (CSV and statistics files): its code in lower case.
#[cfg(not(windows))]
pub fn file_stem(form: &str) -> String {
    form.to_ascii_lowercase()
}

/// Windows: the code in lower case, with `_` after a reserved device name (`con_.csv` for the
/// consent form CON): Windows opens the device for `con.csv`, whatever the extension.
#[cfg(windows)]
pub fn file_stem(form: &str) -> String {
    let stem = form.to_ascii_lowercase();
    let numbered = |prefix: &str| {
        stem.strip_prefix(prefix)
            .is_some_and(|n| n.len() == 1 && n.as_bytes()[0].is_ascii_digit() && n != "0")
    };
    if matches!(stem.as_str(), "con" | "prn" | "aux" | "nul") || numbered("com") || numbered("lpt")
    {
        stem + "_"
    } else {
        stem
    }
}

/// Writes every table, the dictionary and (optionally) the audit trail into `dir`.
pub fn write_all(
    dir: &std::path::Path,
    study: &Study,
    tables: &[Table],
    data: Option<&TrialData>,
) -> Result<Vec<std::path::PathBuf>, ExportError> {
    let mut written = Vec::new();
    let mut put = |name: &str, f: &dyn Fn(&mut dyn Write) -> std::io::Result<()>| {
        let path = dir.join(name);
        let file = std::fs::File::create(&path).map_err(|e| ExportError::io(&path, e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 16, file);
        f(&mut w)
            .and_then(|()| w.flush())
            .map_err(|e| ExportError::io(&path, e))?;
        written.push(path);
        Ok::<(), ExportError>(())
    };
    for t in tables {
        put(&file_name(&t.form), &|w| write_table(w, t))?;
    }
    put("dictionary.csv", &|w| write_dictionary(w, study, tables))?;
    if let Some(data) = data {
        put("audit_trail.csv", &|w| write_audit(w, data))?;
        put("author_keys.csv", &|w| write_author_keys(w, data))?;
    }
    Ok(written)
}
