//! The one font of every printout: a CJK font from a Debian package, found at run time.
//!
//! Owns finding the font file (`ECRF_CJK_FONT`, then a fixed list of Debian paths; on Windows, of
//! its own Chinese fonts), parsing it
//! once, measuring text by glyph advances and checking that every character has a glyph.
//! Invariants: a [`Fonts`] that exists covers printable ASCII and common Chinese (checked at
//! load, so a font like `fonts-droid-fallback` without Latin letters is refused, not printed as
//! blank boxes); text handed to the page is first passed through [`Fonts::printable`], so a
//! character without a glyph is never drawn as an invisible box: it becomes `?` and is reported.
//! Font files are never part of the repository: `scripts/setup.sh` installs the Debian package.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use printpdf::ParsedFont;

use crate::PdfError;

/// Environment variable naming a font file to use instead of the Debian ones: `PATH` or
/// `PATH#FACE` (face index inside a `.ttc` collection, default 0).
pub const FONT_ENV: &str = "ECRF_CJK_FONT";

/// Where Debian puts the fonts that work (checked: text extractable, glyphs rendered), with the
/// face of the collection that is Simplified Chinese.
pub const DEBIAN_FONTS: &[(&str, usize, &str)] = &[
    (
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        2,
        "fonts-noto-cjk",
    ),
    (
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
        0,
        "fonts-wqy-microhei",
    ),
];

/// Windows: the Simplified Chinese fonts Windows installs (both include Latin letters; checked at
/// load like the Debian ones).
#[cfg(windows)]
pub const WINDOWS_FONTS: &[(&str, usize, &str)] = &[
    (r"C:\Windows\Fonts\msyh.ttc", 0, "Microsoft YaHei"),
    (r"C:\Windows\Fonts\simsun.ttc", 0, "SimSun"),
];

/// The fonts looked for when `ECRF_CJK_FONT` is not set.
#[cfg(not(windows))]
const SYSTEM_FONTS: &[(&str, usize, &str)] = DEBIAN_FONTS;
#[cfg(windows)]
const SYSTEM_FONTS: &[(&str, usize, &str)] = WINDOWS_FONTS;

/// Characters the font must have to be used at all.
const MUST_HAVE: &str =
    "ABCXYZabcxyz0123456789.,:;()[]/-+%*#<>=?@ 中文日期签名心率乳酸体外膜肺氧合";

/// A parsed font and what is needed to measure text with it.
pub struct Fonts {
    pub(crate) font: ParsedFont,
    path: PathBuf,
    face: usize,
    units_per_em: f32,
    /// Advance of `?`, the substitute for characters without a glyph (font units).
    fallback_advance: f32,
    /// Advances by character (`None`: no glyph), filled as characters are met: the font's
    /// cmap lookup is slow for CJK characters and each character is measured several times.
    advances: Mutex<HashMap<char, Option<f32>>>,
}

impl std::fmt::Debug for Fonts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fonts({}#{})", self.path.display(), self.face)
    }
}

