#!/usr/bin/env bash
# Cross-builds the eCRF for 64-bit Windows with mingw-w64 (`make package-windows`):
#   package.sh cli   ecrf.exe only (the Wine test's build)
#   package.sh all   ecrf.exe, ecrf-desktop.exe and the desktop app's NSIS installer
# into dist/windows/ (git-ignored). Needs scripts/setup-windows.sh (and, for `all`, the UI built:
# `make ui`). Release builds in $CARGO_TARGET_DIR/x86_64-pc-windows-gnu/release.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
what="${1:-all}"
TRIPLE=x86_64-pc-windows-gnu
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ecrf-target}"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export PATH="$HOME/.cargo/bin:$PATH"
OUT="$ROOT/dist/windows"
BIN="$CARGO_TARGET_DIR/$TRIPLE/release"
mkdir -p "$OUT"

# ReadStat (Stata/SPSS/SAS files) is compiled from source for Windows: crates/export/build.rs.
ECRF_READSTAT_SRC="$(bash scripts/windows/readstat-src.sh)"
export ECRF_READSTAT_SRC

echo "package-windows: ecrf.exe (cargo build --release --target $TRIPLE -p ecrf-cli)"
cargo build --release --target "$TRIPLE" -p ecrf-cli
cp "$BIN/ecrf.exe" "$OUT/ecrf.exe"
echo "package-windows: $OUT/ecrf.exe ($(stat -c %s "$OUT/ecrf.exe") bytes)"
[ "$what" = cli ] && exit 0

[ -f ui/dist/index.html ] || { echo "package-windows: ui/dist is missing: run make ui" >&2; exit 1; }

# The Windows icon (exe resource, installer) made from icons/icon.png; never committed.
if [ ! -f icons/icon.ico ] || [ icons/icon.png -nt icons/icon.ico ]; then
  convert icons/icon.png -define icon:auto-resize=256,64,48,32,16 icons/icon.ico
fi

# The desktop app as `cargo tauri build` compiles it (tauri/custom-protocol: the UI served
# from the binary). tauri-build and generate_context! merge tauri.windows.conf.json, which sits
# beside tauri.conf.json, by themselves for a Windows target.
echo "package-windows: ecrf-desktop.exe (cargo build --release --target $TRIPLE -p ecrf-desktop)"
cargo build --release --target "$TRIPLE" -p ecrf-desktop --features tauri/custom-protocol
cp "$BIN/ecrf-desktop.exe" "$OUT/ecrf-desktop.exe"

# The installer: NSIS settings from tauri.conf.json merged with tauri.windows.conf.json (JSON
# merge patch, as Tauri merges them), compiled by Debian's makensis. Tauri's own NSIS bundler is
# not used: on Linux it downloads NSIS 3.13 and its nsis_tauri_utils.dll plugin from GitHub at
# bundle time (see ARCHITECTURE.md, Windows).
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
python3 - "$WORK" <<'PY'
import json, sys, tomllib
work = sys.argv[1]
def merge(a, b):
    if not isinstance(b, dict):
        return b
    a = dict(a) if isinstance(a, dict) else {}
    for k, v in b.items():
        if v is None:
            a.pop(k, None)
        else:
            a[k] = merge(a.get(k), v)
    return a
conf = merge(json.load(open("tauri.conf.json")), json.load(open("tauri.windows.conf.json")))
bundle = conf.get("bundle", {})
nsis = bundle.get("windows", {}).get("nsis", {})
mode = nsis.get("installMode", "currentUser")
if mode not in ("currentUser", "perMachine"):
    sys.exit(f"tauri.windows.conf.json: installMode {mode!r} is not supported here (currentUser, perMachine)")
langs = nsis.get("languages", ["English"])
with open(f"{work}/langs.nsh", "w") as f:
    for lang in langs:
        f.write(f'!insertmacro MUI_LANGUAGE "{lang}"\n')
product = conf["productName"]
# Like Tauri: the config's version, else the package's (the workspace version).
version = conf.get("version") or tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]["version"]
conf["version"] = version
defines = {
    "PRODUCT": product,
    "VERSION": version,
    "IDENTIFIER": conf["identifier"],
    "PUBLISHER": bundle.get("publisher", product),
    "PER_MACHINE": "1" if mode == "perMachine" else "0",
    "LANGS": f"{work}/langs.nsh",
}
with open(f"{work}/defines", "w") as f:
    for k, v in defines.items():
        f.write(f"-D{k}={v}\n")
with open(f"{work}/name", "w") as f:
    f.write(f"{product.replace(' ', '-')}_{conf['version']}_x64-setup.exe")
PY
setup_name="$(cat "$WORK/name")"
mapfile -t defines < "$WORK/defines"
rm -f "$OUT"/*-setup.exe
makensis -V2 -INPUTCHARSET UTF8 "${defines[@]}" \
  "-DICON=$ROOT/icons/icon.ico" \
  "-DDESKTOP_EXE=$OUT/ecrf-desktop.exe" \
  "-DCLI_EXE=$OUT/ecrf.exe" \
  "-DOUTFILE=$OUT/$setup_name" \
  scripts/windows/installer.nsi
echo "package-windows: $OUT/$setup_name ($(stat -c %s "$OUT/$setup_name") bytes)"
