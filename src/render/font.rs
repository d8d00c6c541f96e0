//! The two bundled faces, DejaVu Sans regular and bold: their metrics for
//! layout, and a document's subset of each as PDF font objects.
//!
//! Text is written with each character's code point as its CID (a char
//! beyond the BMP as U+FFFD), so a page's content does not depend on the
//! subset; the font's `/CIDToGIDMap` maps codes to the subset's glyphs and
//! `/ToUnicode` maps them back to text. printpdf parses and subsets the
//! faces. A subset is made once per distinct set of characters and shared
//! by every invoice that uses the same set (most do): the objects depend
//! on the set alone, so a cached subset gives the same bytes as a new one.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use lopdf::dictionary;
use printpdf::{ParsedFont, ToUnicodeCMap};

static REGULAR_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static BOLD_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// The code written for a char: its code point, or U+FFFD beyond the BMP.
pub(super) fn code(c: char) -> u16 {
    u16::try_from(u32::from(c)).unwrap_or(0xFFFD)
}

/// The codes a document uses in one face: a bit per BMP code point.
#[derive(Clone)]
pub(super) struct UsedCodes(Box<[u64; 1024]>);

impl Default for UsedCodes {
    fn default() -> Self {
        Self(Box::new([0; 1024]))
    }
}

impl UsedCodes {
    pub(super) fn insert(&mut self, code: u16) {
        self.0[usize::from(code >> 6)] |= 1 << (code & 63);
    }

    pub(super) fn merge(&mut self, other: &UsedCodes) {
        for (word, other) in self.0.iter_mut().zip(other.0.iter()) {
            *word |= other;
        }
    }

    /// The codes in ascending order.
    pub(super) fn codes(&self) -> Vec<u16> {
        let mut codes = Vec::new();
        for (index, &word) in self.0.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                codes.push((index * 64 + bit) as u16);
                bits &= bits - 1;
            }
        }
        codes
    }
}

/// One bundled face.
pub(super) struct Face {
    parsed: ParsedFont,
    /// The font resource name on a page (and its ToUnicode CMap's name).
    pub(super) resource: &'static str,
    /// `/BaseFont` after the subset tag.
    postscript_name: &'static str,
    /// Glyph id of each BMP code point (0, `.notdef`, where the face lacks it).
    glyphs: Vec<u16>,
    /// Advance width of each BMP code point in font units.
    advances: Vec<u16>,
    units_per_em: f32,
    subsets: Mutex<HashMap<Vec<u16>, Arc<FontObjects>>>,
}

/// The PDF objects of one subset of a face, with its streams deflated.
pub(super) struct FontObjects {
    /// The subset's `/BaseFont`: a tag of six capitals made from the face
    /// and the set of codes (ISO 32000-1, 9.6.4: different subsets get
    /// different tags, also across invoices merged into one file), `+`,
    /// the face's PostScript name.
    pub(super) base_font: String,
    /// The subset TrueType program, deflated, and its length before.
    pub(super) program: Vec<u8>,
    pub(super) program_length: usize,
    /// The `/ToUnicode` CMap, deflated.
    pub(super) to_unicode: Vec<u8>,
    /// The `/CIDToGIDMap`, deflated.
    pub(super) cid_to_gid: Vec<u8>,
    /// The `/W` array: each used code's advance in 1/1000 em.
    pub(super) widths: Vec<lopdf::Object>,
}

/// A cache full of one-off subsets starts again rather than growing.
const MAX_CACHED_SUBSETS: usize = 512;

pub(super) fn regular() -> &'static Face {
    static FACE: OnceLock<Face> = OnceLock::new();
    FACE.get_or_init(|| Face::load(REGULAR_TTF, "FKTREG", "DejaVuSans"))
}

pub(super) fn bold() -> &'static Face {
    static FACE: OnceLock<Face> = OnceLock::new();
    FACE.get_or_init(|| Face::load(BOLD_TTF, "FKTBLD", "DejaVuSans-Bold"))
}

impl Face {
    fn load(ttf: &[u8], resource: &'static str, postscript_name: &'static str) -> Face {
        let parsed = ParsedFont::from_bytes(ttf, 0, &mut Vec::new()).expect("bundled font parses");
        let glyphs: Vec<u16> = (0..=u16::MAX)
            .map(|code| parsed.lookup_glyph_index(u32::from(code)).unwrap_or(0))
            .collect();
        let advances = glyphs
            .iter()
            .map(|&glyph| parsed.get_horizontal_advance(glyph))
            .collect();
        let units_per_em = f32::from(parsed.pdf_font_metrics.units_per_em);
        Face {
            parsed,
            resource,
            postscript_name,
            glyphs,
            advances,
            units_per_em,
            subsets: Mutex::new(HashMap::new()),
        }
    }

