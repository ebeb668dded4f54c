#!/usr/bin/env bash
# Prints what the desktop app costs: release binary size, cold start to the login screen
# (process launch until the UI reports its first screen drawn) and to the subject list (the
# start-up probe logs in as ECRF_PROBE_USER, default nurse, with ECRF_PROBE_PASSWORD, default
# the demo password), and memory at idle on each of the two screens: PSS and RSS of the app
# process and of each of its WebKit processes. Runs under its own Xvfb.
# Usage: scripts/bench-desktop.sh PATH/TO/release/ecrf-desktop [RUNS] [STORE]
# STORE: an existing store to open (e.g. the large site of `make bench-laptop`); default a
# fresh demo store.
set -euo pipefail
APP=${1:?path to the release ecrf-desktop binary}
RUNS=${2:-5}
STORE=${3:-}
ECRF="$(dirname "$APP")/ecrf"
[ -x "$ECRF" ] || ECRF="${CARGO_TARGET_DIR:-$HOME/.cache/ecrf-target}/debug/ecrf"
WORK=$(mktemp -d)
trap 'kill $XPID 2>/dev/null || true; rm -rf "$WORK"' EXIT
DISPLAY_NO=":97"
Xvfb $DISPLAY_NO -screen 0 1280x900x24 -nolisten tcp >/dev/null 2>&1 & XPID=$!
sleep 1
if [ -z "$STORE" ]; then
  "$ECRF" demo --path "$WORK/demo.ecrf" >/dev/null
  STORE="$WORK/demo.ecrf"
fi
PROBE_USER=${ECRF_PROBE_USER:-nurse}
PROBE_PASSWORD=${ECRF_PROBE_PASSWORD:-demo-ward-2026}

kb() { awk -v k="^$2:" '$0 ~ k {print $2}' "/proc/$1/$3" 2>/dev/null || echo 0; }
tree_pids() { local p; echo "$1"; for p in $(pgrep -P "$1" || true); do tree_pids "$p"; done; }

# One line per process (PSS, RSS, of which anonymous) and the sum over the app and its WebKit
# processes: PSS splits shared libraries between the processes that map them, so the sum
# counts each page once.
memory() {
  local pid total_pss=0 total_rss=0 pss rss anon
  for pid in $(tree_pids "$1" | sort -u); do
    pss=$(kb "$pid" Pss smaps_rollup); rss=$(kb "$pid" Rss smaps_rollup)
    anon=$(kb "$pid" Anonymous smaps_rollup)
    total_pss=$((total_pss + pss)); total_rss=$((total_rss + rss))
    printf '    %-16s PSS %4d MB  RSS %4d MB  (anonymous %d MB)\n' "$(cat "/proc/$pid/comm")" \
      $((pss / 1024)) $((rss / 1024)) $((anon / 1024))
  done
  printf '    %-16s PSS %4d MB  RSS %4d MB\n' "all" $((total_pss / 1024)) $((total_rss / 1024))
  LAST_PSS_MB=$((total_pss / 1024))
}

# start MARK PROBE: one cold start until the app prints MARK; its wall time in ms in $TOOK.
start() {
  local mark=$1 probe=$2 out="$WORK/out.$RANDOM"
  local -a env=(DISPLAY=$DISPLAY_NO ECRF_STARTUP_PROBE=1 ECRF_STORE="$STORE"
    XDG_DATA_HOME="$WORK/xdg")
  [ "$probe" = 1 ] && env+=(ECRF_PROBE_USER="$PROBE_USER" ECRF_PROBE_PASSWORD="$PROBE_PASSWORD")
  local t0 t1
  t0=$(date +%s%N)
  env "${env[@]}" "$APP" >"$out" 2>"$WORK/err" & PID=$!
  for _ in $(seq 1 1500); do grep -q "^$mark" "$out" 2>/dev/null && break; sleep 0.02; done
  t1=$(date +%s%N)
  if ! grep -q "^$mark" "$out"; then echo "the app never printed $mark" >&2; kill $PID; exit 1; fi
  TOOK=$(( (t1 - t0) / 1000000 ))
  INNER=$(sed -n "s/^$mark \([0-9]*\).*/\1/p" "$out")
}

size=$(stat -c %s "$APP")
awk -v s="$size" 'BEGIN { printf "release binary: %.1f MB (%d bytes)\n", s / 1e6, s }'
echo "store: $STORE ($(du -sh "$STORE" | cut -f1))"
for screen in login subjects; do
  if [ $screen = login ]; then mark=ui-ready probe=0; else mark=subjects-ready probe=1; fi
  starts=() inner=()
  for i in $(seq 1 "$RUNS"); do
    start $mark $probe
    starts+=("$TOOK"); inner+=("$INNER")
    if [ "$i" -eq "$RUNS" ]; then
      sleep 5
      echo "memory at idle on the $screen screen (5 s after it was drawn):"
      memory $PID
      [ $screen = login ] && LOGIN_PSS=$LAST_PSS_MB || LIST_PSS=$LAST_PSS_MB
    fi
    kill $PID; wait $PID 2>/dev/null || true
  done
  sorted=$(printf '%s\n' "${starts[@]}" | sort -n | tr '\n' ' ')
  echo "cold start to the $screen screen (ms, $RUNS runs, sorted): $sorted"
  echo "  of which main() to the screen drawn (ms, in run order): ${inner[*]}"
  echo "  commands the last run waited for (ms): $(sed -n 's/^command \([a-z_]*\) \([0-9.]*\) ms$/\1 \2/p' \
    "$WORK/err" | sort -k2 -rn | head -4 | paste -sd ',' | sed 's/,/, /g')"
done
echo "goals: start to login <= 1000 ms, to the subject list <= 1500 ms, binary <= 20 MB," \
  "idle memory (PSS, app + WebKit) <= 150 MB: login $LOGIN_PSS MB, subject list $LIST_PSS MB"
