//! Ingest (SPEC §2.1): daily usage CSVs to validated usage parquet
//! (`OUT/usage/date=D/usage.parquet`) and rejected rows
//! (`OUT/rejects/D.csv`). A day is re-ingested only when its set of files
//! changed (name, size, content hash), and then as a whole, so its partition is
//! replaced atomically. A day's files are parsed in 4 MB chunks in
//! parallel (rayon); each chunk's rows go to the partition's encoder and
//! its sums to the day's summer, each a thread of its own, and a day is
//! completed on its own thread while the next day is parsed.
//!
//! Every row read is either accepted or rejected with a reason; the day's
//! reconciliation (read = accepted + rejected, accepted cost) goes to the
//! ledger and the run summary.
//!
//! The parts: `listing` (files by day, fingerprints), `shard` (shard workers
//! and manifests), `day` (one day's files to its partition), `cut` (block
//! cutting), `split` (records to fields), `index` (the reference data as
//! the row checks look it up), `rows` (parsing and validating rows),
//! `batch` (accepted rows, text columns as dictionaries), `partition`
//! (the parquet writer).

mod batch;
mod cut;
mod day;
mod index;
mod listing;
mod partition;
mod rows;
mod shard;
mod split;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::data_source::{UsageListing, UsageSource};
use crate::model::{DayStats, FileFingerprint, Reference};
use crate::store;

pub use shard::{Manifest, Shard, adopt_manifests, ingest_shard};

use day::{Completion, parse_day};
use index::ReferenceIndex;
use listing::fingerprint_unless_new;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    File(#[from] store::FileError),
    /// Recording an ingested day (in the ledger) failed.
    #[error("cannot record an ingested day: {0}")]
    Record(Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Parquet(#[from] store::ParquetError),
    #[error("cannot write `{path}`: {source}")]
    Partition {
        path: PathBuf,
        source: polars::prelude::PolarsError,
    },
    #[error("cannot build the rows of `{file}`: {source}")]
    Rows {
        file: String,
        source: polars::prelude::PolarsError,
    },
    #[error("cannot write the rejects of {day}: {source}")]
    Rejects { day: NaiveDate, source: csv::Error },
    #[error("the parquet encoder of {0} stopped")]
    EncoderStopped(NaiveDate),
    #[error("shard manifest `{path}` is not valid: {source}")]
    Manifest {
        path: PathBuf,
        source: serde_json::Error,
    },
}

type Result<T, E = IngestError> = std::result::Result<T, E>;

/// Columns a usage file must have; `billingCurrency` may be EA's
/// `billingCurrencyCode`, `costInBillingCurrency` EA's `Cost` (SPEC §2.1).
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

/// What ingest reads and where it writes.
pub struct IngestOptions<'a> {
    /// DATA's usage files (a folder's or an object store's).
    pub usage: &'a UsageSource,
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

/// Records one ingested day and the files it read (the run: in the
/// ledger), as soon as its partition is in place.
pub trait RecordDay:
    FnMut(
    &DayStats,
    &[FileFingerprint],
) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>
{
}

impl<F> RecordDay for F where
    F: FnMut(
        &DayStats,
        &[FileFingerprint],
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>
{
}

/// The files each day was last ingested from, as the ledger holds them.
pub type IngestedFiles = std::collections::BTreeMap<NaiveDate, Vec<FileFingerprint>>;

/// Ingests every new or changed day of usage: a day whose files differ
/// from what `ingested` holds for it. Each day ingested goes to `record`
/// as soon as its partition is in place, so a killed run keeps what it did.
pub fn ingest(
    opts: &IngestOptions,
    ingested: &IngestedFiles,
    mut record: impl RecordDay,
) -> Result<IngestReport> {
    let listing = opts.usage.list()?;
    let mut report = IngestReport {
        ignored_files: listing.ignored.clone(),
        ..Default::default()
    };
    let todo = days_to_ingest(opts, listing, ingested, &mut report)?;
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
        record(&stats, &fingerprints).map_err(IngestError::Record)?;
        report.days_ingested.push(stats);
        Ok(())
    })?;
    Ok(report)
}

/// A day's files and their fingerprints (none for a file hashed as read).
type DayToIngest = (NaiveDate, Vec<PathBuf>, Vec<Option<FileFingerprint>>);

/// The days whose files differ from what `ingested` holds for them (or,
/// in a store, whose objects were uploaded again), with their
/// fingerprints; the report counts the unchanged days and the files
/// before billing_start.
fn days_to_ingest(
    opts: &IngestOptions,
    listing: UsageListing,
    ingested: &IngestedFiles,
    report: &mut IngestReport,
) -> Result<Vec<DayToIngest>> {
    let mut candidates = Vec::new();
    for (day, files) in listing.days {
        if day < opts.billing_start {
            report
                .files_before_billing_start
                .extend(files.iter().map(|f| opts.usage.relative(f)));
        } else {
            candidates.push((day, files));
        }
    }
    // Hashing a file is a full read: skipped for a file of the same size
    // and modification time as when it was hashed, left to the parse for a
    // new file (read once, not twice), done in parallel else.
    let known: HashMap<String, FileFingerprint> = ingested
        .values()
        .flatten()
        .map(|f| (f.path.clone(), f.clone()))
        .collect();
    let fingerprints: Vec<Vec<Option<FileFingerprint>>> = candidates
        .par_iter()
        .map(|(_, files)| {
            files
                .par_iter()
                .map(|f| fingerprint_unless_new(opts.usage, f, &known))
                .collect()
        })
        .collect::<std::result::Result<_, store::FileError>>()?;
    let mut todo = Vec::new();
    for ((day, files), fingerprints) in candidates.into_iter().zip(fingerprints) {
        let before = ingested.get(&day).map_or(&[][..], Vec::as_slice);
        let unchanged = before.len() == fingerprints.len()
            && before
                .iter()
                .zip(&fingerprints)
                .all(|(a, b)| b.as_ref().is_some_and(|b| a.same_file(b)));
        if unchanged {
            report.days_unchanged += 1;
        } else {
            todo.push((day, files, fingerprints));
        }
    }
    Ok(todo)
}

/// Ingests days one after another, each parsed in parallel chunks: memory
/// stays that of about one block per day in flight however many days
/// arrive. A day's partition is completed (the last row group encoded,
/// the file renamed into place, its sums and rejects written) on a thread
/// of its own while the next day is parsed. `done` gets each completed day
/// in order, on this thread, so a day is recorded as soon as its partition
/// is in place and a killed run keeps what it did. A file without a
/// fingerprint is hashed as it is read.
fn ingest_days(
    opts: &IngestOptions,
    days: Vec<DayToIngest>,
    mut done: impl FnMut(DayStats, &[Reject], Vec<FileFingerprint>) -> Result<()>,
) -> Result<()> {
    let index = ReferenceIndex::new(opts.reference, opts.billing_start);
    // The buffer usage files are read into, from file to file (freed when
    // ingest ends).
    let mut read_buffer = Vec::new();
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
        let parsed = parse_day(opts, &index, day, &files, fingerprints, &mut read_buffer);
        // The previous day completes first, whether or not this one parsed.
        complete(completing.take())?;
        let (parsed, fingerprints) = parsed?;
        completing = Some((parsed.complete_in_background(), fingerprints));
    }
    complete(completing)
}

fn is_whole_file(reason: RejectReason) -> bool {
    matches!(
        reason,
        RejectReason::MissingColumns | RejectReason::Unreadable
    )
}

#[cfg(test)]
mod tests;
