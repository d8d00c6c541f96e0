//! Ingest (SPEC §2.1): daily usage CSVs to validated usage parquet
//! (`OUT/usage/date=D/usage.parquet`) and rejected rows
//! (`OUT/rejects/D.csv`). A day is re-ingested only when its set of files
//! changed (name, size, SHA-256), and then as a whole, so its partition is
//! replaced atomically. Days are parsed in parallel with rayon.
//!
//! Every row read is either accepted or rejected with a reason; the day's
//! reconciliation (read = accepted + rejected, accepted cost) goes to the
//! ledger and the run summary.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::ledger::{DayStats, FileFingerprint, Ledger};
use crate::model::{Period, Reference};
use crate::parse::{
    Header, USAGE_SCALE, parse_bool, parse_iso_date, parse_scaled, parse_usage_date,
    scaled_to_decimal,
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
pub fn list_usage_files(data_dir: &Path) -> std::io::Result<UsageListing> {
    let mut listing = UsageListing {
        days: BTreeMap::new(),
        ignored: Vec::new(),
    };
    let dir = data_dir.join("usage");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(listing);
    };
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
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

/// Ingests every new or changed day of usage.
pub fn ingest(opts: &IngestOptions, ledger: &mut Ledger) -> anyhow::Result<IngestReport> {
    let listing = list_usage_files(opts.data_dir)?;
    let mut report = IngestReport {
        ignored_files: listing.ignored.clone(),
        ..Default::default()
    };
    let mut todo = Vec::new();
    for (day, files) in &listing.days {
        if *day < opts.billing_start {
            report
                .files_before_billing_start
                .extend(files.iter().map(|f| relative(opts.data_dir, f)));
            continue;
        }
        let fingerprints = files
            .iter()
            .map(|f| fingerprint(opts.data_dir, f))
            .collect::<std::io::Result<Vec<_>>>()?;
        if ledger.ingested_files(*day)? == fingerprints {
            report.days_unchanged += 1;
        } else {
            todo.push((*day, files.clone(), fingerprints));
        }
    }
    let results: Vec<anyhow::Result<IngestedDay>> = todo
        .into_par_iter()
        .map(|(day, files, fingerprints)| {
            let (stats, rejects) = ingest_day(opts, day, &files)?;
            Ok(IngestedDay {
                stats,
                fingerprints,
                rejects,
            })
        })
        .collect();
    for result in results {
        let IngestedDay {
            stats,
            fingerprints,
            rejects,
        } = result?;
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
    }
    Ok(report)
}

/// A day whose partitions were written, before the ledger records it.
struct IngestedDay {
    stats: DayStats,
    fingerprints: Vec<FileFingerprint>,
    rejects: Vec<Reject>,
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

fn fingerprint(data_dir: &Path, path: &Path) -> std::io::Result<FileFingerprint> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher)?;
    let digest = hasher.finalize();
    Ok(FileFingerprint {
        path: relative(data_dir, path),
        size,
        sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
    })
}

/// Parses all files of one day and writes its usage and rejects partitions.
fn ingest_day(
    opts: &IngestOptions,
    day: NaiveDate,
    files: &[PathBuf],
) -> anyhow::Result<(DayStats, Vec<Reject>)> {
    let mut stats = DayStats {
        day,
        files: files.len() as u64,
        ..Default::default()
    };
    let mut rows = UsageColumns::default();
    let mut rejects = Vec::new();
    for path in files {
        let rel = relative(opts.data_dir, path);
        match read_usage_file(path) {
            Ok(text) => {
                let outcome = parse_usage(&text, &rel, day, opts, &mut rows, &mut rejects);
                match outcome {
                    FileOutcome::Read { rows_read } => {
                        stats.present = true;
                        stats.rows_read += rows_read;
                    }
                    FileOutcome::Rejected => stats.files_rejected += 1,
                }
            }
            Err(detail) => {
                stats.files_rejected += 1;
                rejects.push(Reject {
                    file: rel,
                    line: 1,
                    reason: RejectReason::Unreadable,
                    detail,
                    raw: String::new(),
                });
            }
        }
    }
    stats.rows_accepted = rows.len() as u64;
    stats.rows_rejected = stats.rows_read - stats.rows_accepted;
    let cost: i128 = rows.cost.iter().sum();
    stats.accepted_cost = scaled_to_decimal(cost, USAGE_SCALE)
        .ok_or_else(|| anyhow::anyhow!("accepted cost of {day} overflows"))?;

    let partition = opts.out_dir.join(format!("usage/date={day}/usage.parquet"));
    if rows.is_empty() {
        store::remove_if_exists(&partition)?;
    } else {
        let mut df = rows.into_frame()?;
        store::write_parquet(&partition, &mut df)?;
    }
    let rejects_path = opts.out_dir.join(format!("rejects/{day}.csv"));
    if rejects.is_empty() {
        store::remove_if_exists(&rejects_path)?;
    } else {
        store::write_atomic(&rejects_path, &rejects_csv(&rejects)?)?;
    }
    Ok((stats, rejects))
}

