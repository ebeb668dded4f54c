#!/usr/bin/env bash
# ReadStat's C sources for the Windows build of crates/export (Linux links Debian's
# libreadstat instead). They come from PyPI: the source distribution of pyreadstat 1.3.7 ships
# ReadStat's C sources in its src/ folder (ReadStat: MIT licence, in the LICENSE kept beside); the
# archive is checked against a pinned SHA-256 and unpacked once into a cache outside the clone.
# Prints the folder to give crates/export/build.rs as ECRF_READSTAT_SRC.
set -euo pipefail

VERSION=1.3.7
SHA256=c15cc9f58edfd96afb850f65de252c52f5466ff27ce44772d3389d3a0c11b5ca
CACHE="${ECRF_WINDOWS_CACHE:-$HOME/.cache/ecrf-windows}"
DIR="$CACHE/readstat-pyreadstat-$VERSION"

if [ ! -f "$DIR/.complete" ]; then
  mkdir -p "$CACHE/download"
  tarball="$CACHE/download/pyreadstat-$VERSION.tar.gz"
  if [ ! -f "$tarball" ]; then
    echo "readstat-src: pip download pyreadstat==$VERSION (source distribution, PyPI)" >&2
    # pip prepares the package's metadata after downloading (it fetches its build tools as
    # wheels for that); only the archive is kept.
    python3 -m pip download --quiet --no-deps --no-binary pyreadstat "pyreadstat==$VERSION" \
      -d "$CACHE/download" >&2
  fi
  echo "$SHA256  $tarball" | sha256sum --check --quiet - >&2 || {
    echo "readstat-src: $tarball does not have the pinned SHA-256" >&2
    exit 1
  }
  rm -rf "$DIR" "$DIR.tmp"
  mkdir -p "$DIR.tmp"
  tar -xzf "$tarball" -C "$DIR.tmp" --strip-components=2 "pyreadstat-$VERSION/src"
  tar -xzf "$tarball" -C "$DIR.tmp" --strip-components=1 "pyreadstat-$VERSION/LICENSE"
  touch "$DIR.tmp/.complete"
  mv "$DIR.tmp" "$DIR"
fi
echo "$DIR"
