//! Ingest (SPEC §2.1): daily usage CSVs to validated usage parquet
//! (`OUT/usage/date=D/usage.parquet`) and rejected rows
//! (`OUT/rejects/D.csv`). A day is re-ingested only when its set of files
//! changed (name, size, SHA-256), and then as a whole, so its partition is
//! replaced atomically. A day's files are parsed in 4 MB chunks in
//! parallel (rayon), and a day's partition is completed on its own thread
//! while the next day is parsed.
//!
//! Every row read is either accepted or rejected with a reason; the day's
//! reconciliation (read = accepted + rejected, accepted cost) goes to the
//! ledger and the run summary.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use anyhow::Context;

use crate::FastMap;
use crate::day_sums::{ChunkSums, DayCache, DaySums, SumsRow};
use crate::ledger::{DayStats, FileFingerprint, Ledger};
use crate::model::{Profile, Reference};
use crate::parse::{
    Header, USAGE_SCALE, UsageSum, parse_bool, parse_iso_date, parse_scaled, parse_usage_date,
    parse_usage_value,
};
use crate::store;

/// Columns a usage file must have; `billingCurrency` may be EA's `billingCurrencyCode`.
pub const REQUIRED_COLUMNS: &[&str] = &[
    "date",
    "billingAccountId",
    "billingProfileId",
    "subscriptionId",
    "meterId",
    "meterCategory",
    "meterName",
    "unitOfMeasure",
    "quantity",
    "unitPrice",
    "costInBillingCurrency",
    "billingCurrency",
    "chargeType",
    "publisherType",
];

/// Why a row or file was rejected: the fixed vocabulary of SPEC §2.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    BadDate,
    DateMismatch,
    BeforeStart,
    UnknownProfile,
    UnknownSubscription,
    CurrencyMismatch,
    BadNumber,
    BadEnum,
    BadBool,
    MissingValue,
    TooFewFields,
    TooManyFields,
    MissingColumns,
    Unreadable,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::BadDate => "bad_date",
            RejectReason::DateMismatch => "date_mismatch",
            RejectReason::BeforeStart => "before_start",
            RejectReason::UnknownProfile => "unknown_profile",
            RejectReason::UnknownSubscription => "unknown_subscription",
            RejectReason::CurrencyMismatch => "currency_mismatch",
            RejectReason::BadNumber => "bad_number",
            RejectReason::BadEnum => "bad_enum",
            RejectReason::BadBool => "bad_bool",
            RejectReason::MissingValue => "missing_value",
            RejectReason::TooFewFields => "too_few_fields",
            RejectReason::TooManyFields => "too_many_fields",
            RejectReason::MissingColumns => "missing_columns",
            RejectReason::Unreadable => "unreadable",
        }
    }
}

/// One row of `rejects/D.csv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub file: String,
    pub line: u64,
    pub reason: RejectReason,
    pub detail: String,
    pub raw: String,
}

/// What ingest needs besides the data directory.
pub struct IngestOptions<'a> {
    pub data_dir: &'a Path,
    pub out_dir: &'a Path,
    pub billing_start: NaiveDate,
    pub reference: &'a Reference,
}

/// What one ingest did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct IngestReport {
    /// Days parsed this run, with their reconciliation.
    pub days_ingested: Vec<DayStats>,
    /// Days whose files were unchanged since they were last ingested.
    pub days_unchanged: usize,
    /// Files in usage/ that are not usage files (name does not start with a date).
    pub ignored_files: Vec<String>,
    /// Usage files dated before billing_start.
    pub files_before_billing_start: Vec<String>,
    /// Files rejected whole, with the reason.
    pub files_rejected: Vec<(String, String)>,
}

/// The usage files of `DATA/usage`, grouped by the day their name starts with.
pub struct UsageListing {
    pub days: BTreeMap<NaiveDate, Vec<PathBuf>>,
    pub ignored: Vec<String>,
}

/// Lists `DATA/usage`: `YYYY-MM-DD*.csv` and `.csv.gz` files by day.
pub fn list_usage_files(data_dir: &Path) -> Result<UsageListing, store::FileError> {
    let mut listing = UsageListing {
        days: BTreeMap::new(),
        ignored: Vec::new(),
    };
    let dir = data_dir.join("usage");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(listing);
    };
    for entry in entries {
        let entry = entry.map_err(store::failed("list", &dir))?;
        // Metadata follows a symbolic link: a linked file is read like any other.
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => {}
            Ok(_) => continue,
            Err(reason) => return Err(store::failed("read", &path)(reason)),
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let day = name.get(..10).and_then(parse_iso_date);
        let is_csv = name.ends_with(".csv") || name.ends_with(".csv.gz");
        match day {
            Some(day) if is_csv => listing.days.entry(day).or_default().push(entry.path()),
            _ => listing.ignored.push(format!("usage/{name}")),
        }
    }
    for files in listing.days.values_mut() {
        files.sort();
    }
    listing.ignored.sort();
    Ok(listing)
}

/// One shard of N (`--shard I/N`): the days whose ordinal modulo N is I.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `I/N` with `0 <= I < N`.
    pub fn parse(s: &str) -> Option<Shard> {
        let (i, n) = s.split_once('/')?;
        let (index, count) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
        (count > 0 && index < count).then_some(Shard { index, count })
    }

    pub fn owns(&self, day: NaiveDate) -> bool {
        use chrono::Datelike;
        day.num_days_from_ce().rem_euclid(self.count as i32) == self.index as i32
    }
}

