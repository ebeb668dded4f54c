//! The Export page's use case: a data manager writes the store's data in a
//! chosen format to a folder; each export is recorded in the change log (who, when, what).

use std::path::PathBuf;
use std::time::Instant;

use chrono::Local;
use ecrf_export::ExportOptions;

use crate::dto::{ErrorCode, ExportDone, ExportRequest};
use crate::{App, AppResult, err};

impl App {
    /// The folder the Export page suggests: `export-<date-time>` in the folder the user chose
    /// for printouts, or nothing (the user chooses): exports are not encrypted, so the app
    /// never picks a place for them itself.
    pub fn default_export_folder(&self) -> String {
        let stamp = Local::now().format("%Y%m%d-%H%M%S");
        match self.print_folder() {
            Ok(Some(f)) => PathBuf::from(f)
                .join(format!("export-{stamp}"))
                .display()
                .to_string(),
            _ => String::new(),
        }
    }

    /// Exports in one format and records the export in the audit trail.
    pub fn export(&mut self, req: ExportRequest) -> AppResult<ExportDone> {
        let started = Instant::now();
        let formats = [req.format];
        if req.folder.trim().is_empty() {
            return Err(err(ErrorCode::Invalid, "folder: choose where to export"));
        }
        let folder = PathBuf::from(req.folder.trim());
        let opts = ExportOptions {
            forms: req.forms.clone(),
            site: req.site.clone().filter(|s| !s.trim().is_empty()),
            include_audit: req.include_audit,
        };
        let study = std::sync::Arc::clone(&self.study);
        let store = self.store_mut()?;
        let data = ecrf_export::TrialData::from_view(store.export_view(opts.include_audit)?)
            .map_err(|e| err(ErrorCode::Invalid, e.to_string()))?;
        let report = ecrf_export::export(&study, &data, &formats, &opts, &folder)
            .map_err(|e| err(ErrorCode::Invalid, e.to_string()))?;
        store.record_export(report.exported(&formats, &opts, &folder, None))?;
        Ok(ExportDone {
            folder: folder.display().to_string(),
            files: report
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect(),
            subjects: report.subjects as u32,
            millis: started.elapsed().as_millis() as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_manager_exports_and_the_export_is_audited() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = crate::test_kit::site_01(dir.path());
        app.new_subject().unwrap();
        let request = |format: &str, folder: &std::path::Path| ExportRequest {
            format: serde_json::from_value(serde_json::json!(format)).unwrap(),
            forms: vec![],
            site: None,
            include_audit: true,
            folder: folder.display().to_string(),
        };
        let out = dir.path().join("out");
        assert_eq!(
            app.export(request("csv", &out)).unwrap_err().code,
            ErrorCode::NotAllowed,
            "a nurse may not export"
        );
        app.lock();
        app.login("zhou", "dm-password-1").unwrap();
        // No folder is suggested until the user has chosen one for printouts; then a new
        // folder inside it (never beside the store).
        assert_eq!(app.default_export_folder(), "");
        app.set_print_folder(&dir.path().join("nowhere").display().to_string())
            .unwrap_err();
        app.set_print_folder(&dir.path().display().to_string())
            .unwrap();
        let suggested = app.default_export_folder();
        assert!(
            suggested.starts_with(&dir.path().display().to_string())
                && suggested.contains("export-"),
            "{suggested}"
        );
        // An unknown format is refused where the UI's request is read, naming the formats.
        let xls = serde_json::from_value::<ExportRequest>(serde_json::json!({
            "format": "xls", "forms": [], "site": null, "include_audit": false, "folder": "x"
        }))
        .unwrap_err();
        assert!(xls.to_string().contains("odm"), "{xls}");
        let done = app.export(request("csv", &out)).unwrap();
        assert_eq!(done.subjects, 1);
        assert!(done.files.iter().any(|f| f.ends_with("dictionary.csv")));
        let done = app.export(request("odm", &out)).unwrap();
        assert!(done.files[0].ends_with(".xml"));
        // The earlier exports are in the audit trail a later one writes.
        let again = dir.path().join("again");
        app.export(request("csv", &again)).unwrap();
        let audit = std::fs::read_to_string(again.join("audit_trail.csv")).unwrap();
        assert_eq!(audit.matches("data.export").count(), 2, "{audit}");
        assert!(
            audit.contains("data.export") && audit.contains("zhou"),
            "{audit}"
        );
    }
}