/// Reads a usage file as UTF-8 text, un-gzipping `.gz`; Err is the reason
/// the file is `unreadable`.
fn read_usage_file(path: &Path) -> Result<String, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("corrupt gzip: {e}"))?;
        out
    } else {
        raw
    };
    let mut text = String::from_utf8(bytes).map_err(|e| format!("invalid UTF-8: {e}"))?;
    if text.starts_with('\u{feff}') {
        text.drain(..3);
    }
    Ok(text)
}

enum FileOutcome {
    Read { rows_read: u64 },
    Rejected,
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

fn parse_usage(
    text: &str,
    rel: &str,
    day: NaiveDate,
    opts: &IngestOptions,
    rows: &mut UsageColumns,
    rejects: &mut Vec<Reject>,
) -> FileOutcome {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    let header = match reader.read_record(&mut record) {
        Ok(true) => Header::new(record.iter()),
        Ok(false) => Header::new([]),
        Err(e) => {
            rejects.push(whole_file(
                rel,
                RejectReason::Unreadable,
                e.to_string(),
                text,
            ));
            return FileOutcome::Rejected;
        }
    };
    let columns = match UsageHeader::new(&header) {
        Ok(c) => c,
        Err(missing) => {
            let detail = format!("missing columns: {}", missing.join(", "));
            rejects.push(whole_file(rel, RejectReason::MissingColumns, detail, text));
            return FileOutcome::Rejected;
        }
    };
    let mut rows_read = 0;
    loop {
        let start = reader.position().clone();
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // Only invalid UTF-8 fails here, and the text was checked.
                rejects.push(whole_file(
                    rel,
                    RejectReason::Unreadable,
                    e.to_string(),
                    text,
                ));
                return FileOutcome::Rejected;
            }
        }
        rows_read += 1;
        let line = record.position().map_or(start.line(), |p| p.line());
        match validate_row(&record, &columns, day, opts) {
            Ok(row) => rows.push(row, rel, line),
            Err((reason, detail)) => {
                let end = reader.position().byte() as usize;
                let begin = record.position().map_or(start.byte(), |p| p.byte()) as usize;
                let raw = text[begin..end].trim_end_matches(['\r', '\n']).to_string();
                rejects.push(Reject {
                    file: rel.to_string(),
                    line,
                    reason,
                    detail,
                    raw,
                });
            }
        }
    }
    FileOutcome::Read { rows_read }
}

fn whole_file(rel: &str, reason: RejectReason, detail: String, text: &str) -> Reject {
    Reject {
        file: rel.to_string(),
        line: 1,
        reason,
        detail,
        raw: text.lines().next().unwrap_or("").to_string(),
    }
}

/// A validated usage row, values normalised.
struct UsageRow<'a> {
    date: NaiveDate,
    account: &'a str,
    profile: &'a str,
    subscription: &'a str,
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