/// What a shard worker ingested: adopted into the ledger by the next run.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub days: Vec<(DayStats, Vec<FileFingerprint>)>,
}

/// `faktura ingest --shard I/N`: ingests this shard's days (all of them,
/// no ledger to compare with) and writes `OUT/manifests/shard-I-of-N.json`.
/// Takes no lock and never touches the ledger.
pub fn ingest_shard(opts: &IngestOptions, shard: Shard) -> anyhow::Result<IngestReport> {
    let listing = list_usage_files(opts.data_dir)?;
    let mut report = IngestReport::default();
    let mut manifest = Manifest::default();
    let mut todo = Vec::new();
    for (day, files) in listing.days {
        if day < opts.billing_start || !shard.owns(day) {
            continue;
        }
        let fingerprints = files
            .par_iter()
            .map(|f| fingerprint(opts.data_dir, f))
            .collect::<Result<Vec<_>, _>>()?;
        todo.push((day, files, fingerprints));
    }
    ingest_days(opts, todo, |stats, _, fingerprints| {
        manifest.days.push((stats.clone(), fingerprints));
        report.days_ingested.push(stats);
        Ok(())
    })?;
    let path = opts.out_dir.join(format!(
        "manifests/shard-{}-of-{}.json",
        shard.index, shard.count
    ));
    store::write_atomic(&path, serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    Ok(report)
}

/// Records what shard workers ingested in the ledger, then removes their
/// manifests; returns the number of days adopted.
pub fn adopt_manifests(out_dir: &Path, ledger: &mut Ledger) -> anyhow::Result<usize> {
    let dir = out_dir.join("manifests");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(0);
    };
    let mut adopted = 0;
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(store::failed("list", &dir))?;
    paths.sort();
    for path in paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let bytes = std::fs::read(&path).map_err(store::failed("read", &path))?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("shard manifest `{}` is not valid", path.display()))?;
        for (stats, fingerprints) in &manifest.days {
            ledger.record_day(stats, fingerprints)?;
            adopted += 1;
        }
        std::fs::remove_file(&path).map_err(store::failed("remove", &path))?;
    }
    Ok(adopted)
}

/// Ingests every new or changed day of usage.
pub fn ingest(opts: &IngestOptions, ledger: &mut Ledger) -> anyhow::Result<IngestReport> {
    let listing = list_usage_files(opts.data_dir)?;
    let mut report = IngestReport {
        ignored_files: listing.ignored.clone(),
        ..Default::default()
    };
    let mut candidates = Vec::new();
    for (day, files) in listing.days {
        if day < opts.billing_start {
            report
                .files_before_billing_start
                .extend(files.iter().map(|f| relative(opts.data_dir, f)));
        } else {
            candidates.push((day, files));
        }
    }
    // Hashing a file is a full read: skipped for a file of the same size
    // and modification time as when it was hashed, done in parallel else.
    let known: HashMap<String, FileFingerprint> = ledger
        .all_ingested_files()?
        .into_iter()
        .map(|f| (f.path.clone(), f))
        .collect();
    let fingerprints: Vec<Vec<FileFingerprint>> = candidates
        .par_iter()
        .map(|(_, files)| {
            files
                .par_iter()
                .map(|f| fingerprint_known(opts.data_dir, f, &known))
                .collect()
        })
        .collect::<Result<_, store::FileError>>()?;
    let mut todo = Vec::new();
    for ((day, files), fingerprints) in candidates.into_iter().zip(fingerprints) {
        let before = ledger.ingested_files(day)?;
        let unchanged = before.len() == fingerprints.len()
            && before
                .iter()
                .zip(&fingerprints)
                .all(|(a, b)| a.same_file(b));
        if unchanged {
            report.days_unchanged += 1;
        } else {
            todo.push((day, files, fingerprints));
        }
    }
    let progress = crate::progress::Progress::new(todo.len() as u64, "ingest");
    ingest_days(opts, todo, |stats, rejects, fingerprints| {
        progress.inc();
        for r in rejects
            .iter()
            .filter(|r| r.line == 1 && is_whole_file(r.reason))
        {
            report
                .files_rejected
                .push((r.file.clone(), r.reason.as_str().to_string()));
        }
        ledger.record_day(&stats, &fingerprints)?;
        report.days_ingested.push(stats);
        Ok(())
    })?;
    Ok(report)
}

