//! The study definition as the UI draws forms from it: texts in both languages, items, sections, forms.

use ecrf_core::study::Repeat;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A text in both languages.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
pub struct Txt {
    /// English.
    pub en: String,
    /// Chinese.
    pub zh: String,
}

/// One answer of a choice item.
#[derive(Debug, Clone, Serialize, TS)]
pub struct CodeDto {
    /// Stored code.
    pub code: String,
    /// Label.
    pub label: Txt,
}

/// An inclusive range, as exact decimal text.
#[derive(Debug, Clone, Serialize, TS)]
pub struct RangeDto {
    /// Lowest.
    pub min: String,
    /// Highest.
    pub max: String,
}

/// The kinds of answer, as the UI draws them.
#[derive(Debug, Clone, Copy, Serialize, TS, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// Whole number.
    Integer,
    /// Decimal number.
    Decimal,
    /// Date.
    Date,
    /// Date-time with offset.
    DateTime,
    /// One of a list.
    Choice,
    /// Several of a list.
    MultiChoice,
    /// Free text.
    Text,
}

/// One item of a form.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ItemDto {
    /// Id.
    pub id: String,
    /// Section id.
    pub section: String,
    /// Label.
    pub label: Txt,
    /// Help.
    pub help: Option<Txt>,
    /// Kind of answer.
    pub kind: ItemKind,
    /// Unit.
    pub unit: Option<String>,
    /// Possible range.
    pub hard: Option<RangeDto>,
    /// Usual range.
    pub soft: Option<RangeDto>,
    /// Digits after the point.
    pub decimals: Option<u32>,
    /// Answers (choices, yes/no).
    pub codes: Vec<CodeDto>,
    /// Longest text.
    pub max_length: u32,
    /// Needed for completeness.
    pub required: bool,
    /// Missing-data codes allowed (`ND`, `UNK`, `NA`).
    pub missing: Vec<String>,
    /// Asked only under a condition on another answer: hidden until
    /// [`crate::App::unasked_items`] says it is asked (the UI never evaluates the condition).
    pub conditional: bool,
    /// Computed by the app.
    pub derived: bool,
}

/// A titled group of items.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SectionDto {
    /// Id.
    pub id: String,
    /// Title.
    pub label: Txt,
}

/// One form of the study.
#[derive(Debug, Clone, Serialize, TS)]
pub struct FormDto {
    /// Id.
    pub id: String,
    /// Name.
    pub name: Txt,
    /// When due, in words.
    pub when: Option<Txt>,
    /// How often it is filled in.
    pub repeat: Repeat,
    /// Highest repeat number.
    pub max_repeats: u32,
    /// Written by the app, not typed.
    pub system: bool,
    /// Sections.
    pub sections: Vec<SectionDto>,
    /// Items.
    pub items: Vec<ItemDto>,
}

/// The study definition as the UI draws it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct StudyDto {
    /// Study id.
    pub id: String,
    /// Definition version.
    pub version: String,
    /// Registry number.
    pub registry: String,
    /// Title.
    pub title: Txt,
    /// Forms in schedule order.
    pub forms: Vec<FormDto>,
    /// Missing-data codes with their labels.
    pub missing_codes: Vec<CodeDto>,
    /// Why nothing new may be entered, when the version in force at the site cannot be used
    /// by this app (too old): shown on every page.
    pub blocked: Option<String>,
}

/// A form instance's own definition: the version it was (or will be) entered under.
#[derive(Debug, Clone, Serialize, TS)]
pub struct FormVersionDto {
    /// The definition version.
    pub version: String,
    /// The form as that version defines it.
    pub form: FormDto,
}