impl Fonts {
    /// Finds and loads the font: `ECRF_CJK_FONT` when set, else the first system font present
    /// (Debian packages; Windows: `WINDOWS_FONTS`).
    pub fn find() -> Result<Fonts, PdfError> {
        if let Some(spec) = std::env::var_os(FONT_ENV) {
            let spec = spec.to_string_lossy().into_owned();
            let (path, face) = match spec.rsplit_once('#') {
                Some((p, f)) => (
                    p.to_string(),
                    f.parse().map_err(|_| PdfError::Font {
                        path: PathBuf::from(&spec),
                        message: format!("{FONT_ENV}: the face after # must be a number"),
                    })?,
                ),
                None => (spec.clone(), 0),
            };
            return Fonts::load(Path::new(&path), face);
        }
        for (path, face, _package) in SYSTEM_FONTS {
            let path = Path::new(path);
            if path.exists() {
                return Fonts::load(path, *face);
            }
        }
        Err(PdfError::NoFont {
            tried: SYSTEM_FONTS
                .iter()
                .map(|(p, _, pkg)| format!("{p} ({pkg})"))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Loads face `face` of a font file and checks that it covers Latin and Chinese.
    pub fn load(path: &Path, face: usize) -> Result<Fonts, PdfError> {
        let bytes = std::fs::read(path).map_err(|e| PdfError::Font {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Fonts::from_bytes(&bytes, face, path)
    }

    fn from_bytes(bytes: &[u8], face: usize, path: &Path) -> Result<Fonts, PdfError> {
        let font =
            ParsedFont::from_bytes(bytes, face, &mut Vec::new()).ok_or_else(|| PdfError::Font {
                path: path.to_path_buf(),
                message: format!("face {face} is not a readable TrueType/OpenType font"),
            })?;
        let units_per_em = match font.pdf_font_metrics.units_per_em {
            0 => 1000.0,
            u => f32::from(u),
        };
        let missing: String = MUST_HAVE
            .chars()
            .filter(|c| font.lookup_glyph_index(u32::from(*c)).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(PdfError::Font {
                path: path.to_path_buf(),
                message: format!(
                    "face {face} lacks glyphs for {missing:?}; use fonts-noto-cjk or fonts-wqy-microhei"
                ),
            });
        }
        let mut fonts = Fonts {
            font,
            path: path.to_path_buf(),
            face,
            units_per_em,
            fallback_advance: 0.0,
            advances: Mutex::new(HashMap::new()),
        };
        fonts.fallback_advance = fonts.advance('?').unwrap_or(units_per_em / 2.0);
        Ok(fonts)
    }

    /// The font file and face in use.
    pub fn source(&self) -> (&Path, usize) {
        (&self.path, self.face)
    }

    fn advance(&self, c: char) -> Option<f32> {
        let lookup = || {
            self.font
                .lookup_glyph_index(u32::from(c))
                .map(|g| f32::from(self.font.get_horizontal_advance(g)))
        };
        match self.advances.lock() {
            Ok(mut cache) => *cache.entry(c).or_insert_with(lookup),
            // A poisoned cache is only a cache: look the glyph up again.
            Err(_) => lookup(),
        }
    }

    /// True when the font has a glyph for `c`.
    pub fn has_glyph(&self, c: char) -> bool {
        self.advance(c).is_some()
    }

    /// Width of `text` in points at `size` points (characters without a glyph count as `?`).
    pub fn width(&self, text: &str, size: f32) -> f32 {
        let units: f32 = text
            .chars()
            .map(|c| self.advance(c).unwrap_or(self.fallback_advance))
            .sum();
        units / self.units_per_em * size
    }

    /// `text` as it is drawn: a superscript or subscript digit the font lacks is written plainly
    /// (`×10⁹/L` → `×10^9/L`, `CO₂` → `CO2`); any other character without a glyph becomes `?`
    /// and is added to `missing`. Control characters other than new lines become spaces.
    pub fn printable(&self, text: &str, missing: &mut Vec<char>) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if c == '\n' {
                out.push(c);
            } else if c.is_control() {
                out.push(' ');
            } else if self.has_glyph(c) {
                out.push(c);
            } else if let Some(plain) = plain_form(c) {
                out.push_str(plain);
            } else {
                if !missing.contains(&c) {
                    missing.push(c);
                }
                out.push('?');
            }
        }
        out
    }

    /// Splits `text` into lines no wider than `max` points at `size`: at spaces between words,
    /// between any two Chinese characters, and inside a word only when it alone is too wide.
    /// Explicit new lines are kept. Never returns an empty list.
    pub fn wrap(&self, text: &str, size: f32, max: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for para in text.split('\n') {
            self.wrap_paragraph(para, size, max, &mut lines);
        }
        if lines.is_empty() {
            lines.push(String::new());
        }
        lines
    }

    fn wrap_paragraph(&self, text: &str, size: f32, max: f32, lines: &mut Vec<String>) {
        let mut line = String::new();
        let mut line_w = 0.0f32;
        for token in tokens(text) {
            let w = self.width(token, size);
            if token == " " {
                if !line.is_empty() {
                    line.push(' ');
                    line_w += w;
                }
                continue;
            }
            if line_w + w <= max || line.trim().is_empty() && w <= max {
                line.push_str(token);
                line_w += w;
                continue;
            }
            if !line.trim().is_empty() {
                lines.push(line.trim_end().to_string());
            }
            line = String::new();
            line_w = 0.0;
            if w <= max {
                line.push_str(token);
                line_w = w;
            } else {
                // A single word wider than the line: break it between characters.
                for c in token.chars() {
                    let cw = self.width(c.encode_utf8(&mut [0; 4]), size);
                    if line_w + cw > max && !line.is_empty() {
                        lines.push(std::mem::take(&mut line));
                        line_w = 0.0;
                    }
                    line.push(c);
                    line_w += cw;
                }
            }
        }
        if !line.trim().is_empty() || lines.is_empty() {
            lines.push(line.trim_end().to_string());
        }
    }
}

/// The plain spelling of a superscript or subscript character.
fn plain_form(c: char) -> Option<&'static str> {
    const SUP: [&str; 10] = ["^0", "^1", "^2", "^3", "^4", "^5", "^6", "^7", "^8", "^9"];
    const SUB: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    Some(match c {
        '⁰' => SUP[0],
        '¹' => SUP[1],
        '²' => SUP[2],
        '³' => SUP[3],
        '⁴'..='⁹' => SUP[(u32::from(c) - 0x2070) as usize],
        '⁺' => "^+",
        '⁻' => "^-",
        '₀'..='₉' => SUB[(u32::from(c) - 0x2080) as usize],
        _ => return None,
    })
}

/// True for characters a line may break before or after (CJK ideographs, kana, full-width
/// forms and CJK punctuation).
fn is_cjk(c: char) -> bool {
    matches!(u32::from(c),
        0x2E80..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFFEF
            | 0x20000..=0x2FA1F)
}

/// Breakable pieces of a text: a space, one CJK character, or a run of other characters.
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c == ' ' || is_cjk(c) {
            if let Some(s) = start.take() {
                out.push(&text[s..i]);
            }
            out.push(&text[i..i + c.len_utf8()]);
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_words_spaces_and_each_chinese_character() {
        assert_eq!(
            tokens("Heart rate 心率/min"),
            vec!["Heart", " ", "rate", " ", "心", "率", "/min"]
        );
        assert!(tokens("").is_empty());
    }

    #[test]
    fn wrapped_lines_fit_and_keep_every_character() {
        let Ok(fonts) = Fonts::find() else {
            // The integration tests fail loudly without a font; this unit test only measures.
            return;
        };
        let text = "ECMO或IABP支持期间每日，及最后一个装置撤除后次日（至第30天） and a long \
                    English sentence that must wrap at word boundaries supercalifragilisticexpialidocious";
        for max in [40.0, 80.0, 200.0] {
            let lines = fonts.wrap(text, 9.0, max);
            for l in &lines {
                assert!(fonts.width(l, 9.0) <= max + 0.01, "{l:?} wider than {max}");
            }
            let joined: String = lines.concat().chars().filter(|c| *c != ' ').collect();
            let orig: String = text.chars().filter(|c| *c != ' ').collect();
            assert_eq!(joined, orig);
        }
        assert_eq!(fonts.wrap("", 9.0, 100.0), vec![String::new()]);
    }
}
