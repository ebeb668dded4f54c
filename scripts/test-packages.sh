#!/usr/bin/env bash
# Install test of the release's Debian packages (`make test-packages`, after `make package`), as
# root on this machine, which it leaves as it found it:
#   1. ecrf-server: installs it; checks the binary, the user, the settings file (conffile, 0640
#      root:ecrf) and the unit (systemd-analyze verify + the hardening it must keep); then, as
#      PID 1 is not systemd here, starts the server the way the unit would (its User, its
#      EnvironmentFile, its ExecStart, read from the installed unit) against a throwaway
#      PostgreSQL (scripts/pg.sh) with a TLS certificate made here, and asks /health over HTTPS.
#   2. ecrf-desktop: installs it; checks its menu entry and icon; starts the command the menu
#      entry runs under Xvfb: it must stay up and show its window with the page drawn; then,
#      through tauri-driver, opens the demo store from the first screen and logs in as the nurse.
#   3. purges both packages (and the user the server's package made).
# Logs and the screenshot: target-packages/test/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="${PACKAGE_DIR:-$ROOT/target-packages}"
LOGS="$OUT/test"
export PATH="$HOME/.cargo/bin:/usr/sbin:/sbin:$PATH"

step() { echo "test-packages: == $*"; }
ok() { echo "test-packages:    ok: $*"; }
die() {
  echo "test-packages: FAILED: $*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (installs packages and starts a service user's process)"
VERSION="$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)"
ARCH="$(dpkg --print-architecture)"
SERVER_DEB="$OUT/ecrf-server_${VERSION}_${ARCH}.deb"
DESKTOP_DEB="$OUT/ecrf-desktop_${VERSION}_${ARCH}.deb"
for f in "$SERVER_DEB" "$DESKTOP_DEB"; do [ -f "$f" ] || die "$f missing (make package)"; done
rm -rf "$LOGS"
mkdir -p "$LOGS"
WORK="$(mktemp -d /tmp/ecrf-test-packages.XXXXXX)"
PIDS=()

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' installed$'; }
present() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -qv 'not-installed'; }
purge_all() {
  rm -rf /etc/ecrf/tls # made by this test, not by the package
  for p in ecrf-desktop ecrf-server; do
    if present "$p"; then dpkg --purge "$p" >>"$LOGS/dpkg.log" 2>&1 || return 1; fi
  done
  # The user the server's postinst made (recognised by its name field); Debian keeps system
  # users on purge, this test does not.
  if getent passwd ecrf | grep -q ':EARLY-IABP eCRF server'; then
    deluser --system --quiet ecrf >/dev/null 2>&1 || userdel ecrf
    getent group ecrf >/dev/null && { delgroup --system --quiet ecrf >/dev/null 2>&1 || groupdel ecrf; }
  fi
  return 0
}
tree() { # PID → it and all its descendants (children first)
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do tree "$child"; done
  echo "$1"
}
stop_all() { # the processes this test started, by id, with everything they started
  local all=() pid
  for pid in "${PIDS[@]}"; do all+=($(tree "$pid")); done
  [ ${#all[@]} -eq 0 ] && return 0
  kill -TERM "${all[@]}" 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "${all[@]}" 2>/dev/null || break
    sleep 0.3
  done
  kill -KILL "${all[@]}" 2>/dev/null || true
  PIDS=()
}
cleanup() {
  local rc=$?
  set +e
  stop_all
  purge_all || echo "test-packages: could not purge the packages: see $LOGS/dpkg.log" >&2
  rm -rf "$WORK"
  [ $rc -eq 0 ] || echo "test-packages: logs in $LOGS" >&2
  exit $rc
}
trap cleanup EXIT

install_deb() { # DEB PACKAGE
  if ! dpkg -i "$1" >>"$LOGS/dpkg.log" 2>&1; then
    echo "test-packages:    dpkg -i left dependencies missing: apt-get install -f"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -f -y -qq \
      >>"$LOGS/dpkg.log" 2>&1 || die "apt-get install -f failed (see $LOGS/dpkg.log)"
  fi
  installed "$2" || die "$2 is not installed after dpkg -i (see $LOGS/dpkg.log)"
  [ "$(dpkg-query -W -f='${Version}' "$2")" = "$VERSION" ] || die "$2 is not version $VERSION"
}

step "leftovers of an earlier run"
purge_all || die "could not purge earlier ecrf packages (see $LOGS/dpkg.log)"
ok "no ecrf package installed"

# ---- 1. the server --------------------------------------------------------------------------
step "install $(basename "$SERVER_DEB") ($(du -h "$SERVER_DEB" | cut -f1))"
install_deb "$SERVER_DEB" ecrf-server
ok "installed"
/usr/bin/ecrf server --help >/dev/null || die "/usr/bin/ecrf does not run"
ok "/usr/bin/ecrf runs"
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd ecrf) || die "no user ecrf"
[ "$uid" -lt 1000 ] || die "user ecrf is not a system user (uid $uid)"
case "$shell" in */nologin | */false) ;; *) die "user ecrf has a login shell ($shell)" ;; esac
ok "system user ecrf (uid $uid, home $home, shell $shell)"
dpkg-query -W -f='${Conffiles}\n' ecrf-server | grep -q '^ /etc/ecrf/server.env ' ||
  die "/etc/ecrf/server.env is not a conffile"
