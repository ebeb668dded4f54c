//! The blank CRF: every form with its items laid out for filling in by hand.
//!
//! Owns how each item type looks on paper: number fields with their unit, digit boxes for dates
//! and times, one tick box per code (code lists, yes/no), writing lines for text, tick boxes for
//! the missing-data codes an item allows, and the item's ranges and conditions in small print.
//! Invariant: everything comes from the study definition (labels, units, ranges, codes, texts in
//! the chosen language); nothing about a particular form is written here.

use ecrf_core::study::{Entry, ItemType, Range, Repeat};
use ecrf_core::{FormDef, ItemDef, Study};

use crate::layout::{BODY, Doc, LEFT, RIGHT, SMALL};

/// Width of the label column of an item row.
const LABEL_W: f32 = 215.0;
/// Left edge of the entry column.
const ENTRY_X: f32 = LEFT + LABEL_W + 10.0;
/// Side of a tick box or digit box.
const BOX: f32 = 9.0;

/// Something to draw in a row, relative to the row's top-left corner (`dy` goes down).
enum Prim {
    Text {
        x: f32,
        dy: f32,
        size: f32,
        text: String,
    },
    Box {
        x: f32,
        dy: f32,
        w: f32,
        h: f32,
    },
    Rule {
        x1: f32,
        x2: f32,
        dy: f32,
    },
}

/// Lays out a row's entry column: boxes and words flowing left to right, wrapping.
struct Flow<'d, 'a> {
    doc: &'d Doc<'a>,
    x0: f32,
    x1: f32,
    x: f32,
    /// Top of the current line.
    dy: f32,
    prims: Vec<Prim>,
}

const LINE: f32 = 15.0;

impl<'d, 'a> Flow<'d, 'a> {
    fn new(doc: &'d Doc<'a>, x0: f32, x1: f32) -> Self {
        Flow {
            doc,
            x0,
            x1,
            x: x0,
            dy: 2.0,
            prims: Vec::new(),
        }
    }

    fn newline(&mut self) {
        if self.x > self.x0 {
            self.x = self.x0;
            self.dy += LINE;
        }
    }

    /// Makes room for `w` points on the current line, starting a new line if needed.
    fn room(&mut self, w: f32) {
        if self.x + w > self.x1 {
            self.newline();
        }
    }

    fn word(&mut self, text: &str, size: f32) {
        let w = self.doc.width(text, size);
        if w > self.x1 - self.x0 {
            // Too long for a line at all: wrap it on its own lines.
            self.newline();
            for line in self.doc.wrap(text, size, self.x1 - self.x0) {
                self.text_here(&line, size);
                self.x = self.x0;
                self.dy += LINE;
            }
            return;
        }
        self.room(w);
        self.text_here(text, size);
        self.x += w + 4.0;
    }

    fn text_here(&mut self, text: &str, size: f32) {
        self.prims.push(Prim::Text {
            x: self.x,
            dy: self.dy + BOX - 0.5,
            size,
            text: text.to_string(),
        });
    }

    fn boxes(&mut self, n: usize) {
        let w = n as f32 * BOX;
        self.room(w);
        for i in 0..n {
            self.prims.push(Prim::Box {
                x: self.x + i as f32 * BOX,
                dy: self.dy,
                w: BOX,
                h: BOX + 1.0,
            });
        }
        self.x += w + 2.0;
    }

    fn field(&mut self, w: f32) {
        self.room(w);
        self.prims.push(Prim::Box {
            x: self.x,
            dy: self.dy - 1.0,
            w,
            h: BOX + 3.0,
        });
        self.x += w + 4.0;
    }

    /// A tick box with its label, kept together; a label too long for the line wraps beside
    /// the box.
    fn tick(&mut self, label: &str, size: f32) {
        let lw = self.doc.width(label, size);
        let w = BOX + 3.0 + lw;
        if w > self.x1 - self.x0 {
            self.newline();
            self.prims.push(Prim::Box {
                x: self.x,
                dy: self.dy,
                w: BOX,
                h: BOX,
            });
            let lines = self.doc.wrap(label, size, self.x1 - self.x0 - BOX - 3.0);
            for line in lines {
                self.prims.push(Prim::Text {
                    x: self.x0 + BOX + 3.0,
                    dy: self.dy + BOX - 0.5,
                    size,
                    text: line,
                });
                self.dy += LINE;
            }
            self.x = self.x0;
            return;
        }
        self.room(w);
        self.prims.push(Prim::Box {
            x: self.x,
            dy: self.dy,
            w: BOX,
            h: BOX,
        });
        self.prims.push(Prim::Text {
            x: self.x + BOX + 3.0,
            dy: self.dy + BOX - 0.5,
            size,
            text: label.to_string(),
        });
        self.x += w + 10.0;
    }

