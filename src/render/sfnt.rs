//! A TrueType subset made smaller for embedding: the glyphs' hinting
//! instructions left out with the programs they call (`fpgm`, `prep` and
//! the `cvt ` values they read, kept as empty tables), and the `name`
//! table cut to its first seven names (copyright, family, style, unique
//! id, full name, version, PostScript name: what HarfBuzz's subsetter
//! keeps by default).
//!
//! The subset printpdf makes of DejaVu Sans keeps all of it: 62 glyphs
//! came to 30 KB, 15 KB deflated, of which hinting and the licence text in
//! `name` were three quarters, in every PDF and every e-mail that attaches
//! one. PDF viewers draw text unhinted anyway (pdf.js, Apple's, Chrome's).
//! ISO 32000-1 §9.9 lists `head`, `hhea`, `loca`, `maxp`, `cvt `, `prep`,
//! `glyf`, `hmtx` and `fpgm`: all stay in the directory; its Table 126
//! asks for `cvt `, `fpgm` and `prep` where "required by the font
//! instructions", and none are left.
//!
//! The outlines are copied as they are. A font this reader does not follow
//! (a table missing, an offset out of range) is returned unchanged.

/// `font` without hinting (glyph instructions, `fpgm`, `prep`, `cvt `) and
/// with the first seven names only, or `font` itself when it is not a
/// TrueType font this function can read.
pub(super) fn slim(font: &[u8]) -> Vec<u8> {
    try_slim(font).unwrap_or_else(|| font.to_vec())
}

fn try_slim(font: &[u8]) -> Option<Vec<u8>> {
    let tables = read_tables(font)?;
    let table = |tag: &[u8; 4]| tables.iter().find(|(t, _)| t == tag).map(|(_, data)| *data);
    let (head, loca, glyf) = (table(b"head")?, table(b"loca")?, table(b"glyf")?);
    let glyph_count = usize::from(u16_at(table(b"maxp")?, 4)?);
    let long_offsets = i16::from_be_bytes(head.get(50..52)?.try_into().ok()?) == 1;
    let offset = |i: usize| -> Option<usize> {
        if long_offsets {
            Some(u32_at(loca, 4 * i)? as usize)
        } else {
            Some(2 * usize::from(u16_at(loca, 2 * i)?))
        }
    };
    let mut new_glyf = Vec::with_capacity(glyf.len());
    let mut new_loca = Vec::with_capacity(4 * (glyph_count + 1));
    for i in 0..glyph_count {
        new_loca.extend_from_slice(&(new_glyf.len() as u32).to_be_bytes());
        let glyph = glyf.get(offset(i)?..offset(i + 1)?)?;
        new_glyf.extend_from_slice(&without_instructions(glyph)?);
        while new_glyf.len() % 4 != 0 {
            new_glyf.push(0);
        }
    }
    new_loca.extend_from_slice(&(new_glyf.len() as u32).to_be_bytes());
    let mut new_head = head.to_vec();
    // Long loca offsets; the checksum adjustment is set once the font is whole.
    new_head
        .get_mut(50..52)?
        .copy_from_slice(&1i16.to_be_bytes());
    new_head.get_mut(8..12)?.copy_from_slice(&[0; 4]);
    let kept: Vec<([u8; 4], Vec<u8>)> = tables
        .iter()
        .map(|(tag, data)| {
            let data = match tag {
                b"glyf" => std::mem::take(&mut new_glyf),
                b"loca" => std::mem::take(&mut new_loca),
                b"head" => std::mem::take(&mut new_head),
                b"name" => first_names(data)?,
                // Present, as ISO 32000-1 §9.9 lists them, but empty: no
                // glyph has instructions left to call them.
                b"cvt " | b"fpgm" | b"prep" => Vec::new(),
                _ => data.to_vec(),
            };
            Some((*tag, data))
        })
        .collect::<Option<_>>()?;
    Some(write_font(font.get(0..4)?, &kept))
}

/// The tables of a font file, in the order of its directory.
fn read_tables(font: &[u8]) -> Option<Vec<([u8; 4], &[u8])>> {
    let count = usize::from(u16_at(font, 4)?);
    (0..count)
        .map(|i| {
            let record = font.get(12 + 16 * i..28 + 16 * i)?;
            let tag: [u8; 4] = record[0..4].try_into().ok()?;
            let start = u32_at(record, 8)? as usize;
            let length = u32_at(record, 12)? as usize;
            Some((tag, font.get(start..start.checked_add(length)?)?))
        })
        .collect()
}

