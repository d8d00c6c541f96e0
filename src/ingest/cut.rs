//! Where records end in a block of CSV bytes, as the csv crate reads them,
//! so a block can be cut into chunks parsed in parallel.

/// The end of the first record in `bytes` (after its `\n`), if complete.
pub(super) fn first_record_end(bytes: &[u8]) -> Option<usize> {
    record_ends(bytes).next().map(|(end, _)| end)
}

/// The ends of the records in `bytes` (which starts at a record start), as
/// the csv crate reads them: each `\n` outside a quoted field, plus one,
/// with the number of `\n` up to it. A quote opens a quoted field only at
/// the start of a field (first byte, or after `,`, `\r` or `\n`); inside
/// one, `""` is a quote and a lone `"` closes it; any other quote is an
/// ordinary character (`5" disk`), as it is to csv.
pub(super) fn record_ends(bytes: &[u8]) -> impl Iterator<Item = (usize, u64)> + '_ {
    let mut in_quotes = false;
    let mut lines = 0u64;
    let mut escaped_quote_at = None;
    memchr::memchr2_iter(b'"', b'\n', bytes).filter_map(move |i| {
        if bytes[i] == b'\n' {
            lines += 1;
            return (!in_quotes).then_some((i + 1, lines));
        }
        if escaped_quote_at == Some(i) {
            escaped_quote_at = None;
        } else if in_quotes {
            if bytes.get(i + 1) == Some(&b'"') {
                escaped_quote_at = Some(i + 1);
            } else {
                in_quotes = false;
            }
        } else if i == 0 || matches!(bytes[i - 1], b',' | b'\r' | b'\n') {
            in_quotes = true;
        }
        None
    })
}

/// Where records end in `bytes`, with one cut about every `chunk_bytes`;
/// the last cut is the last record end. Also counts the physical lines
/// before each cut.
pub(super) fn record_cuts(bytes: &[u8], chunk_bytes: usize) -> Vec<(usize, u64)> {
    cuts_among(record_ends(bytes), chunk_bytes)
}

/// Where records end in `bytes` if it is well-formed CSV, cut as by
/// [`record_cuts`]: a line feed after an even number of quotes ends a
/// record. Counting quotes is much cheaper than following them; it is
/// exact where quotes come only around fields and doubled inside them,
/// and may cut inside a field elsewhere (`5" disk`), which the chunks'
/// splitter then finds (see `day::Block::parse`).
pub(super) fn quick_cuts(bytes: &[u8], chunk_bytes: usize) -> Vec<(usize, u64)> {
    let (mut counted_to, mut quoted, mut lines) = (0, false, 0u64);
    let ends = memchr::memchr_iter(b'\n', bytes).filter_map(move |i| {
        quoted ^= memchr::memchr_iter(b'"', &bytes[counted_to..i]).count() % 2 == 1;
        counted_to = i;
        lines += 1;
        (!quoted).then_some((i + 1, lines))
    });
    cuts_among(ends, chunk_bytes)
}

/// The first of `ends` (record ends, each with the lines before it) at or
/// after every `chunk_bytes`, and the last.
pub(super) fn cuts_among(
    ends: impl Iterator<Item = (usize, u64)>,
    chunk_bytes: usize,
) -> Vec<(usize, u64)> {
    let mut cuts = Vec::new();
    let mut last: Option<(usize, u64)> = None;
    let mut next_target = chunk_bytes;
    for (end, lines) in ends {
        last = Some((end, lines));
        if end >= next_target {
            cuts.push((end, lines));
            next_target = end.saturating_add(chunk_bytes);
        }
    }
    if let Some(last) = last
        && cuts.last() != Some(&last)
    {
        cuts.push(last);
    }
    cuts
}

/// Where the record csv places at `position` really starts: csv ends a
/// record at `\r` and starts the next at the `\n`, so the record starts
/// after any line-end bytes, on the next line.
pub(super) fn record_start(bytes: &[u8], position: &csv::Position) -> usize {
    let mut start = position.byte() as usize;
    while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
        start += 1;
    }
    start
}

/// The line feeds in `bytes` (found with `memchr`: the byte-by-byte count
/// was 3 % of ingest, run between every two records).
pub(super) fn lines_in(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}
