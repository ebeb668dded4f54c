#!/usr/bin/env bash
# Builds the two Debian packages of a release into target-packages/ (`make package`):
#   ecrf-desktop_<version>_<arch>.deb  the desktop app, by Tauri's bundler (cargo tauri build)
#   ecrf-server_<version>_<arch>.deb   /usr/bin/ecrf + ecrf-server.service + /etc/ecrf/server.env,
#                                      staged here and built with dpkg-deb (packaging/linux/)
# <version> is the workspace version of Cargo.toml. Needs the UI built (make ui) and cargo-tauri
# (scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="${PACKAGE_DIR:-$ROOT/target-packages}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ecrf-target}"
export PATH="$HOME/.cargo/bin:$PATH"

say() { echo "package: $*"; }
die() { echo "package: $*" >&2; exit 1; }

VERSION="$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)"
[ -n "$VERSION" ] || die "no version in [workspace.package] of Cargo.toml"
ARCH="$(dpkg --print-architecture)"
command -v cargo-tauri >/dev/null || die "cargo-tauri not found (bash scripts/setup.sh installs it)"
[ -f ui/dist/index.html ] || die "the UI is not built (make ui)"
mkdir -p "$OUT"
say "version $VERSION ($ARCH), into $OUT"

# --- ecrf-server --------------------------------------------------------------------------
say "building ecrf (release)"
cargo build --release --locked -p ecrf-cli
BIN="$CARGO_TARGET_DIR/release/ecrf"

STAGE="$(mktemp -d /tmp/ecrf-server-deb.XXXXXX)"
chmod 0755 "$STAGE" # the package's "./": dpkg must never see / as 0700
trap 'rm -rf "$STAGE"' EXIT
P=packaging/linux
install -d -m 0755 "$STAGE/DEBIAN" "$STAGE/usr/bin" "$STAGE/lib/systemd/system" \
  "$STAGE/usr/share/doc/ecrf-server"
install -d -m 0750 "$STAGE/etc/ecrf"
install -m 0755 "$BIN" "$STAGE/usr/bin/ecrf"
install -m 0644 "$P/ecrf-server.service" "$STAGE/lib/systemd/system/ecrf-server.service"
install -m 0640 "$P/server.env" "$STAGE/etc/ecrf/server.env"
printf 'EARLY-IABP eCRF central server %s. Proprietary; see the trial'"'"'s agreements.\n' \
  "$VERSION" >"$STAGE/usr/share/doc/ecrf-server/copyright"
chmod 0644 "$STAGE/usr/share/doc/ecrf-server/copyright"
for s in postinst prerm postrm; do install -m 0755 "$P/ecrf-server.$s" "$STAGE/DEBIAN/$s"; done
echo /etc/ecrf/server.env >"$STAGE/DEBIAN/conffiles"

# Shared libraries the binary links, as Debian package dependencies (dpkg-shlibdeps wants a
# debian/control beside it).
shlibdeps() {  # BINARY → "libc6 (>= 2.34), …"
  local dir; dir="$(mktemp -d /tmp/ecrf-shlibdeps.XXXXXX)"
  mkdir -p "$dir/debian"
  printf 'Source: ecrf\n\nPackage: ecrf\nArchitecture: any\n' >"$dir/debian/control"
  (cd "$dir" && dpkg-shlibdeps -O "$1" 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
  rm -rf "$dir"
}
LIBDEPS="$(shlibdeps "$BIN")"
[ -n "$LIBDEPS" ] || die "dpkg-shlibdeps found no dependencies of $BIN"
# adduser: the postinst makes the user; fonts: the PDFs the web view prints embed a CJK font.
DEPENDS="$LIBDEPS, adduser, fonts-noto-cjk | fonts-wqy-microhei"
SIZE="$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)"
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@INSTALLED_SIZE@/$SIZE/" \
  -e "s/@DEPENDS@/$DEPENDS/" "$P/ecrf-server.control" >"$STAGE/DEBIAN/control"
SERVER_DEB="$OUT/ecrf-server_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$SERVER_DEB" >/dev/null
say "built $SERVER_DEB ($(du -h "$SERVER_DEB" | cut -f1))"

# --- ecrf-desktop -------------------------------------------------------------------------
# tauri-cli wants tauri.conf.json beside the crate it builds (src-tauri), while the repository
# keeps the one file at the root (src-tauri/build.rs reads it there). A symlink, only while the
# bundler runs; paths are given absolute below because the bundler resolves them from src-tauri.
LINK=src-tauri/tauri.conf.json
if [ -L "$LINK" ] && [ "$(readlink "$LINK")" = ../tauri.conf.json ]; then
  MADE_LINK=""
elif [ -e "$LINK" ] || [ -L "$LINK" ]; then
  die "$LINK exists and is not the link to ../tauri.conf.json this script makes"
else
  ln -s ../tauri.conf.json "$LINK"
  MADE_LINK=1
fi
trap 'rm -rf "$STAGE"; [ -z "${MADE_LINK:-}" ] || rm -f "$ROOT/$LINK"' EXIT

# The Debian package and its files are named ecrf-desktop (productName would make
# "early-iabp-e-crf"); the menu entry still reads "EARLY-IABP eCRF" (packaging/linux template).
CONFIG="$(cat <<JSON
{
  "productName": "ecrf-desktop",
  "version": "$VERSION",
  "build": { "frontendDist": "$ROOT/ui/dist" },
  "bundle": {
    "icon": ["$ROOT/icons/icon.png"],
    "linux": { "deb": { "desktopTemplate": "$ROOT/$P/ecrf-desktop.desktop" } }
  }
}
JSON
)"
say "building ecrf-desktop (release) and its package (cargo tauri build --bundles deb)"
(cd src-tauri && TAURI_APP_PATH="$ROOT/src-tauri" TAURI_FRONTEND_PATH="$ROOT/ui" \
  cargo tauri build --ci --bundles deb --config "$CONFIG" -- --locked)
BUILT="$CARGO_TARGET_DIR/release/bundle/deb/ecrf-desktop_${VERSION}_${ARCH}.deb"
[ -f "$BUILT" ] || die "the bundler did not write $BUILT"
DESKTOP_DEB="$OUT/ecrf-desktop_${VERSION}_${ARCH}.deb"
cp "$BUILT" "$DESKTOP_DEB"

# Every shared library the app links must come from a declared dependency.
DECLARED="$(dpkg-deb -f "$DESKTOP_DEB" Depends)"
NEEDED="$(shlibdeps "$CARGO_TARGET_DIR/release/ecrf-desktop")"
missing=""
for dep in $(echo "$NEEDED" | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g'); do
  case "$dep" in libc6|libgcc-s1) continue ;; esac   # always installed (essential)
  echo "$DECLARED" | tr ',' '\n' | grep -qE "^ *$dep( |$|:)" || missing="$missing $dep"
done
[ -z "$missing" ] || die "ecrf-desktop links libraries of undeclared packages:$missing (tauri.conf.json bundle.linux.deb.depends)"
say "built $DESKTOP_DEB ($(du -h "$DESKTOP_DEB" | cut -f1)); Depends: $DECLARED"