/// A glyph's description without its instructions (an empty glyph as it is).
fn without_instructions(glyph: &[u8]) -> Option<Vec<u8>> {
    if glyph.is_empty() {
        return Some(Vec::new());
    }
    let contours = i16::from_be_bytes(glyph.get(0..2)?.try_into().ok()?);
    if contours >= 0 {
        // Header, end points of contours, instruction length, instructions,
        // then flags and coordinates.
        let length_at = 10 + 2 * contours as usize;
        let points = match contours {
            0 => 0,
            _ => usize::from(u16_at(glyph, length_at - 2)?) + 1,
        };
        let outline_at = length_at + 2 + usize::from(u16_at(glyph, length_at)?);
        let outline = glyph
            .get(outline_at..outline_at + outline_length(glyph.get(outline_at..)?, points)?)?;
        let mut slim = glyph.get(..length_at)?.to_vec();
        slim.extend_from_slice(&[0, 0]);
        slim.extend_from_slice(outline);
        return Some(slim);
    }
    // A composite: its components, each flags, glyph index, arguments and
    // transform, then (when flagged) the instructions, which are dropped
    // with their flag.
    const ARGS_ARE_WORDS: u16 = 0x0001;
    const HAS_SCALE: u16 = 0x0008;
    const MORE_COMPONENTS: u16 = 0x0020;
    const HAS_X_AND_Y_SCALE: u16 = 0x0040;
    const HAS_TWO_BY_TWO: u16 = 0x0080;
    const HAS_INSTRUCTIONS: u16 = 0x0100;
    let mut slim = glyph.get(..10)?.to_vec();
    let mut at = 10;
    loop {
        let flags = u16_at(glyph, at)?;
        let mut length = 4 + if flags & ARGS_ARE_WORDS != 0 { 4 } else { 2 };
        length += if flags & HAS_SCALE != 0 {
            2
        } else if flags & HAS_X_AND_Y_SCALE != 0 {
            4
        } else if flags & HAS_TWO_BY_TWO != 0 {
            8
        } else {
            0
        };
        let component = glyph.get(at..at + length)?;
        slim.extend_from_slice(&(flags & !HAS_INSTRUCTIONS).to_be_bytes());
        slim.extend_from_slice(&component[2..]);
        at += length;
        if flags & MORE_COMPONENTS == 0 {
            return Some(slim);
        }
    }
}

/// A `name` table (format 0) with only its records of name ids 0 to 6.
fn first_names(name: &[u8]) -> Option<Vec<u8>> {
    const KEPT_NAME_IDS: u16 = 6;
    if u16_at(name, 0)? != 0 {
        return None;
    }
    let count = usize::from(u16_at(name, 2)?);
    let storage = name.get(usize::from(u16_at(name, 4)?)..)?;
    let mut records = Vec::new();
    let mut strings = Vec::new();
    for i in 0..count {
        let record = name.get(6 + 12 * i..18 + 12 * i)?;
        if u16_at(record, 6)? > KEPT_NAME_IDS {
            continue;
        }
        let length = usize::from(u16_at(record, 8)?);
        let offset = usize::from(u16_at(record, 10)?);
        records.extend_from_slice(&record[..8]);
        records.extend_from_slice(&(length as u16).to_be_bytes());
        records.extend_from_slice(&u16::try_from(strings.len()).ok()?.to_be_bytes());
        strings.extend_from_slice(storage.get(offset..offset + length)?);
    }
    let kept = records.len() / 12;
    let mut table = Vec::with_capacity(6 + records.len() + strings.len());
    for value in [0, kept as u16, (6 + 12 * kept) as u16] {
        table.extend_from_slice(&value.to_be_bytes());
    }
    table.extend_from_slice(&records);
    table.extend_from_slice(&strings);
    Some(table)
}

/// The length of a simple glyph's flags and coordinates of `points`
/// points at the start of `bytes` (whatever follows is padding).
fn outline_length(bytes: &[u8], points: usize) -> Option<usize> {
    const X_SHORT: u8 = 0x02;
    const Y_SHORT: u8 = 0x04;
    const REPEAT: u8 = 0x08;
    const X_SAME_OR_POSITIVE: u8 = 0x10;
    const Y_SAME_OR_POSITIVE: u8 = 0x20;
    let coordinate = |flags: u8, short: u8, same: u8| match (flags & short != 0, flags & same != 0)
    {
        (true, _) => 1,
        (false, true) => 0,
        (false, false) => 2,
    };
    let (mut at, mut seen, mut coordinates) = (0, 0, 0);
    while seen < points {
        let flags = *bytes.get(at)?;
        at += 1;
        let mut times = 1;
        if flags & REPEAT != 0 {
            times += usize::from(*bytes.get(at)?);
            at += 1;
        }
        seen += times;
        coordinates += times
            * (coordinate(flags, X_SHORT, X_SAME_OR_POSITIVE)
                + coordinate(flags, Y_SHORT, Y_SAME_OR_POSITIVE));
    }
    Some(at + coordinates)
}

