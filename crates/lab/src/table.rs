//! A laboratory system's CSV or Excel (`.xlsx`) export read through a site's [`TableMapping`].
//!
//! This module owns the table reading: finding the mapped columns by their header text,
//! turning each row into a [`LabResult`] or a [`Problem`], translating local test codes to
//! LOINC through the mapping, and reading specimen times.
//!
//! Invariants:
//! - columns are found by header text, trimmed (Chinese headers such as 住院号, 检验项目代码,
//!   结果, 单位, 采样时间 are matched as written); the header is the first non-empty row; a
//!   mapped column that is missing is [`ReadError::MissingColumn`] listing the columns found;
//!   a mapped header that appears twice is [`ReadError::Malformed`] (which one to read?);
//! - a CSV must be UTF-8 (an optional byte-order mark is removed); anything else is refused
//!   whole with a request to save the export as UTF-8. Its delimiter is the one of `,`, `;`
//!   and tab that the header line holds most of (`,` on a tie);
//! - rows are numbered as a spreadsheet shows them, the header being row 1 in a plain file:
//!   CSV rows by the line they start on (blank lines count; a cell with a line break inside
//!   quotes makes later rows' numbers run ahead of a spreadsheet's), Excel rows by the
//!   sheet's row number;
//! - rows with no text at all are skipped; every other row becomes one result or one problem
//!   at `row N` naming every reason (empty record number, code or value, missing or
//!   unreadable time, a CSV row with fewer cells than a mapped column needs, or more
//!   non-empty cells than the header: a delimiter inside an unquoted value would shift them);
//! - the code: the mapping's local code → LOINC when listed, else the cell itself when it is
//!   shaped like a LOINC code (`NNNNN-N`), else no LOINC (the plan reports it unmapped);
//! - times: the mapping's chrono format when given (with `%z` → [`Taken::Zoned`], else
//!   [`Taken::Local`]); else RFC 3339 (zoned), `%Y-%m-%d %H:%M[:%S]`, `%Y/%m/%d %H:%M[:%S]`
//!   and the ISO `T` forms (local). Excel date cells are local times as the sheet holds them;
//! - values are passed on as written (the plan parses them). Excel numeric cells are
//!   numbers, not text: a value typed `5.10` in Excel is stored as 5.1 and read as "5.1"
//!   (the trailing zero is lost in the workbook itself; only text cells keep it), and record
//!   numbers stored as numbers beyond 2^53 have lost digits.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::{LabResult, Problem, ReadError, ReadReport, TableMapping, Taken};

/// Reads a CSV export (UTF-8) through `m`.
pub fn read_csv(bytes: &[u8], m: &TableMapping) -> Result<ReadReport, ReadError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        ReadError::Malformed {
            format: "csv",
            place: format!("line {line}"),
            message: format!(
                "not UTF-8 (save the export as UTF-8): byte 0x{:02X} at offset {at} is not UTF-8 text",
                bytes.get(at).copied().unwrap_or_default()
            ),
        }
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter(text))
        .from_reader(text.as_bytes());

    let mut lines = LineCounter {
        text,
        at: 0,
        line: 1,
    };
    let mut table: Option<(Columns, usize)> = None;
    let mut report = ReadReport::default();
    for record in reader.records() {
        let record = record.map_err(|e| ReadError::Malformed {
            format: "csv",
            place: e
                .position()
                .map(|p| format!("line {}", p.line()))
                .unwrap_or_else(|| "the whole file".into()),
            message: format!("not readable as CSV: {e}"),
        })?;
        let byte = record.position().map(|p| p.byte()).unwrap_or_default();
        let n = lines.line_at(usize::try_from(byte).unwrap_or(usize::MAX));
        let cells: Vec<Cell> = record
            .iter()
            .map(|c| Cell::Text(c.trim().to_string()))
            .collect();
        if cells.iter().all(Cell::is_empty) {
            continue;
        }
        let Some((columns, width)) = &table else {
            let headers: Vec<String> = record.iter().map(|h| h.trim().to_string()).collect();
            table = Some((Columns::find(&headers, m, "csv")?, headers.len()));
            continue;
        };
        let filled = cells
            .iter()
            .rposition(|c| !c.is_empty())
            .map_or(0, |i| i + 1);
        if filled > *width {
            report.problems.push(Problem {
                place: format!("row {n}"),
                message: format!(
                    "the row has {filled} cells but the header has {width}: a delimiter inside an unquoted value may have shifted the columns; not imported"
                ),
            });
            continue;
        }
        if let Some(r) = row(n, &cells, columns, m) {
            match r {
                Ok(r) => report.results.push(r),
                Err(p) => report.problems.push(p),
            }
        }
    }
    if table.is_none() {
        return Err(ReadError::Malformed {
            format: "csv",
            place: "the whole file".into(),
            message: "the file is empty: no header row".into(),
        });
    }
    Ok(report)
}

