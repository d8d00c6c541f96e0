//! One day of usage: its files read in blocks, cut into chunks parsed in
//! parallel, rows streamed to the day's partition and sums to the day's
//! summer; the day then completed (partition renamed into place, sums and
//! rejects written) on its own thread while the next day is parsed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;

use crate::data_source::UsageSource;
use crate::day_sums::{ChunkSums, DayCache, DaySums};
use crate::model::{DayStats, FileFingerprint};
use crate::parse::{Header, USAGE_SCALE, UsageSum};
use crate::store;

use super::batch::UsageBatch;
use super::cut::{first_record_end, lines_in, quick_cuts, record_cuts};
use super::index::ReferenceIndex;
use super::listing::{ReadHash, fingerprint};
use super::partition::PartitionWriter;
use super::rows::{ChunkError, ChunkOutput, UsageHeader, parse_chunk, whole_file};
use super::{IngestError, IngestOptions, Reject, RejectReason, Result};

/// Bytes read from a usage file at a time; records are cut at block ends,
/// so memory stays flat however large a file or a day is. 32 MB rather
/// than 64 takes ~150 MB off ingest's peak at a million rows a day (fewer
/// parsed chunks in flight): the 30 M month peaked at 1.0 GB with 64 MB
/// blocks, 0.87-0.94 GB with 48 and 0.83 GB with 32, taking 3 % longer.
pub(super) const BLOCK_BYTES: usize = 32 << 20;
/// A block is parsed in chunks of about this size, in parallel.
pub(super) const CHUNK_BYTES: usize = 4 << 20;
/// Rows gathered before a parquet row group is written: 128 K rather than
/// 256 K takes ~150 MB off ingest's peak at a million rows a day, for
/// files ~4 % larger and the same time.
pub(super) const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Parses all files of one day into its usage partition, still being
/// encoded when this returns, with the fingerprints of its files: those
/// without one in `fingerprints` are hashed as they are read. A file found
/// unreadable part-way is rejected whole: the day is then parsed again
/// without it, so none of its rows reach the partition. Files are read
/// into `read_buffer` (see [`read_file`]).
pub(super) fn parse_day(
    opts: &IngestOptions,
    index: &ReferenceIndex,
    day: NaiveDate,
    files: &[PathBuf],
    fingerprints: Vec<Option<FileFingerprint>>,
    read_buffer: &mut Vec<u8>,
) -> Result<(CompletingDay, Vec<FileFingerprint>)> {
    let mut unreadable: BTreeMap<PathBuf, String> = BTreeMap::new();
    loop {
        let parsed = try_parse_day(
            opts,
            index,
            day,
            files,
            &fingerprints,
            &unreadable,
            read_buffer,
        );
        match parsed {
            Ok(result) => return Ok(result),
            Err(DayError::Unreadable { path, detail }) => {
                unreadable.insert(path, detail);
            }
            Err(DayError::Failed(e)) => return Err(e),
        }
    }
}

pub(super) enum DayError {
    Unreadable { path: PathBuf, detail: String },
    Failed(IngestError),
}

impl<E: Into<IngestError>> From<E> for DayError {
    fn from(e: E) -> Self {
        DayError::Failed(e.into())
    }
}