    fn writing_lines(&mut self, n: usize) {
        self.newline();
        for _ in 0..n {
            self.dy += LINE;
            self.prims.push(Prim::Rule {
                x1: self.x0,
                x2: self.x1,
                dy: self.dy,
            });
        }
        self.dy += 2.0;
        self.x = self.x0;
    }

    fn height(&self) -> f32 {
        if self.x > self.x0 {
            self.dy + LINE
        } else {
            self.dy
        }
    }
}

fn range_text(r: &Range) -> String {
    format!("{}–{}", r.min, r.max)
}

/// The small print under an item's label: id, unit, ranges, decimals, condition, help.
fn item_notes(study: &Study, form: &FormDef, item: &ItemDef, lang: &str) -> String {
    let w = words_for(lang);
    let mut parts = vec![item.id.clone()];
    if let Some(u) = &item.unit {
        parts.push(u.clone());
    }
    if let Some(h) = &item.hard {
        parts.push(format!("{} {}", w.range, range_text(h)));
    }
    if let Some(s) = &item.soft {
        parts.push(format!("{} {}", w.unusual, range_text(s)));
    }
    if let (ItemType::Decimal, Some(d)) = (item.item_type, item.decimals) {
        parts.push(if lang == "zh" {
            format!("最多{d}{}", w.decimals)
        } else {
            format!("≤ {d} {}", w.decimals)
        });
    }
    if let Some(cond) = &item.ask_when {
        let other = form.item(&cond.item);
        let codes: Vec<String> = cond
            .is
            .iter()
            .map(|c| {
                other
                    .and_then(|o| study.codes_for(o).into_iter().find(|k| &k.code == c))
                    .map(|k| k.label.get(lang).to_string())
                    .unwrap_or_else(|| c.clone())
            })
            .collect();
        let name = other
            .map(|o| o.label.get(lang).to_string())
            .unwrap_or_else(|| cond.item.clone());
        parts.push(format!("{} {name} = {}", w.only_when, codes.join(" / ")));
    }
    let mut s = parts.join(" · ");
    if let Some(help) = &item.help {
        s.push_str(" — ");
        s.push_str(help.get(lang));
    }
    s
}

fn words_for(lang: &str) -> &'static crate::words::Words {
    crate::words::words(lang)
}

/// The cover page of the blank book: title, registry, version, how to fill in, list of forms.
pub(crate) fn cover(doc: &mut Doc<'_>, study: &Study, lang: &str) {
    let w = doc.words;
    doc.start_form(w.blank_book);
    doc.title(
        study.title.get(lang),
        &format!(
            "{} · {} · {} {}",
            study.id, study.registry, w.version, study.version
        ),
    );
    doc.paragraph(LEFT, RIGHT - LEFT, BODY, w.how_to);
    doc.y -= 8.0;
    doc.section(w.contents, 20.0);
    for form in &study.forms {
        let when = form
            .when
            .as_ref()
            .map(|t| format!(" — {}", t.get(lang)))
            .unwrap_or_default();
        doc.paragraph(
            LEFT + 4.0,
            RIGHT - LEFT - 4.0,
            BODY,
            &format!("{}  {}{when}", form.id, form.name.get(lang)),
        );
    }
}

/// The name of a form for the running header: `DLY — Daily log`.
pub(crate) fn form_heading(form: &FormDef, lang: &str) -> String {
    format!("{} — {}", form.id, form.name.get(lang))
}