/// Ingests days one after another, each parsed in parallel chunks: memory
/// stays that of about one block per day in flight however many days
/// arrive. A day's partition is completed (the last row group encoded,
/// the file renamed into place, its sums and rejects written) on a thread
/// of its own while the next day is parsed. `done` gets each completed day
/// in order, on this thread, so a day is recorded as soon as its partition
/// is in place and a killed run keeps what it did.
fn ingest_days(
    opts: &IngestOptions,
    days: Vec<(NaiveDate, Vec<PathBuf>, Vec<FileFingerprint>)>,
    mut done: impl FnMut(DayStats, &[Reject], Vec<FileFingerprint>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let index = ReferenceIndex::new(opts.reference, opts.billing_start);
    type Completing = (Completion, Vec<FileFingerprint>);
    let mut completing: Option<Completing> = None;
    let mut complete = |completing: Option<Completing>| {
        let Some((completion, fingerprints)) = completing else {
            return Ok(());
        };
        let (stats, rejects) = completion
            .join()
            .expect("completing a day does not panic")?;
        done(stats, &rejects, fingerprints)
    };
    for (day, files, fingerprints) in days {
        let parsed = parse_day(opts, &index, day, &files);
        // The previous day completes first, whether or not this one parsed.
        complete(completing.take())?;
        completing = Some((parsed?.complete_in_background(), fingerprints));
    }
    complete(completing)
}

fn is_whole_file(reason: RejectReason) -> bool {
    matches!(
        reason,
        RejectReason::MissingColumns | RejectReason::Unreadable
    )
}

fn relative(data_dir: &Path, path: &Path) -> String {
    path.strip_prefix(data_dir)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn fingerprint(data_dir: &Path, path: &Path) -> Result<FileFingerprint, store::FileError> {
    let mut file = std::fs::File::open(path).map_err(store::failed("open", path))?;
    let metadata = file.metadata().map_err(store::failed("read", path))?;
    let modified_ns = modified_ns(&metadata);
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher).map_err(store::failed("read", path))?;
    let digest = hasher.finalize();
    Ok(FileFingerprint {
        path: relative(data_dir, path),
        size,
        sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        modified_ns,
    })
}

/// The fingerprint of `path`, taken from `known` when the file still has
/// the size and modification time it had when it was hashed.
fn fingerprint_known(
    data_dir: &Path,
    path: &Path,
    known: &HashMap<String, FileFingerprint>,
) -> Result<FileFingerprint, store::FileError> {
    let metadata = std::fs::metadata(path).map_err(store::failed("read", path))?;
    if let Some(k) = known.get(&relative(data_dir, path))
        && k.size == metadata.len()
        && k.modified_ns.is_some()
        && k.modified_ns == modified_ns(&metadata)
    {
        return Ok(k.clone());
    }
    fingerprint(data_dir, path)
}

fn modified_ns(metadata: &std::fs::Metadata) -> Option<i64> {
    let since_epoch = metadata
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    i64::try_from(since_epoch.as_nanos()).ok()
}

/// Bytes read from a usage file at a time; records are cut at block ends,
/// so memory stays flat however large a file or a day is.
const BLOCK_BYTES: usize = 64 << 20;
/// A block is parsed in chunks of about this size, in parallel.
const CHUNK_BYTES: usize = 4 << 20;
/// Rows gathered before a parquet row group is written.
const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Parses all files of one day into its usage partition, still being
/// encoded when this returns. A file found unreadable part-way is rejected
/// whole: the day is then parsed again without it, so none of its rows
/// reach the partition.
fn parse_day(
    opts: &IngestOptions,
    index: &ReferenceIndex,
    day: NaiveDate,
    files: &[PathBuf],
) -> anyhow::Result<CompletingDay> {
    let mut unreadable: BTreeMap<PathBuf, String> = BTreeMap::new();
    loop {
        match try_parse_day(opts, index, day, files, &unreadable) {
            Ok(result) => return Ok(result),
            Err(DayError::Unreadable { path, detail }) => {
                unreadable.insert(path, detail);
            }
            Err(DayError::Failed(e)) => return Err(e),
        }
    }
}

enum DayError {
    Unreadable { path: PathBuf, detail: String },
    Failed(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for DayError {
    fn from(e: E) -> Self {
        DayError::Failed(e.into())
    }
}

fn try_parse_day(
    opts: &IngestOptions,
    index: &ReferenceIndex,
    day: NaiveDate,
    files: &[PathBuf],
    unreadable: &BTreeMap<PathBuf, String>,
) -> Result<CompletingDay, DayError> {
    let mut stats = DayStats {
        day,
        files: files.len() as u64,
        ..Default::default()
    };
    let partition = opts.out_dir.join(format!("usage/date={day}/usage.parquet"));
    // The day's old sums go first: a run killed before the new ones are
    // written leaves aggregate to compute them from the new partition.
    store::remove_if_exists(&crate::day_sums::daily_cache_path(opts.out_dir, day))?;
    let mut sums = DaySums::new(&index.subscription_names);
    let mut writer = PartitionWriter::new(&partition)?;
    let mut rejects = Vec::new();
    let mut cost: i128 = 0;
    let day_text = day.to_string();
    // Parquet encoding runs on its own thread while the next block is parsed;
    // the channel holds about one block of parsed chunks.
    let (sink, frames) = std::sync::mpsc::sync_channel::<DataFrame>(BLOCK_BYTES / CHUNK_BYTES);
    let encoder = std::thread::spawn(move || -> anyhow::Result<PartitionWriter> {
        for frame in frames {
            writer.push(frame)?;
        }
        Ok(writer)
    });
    let mut read = Ok(());
    for path in files {
        let rel = relative(opts.data_dir, path);
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
            path,
            rel: &rel,
            day,
            day_text: &day_text,
            index,
        };
        match read_file(&file, &sink, &mut rejects, &mut sums) {
            Ok(FileOutcome::Read {
                rows_read,
                accepted_cost,
            }) => {
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
    drop(sink);
    if let Err(e) = read {
        // The encoder's own error explains a closed channel better than the reader can.
        let writer = encoder
            .join()
            .expect("the parquet encoder thread does not panic")?;
        writer.abort();
        return Err(e);
    }
    Ok(CompletingDay {
        stats,
        cost,
        rejects,
        sums: sums.into_cache(day, USAGE_SCALE as usize)?,
        encoder,
        out_dir: opts.out_dir.to_path_buf(),
    })
}

/// A day being completed: its stats and rejects when done.
type Completion = std::thread::JoinHandle<anyhow::Result<(DayStats, Vec<Reject>)>>;

/// A parsed day whose partition is still being encoded.
struct CompletingDay {
    stats: DayStats,
    cost: i128,
    rejects: Vec<Reject>,
    sums: DayCache,
    encoder: std::thread::JoinHandle<anyhow::Result<PartitionWriter>>,
    out_dir: PathBuf,
}

impl CompletingDay {
    /// Completes the day on a thread of its own.
    fn complete_in_background(self) -> Completion {
        std::thread::spawn(move || self.complete())
    }

    /// Waits for the partition, then writes the day's sums and rejects.
    fn complete(self) -> anyhow::Result<(DayStats, Vec<Reject>)> {
        let mut stats = self.stats;
        let writer = self
            .encoder
            .join()
            .expect("the parquet encoder thread does not panic")?;
        stats.rows_accepted = writer.finish()?;
        self.sums.write(&self.out_dir)?;
        stats.rows_rejected = stats.rows_read - stats.rows_accepted;
        stats.accepted_cost = UsageSum(self.cost);
        let rejects_path = self.out_dir.join(format!("rejects/{}.csv", stats.day));
        if self.rejects.is_empty() {
            store::remove_if_exists(&rejects_path)?;
        } else {
            store::write_atomic(&rejects_path, &rejects_csv(&self.rejects)?)?;
        }
        Ok((stats, self.rejects))
    }
}

/// A usage file being read.
struct FileInput<'a> {
    path: &'a Path,
    rel: &'a str,
    day: NaiveDate,
    /// `day` as `YYYY-MM-DD`: most rows' date cell is exactly this.
    day_text: &'a str,
    index: &'a ReferenceIndex<'a>,
}

enum FileOutcome {
    Read { rows_read: u64, accepted_cost: i128 },
    Rejected,
}

fn open_usage_file(path: &Path) -> std::io::Result<Box<dyn Read>> {
    let file = std::fs::File::open(path)?;
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            file,
        )))
    } else {
        Box::new(file)
    })
}

