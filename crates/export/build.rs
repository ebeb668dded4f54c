//! Linux (and every Unix): nothing to do; `src/readstat.rs` links the system's ReadStat
//! (Debian `libreadstat-dev`) by `#[link(name = "readstat")]`.
//!
//! Windows: there is no system ReadStat, so its C sources are compiled here into a static
//! `libreadstat.a` that the same `#[link]` finds. The sources are never downloaded here: the
//! folder comes from `ECRF_READSTAT_SRC` (`scripts/windows/readstat-src.sh` fetches them from
//! PyPI once and prints it; `make package-windows` and `make test-windows` set it). zlib is not
//! built (no `.zsav`), and iconv is the refusing shim of `scripts/windows/` (the writers used
//! never convert).

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=ECRF_READSTAT_SRC");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return;
    }
    let Some(src) = std::env::var_os("ECRF_READSTAT_SRC").map(PathBuf::from) else {
        panic!(
            "building ecrf-export for Windows needs ReadStat's C sources: run \
             `export ECRF_READSTAT_SRC=$(bash scripts/windows/readstat-src.sh)` first \
             (make package-windows / make test-windows do it)"
        );
    };
    if !src.join("readstat.h").is_file() {
        panic!(
            "ECRF_READSTAT_SRC={}: no readstat.h there (expected ReadStat's src/ folder)",
            src.display()
        );
    }
    let shim = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/windows");
    let mut files = Vec::new();
    for dir in ["", "stata", "spss", "sas"] {
        let dir = src.join(dir);
        let mut here: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a readable folder entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "c"))
            // zsav (zlib-compressed SPSS) needs zlib, which the eCRF does not write.
            .filter(|p| !p.to_string_lossy().contains("zsav"))
            .collect();
        here.sort();
        files.extend(here);
    }
    println!("cargo::rerun-if-changed={}", src.display());
    println!("cargo::rerun-if-changed={}", shim.display());
    cc::Build::new()
        .files(&files)
        .file(shim.join("iconv_shim.c"))
        .include(&src)
        .include(shim.join("include"))
        .warnings(false)
        .compile("readstat");
}