/// One blank form, starting on a new page, ending with the signature block.
pub(crate) fn form(doc: &mut Doc<'_>, study: &Study, form: &FormDef, lang: &str) {
    let w = doc.words;
    doc.start_form(&form_heading(form, lang));
    let mut sub = Vec::new();
    if let Some(when) = &form.when {
        sub.push(format!("{}: {}", w.when, when.get(lang)));
    }
    match form.repeat {
        Repeat::Once => {}
        Repeat::ByDay => sub.push(w.repeat_day.into()),
        Repeat::ByEvent => sub.push(w.repeat_event.into()),
    }
    if form.entry == Entry::System {
        sub.push(w.written_by_app.into());
    }
    sub.push(w.required.into());
    doc.title(&form_heading(form, lang), &sub.join("   "));
    for section in &form.sections {
        let items = form.section_items(&section.id);
        if items.is_empty() {
            continue;
        }
        doc.section(section.label.get(lang), 30.0);
        for item in items {
            item_row(doc, study, form, item, lang);
        }
    }
    doc.signature_block(w.signature_note_blank);
}

fn item_row(doc: &mut Doc<'_>, study: &Study, form: &FormDef, item: &ItemDef, lang: &str) {
    let w = doc.words;
    let label = if item.required {
        format!("{} *", item.label.get(lang))
    } else {
        item.label.get(lang).to_string()
    };
    let label_lines = doc.wrap(&label, BODY, LABEL_W);
    let note_lines = doc.wrap(&item_notes(study, form, item, lang), SMALL, LABEL_W);
    let label_h =
        label_lines.len() as f32 * Doc::lh(BODY) + note_lines.len() as f32 * Doc::lh(SMALL);

    let mut flow = Flow::new(doc, ENTRY_X, RIGHT);
    if item.derived.is_some() {
        flow.word(&format!("({})", w.derived), SMALL);
    } else {
        match item.item_type {
            ItemType::Integer | ItemType::Decimal => {
                flow.field(90.0);
                if let Some(u) = &item.unit {
                    flow.word(u, BODY);
                }
            }
            ItemType::Date => {
                date_boxes(&mut flow);
                flow.word(w.date_hint, SMALL);
            }
            ItemType::DateTime => {
                date_boxes(&mut flow);
                flow.x += 6.0;
                flow.boxes(2);
                flow.word(":", BODY);
                flow.boxes(2);
                flow.word("UTC", SMALL);
                flow.field(34.0);
                flow.word(w.time_hint, SMALL);
            }
            ItemType::Choice | ItemType::YesNo | ItemType::YesNoUnk | ItemType::MultiChoice => {
                if item.item_type == ItemType::MultiChoice {
                    flow.word(&format!("({})", w.tick_any), SMALL);
                }
                for code in study.codes_for(item) {
                    flow.tick(code.label.get(lang), BODY);
                }
            }
            ItemType::Text => {
                let n = if item.max_length > 200 { 3 } else { 2 };
                flow.word(&format!("({}, ≤ {})", w.text_hint, item.max_length), SMALL);
                flow.writing_lines(n);
            }
        }
        if !item.missing.is_empty() {
            flow.room(40.0);
            flow.word(w.missing, SMALL);
            for m in &item.missing {
                let words = if lang == "zh" {
                    m.label_zh()
                } else {
                    m.label_en()
                };
                flow.tick(&format!("{} {words}", m.code()), SMALL);
            }
        }
    }
    let entry_h = flow.height();
    let prims = std::mem::take(&mut flow.prims);
    let h = label_h.max(entry_h) + 5.0;
    doc.ensure(h);
    let top = doc.y - 2.0;
    let mut y = top;
    for line in &label_lines {
        y -= Doc::lh(BODY);
        doc.text_at(LEFT, y + BODY * 0.3, BODY, line);
    }
    for line in &note_lines {
        y -= Doc::lh(SMALL);
        doc.text_at(LEFT, y + SMALL * 0.3, SMALL, line);
    }
    for p in prims {
        match p {
            Prim::Text { x, dy, size, text } => doc.text_at(x, top - dy, size, &text),
            Prim::Box { x, dy, w, h } => doc.rect(x, top - dy - h, w, h),
            Prim::Rule { x1, x2, dy } => doc.hline(x1, x2, top - dy, 0.4),
        }
    }
    doc.y -= h;
    let y = doc.y;
    doc.hline(LEFT, RIGHT, y + 1.0, 0.2);
}

fn date_boxes(flow: &mut Flow<'_, '_>) {
    flow.room(8.0 * BOX + 20.0);
    flow.boxes(4);
    flow.word("-", BODY);
    flow.boxes(2);
    flow.word("-", BODY);
    flow.boxes(2);
}