/// Fills `buf` up to `BLOCK_BYTES` (more if it already holds that much);
/// returns whether the file has ended.
fn fill_block(reader: &mut dyn Read, buf: &mut Vec<u8>, path: &Path) -> Result<bool, DayError> {
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
        Err(e) => Err(DayError::Failed(
            anyhow::Error::new(e).context(format!("failed to read `{}`", path.display())),
        )),
    }
}

/// The end of the first record in `bytes` (after its `\n`), if complete.
fn first_record_end(bytes: &[u8]) -> Option<usize> {
    record_ends(bytes).next().map(|(end, _)| end)
}

/// The ends of the records in `bytes` (which starts at a record start), as
/// the csv crate reads them: each `\n` outside a quoted field, plus one,
/// with the number of `\n` up to it. A quote opens a quoted field only at
/// the start of a field (first byte, or after `,`, `\r` or `\n`); inside
/// one, `""` is a quote and a lone `"` closes it; any other quote is an
/// ordinary character (`5" disk`), as it is to csv.
fn record_ends(bytes: &[u8]) -> impl Iterator<Item = (usize, u64)> + '_ {
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
fn record_cuts(bytes: &[u8], chunk_bytes: usize) -> Vec<(usize, u64)> {
    let mut cuts = Vec::new();
    let mut last: Option<(usize, u64)> = None;
    let mut next_target = chunk_bytes;
    for (end, lines) in record_ends(bytes) {
        last = Some((end, lines));
        if end >= next_target {
            cuts.push((end, lines));
            next_target = end + chunk_bytes;
        }
    }
    if let Some(last) = last
        && cuts.last() != Some(&last)
    {
        cuts.push(last);
    }
    cuts
}

/// Positions of the usage columns in one file's header.
struct UsageHeader {
    len: usize,
    required: [usize; 14],
    pricing_model: Option<usize>,
    credit_eligible: Option<usize>,
    resource_id: Option<usize>,
}

impl UsageHeader {
    /// Maps a header, or names the required columns it lacks.
    fn new(header: &Header) -> Result<UsageHeader, Vec<&'static str>> {
        let mut missing = Vec::new();
        let mut required = [0; 14];
        for (slot, name) in required.iter_mut().zip(REQUIRED_COLUMNS) {
            let position = match *name {
                "billingCurrency" => header
                    .position("billingCurrency")
                    .or_else(|| header.position("billingCurrencyCode")),
                _ => header.position(name),
            };
            match position {
                Some(p) => *slot = p,
                None => missing.push(*name),
            }
        }
        if !missing.is_empty() {
            return Err(missing);
        }
        Ok(UsageHeader {
            len: header.len,
            required,
            pricing_model: header.position("pricingModel"),
            credit_eligible: header.position("isAzureCreditEligible"),
            resource_id: header.position("resourceId"),
        })
    }
}

