//! Drawing on a PDF page in millimetres from the top-left corner: the
//! page's content stream written as it is drawn (text in the bundled faces,
//! rules, filled rectangles), and the characters each face must carry.

use super::font::{self, Face, UsedCodes};

/// The page: A4, and the left and right margins.
pub(super) const PAGE_W: f32 = 210.0;
pub(super) const PAGE_H: f32 = 297.0;
pub(super) const LEFT: f32 = 18.0;
pub(super) const RIGHT: f32 = 192.0;

pub(super) const ACCENT: (f32, f32, f32) = (0.16, 0.32, 0.55);

/// One page: its content stream and the codes drawn in each face.
#[derive(Default)]
pub(super) struct Canvas {
    pub(super) content: Vec<u8>,
    pub(super) regular: UsedCodes,
    pub(super) bold: UsedCodes,
}

fn face(bold: bool) -> &'static Face {
    if bold { font::bold() } else { font::regular() }
}

impl Canvas {
    /// `text` with its baseline's left end at (`x`, `y`).
    pub(super) fn text(&mut self, x: f32, y: f32, size: f32, bold: bool, text: &str) {
        let face = face(bold);
        let used = if bold {
            &mut self.bold
        } else {
            &mut self.regular
        };
        let out = &mut self.content;
        out.extend_from_slice(b"BT /");
        out.extend_from_slice(face.resource.as_bytes());
        out.push(b' ');
        push_number(out, size);
        out.extend_from_slice(b" Tf ");
        push_point(out, x, y);
        out.extend_from_slice(b" Td (");
        for c in text.chars() {
            let code = font::code(c);
            used.insert(code);
            for byte in code.to_be_bytes() {
                push_string_byte(out, byte);
            }
        }
        out.extend_from_slice(b") Tj ET\n");
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
        let face = face(bold);
        let ellipsis = face.advance('…');
        let mut units = 0.0;
        let mut fits = None;
        for (end, c) in text.char_indices() {
            // The same sum, in the same order, as measuring `text[..end]` + "…".
            if face.to_mm(units + ellipsis, size) <= max_width {
                fits = Some(end);
            }
            units += face.advance(c);
        }
        fits.map_or_else(String::new, |end| text[..end].to_string() + "…")
    }

    /// A grey horizontal rule from `x1` to `x2`, `thickness` points thick.
    pub(super) fn rule(&mut self, x1: f32, y: f32, x2: f32, thickness: f32) {
        let out = &mut self.content;
        out.extend_from_slice(b"0.6 0.6 0.6 RG ");
        push_number(out, thickness);
        out.extend_from_slice(b" w ");
        push_point(out, x1, y);
        out.extend_from_slice(b" m ");
        push_point(out, x2, y);
        out.extend_from_slice(b" l S\n");
    }

    /// A filled rectangle, its top-left corner at (`x`, `y`).
    pub(super) fn fill_rect(&mut self, x: f32, y: f32, w: f32, h: f32, (r, g, b): (f32, f32, f32)) {
        let out = &mut self.content;
        out.extend_from_slice(b"q ");
        for part in [r, g, b] {
            push_number(out, part);
            out.push(b' ');
        }
        out.extend_from_slice(b"rg ");
        push_point(out, x, y + h);
        out.push(b' ');
        push_number(out, to_pt(w));
        out.push(b' ');
        push_number(out, to_pt(h));
        out.extend_from_slice(b" re f Q\n");
    }
}

/// Width of `text` in millimetres at `size` points.
pub(super) fn text_width(text: &str, size: f32, bold: bool) -> f32 {
    let face = face(bold);
    face.to_mm(text.chars().map(|c| face.advance(c)).sum(), size)
}

fn to_pt(mm: f32) -> f32 {
    mm * 72.0 / 25.4
}

/// (`x`, `y`) in millimetres from the top-left corner, as PDF points from
/// the bottom-left.
/// One byte of a literal string: two a code, half the bytes of a hex
/// string (less for the page's content stream to deflate). The delimiters
/// and the backslash are escaped, and so are line ends, which a reader
/// would otherwise normalise (ISO 32000-1, 7.3.4.2).
fn push_string_byte(out: &mut Vec<u8>, byte: u8) {
    match byte {
        b'(' | b')' | b'\\' => out.extend_from_slice(&[b'\\', byte]),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\n' => out.extend_from_slice(b"\\n"),
        _ => out.push(byte),
    }
}

fn push_point(out: &mut Vec<u8>, x: f32, y: f32) {
    push_number(out, to_pt(x));
    out.push(b' ');
    push_number(out, to_pt(PAGE_H - y));
}

/// `value` to two decimals, without trailing zeros (`12`, `-0.5`, `785.2`).
fn push_number(out: &mut Vec<u8>, value: f32) {
    let hundredths = (f64::from(value) * 100.0).round() as i64;
    if hundredths < 0 {
        out.push(b'-');
    }
    let hundredths = hundredths.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut whole = hundredths / 100;
    loop {
        at -= 1;
        digits[at] = b'0' + (whole % 10) as u8;
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
    let (tenths, last) = ((hundredths / 10) % 10, hundredths % 10);
    if tenths != 0 || last != 0 {
        out.push(b'.');
        out.push(b'0' + tenths as u8);
        if last != 0 {
            out.push(b'0' + last as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of a literal string as a PDF reader takes them (ISO 32000-1,
    /// 7.3.4.2: `\\`-escapes; an unescaped line end would read as 0x0A).
    fn literal_bytes(written: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut rest = written.iter();
        while let Some(&b) = rest.next() {
            match b {
                b'\\' => bytes.push(match rest.next().unwrap() {
                    b'r' => b'\r',
                    b'n' => b'\n',
                    other => *other,
                }),
                b'\r' | b'\n' => bytes.push(b'\n'),
                b'(' | b')' => panic!("unescaped delimiter in {written:?}"),
                other => bytes.push(other),
            }
        }
        bytes
    }

    #[test]
    fn text_is_written_as_a_literal_string_of_its_codes() {
        // '(' ')' '\\' are escaped; U+0D0A and U+0A0D put line ends in both bytes.
        let text = "a(b)c\\d\u{d0a}\u{a0d}\u{28}\u{5c29}\u{0}Øst";
        let mut canvas = Canvas::default();
        canvas.text(10.0, 20.0, 9.0, false, text);
        let content = &canvas.content;
        let start = content.iter().position(|b| *b == b'(').unwrap() + 1;
        let end = content.len() - b") Tj ET\n".len();
        assert!(content.ends_with(b") Tj ET\n"));
        let codes: Vec<u8> = text
            .chars()
            .flat_map(|c| font::code(c).to_be_bytes())
            .collect();
        assert_eq!(literal_bytes(&content[start..end]), codes);
        assert!(!content[start..end].contains(&b'\r'));
    }

    #[test]
    fn numbers_are_written_to_two_decimals_without_trailing_zeros() {
        for (value, written) in [
            (12.0, "12"),
            (-0.5, "-0.5"),
            (785.196, "785.2"),
            (0.004, "0"),
            (51.023_63, "51.02"),
            (-3.05, "-3.05"),
        ] {
            let mut out = Vec::new();
            push_number(&mut out, value);
            assert_eq!(String::from_utf8(out).unwrap(), written, "{value}");
        }
    }

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