/// A font file of `tables` (sorted by tag, as the directory must be),
/// each at a four-byte boundary, with its checksums.
fn write_font(version: &[u8], tables: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut tables: Vec<&([u8; 4], Vec<u8>)> = tables.iter().collect();
    tables.sort_by_key(|(tag, _)| *tag);
    let count = tables.len() as u16;
    let entry_selector = 15 - count.leading_zeros() as u16;
    let search_range = 16u16 << entry_selector;
    let mut font = version.to_vec();
    for value in [
        count,
        search_range,
        entry_selector,
        count.wrapping_mul(16).wrapping_sub(search_range),
    ] {
        font.extend_from_slice(&value.to_be_bytes());
    }
    let mut offset = 12 + 16 * tables.len();
    for (tag, data) in &tables {
        font.extend_from_slice(tag);
        font.extend_from_slice(&checksum(data).to_be_bytes());
        font.extend_from_slice(&(offset as u32).to_be_bytes());
        font.extend_from_slice(&(data.len() as u32).to_be_bytes());
        offset += data.len().next_multiple_of(4);
    }
    let mut head_at = 0;
    for (tag, data) in &tables {
        if tag == b"head" {
            head_at = font.len();
        }
        font.extend_from_slice(data);
        font.resize(font.len().next_multiple_of(4), 0);
    }
    let adjustment = 0xB1B0_AFBAu32.wrapping_sub(checksum(&font));
    font[head_at + 8..head_at + 12].copy_from_slice(&adjustment.to_be_bytes());
    font
}

