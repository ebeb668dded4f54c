# Reads back what ecrf.exe exported under Wine (scripts/test-windows.sh): the daily logs as CSV,
# Stata .dta, SPSS .sav and SAS .xpt must hold the same rows and subjects, and the daily log the
# test saved (SUBJECT, study day 4, MAP 71) in each.
# Usage: Rscript check_exports.R EXPORT_DIR SUBJECT ROWS
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
subject <- args[2]
rows <- as.integer(args[3])
suppressPackageStartupMessages(library(haven))
check <- function(ok, ...) {
  if (!isTRUE(ok)) {
    cat("FAILED:", sprintf(...), "\n")
    quit(status = 1)
  }
}
csv <- read.csv(file.path(dir, "dly.csv"), fileEncoding = "UTF-8", stringsAsFactors = FALSE,
                check.names = FALSE)
check(nrow(csv) == rows, "dly.csv has %d rows, expected %d", nrow(csv), rows)
files <- list(
  dta = read_dta(file.path(dir, "dly.dta")),
  sav = read_sav(file.path(dir, "dly.sav")),
  xpt = read_xpt(file.path(dir, "dly.xpt"))
)
for (kind in names(files)) {
  d <- files[[kind]]
  names(d) <- toupper(names(d))
  check(nrow(d) == nrow(csv), "dly.%s has %d rows, dly.csv %d", kind, nrow(d), nrow(csv))
  check(identical(as.character(d$SUBJECT), as.character(csv$SUBJECT)),
        "dly.%s: SUBJECT differs from dly.csv", kind)
  day4 <- which(d$SUBJECT == subject & as.numeric(d$DAY) == 4)
  check(length(day4) == 1, "dly.%s: %d rows for %s day 4", kind, length(day4), subject)
  check(isTRUE(as.numeric(d$MAP[day4]) == 71), "dly.%s: MAP of %s day 4 is %s, not 71", kind,
        subject, format(d$MAP[day4]))
}
labels <- attr(files$dta$SUBJECT, "label")
cat(sprintf("R haven: dly.csv/.dta/.sav/.xpt %d rows each, same subjects, %s day 4 MAP 71%s\n",
            nrow(csv), subject, if (is.null(labels)) "" else paste0(" (", labels, ")")))
