//! `ecrf-pdf`: printed CRFs, drawn from the same study definition as the screens.
//!
//! - [`Printer::blank_book`] / [`Printer::blank_form`]: every form with its items, units, ranges,
//!   tick boxes for code lists and date boxes, to fill in by hand (paper fallback);
//! - [`Printer::subject`]: a subject's filled CRF (values, units, missing-data codes, confirmed
//!   warnings) with an audit appendix (every change: who, when, old → new, why);
//! - [`Printer::screening_log`]: the site's screening log with its CONSORT counts;
//! - [`font`]: the CJK font from a Debian package, measuring and glyph checks;
//! - `layout`: pages, running header and footer, wrapping, repeated table headers.
//!
//! Every page carries the trial and registry number, site, subject, form and definition version,
//! "page X of Y" and when and by whom it was printed; every form ends with a signature block.
//! Signatures are not stored yet (a later issue): the block is empty, to sign by hand.
//!
//! Invariants: the PDF embeds one font, subset to the glyphs used, so text stays extractable
//! (`pdftotext`) and files stay small; the creation date is the printing time; nothing here
//! writes to the store (printing reads projections and the audit trail only). The app's Print
//! buttons are one call each: `Printer::new()?.subject(&store, id, &opts)?.write_to(path)`.

#![deny(missing_docs)]

pub mod font;
mod layout;
mod words;

mod blank;
mod filled;
mod screening;

pub use screening::{ScreenedRow, ScreeningLog, ScreeningStatus, SiteCounts};

use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, FixedOffset, Local, Timelike};
use ecrf_core::Study;
use ecrf_log::Casebook;
use printpdf::{PdfDocument, PdfPage, PdfSaveOptions};

pub use font::Fonts;

use crate::layout::{Doc, Running};
use crate::words::words;

/// What can go wrong when printing.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// No usable font file was found.
    #[error(
        "no Chinese font found (tried {tried}); install one (Debian: fonts-noto-cjk or \
         fonts-wqy-microhei, which scripts/setup.sh installs; Windows: Microsoft YaHei or SimSun, \
         part of Chinese Windows), or set ECRF_CJK_FONT=PATH[#FACE]"
    )]
    NoFont {
        /// The paths tried, with their Debian packages.
        tried: String,
    },
    /// A font file could not be read or is unsuitable.
    #[error("font {path}: {message}")]
    Font {
        /// The font file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The study has no such form.
    #[error("there is no form {0} in this study")]
    NoForm(String),
    /// Writing the PDF file failed.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Who prints, when, in which language.
#[derive(Debug, Clone)]
pub struct PrintOptions {
    /// `en` or `zh`: labels, code labels and fixed words.
    pub lang: String,
    /// Who prints (shown on every page and stored as the PDF author).
    pub printed_by: String,
    /// When (local time with offset; shown on every page and as the PDF creation date).
    pub printed_at: DateTime<FixedOffset>,
    /// Site code for the running header of a blank printout (a blank to fill in if none).
    pub site: Option<String>,
}

impl PrintOptions {
    /// Printing now, by `printed_by`, in `lang`.
    pub fn now(lang: &str, printed_by: &str) -> Self {
        PrintOptions {
            lang: lang.to_string(),
            printed_by: printed_by.to_string(),
            printed_at: Local::now().fixed_offset(),
            site: None,
        }
    }
}

/// A finished PDF.
#[derive(Debug, Clone)]
pub struct Printed {
    /// The PDF file's bytes.
    pub bytes: Vec<u8>,
    /// Number of pages.
    pub pages: usize,
    /// Characters of the data the font could not draw (printed as `?`).
    pub missing_glyphs: Vec<char>,
}

impl Printed {
    /// Writes the PDF to `path` (through a temporary file beside it, then renamed).
    pub fn write_to(&self, path: &Path) -> Result<(), PdfError> {
        let err = |e: std::io::Error| PdfError::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".part");
        let tmp = PathBuf::from(tmp);
        // A failed write leaves no partial temporary file behind.
        let written = std::fs::write(&tmp, &self.bytes).and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(err)
    }
}

/// Prints CRFs with one loaded font (load once, print many).
#[derive(Debug)]
pub struct Printer {
    fonts: Fonts,
}

impl Printer {
    /// A printer with the font found by [`Fonts::find`].
    pub fn new() -> Result<Printer, PdfError> {
        Ok(Printer {
            fonts: Fonts::find()?,
        })
    }

    /// A printer with a given font.
    pub fn with_fonts(fonts: Fonts) -> Printer {
        Printer { fonts }
    }

    /// The font in use.
    pub fn fonts(&self) -> &Fonts {
        &self.fonts
    }

