//! Splitting a chunk's records into fields without the csv crate's
//! byte-at-a-time state machine: one pass finds the commas, line ends and
//! quotes ([`Marks`]), and fields are borrowed from the chunk (a quoted field
//! with `""` in it is unescaped into a scratch buffer). It reads the
//! well-formed CSV usage files are made of exactly as csv does; on anything
//! else (a lone `\r`, a quote inside an unquoted field, text after a
//! closing quote, a quote left open) it gives up, and the chunk is read by
//! csv instead, so odd input keeps csv's reading.

/// Where one field is: a range of the chunk, or of the scratch buffer
/// when it had escaped quotes.
#[derive(Clone, Copy)]
struct Field {
    start: u32,
    end: u32,
    unescaped: bool,
}

/// The chunk holds something only the csv crate reads right.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Unsupported;

/// Reads the records of one chunk (whole records, valid UTF-8).
pub(super) struct Splitter<'c> {
    chunk: &'c str,
    /// Which fields are read: a quoted one not read keeps its `""` (the
    /// usage file's `tags`, say, is not unescaped). Those past its end are read.
    wanted: &'c [bool],
    /// Every comma, line feed and quote of the chunk, in order.
    marks: Marks<'c>,
    /// Where the last record read ended.
    done_at: usize,
    /// The line feeds up to `done_at`.
    lines: u64,
    fields: Vec<Field>,
    scratch: String,
}

/// One record of the chunk: where it starts and ends (after its line end),
/// the line feeds before it in the chunk, and its fields.
pub(super) struct SplitRecord<'s> {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) lines_before: u64,
    chunk: &'s str,
    fields: &'s [Field],
    scratch: &'s str,
}

impl SplitRecord<'_> {
    pub(super) fn len(&self) -> usize {
        self.fields.len()
    }

    /// The text of field `i` (as it stands in the file, `""` kept, for a
    /// quoted field the splitter was told is not wanted).
    pub(super) fn get(&self, i: usize) -> &str {
        let f = self.fields[i];
        let text = if f.unescaped {
            self.scratch
        } else {
            self.chunk
        };
        &text[f.start as usize..f.end as usize]
    }
}

/// Where the splitter is within a field.
#[derive(Clone, Copy)]
enum State {
    /// In a field that did not start with a quote.
    Unquoted,
    /// In a quoted field whose text starts at `open`.
    Quoted { open: usize, escaped: bool },
    /// At the second quote of a `""` in a quoted field.
    EscapedQuote { open: usize },
    /// After the quote that closed a quoted field.
    Closed {
        open: usize,
        close: usize,
        escaped: bool,
    },
}

