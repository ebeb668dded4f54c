//! Tauri's build step reads `tauri.conf.json` from the current folder: point it at the one
//! file at the repository root instead of keeping a second copy here.

fn main() {
    // Read at run time, not with env!(): a build script compiled in another clone of the
    // repository may be reused from a shared target folder, and must not enter that clone.
    let manifest = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let root = manifest
        .parent()
        .expect("src-tauri sits in the repository root");
    println!(
        "cargo:rerun-if-changed={}",
        root.join("tauri.conf.json").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        manifest.join("capabilities").display()
    );
    if let Err(e) = std::env::set_current_dir(root) {
        panic!("cannot enter {}: {e}", root.display());
    }
    let attrs = tauri_build::Attributes::new()
        .capabilities_path_pattern("src-tauri/capabilities/**/*.json");
    tauri_build::try_build(attrs).expect("tauri build step");
}