/// The sum of big-endian 32-bit words, the last padded with zeros.
fn checksum(data: &[u8]) -> u32 {
    data.chunks(4).fold(0u32, |sum, word| {
        let mut padded = [0u8; 4];
        padded[..word.len()].copy_from_slice(word);
        sum.wrapping_add(u32::from_be_bytes(padded))
    })
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use allsorts::binary::read::ReadScope;
    use allsorts::font_data::FontData;
    use allsorts::tables::glyf::{CompositeGlyphFlag, GlyfTable, Glyph};
    use allsorts::tables::loca::LocaTable;
    use allsorts::tables::{FontTableProvider, HeadTable, MaxpTable, NameTable};
    use allsorts::tag;

    /// The glyphs of a font that carry instructions (or, on a composite,
    /// the flag saying they follow), as allsorts reads them.
    fn instructions(font: &[u8]) -> Vec<usize> {
        glyphs(font)
            .iter()
            .enumerate()
            .filter(|(_, glyph)| match glyph {
                Glyph::Simple(simple) => !simple.instructions.is_empty(),
                Glyph::Composite(composite) => {
                    !composite.instructions.is_empty()
                        || composite
                            .glyphs
                            .iter()
                            .any(|c| c.flags.contains(CompositeGlyphFlag::WE_HAVE_INSTRUCTIONS))
                }
                Glyph::Empty(_) => false,
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Every glyph of a font as allsorts reads it.
    fn glyphs(font: &[u8]) -> Vec<Glyph> {
        let data = ReadScope::new(font).read::<FontData<'_>>().unwrap();
        let provider = data.table_provider(0).unwrap();
        let table = |t| provider.read_table_data(t).unwrap().into_owned();
        let head = ReadScope::new(&table(tag::HEAD))
            .read::<HeadTable>()
            .unwrap();
        let maxp = table(tag::MAXP);
        let maxp = ReadScope::new(&maxp).read::<MaxpTable>().unwrap();
        let loca = table(tag::LOCA);
        let loca = ReadScope::new(&loca)
            .read_dep::<LocaTable<'_>>((maxp.num_glyphs, head.index_to_loc_format))
            .unwrap();
        let glyf = table(tag::GLYF);
        let mut glyf = ReadScope::new(&glyf)
            .read_dep::<GlyfTable<'_>>(&loca)
            .unwrap();
        glyf.records_mut()
            .iter_mut()
            .for_each(|r| r.parse().unwrap());
        glyf.records()
            .iter()
            .map(|record| match record {
                allsorts::tables::glyf::GlyfRecord::Parsed(glyph) => glyph.clone(),
                _ => unreachable!("parsed above"),
            })
            .collect()
    }

    /// Every glyph of a font as allsorts reads it, instructions left out
    /// (and their flag on composites).
    fn outlines(font: &[u8]) -> Vec<Glyph> {
        glyphs(font)
            .into_iter()
            .map(|mut glyph| {
                match &mut glyph {
                    Glyph::Simple(simple) => simple.instructions = Box::new([]),
                    Glyph::Composite(composite) => {
                        composite.instructions = Box::new([]);
                        for component in &mut composite.glyphs {
                            component
                                .flags
                                .remove(CompositeGlyphFlag::WE_HAVE_INSTRUCTIONS);
                        }
                    }
                    Glyph::Empty(_) => {}
                }
                glyph
            })
            .collect()
    }

    fn tags(font: &[u8]) -> Vec<[u8; 4]> {
        read_tables(font)
            .unwrap()
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    #[test]
    fn slimmed_subsets_keep_every_outline_and_required_table() {
        // Latin-1 and Latin Extended-A: DejaVu draws many of these as
        // composites of a base letter and an accent.
        let codes: Vec<u16> = (0x20..0x7F)
            .chain(0xA0..0x180)
            .chain([0x2013, 0x20AC])
            .collect();
        for face in [super::super::font::regular(), super::super::font::bold()] {
            let original = face.glyph_subset(&codes).bytes;
            let slim = slim(&original);
            let read = outlines(&slim);
            assert_eq!(read, outlines(&original));
            assert!(read.iter().any(|g| matches!(g, Glyph::Composite(_))));
            assert!(
                instructions(&slim).is_empty(),
                "no glyph keeps instructions"
            );
            assert!(!instructions(&original).is_empty());
            let mut expected = tags(&original);
            expected.sort();
            assert_eq!(tags(&slim), expected);
            let names = |font: &[u8]| -> Vec<(u16, String)> {
                let data = ReadScope::new(font).read::<FontData<'_>>().unwrap();
                let provider = data.table_provider(0).unwrap();
                let name = provider.read_table_data(tag::NAME).unwrap().into_owned();
                let name = ReadScope::new(&name).read::<NameTable<'_>>().unwrap();
                name.name_records
                    .iter()
                    .map(|r| {
                        let text = name.string_for_id(r.name_id).unwrap_or_default();
                        (r.name_id, text)
                    })
                    .collect()
            };
            let mut first = names(&original);
            first.retain(|(id, _)| *id <= 6);
            assert_eq!(names(&slim), first);
            assert!(
                first
                    .iter()
                    .any(|(id, text)| *id == 0 && text.contains("Bitstream"))
            );
            for required in [
                b"head", b"hhea", b"loca", b"maxp", b"cvt ", b"prep", b"glyf", b"hmtx", b"fpgm",
            ] {
                assert!(
                    expected.contains(required),
                    "{}",
                    String::from_utf8_lossy(required)
                );
            }
            let length = |font: &[u8], wanted: &[u8; 4]| {
                let tables = read_tables(font).unwrap();
                tables
                    .iter()
                    .find(|(tag, _)| tag == wanted)
                    .unwrap()
                    .1
                    .len()
            };
            for program in [b"cvt ", b"prep", b"fpgm"] {
                assert_eq!(length(&slim, program), 0);
                assert!(length(&original, program) > 0);
            }
            // The whole file sums to the magic number, each table to its record.
            assert_eq!(checksum(&slim), 0xB1B0_AFBA);
            for (i, (tag, data)) in read_tables(&slim).unwrap().into_iter().enumerate() {
                let recorded = u32_at(&slim, 12 + 16 * i + 4).unwrap();
                if &tag != b"head" {
                    assert_eq!(
                        checksum(data),
                        recorded,
                        "{}",
                        String::from_utf8_lossy(&tag)
                    );
                }
            }
            assert!(
                slim.len() * 2 < original.len(),
                "{} of {}",
                slim.len(),
                original.len()
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever bytes of a subset are changed, slimming returns a font
        /// or the bytes as they were, and never panics.
        #[test]
        fn damaged_fonts_never_panic(
            changes in proptest::collection::vec((0usize..100_000, proptest::prelude::any::<u8>()), 1..8),
        ) {
            let mut font = super::super::font::regular().glyph_subset(&[0x41, 0xC5, 0x20AC]).bytes;
            for (at, byte) in changes {
                let at = at % font.len();
                font[at] = byte;
            }
            let slimmed = slim(&font);
            proptest::prop_assert!(slimmed == font || read_tables(&slimmed).is_some());
        }
    }

    #[test]
    fn what_it_cannot_read_it_returns_unchanged() {
        for bytes in [&b""[..], b"\x00\x01\x00\x00\x00\x09", b"OTTO\x00\x00"] {
            assert_eq!(slim(bytes), bytes);
        }
        let mut cut = super::super::font::regular().glyph_subset(&[0x41]).bytes;
        cut.truncate(cut.len() / 2);
        assert_eq!(slim(&cut), cut);
    }
}
