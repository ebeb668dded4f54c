#!/usr/bin/env bash
# `make test-windows`: the Windows build of `ecrf` (ecrf.exe, cross-built with mingw-w64) run
# end to end under Wine 8 in a throwaway Wine prefix: a demo store, a data manager, a daily log
# saved and read back, the audit chain and the full store check, a backup restored, a subject's
# PDF (read back with pdftotext), and every export format (CSV rows counted; .dta/.sav/.xpt read
# back with R haven; ODM well-formed). One line per step; exits non-zero at the first failure.
# Needs scripts/setup-windows.sh (the Makefile runs it first).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
started=$(date +%s)

say() { printf 'test-windows: %s\n' "$*"; }
fail() { printf 'test-windows: FAILED: %s\n' "$*" >&2; exit 1; }

# 1. ecrf.exe (cargo rebuilds only what changed).
say "building ecrf.exe (release, x86_64-pc-windows-gnu)"
bash scripts/windows/package.sh cli
EXE="$ROOT/dist/windows/ecrf.exe"
[ -f "$EXE" ] || fail "no $EXE"

WORK="$(mktemp -d)"
export WINEPREFIX="$WORK/wineprefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
WINE=/usr/lib/wine/wine64
cleanup() {
  /usr/lib/wine/wineserver -k >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/bin" "$WORK/data"
cp "$EXE" "$WORK/bin/ecrf.exe"

# 2. Wine 8 lacks ProcessPrng (bcryptprimitives.dll), which Rust's std imports: a shim beside
# the exe, compiled now from scripts/windows/shim.c (never committed as a binary).
say "building the bcryptprimitives.dll shim for Wine"
x86_64-w64-mingw32-gcc -shared -O2 -o "$WORK/bin/bcryptprimitives.dll" scripts/windows/shim.c -ladvapi32 \
  || fail "the shim did not compile"

# Windows paths of files in $WORK (Wine maps / to drive Z:).
win() { local p="${1//\//\\}"; printf 'Z:%s' "$p"; }
D="$WORK/data"
export ECRF_STORE="$(win "$D/ward.ecrf")"
unset ECRF_LANG ECRF_CJK_FONT ECRF_NEW_PASSWORD
# Runs ecrf.exe as USER with PASSWORD; output in $WORK/out, $WORK/err; returns its exit code.
run() {
  local user="$1" password="$2"; shift 2
  ECRF_USER="$user" ECRF_PASSWORD="$password" "$WINE" "$WORK/bin/ecrf.exe" "$@" \
    >"$WORK/out" 2>"$WORK/err"
}
# The same, and the step fails unless it exits 0.
must() {
  local what="$1"; shift
  run "$@" || fail "$what: ecrf.exe exited $?: $(head -c 2000 "$WORK/err") $(head -c 500 "$WORK/out")"
}
contains() { grep -qF -- "$2" "$1" || fail "$3: '$2' not in $(basename "$1"): $(head -c 1500 "$1")"; }

DEMO_PW=demo-ward-2026
DM_PW='Wine-datamanager-2026'

say "starting Wine (a new prefix in $WORK)"
t=$(date +%s)
"$WINE" "$WORK/bin/ecrf.exe" --help >"$WORK/out" 2>"$WORK/err" || fail "ecrf.exe --help under Wine: $(head -c 1500 "$WORK/err")"
contains "$WORK/out" "Usage" "ecrf.exe --help"
say "ok: ecrf.exe runs under $("$WINE" --version 2>/dev/null || echo Wine) ($(( $(date +%s) - t )) s with the prefix)"

# 3. A store: the demo (site 01, admin + nurse, sealed envelopes, three randomized patients
# with daily logs of study days 0-3, one screen failure), then a data manager.
say "creating the demo store"
"$WINE" "$WORK/bin/ecrf.exe" demo --path "$ECRF_STORE" >"$WORK/out" 2>"$WORK/err" \
  || fail "ecrf demo: $(head -c 1500 "$WORK/err")"
[ -s "$D/ward.ecrf" ] && [ -s "$D/ward.ecrf.keys" ] || fail "ecrf demo wrote no ward.ecrf / ward.ecrf.keys"
say "ok: store $(stat -c %s "$D/ward.ecrf") bytes + key file"

ECRF_NEW_PASSWORD="$DM_PW" must "user add" admin "$DEMO_PW" user add zhou --role data_manager --name "周 数据管理"
say "ok: data manager zhou added"

must "subject list" nurse "$DEMO_PW" subject list
cp "$WORK/out" "$WORK/subjects.txt"
SUBJECT="$(grep -oE '\b01-[0-9]{4}\b' "$WORK/subjects.txt" | head -1)"
[ -n "$SUBJECT" ] || fail "no subject in: $(head -c 1500 "$WORK/subjects.txt")"
say "ok: subjects listed (first: $SUBJECT)"

# 4. A daily log (study day 4 = today in the demo) saved and read back.
TODAY="$(date +%Y-%m-%d)"
must "form set DLY#4" nurse "$DEMO_PW" form set "$SUBJECT" "DLY#4" "DATE=$TODAY" MAP=71 LACTATE=2.4 HR=92 --confirm-warnings
must "form show DLY#4" nurse "$DEMO_PW" form show "$SUBJECT" "DLY#4"
contains "$WORK/out" "71" "form show DLY#4 (MAP)"
contains "$WORK/out" "2.4" "form show DLY#4 (lactate)"
say "ok: daily log $SUBJECT DLY#4 saved and read back"

# 5. The audit chain and the full store check.
must "audit verify" nurse "$DEMO_PW" audit verify
say "ok: audit verify: $(head -1 "$WORK/out")"
must "audit log" nurse "$DEMO_PW" audit log "$SUBJECT"
contains "$WORK/out" "DLY#4" "audit log"
must "store check" admin "$DEMO_PW" store check
say "ok: store check: $(head -1 "$WORK/out")"

# 6. Backup, then restore (check only, then for real) and the daily log is still there.
must "backup" nurse "$DEMO_PW" backup -o "$(win "$D/ward.ecrfbak")"
[ -s "$D/ward.ecrfbak" ] || fail "backup wrote no file"
say "ok: backup $(stat -c %s "$D/ward.ecrfbak") bytes"
must "restore --check-only" admin "$DEMO_PW" restore --check-only "$(win "$D/ward.ecrfbak")"
must "restore" admin "$DEMO_PW" restore "$(win "$D/ward.ecrfbak")"
must "form show after restore" nurse "$DEMO_PW" form show "$SUBJECT" "DLY#4"
contains "$WORK/out" "71" "form show after restore"
must "audit verify after restore" nurse "$DEMO_PW" audit verify
say "ok: restored; DLY#4 and the audit chain intact"

# 7. A subject's filled CRF as PDF, with the Chinese font of fonts-noto-cjk given by its Z:\ path.
FONT=/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
[ -f "$FONT" ] || fail "$FONT is missing (fonts-noto-cjk)"
ECRF_CJK_FONT="$(win "$FONT")#2" must "print subject" nurse "$DEMO_PW" print subject "$SUBJECT" -o "$(win "$D/subject.pdf")"
[ -s "$D/subject.pdf" ] || fail "print subject wrote no PDF"
pdftotext -layout "$D/subject.pdf" "$D/subject.txt" || fail "pdftotext could not read the PDF"
contains "$D/subject.txt" "$SUBJECT" "the printed CRF"
ECRF_CJK_FONT="$(win "$FONT")#2" must "print subject --lang zh" nurse "$DEMO_PW" --lang zh print subject "$SUBJECT" -o "$(win "$D/subject-zh.pdf")"
pdftotext -layout "$D/subject-zh.pdf" "$D/subject-zh.txt" || fail "pdftotext could not read the Chinese PDF"
contains "$D/subject-zh.txt" "$SUBJECT" "the Chinese printed CRF"
grep -qP '[\x{4e00}-\x{9fff}]' "$D/subject-zh.txt" || fail "no Chinese text in the Chinese PDF"
say "ok: PDFs of $SUBJECT ($(pdfinfo "$D/subject.pdf" | awk '/^Pages/{print $2}') pages en, $(pdfinfo "$D/subject-zh.pdf" | awk '/^Pages/{print $2}') zh); subject id and Chinese text found"

# 8. Every export format, as the data manager.
must "export all" zhou "$DM_PW" export all -o "$(win "$D/export")"
X="$D/export"
# con_: the consent form CON, whose plain name is a Windows device.
for f in dly.csv con_.csv con_.dta subjects.csv dictionary.csv read_ecrf.R dly.dta dly.sav dly.xpt early-iabp-odm.xml; do
  [ -s "$X/$f" ] || fail "export all wrote no $f: $(ls "$X" | tr '\n' ' ')"
done
say "ok: export all wrote $(ls "$X" | wc -l) files"
rows_csv() { python3 -c 'import csv,sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], encoding="utf-8"))) - 1)' "$1"; }
# The demo's three randomized patients have daily logs of study days 0-3, plus the one saved here.
[ "$(rows_csv "$X/dly.csv")" = 13 ] || fail "dly.csv has $(rows_csv "$X/dly.csv") rows, expected 13"
[ "$(rows_csv "$X/subjects.csv")" = 3 ] || fail "subjects.csv has $(rows_csv "$X/subjects.csv") rows, expected 3 randomized"
grep -q "^$SUBJECT," "$X/subjects.csv" || fail "subjects.csv lacks $SUBJECT"
Rscript "$ROOT/scripts/windows/check_exports.R" "$X" "$SUBJECT" 13 >"$WORK/r.out" 2>&1 \
  || fail "R haven: $(cat "$WORK/r.out")"
say "ok: $(tail -1 "$WORK/r.out")"
xmllint --noout --nonet "$X/early-iabp-odm.xml" || fail "early-iabp-odm.xml is not well-formed XML"
contains "$X/early-iabp-odm.xml" "$SUBJECT" "the ODM file"
say "ok: ODM well-formed with $SUBJECT"

# 9. Without ECRF_CJK_FONT, Windows looks for its own Chinese fonts (absent under Wine) and
# says which: a clean error, no panic.
if run nurse "$DEMO_PW" print subject "$SUBJECT" -o "$(win "$D/nofont.pdf")"; then
  say "note: a Windows Chinese font was found in this Wine prefix"
else
  grep -q "msyh.ttc" "$WORK/err" || fail "no-font error does not name msyh.ttc: $(cat "$WORK/err")"
  grep -q "panicked" "$WORK/err" && fail "print without a font panicked: $(cat "$WORK/err")"
  say "ok: without ECRF_CJK_FONT the error names the Windows fonts looked for"
fi

say "PASSED in $(( $(date +%s) - started )) s (ecrf.exe $(stat -c %s "$EXE") bytes)"
