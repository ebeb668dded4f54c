//! Hostile study definition files: the real files cut, edited, deeply nested and blown up. The
//! loader must never panic (nor overflow its stack); a refusal names the file.

use ecrf_core::Study;
use ecrf_core::trial::{FORM_FILES, STUDY_FILE};
use proptest::prelude::*;

fn cut(s: &str, at: usize) -> &str {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    &s[..at]
}

/// Loads the real definition with form file `which` replaced by `text`.
fn judge(which: usize, text: &str) {
    let mut forms: Vec<(&str, &str)> = FORM_FILES.to_vec();
    let which = which % forms.len();
    let name = forms[which].0;
    forms[which].1 = text;
    if let Err(e) = Study::from_sources(STUDY_FILE, &forms) {
        let msg = e.to_string();
        assert!(!msg.is_empty());
        assert!(
            msg.contains(name) || msg.contains("study"),
            "refusal names no file: {msg}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn cut_form_files_are_refused_cleanly(which in 0usize..12, at in 0usize..40_000) {
        let text = FORM_FILES[which % FORM_FILES.len()].1;
        judge(which, cut(text, at));
    }

    #[test]
    fn edited_form_files_never_panic(which in 0usize..12, at in 0usize..40_000,
                                     with in "[\\[\\]{}=\"'#,.0-9a-z\n -]{1,8}") {
        let text = FORM_FILES[which % FORM_FILES.len()].1;
        let head = cut(text, at);
        let rest = &text[head.len()..];
        let mut chars = rest.chars();
        chars.next();
        judge(which, &format!("{head}{with}{}", chars.as_str()));
    }

    #[test]
    fn random_text_as_a_form_file_never_panics(which in 0usize..12, text in ".{0,300}") {
        judge(which, &text);
    }

    #[test]
    fn random_text_as_the_study_file_never_panics(text in ".{0,300}") {
        let _ = Study::from_sources(("study/study.toml", &text), FORM_FILES);
    }
}

#[test]
fn deeply_nested_and_huge_files_are_refused_without_overflowing() {
    let deep_array = format!("id = {}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_table = format!("id = {}1{}", "{a = ".repeat(50_000), "}".repeat(50_000));
    let huge_label = format!(
        "{}\n[[items]]\nid = \"X\"\nlabel = {{ en = \"{}\", zh = \"x\" }}\n",
        FORM_FILES[6].1,
        "A".repeat(5 << 20)
    );
    let dotted = format!("{} = 1", vec!["a"; 50_000].join("."));
    for text in [deep_array, deep_table, huge_label, dotted] {
        // Run on a thread with an ordinary (2 MiB) stack: a desktop thread is no bigger.
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || judge(6, &text))
            .unwrap();
        handle
            .join()
            .expect("the loader panicked or overflowed its stack");
    }
}
