//! A nurse imports a laboratory file (issue 22): records the subject's hospital record number,
//! reads a FHIR bundle, accepts two values, rejects one, leaves one for later, and finds the
//! accepted values on the daily log with their provenance in the item's history.

use crate::driver::Driver;
use crate::harness::desktop;
use crate::seeds::oversight_site;
use crate::steps::login;

fn observation(id: &str, loinc: &str, value: &str, unit: &str, at: &str) -> String {
    format!(
        r#"{{"resource": {{"resourceType": "Observation", "id": "{id}", "status": "final",
        "code": {{"coding": [{{"system": "http://loinc.org", "code": "{loinc}"}}], "text": "{id}"}},
        "subject": {{"identifier": {{"value": "H-5501"}}}},
        "effectiveDateTime": "{at}",
        "valueQuantity": {{"value": {value}, "unit": "{unit}"}}}}}}"#
    )
}

#[test]
pub(crate) fn a_nurse_imports_laboratory_results_accepts_some_and_rejects_one() {
    let data = tempfile::tempdir().expect("temp folder");
    oversight_site(&data.path().join("ward.ecrf"));
    // ECMO started three days ago (day 0); day 2 is the day before yesterday + 1.
    let day2 = (chrono::Local::now().date_naive() - chrono::Duration::days(1)).format("%Y-%m-%d");
    let at = |hour: &str| format!("{day2}T{hour}:00+08:00");
    let entries = [
        observation("lac-a", "2524-7", "2.1", "mmol/L", &at("08:00")),
        observation("lac-b", "2524-7", "30", "mg/dL", &at("14:00")),
        observation("ph-a", "2744-1", "7.32", "[pH]", &at("08:00")),
        observation("cr-a", "2160-0", "1.1", "mg/dL", &at("08:00")),
        observation("plt-a", "777-3", "150", "10*9/L", &at("08:00")),
    ];
    let file = data.path().join("labs.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"resourceType": "Bundle", "type": "collection", "entry": [{}]}}"#,
            entries.join(",")
        ),
    )
    .expect("write the bundle");

    let desk = desktop(data.path());
    let d = Driver::start(&desk);
    login(&d, "li", "li-password-1");
    d.click("#nav-lab");

    // The identification log: the subject's record number, kept on this laptop.
    d.type_in("#mrn-subject", "01-0001");
    d.type_in("#mrn-value", "H-5501");
    d.click("#mrn-save");
    d.wait_text("#mrn-table", &["01-0001", "H-5501"]);

    // Read the file: four values to decide on day 2, lactate the worst of two.
    d.set("#lab-path", file.to_str().expect("a UTF-8 path"));
    d.click("#lab-read");
    d.wait_text(
        "#lab-summary",
        &["5 results read", "4 values to decide", "0 not imported"],
    );
    let table = d.wait_text(
        "#lab-candidates",
        &[
            "DLY#2",
            "3.3",
            "30 mg/dL",
            "worst of 2",
            "97",
            "1.1 mg/dL",
            "7.32",
        ],
    );
    assert!(table.contains("new"), "{table}");
    d.screenshot("40-lab-preview");

    let choose = |item: &str, decision: &str| {
        d.pick(&format!(
            "#lab-candidates tr[data-item='{item}'] input[value='{decision}']"
        ));
    };
    choose("LACTATE", "accept");
    choose("CREAT", "accept");
    choose("PH", "reject");
    d.click("#lab-save");
    d.wait_text(
        "#lab-notice",
        &["Saved 2", "rejected 1", "1 left for later"],
    );
    let after = d.wait_text("#lab-candidates", &["already imported", "rejected before"]);
    assert!(
        after.contains("new"),
        "the platelets stay to decide: {after}"
    );
    d.screenshot("41-lab-saved");

    // On the daily log: the values, and where they came from in the history.
    d.click("#nav-subjects");
    d.click("button[data-subject='01-0001']");
    d.click("button[data-key='DLY#2']");
    assert_eq!(d.value("#f-LACTATE"), "3.3");
    assert_eq!(d.value("#f-CREAT"), "97");
    assert_eq!(d.value("#f-PH"), "", "the rejected pH was saved");
    d.click("#h-LACTATE");
    d.wait_text(
        "#history",
        &[
            "Imported from",
            "laboratory file (fhir",
            "result lac-b",
            "30 mg/dL",
        ],
    );
    d.screenshot("42-lab-history");
    d.quit();
}
