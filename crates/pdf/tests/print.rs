//! Real PDFs from a real store, read back with poppler (`pdftotext`, `pdftoppm`): every form
//! title and item label of the blank book in both languages, the entered values and audit
//! entries of a filled CRF, the running header and footer on every page, every page rendering,
//! and no word off the page or on top of another.

use std::path::Path;
use std::process::Command;

use ecrf_core::FormKey;
use ecrf_pdf::{PrintOptions, Printed, Printer};
use ecrf_store::{SaveOptions, Store};
use ecrf_testkit::{NURSE, Site, User, study};

/// The nurse whose entries the filled CRF prints.
const LI: User = User {
    username: "li",
    name: "李娜 Li Na",
    ..NURSE
};

fn printer() -> Printer {
    Printer::new().expect("a CJK font (scripts/setup.sh installs fonts-noto-cjk)")
}

fn tool(name: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("{name} not runnable ({e}); scripts/setup.sh installs poppler-utils")
    });
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Text of a PDF in drawing order, pages separated by form feeds.
fn pdf_text(pdf: &Path) -> String {
    let p = pdf.to_str().unwrap();
    String::from_utf8(tool("pdftotext", &["-raw", "-enc", "UTF-8", p, "-"])).unwrap()
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn write(dir: &Path, name: &str, printed: &Printed) -> std::path::PathBuf {
    let path = dir.join(name);
    printed.write_to(&path).unwrap();
    assert!(printed.bytes.starts_with(b"%PDF-"));
    path
}

/// Every page renders (pdftoppm writes one image per page) and pdfinfo agrees on the count.
fn renders_every_page(pdf: &Path, pages: usize) {
    let info = String::from_utf8(tool("pdfinfo", &[pdf.to_str().unwrap()])).unwrap();
    assert!(
        info.lines()
            .any(|l| l.starts_with("Pages:") && l.trim_end().ends_with(&format!(" {pages}"))),
        "{info}"
    );
    assert!(!info.contains("1970"), "creation date must be set: {info}");
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("p");
    tool(
        "pdftoppm",
        &[
            "-r",
            "20",
            "-png",
            pdf.to_str().unwrap(),
            prefix.to_str().unwrap(),
        ],
    );
    let n = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(n, pages, "pdftoppm rendered {n} of {pages} pages");
}

/// Word boxes from `pdftotext -bbox`: (page, xmin, ymin, xmax, ymax, word).
fn word_boxes(pdf: &Path) -> Vec<(usize, f32, f32, f32, f32, String)> {
    let html =
        String::from_utf8(tool("pdftotext", &["-bbox", pdf.to_str().unwrap(), "-"])).unwrap();
    let mut page = 0;
    let mut out = Vec::new();
    let attr = |line: &str, name: &str| -> f32 {
        let start = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        let rest = &line[start..];
        rest[..rest.find('"').unwrap()].parse().unwrap()
    };
    for line in html.lines() {
        let line = line.trim();
        if line.starts_with("<page") {
            page += 1;
        } else if line.starts_with("<word") {
            let word =
                line[line.find('>').unwrap() + 1..line.rfind("</word>").unwrap()].to_string();
            out.push((
                page,
                attr(line, "xMin"),
                attr(line, "yMin"),
                attr(line, "xMax"),
                attr(line, "yMax"),
                word,
            ));
        }
    }
    out
}

/// No word runs off the page (inside 30 pt of every edge) and no two words overlap.
fn nothing_off_page_or_overlapping(pdf: &Path) {
    let boxes = word_boxes(pdf);
    assert!(!boxes.is_empty());
    for (p, x0, y0, x1, y1, w) in &boxes {
        assert!(
            *x0 >= 30.0 && *x1 <= 595.3 - 30.0 && *y0 >= 10.0 && *y1 <= 841.9 - 10.0,
            "page {p}: {w:?} at ({x0}, {y0})–({x1}, {y1}) runs off the page"
        );
    }
    let max_page = boxes.iter().map(|b| b.0).max().unwrap_or(0);
    for page in 1..=max_page {
        let on: Vec<_> = boxes.iter().filter(|b| b.0 == page).collect();
        for (i, a) in on.iter().enumerate() {
            for b in &on[i + 1..] {
                // Shrink by a little: glyph boxes of neighbours on a line may touch.
                let overlap_x = a.3.min(b.3) - a.1.max(b.1);
                let overlap_y = a.4.min(b.4) - a.2.max(b.2);
                assert!(
                    overlap_x <= 1.0 || overlap_y <= 2.5,
                    "page {page}: {:?} overlaps {:?} ({a:?} / {b:?})",
                    a.5,
                    b.5
                );
            }
        }
    }
}

/// The running header and footer on every page.
fn every_page_has_header(text: &str, pages: usize, lang: &str, site: &str, subject: &str) {
    let parts: Vec<&str> = text
        .split('\u{c}')
        .filter(|p| !p.trim().is_empty())
        .collect();
    assert_eq!(parts.len(), pages);
    for (i, page) in parts.iter().enumerate() {
        let flat = squash(page);
        let page_of = if lang == "zh" {
            format!("第{}页，共{pages}页", i + 1)
        } else {
            format!("page{}of{pages}", i + 1)
        };
        let version = study().version.clone();
        for needle in [
            "EARLY-IABPNCT06872021",
            &page_of,
            &squash(site),
            subject,
            &version,
        ] {
            assert!(
                flat.contains(needle),
                "page {}: no {needle:?} in\n{page}",
                i + 1
            );
        }
        let printed = if lang == "zh" {
            "打印时间"
        } else {
            "Printed"
        };
        assert!(flat.contains(printed), "page {}: no printing stamp", i + 1);
    }
}

#[test]
fn blank_book_has_every_form_and_item_in_both_languages() {
    let study = study();
    let printer = printer();
    let dir = tempfile::tempdir().unwrap();
    for lang in ["en", "zh"] {
        let opts = PrintOptions::now(lang, "tester");
        let printed = printer.blank_book(&study, &opts).unwrap();
        assert!(
            printed.missing_glyphs.is_empty(),
            "{:?}",
            printed.missing_glyphs
        );
        let path = write(dir.path(), &format!("blank-{lang}.pdf"), &printed);
        let text = pdf_text(&path);
        let flat = squash(&text);
        let mut needles = vec![study.title.get(lang).to_string()];
        for form in &study.forms {
            needles.push(form.name.get(lang).to_string());
            for section in &form.sections {
                needles.push(section.label.get(lang).to_string());
            }
            for item in &form.items {
                needles.push(item.label.get(lang).to_string());
                if let Some(u) = &item.unit {
                    needles.push(u.clone());
                }
                if item.derived.is_none() {
                    for code in study.codes_for(item) {
                        needles.push(code.label.get(lang).to_string());
                    }
                }
            }
        }
        // Definition 1.1.0 (issue 20): the new items and forms, named here so a definition that
        // lost them fails even though the loop below reads the definition itself.
        let added: &[(&str, &str)] = &[
            ("Pulsatile arterial waveform", "动脉波形有搏动"),
            ("LV end-diastolic diameter", "左心室舒张末期内径"),
            ("FdO2 (sweep gas O2)", "FdO2（氧合器气流氧浓度）"),
            ("ECMO configuration after the event", "变更后的ECMO插管方式"),
            ("Withdrawal of life-sustaining therapy", "撤除生命支持治疗"),
            ("Date it became serious", "达到严重标准的日期"),
            ("SAE report date", "严重不良事件报告日期"),
            ("Relation to ECMO", "与ECMO的相关性"),
            ("Protocol deviation", "方案偏离"),
            ("How consent was obtained", "知情同意方式"),
            ("Outcome of deferred consent", "延迟知情同意结果"),
            ("Patient's own consent", "患者本人知情同意"),
            ("Takotsubo syndrome", "应激性心肌病（Takotsubo综合征）"),
            ("Moderate-to-severe (exclusion 1)", "中重度（排除标准1）"),
            ("Veno-arterio-venous (V-AV)", "静脉-动脉-静脉（V-AV）"),
        ];
        for (en, zh) in added {
            let n = if lang == "zh" { zh } else { en };
            assert!(
                needles.iter().any(|x| x == n),
                "{lang}: {n:?} is not in the definition"
            );
        }
        for n in &needles {
            // As drawn: superscripts the font lacks are written plainly (10⁹ → 10^9).
            let drawn = printer.fonts().printable(n, &mut Vec::new());
            assert!(
                flat.contains(&squash(&drawn)),
                "{lang}: {n:?} not in the blank book"
            );
        }
        assert!(printed.pages > study.forms.len());
        every_page_has_header(&text, printed.pages, lang, "____", "");
        renders_every_page(&path, printed.pages);
        nothing_off_page_or_overlapping(&path);
    }
}

#[test]
fn blank_form_prints_one_form_and_unknown_forms_fail_clearly() {
    let study = study();
    let printer = printer();
    let opts = PrintOptions::now("en", "tester");
    let dly = printer.blank_form(&study, "DLY", &opts).unwrap();
    let book = printer.blank_book(&study, &opts).unwrap();
    assert!(dly.pages < book.pages);
    let err = printer.blank_form(&study, "NOPE", &opts).unwrap_err();
    assert!(err.to_string().contains("NOPE"), "{err}");
}

/// A store with a nurse and subject 01-0001: ECMO, two daily logs, a change with a reason, a
/// missing-data code and a confirmed warning.
fn filled_store(dir: &Path) -> (Store, String) {
    let path = dir.join("ward.ecrf");
    let mut store = Site::new("07").with(LI).create_as(&path, &LI);
    let subject = store.new_subject().unwrap();
    let key = |f: &str, r: Option<u32>| FormKey {
        form: f.into(),
        repeat: r,
    };
    let plain = SaveOptions::default();
    store
        .save(
            &subject,
            &key("ECMO", None),
            &[
                ("START_DT", "2026-03-01T02:40+08:00"),
                ("PLACE", "CATH_LAB"),
                ("FLOW", "3.5"),
                ("ART_FR", "17"),
            ],
            &plain,
        )
        .unwrap();
    // IABP 6 h 10 min after ECMO start: the derived delay is printed, never stored.
    store
        .save(
            &subject,
            &key("IABP", None),
            &[("INSERTED", "Y"), ("INSERT_DT", "2026-03-01T08:50+08:00")],
            &plain,
        )
        .unwrap();
    for day in [1, 2] {
        store
            .save(
                &subject,
                &key("DLY", Some(day)),
                &[
                    ("DATE", &format!("2026-03-0{}", day + 1)),
                    ("ECMO_STATUS", "RUNNING"),
                    ("MAP", "68"),
                    ("LACTATE", "4.3"),
                    ("CVP", "@ND"),
                ],
                &plain,
            )
            .unwrap();
    }
    store
        .save(
            &subject,
            &key("DLY", Some(1)),
            &[("MAP", "72")],
            &SaveOptions {
                reason: Some("transcription error 转录错误".into()),
                confirm_warnings: false,
            },
        )
        .unwrap();
    store
        .save(
            &subject,
            &key("DLY", Some(2)),
            &[("HR", "210")],
            &SaveOptions {
                reason: None,
                confirm_warnings: true,
            },
        )
        .unwrap();
    (store, subject)
}

#[test]
fn filled_crf_has_values_warnings_and_audit_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (store, subject) = filled_store(dir.path());
    let printer = printer();
    for lang in ["en", "zh"] {
        let opts = PrintOptions::now(lang, "li (李娜 Li Na)");
        let casebook = store.casebook(&subject).unwrap();
        let printed = printer.subject(store.study(), &casebook, &opts).unwrap();
        assert!(
            printed.missing_glyphs.is_empty(),
            "{:?}",
            printed.missing_glyphs
        );
        let path = write(dir.path(), &format!("subject-{lang}.pdf"), &printed);
        let text = pdf_text(&path);
        let flat = squash(&text);
        assert!(flat.contains("370min"), "the derived IABP delay is printed");
        let (running, nd, warn, day1) = if lang == "zh" {
            ("运行中", "@ND未做", "警告已确认", "每日记录（第1天）")
        } else {
            ("Running", "@NDNotdone", "warningconfirmed", "Dailylog,day1")
        };
        for needle in [
            // Values with units and code labels.
            "2026-03-01T02:40+08:00",
            "3.5L/min",
            "72mmHg",
            "4.3mmol/L",
            "210/min",
            running,
            nd,
            warn,
            day1,
            // Audit entries: old → new, reason, who.
            "MAP",
            "68mmHg→72mmHg",
            "∅→68mmHg",
            "transcriptionerror转录错误",
            "li(nurse)",
            "li=李娜LiNa",
            "2026-03-02",
        ] {
            assert!(flat.contains(needle), "{lang}: {needle:?} not in\n{text}");
        }
        // Every change of the audit trail is printed, with its sequence number.
        let audit = store.audit_log(&subject).unwrap();
        assert!(audit.len() > 10);
        let title = if lang == "zh" {
            "稽查轨迹 — "
        } else {
            "Audit trail — "
        };
        let appendix = &text[text.find(title).unwrap()..];
        for c in &audit {
            assert!(
                appendix
                    .lines()
                    .any(|l| l.starts_with(&format!("{} ", c.seq))),
                "{lang}: change #{} not in the appendix",
                c.seq
            );
        }
        every_page_has_header(&text, printed.pages, lang, "07", &subject);
        renders_every_page(&path, printed.pages);
        nothing_off_page_or_overlapping(&path);
    }
}

