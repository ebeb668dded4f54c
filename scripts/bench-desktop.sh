#!/usr/bin/env bash
# Prints what the desktop app costs: release binary size, cold start to the login screen
# (process launch until the UI reports its first screen drawn), and resident memory at idle
# (the app process, and with WebKit's helper processes). Runs under its own Xvfb.
# Usage: scripts/bench-desktop.sh PATH/TO/release/ecrf-desktop [RUNS]
set -euo pipefail
APP=${1:?path to the release ecrf-desktop binary}
RUNS=${2:-5}
ECRF="$(dirname "$APP")/ecrf"
[ -x "$ECRF" ] || ECRF="${CARGO_TARGET_DIR:-$HOME/.cache/ecrf-target}/debug/ecrf"
WORK=$(mktemp -d)
trap 'kill $XPID 2>/dev/null || true; rm -rf "$WORK"' EXIT
DISPLAY_NO=":97"
Xvfb $DISPLAY_NO -screen 0 1280x900x24 -nolisten tcp >/dev/null 2>&1 & XPID=$!
sleep 1
"$ECRF" demo --path "$WORK/demo.ecrf" >/dev/null

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
tree_pids() { local p; echo "$1"; for p in $(pgrep -P "$1" || true); do tree_pids "$p"; done; }
tree_rss_kb() {
  local total=0 pid
  for pid in $(tree_pids "$1" | sort -u); do total=$((total + $(rss_kb "$pid"))); done
  echo $total
}
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
tree_pss_kb() {
  local total=0 pid
  for pid in $(tree_pids "$1" | sort -u); do total=$((total + $(pss_kb "$pid"))); done
  echo $total
}

size=$(stat -c %s "$APP")
awk -v s="$size" 'BEGIN { printf "release binary: %.1f MB (%d bytes)\n", s / 1e6, s }'
starts=()
inner=()
for i in $(seq 1 "$RUNS"); do
  OUT="$WORK/out.$i"
  t0=$(date +%s%N)
  DISPLAY=$DISPLAY_NO ECRF_STARTUP_PROBE=1 ECRF_STORE="$WORK/demo.ecrf" XDG_DATA_HOME="$WORK/xdg" \
    "$APP" >"$OUT" 2>/dev/null & PID=$!
  for _ in $(seq 1 200); do grep -q ui-ready "$OUT" 2>/dev/null && break; sleep 0.02; done
  t1=$(date +%s%N)
  if ! grep -q ui-ready "$OUT"; then echo "run $i: the login screen never appeared" >&2; kill $PID; exit 1; fi
  starts+=($(( (t1 - t0) / 1000000 )))
  inner+=("$(sed -n 's/^ui-ready \([0-9]*\).*/\1/p' "$OUT")")
  if [ "$i" -eq "$RUNS" ]; then
    sleep 3
    printf 'resident memory at idle (RSS): app %d MB, with its WebKit processes %d MB\n' \
      $(( $(rss_kb $PID) / 1024 )) $(( $(tree_rss_kb $PID) / 1024 ))
    printf 'proportional memory (PSS, shared libraries split): app %d MB, with WebKit processes %d MB\n' \
      $(( $(pss_kb $PID) / 1024 )) $(( $(tree_pss_kb $PID) / 1024 ))
    grep -E '^(Rss|Anonymous|Pss_File|Pss_Anon)' "/proc/$PID/smaps_rollup" | tr -s ' ' | paste -sd' ' | sed 's/^/  app: /'
    ps --ppid $PID -o pid=,rss=,comm= | sed 's/^/  child: /' || true
  fi
  kill $PID; wait $PID 2>/dev/null || true
done
sorted=$(printf '%s\n' "${starts[@]}" | sort -n | tr '\n' ' ')
echo "cold start to login screen (ms, $RUNS runs, sorted): $sorted"
echo "  of which main() to first screen drawn (ms, in run order): ${inner[*]}"
echo "goals: start <= 1000 ms, binary <= 20 MB, idle memory <= 150 MB"
