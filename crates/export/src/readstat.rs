//! Stata `.dta` (release 118, UTF-8), SPSS `.sav` and SAS transport `.xpt` (version 8) files,
//! written through ReadStat (Debian `libreadstat-dev`), the C library behind R's haven. On
//! Windows the same C sources are compiled into the binary by `build.rs` (the ReadStat that
//! PyPI's pyreadstat 1.3.7 ships; see ARCHITECTURE.md, Windows); this module is the same.
//!
//! Owns the small FFI layer: the `unsafe` code is confined to this module, every C string lives
//! until the writer is freed, the writer is freed on every path (a guard), ReadStat's error
//! codes become [`ExportError::ReadStat`] naming the file, and bytes go to a Rust `File` through
//! a callback that records I/O errors instead of unwinding across C.
//!
//! Conventions (also in the data dictionary and the R script):
//! - numbers, dates, date-times and codes are numeric; coded items carry value labels
//!   (`en / zh`; English only in `.xpt`);
//! - missing-data codes: Stata tagged missing `.d` (ND), `.u` (UNK), `.n` (NA), SAS special
//!   missing `.D`, `.U`, `.N`; SPSS user-missing values −997, −998, −999 with labels; in text
//!   columns the code text `@ND`, `@UNK`, `@NA`;
//! - dates are Stata `%td` / SPSS `DATE11` / SAS `DATE9.`; date-times are the local clock time as
//!   recorded (Stata `%tc`, SPSS `DATETIME20`, SAS `DATETIME20.`); the UTC offset is in the CSV;
//! - SAS transport files are ASCII: every non-ASCII character of text and labels is written as
//!   `<U+XXXX>` (so `心率` becomes `<U+5FC3><U+7387>`); use the CSV, Stata or SPSS files for
//!   Chinese text.

use std::ffi::{CStr, CString, c_char, c_long, c_void};
use std::io::Write;
use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime};
use ecrf_core::{MissingCode, Text};

use crate::ExportError;
use crate::table::{Cell, ColumnKind, Table};

#[allow(non_camel_case_types)]
mod ffi {
    use std::ffi::{c_char, c_int, c_long, c_void};

    pub type readstat_error_t = c_int;
    pub type readstat_type_t = c_int;
    pub const READSTAT_TYPE_STRING: readstat_type_t = 0;
    pub const READSTAT_TYPE_DOUBLE: readstat_type_t = 5;
    pub const READSTAT_MEASURE_NOMINAL: c_int = 1;
    pub const READSTAT_MEASURE_SCALE: c_int = 3;

    #[repr(C)]
    pub struct readstat_writer_t {
        _private: [u8; 0],
    }
    #[repr(C)]
    pub struct readstat_variable_t {
        _private: [u8; 0],
    }
    #[repr(C)]
    pub struct readstat_label_set_t {
        _private: [u8; 0],
    }

    pub type readstat_data_writer =
        extern "C" fn(data: *const c_void, len: usize, ctx: *mut c_void) -> isize;

