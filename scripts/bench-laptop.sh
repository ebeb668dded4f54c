#!/usr/bin/env bash
# "The laptop at scale": one very large site in one store (SUBJECTS subjects, each with the
# ECMO form and 30 daily logs, the demo's sample values), and what the laptop does with it:
# save p50/p99 of a daily log run by run, the login and subject list through ecrf-app, the
# store's size on disk, `ecrf store check`, then the desktop app itself on that store (cold
# start to the subject list, idle memory with every WebKit process).
# Usage: scripts/bench-laptop.sh TARGET_DIR/release [SUBJECTS] [RUNS]
set -euo pipefail
BIN=${1:?folder holding the release ecrf and ecrf-desktop}
SUBJECTS=${2:-600}
RUNS=${3:-5}
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/bench-laptop.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PASSWORD=demo-ward-2026

echo "== saves into one site of $SUBJECTS subjects x (ECMO + 30 daily logs), $RUNS runs"
"$BIN/ecrf" bench --shipped-only --subjects "$SUBJECTS" --days 30 --runs "$RUNS" \
  --saves $((SUBJECTS / RUNS < 100 ? SUBJECTS / RUNS : 100)) --dir "$WORK"
STORE="$WORK/encrypted.ecrf"

CHECKS=$(( RUNS < 2 ? RUNS : 2 ))
echo "== ecrf store check ($CHECKS runs)"
for i in $(seq 1 "$CHECKS"); do
  t0=$(date +%s%N)
  ECRF_STORE="$STORE" ECRF_USER=nurse ECRF_PASSWORD=$PASSWORD "$BIN/ecrf" store check | head -1
  echo "  run $i: $(( ($(date +%s%N) - t0) / 1000000 )) ms (process start to exit)"
done
echo "  store on disk after the check: $(du -b "$STORE" "$STORE-wal" 2>/dev/null |
  awk '{s += $1} END {printf "%.1f MB", s / 1e6}')"

echo "== the desktop app on this store"
bash "$(dirname "$0")/bench-desktop.sh" "$BIN/ecrf-desktop" "$RUNS" "$STORE"
