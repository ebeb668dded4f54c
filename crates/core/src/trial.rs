//! This trial's definition, embedded from the repository's `study/` folder at build time, so the
//! app, the command line and the server always carry the exact definition they were built with.

use crate::study::{DefinitionError, Study};

macro_rules! form_files {
    ($($id:literal),* $(,)?) => {
        &[$((concat!("study/forms/", $id, ".toml"),
             include_str!(concat!("../../../study/forms/", $id, ".toml")))),*]
    };
}

/// `(path, text)` of every embedded form file.
pub const FORM_FILES: &[(&str, &str)] = form_files!(
    "SCR", "CON", "RND", "BAS", "ECMO", "IABP", "DLY", "EVT", "AE", "DEV", "DIS", "D30", "EOS"
);

/// `(path, text)` of the embedded `study.toml`.
pub const STUDY_FILE: (&str, &str) = (
    "study/study.toml",
    include_str!("../../../study/study.toml"),
);

/// The base version: the embedded definition's. Amendments arrive as data at sync
/// (`study::versions`); a form instance that records no version is this version's, so the
/// embedded definition must not change without a new version (a test holds them equal).
pub const BASE_VERSION: &str = "1.1.0";

/// Loads and checks the embedded definition.
pub fn definition() -> Result<Study, DefinitionError> {
    Study::from_sources(STUDY_FILE, FORM_FILES)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_definition_is_valid() {
        let study = super::definition().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(study.registry, "NCT06872021");
        assert_eq!(study.version, super::BASE_VERSION);
        assert_eq!(study.forms.len(), 13);
        for f in &study.forms {
            assert!(!f.items.is_empty(), "form {} has no items", f.id);
        }
    }
}