/// Reads an Excel `.xlsx` export through `m`: the sheet `m.sheet`, else the first.
pub fn read_xlsx(bytes: &[u8], m: &TableMapping) -> Result<ReadReport, ReadError> {
    let malformed = |place: String, message: String| ReadError::Malformed {
        format: "xlsx",
        place,
        message,
    };
    let mut book = Xlsx::new(Cursor::new(bytes)).map_err(|e| {
        malformed(
            "the whole file".into(),
            format!("not an Excel .xlsx workbook ({e})"),
        )
    })?;
    let names = book.sheet_names();
    let sheet = match &m.sheet {
        Some(wanted) => names
            .iter()
            .find(|s| s.trim() == wanted.trim())
            .cloned()
            .ok_or_else(|| {
                malformed(
                    format!("sheet \"{wanted}\""),
                    format!(
                        "the workbook has no sheet \"{wanted}\"; its sheets: {}",
                        quoted_list(names.iter().map(String::as_str))
                    ),
                )
            })?,
        None => names.first().cloned().ok_or_else(|| {
            malformed("the whole file".into(), "the workbook has no sheet".into())
        })?,
    };
    let range = book.worksheet_range(&sheet).map_err(|e| {
        malformed(
            format!("sheet \"{sheet}\""),
            format!("the sheet cannot be read ({e})"),
        )
    })?;
    let first_row = range.start().map_or(0, |(r, _)| r as usize);

    let mut columns: Option<Columns> = None;
    let mut report = ReadReport::default();
    for (i, cells) in range.rows().enumerate() {
        let n = first_row + i + 1;
        let cells: Vec<Cell> = cells.iter().map(Cell::from_excel).collect();
        if cells.iter().all(Cell::is_empty) {
            continue;
        }
        let Some(columns) = &columns else {
            let headers: Vec<String> = cells.iter().map(Cell::text).collect();
            columns = Some(Columns::find(&headers, m, "xlsx")?);
            continue;
        };
        if let Some(r) = row(n, &cells, columns, m) {
            match r {
                Ok(r) => report.results.push(r),
                Err(p) => report.problems.push(p),
            }
        }
    }
    if columns.is_none() {
        return Err(malformed(
            format!("sheet \"{sheet}\""),
            "the sheet is empty: no header row".into(),
        ));
    }
    Ok(report)
}

/// The 1-based line of a record, counted forward through the text (`\n`, `\r\n` or a lone
/// `\r` end a line): the csv crate's own line numbers are those of the previous record's end.
struct LineCounter<'t> {
    text: &'t str,
    at: usize,
    line: usize,
}

impl LineCounter<'_> {
    /// The line of the first character at or after `byte` that is not a line end.
    fn line_at(&mut self, byte: usize) -> usize {
        let bytes = self.text.as_bytes();
        let mut start = byte.min(bytes.len()).max(self.at);
        while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        for i in self.at..start {
            match bytes[i] {
                b'\n' => self.line += 1,
                b'\r' if bytes.get(i + 1) != Some(&b'\n') => self.line += 1,
                _ => {}
            }
        }
        self.at = start;
        self.line
    }
}

/// A cell as read: text (trimmed), an Excel date, or an Excel cell that holds no usable text.
#[derive(Debug, Clone)]
enum Cell {
    Text(String),
    Time(NaiveDateTime),
    Unreadable(String),
}

impl Cell {
    /// The latest date an Excel serial number can hold (9999-12-31), and the earliest.
    const EXCEL_DAYS: std::ops::RangeInclusive<f64> = -1.0..=2_958_466.0;

