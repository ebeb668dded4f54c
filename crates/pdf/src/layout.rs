//! Page layout: A4 pages with a running header and footer, a cursor that moves down the page,
//! wrapped text, tick boxes, and tables whose header row is repeated on every page they cross.
//!
//! Owns everything about positions. Invariants: nothing is drawn below [`BOTTOM`] or above
//! [`TOP`] except the header and footer; every string drawn has gone through
//! [`Fonts::printable`] (no invisible boxes) and, when it could be long, through
//! [`Fonts::wrap`] with the width it is drawn in, so nothing runs off the page; "page X of Y"
//! is written when the document is finished, so Y is always the real page count.

use printpdf::{
    Color, FontId, Greyscale, Line, LinePoint, Mm, Op, PaintMode, PdfFontHandle, PdfPage, Point,
    Pt, Rect, TextItem,
};

use crate::font::Fonts;
use crate::words::Words;

/// A4 width in points.
pub const PAGE_W: f32 = 595.276;
/// A4 height in points.
pub const PAGE_H: f32 = 841.89;
/// Left margin.
pub const LEFT: f32 = 40.0;
/// Right edge of the writing area.
pub const RIGHT: f32 = PAGE_W - 40.0;
/// Top of the writing area (below the running header).
pub const TOP: f32 = PAGE_H - 78.0;
/// Bottom of the writing area (above the running footer).
pub const BOTTOM: f32 = 52.0;
/// Body text size.
pub const BODY: f32 = 9.0;
/// Small text size (ranges, notes, header, footer).
pub const SMALL: f32 = 7.5;

/// What the running header and footer say; `form` changes as forms follow each other.
#[derive(Debug, Clone)]
pub struct Running {
    /// Trial short name and registry number.
    pub trial: String,
    /// Site code (or a blank to fill in).
    pub site: String,
    /// Subject number (or a blank to fill in).
    pub subject: String,
    /// Study definition version.
    pub version: String,
    /// When and by whom it was printed.
    pub printed: String,
}

/// One column of a table: its title and width in points.
#[derive(Debug, Clone)]
pub struct Column {
    /// Title in the header row.
    pub title: String,
    /// Width in points.
    pub width: f32,
}

struct PageDraft {
    ops: Vec<Op>,
    form: String,
    /// The definition version of the form on this page, when not the document's.
    version: Option<String>,
}

/// A document being laid out.
pub struct Doc<'a> {
    pub(crate) fonts: &'a Fonts,
    font: FontId,
    pub(crate) words: &'static Words,
    running: Running,
    form: String,
    version: Option<String>,
    pages: Vec<PageDraft>,
    /// Baseline cursor: the top of the next thing to draw, in points from the bottom.
    pub(crate) y: f32,
    table: Option<Vec<Column>>,
    /// Characters replaced by `?` because the font has no glyph for them.
    pub(crate) missing: Vec<char>,
}

fn grey(level: f32) -> Color {
    Color::Greyscale(Greyscale {
        percent: level,
        icc_profile: None,
    })
}

fn pt(x: f32, y: f32) -> LinePoint {
    LinePoint {
        p: Point { x: Pt(x), y: Pt(y) },
        bezier: false,
    }
}

impl<'a> Doc<'a> {
    /// A document with no pages yet.
    pub fn new(fonts: &'a Fonts, font: FontId, words: &'static Words, running: Running) -> Self {
        Doc {
            fonts,
            font,
            words,
            running,
            form: String::new(),
            version: None,
            pages: Vec::new(),
            y: TOP,
            table: None,
            missing: Vec::new(),
        }
    }

    /// The definition version printed on the next pages (a form instance entered under an
    /// amendment); `None` = the document's.
    pub fn set_version(&mut self, version: Option<&str>) {
        self.version = version.map(str::to_string);
    }

    /// Starts a new page for `form` (shown in the running header).
    pub fn start_form(&mut self, form: &str) {
        self.form = form.to_string();
        self.table = None;
        self.new_page();
    }