    #[link(name = "readstat")]
    unsafe extern "C" {
        pub fn readstat_error_message(e: readstat_error_t) -> *const c_char;
        pub fn readstat_writer_init() -> *mut readstat_writer_t;
        pub fn readstat_writer_free(w: *mut readstat_writer_t);
        pub fn readstat_set_data_writer(
            w: *mut readstat_writer_t,
            f: readstat_data_writer,
        ) -> readstat_error_t;
        pub fn readstat_add_label_set(
            w: *mut readstat_writer_t,
            t: readstat_type_t,
            name: *const c_char,
        ) -> *mut readstat_label_set_t;
        pub fn readstat_label_double_value(
            s: *mut readstat_label_set_t,
            value: f64,
            label: *const c_char,
        );
        pub fn readstat_label_tagged_value(
            s: *mut readstat_label_set_t,
            tag: c_char,
            label: *const c_char,
        );
        pub fn readstat_add_variable(
            w: *mut readstat_writer_t,
            name: *const c_char,
            t: readstat_type_t,
            width: usize,
        ) -> *mut readstat_variable_t;
        pub fn readstat_variable_set_label(v: *mut readstat_variable_t, label: *const c_char);
        pub fn readstat_variable_set_format(v: *mut readstat_variable_t, format: *const c_char);
        pub fn readstat_variable_set_label_set(
            v: *mut readstat_variable_t,
            s: *mut readstat_label_set_t,
        );
        pub fn readstat_variable_set_measure(v: *mut readstat_variable_t, m: c_int);
        pub fn readstat_variable_add_missing_double_value(
            v: *mut readstat_variable_t,
            value: f64,
        ) -> readstat_error_t;
        pub fn readstat_writer_set_file_label(
            w: *mut readstat_writer_t,
            label: *const c_char,
        ) -> readstat_error_t;
        pub fn readstat_writer_set_file_format_version(
            w: *mut readstat_writer_t,
            version: u8,
        ) -> readstat_error_t;
        pub fn readstat_writer_set_table_name(
            w: *mut readstat_writer_t,
            name: *const c_char,
        ) -> readstat_error_t;
        pub fn readstat_begin_writing_dta(
            w: *mut readstat_writer_t,
            ctx: *mut c_void,
            rows: c_long,
        ) -> readstat_error_t;
        pub fn readstat_begin_writing_sav(
            w: *mut readstat_writer_t,
            ctx: *mut c_void,
            rows: c_long,
        ) -> readstat_error_t;
        pub fn readstat_begin_writing_xport(
            w: *mut readstat_writer_t,
            ctx: *mut c_void,
            rows: c_long,
        ) -> readstat_error_t;
        pub fn readstat_begin_row(w: *mut readstat_writer_t) -> readstat_error_t;
        pub fn readstat_insert_double_value(
            w: *mut readstat_writer_t,
            v: *const readstat_variable_t,
            value: f64,
        ) -> readstat_error_t;
        pub fn readstat_insert_string_value(
            w: *mut readstat_writer_t,
            v: *const readstat_variable_t,
            value: *const c_char,
        ) -> readstat_error_t;
        pub fn readstat_insert_missing_value(
            w: *mut readstat_writer_t,
            v: *const readstat_variable_t,
        ) -> readstat_error_t;
        pub fn readstat_insert_tagged_missing_value(
            w: *mut readstat_writer_t,
            v: *const readstat_variable_t,
            tag: c_char,
        ) -> readstat_error_t;
        pub fn readstat_end_row(w: *mut readstat_writer_t) -> readstat_error_t;
        pub fn readstat_end_writing(w: *mut readstat_writer_t) -> readstat_error_t;
    }
}

/// Which statistics file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatFormat {
    /// Stata `.dta`, release 118 (Stata 14+, UTF-8).
    Stata,
    /// SPSS `.sav`.
    Spss,
    /// SAS transport `.xpt`, version 8 (long names and labels; ASCII).
    SasTransport,
}

impl StatFormat {
    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            StatFormat::Stata => "dta",
            StatFormat::Spss => "sav",
            StatFormat::SasTransport => "xpt",
        }
    }
}

/// The tag of a missing-data code in Stata (`.d`) and SAS (`.D`) files.
pub fn missing_tag(m: MissingCode, format: StatFormat) -> char {
    let t = match m {
        MissingCode::NotDone => 'd',
        MissingCode::Unknown => 'u',
        MissingCode::NotApplicable => 'n',
    };
    if format == StatFormat::SasTransport {
        t.to_ascii_uppercase()
    } else {
        t
    }
}

/// The SPSS user-missing value of a missing-data code.
pub fn spss_missing(m: MissingCode) -> f64 {
    match m {
        MissingCode::NotDone => -997.0,
        MissingCode::Unknown => -998.0,
        MissingCode::NotApplicable => -999.0,
    }
}

/// Text as a SAS transport file can hold it: ASCII, other characters as `<U+XXXX>`.
pub fn ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if ch.is_ascii() {
            out.push(ch);
        } else {
            out.push_str(&format!("<U+{:04X}>", ch as u32));
        }
    }
    out
}

/// Appends `s` as a text cell's bytes: [`ascii`] for SAS transport files, NUL bytes as spaces
/// (as [`Writer::c`] writes them), without the terminating NUL.
fn push_c_text(out: &mut Vec<u8>, s: &str, format: StatFormat) {
    let start = out.len();
    if format == StatFormat::SasTransport && !s.is_ascii() {
        out.extend_from_slice(ascii(s).as_bytes());
    } else {
        out.extend_from_slice(s.as_bytes());
    }
    for b in &mut out[start..] {
        if *b == 0 {
            *b = b' ';
        }
    }
}