/// Streams one usage file through the parser into the day's partition.
fn read_file(
    file: &FileInput,
    sink: &std::sync::mpsc::SyncSender<DataFrame>,
    rejects: &mut Vec<Reject>,
    sums: &mut DaySums,
) -> Result<FileOutcome, DayError> {
    let unreadable = |detail: String| DayError::Unreadable {
        path: file.path.to_path_buf(),
        detail,
    };
    let mut reader =
        open_usage_file(file.path).map_err(|e| unreadable(format!("cannot open: {e}")))?;
    let mut buf = Vec::new();
    let mut eof = fill_block(reader.as_mut(), &mut buf, file.path)?;
    if buf.starts_with(b"\xEF\xBB\xBF") {
        buf.drain(..3);
    }
    // The header: the first record.
    let header_end = first_record_end(&buf).unwrap_or(buf.len());
    let header_text = std::str::from_utf8(&buf[..header_end])
        .map_err(|e| unreadable(format!("invalid UTF-8: {e}")))?;
    let header = Header::new(
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(header_text.as_bytes())
            .records()
            .next()
            .and_then(Result::ok)
            .as_ref()
            .map(|r| r.iter().map(str::to_string).collect::<Vec<_>>())
            .unwrap_or_default()
            .iter()
            .map(String::as_str),
    );
    let columns = match UsageHeader::new(&header) {
        Ok(c) => c,
        Err(missing) => {
            let detail = format!("missing columns: {}", missing.join(", "));
            rejects.push(whole_file(
                file.rel,
                RejectReason::MissingColumns,
                detail,
                header_text,
            ));
            return Ok(FileOutcome::Rejected);
        }
    };
    let mut next_line = 1 + header_text.bytes().filter(|b| *b == b'\n').count() as u64;
    if !header_text.ends_with('\n') {
        next_line += 1;
    }
    buf.drain(..header_end);
    let mut rows_read = 0;
    let mut accepted_cost = 0;
    loop {
        let mut cuts = record_cuts(&buf, CHUNK_BYTES);
        if eof && cuts.last().is_none_or(|c| c.0 < buf.len()) {
            let lines = buf.iter().filter(|b| **b == b'\n').count() as u64;
            cuts.push((buf.len(), lines));
        }
        let Some(&(end, _)) = cuts.last() else {
            // No complete record in a whole block (an unbalanced quote?): read more.
            eof = fill_block(reader.as_mut(), &mut buf, file.path)?;
            continue;
        };
        let mut chunks = Vec::with_capacity(cuts.len());
        let (mut start, mut lines_before) = (0, 0);
        for &(cut, lines) in &cuts {
            chunks.push((&buf[start..cut], next_line + lines_before));
            (start, lines_before) = (cut, lines);
        }
        let parsed: Vec<Result<ChunkOutput, ChunkError>> = chunks
            .into_par_iter()
            .map(|(chunk, first_line)| parse_chunk(chunk, first_line, &columns, file))
            .collect();
        for chunk in parsed {
            let chunk = chunk.map_err(|e| match e {
                ChunkError::Unreadable(detail) => unreadable(detail),
                ChunkError::Polars(e) => DayError::Failed(e.into()),
            })?;
            rows_read += chunk.rows_read;
            accepted_cost += chunk.accepted_cost;
            rejects.extend(chunk.rejects);
            sums.merge(chunk.sums);
            sink.send(chunk.rows)
                .map_err(|_| DayError::Failed(anyhow::anyhow!("the parquet encoder stopped")))?;
        }
        next_line += lines_before;
        buf.drain(..end);
        if eof && buf.is_empty() {
            break;
        }
        if !eof {
            eof = fill_block(reader.as_mut(), &mut buf, file.path)?;
        }
    }
    Ok(FileOutcome::Read {
        rows_read,
        accepted_cost,
    })
}

/// What one chunk of records gave.
struct ChunkOutput {
    rows: DataFrame,
    rows_read: u64,
    accepted_cost: i128,
    rejects: Vec<Reject>,
    sums: ChunkSums,
}

enum ChunkError {
    Unreadable(String),
    Polars(PolarsError),
}

/// Parses and validates the records of one chunk (`first_line` is the
/// physical line its first record starts on).
fn parse_chunk(
    bytes: &[u8],
    first_line: u64,
    columns: &UsageHeader,
    file: &FileInput,
) -> Result<ChunkOutput, ChunkError> {
    // Each record is checked for UTF-8 as it is read (a `StringRecord`).
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = csv::StringRecord::new();
    let mut rows = UsageColumns::with_capacity(bytes.len() / 200);
    let mut rejects = Vec::new();
    let mut sums = ChunkSums::default();
    let mut rows_read = 0;
    let (mut line, mut counted_to) = (first_line, 0);
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let detail = match (e.kind(), e.position()) {
                    (csv::ErrorKind::Utf8 { .. }, Some(position)) => {
                        let start = record_start(bytes, position);
                        let at = line + lines_in(&bytes[counted_to..start]);
                        format!("invalid UTF-8 on line {at}")
                    }
                    _ => e.to_string(),
                };
                return Err(ChunkError::Unreadable(detail));
            }
        }
        rows_read += 1;
        let start = record_start(
            bytes,
            record
                .position()
                .expect("records read from a reader have a position"),
        );
        line += lines_in(&bytes[counted_to..start]);
        counted_to = start;
        match validate_row(&record, columns, file) {
            Ok(row) => {
                sums.add(&SumsRow {
                    subscription: row.subscription_position,
                    line: [
                        row.meter_id,
                        row.meter_category,
                        row.meter_name,
                        row.unit,
                        row.charge_type,
                        row.publisher_type,
                        row.pricing_model,
                    ],
                    credit_eligible: row.credit_eligible,
                    quantity: row.quantity,
                    cost: row.cost,
                });
                rows.push(row, line);
            }
            Err((reason, detail)) => {
                // The record was read as UTF-8, so its bytes are UTF-8.
                let raw = String::from_utf8_lossy(&bytes[start..reader.position().byte() as usize]);
                rejects.push(Reject {
                    file: file.rel.to_string(),
                    line,
                    reason,
                    detail,
                    raw: raw.trim_end_matches(['\r', '\n']).to_string(),
                });
            }
        }
    }
    let accepted_cost = rows.cost.iter().sum();
    Ok(ChunkOutput {
        rows: rows.into_frame(file.rel).map_err(ChunkError::Polars)?,
        rows_read,
        accepted_cost,
        rejects,
        sums,
    })
}