pub(super) fn try_parse_day(
    opts: &IngestOptions,
    index: &ReferenceIndex,
    day: NaiveDate,
    files: &[PathBuf],
    fingerprints: &[Option<FileFingerprint>],
    unreadable: &BTreeMap<PathBuf, String>,
    read_buffer: &mut Vec<u8>,
) -> Result<(CompletingDay, Vec<FileFingerprint>), DayError> {
    let mut stats = DayStats {
        day,
        files: files.len() as u64,
        ..Default::default()
    };
    let partition = opts.out_dir.join(format!("usage/date={day}/usage.parquet"));
    // The day's old sums go first: a run killed before the new ones are
    // written leaves aggregate to compute them from the new partition.
    store::remove_if_exists(&crate::day_sums::daily_cache_path(opts.out_dir, day))?;
    let subscriptions = std::sync::Arc::clone(&index.subscription_texts);
    let mut writer = PartitionWriter::new(&partition, subscriptions)?;
    let mut rejects = Vec::new();
    let mut cost: i128 = 0;
    let day_text = day.to_string();
    // Parquet encoding runs on its own thread while the next block is parsed;
    // the channel holds about one block of parsed chunks.
    let (sink, frames) = std::sync::mpsc::sync_channel::<UsageBatch>(BLOCK_BYTES / CHUNK_BYTES);
    let encoder = std::thread::spawn(move || -> Result<PartitionWriter> {
        for frame in frames {
            writer.push(frame)?;
        }
        Ok(writer)
    });
    // The day's sums are merged, chunk by chunk in order, on a thread of
    // their own too, and made the day's cache there.
    let (sums, chunk_sums) = std::sync::mpsc::sync_channel::<ChunkSums>(BLOCK_BYTES / CHUNK_BYTES);
    let subscriptions = std::sync::Arc::clone(&index.subscription_texts);
    let summer = std::thread::spawn(move || {
        let mut day_sums = DaySums::new(subscriptions);
        for chunk in chunk_sums {
            day_sums.merge(chunk);
        }
        day_sums.into_cache(day, USAGE_SCALE as usize)
    });
    let mut read = Ok(());
    let mut taken = Vec::with_capacity(files.len());
    for (path, fingerprint) in files.iter().zip(fingerprints) {
        let rel = opts.usage.relative(path);
        taken.push(fingerprint.clone());
        if let Some(detail) = unreadable.get(path) {
            stats.files_rejected += 1;
            rejects.push(whole_file(
                &rel,
                RejectReason::Unreadable,
                detail.clone(),
                "",
            ));
            continue;
        }
        let file = FileInput {
            usage: opts.usage,
            path,
            rel: &rel,
            day,
            day_text: &day_text,
            index,
            hash: fingerprint.is_none(),
        };
        match read_file(&file, read_buffer, &sink, &mut rejects, &sums) {
            Ok(FileOutcome::Read {
                rows_read,
                accepted_cost,
                fingerprint,
            }) => {
                *taken.last_mut().expect("pushed above") = fingerprint;
                stats.present = true;
                stats.rows_read += rows_read;
                cost += accepted_cost;
            }
            Ok(FileOutcome::Rejected) => stats.files_rejected += 1,
            Err(e) => {
                read = Err(e);
                break;
            }
        }
    }
    // Both threads end once their senders are gone; on an error the summer
    // is left to finish on its own, its sums unused.
    drop((sink, sums));
    if let Err(e) = read {
        // The encoder's own error explains a closed channel better than the reader can.
        let writer = encoder
            .join()
            .expect("the parquet encoder thread does not panic")?;
        writer.abort();
        return Err(e);
    }
    // A file rejected whole was not read to its end: hashed on its own.
    let fingerprints = files
        .iter()
        .zip(taken)
        .map(|(path, taken)| match taken {
            Some(fingerprint) => Ok(fingerprint),
            None => match fingerprint(opts.usage, path, None) {
                // Gone since it was listed: recorded as never read, so
                // the next run reads it again.
                Err(_) if unreadable.contains_key(path) => Ok(never_read(opts, path)),
                taken => taken,
            },
        })
        .collect::<std::result::Result<_, store::FileError>>()?;
    let completing = CompletingDay {
        stats,
        cost,
        rejects,
        summer,
        encoder,
        out_dir: opts.out_dir.to_path_buf(),
    };
    Ok((completing, fingerprints))
}

/// The fingerprint of a file that could not be read at all: no hash of
/// its bytes, so it never equals the file's next fingerprint.
fn never_read(opts: &IngestOptions, path: &Path) -> FileFingerprint {
    FileFingerprint {
        path: opts.usage.relative(path),
        size: opts.usage.stamp(path).map_or(0, |s| s.size),
        content_hash: "unread".into(),
        modified_ns: None,
        etag: None,
    }
}

