//! The desktop shell of the eCRF. The Tauri window is built by the desktop issue; until then this
//! binary only proves the workspace links the study definition and tells the user where to go.

fn main() {
    match ecrf_core::trial::definition() {
        Ok(study) => println!(
            "{} {} (definition {}): the desktop window is not built yet; use `ecrf` (make run).",
            study.id, study.registry, study.version
        ),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