/// Where the record csv places at `position` really starts: csv ends a
/// record at `\r` and starts the next at the `\n`, so the record starts
/// after any line-end bytes, on the next line.
fn record_start(bytes: &[u8], position: &csv::Position) -> usize {
    let mut start = position.byte() as usize;
    while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
        start += 1;
    }
    start
}

fn lines_in(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

fn whole_file(rel: &str, reason: RejectReason, detail: String, header: &str) -> Reject {
    Reject {
        file: rel.to_string(),
        line: 1,
        reason,
        detail,
        raw: header.lines().next().unwrap_or("").to_string(),
    }
}

/// A validated usage row, values normalised.
struct UsageRow<'a> {
    date: NaiveDate,
    account: &'a str,
    profile: &'a str,
    subscription: &'a str,
    /// The subscription's position in [`ReferenceIndex::subscription_names`].
    subscription_position: u32,
    meter_id: &'a str,
    meter_category: &'a str,
    meter_name: &'a str,
    unit: &'a str,
    quantity: i128,
    unit_price: i128,
    cost: i128,
    currency: &'a str,
    charge_type: &'a str,
    publisher_type: &'static str,
    pricing_model: &'static str,
    credit_eligible: bool,
    resource_id: Option<&'a str>,
}

type RowError = (RejectReason, String);

/// The reference data a usage row is checked against, indexed for the hot
/// loop: hash lookups by id, each profile's first period computed once.
struct ReferenceIndex<'a> {
    profiles: FastMap<&'a str, ProfileCheck<'a>>,
    subscriptions: FastMap<&'a str, SubscriptionCheck<'a>>,
    /// (profile id, subscription id) of every subscription.
    subscription_names: Vec<(&'a str, &'a str)>,
}

/// A subscription as the row checks need it, with its profile.
struct SubscriptionCheck<'a> {
    /// Its position in [`ReferenceIndex::subscription_names`].
    position: u32,
    profile_id: &'a str,
    start_date: NaiveDate,
    profile: ProfileCheck<'a>,
}

/// A profile as the row checks need it.
#[derive(Clone, Copy)]
struct ProfileCheck<'a> {
    account_id: &'a str,
    currency: &'a crate::model::Currency,
    first_period_start: NaiveDate,
}

impl<'a> ReferenceIndex<'a> {
    fn new(reference: &'a Reference, billing_start: NaiveDate) -> ReferenceIndex<'a> {
        let check = |p: &'a Profile| ProfileCheck {
            account_id: &p.account_id,
            currency: &p.currency,
            first_period_start: p.first_period(billing_start).start,
        };
        ReferenceIndex {
            profiles: reference
                .profiles
                .iter()
                .map(|(id, p)| (id.as_str(), check(p)))
                .collect(),
            subscriptions: reference
                .subscriptions
                .iter()
                .zip(0..)
                .filter_map(|((id, s), position)| {
                    let profile = reference.profiles.get(&s.profile_id)?;
                    let check = SubscriptionCheck {
                        position,
                        profile_id: &s.profile_id,
                        start_date: s.start_date,
                        profile: check(profile),
                    };
                    Some((id.as_str(), check))
                })
                .collect(),
            subscription_names: reference
                .subscriptions
                .values()
                .map(|s| (s.profile_id.as_str(), s.id.as_str()))
                .collect(),
        }
    }
}