#[test]
fn a_thirty_day_subject_breaks_tables_across_pages_with_their_header() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, subject) = filled_store(dir.path());
    for day in 3..=30u32 {
        let date = format!("2026-03-{:02}", day + 1);
        store
            .save(
                &subject,
                &FormKey {
                    form: "DLY".into(),
                    repeat: Some(day),
                },
                &[
                    ("DATE", date.as_str()),
                    ("ECMO_STATUS", "RUNNING"),
                    ("MAP", "70"),
                    ("SBP", "95"),
                    ("DBP", "60"),
                    ("HR", "88"),
                ],
                &SaveOptions::default(),
            )
            .unwrap();
    }
    let printed = printer()
        .subject(
            store.study(),
            &store.casebook(&subject).unwrap(),
            &PrintOptions::now("en", "li"),
        )
        .unwrap();
    let path = write(dir.path(), "subject-30.pdf", &printed);
    let text = pdf_text(&path);
    let pages: Vec<&str> = text.split('\u{c}').collect();
    let audit_pages: Vec<&&str> = pages.iter().filter(|p| p.contains("Audit trail")).collect();
    assert!(audit_pages.len() >= 2, "the audit appendix spans pages");
    for p in audit_pages {
        assert!(
            squash(p).contains("Item:old→new"),
            "the table header repeats on every audit page:\n{p}"
        );
    }
    renders_every_page(&path, printed.pages);
}

#[test]
fn a_missing_font_is_a_clear_error() {
    let err = ecrf_pdf::Fonts::load(Path::new("/nonexistent/font.ttc"), 0).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/font.ttc"), "{err}");
    // A file that is not a font at all.
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.ttf");
    std::fs::write(&bogus, b"not a font").unwrap();
    let err = ecrf_pdf::Fonts::load(&bogus, 0).unwrap_err();
    assert!(err.to_string().contains("bogus.ttf"), "{err}");
}