/// A day being completed: its stats and rejects when done.
pub(super) type Completion = std::thread::JoinHandle<Result<(DayStats, Vec<Reject>)>>;

/// A parsed day whose partition is still being encoded.
pub(super) struct CompletingDay {
    pub(super) stats: DayStats,
    pub(super) cost: i128,
    pub(super) rejects: Vec<Reject>,
    pub(super) summer: std::thread::JoinHandle<PolarsResult<DayCache>>,
    pub(super) encoder: std::thread::JoinHandle<Result<PartitionWriter>>,
    pub(super) out_dir: PathBuf,
}

impl CompletingDay {
    /// Completes the day on a thread of its own.
    pub(super) fn complete_in_background(self) -> Completion {
        std::thread::spawn(move || self.complete())
    }

    /// Waits for the partition, then writes the day's sums and rejects.
    pub(super) fn complete(self) -> Result<(DayStats, Vec<Reject>)> {
        let mut stats = self.stats;
        let writer = self
            .encoder
            .join()
            .expect("the parquet encoder thread does not panic")?;
        stats.rows_accepted = writer.finish()?;
        let sums = self
            .summer
            .join()
            .expect("merging the day's sums does not panic")
            .map_err(|source| IngestError::Rows {
                file: format!("the sums of {}", stats.day),
                source,
            })?;
        sums.write(&self.out_dir)?;
        stats.rows_rejected = stats.rows_read - stats.rows_accepted;
        stats.accepted_cost = UsageSum(self.cost);
        let rejects_path = self.out_dir.join(format!("rejects/{}.csv", stats.day));
        if self.rejects.is_empty() {
            store::remove_if_exists(&rejects_path)?;
        } else {
            let csv = rejects_csv(&self.rejects).map_err(|source| IngestError::Rejects {
                day: stats.day,
                source,
            })?;
            store::write_atomic(&rejects_path, &csv)?;
        }
        Ok((stats, self.rejects))
    }
}

/// A usage file being read.
pub(super) struct FileInput<'a> {
    pub(super) usage: &'a UsageSource,
    pub(super) path: &'a Path,
    pub(super) rel: &'a str,
    pub(super) day: NaiveDate,
    /// `day` as `YYYY-MM-DD`: most rows' date cell is exactly this.
    pub(super) day_text: &'a str,
    pub(super) index: &'a ReferenceIndex<'a>,
    /// Whether to take the file's fingerprint from the bytes read.
    pub(super) hash: bool,
}

pub(super) enum FileOutcome {
    Read {
        rows_read: u64,
        accepted_cost: i128,
        /// Taken as the file was read, when asked for.
        fingerprint: Option<FileFingerprint>,
    },
    Rejected,
}

/// Fills `buf` up to `BLOCK_BYTES` (more if it already holds that much);
/// returns whether the file has ended.
pub(super) fn fill_block(
    reader: &mut dyn Read,
    buf: &mut Vec<u8>,
    path: &Path,
) -> Result<bool, DayError> {
    let want = BLOCK_BYTES.saturating_sub(buf.len()).max(BLOCK_BYTES / 2);
    match reader.take(want as u64).read_to_end(buf) {
        Ok(n) => Ok(n < want),
        // A gzip stream that fails to decode is the file's fault, not the machine's.
        Err(e)
            if path.extension().is_some_and(|x| x == "gz")
                || e.kind() == std::io::ErrorKind::InvalidData =>
        {
            Err(DayError::Unreadable {
                path: path.to_path_buf(),
                detail: format!("corrupt gzip: {e}"),
            })
        }
        Err(e) => Err(DayError::Failed(store::failed("read", path)(e).into())),
    }
}