    fn from_excel(d: &Data) -> Cell {
        match d {
            Data::Empty => Cell::Text(String::new()),
            Data::String(s) | Data::DateTimeIso(s) => Cell::Text(s.trim().to_string()),
            Data::Int(i) => Cell::Text(i.to_string()),
            Data::Float(f) => Cell::Text(f.to_string()),
            Data::Bool(b) => Cell::Text(if *b { "TRUE" } else { "FALSE" }.into()),
            Data::DurationIso(s) => {
                Cell::Unreadable(format!("a duration ({s}), not a date and time"))
            }
            Data::Error(e) => Cell::Unreadable(format!("an Excel error ({e})")),
            Data::DateTime(dt) => {
                // calamine's conversion panics far outside Excel's calendar: check first.
                if dt.is_duration() {
                    Cell::Unreadable(format!("a duration ({}), not a date and time", dt.as_f64()))
                } else if !Self::EXCEL_DAYS.contains(&dt.as_f64()) {
                    Cell::Unreadable(format!(
                        "a date serial ({}) outside Excel's calendar",
                        dt.as_f64()
                    ))
                } else {
                    match dt.as_datetime() {
                        Some(t) => Cell::Time(t),
                        None => Cell::Unreadable(format!(
                            "a date serial ({}) that is not a date",
                            dt.as_f64()
                        )),
                    }
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Cell::Text(s) if s.is_empty())
    }

    /// As text: a date as `YYYY-MM-DD HH:MM:SS`, an unreadable cell as empty.
    fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Time(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            Cell::Unreadable(_) => String::new(),
        }
    }
}

/// The mapped columns' 0-based positions.
struct Columns {
    patient: Col,
    code: Col,
    name: Option<Col>,
    value: Col,
    unit: Col,
    taken: Col,
    id: Option<Col>,
}

/// One mapped column: its position and its header (for messages).
struct Col {
    at: usize,
    header: String,
}

impl Columns {
    fn find(
        headers: &[String],
        m: &TableMapping,
        format: &'static str,
    ) -> Result<Columns, ReadError> {
        let find = |wanted: &str, role: &'static str| -> Result<Col, ReadError> {
            let w = wanted.trim();
            let mut at = headers
                .iter()
                .enumerate()
                .filter(|(_, h)| !w.is_empty() && h.trim() == w)
                .map(|(i, _)| i);
            match (at.next(), at.next()) {
                (Some(i), None) => Ok(Col {
                    at: i,
                    header: w.to_string(),
                }),
                (Some(i), Some(j)) => Err(ReadError::Malformed {
                    format,
                    place: "the header row".into(),
                    message: format!(
                        "the column \"{w}\" (the mapping's {role}) appears more than once (columns {} and {}): which one to read is unclear",
                        i + 1,
                        j + 1
                    ),
                }),
                (None, _) => Err(ReadError::MissingColumn {
                    column: wanted.to_string(),
                    role,
                    found: quoted_list(
                        headers.iter().map(String::as_str).filter(|h| !h.is_empty()),
                    ),
                }),
            }
        };
        Ok(Columns {
            patient: find(&m.patient, "record number")?,
            code: find(&m.code, "test code")?,
            name: m
                .name
                .as_deref()
                .map(|n| find(n, "test name"))
                .transpose()?,
            value: find(&m.value, "value")?,
            unit: find(&m.unit, "unit")?,
            taken: find(&m.taken, "specimen time")?,
            id: m.id.as_deref().map(|n| find(n, "result id")).transpose()?,
        })
    }

    /// The mapped column furthest right.
    fn last(&self) -> &Col {
        [
            &self.patient,
            &self.code,
            &self.value,
            &self.unit,
            &self.taken,
        ]
        .into_iter()
        .chain(self.name.as_ref())
        .chain(self.id.as_ref())
        .max_by_key(|c| c.at)
        .unwrap_or(&self.patient)
    }
}

