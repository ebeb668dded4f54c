#!/usr/bin/env bash
# What the Windows targets need on top of scripts/setup.sh (`make package-windows`,
# `make test-windows`; `make test` never calls this): the mingw-w64 cross compiler and linker,
# NSIS (makensis) for the installer, Wine to run ecrf.exe in the test, ImageMagick for the
# installer's .ico, and Rust's x86_64-pc-windows-gnu standard library. Idempotent.
set -euo pipefail

# shellcheck source=scripts/apt.sh
source "$(dirname "$0")/apt.sh"

apt_install gcc-mingw-w64-x86-64 nsis wine64 imagemagick python3-pip
# The test's checks: pdftotext, the Chinese font the PDF embeds, R + haven for .dta/.sav.
apt_install poppler-utils fonts-noto-cjk r-base-core r-cran-haven

if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-pc-windows-gnu; then
  echo "setup-windows: rustup target add x86_64-pc-windows-gnu"
  rustup target add x86_64-pc-windows-gnu
fi