/// Streams one usage file through the parser into the day's partition,
/// hashing its bytes as they go by when `file.hash` asks for it. The file
/// is read into `buffer`, kept by the caller from one file to the next: a
/// new one was faulted in page by page for every file and unmapped after
/// it (1.5 % of ingest in perf).
pub(super) fn read_file(
    file: &FileInput,
    buffer: &mut Vec<u8>,
    sink: &std::sync::mpsc::SyncSender<UsageBatch>,
    rejects: &mut Vec<Reject>,
    sums: &std::sync::mpsc::SyncSender<ChunkSums>,
) -> Result<FileOutcome, DayError> {
    buffer.clear();
    let outcome = read_file_into(buffer, file, sink, rejects, sums);
    // A buffer grown past two blocks (a record longer than a block) is
    // not kept.
    if buffer.capacity() > 2 * BLOCK_BYTES {
        *buffer = Vec::new();
    }
    outcome
}

/// [`read_file`], reading into `bytes` (empty).
fn read_file_into(
    bytes: &mut Vec<u8>,
    file: &FileInput,
    sink: &std::sync::mpsc::SyncSender<UsageBatch>,
    rejects: &mut Vec<Reject>,
    sums: &std::sync::mpsc::SyncSender<ChunkSums>,
) -> Result<FileOutcome, DayError> {
    let (mut reader, stamp) = file
        .usage
        .open(file.path)
        .map_err(|e| unreadable(file, format!("cannot open: {e}")))?;
    let mut buf = HashedBuffer {
        bytes,
        unhashed: 0,
        hash: file.hash.then(|| ReadHash::new(stamp)),
    };
    let mut eof = buf.fill(reader.as_mut(), file.path)?;
    if buf.bytes.starts_with(b"\xEF\xBB\xBF") {
        buf.drain_front(3);
    }
    let (columns, mut next_line) = match read_header(file, &mut buf)? {
        Ok(header) => header,
        Err(reject) => {
            rejects.push(reject);
            return Ok(FileOutcome::Rejected);
        }
    };
    // Rows read and their accepted cost.
    let mut counts = (0u64, 0i128);
    // Cut quickly until a block is found not to be well-formed CSV.
    let mut quick = true;
    loop {
        let bytes: &[u8] = buf.bytes;
        let block = Block {
            bytes,
            ended: eof,
            first_line: next_line,
            quick,
        };
        // The block's new bytes are hashed while its chunks are parsed.
        let (unhashed, hash) = (&bytes[bytes.len() - buf.unhashed..], &mut buf.hash);
        let ((), parsed) = rayon::join(
            || hash.iter_mut().for_each(|h| h.update(unhashed)),
            || block.parse(CHUNK_BYTES, &columns, file),
        );
        buf.unhashed = 0;
        let Some(parsed) = parsed.map_err(|e| chunk_error(file, e))? else {
            // No complete record in a whole block (an unbalanced quote?): read more.
            eof = buf.fill(reader.as_mut(), file.path)?;
            continue;
        };
        next_line += parsed.lines;
        quick = parsed.quick;
        let end = parsed.end;
        deliver(parsed.chunks, file, sink, rejects, sums, &mut counts)?;
        buf.drain_front(end);
        if eof && buf.bytes.is_empty() {
            break;
        }
        if !eof {
            eof = buf.fill(reader.as_mut(), file.path)?;
        }
    }
    Ok(FileOutcome::Read {
        rows_read: counts.0,
        accepted_cost: counts.1,
        fingerprint: buf.hash.map(|h| h.finish(file.rel.to_string())),
    })
}

/// The bytes of a file read but not yet parsed; the last `unhashed` of
/// them not yet added to the file's hash.
pub(super) struct HashedBuffer<'b> {
    pub(super) bytes: &'b mut Vec<u8>,
    pub(super) unhashed: usize,
    pub(super) hash: Option<ReadHash>,
}