fn truncate_chars(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

struct Sink {
    out: std::io::BufWriter<std::fs::File>,
    error: Option<std::io::Error>,
}

extern "C" fn write_bytes(data: *const c_void, len: usize, ctx: *mut c_void) -> isize {
    if ctx.is_null() || (data.is_null() && len > 0) {
        return -1;
    }
    // SAFETY: `ctx` is the `Sink` passed to `begin_writing_*`, alive and exclusively ours for
    // the whole writing; `data` points at `len` bytes owned by ReadStat for this call.
    let sink = unsafe { &mut *(ctx as *mut Sink) };
    let bytes: &[u8] = if len == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(data as *const u8, len) }
    };
    match sink.out.write_all(bytes) {
        Ok(()) => len as isize,
        Err(e) => {
            sink.error = Some(e);
            -1
        }
    }
}

/// Owns a ReadStat writer and every C string handed to it; frees the writer when dropped.
struct Writer {
    raw: *mut ffi::readstat_writer_t,
    strings: Vec<CString>,
    path: std::path::PathBuf,
}

impl Drop for Writer {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `readstat_writer_init` and is freed once, here.
        unsafe { ffi::readstat_writer_free(self.raw) }
    }
}

impl Writer {
    fn new(path: &Path) -> Result<Writer, ExportError> {
        // SAFETY: plain constructor; null is checked.
        let raw = unsafe { ffi::readstat_writer_init() };
        if raw.is_null() {
            return Err(ExportError::ReadStat {
                path: path.to_path_buf(),
                message: "out of memory".into(),
            });
        }
        let w = Writer {
            raw,
            strings: Vec::new(),
            path: path.to_path_buf(),
        };
        // SAFETY: `raw` is a live writer; the callback has the declared signature.
        w.check(
            unsafe { ffi::readstat_set_data_writer(raw, write_bytes) },
            "set up",
        )?;
        Ok(w)
    }

    /// A C string kept alive as long as the writer. Interior NULs (never in our texts) become spaces.
    fn c(&mut self, s: &str) -> *const c_char {
        let c = CString::new(s.replace('\0', " ")).unwrap_or_default();
        let p = c.as_ptr();
        self.strings.push(c);
        p
    }

