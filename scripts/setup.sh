#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine, and nothing that is there.
# Idempotent: safe to run before every `make run` / `make test`.
set -euo pipefail

need_apt=()
# fonts-noto-cjk: the Chinese font embedded in PDF printouts; poppler-utils: PDF checks in tests.
for pkg in build-essential perl pkg-config fonts-noto-cjk poppler-utils; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} (apt)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo (Rust 1.85 or newer) is needed and was not found on PATH." >&2
  echo "       Install the Rust toolchain with rustup, then run this again." >&2
  exit 1
fi
for comp in rustfmt clippy; do
  if ! cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$comp" >/dev/null 2>&1 || echo "setup: could not add $comp" >&2
  fi
done