impl HashedBuffer<'_> {
    /// Reads the next block; returns whether the file has ended.
    fn fill(&mut self, reader: &mut dyn Read, path: &Path) -> Result<bool, DayError> {
        let before = self.bytes.len();
        let eof = fill_block(reader, self.bytes, path)?;
        self.unhashed += self.bytes.len() - before;
        Ok(eof)
    }

    /// Drops the first `n` bytes, hashing those not hashed yet.
    pub(super) fn drain_front(&mut self, n: usize) {
        let hashed = self.bytes.len() - self.unhashed;
        if n > hashed {
            if let Some(hash) = &mut self.hash {
                hash.update(&self.bytes[hashed..n]);
            }
            self.unhashed -= n - hashed;
        }
        self.bytes.drain(..n);
    }
}

fn unreadable(file: &FileInput, detail: String) -> DayError {
    DayError::Unreadable {
        path: file.path.to_path_buf(),
        detail,
    }
}

/// The header (the first record of `buf`, removed from it): the usage
/// columns and the line the first data record starts on, or the file's
/// `missing_columns` reject.
fn read_header(
    file: &FileInput,
    buf: &mut HashedBuffer<'_>,
) -> Result<std::result::Result<(UsageHeader, u64), Reject>, DayError> {
    let header_end = first_record_end(buf.bytes).unwrap_or(buf.bytes.len());
    let header_text = std::str::from_utf8(&buf.bytes[..header_end])
        .map_err(|e| unreadable(file, format!("invalid UTF-8: {e}")))?;
    let names: Vec<String> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(header_text.as_bytes())
        .records()
        .next()
        .and_then(std::result::Result::ok)
        .map(|r| r.iter().map(str::to_string).collect())
        .unwrap_or_default();
    let header = Header::new(names.iter().map(String::as_str));
    let columns = match UsageHeader::new(&header) {
        Ok(columns) => columns,
        Err(missing) => {
            let detail = format!("missing columns: {}", missing.join(", "));
            let reject = whole_file(file.rel, RejectReason::MissingColumns, detail, header_text);
            return Ok(Err(reject));
        }
    };
    let mut next_line = 1 + lines_in(header_text.as_bytes());
    if !header_text.ends_with('\n') {
        next_line += 1;
    }
    buf.drain_front(header_end);
    Ok(Ok((columns, next_line)))
}

/// A block of a file's bytes, starting at a record.
pub(super) struct Block<'b> {
    pub(super) bytes: &'b [u8],
    /// Whether the file ends with these bytes.
    pub(super) ended: bool,
    /// The line the block's first record starts on.
    pub(super) first_line: u64,
    /// Whether to try [`quick_cuts`] first.
    pub(super) quick: bool,
}

/// A block's whole records, parsed chunk by chunk.
pub(super) struct ParsedBlock {
    /// Where the last whole record ends, and the lines before that.
    pub(super) end: usize,
    pub(super) lines: u64,
    pub(super) chunks: Vec<ChunkOutput>,
    /// Whether the quick cuts held (the block is well-formed CSV).
    pub(super) quick: bool,
}