    /// Changes the subject number in the running header from the next page on.
    pub fn set_subject(&mut self, subject: &str) {
        self.running.subject = subject.to_string();
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.new_page();
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last].ops
    }

    /// Opens a new page; a table in progress gets its header row again.
    pub fn new_page(&mut self) {
        self.pages.push(PageDraft {
            ops: Vec::with_capacity(256),
            form: self.form.clone(),
            version: self.version.clone(),
        });
        self.y = TOP;
        if let Some(cols) = self.table.clone() {
            self.header_row(&cols);
        }
    }

    /// Makes sure `h` points fit below the cursor, opening a new page if not.
    pub fn ensure(&mut self, h: f32) {
        if self.pages.is_empty() || self.y - h < BOTTOM {
            self.new_page();
        }
    }

    /// Draws one line of text with its baseline at `y` (no wrapping: callers measure first).
    pub fn text_at(&mut self, x: f32, y: f32, size: f32, text: &str) {
        let text = self.fonts.printable(text, &mut self.missing);
        if text.trim().is_empty() {
            return;
        }
        let font = PdfFontHandle::External(self.font.clone());
        let ops = self.ops();
        ops.push(Op::StartTextSection);
        ops.push(Op::SetFont {
            font,
            size: Pt(size),
        });
        ops.push(Op::SetTextCursor {
            pos: Point { x: Pt(x), y: Pt(y) },
        });
        ops.push(Op::ShowText {
            items: vec![TextItem::Text(text)],
        });
        ops.push(Op::EndTextSection);
    }

    /// Lines of `text` wrapped to `width` at `size`.
    pub fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let text = self.fonts.printable(text, &mut Vec::new());
        self.fonts.wrap(&text, size, width)
    }

    /// Width of `text` at `size`, as drawn.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        let text = self.fonts.printable(text, &mut Vec::new());
        self.fonts.width(&text, size)
    }

    /// Line height for a text size.
    pub fn lh(size: f32) -> f32 {
        size * 1.35
    }

    /// Writes wrapped text from the cursor down, breaking pages between lines.
    pub fn paragraph(&mut self, x: f32, width: f32, size: f32, text: &str) {
        for line in self.wrap(text, size, width) {
            self.ensure(Self::lh(size));
            self.y -= Self::lh(size);
            let y = self.y + size * 0.3;
            self.text_at(x, y, size, &line);
        }
    }

    /// A horizontal line.
    pub fn hline(&mut self, x1: f32, x2: f32, y: f32, thickness: f32) {
        let ops = self.ops();
        ops.push(Op::SetOutlineThickness { pt: Pt(thickness) });
        ops.push(Op::DrawLine {
            line: Line {
                points: vec![pt(x1, y), pt(x2, y)],
                is_closed: false,
            },
        });
    }

    /// An empty box (tick box, digit box), lower-left corner at (`x`, `y`).
    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32) {
        self.ops().push(Op::SetOutlineThickness { pt: Pt(0.6) });
        self.rectangle(x, y, w, h, PaintMode::Stroke);
    }

    /// A light grey band (section titles, table headers), lower-left corner at (`x`, `y`).
    pub fn band(&mut self, x: f32, y: f32, w: f32, h: f32) {
        self.ops().push(Op::SetFillColor { col: grey(0.88) });
        self.rectangle(x, y, w, h, PaintMode::Fill);
        self.ops().push(Op::SetFillColor { col: grey(0.0) });
    }

    fn rectangle(&mut self, x: f32, y: f32, w: f32, h: f32, mode: PaintMode) {
        self.ops().push(Op::DrawRectangle {
            rectangle: Rect {
                x: Pt(x),
                y: Pt(y),
                width: Pt(w),
                height: Pt(h),
                // printpdf draws nothing for a rectangle without a paint mode.
                mode: Some(mode),
                winding_order: None,
            },
        });
    }

    /// A form title: large text, wrapped, with a rule under it.
    pub fn title(&mut self, text: &str, sub: &str) {
        let size = 14.0;
        for line in self.wrap(text, size, RIGHT - LEFT) {
            self.ensure(Self::lh(size));
            self.y -= Self::lh(size);
            let y = self.y + 4.0;
            self.text_at(LEFT, y, size, &line);
        }
        if !sub.is_empty() {
            self.paragraph(LEFT, RIGHT - LEFT, SMALL + 0.5, sub);
        }
        self.y -= 3.0;
        let y = self.y;
        self.hline(LEFT, RIGHT, y, 1.0);
        self.y -= 6.0;
    }

    /// A section title on a grey band; keeps `keep` points below it on the same page.
    pub fn section(&mut self, text: &str, keep: f32) {
        let lines = self.wrap(text, BODY + 0.5, RIGHT - LEFT - 8.0);
        let h = lines.len() as f32 * Self::lh(BODY + 0.5) + 4.0;
        self.ensure(h + keep + 4.0);
        self.y -= 4.0;
        let top = self.y;
        self.band(LEFT, top - h, RIGHT - LEFT, h);
        for (i, line) in lines.iter().enumerate() {
            let y = top - 2.0 - (i as f32 + 1.0) * Self::lh(BODY + 0.5) + 2.5;
            self.text_at(LEFT + 4.0, y, BODY + 0.5, line);
        }
        self.y = top - h - 2.0;
    }

    /// Starts a table: draws its header row now and again at the top of every new page.
    pub fn table_start(&mut self, cols: Vec<Column>) {
        self.ensure(40.0);
        self.header_row(&cols);
        self.table = Some(cols);
    }

    /// Ends the table in progress: no more repeated header rows.
    pub fn table_end(&mut self) {
        self.table = None;
        self.y -= 6.0;
    }

    fn header_row(&mut self, cols: &[Column]) {
        let wrapped: Vec<Vec<String>> = cols
            .iter()
            .map(|c| self.wrap(&c.title, SMALL, c.width - 4.0))
            .collect();
        let n = wrapped.iter().map(Vec::len).max().unwrap_or(1);
        let h = n as f32 * Self::lh(SMALL) + 4.0;
        let top = self.y;
        self.band(LEFT, top - h, RIGHT - LEFT, h);
        let mut x = LEFT;
        for (c, lines) in cols.iter().zip(&wrapped) {
            for (i, line) in lines.iter().enumerate() {
                let y = top - 2.0 - (i as f32 + 1.0) * Self::lh(SMALL) + 2.0;
                self.text_at(x + 2.0, y, SMALL, line);
            }
            x += c.width;
        }
        self.y = top - h;
    }

    /// One table row: each cell wrapped in its column; the row moves to the next page whole.
    pub fn table_row(&mut self, cells: &[String], size: f32) {
        let Some(cols) = self.table.clone() else {
            return;
        };
        let wrapped: Vec<Vec<String>> = cols
            .iter()
            .zip(cells)
            .map(|(c, t)| self.wrap(t, size, c.width - 4.0))
            .collect();
        let n = wrapped.iter().map(Vec::len).max().unwrap_or(1);
        let h = n as f32 * Self::lh(size) + 3.0;
        self.ensure(h);
        let top = self.y;
        let mut x = LEFT;
        for (c, lines) in cols.iter().zip(&wrapped) {
            for (i, line) in lines.iter().enumerate() {
                let y = top - 1.5 - (i as f32 + 1.0) * Self::lh(size) + size * 0.3;
                self.text_at(x + 2.0, y, size, line);
            }
            x += c.width;
        }
        self.y = top - h;
        let y = self.y;
        self.hline(LEFT, RIGHT, y, 0.3);
    }

    /// A full-width row that groups the table rows below it (e.g. a form instance in the audit
    /// trail); moves to the next page together with at least one row after it.
    pub fn table_group(&mut self, text: &str) {
        let lines = self.wrap(text, BODY, RIGHT - LEFT - 6.0);
        let h = lines.len() as f32 * Self::lh(BODY) + 3.0;
        self.ensure(h + 2.0 * Self::lh(BODY) + 3.0);
        let top = self.y;
        for (i, line) in lines.iter().enumerate() {
            let y = top - 1.5 - (i as f32 + 1.0) * Self::lh(BODY) + BODY * 0.3;
            self.text_at(LEFT + 2.0, y, BODY, line);
        }
        self.y = top - h;
        let y = self.y;
        self.hline(LEFT, RIGHT, y, 0.6);
    }

    /// The signature block of a form: name, signature, date and meaning, to sign by hand.
    pub fn signature_block(&mut self, note: &str) {
        let w = self.words;
        let note_lines = self.wrap(note, SMALL, RIGHT - LEFT);
        let h = 70.0 + note_lines.len() as f32 * Self::lh(SMALL);
        self.ensure(h);
        self.y -= 8.0;
        let top = self.y;
        self.hline(LEFT, RIGHT, top, 0.8);
        self.text_at(LEFT, top - 12.0, BODY, w.signature_title);
        let mut y = top - 14.0;
        for line in &note_lines {
            y -= Self::lh(SMALL);
            self.text_at(LEFT, y + 1.5, SMALL, line);
        }
        // Two rows of labelled lines: name and signature, then date and meaning.
        let half = (RIGHT - LEFT) / 2.0;
        let rows = [[w.sig_name, w.sig_signature], [w.sig_date, w.sig_meaning]];
        for row in rows {
            y -= 20.0;
            for (i, label) in row.iter().enumerate() {
                let x = LEFT + i as f32 * half;
                let lw = self.width(label, BODY) + 4.0;
                self.text_at(x, y, BODY, label);
                self.hline(x + lw, x + half - 12.0, y - 1.5, 0.5);
            }
        }
        self.y = y - 8.0;
    }

    /// Finishes the document: running header and footer on every page, "page X of Y".
    pub fn finish(mut self) -> (Vec<PdfPage>, Vec<char>) {
        if self.pages.is_empty() {
            self.new_page();
        }
        let total = self.pages.len();
        let pages = std::mem::take(&mut self.pages);
        let mut out = Vec::with_capacity(total);
        for (i, page) in pages.into_iter().enumerate() {
            self.pages.push(PageDraft {
                ops: page.ops,
                form: page.form.clone(),
                version: page.version.clone(),
            });
            self.running_header(&page.form, page.version.as_deref(), i + 1, total);
            if let Some(done) = self.pages.pop() {
                out.push(PdfPage::new(Mm(210.0), Mm(297.0), done.ops));
            }
        }
        (out, self.missing)
    }

    fn running_header(&mut self, form: &str, version: Option<&str>, page: usize, total: usize) {
        let w = self.words;
        let r = self.running.clone();
        let top = PAGE_H - 30.0;
        let version = version.unwrap_or(&r.version);
        let left = format!("{}  ·  {} {}", r.trial, w.version, version);
        self.text_at(LEFT, top, SMALL + 0.5, &left);
        let right = format!("{} {}   {} {}", w.site, r.site, w.subject, r.subject);
        let rw = self.width(&right, BODY);
        self.text_at(RIGHT - rw, top, BODY, &right);
        // The form name may be long: wrap it beside the page number.
        let page_text = (w.page_of)(page, total);
        let pw = self.width(&page_text, BODY);
        let form_lines = self.wrap(form, BODY, RIGHT - LEFT - pw - 20.0);
        for (i, line) in form_lines.iter().take(2).enumerate() {
            self.text_at(LEFT, top - 14.0 - i as f32 * Self::lh(BODY), BODY, line);
        }
        self.text_at(RIGHT - pw, top - 14.0, BODY, &page_text);
        self.hline(LEFT, RIGHT, PAGE_H - 70.0, 0.8);
        // Footer.
        self.hline(LEFT, RIGHT, 40.0, 0.5);
        let printed = self.wrap(&r.printed, SMALL, RIGHT - LEFT - pw - 20.0);
        for (i, line) in printed.iter().take(2).enumerate() {
            self.text_at(LEFT, 30.0 - i as f32 * Self::lh(SMALL), SMALL, line);
        }
        let pw_small = self.width(&page_text, SMALL);
        self.text_at(RIGHT - pw_small, 30.0, SMALL, &page_text);
    }
}
