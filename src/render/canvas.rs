//! Drawing on a PDF page in millimetres from the top-left corner, with the
//! bundled DejaVu Sans (regular and bold) embedded and subset.

use std::sync::OnceLock;

use printpdf::{
    Color, FontId, Line as PdfLine, LinePoint, Mm, Op, PaintMode, ParsedFont, PdfFontHandle, Point,
    Pt, Rect, Rgb, TextItem,
};

/// The page: A4, and the left and right margins.
pub(super) const PAGE_H: f32 = 297.0;
pub(super) const LEFT: f32 = 18.0;
pub(super) const RIGHT: f32 = 192.0;

pub(super) static REGULAR_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
pub(super) static BOLD_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");
/// DejaVu Sans' `head.unitsPerEm`.
pub(super) const UNITS_PER_EM: f32 = 2048.0;

pub(super) struct Fonts {
    pub(super) regular: ParsedFont,
    pub(super) bold: ParsedFont,
}

pub(super) fn fonts() -> &'static Fonts {
    static FONTS: OnceLock<Fonts> = OnceLock::new();
    FONTS.get_or_init(|| Fonts {
        regular: ParsedFont::from_bytes(REGULAR_TTF, 0, &mut Vec::new())
            .expect("bundled font parses"),
        bold: ParsedFont::from_bytes(BOLD_TTF, 0, &mut Vec::new()).expect("bundled font parses"),
    })
}

pub(super) const ACCENT: (f32, f32, f32) = (0.16, 0.32, 0.55);

/// A page's drawing operations, in millimetres from the top-left corner.
#[derive(Default)]
pub(super) struct Canvas {
    pub(super) ops: Vec<Op>,
}

impl Canvas {
    pub(super) fn text(&mut self, x: f32, y: f32, size: f32, bold: bool, text: &str) {
        let font = FontId(if bold { "FKTBLD" } else { "FKTREG" }.into());
        self.ops.extend([
            Op::StartTextSection,
            Op::SetFont {
                font: PdfFontHandle::External(font),
                size: Pt(size),
            },
            Op::SetTextCursor {
                pos: Point::new(Mm(x), Mm(PAGE_H - y)),
            },
            Op::ShowText {
                items: vec![TextItem::Text(text.to_string())],
            },
            Op::EndTextSection,
        ]);
    }

    pub(super) fn group_title(&mut self, y: f32, title: &str) {
        let title = self.fit(title, 8.5, true, RIGHT - LEFT);
        self.text(LEFT, y, 8.5, true, &title);
    }

    pub(super) fn text_right(&mut self, right: f32, y: f32, size: f32, bold: bool, text: &str) {
        let width = text_width(text, size, bold);
        self.text(right - width, y, size, bold, text);
    }

    /// `text`, shortened with an ellipsis to fit `max_width` millimetres:
    /// its longest start that fits with the ellipsis (measured once, char
    /// by char; a long meter name is measured once, not once per char cut).
    pub(super) fn fit(&self, text: &str, size: f32, bold: bool, max_width: f32) -> String {
        if text_width(text, size, bold) <= max_width {
            return text.to_string();
        }
        let ellipsis = advance('…', bold);
        let mut units = 0.0;
        let mut fits = None;
        for (end, c) in text.char_indices() {
            // The same sum, in the same order, as measuring `text[..end]` + "…".
            if to_mm(units + ellipsis, size) <= max_width {
                fits = Some(end);
            }
            units += advance(c, bold);
        }
        fits.map_or_else(String::new, |end| text[..end].to_string() + "…")
    }

    pub(super) fn rule(&mut self, x1: f32, y: f32, x2: f32, thickness: f32) {
        let point = |x: f32| LinePoint {
            p: Point::new(Mm(x), Mm(PAGE_H - y)),
            bezier: false,
        };
        self.ops.extend([
            Op::SetOutlineColor {
                col: Color::Rgb(Rgb {
                    r: 0.6,
                    g: 0.6,
                    b: 0.6,
                    icc_profile: None,
                }),
            },
            Op::SetOutlineThickness { pt: Pt(thickness) },
            Op::DrawLine {
                line: PdfLine {
                    points: vec![point(x1), point(x2)],
                    is_closed: false,
                },
            },
        ]);
    }

    pub(super) fn fill_rect(&mut self, x: f32, y: f32, w: f32, h: f32, (r, g, b): (f32, f32, f32)) {
        self.ops.extend([
            Op::SaveGraphicsState,
            Op::SetFillColor {
                col: Color::Rgb(Rgb {
                    r,
                    g,
                    b,
                    icc_profile: None,
                }),
            },
            Op::DrawRectangle {
                rectangle: Rect {
                    x: Mm(x).into(),
                    y: Mm(PAGE_H - y - h).into(),
                    width: Mm(w).into(),
                    height: Mm(h).into(),
                    mode: Some(PaintMode::Fill),
                    winding_order: None,
                },
            },
            Op::RestoreGraphicsState,
        ]);
    }
}

/// Width of `text` in millimetres at `size` points.
pub(super) fn text_width(text: &str, size: f32, bold: bool) -> f32 {
    to_mm(text.chars().map(|c| advance(c, bold)).sum(), size)
}

/// A char's advance in font units (none for a char the font lacks).
fn advance(c: char, bold: bool) -> f32 {
    let f = fonts();
    let font = if bold { &f.bold } else { &f.regular };
    font.lookup_glyph_index(c as u32)
        .map_or(0.0, |g| font.get_horizontal_advance(g) as f32)
}

fn to_mm(units: f32, size: f32) -> f32 {
    units / UNITS_PER_EM * size * 25.4 / 72.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shortened_text_is_the_longest_start_that_fits_with_the_ellipsis() {
        let canvas = Canvas::default();
        let texts = [
            "Log Analytics – Data Ingestion v7, Daily Cap",
            "Fjällräven Linux, Enterprise v1, Sverige Central",
            "\"Teams\" Plan ∑ 日本 Østlandet",
            "",
        ];
        for text in texts {
            for bold in [false, true] {
                for quarters in 0..400 {
                    let max_width = quarters as f32 / 4.0;
                    let fitted = canvas.fit(text, 8.0, bold, max_width);
                    if text_width(text, 8.0, bold) <= max_width {
                        assert_eq!(fitted, text);
                        continue;
                    }
                    let kept = fitted.strip_suffix('…').unwrap_or_default();
                    assert!(text.starts_with(kept), "{fitted:?} of {text:?}");
                    if !fitted.is_empty() {
                        assert!(text_width(&fitted, 8.0, bold) <= max_width);
                    }
                    // One char more would not fit (or would be the whole text).
                    let next = text[kept.len()..].chars().next().unwrap();
                    let longer = format!("{kept}{next}…");
                    let whole = kept.len() + next.len_utf8() == text.len();
                    assert!(
                        whole || text_width(&longer, 8.0, bold) > max_width,
                        "{longer:?} fits {max_width} mm"
                    );
                }
            }
        }
    }
}