fn validate_row<'a>(
    record: &'a csv::StringRecord,
    columns: &UsageHeader,
    file: &FileInput<'a>,
) -> Result<UsageRow<'a>, RowError> {
    let (day, index) = (file.day, file.index);
    use RejectReason::*;
    if record.len() < columns.len {
        return Err((
            TooFewFields,
            format!("{} fields, header has {}", record.len(), columns.len),
        ));
    }
    if record.len() > columns.len {
        return Err((
            TooManyFields,
            format!("{} fields, header has {}", record.len(), columns.len),
        ));
    }
    let mut cells = [""; 14];
    for (i, (cell, position)) in cells.iter_mut().zip(columns.required).enumerate() {
        *cell = record[position].trim();
        if cell.is_empty() {
            return Err((MissingValue, format!("empty {}", REQUIRED_COLUMNS[i])));
        }
    }
    let optional = |p: Option<usize>| p.map(|p| record[p].trim()).filter(|v| !v.is_empty());
    let [
        date,
        account,
        profile,
        subscription,
        meter_id,
        meter_category,
        meter_name,
        unit,
        quantity,
        unit_price,
        cost,
        currency,
        charge_type,
        publisher,
    ] = cells;

    let date_value = if date == file.day_text {
        day
    } else {
        parse_usage_date(date).ok_or_else(|| (BadDate, format!("{date:?} is not a date")))?
    };
    if date_value != day {
        return Err((
            DateMismatch,
            format!("row dated {date_value}, file is for {day}"),
        ));
    }
    // One lookup for a row that names its subscription, profile and
    // account rightly; a wrong one is looked at again to name the reason.
    let known = index
        .subscriptions
        .get(subscription)
        .filter(|s| s.profile_id == profile && s.profile.account_id == account);
    let Some(sub) = known else {
        return Err(
            if index
                .profiles
                .get(profile)
                .is_none_or(|p| p.account_id != account)
            {
                (
                    UnknownProfile,
                    format!("profile {profile:?} is not under account {account:?}"),
                )
            } else {
                (
                    UnknownSubscription,
                    format!("subscription {subscription:?} is not under profile {profile:?}"),
                )
            },
        );
    };
    let profile_ref = &sub.profile;
    if date_value < sub.start_date || date_value < profile_ref.first_period_start {
        return Err((
            BeforeStart,
            format!(
                "dated {date_value}, before subscription start {} or first period {}",
                sub.start_date, profile_ref.first_period_start
            ),
        ));
    }
    if !currency.eq_ignore_ascii_case(profile_ref.currency.code()) {
        return Err((
            CurrencyMismatch,
            format!("{currency} but profile bills in {}", profile_ref.currency),
        ));
    }
    let number = |name: &str, text: &str| {
        parse_usage_value(text).ok_or_else(|| {
            let detail = match parse_scaled(text, USAGE_SCALE) {
                Some(_) => format!("{name} {text:?} has a magnitude of 10^18 or more"),
                None => format!("{name} {text:?} is not a decimal"),
            };
            (BadNumber, detail)
        })
    };
    let quantity = number("quantity", quantity)?;
    let unit_price = number("unitPrice", unit_price)?;
    let cost = number("costInBillingCurrency", cost)?;
    let publisher_type = one_of(publisher, PUBLISHER_TYPES)
        .ok_or_else(|| (BadEnum, format!("publisherType {publisher:?}")))?;
    let pricing_model = match optional(columns.pricing_model) {
        None => "OnDemand",
        Some(raw) => {
            one_of(raw, PRICING_MODELS).ok_or_else(|| (BadEnum, format!("pricingModel {raw:?}")))?
        }
    };
    let credit_eligible = match optional(columns.credit_eligible) {
        None => publisher_type == "Azure",
        Some(v) => {
            parse_bool(v).ok_or_else(|| (BadBool, format!("isAzureCreditEligible {v:?}")))?
        }
    };
    Ok(UsageRow {
        date: date_value,
        account,
        profile,
        subscription,
        subscription_position: sub.position,
        meter_id,
        meter_category,
        meter_name,
        unit,
        quantity,
        unit_price,
        cost,
        currency: profile_ref.currency.code(),
        charge_type,
        publisher_type,
        pricing_model,
        credit_eligible,
        resource_id: optional(columns.resource_id),
    })
}

/// `publisherType` spellings (any case) and the value stored for each.
const PUBLISHER_TYPES: &[(&str, &str)] = &[
    ("Azure", "Azure"),
    ("Microsoft", "Azure"),
    ("Marketplace", "Marketplace"),
];

/// `pricingModel` spellings (any case) and the value stored for each.
const PRICING_MODELS: &[(&str, &str)] = &[
    ("OnDemand", "OnDemand"),
    ("On Demand", "OnDemand"),
    ("Reservation", "Reservation"),
    ("SavingsPlan", "SavingsPlan"),
    ("Spot", "Spot"),
];