    /// A char's advance in font units (`.notdef`'s for a char the face lacks).
    pub(super) fn advance(&self, c: char) -> f32 {
        f32::from(self.advances[usize::from(code(c))])
    }

    /// Font units to millimetres at `size` points.
    pub(super) fn to_mm(&self, units: f32, size: f32) -> f32 {
        units / self.units_per_em * size * 25.4 / 72.0
    }

    /// The font objects for a document using `codes`.
    pub(super) fn objects(&self, codes: Vec<u16>) -> Arc<FontObjects> {
        if let Some(found) = self.subsets.lock().expect("font cache").get(&codes) {
            return Arc::clone(found);
        }
        let made = Arc::new(self.subset(&codes));
        let mut cache = self.subsets.lock().expect("font cache");
        if cache.len() >= MAX_CACHED_SUBSETS {
            cache.clear();
        }
        cache.insert(codes, Arc::clone(&made));
        made
    }

    /// printpdf's subset of the face with the glyphs of `codes`.
    pub(super) fn glyph_subset(&self, codes: &[u16]) -> printpdf::SubsetFont {
        let used_glyphs: BTreeMap<u16, String> = codes
            .iter()
            .filter_map(|&code| {
                let glyph = self.glyphs[usize::from(code)];
                let text = char::from_u32(u32::from(code))?.to_string();
                (glyph != 0).then_some((glyph, text))
            })
            .collect();
        printpdf::subset_font(&self.parsed, &used_glyphs).expect("the bundled font subsets")
    }

    fn subset(&self, codes: &[u16]) -> FontObjects {
        let subset = self.glyph_subset(codes);
        let max_code = codes.last().copied().unwrap_or(0);
        let mut cid_to_gid = vec![0u8; 2 * (usize::from(max_code) + 1)];
        for &code in codes {
            let glyph = self.glyphs[usize::from(code)];
            if let Some((new_glyph, _)) = subset.glyph_mapping.get(&glyph) {
                let at = 2 * usize::from(code);
                cid_to_gid[at..at + 2].copy_from_slice(&new_glyph.to_be_bytes());
            }
        }
        let to_unicode = ToUnicodeCMap {
            mappings: codes
                .iter()
                .map(|&code| (u32::from(code), vec![u32::from(code)]))
                .collect(),
        }
        .to_cmap_string(self.resource);
        let program = super::sfnt::slim(&subset.bytes);
        FontObjects {
            base_font: format!("{}+{}", self.subset_tag(codes), self.postscript_name),
            program_length: program.len(),
            program: deflate(&program),
            to_unicode: deflate(to_unicode.as_bytes()),
            cid_to_gid: deflate(&cid_to_gid),
            widths: self.widths(codes),
        }
    }

    /// `/W`: runs of consecutive codes, each `first [w1 w2 …]`.
    fn widths(&self, codes: &[u16]) -> Vec<lopdf::Object> {
        let mut widths = Vec::new();
        let mut run: Vec<lopdf::Object> = Vec::new();
        let mut run_start = 0u16;
        for (index, &code) in codes.iter().enumerate() {
            if index > 0 && code != codes[index - 1] + 1 {
                widths.push(i64::from(run_start).into());
                widths.push(lopdf::Object::Array(std::mem::take(&mut run)));
            }
            if run.is_empty() {
                run_start = code;
            }
            let advance = f32::from(self.advances[usize::from(code)]);
            run.push(((advance * 1000.0 / self.units_per_em).round() as i64).into());
        }
        if !run.is_empty() {
            widths.push(i64::from(run_start).into());
            widths.push(lopdf::Object::Array(run));
        }
        widths
    }

    /// Six capitals from a digest of the face and the codes: the same set
    /// always gets the same tag, different sets different ones.
    fn subset_tag(&self, codes: &[u16]) -> String {
        use sha2::{Digest, Sha256};
        let mut digest = Sha256::new();
        digest.update(self.postscript_name.as_bytes());
        for code in codes {
            digest.update(code.to_be_bytes());
        }
        let digest = u64::from_be_bytes(digest.finalize()[..8].try_into().expect("8 bytes"));
        (0..6)
            .map(|i| char::from(b'A' + (digest / 26u64.pow(i) % 26) as u8))
            .collect()
    }