[ "$(stat -c '%a %U %G' /etc/ecrf/server.env)" = "640 root ecrf" ] ||
  die "/etc/ecrf/server.env is $(stat -c '%a %U %G' /etc/ecrf/server.env), not 640 root ecrf"
[ "$(stat -c '%a %U %G' /etc/ecrf)" = "750 root ecrf" ] || die "/etc/ecrf is not 750 root ecrf"
ok "/etc/ecrf/server.env: conffile, 640 root:ecrf"

UNIT="$(dpkg -L ecrf-server | grep '/systemd/system/ecrf-server.service$')"
[ -f "$UNIT" ] || die "the package has no ecrf-server.service"
systemd-analyze verify "$UNIT" >"$LOGS/systemd-analyze.log" 2>&1 ||
  { cat "$LOGS/systemd-analyze.log" >&2; die "systemd-analyze verify $UNIT"; }
ok "systemd-analyze verify $UNIT"
for directive in User=ecrf NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes \
  PrivateTmp=yes PrivateDevices=yes CapabilityBoundingSet= \
  'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' EnvironmentFile=/etc/ecrf/server.env; do
  grep -qx "$directive" "$UNIT" || die "the unit lacks $directive"
done
if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
  exposure="$(systemd-analyze security --offline=true "$UNIT" 2>/dev/null | tail -1)" || true
  ok "hardening directives present; systemd-analyze security: ${exposure:-n/a}"
else
  ok "hardening directives present"
fi

# The unit, read as systemd would: its user, environment file and command line.
unit_value() { sed -n "s/^$1=//p" "$UNIT" | tail -1; }
RUN_USER="$(unit_value User)"
ENV_FILE="$(unit_value EnvironmentFile | sed 's/^-//')"
EXEC="$(unit_value ExecStart | sed 's/^[-@:+!]*//')"
[ -n "$RUN_USER" ] && [ -n "$ENV_FILE" ] && [ -n "$EXEC" ] || die "cannot read User/EnvironmentFile/ExecStart"

step "PostgreSQL (scripts/pg.sh, stopped when this test ends)"
PG_ADMIN="$(bash scripts/pg.sh serve-while $$)"
DB_PASSWORD="test-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
psql "$PG_ADMIN" -XAtq -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE ecrf LOGIN PASSWORD '$DB_PASSWORD'" -c "CREATE DATABASE ecrf OWNER ecrf" \
  >"$LOGS/psql.log" 2>&1 || die "could not create the database (see $LOGS/psql.log)"
PG_HOSTPORT="$(echo "$PG_ADMIN" | sed 's|^postgres://[^@]*@||; s|/.*||')"
ok "database ecrf owned by role ecrf at $PG_HOSTPORT"

step "configure the installed settings as an administrator would"
PORT="$(free_port)"
install -d -m 0750 -o root -g ecrf /etc/ecrf/tls
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >"$LOGS/openssl.log" 2>&1 ||
  die "openssl could not make a certificate"
install -m 0640 -o root -g ecrf "$WORK/cert.pem" /etc/ecrf/tls/cert.pem
install -m 0640 -o root -g ecrf "$WORK/key.pem" /etc/ecrf/tls/key.pem
# In place (same file, owner and mode): only the database and the address change.
sed -e "s|^DATABASE_URL=.*|DATABASE_URL=postgres://ecrf:$DB_PASSWORD@$PG_HOSTPORT/ecrf|" \
  -e "s|^ECRF_LISTEN=.*|ECRF_LISTEN=127.0.0.1:$PORT|" "$ENV_FILE" >"$WORK/server.env"
cat "$WORK/server.env" >"$ENV_FILE"
grep -q "^ECRF_TLS_CERT=/etc/ecrf/tls/cert.pem$" "$ENV_FILE" || die "unexpected TLS settings in $ENV_FILE"
ok "$ENV_FILE: database, listen 127.0.0.1:$PORT, the shipped TLS paths"

