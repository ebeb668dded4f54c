//! A tiny XML writer for ODM: elements, attributes and text, escaped as they are written.
//!
//! Invariants: every attribute value and text goes through `write_escaped` (markup characters
//! and control characters never reach the file raw; line breaks and tabs become character
//! references so attribute values keep them); nesting is counted in `depth`, so each `open` is
//! matched by one `close`. Pretty printing indents the metadata only.

use std::io::Write;

use ecrf_core::Text;

/// XML escaping for text and attribute values; line breaks and tabs become character references
/// so attribute values keep them.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A tiny indenting XML writer: elements, attributes (escaped) and text.
pub(super) struct Xml<W: Write> {
    pub(super) out: W,
    pub(super) depth: usize,
    /// Indent nested elements (the metadata); the clinical data are written one element a line.
    pub(super) pretty: bool,
}

/// Writes `s` escaped, without allocating when nothing needs escaping.
fn write_escaped<W: Write>(out: &mut W, s: &str) -> std::io::Result<()> {
    if !crate::scan::xml_special(s) {
        out.write_all(s.as_bytes())
    } else {
        out.write_all(esc(s).as_bytes())
    }
}

impl<W: Write> Xml<W> {
    fn start(&mut self, name: &str, a: &[(&str, &str)]) -> std::io::Result<()> {
        if self.pretty {
            for _ in 0..self.depth {
                self.out.write_all(b"  ")?;
            }
        }
        self.out.write_all(b"<")?;
        self.out.write_all(name.as_bytes())?;
        for (k, v) in a {
            self.out.write_all(b" ")?;
            self.out.write_all(k.as_bytes())?;
            self.out.write_all(b"=\"")?;
            write_escaped(&mut self.out, v)?;
            self.out.write_all(b"\"")?;
        }
        Ok(())
    }
    /// Like [`Xml::start`], each attribute value the concatenation of its parts (each part
    /// escaped): `("ItemOID", &["IT.", form, ".", item])` without building the string.
    fn start_parts(&mut self, name: &str, a: &[(&str, &[&str])]) -> std::io::Result<()> {
        if self.pretty {
            for _ in 0..self.depth {
                self.out.write_all(b"  ")?;
            }
        }
        self.out.write_all(b"<")?;
        self.out.write_all(name.as_bytes())?;
        for (k, parts) in a {
            self.out.write_all(b" ")?;
            self.out.write_all(k.as_bytes())?;
            self.out.write_all(b"=\"")?;
            for p in *parts {
                write_escaped(&mut self.out, p)?;
            }
            self.out.write_all(b"\"")?;
        }
        Ok(())
    }
    pub(super) fn open_parts(&mut self, name: &str, a: &[(&str, &[&str])]) -> std::io::Result<()> {
        self.start_parts(name, a)?;
        self.out.write_all(b">\n")?;
        self.depth += 1;
        Ok(())
    }
    pub(super) fn empty_parts(&mut self, name: &str, a: &[(&str, &[&str])]) -> std::io::Result<()> {
        self.start_parts(name, a)?;
        self.out.write_all(b"/>\n")
    }
    pub(super) fn open(&mut self, name: &str, a: &[(&str, &str)]) -> std::io::Result<()> {
        self.start(name, a)?;
        self.out.write_all(b">\n")?;
        self.depth += 1;
        Ok(())
    }
    pub(super) fn close(&mut self, name: &str) -> std::io::Result<()> {
        self.depth -= 1;
        if self.pretty {
            for _ in 0..self.depth {
                self.out.write_all(b"  ")?;
            }
        }
        self.out.write_all(b"</")?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(b">\n")
    }
    pub(super) fn empty(&mut self, name: &str, a: &[(&str, &str)]) -> std::io::Result<()> {
        self.start(name, a)?;
        self.out.write_all(b"/>\n")
    }
    pub(super) fn text(
        &mut self,
        name: &str,
        a: &[(&str, &str)],
        text: &str,
    ) -> std::io::Result<()> {
        self.start(name, a)?;
        self.out.write_all(b">")?;
        write_escaped(&mut self.out, text)?;
        self.out.write_all(b"</")?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(b">\n")
    }
    /// `<NAME><TranslatedText xml:lang="en">…</TranslatedText><… "zh">…</…></NAME>`
    pub(super) fn translated(&mut self, name: &str, t: &Text) -> std::io::Result<()> {
        self.open(name, &[])?;
        self.text("TranslatedText", &[("xml:lang", "en")], &t.en)?;
        self.text("TranslatedText", &[("xml:lang", "zh")], &t.zh)?;
        self.close(name)
    }
    pub(super) fn alias(&mut self, context: &str, name: &str) -> std::io::Result<()> {
        self.empty("Alias", &[("Context", context), ("Name", name)])
    }
}