impl<'c> Splitter<'c> {
    /// A splitter for `chunk`, or `Unsupported` when it has a `\r` that
    /// does not end a line or is too large for 32-bit offsets.
    pub(super) fn new(chunk: &'c str, wanted: &'c [bool]) -> Result<Splitter<'c>, Unsupported> {
        let bytes = chunk.as_bytes();
        let lone_cr = memchr::memchr_iter(b'\r', bytes).any(|i| bytes.get(i + 1) != Some(&b'\n'));
        if lone_cr || u32::try_from(bytes.len()).is_err() {
            return Err(Unsupported);
        }
        Ok(Splitter {
            chunk,
            wanted,
            marks: Marks::new(bytes),
            done_at: 0,
            lines: 0,
            fields: Vec::with_capacity(32),
            scratch: String::new(),
        })
    }

    /// The next record, skipping empty lines as csv does.
    ///
    /// Long on purpose: this is the innermost loop of ingest (every byte
    /// of every usage file passes here), kept as one function so the
    /// compiler keeps its state in registers; with it ingest reads 1 M
    /// rows in 0.92–0.95 s (benches/README.md).
    pub(super) fn next_record(&mut self) -> Result<Option<SplitRecord<'_>>, Unsupported> {
        let bytes = self.chunk.as_bytes();
        self.fields.clear();
        self.scratch.clear();
        // Where the record and its current field start: after the last
        // record's line end.
        let mut record_start = self.done_at;
        let mut lines_before = self.lines;
        let mut field_start = record_start;
        let mut state = State::Unquoted;
        let end = loop {
            let Some(i) = self.marks.next() else {
                // The chunk ends without a line end.
                match state {
                    State::Unquoted if self.fields.is_empty() && field_start == bytes.len() => {
                        return Ok(None);
                    }
                    State::Unquoted => self.fields.push(span(field_start, bytes.len(), false)),
                    State::Closed {
                        open,
                        close,
                        escaped,
                    } if close + 1 == bytes.len() => {
                        let field = self.quoted(open, close, escaped);
                        self.fields.push(field);
                    }
                    _ => return Err(Unsupported),
                }
                break bytes.len();
            };
            match (state, bytes[i]) {
                (State::Unquoted, b'"') if i == field_start => {
                    state = State::Quoted {
                        open: i + 1,
                        escaped: false,
                    };
                }
                (State::Unquoted, b'"') => return Err(Unsupported),
                (State::Unquoted, b',') => {
                    self.fields.push(span(field_start, i, false));
                    field_start = i + 1;
                }
                (State::Unquoted, _) => {
                    let text_end = if i > field_start && bytes[i - 1] == b'\r' {
                        i - 1
                    } else {
                        i
                    };
                    self.lines += 1;
                    if self.fields.is_empty() && text_end == record_start {
                        // An empty line: csv skips it.
                        (record_start, field_start) = (i + 1, i + 1);
                        lines_before = self.lines;
                        continue;
                    }
                    self.fields.push(span(field_start, text_end, false));
                    break i + 1;
                }
                (State::Quoted { open, escaped }, b'"') => {
                    state = if bytes.get(i + 1) == Some(&b'"') {
                        State::EscapedQuote { open }
                    } else {
                        State::Closed {
                            open,
                            close: i,
                            escaped,
                        }
                    };
                }
                (State::Quoted { .. }, b'\n') => self.lines += 1,
                (State::Quoted { .. }, _) => {}
                (State::EscapedQuote { open }, _) => {
                    state = State::Quoted {
                        open,
                        escaped: true,
                    };
                }
                (
                    State::Closed {
                        open,
                        close,
                        escaped,
                    },
                    mark,
                ) => {
                    // Only a comma or a line end may follow the closing quote.
                    let next = close + 1;
                    let line_end =
                        mark == b'\n' && (i == next || (i == next + 1 && bytes[next] == b'\r'));
                    if !(line_end || (mark == b',' && i == next)) {
                        return Err(Unsupported);
                    }
                    let field = self.quoted(open, close, escaped);
                    self.fields.push(field);
                    if line_end {
                        self.lines += 1;
                        break i + 1;
                    }
                    field_start = i + 1;
                    state = State::Unquoted;
                }
            }
        };
        self.done_at = end;
        Ok(Some(SplitRecord {
            start: record_start,
            end,
            lines_before,
            chunk: self.chunk,
            fields: &self.fields,
            scratch: &self.scratch,
        }))
    }

    /// The field between the quotes at `open - 1` and `close`, unescaped
    /// into the scratch buffer when it has `""` in it.
    fn quoted(&mut self, open: usize, close: usize, escaped: bool) -> Field {
        let wanted = self.wanted.get(self.fields.len()).is_none_or(|w| *w);
        if !escaped || !wanted {
            return span(open, close, false);
        }
        let start = self.scratch.len();
        let mut rest = &self.chunk[open..close];
        while let Some(quote) = rest.find('"') {
            // Each quote in a quoted field is the first of a pair.
            self.scratch.push_str(&rest[..=quote]);
            rest = &rest[quote + 2..];
        }
        self.scratch.push_str(rest);
        span(start, self.scratch.len(), true)
    }
}