step "start the server as the unit would: user $RUN_USER, $ENV_FILE, $EXEC"
ENVS=()
while IFS= read -r line; do
  [[ "$line" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] && ENVS+=("$line")
done <"$ENV_FILE"
read -ra CMD <<<"$EXEC"
# As systemd: working directory /, umask 0077, no new privileges, no capabilities.
(cd / && umask 0077 && exec runuser -u "$RUN_USER" -- setpriv --no-new-privs \
  env -i PATH=/usr/bin:/bin "${ENVS[@]}" "${CMD[@]}") >"$LOGS/server.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
health=""
for _ in $(seq 1 120); do
  kill -0 "$SERVER" 2>/dev/null || { tail -20 "$LOGS/server.log" >&2; die "the server exited"; }
  health="$(curl -fsS --max-time 5 --cacert "$WORK/cert.pem" "https://127.0.0.1:$PORT/health" 2>/dev/null)" && break
  sleep 0.5
done
[ "$health" = '{"status":"ok"}' ] || { tail -20 "$LOGS/server.log" >&2; die "GET /health answered '$health'"; }
ok "GET https://127.0.0.1:$PORT/health → $health (TLS, certificate checked)"
owner="$(ps -o user= -p "$(tree "$SERVER" | head -1)" | tr -d ' ')" # runuser's child, if it forks
[ "$owner" = "$RUN_USER" ] || die "the server runs as '$owner', not $RUN_USER"
ok "server process runs as $owner"
code="$(curl -sS -o "$WORK/login.html" -w '%{http_code}' --cacert "$WORK/cert.pem" "https://127.0.0.1:$PORT/web/login")"
[ "$code" = 200 ] && grep -q '<form' "$WORK/login.html" || die "GET /web/login answered $code"
ok "GET /web/login → 200 (the web view's login form)"
stop_all
ok "server stopped"

# ---- 2. the desktop app ---------------------------------------------------------------------
step "install $(basename "$DESKTOP_DEB") ($(du -h "$DESKTOP_DEB" | cut -f1))"
install_deb "$DESKTOP_DEB" ecrf-desktop
depends="$(dpkg-query -W -f='${Depends}' ecrf-desktop)"
echo "$depends" | grep -q 'libwebkit2gtk-4.1-0' || die "Depends lacks libwebkit2gtk-4.1-0: $depends"
ok "installed; Depends: $depends"
ENTRY="$(dpkg -L ecrf-desktop | grep '^/usr/share/applications/.*\.desktop$' | head -1)"
[ -n "$ENTRY" ] || die "no menu entry (.desktop) in the package"
if command -v desktop-file-validate >/dev/null; then
  desktop-file-validate "$ENTRY" || die "desktop-file-validate $ENTRY"
fi
grep -q '^Name=EARLY-IABP eCRF$' "$ENTRY" || die "$ENTRY: unexpected Name"
APP_CMD="$(sed -n 's/^Exec=//p' "$ENTRY" | head -1 | sed 's/ %[a-zA-Z]//g')"
ICON="$(sed -n 's/^Icon=//p' "$ENTRY" | head -1)"
APP="$(command -v "$APP_CMD")" || die "the menu entry runs '$APP_CMD', which is not on PATH"
ls /usr/share/icons/hicolor/*/apps/"$ICON".png >/dev/null 2>&1 || die "no icon $ICON in hicolor"
ok "$ENTRY runs $APP; icon $ICON"

step "start $APP under Xvfb"
DISPLAY_NUM=""
for n in $(seq 90 149); do
  [ -e "/tmp/.X$n-lock" ] || [ -e "/tmp/.X11-unix/X$n" ] && continue
  Xvfb ":$n" -screen 0 1280x800x24 -nolisten tcp >"$LOGS/xvfb.log" 2>&1 &
  xpid=$!
  sleep 1
  if kill -0 "$xpid" 2>/dev/null; then
    DISPLAY_NUM=":$n"
    PIDS+=("$xpid")
    break
  fi
done
[ -n "$DISPLAY_NUM" ] || die "no free X display between :90 and :149"
# A newcomer's account: no store yet, so the app opens on its first screen (set up, or demo).
mkdir -p "$WORK/home" "$WORK/run"
chmod 0700 "$WORK/run"
APP_ENV=(env -i PATH=/usr/bin:/bin HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/run"
  DISPLAY="$DISPLAY_NUM" LANG=C.UTF-8 ECRF_NO_OPEN=1)
"${APP_ENV[@]}" "$APP" >"$LOGS/desktop.log" 2>&1 &
APP_PID=$!
PIDS+=("$APP_PID")
title="EARLY-IABP eCRF"
window=""
for _ in $(seq 1 60); do
  kill -0 "$APP_PID" 2>/dev/null || { tail -20 "$LOGS/desktop.log" >&2; die "the app exited"; }
  window="$(xwininfo -display "$DISPLAY_NUM" -root -tree 2>/dev/null | grep -F "\"$title\"" | head -1)" && [ -n "$window" ] && break
  sleep 0.5
done
[ -n "$window" ] || die "no window \"$title\" on $DISPLAY_NUM"
ok "window:$(echo "$window" | sed 's/  */ /g')"
# The page is drawn when the screen holds more than a few colours (text, buttons).
colours=0
for _ in $(seq 1 20); do
  sleep 1
  kill -0 "$APP_PID" 2>/dev/null || { tail -20 "$LOGS/desktop.log" >&2; die "the app exited"; }
  import -display "$DISPLAY_NUM" -window root "$LOGS/desktop.png" 2>/dev/null || continue
  colours="$(identify -format '%k' "$LOGS/desktop.png")"
  [ "$colours" -gt 16 ] && break
done
[ "$colours" -gt 16 ] || die "the window stays blank ($colours colours; $LOGS/desktop.png)"
sleep 3
kill -0 "$APP_PID" 2>/dev/null || { tail -20 "$LOGS/desktop.log" >&2; die "the app exited"; }
ok "up for several seconds, page drawn ($colours colours): $LOGS/desktop.png"
kill -TERM "$APP_PID" 2>/dev/null || true
wait "$APP_PID" 2>/dev/null || true
ok "app stopped"

step "the demo store from the first screen, through tauri-driver"
command -v tauri-driver >/dev/null || die "tauri-driver not found (bash scripts/setup.sh installs it)"
WD_PORT="$(free_port)"
NATIVE_PORT="$(free_port)"
"${APP_ENV[@]}" PATH="/usr/bin:/bin:$HOME/.cargo/bin" \
  "$(command -v tauri-driver)" --port "$WD_PORT" --native-port "$NATIVE_PORT" \
  >"$LOGS/tauri-driver.log" 2>&1 &
PIDS+=("$!")
WD="http://127.0.0.1:$WD_PORT"
wd() { # METHOD PATH [JSON] → the reply's "value" as JSON
  local reply
  reply="$(curl -s --max-time 60 -X "$1" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} "$WD$2")" || return 1
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); v=r.get("value");
if isinstance(v, dict) and "error" in v: sys.exit(1)
print(json.dumps(v))' "$reply"
}
element() { # CSS → element id, waiting up to 60 s
  local v
  for _ in $(seq 1 120); do
    if v="$(wd POST "/session/$SID/element" "{\"using\":\"css selector\",\"value\":\"$1\"}")"; then
      python3 -c 'import json,sys; print(list(json.loads(sys.argv[1]).values())[0])' "$v"
      return 0
    fi
    sleep 0.5
  done
  return 1
}
click() { wd POST "/session/$SID/element/$(element "$1" || die "no $1")/click" '{}' >/dev/null || die "click $1"; }
type_in() { wd POST "/session/$SID/element/$(element "$1" || die "no $1")/value" "{\"text\":\"$2\"}" >/dev/null || die "type into $1"; }
SID=""
for _ in $(seq 1 60); do
  v="$(wd POST /session "{\"capabilities\":{\"alwaysMatch\":{\"tauri:options\":{\"application\":\"$APP\"}}}}")" &&
    SID="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["sessionId"])' "$v")" && break
  sleep 0.5