    /// The blank CRF book: a cover page, then every form of the study in schedule order.
    pub fn blank_book(&self, study: &Study, opts: &PrintOptions) -> Result<Printed, PdfError> {
        let w = words(&opts.lang);
        let title = format!("{} — {}", study.id, w.blank_book);
        self.render(study, opts, &title, "____", |doc| {
            blank::cover(doc, study, &opts.lang);
            for form in &study.forms {
                blank::form(doc, study, form, &opts.lang);
            }
            Ok(())
        })
    }

    /// One blank form.
    pub fn blank_form(
        &self,
        study: &Study,
        form_id: &str,
        opts: &PrintOptions,
    ) -> Result<Printed, PdfError> {
        let form = study
            .form(form_id)
            .ok_or_else(|| PdfError::NoForm(form_id.to_string()))?;
        let title = format!("{} — {}", study.id, form.name.get(&opts.lang));
        self.render(study, opts, &title, "____", |doc| {
            blank::form(doc, study, form, &opts.lang);
            Ok(())
        })
    }

    /// A subject's filled CRF from its casebook: every form instance with data, then the
    /// audit appendix. The site printed is the casebook's.
    pub fn subject(
        &self,
        study: &Study,
        casebook: &Casebook,
        opts: &PrintOptions,
    ) -> Result<Printed, PdfError> {
        let w = words(&opts.lang);
        let mut opts = opts.clone();
        opts.site = Some(casebook.site.clone());
        let subject = casebook.subject.as_str();
        let title = format!("{} — {} {subject}", study.id, w.filled_crf);
        self.render(study, &opts, &title, subject, |doc| {
            filled::subject(doc, study, casebook, &opts.lang);
            Ok(())
        })
    }

    /// The site's screening log: the CONSORT counts, then every screened patient with
    /// eligibility, its reasons, consent and randomization.
    pub fn screening_log(
        &self,
        study: &Study,
        log: &ScreeningLog,
        opts: &PrintOptions,
    ) -> Result<Printed, PdfError> {
        let title = format!(
            "{} — {}",
            study.id,
            crate::words::screening_words(&opts.lang).title
        );
        self.render(study, opts, &title, "—", |doc| {
            screening::draw(doc, log, &opts.lang);
            Ok(())
        })
    }

    fn render(
        &self,
        study: &Study,
        opts: &PrintOptions,
        title: &str,
        subject: &str,
        draw: impl FnOnce(&mut Doc<'_>) -> Result<(), PdfError>,
    ) -> Result<Printed, PdfError> {
        let w = words(&opts.lang);
        let mut pdf = PdfDocument::new(title);
        let font_id = pdf.add_font(&self.fonts.font);
        let when = opts.printed_at.format("%Y-%m-%d %H:%M %:z").to_string();
        let running = Running {
            trial: format!("{} {}", study.id, study.registry),
            site: opts.site.clone().unwrap_or_else(|| "____".into()),
            subject: subject.to_string(),
            version: study.version.clone(),
            printed: (w.printed)(&when, &opts.printed_by),
        };
        let mut doc = Doc::new(&self.fonts, font_id, w, running);
        draw(&mut doc)?;
        let (pages, missing) = doc.finish();
        let n = pages.len();
        set_info(&mut pdf, title, opts);
        let bytes = save(&mut pdf, pages);
        Ok(Printed {
            bytes,
            pages: n,
            missing_glyphs: missing,
        })
    }
}

fn pdf_date(t: &DateTime<FixedOffset>) -> printpdf::OffsetDateTime {
    let off = t.offset().local_minus_utc();
    printpdf::OffsetDateTime::new_in_offset(
        printpdf::Date {
            year: t.year(),
            month: t.month() as u8,
            day: t.day() as u8,
        },
        printpdf::Time {
            hour: t.hour() as u8,
            minute: t.minute() as u8,
            second: t.second() as u8,
            millisecond: 0,
        },
        printpdf::Offset {
            hours: (off / 3600) as i8,
            minutes: ((off % 3600) / 60) as i8,
            seconds: 0,
            milliseconds: 0,
        },
    )
}

fn set_info(pdf: &mut PdfDocument, title: &str, opts: &PrintOptions) {
    let date = pdf_date(&opts.printed_at);
    let info = &mut pdf.metadata.info;
    info.creation_date = date;
    info.modification_date = date;
    info.metadata_date = date;
    info.document_title = title.to_string();
    info.author = opts.printed_by.clone();
    info.creator = "ecrf".into();
    info.producer = "ecrf-pdf (printpdf)".into();
}

fn save(pdf: &mut PdfDocument, pages: Vec<PdfPage>) -> Vec<u8> {
    let opts = PdfSaveOptions {
        subset_fonts: true,
        ..PdfSaveOptions::default()
    };
    pdf.with_pages(pages).save(&opts, &mut Vec::new())
}