impl Block<'_> {
    /// Cuts the block into chunks of about `chunk_bytes` at record ends and
    /// parses them in parallel; None when it holds no whole record. The
    /// cuts are first found by counting quotes ([`quick_cuts`]) when
    /// `quick` says so. If the splitter then gives up on a chunk, the text
    /// is not plain well-formed CSV and a cut may have fallen inside a
    /// field, so the block is cut as csv reads it ([`record_cuts`]) and
    /// parsed again (and so is the rest of the file, by its reader).
    pub(super) fn parse(
        &self,
        chunk_bytes: usize,
        columns: &UsageHeader,
        file: &FileInput,
    ) -> Result<Option<ParsedBlock>, ChunkError> {
        let quick_cuts = self
            .quick
            .then(|| self.whole_records(quick_cuts(self.bytes, chunk_bytes)));
        if let Some(cuts) = quick_cuts.flatten() {
            let chunks = self.parse_chunks(&cuts, columns, file);
            if chunks.iter().all(|c| matches!(c, Ok(c) if c.split)) {
                let chunks = chunks.into_iter().collect::<Result<_, _>>()?;
                return Ok(Some(ParsedBlock::new(&cuts, chunks, true)));
            }
        }
        let Some(cuts) = self.whole_records(record_cuts(self.bytes, chunk_bytes)) else {
            return Ok(None);
        };
        let chunks = self.parse_chunks(&cuts, columns, file);
        let chunks = chunks.into_iter().collect::<Result<_, _>>()?;
        Ok(Some(ParsedBlock::new(&cuts, chunks, false)))
    }

    /// `cuts` and, once the file has ended, the end of its bytes; None
    /// when that leaves none.
    fn whole_records(&self, mut cuts: Vec<(usize, u64)>) -> Option<Vec<(usize, u64)>> {
        let (last_end, lines_before) = cuts.last().copied().unwrap_or((0, 0));
        if self.ended && (cuts.is_empty() || last_end < self.bytes.len()) {
            let lines = lines_before + lines_in(&self.bytes[last_end..]);
            cuts.push((self.bytes.len(), lines));
        }
        (!cuts.is_empty()).then_some(cuts)
    }

    /// The chunks between `cuts` (record ends, each with the lines before
    /// it), parsed in parallel.
    fn parse_chunks(
        &self,
        cuts: &[(usize, u64)],
        columns: &UsageHeader,
        file: &FileInput,
    ) -> Vec<Result<ChunkOutput, ChunkError>> {
        let mut chunks = Vec::with_capacity(cuts.len());
        let (mut start, mut lines_before) = (0, 0);
        for &(cut, lines) in cuts {
            chunks.push((&self.bytes[start..cut], self.first_line + lines_before));
            (start, lines_before) = (cut, lines);
        }
        chunks
            .into_par_iter()
            .map(|(chunk, first_line)| parse_chunk(chunk, first_line, columns, file))
            .collect()
    }
}

impl ParsedBlock {
    fn new(cuts: &[(usize, u64)], chunks: Vec<ChunkOutput>, quick: bool) -> ParsedBlock {
        let &(end, lines) = cuts.last().expect("a parsed block has a cut");
        ParsedBlock {
            end,
            lines,
            chunks,
            quick,
        }
    }
}

/// Hands the chunks' rows to the encoder and their sums to the summer,
/// and adds up their counts and rejects, in order.
fn deliver(
    chunks: Vec<ChunkOutput>,
    file: &FileInput,
    sink: &std::sync::mpsc::SyncSender<UsageBatch>,
    rejects: &mut Vec<Reject>,
    sums: &std::sync::mpsc::SyncSender<ChunkSums>,
    counts: &mut (u64, i128),
) -> Result<(), DayError> {
    for chunk in chunks {
        counts.0 += chunk.rows_read;
        counts.1 += chunk.accepted_cost;
        rejects.extend(chunk.rejects);
        sums.send(chunk.sums)
            .expect("the sums thread runs until the senders are gone");
        sink.send(chunk.rows)
            .map_err(|_| DayError::Failed(IngestError::EncoderStopped(file.day)))?;
    }
    Ok(())
}

fn chunk_error(file: &FileInput, error: ChunkError) -> DayError {
    match error {
        ChunkError::Unreadable(detail) => unreadable(file, detail),
        ChunkError::Polars(source) => DayError::Failed(IngestError::Rows {
            file: file.rel.to_string(),
            source,
        }),
    }
}

/// `rejects/D.csv`: file, line, reason, detail, raw.
pub(super) fn rejects_csv(rejects: &[Reject]) -> std::result::Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["file", "line", "reason", "detail", "raw"])?;
    for r in rejects {
        writer.write_record([
            r.file.as_str(),
            &r.line.to_string(),
            r.reason.as_str(),
            &r.detail,
            &r.raw,
        ])?;
    }
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))
}