    fn check(&self, code: ffi::readstat_error_t, what: &str) -> Result<(), ExportError> {
        if code == 0 {
            return Ok(());
        }
        // SAFETY: ReadStat returns a static string for every error code.
        let msg = unsafe {
            let p = ffi::readstat_error_message(code);
            if p.is_null() {
                format!("error {code}")
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        Err(ExportError::ReadStat {
            path: self.path.clone(),
            message: format!("{what}: {msg}"),
        })
    }
}

fn label_text(t: &Text, format: StatFormat) -> String {
    match format {
        StatFormat::SasTransport => ascii(&t.en),
        _ if t.zh.is_empty() || t.zh == t.en => t.en.clone(),
        _ => format!("{} / {}", t.en, t.zh),
    }
}

const STATA_EPOCH: Option<NaiveDate> = NaiveDate::from_ymd_opt(1960, 1, 1);
const SPSS_EPOCH: Option<NaiveDate> = NaiveDate::from_ymd_opt(1582, 10, 14);

fn epoch(format: StatFormat) -> NaiveDateTime {
    let d = match format {
        StatFormat::Spss => SPSS_EPOCH,
        _ => STATA_EPOCH,
    };
    d.unwrap_or_default()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
}

fn date_number(d: NaiveDate, format: StatFormat) -> f64 {
    let days = (d - epoch(format).date()).num_days() as f64;
    match format {
        StatFormat::Spss => days * 86_400.0,
        _ => days,
    }
}

fn datetime_number(t: NaiveDateTime, format: StatFormat) -> f64 {
    let ms = (t - epoch(format)).num_milliseconds() as f64;
    match format {
        StatFormat::Stata => ms,
        _ => ms / 1000.0,
    }
}

/// Writes one table as a statistics file.
pub fn write_table(
    path: &Path,
    format: StatFormat,
    table: &Table,
    file_label: &str,
) -> Result<(), ExportError> {
    let mut w = Writer::new(path)?;
    let raw = w.raw;
    let file_label = match format {
        StatFormat::SasTransport => ascii(file_label),
        _ => file_label.to_string(),
    };
    let fl = w.c(&truncate_chars(&file_label, 80));
    // SAFETY (this and every call below): `raw` is the live writer owned by `w`; every pointer
    // passed is a C string owned by `w.strings` or a variable / label set ReadStat returned for
    // this writer, all valid until `w` drops.
    w.check(
        unsafe { ffi::readstat_writer_set_file_label(raw, fl) },
        "file label",
    )?;
    match format {
        StatFormat::Stata => w.check(
            unsafe { ffi::readstat_writer_set_file_format_version(raw, 118) },
            "Stata release 118",
        )?,
        StatFormat::SasTransport => {
            w.check(
                unsafe { ffi::readstat_writer_set_file_format_version(raw, 8) },
                "transport version 8",
            )?;
            let name = w.c(&table.form);
            w.check(
                unsafe { ffi::readstat_writer_set_table_name(raw, name) },
                "table name",
            )?;
        }
        StatFormat::Spss => {}
    }

    let mut vars = Vec::with_capacity(table.columns.len());
    for (ci, col) in table.columns.iter().enumerate() {
        let name = w.c(&col.name);
        let var = if col.kind.is_numeric() {
            unsafe { ffi::readstat_add_variable(raw, name, ffi::READSTAT_TYPE_DOUBLE, 8) }
        } else {
            let mut width = 1usize;
            for row in &table.rows {
                let n = match &row[ci] {
                    Cell::Text(t) if format == StatFormat::SasTransport => ascii(t).len(),
                    Cell::Text(t) => t.len(),
                    Cell::Missing(m) => crate::csv::missing_text(*m).len(),
                    _ => 0,
                };
                width = width.max(n);
            }
            let limit = match format {
                StatFormat::Stata => 2045,
                StatFormat::Spss => 32767,
                StatFormat::SasTransport => 32767,
            };
            if width > limit {
                return Err(ExportError::ReadStat {
                    path: path.to_path_buf(),
                    message: format!(
                        "{}: a text of {width} bytes is longer than this format's {limit}",
                        col.name
                    ),
                });
            }
            unsafe { ffi::readstat_add_variable(raw, name, ffi::READSTAT_TYPE_STRING, width) }
        };
        if var.is_null() {
            return Err(ExportError::ReadStat {
                path: path.to_path_buf(),
                message: format!("{}: ReadStat refused the variable", col.name),
            });
        }
        let mut label = label_text(&col.label, format);
        if let Some(u) = &col.unit {
            label.push_str(&format!(
                " ({})",
                if format == StatFormat::SasTransport {
                    ascii(u)
                } else {
                    u.clone()
                }
            ));
        }
        let max_label = if format == StatFormat::Stata { 80 } else { 250 };
        let label = w.c(&truncate_chars(&label, max_label));
        unsafe { ffi::readstat_variable_set_label(var, label) };
        let fmt = match (&col.kind, format) {
            (ColumnKind::Date, StatFormat::Stata) => Some("%td"),
            (ColumnKind::Date, StatFormat::Spss) => Some("DATE11"),
            (ColumnKind::Date, StatFormat::SasTransport) => Some("DATE9"),
            (ColumnKind::DateTime, StatFormat::Stata) => Some("%tc"),
            (ColumnKind::DateTime, _) => Some("DATETIME20"),
            _ => None,
        };
        if let Some(f) = fmt {
            let f = w.c(f);
            unsafe { ffi::readstat_variable_set_format(var, f) };
        }
        if col.kind.is_numeric() {
            let measure = if matches!(col.kind, ColumnKind::Coded(_)) {
                ffi::READSTAT_MEASURE_NOMINAL
            } else {
                ffi::READSTAT_MEASURE_SCALE
            };
            unsafe { ffi::readstat_variable_set_measure(var, measure) };
            let codes: &[crate::table::CodedValue] = match &col.kind {
                ColumnKind::Coded(c) => c,
                _ => &[],
            };
            // Value labels: codes and missing-data codes (SAS transport files have none).
            if format != StatFormat::SasTransport && (!codes.is_empty() || !col.missing.is_empty())
            {
                let set_name = w.c(&col.name);
                let set = unsafe {
                    ffi::readstat_add_label_set(raw, ffi::READSTAT_TYPE_DOUBLE, set_name)
                };
                if set.is_null() {
                    return Err(ExportError::ReadStat {
                        path: path.to_path_buf(),
                        message: format!("{}: ReadStat refused the value labels", col.name),
                    });
                }
                for c in codes {
                    let l = w.c(&label_text(&c.label, format));
                    unsafe { ffi::readstat_label_double_value(set, f64::from(c.number), l) };
                }
                for m in &col.missing {
                    let l = w.c(&format!("{} / {}", m.label_en(), m.label_zh()));
                    match format {
                        StatFormat::Spss => {
                            unsafe { ffi::readstat_label_double_value(set, spss_missing(*m), l) };
                            w.check(
                                unsafe {
                                    ffi::readstat_variable_add_missing_double_value(
                                        var,
                                        spss_missing(*m),
                                    )
                                },
                                &format!("{}: user-missing value", col.name),
                            )?;
                        }
                        _ => unsafe {
                            ffi::readstat_label_tagged_value(
                                set,
                                missing_tag(*m, format) as c_char,
                                l,
                            )
                        },
                    }
                }
                unsafe { ffi::readstat_variable_set_label_set(var, set) };
            }
        }
        vars.push(var);
    }

    let file = std::fs::File::create(path).map_err(|e| ExportError::io(path, e))?;
    let mut sink = Box::new(Sink {
        out: std::io::BufWriter::new(file),
        error: None,
    });
    let ctx = (&mut *sink) as *mut Sink as *mut c_void;
    let rows = table.rows.len() as c_long;
    let begun = match format {
        StatFormat::Stata => unsafe { ffi::readstat_begin_writing_dta(raw, ctx, rows) },
        StatFormat::Spss => unsafe { ffi::readstat_begin_writing_sav(raw, ctx, rows) },
        StatFormat::SasTransport => unsafe { ffi::readstat_begin_writing_xport(raw, ctx, rows) },
    };
    w.check(begun, "begin writing")?;
    // A text cell as a C string, reused from cell to cell.
    let mut text: Vec<u8> = Vec::new();
    for (ri, row) in table.rows.iter().enumerate() {
        w.check(unsafe { ffi::readstat_begin_row(raw) }, "row")?;
        for ((cell, col), var) in row.iter().zip(&table.columns).zip(&vars) {
            let var = *var as *const ffi::readstat_variable_t;
            let code = if col.kind.is_numeric() {
                let number = match cell {
                    Cell::Int(i) => Some(*i as f64),
                    Cell::Dec(d) => Some(d.to_f64()),
                    Cell::Date(d) => Some(date_number(*d, format)),
                    Cell::DateTime(t) => Some(datetime_number(t.naive_local(), format)),
                    _ => None,
                };
                match (number, cell) {
                    (Some(n), _) => unsafe { ffi::readstat_insert_double_value(raw, var, n) },
                    (None, Cell::Missing(m)) if format == StatFormat::Spss => unsafe {
                        ffi::readstat_insert_double_value(raw, var, spss_missing(*m))
                    },
                    (None, Cell::Missing(m)) => unsafe {
                        ffi::readstat_insert_tagged_missing_value(
                            raw,
                            var,
                            missing_tag(*m, format) as c_char,
                        )
                    },
                    (None, Cell::Text(t)) => {
                        return Err(ExportError::Data(format!(
                            "{} row {}: text {t:?} in a numeric column",
                            col.name,
                            ri + 1
                        )));
                    }
                    _ => unsafe { ffi::readstat_insert_missing_value(raw, var) },
                }
            } else {
                text.clear();
                match cell {
                    Cell::Empty => {}
                    Cell::Text(t) => push_c_text(&mut text, t, format),
                    other => push_c_text(&mut text, &crate::csv::cell_text(other), format),
                }
                text.push(0);
                // ReadStat copies the text into the row before it returns.
                unsafe { ffi::readstat_insert_string_value(raw, var, text.as_ptr().cast()) }
            };
            // The cell is named only when ReadStat refused it (not formatted for every cell).
            if code != 0 {
                w.check(code, &format!("{} row {}", col.name, ri + 1))?;
            }
        }
        w.check(unsafe { ffi::readstat_end_row(raw) }, "end of row")?;
    }
    let ended = unsafe { ffi::readstat_end_writing(raw) };
    if let Some(e) = sink.error.take() {
        return Err(ExportError::io(path, e));
    }
    w.check(ended, "end writing")?;
    sink.out.flush().map_err(|e| ExportError::io(path, e))?;
    drop(w);
    Ok(())
}