fn validate_row<'a>(
    record: &'a csv::StringRecord,
    columns: &UsageHeader,
    day: NaiveDate,
    opts: &IngestOptions<'a>,
) -> Result<UsageRow<'a>, RowError> {
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

    let date_value =
        parse_usage_date(date).ok_or_else(|| (BadDate, format!("{date:?} is not a date")))?;
    if date_value != day {
        return Err((
            DateMismatch,
            format!("row dated {date_value}, file is for {day}"),
        ));
    }
    let reference = opts.reference;
    let known_profile = reference
        .profiles
        .get(profile)
        .filter(|p| p.account_id == account);
    let profile_ref = known_profile.ok_or_else(|| {
        (
            UnknownProfile,
            format!("profile {profile:?} is not under account {account:?}"),
        )
    })?;
    let sub = reference
        .subscriptions
        .get(subscription)
        .filter(|s| s.profile_id == profile)
        .ok_or_else(|| {
            (
                UnknownSubscription,
                format!("subscription {subscription:?} is not under profile {profile:?}"),
            )
        })?;
    let first_period = Period::containing(
        profile_ref.created_date.max(opts.billing_start),
        profile_ref.period_start_day,
    );
    if date_value < sub.start_date || date_value < first_period.start {
        return Err((
            BeforeStart,
            format!(
                "dated {date_value}, before subscription start {} or first period {}",
                sub.start_date, first_period.start
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
        parse_scaled(text, USAGE_SCALE)
            .ok_or_else(|| (BadNumber, format!("{name} {text:?} is not a decimal")))
    };
    let quantity = number("quantity", quantity)?;
    let unit_price = number("unitPrice", unit_price)?;
    let cost = number("costInBillingCurrency", cost)?;
    let publisher_type = match publisher.to_ascii_lowercase().as_str() {
        "azure" | "microsoft" => "Azure",
        "marketplace" => "Marketplace",
        _ => return Err((BadEnum, format!("publisherType {publisher:?}"))),
    };
    let pricing_model = match optional(columns.pricing_model)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("ondemand") | Some("on demand") => "OnDemand",
        Some("reservation") => "Reservation",
        Some("savingsplan") => "SavingsPlan",
        Some("spot") => "Spot",
        Some(_) => {
            let raw = optional(columns.pricing_model).unwrap_or_default();
            return Err((BadEnum, format!("pricingModel {raw:?}")));
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

/// Accepted rows of a day, column by column (SPEC §6 `usage`).
#[derive(Default)]
struct UsageColumns {
    date: Vec<NaiveDate>,
    account: Vec<String>,
    profile: Vec<String>,
    subscription: Vec<String>,
    meter_id: Vec<String>,
    meter_category: Vec<String>,
    meter_name: Vec<String>,
    unit: Vec<String>,
    quantity: Vec<i128>,
    unit_price: Vec<i128>,
    cost: Vec<i128>,
    currency: Vec<String>,
    charge_type: Vec<String>,
    publisher_type: Vec<&'static str>,
    pricing_model: Vec<&'static str>,
    credit_eligible: Vec<bool>,
    resource_id: Vec<Option<String>>,
    source_file: Vec<String>,
    source_line: Vec<i64>,
}

impl UsageColumns {
    fn len(&self) -> usize {
        self.date.len()
    }

    fn is_empty(&self) -> bool {
        self.date.is_empty()
    }

    fn push(&mut self, row: UsageRow, file: &str, line: u64) {
        self.date.push(row.date);
        self.account.push(row.account.to_string());
        self.profile.push(row.profile.to_string());
        self.subscription.push(row.subscription.to_string());
        self.meter_id.push(row.meter_id.to_string());
        self.meter_category.push(row.meter_category.to_string());
        self.meter_name.push(row.meter_name.to_string());
        self.unit.push(row.unit.to_string());
        self.quantity.push(row.quantity);
        self.unit_price.push(row.unit_price);
        self.cost.push(row.cost);
        self.currency.push(row.currency.to_string());
        self.charge_type.push(row.charge_type.to_string());
        self.publisher_type.push(row.publisher_type);
        self.pricing_model.push(row.pricing_model);
        self.credit_eligible.push(row.credit_eligible);
        self.resource_id.push(row.resource_id.map(str::to_string));
        self.source_file.push(file.to_string());
        self.source_line.push(line as i64);
    }

    fn into_frame(self) -> PolarsResult<DataFrame> {
        let scale = USAGE_SCALE as usize;
        let height = self.date.len();
        DataFrame::new(
            height,
            vec![
                store::date_column("date", self.date),
                store::string_column("billing_account_id", &self.account),
                store::string_column("billing_profile_id", &self.profile),
                store::string_column("subscription_id", &self.subscription),
                store::string_column("meter_id", &self.meter_id),
                store::string_column("meter_category", &self.meter_category),
                store::string_column("meter_name", &self.meter_name),
                store::string_column("unit_of_measure", &self.unit),
                store::decimal_column("quantity", self.quantity, scale)?,
                store::decimal_column("unit_price", self.unit_price, scale)?,
                store::decimal_column("cost_in_billing_currency", self.cost, scale)?,
                store::string_column("billing_currency", &self.currency),
                store::string_column("charge_type", &self.charge_type),
                store::string_column("publisher_type", &self.publisher_type),
                store::string_column("pricing_model", &self.pricing_model),
                Column::new("is_azure_credit_eligible".into(), self.credit_eligible),
                store::opt_string_column("resource_id", &self.resource_id),
                store::string_column("source_file", &self.source_file),
                Column::new("source_line".into(), self.source_line),
            ],
        )
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
