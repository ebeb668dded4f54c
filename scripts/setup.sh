#!/usr/bin/env bash
# Installs what building, running and testing need on a fresh Debian machine, and nothing that
# is already there. Idempotent: `make run` and `make test` call it every time.
set -euo pipefail

# shellcheck source=scripts/apt.sh
source "$(dirname "$0")/apt.sh"

# Building: C for SQLCipher and OpenSSL (vendored), pkg-config.
apt_install build-essential perl pkg-config
# fonts-noto-cjk: the Chinese font embedded in PDF printouts; poppler-utils: PDF checks in tests.
apt_install fonts-noto-cjk poppler-utils
# The desktop shell (Tauri 2 on WebKitGTK).
apt_install libwebkit2gtk-4.1-dev libsoup-3.0-dev librsvg2-dev libayatana-appindicator3-dev
# The central server's database, for the sync tests (a throwaway cluster: scripts/pg.sh).
apt_install postgresql openssl   # the sync tests make their TLS certificates with openssl
# Desktop tests: a virtual display, WebKit's WebDriver, screenshots.
apt_install xvfb webkit2gtk-driver imagemagick
# Packages (make package / test-packages): dpkg-shlibdeps, systemd-analyze, desktop-file-validate,
# xwininfo.
apt_install dpkg-dev systemd desktop-file-utils x11-utils
# The web view's browser test: real Chromium driven over WebDriver (headless).
apt_install chromium chromium-driver
# Exports: ReadStat (Stata/SPSS/SAS files, linked by crates/export); R + haven and xmllint read
# the exports back in the tests; pip fetches the ODM 1.3.2 schema package in the ODM test.
apt_install libreadstat-dev r-base-core r-cran-haven libxml2-utils python3-pip

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo (Rust 1.85 or newer) is needed and was not found on PATH." >&2
  echo "       Install the Rust toolchain with rustup, then run this again." >&2
  exit 1
fi
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

# The UI's build tools come from the npm registry; Node.js 20 or newer is needed by Vite.
if ! command -v npm >/dev/null 2>&1; then apt_install nodejs npm; fi

# tauri-driver: the WebDriver front for the desktop tests (crates.io).
if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
  echo "setup: installing tauri-driver (cargo)"
  cargo install tauri-driver --version '^2' --locked --quiet
fi

# cargo-tauri: Tauri's bundler, which makes the desktop app's Debian package (crates.io).
if ! command -v cargo-tauri >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo-tauri" ]; then
  echo "setup: installing tauri-cli (cargo)"
  cargo install tauri-cli --version '^2' --locked --quiet
fi