done
[ -n "$SID" ] || die "no WebDriver session (see $LOGS/tauri-driver.log)"
click "#start-demo"
type_in "#login-user" nurse
type_in "#login-password" demo-ward-2026
click "#login-submit"
element "button[data-subject='01-0001']" >/dev/null || die "the demo store's subject 01-0001 is not listed"
[ -f "$WORK/home/.local/share/early-iabp-ecrf/demo.ecrf" ] || die "no demo store in the user's data folder"
import -display "$DISPLAY_NUM" -window root "$LOGS/desktop-demo.png" 2>/dev/null || true
ok "demo store opened, nurse logged in, subject 01-0001 listed ($LOGS/desktop-demo.png)"
wd DELETE "/session/$SID" >/dev/null || true
stop_all

# ---- 3. removal -----------------------------------------------------------------------------
step "purge both packages"
purge_all || die "dpkg --purge failed (see $LOGS/dpkg.log)"
for p in ecrf-server ecrf-desktop; do present "$p" && die "$p is still known to dpkg"; done
for f in /usr/bin/ecrf "$UNIT" /etc/ecrf "$APP" "$ENTRY"; do [ -e "$f" ] && die "$f is left behind"; done
getent passwd ecrf >/dev/null && die "user ecrf is left behind"
ok "nothing left: packages, files, /etc/ecrf, user ecrf"
echo "test-packages: PASSED"