/// One non-empty row as a result, or a problem naming every reason it cannot be used.
fn row(
    n: usize,
    cells: &[Cell],
    c: &Columns,
    m: &TableMapping,
) -> Option<Result<LabResult, Problem>> {
    let place = format!("row {n}");
    let last = c.last();
    if cells.len() <= last.at {
        return Some(Err(Problem {
            place,
            message: format!(
                "the row has {} cells but the mapped column \"{}\" is column {}: the row is cut short; not imported",
                cells.len(),
                last.header,
                last.at + 1
            ),
        }));
    }
    let text = |col: &Col| cells.get(col.at).map(Cell::text).unwrap_or_default();
    let mut reasons: Vec<String> = Vec::new();
    let mut required = |col: &Col, what: &str| {
        let t = text(col);
        if t.is_empty() {
            let why = match cells.get(col.at) {
                Some(Cell::Unreadable(why)) => format!("the cell is {why}"),
                _ => "empty".to_string(),
            };
            reasons.push(format!("no {what} (column \"{}\": {why})", col.header));
        }
        t
    };
    let patient = required(&c.patient, "record number");
    let code = required(&c.code, "test code");
    let value = required(&c.value, "value");
    let unit = text(&c.unit);

    let taken = match cells.get(c.taken.at) {
        Some(Cell::Time(t)) => Some(Taken::Local(*t)),
        Some(Cell::Unreadable(why)) => {
            reasons.push(format!(
                "unreadable specimen time (column \"{}\": the cell is {why})",
                c.taken.header
            ));
            None
        }
        Some(Cell::Text(t)) if t.is_empty() => {
            reasons.push(format!(
                "no specimen time (column \"{}\" is empty)",
                c.taken.header
            ));
            None
        }
        Some(Cell::Text(t)) => match parse_time(t, m.time_format.as_deref()) {
            Ok(t) => Some(t),
            Err(why) => {
                reasons.push(format!(
                    "specimen time \"{}\" (column \"{}\"): {why}",
                    clip(t),
                    c.taken.header
                ));
                None
            }
        },
        None => None,
    };

    let loinc = m
        .codes
        .get(&code)
        .cloned()
        .or_else(|| looks_loinc(&code).then(|| code.clone()));
    let name = c
        .name
        .as_ref()
        .map(text)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| code.clone());
    let id =
        c.id.as_ref()
            .map(text)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| place.clone());

    Some(match taken {
        Some(taken) if reasons.is_empty() => Ok(LabResult {
            id,
            patient,
            loinc,
            name,
            value,
            unit,
            taken,
            place,
        }),
        _ => Err(Problem {
            place,
            message: format!("{}; not imported", reasons.join("; ")),
        }),
    })
}

/// The default time formats without an offset, tried in turn.
const LOCAL_FORMATS: [&str; 6] = [
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S%.f",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
];

/// A specimen time in `format`, else in the default formats.
fn parse_time(text: &str, format: Option<&str>) -> Result<Taken, String> {
    let t = text.trim();
    // The date part of the mapping's format (before its hour), and the usual date forms.
    let own_date = format.and_then(|f| {
        ["%H", "%I", "%R", "%T"]
            .iter()
            .filter_map(|h| f.find(h))
            .min()
            .map(|i| f[..i].trim_end())
    });
    let date_only = || {
        ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]
            .into_iter()
            .chain(own_date.filter(|d| !d.is_empty()))
            .any(|f| NaiveDate::parse_from_str(t, f).is_ok())
    };
    if let Some(f) = format {
        let zoned = ["%z", "%:z", "%::z", "%#z"].iter().any(|z| f.contains(z));
        let parsed = if zoned {
            DateTime::parse_from_str(t, f).map(Taken::Zoned)
        } else {
            NaiveDateTime::parse_from_str(t, f).map(Taken::Local)
        };
        return parsed.map_err(|e| {
            if date_only() {
                "no specimen time: a date without a time of day".to_string()
            } else {
                format!("does not match the mapping's time format \"{f}\" ({e})")
            }
        });
    }
    if let Ok(z) = DateTime::parse_from_rfc3339(t) {
        return Ok(Taken::Zoned(z));
    }
    if let Some(l) = LOCAL_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
    {
        return Ok(Taken::Local(l));
    }
    if date_only() {
        Err("no specimen time: a date without a time of day".into())
    } else {
        Err("not a date and time (like 2026-03-02 07:30, 2026/03/02 07:30 or RFC 3339; or set the mapping's time format)".into())
    }
}

/// `NNNNN-N`: digits, a hyphen, one check digit.
fn looks_loinc(code: &str) -> bool {
    code.split_once('-').is_some_and(|(n, c)| {
        (1..=7).contains(&n.len())
            && n.bytes().all(|b| b.is_ascii_digit())
            && c.len() == 1
            && c.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The delimiter the header line holds most of: `,` (default), `;` or tab.
fn delimiter(text: &str) -> u8 {
    let header = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let count = |d: char| header.chars().filter(|c| *c == d).count();
    let (comma, semicolon, tab) = (count(','), count(';'), count('\t'));
    if tab > comma && tab >= semicolon {
        b'\t'
    } else if semicolon > comma {
        b';'
    } else {
        b','
    }
}

/// `"a", "b", "c"`.
fn quoted_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let list: Vec<String> = items.map(|s| format!("\"{s}\"")).collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
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
