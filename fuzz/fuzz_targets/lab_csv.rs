//! Laboratory CSV exports as `ecrf lab import` reads them through a site's mapping: any bytes,
//! no panic; every result names its row.
#![no_main]
use std::collections::BTreeMap;
use std::sync::OnceLock;

use ecrf_lab::TableMapping;
use libfuzzer_sys::fuzz_target;

fn mapping() -> &'static TableMapping {
    static MAPPING: OnceLock<TableMapping> = OnceLock::new();
    MAPPING.get_or_init(|| TableMapping {
        patient: "住院号".into(),
        code: "code".into(),
        name: Some("name".into()),
        value: "结果".into(),
        unit: "unit".into(),
        taken: "time".into(),
        id: None,
        time_format: None,
        codes: BTreeMap::from([("LAC".to_string(), "2524-7".to_string())]),
        sheet: None,
    })
}

fuzz_target!(|bytes: &[u8]| {
    if let Ok(report) = ecrf_lab::table::read_csv(bytes, mapping()) {
        for r in &report.results {
            assert!(r.place.starts_with("row "));
        }
    }
});