/// The positions of every comma, line feed and quote in a chunk, in
/// order, found 64 bytes at a time as a bit mask. They lie a few bytes
/// apart (about 40 in a usage row), so a search per mark (memchr3's
/// iterator) spends more on starting each search than on searching: on a
/// day of usage, 80-110 ms against 25 ms for the masks.
pub(super) struct Marks<'c> {
    bytes: &'c [u8],
    /// Where the 64 bytes of `mask` start.
    base: usize,
    /// The marks not yet taken among the 64 bytes at `base`.
    mask: u64,
}

impl<'c> Marks<'c> {
    pub(super) fn new(bytes: &'c [u8]) -> Marks<'c> {
        Marks {
            bytes,
            base: 0,
            mask: marks_in(bytes),
        }
    }
}

impl Marks<'_> {
    /// Moves on to the next 64 bytes with a mark; false at the end.
    fn refill(&mut self) -> bool {
        while self.mask == 0 {
            self.base += 64;
            if self.base >= self.bytes.len() {
                return false;
            }
            self.mask = marks_in(&self.bytes[self.base..]);
        }
        true
    }
}

impl Iterator for Marks<'_> {
    type Item = usize;

    // Inlined into the splitter's loop: the call cost more than the work.
    #[inline(always)]
    fn next(&mut self) -> Option<usize> {
        if self.mask == 0 && !self.refill() {
            return None;
        }
        let at = self.base + self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(at)
    }
}

/// The marks among the first 64 bytes of `bytes` (fewer at its end), bit
/// `i` for byte `i`.
fn marks_in(bytes: &[u8]) -> u64 {
    match bytes.first_chunk::<64>() {
        Some(block) => marks_in_block(block),
        None => {
            let mut block = [0; 64];
            block[..bytes.len()].copy_from_slice(bytes);
            marks_in_block(&block)
        }
    }
}

/// The marks of a 64-byte block: sixteen bytes compared at once with
/// SSE2, which every x86-64 processor has.
#[cfg(target_arch = "x86_64")]
fn marks_in_block(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::*;
    let mut mask = 0;
    for (i, sixteen) in block.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is part of x86-64; the load reads the 16 bytes of
        // `sixteen` (unaligned loads are allowed).
        let hits = unsafe {
            let bytes = _mm_loadu_si128(sixteen.as_ptr().cast());
            let is = |b: u8| _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b as i8));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(is(b','), is(b'\n')), is(b'"')))
        };
        mask |= u64::from(hits as u16) << (16 * i);
    }
    mask
}

#[cfg(not(target_arch = "x86_64"))]
fn marks_in_block(block: &[u8; 64]) -> u64 {
    marks_in_block_bytewise(block)
}

/// The marks of a 64-byte block, a byte at a time.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn marks_in_block_bytewise(block: &[u8; 64]) -> u64 {
    block
        .iter()
        .enumerate()
        .filter(|(_, b)| matches!(b, b',' | b'\n' | b'"'))
        .fold(0, |mask, (i, _)| mask | 1 << i)
}

