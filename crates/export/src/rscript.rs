//! The R script that reads the CSV files with their types, factor labels and variable labels.
//!
//! Owns the script's text, generated from the same tables as the CSV so the two cannot
//! disagree. The script needs base R only. Conventions: numbers become numeric, dates `Date`,
//! date-times `POSIXct` in UTC (the offset in the CSV is applied), codes become factors with
//! the labels of the chosen language (`ECRF_LANG = "en"` or `"zh"`), each column gets a
//! `label` attribute; a missing-data code becomes `NA` in its column and is kept in a companion
//! factor `<COLUMN>_MISS` (levels ND, UNK, NA) for every column whose item allows codes.

use std::fmt::Write as _;

use crate::csv::file_name;
use crate::table::{ColumnKind, Table};

/// R string literal (UTF-8 kept, quotes, backslashes and line breaks escaped).
pub fn r_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn r_vec(items: impl IntoIterator<Item = String>) -> String {
    format!("c({})", items.into_iter().collect::<Vec<_>>().join(", "))
}

/// The script's file name.
pub const SCRIPT: &str = "read_ecrf.R";

/// The R script for these tables (CSV files beside it).
pub fn script(study_id: &str, version: &str, tables: &[Table]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Reads the {study_id} export (definition {version}) into R: source(\"{SCRIPT}\") in the\n\
         # export folder, or Rscript {SCRIPT} FOLDER. Base R only. Result: `ecrf`, a list of data\n\
         # frames by form id, with types, factor labels and variable labels (attribute \"label\").\n\
         # Missing-data codes (@ND not done, @UNK unknown, @NA not applicable) become NA and are kept\n\
         # in a factor <COLUMN>_MISS beside each column whose item allows them.\n"
    );
    s.push_str(
        r#"if (!exists("ECRF_LANG")) ECRF_LANG <- "en"
ecrf_dir <- if (length(commandArgs(trailingOnly = TRUE)) > 0) commandArgs(trailingOnly = TRUE)[1] else "."
ecrf_missing_codes <- c("@ND", "@UNK", "@NA")
ecrf_missing_labels <- list(en = c("Not done", "Unknown", "Not applicable"), zh = c("未做", "不详", "不适用"))

ecrf_read <- function(file, columns) {
  raw <- utils::read.csv(file.path(ecrf_dir, file), colClasses = "character", na.strings = character(0),
                         fileEncoding = "UTF-8", encoding = "UTF-8", check.names = FALSE, stringsAsFactors = FALSE)
  out <- data.frame(row.names = seq_len(nrow(raw)))
  for (col in columns) {
    x <- raw[[col$name]]
    if (is.null(x)) stop(sprintf("%s: column %s is missing", file, col$name))
    miss <- match(x, ecrf_missing_codes)
    v <- ifelse(is.na(miss) & x != "", x, NA_character_)
    val <- switch(col$type,
      integer = as.integer(v),
      decimal = as.numeric(v),
      date = as.Date(v, format = "%Y-%m-%d"),
      datetime = {
        z <- sub("([+-][0-9]{2}):([0-9]{2})$", "\\1\\2", sub("Z$", "+0000", v))
        as.POSIXct(strptime(z, "%Y-%m-%dT%H:%M:%S%z", tz = "UTC"), tz = "UTC")
      },
      coded = factor(as.integer(v), levels = col$codes, labels = col$labels[[ECRF_LANG]]),
      text = { t <- x; t[!is.na(miss)] <- NA_character_; t })
    bad <- !is.na(v) & is.na(val)
    if (any(bad)) stop(sprintf("%s: column %s row %d: cannot read %s as %s", file, col$name,
                               which(bad)[1], v[which(bad)[1]], col$type))
    attr(val, "label") <- col$label[[ECRF_LANG]]
    out[[col$name]] <- val
    if (col$missing) {
      m <- factor(miss, levels = 1:3, labels = ecrf_missing_labels[[ECRF_LANG]])
      attr(m, "label") <- paste0(col$label[[ECRF_LANG]], if (ECRF_LANG == "zh") "：缺失原因" else ": reason missing")
      out[[paste0(col$name, "_MISS")]] <- m
    }
  }
  out
}

ecrf <- list()
"#,
    );
    for t in tables {
        let _ = writeln!(
            s,
            "ecrf${} <- ecrf_read({}, list(",
            t.form,
            r_str(&file_name(&t.form))
        );
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|c| {
                let (ty, codes, en, zh) = match &c.kind {
                    ColumnKind::Coded(cs) => (
                        "coded",
                        r_vec(cs.iter().map(|k| k.number.to_string())),
                        r_vec(cs.iter().map(|k| r_str(&k.label.en))),
                        r_vec(cs.iter().map(|k| r_str(&k.label.zh))),
                    ),
                    k => (k.name(), "NULL".into(), "NULL".into(), "NULL".into()),
                };
                format!(
                    "  list(name = {}, type = \"{ty}\", label = list(en = {}, zh = {}), codes = {codes}, labels = list(en = {en}, zh = {zh}), missing = {})",
                    r_str(&c.name),
                    r_str(&c.label.en),
                    r_str(&c.label.zh),
                    if c.missing.is_empty() { "FALSE" } else { "TRUE" }
                )
            })
            .collect();
        s.push_str(&cols.join(",\n"));
        s.push_str("\n))\n");
    }
    s.push_str("invisible(ecrf)\n");
    s
}