/// The stored value of an enum cell, matched case-insensitively.
fn one_of(cell: &str, spellings: &[(&str, &'static str)]) -> Option<&'static str> {
    spellings
        .iter()
        .find(|(spelling, _)| cell.eq_ignore_ascii_case(spelling))
        .map(|&(_, value)| value)
}

/// Accepted rows of a chunk, column by column (SPEC §6 `usage`).
struct UsageColumns {
    date: Vec<i32>,
    account: StringChunkedBuilder,
    profile: StringChunkedBuilder,
    subscription: StringChunkedBuilder,
    meter_id: StringChunkedBuilder,
    meter_category: StringChunkedBuilder,
    meter_name: StringChunkedBuilder,
    unit: StringChunkedBuilder,
    quantity: Vec<i128>,
    unit_price: Vec<i128>,
    cost: Vec<i128>,
    currency: StringChunkedBuilder,
    charge_type: StringChunkedBuilder,
    publisher_type: StringChunkedBuilder,
    pricing_model: StringChunkedBuilder,
    credit_eligible: Vec<bool>,
    resource_id: StringChunkedBuilder,
    source_line: Vec<i64>,
}

impl UsageColumns {
    fn with_capacity(n: usize) -> UsageColumns {
        let text = |name: &str| StringChunkedBuilder::new(name.into(), n);
        UsageColumns {
            date: Vec::with_capacity(n),
            account: text("billing_account_id"),
            profile: text("billing_profile_id"),
            subscription: text("subscription_id"),
            meter_id: text("meter_id"),
            meter_category: text("meter_category"),
            meter_name: text("meter_name"),
            unit: text("unit_of_measure"),
            quantity: Vec::with_capacity(n),
            unit_price: Vec::with_capacity(n),
            cost: Vec::with_capacity(n),
            currency: text("billing_currency"),
            charge_type: text("charge_type"),
            publisher_type: text("publisher_type"),
            pricing_model: text("pricing_model"),
            credit_eligible: Vec::with_capacity(n),
            resource_id: text("resource_id"),
            source_line: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, row: UsageRow, line: u64) {
        self.date.push(store::days_since_epoch(row.date));
        self.account.append_value(row.account);
        self.profile.append_value(row.profile);
        self.subscription.append_value(row.subscription);
        self.meter_id.append_value(row.meter_id);
        self.meter_category.append_value(row.meter_category);
        self.meter_name.append_value(row.meter_name);
        self.unit.append_value(row.unit);
        self.quantity.push(row.quantity);
        self.unit_price.push(row.unit_price);
        self.cost.push(row.cost);
        self.currency.append_value(row.currency);
        self.charge_type.append_value(row.charge_type);
        self.publisher_type.append_value(row.publisher_type);
        self.pricing_model.append_value(row.pricing_model);
        self.credit_eligible.push(row.credit_eligible);
        self.resource_id.append_option(row.resource_id);
        self.source_line.push(line as i64);
    }

    fn into_frame(self, source_file: &str) -> PolarsResult<DataFrame> {
        let scale = USAGE_SCALE as usize;
        let height = self.date.len();
        let text = |b: StringChunkedBuilder| Column::from(b.finish().into_series());
        DataFrame::new(
            height,
            vec![
                Int32Chunked::from_vec("date".into(), self.date)
                    .into_date()
                    .into_series()
                    .into(),
                text(self.account),
                text(self.profile),
                text(self.subscription),
                text(self.meter_id),
                text(self.meter_category),
                text(self.meter_name),
                text(self.unit),
                store::decimal_column("quantity", self.quantity, scale)?,
                store::decimal_column("unit_price", self.unit_price, scale)?,
                store::decimal_column("cost_in_billing_currency", self.cost, scale)?,
                text(self.currency),
                text(self.charge_type),
                text(self.publisher_type),
                text(self.pricing_model),
                Column::new("is_azure_credit_eligible".into(), self.credit_eligible),
                text(self.resource_id),
                StringChunked::full("source_file".into(), source_file, height)
                    .into_series()
                    .into(),
                Column::new("source_line".into(), self.source_line),
            ],
        )
    }
}

/// The day's partition: row groups streamed to a temporary file, renamed
/// into place when the day is complete (removed when it has no rows).
/// Every failure names the file and the operating system's reason.
struct PartitionWriter {
    path: PathBuf,
    tmp: PathBuf,
    writer: Option<polars::io::parquet::write::BatchedWriter<store::RecordingFile>>,
    io_error: store::FirstIoError,
    pending: Option<DataFrame>,
    rows: u64,
}

impl PartitionWriter {
    fn new(path: &Path) -> anyhow::Result<PartitionWriter> {
        let dir = path.parent().expect("partitions have a folder");
        let tmp = dir.join(format!(".usage.parquet.tmp-{}", std::process::id()));
        Ok(PartitionWriter {
            path: path.to_path_buf(),
            tmp,
            writer: None,
            io_error: store::FirstIoError::default(),
            pending: None,
            rows: 0,
        })
    }

    fn push(&mut self, df: DataFrame) -> anyhow::Result<()> {
        if df.height() == 0 {
            return Ok(());
        }
        self.rows += df.height() as u64;
        match &mut self.pending {
            Some(pending) => {
                pending.vstack_mut(&df)?;
            }
            None => self.pending = Some(df),
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.height() >= ROW_GROUP_ROWS)
        {
            self.flush()?;
        }
        Ok(())
    }

    /// A polars error while writing, with the I/O reason polars may have
    /// lost (a full disk shows as "Invalid thrift: transport error").
    fn write_error(&self, error: PolarsError) -> anyhow::Error {
        match self.io_error.take() {
            Some(reason) => store::failed("write", &self.tmp)(reason).into(),
            None => anyhow::anyhow!("cannot write `{}`: {error}", self.tmp.display()),
        }
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        let Some(mut df) = self.pending.take() else {
            return Ok(());
        };
        df.rechunk_mut_par();
        if self.writer.is_none() {
            let dir = self.tmp.parent().expect("has a folder");
            std::fs::create_dir_all(dir).map_err(store::failed("create", dir))?;
            let (file, io_error) = store::RecordingFile::create(&self.tmp)?;
            self.io_error = io_error;
            let writer = ParquetWriter::new(file)
                .with_compression(ParquetCompression::Snappy)
                .batched(df.schema())
                .map_err(|e| self.write_error(e))?;
            self.writer = Some(writer);
        }
        let written = self
            .writer
            .as_mut()
            .expect("created above")
            .write_batch(&df);
        written.map_err(|e| self.write_error(e))
    }

    /// Completes the partition; returns its row count.
    fn finish(mut self) -> anyhow::Result<u64> {
        self.flush()?;
        match self.writer.take() {
            None => store::remove_if_exists(&self.path)?,
            Some(writer) => {
                let finished = writer.finish();
                if let Err(e) = finished {
                    return Err(self.write_error(e));
                }
                drop(writer);
                std::fs::File::open(&self.tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(store::failed("write", &self.tmp))?;
                std::fs::rename(&self.tmp, &self.path)
                    .map_err(store::failed("rename into place", &self.path))?;
            }
        }
        Ok(self.rows)
    }

    fn abort(mut self) {
        self.writer = None;
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// `rejects/D.csv`: file, line, reason, detail, raw.
fn rejects_csv(rejects: &[Reject]) -> anyhow::Result<Vec<u8>> {
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
    Ok(writer.into_inner()?)
}

#[cfg(test)]
mod tests;
