//! The words of the web pages in English and Chinese: each text is written beside its
//! translation where it is used (`tr(lang, "Screened", "筛选")`), so neither can be forgotten.
//! Study texts (form and item names, code labels) come from the study definition.

pub use ecrf_core::Lang;

/// The text of `lang`.
pub fn tr(lang: Lang, en: &'static str, zh: &'static str) -> &'static str {
    match lang {
        Lang::En => en,
        Lang::Zh => zh,
    }
}

/// A study text in `lang`.
pub fn study_text(lang: Lang, t: &ecrf_core::study::Text) -> &str {
    t.get(lang.code())
}