fn span(start: usize, end: usize, unescaped: bool) -> Field {
    // Offsets fit: `Splitter::new` refuses a chunk of 4 GB or more.
    Field {
        start: start as u32,
        end: end as u32,
        unescaped,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Records as csv reads them: start offset and fields.
    fn csv_records(chunk: &str) -> Vec<(usize, Vec<String>)> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(chunk.as_bytes());
        let mut record = csv::StringRecord::new();
        let mut records = Vec::new();
        while reader.read_record(&mut record).unwrap() {
            let start =
                super::super::cut::record_start(chunk.as_bytes(), record.position().unwrap());
            records.push((start, record.iter().map(str::to_string).collect()));
        }
        records
    }

    fn split_records(chunk: &str) -> Result<Vec<(usize, Vec<String>)>, Unsupported> {
        let mut splitter = Splitter::new(chunk, &[])?;
        let mut records = Vec::new();
        while let Some(r) = splitter.next_record()? {
            let lines_before = chunk[..r.start].matches('\n').count() as u64;
            assert_eq!(
                r.lines_before, lines_before,
                "line feeds before {}",
                r.start
            );
            let fields = (0..r.len()).map(|i| r.get(i).to_string()).collect();
            records.push((r.start, fields));
        }
        Ok(records)
    }

    fn csv_like_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "\"",
            "\"\"",
            ",",
            "\n",
            "\r\n",
            "\r",
            "a",
            "12.5",
            " ",
            "\0",
            "Øst – æå",
            "\",\"",
            "5\" disk",
            ",\"x\"\"y\",",
        ]);
        prop::collection::vec(pieces, 0..120).prop_map(|parts| parts.concat())
    }

    /// Rows of a usage-like file: quoted fields with and without `""`,
    /// empty fields, CRLF or LF, with or without a last line end.
    fn well_formed_text() -> impl Strategy<Value = String> {
        let field = prop::sample::select(vec![
            "",
            "a",
            "12.5",
            "\"D2s v3, \"\"Øst\"\"\"",
            "\"{\"\"k\"\":1}\"",
            "\"\"",
            "\"a\nb\"",
            "\"x,y\"",
            " pad ",
            "æøå",
        ]);
        let row = prop::collection::vec(field, 1..6).prop_map(|f| f.join(","));
        let end = prop::sample::select(vec!["\n", "\r\n"]);
        (prop::collection::vec((row, end), 0..12), any::<bool>()).prop_map(|(rows, last)| {
            let mut text: String = rows.iter().map(|(r, e)| format!("{r}{e}")).collect();
            if !last && text.ends_with('\n') {
                text.pop();
                if text.ends_with('\r') {
                    text.pop();
                }
            }
            text
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn what_it_reads_csv_reads_the_same(text in csv_like_text()) {
            if let Ok(records) = split_records(&text) {
                prop_assert_eq!(records, csv_records(&text));
            }
        }

        #[test]
        fn it_reads_well_formed_usage_text(text in well_formed_text()) {
            prop_assert_eq!(split_records(&text), Ok(csv_records(&text)));
        }
    }

    #[test]
    fn only_the_fields_wanted_are_unescaped() {
        let mut splitter =
            Splitter::new("\"a\"\"b\",\"c\"\"d\",\"e\"\"f\"\n", &[true, false]).unwrap();
        let record = splitter.next_record().unwrap().unwrap();
        let fields = (record.get(0), record.get(1), record.get(2));
        assert_eq!(fields, ("a\"b", "c\"\"d", "e\"f"));
    }

    #[test]
    fn it_gives_up_where_csv_reads_otherwise() {
        for odd in [
            "a\rb\n",
            "5\" disk,x\n",
            "\"a\"b,c\n",
            "\"open,x\n",
            "a,b\r",
        ] {
            assert_eq!(split_records(odd).err(), Some(Unsupported), "{odd:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The masks find what memchr finds, at any length.
        #[test]
        fn marks_are_memchrs_commas_line_feeds_and_quotes(
            bytes in prop::collection::vec(
                prop::sample::select(vec![b',', b'\n', b'"', b'a', b'\r', 0, 0xff, b'\\']),
                0..300,
            ),
        ) {
            let memchr: Vec<usize> = memchr::memchr3_iter(b',', b'\n', b'"', &bytes).collect();
            prop_assert_eq!(Marks::new(&bytes).collect::<Vec<_>>(), memchr);
        }

        /// SSE2 and a byte at a time give the same mask.
        #[test]
        fn a_blocks_mask_is_the_same_byte_by_byte(
            block in prop::collection::vec(
                prop_oneof![Just(b','), Just(b'\n'), Just(b'"'), any::<u8>()],
                64,
            ).prop_map(|bytes| <[u8; 64]>::try_from(bytes).unwrap()),
        ) {
            prop_assert_eq!(marks_in_block(&block), marks_in_block_bytewise(&block));
        }
    }
}