    /// The `/FontDescriptor` entries besides the program, for the subset
    /// named `base_font`.
    pub(super) fn descriptor(&self, base_font: &str) -> lopdf::Dictionary {
        let metrics = &self.parsed.pdf_font_metrics;
        let scale = |v: f32| (v * 1000.0 / self.units_per_em).round() as i64;
        let ascent = scale(self.parsed.font_metrics.ascent);
        // No table gives the stem width; the usual estimate from the weight class.
        let stem_v = 50 + (f32::from(metrics.us_weight_class) / 65.0).powi(2).round() as i64;
        dictionary! {
            "Type" => "FontDescriptor",
            "FontName" => lopdf::Object::Name(base_font.as_bytes().to_vec()),
            "Flags" => 32,
            "FontBBox" => vec![
                scale(f32::from(metrics.x_min)).into(),
                scale(f32::from(metrics.y_min)).into(),
                scale(f32::from(metrics.x_max)).into(),
                scale(f32::from(metrics.y_max)).into(),
            ],
            "ItalicAngle" => 0,
            "Ascent" => ascent,
            "Descent" => scale(self.parsed.font_metrics.descent),
            "CapHeight" => self.parsed.font_metrics.cap_height.map_or(ascent, scale),
            "StemV" => stem_v,
        }
    }
}

/// zlib at the fast level: printpdf's best level spent half the rendering
/// time for files a few percent smaller.
pub(super) fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(bytes.len() / 3),
        flate2::Compression::new(3),
    );
    encoder.write_all(bytes).expect("deflating to memory");
    encoder.finish().expect("deflating to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_codes_come_back_in_order_once() {
        let mut used = UsedCodes::default();
        for c in ['b', 'a', 'b', 'å', '…', '😀', 'ÿ'] {
            used.insert(code(c));
        }
        let mut more = UsedCodes::default();
        more.insert(0);
        more.insert(u16::MAX);
        used.merge(&more);
        assert_eq!(
            used.codes(),
            [
                0,
                u16::from(b'a'),
                u16::from(b'b'),
                0xE5,
                0xFF,
                0x2026,
                0xFFFD,
                u16::MAX
            ]
        );
    }

    #[test]
    fn a_cached_subset_is_the_subset_made_anew() {
        let face = bold();
        let used: std::collections::BTreeSet<u16> =
            "Faktura 2026 – Østlandet…".chars().map(code).collect();
        let codes: Vec<u16> = used.into_iter().collect();
        let first = face.objects(codes.clone());
        assert!(Arc::ptr_eq(&first, &face.objects(codes.clone())));
        let fresh = face.subset(&codes);
        assert_eq!(first.program, fresh.program);
        assert_eq!(first.to_unicode, fresh.to_unicode);
        assert_eq!(first.cid_to_gid, fresh.cid_to_gid);
        assert_eq!(first.widths, fresh.widths);
        assert_eq!(first.base_font, fresh.base_font);
        // Its own tag: six capitals, another for another set or face.
        let (tag, name) = fresh.base_font.split_once('+').unwrap();
        assert_eq!(name, "DejaVuSans-Bold");
        assert!(tag.len() == 6 && tag.bytes().all(|b| b.is_ascii_uppercase()));
        let other = face.subset(&codes[1..]);
        assert_ne!(other.base_font, fresh.base_font);
        assert_ne!(regular().subset(&codes).base_font, fresh.base_font);
        // Every code maps to a glyph of the subset, no two to the same one.
        let map = inflate(&fresh.cid_to_gid);
        let glyphs: std::collections::BTreeSet<u16> = codes
            .iter()
            .map(|&c| u16::from_be_bytes([map[2 * usize::from(c)], map[2 * usize::from(c) + 1]]))
            .collect();
        assert_eq!(glyphs.len(), codes.len());
        assert!(!glyphs.contains(&0));
        assert_eq!(inflate(&fresh.program).len(), fresh.program_length);
    }

    fn inflate(bytes: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn widths_run_over_consecutive_codes() {
        let face = regular();
        let widths = face.widths(&[65, 66, 67, 0xE5]);
        assert_eq!(widths.len(), 4);
        assert_eq!(widths[0], lopdf::Object::Integer(65));
        assert_eq!(widths[1].as_array().unwrap().len(), 3);
        assert_eq!(widths[2], lopdf::Object::Integer(0xE5));
        // DejaVu Sans' "A" is 1401 of 2048 units.
        assert_eq!(
            widths[1].as_array().unwrap()[0],
            lopdf::Object::Integer(684)
        );
    }
}
