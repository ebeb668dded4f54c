//! CSV files: one per form, the data dictionary, and the audit trail.
//!
//! Owns the CSV spelling of cells (RFC 4180 quoting; UTF-8 without a byte-order mark; dates
//! `2026-03-01`; date-times ISO 8601 with their offset, `2026-03-01T08:30:00+08:00`; exact
//! decimals as typed; missing-data codes `@ND`, `@UNK`, `@NA`, distinct from an empty cell).

use std::io::Write;

use ecrf_core::study::ItemType;
use ecrf_core::{MissingCode, Study};

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
    let needs =
        field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') || field.ends_with(' ');
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

/// Writes one form table.
pub fn write_table<W: Write + ?Sized>(w: &mut W, t: &Table) -> std::io::Result<()> {
    let head: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
    write_line(w, &head)?;
    for row in &t.rows {
        let fields: Vec<String> = row.iter().map(cell_text).collect();
        write_line(w, &fields)?;
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
pub fn write_audit<W: Write + ?Sized>(w: &mut W, data: &TrialData) -> std::io::Result<()> {
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
    ];
    write_line(w, &head)?;
    let show = |v: &Option<String>| -> String {
        v.as_deref()
            .map(|j| match ecrf_core::Value::from_json(j) {
                Ok(v) => v.to_string(),
                Err(_) => j.to_string(),
            })
            .unwrap_or_default()
    };
    for sc in &data.changes {
        let c = &sc.change;
        let (seq, dseq) = (c.seq.to_string(), c.device_seq.to_string());
        let (old, new) = (show(&c.old_value), show(&c.new_value));
        let fields: [&str; 17] = [
            &sc.site,
            &seq,
            &c.change_id,
            &c.device,
            &dseq,
            &c.kind,
            c.subject.as_deref().unwrap_or_default(),
            c.form.as_deref().unwrap_or_default(),
            c.item.as_deref().unwrap_or_default(),
            &old,
            &new,
            &c.user,
            &c.role,
            &c.utc,
            &c.local_offset,
            c.reason.as_deref().unwrap_or_default(),
            &c.hash,
        ];
        write_line(w, &fields)?;
    }
    Ok(())
}

/// File name of a form's CSV.
pub fn file_name(form: &str) -> String {
    format!("{}.csv", form.to_ascii_lowercase())
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
        let mut w = std::io::BufWriter::new(file);
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
    }
    Ok(written)
}
