//! Parsing and validating the records of one chunk (SPEC §2.1): records
//! split into fields by `split` (read by csv where it gives up), each row
//! accepted into typed columns or rejected with a reason, checked against
//! the reference data through `index`.

use chrono::NaiveDate;
use polars::prelude::*;

use crate::day_sums::{ChunkSums, SumsRow};
use crate::parse::{
    Header, USAGE_SCALE, parse_bool, parse_scaled, parse_usage_date, parse_usage_value,
};

use super::batch::{UsageBatch, UsageColumns};
use super::cut::{lines_in, record_start};
use super::day::FileInput;
use super::index::{Probe, ReferenceIndex, SubscriptionCheck};
use super::split::{SplitRecord, Splitter, Unsupported};
use super::{REQUIRED_COLUMNS, Reject, RejectReason};

/// Positions of the usage columns in one file's header.
pub(super) struct UsageHeader {
    pub(super) len: usize,
    pub(super) required: [usize; 14],
    pub(super) pricing_model: Option<usize>,
    pub(super) credit_eligible: Option<usize>,
    pub(super) resource_id: Option<usize>,
    /// Whether each field is one of the above.
    pub(super) read: Vec<bool>,
}

impl UsageHeader {
    /// Maps a header, or names the required columns it lacks.
    pub(super) fn new(header: &Header) -> Result<UsageHeader, Vec<&'static str>> {
        let mut missing = Vec::new();
        let mut required = [0; 14];
        for (slot, name) in required.iter_mut().zip(REQUIRED_COLUMNS) {
            let position = match *name {
                "billingCurrency" => header
                    .position("billingCurrency")
                    .or_else(|| header.position("billingCurrencyCode")),
                // EA's Cost Details export names the cost `Cost`.
                "costInBillingCurrency" => header
                    .position("costInBillingCurrency")
                    .or_else(|| header.position("Cost")),
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
        let optional = ["pricingModel", "isAzureCreditEligible", "resourceId"]
            .map(|name| header.position(name));
        let mut read = vec![false; header.len];
        for position in required.iter().chain(optional.iter().flatten()) {
            read[*position] = true;
        }
        let [pricing_model, credit_eligible, resource_id] = optional;
        Ok(UsageHeader {
            len: header.len,
            required,
            pricing_model,
            credit_eligible,
            resource_id,
            read,
        })
    }
}

/// What one chunk of records gave.
pub(super) struct ChunkOutput {
    pub(super) rows: UsageBatch,
    pub(super) rows_read: u64,
    pub(super) accepted_cost: i128,
    pub(super) rejects: Vec<Reject>,
    pub(super) sums: ChunkSums,
    /// Whether the splitter read it (it is well-formed CSV), not csv.
    pub(super) split: bool,
}

pub(super) enum ChunkError {
    Unreadable(String),
    Polars(PolarsError),
}

/// Parses and validates the records of one chunk (`first_line` is the
/// physical line its first record starts on): split by [`Splitter`] when
/// it can, else read by csv.
pub(super) fn parse_chunk(
    bytes: &[u8],
    first_line: u64,
    columns: &UsageHeader,
    file: &FileInput,
) -> Result<ChunkOutput, ChunkError> {
    // simdutf8 checks a chunk several times faster than the standard
    // library, and gives the same answer; where it fails, csv reads the
    // chunk and names the line.
    let split = simdutf8::basic::from_utf8(bytes)
        .ok()
        .and_then(|text| split_chunk(text, first_line, columns, file).ok());
    let (rows, split) = match split {
        Some(rows) => (rows, true),
        None => (read_chunk(bytes, first_line, columns, file)?, false),
    };
    rows.finish(file, split)
}

/// The chunk's records as the splitter reads them.
pub(super) fn split_chunk(
    text: &str,
    first_line: u64,
    columns: &UsageHeader,
    file: &FileInput,
) -> Result<ChunkRows, Unsupported> {
    let bytes = text.as_bytes();
    let mut rows = ChunkRows::new(bytes.len());
    let mut splitter = Splitter::new(text, &columns.read)?;
    let subscription_column = columns.required[SUBSCRIPTION];
    while let Some(record) = splitter.next_record()? {
        // The next row's subscription is fetched while this row is taken
        // (the probe itself is not kept: the guess is only a hint).
        if let Some(next) = plain_field(text, record.end, subscription_column) {
            file.index.probe(next);
        }
        let line = first_line + record.lines_before;
        let raw = &bytes[record.start..record.end];
        rows.take(&record, line, raw, columns, file);
    }
    Ok(rows)
}

/// The position of `subscriptionId` in [`REQUIRED_COLUMNS`].
const SUBSCRIPTION: usize = 3;

/// Field `n` of the record starting at `start` in `text` if neither it nor
/// a field before it is quoted: a guess at it, good enough for a hint.
pub(super) fn plain_field(text: &str, start: usize, n: usize) -> Option<&str> {
    let bytes = text.as_bytes();
    let rest = bytes.get(start..).filter(|rest| !rest.is_empty())?;
    let mut marks = memchr::memchr3_iter(b',', b'"', b'\n', rest);
    let mut field_start = start;
    for _ in 0..n {
        let at = start + marks.next()?;
        if bytes[at] != b',' {
            return None;
        }
        field_start = at + 1;
    }
    let end = marks.next().map_or(bytes.len(), |i| start + i);
    (bytes.get(end) != Some(&b'"')).then(|| &text[field_start..end])
}

/// The chunk's records as csv reads them. Each record is checked for UTF-8
/// as it is read (a `StringRecord`).
pub(super) fn read_chunk(
    bytes: &[u8],
    first_line: u64,
    columns: &UsageHeader,
    file: &FileInput,
) -> Result<ChunkRows, ChunkError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = csv::StringRecord::new();
    let mut rows = ChunkRows::new(bytes.len());
    // The line of the last record read, counted up to byte `counted_to`.
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
        let start = record_start(
            bytes,
            record
                .position()
                .expect("records read from a reader have a position"),
        );
        let end = reader.position().byte() as usize;
        line += lines_in(&bytes[counted_to..start]);
        counted_to = start;
        rows.take(&record, line, &bytes[start..end], columns, file);
    }
    Ok(rows)
}

/// A record's cells, as csv or the splitter read them.
pub(super) trait Cells {
    fn count(&self) -> usize;
    fn cell(&self, i: usize) -> &str;
}

impl Cells for csv::StringRecord {
    fn count(&self) -> usize {
        self.len()
    }

    fn cell(&self, i: usize) -> &str {
        &self[i]
    }
}

impl Cells for SplitRecord<'_> {
    fn count(&self) -> usize {
        self.len()
    }

    fn cell(&self, i: usize) -> &str {
        self.get(i)
    }
}

/// The rows of a chunk as its records are taken: accepted into columns
/// and sums, or rejected.
pub(super) struct ChunkRows {
    rows: UsageColumns,
    rejects: Vec<Reject>,
    sums: ChunkSums,
    rows_read: u64,
}

impl ChunkRows {
    fn new(chunk_bytes: usize) -> ChunkRows {
        ChunkRows {
            rows: UsageColumns::with_capacity(chunk_bytes / 200),
            rejects: Vec::new(),
            sums: ChunkSums::default(),
            rows_read: 0,
        }
    }

    /// Takes the record starting on `line`, whose bytes are `raw`.
    fn take(
        &mut self,
        record: &impl Cells,
        line: u64,
        raw: &[u8],
        columns: &UsageHeader,
        file: &FileInput,
    ) {
        self.rows_read += 1;
        match validate_row(record, columns, file) {
            Ok(row) => {
                let line_number = self.sums.add(&SumsRow {
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
                self.rows.push(&row, line, line_number);
            }
            Err((reason, detail)) => {
                // The record was read as UTF-8, so its bytes are UTF-8.
                let raw = String::from_utf8_lossy(raw);
                self.rejects.push(Reject {
                    file: file.rel.to_string(),
                    line,
                    reason,
                    detail,
                    raw: raw.trim_end_matches(['\r', '\n']).to_string(),
                });
            }
        }
    }

    /// The chunk's output; `split` says whether the splitter read it.
    pub(super) fn finish(self, file: &FileInput, split: bool) -> Result<ChunkOutput, ChunkError> {
        let accepted_cost = self.rows.cost.iter().sum();
        Ok(ChunkOutput {
            rows: self
                .rows
                .into_batch(&self.sums, file.rel)
                .map_err(ChunkError::Polars)?,
            rows_read: self.rows_read,
            accepted_cost,
            rejects: self.rejects,
            sums: self.sums,
            split,
        })
    }
}

pub(super) fn whole_file(rel: &str, reason: RejectReason, detail: String, header: &str) -> Reject {
    Reject {
        file: rel.to_string(),
        line: 1,
        reason,
        detail,
        raw: header.lines().next().unwrap_or("").to_string(),
    }
}

/// A validated usage row, values normalised.
pub(super) struct UsageRow<'a> {
    pub(super) date: NaiveDate,
    /// The subscription's position in [`ReferenceIndex::subscription_texts`],
    /// which holds its ids and currency.
    pub(super) subscription_position: u32,
    pub(super) meter_id: &'a str,
    pub(super) meter_category: &'a str,
    pub(super) meter_name: &'a str,
    pub(super) unit: &'a str,
    pub(super) quantity: i128,
    pub(super) unit_price: i128,
    pub(super) cost: i128,
    pub(super) charge_type: &'a str,
    pub(super) publisher_type: &'static str,
    pub(super) pricing_model: &'static str,
    pub(super) credit_eligible: bool,
    pub(super) resource_id: Option<&'a str>,
}

pub(super) type RowError = (RejectReason, String);

pub(super) fn validate_row<'a>(
    record: &'a impl Cells,
    columns: &UsageHeader,
    file: &FileInput<'a>,
) -> Result<UsageRow<'a>, RowError> {
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
    ] = required_cells(record, columns)?;
    // The subscription's slot is fetched while the date and numbers are
    // parsed; faults are still reported in this order: date, ids, start
    // and currency, numbers.
    let probe = file.index.probe(subscription);
    let date = row_date(date, file);
    let quantity = usage_number("quantity", quantity);
    let unit_price = usage_number("unitPrice", unit_price);
    let cost = usage_number("costInBillingCurrency", cost);
    let date = date?;
    let sub = known_subscription(file.index, probe, [account, profile, subscription])?;
    check_start_and_currency(sub, date, currency)?;
    let (quantity, unit_price, cost) = (quantity?, unit_price?, cost?);
    let optional = |p: Option<usize>| p.map(|p| trimmed(record.cell(p))).filter(|v| !v.is_empty());
    let (publisher_type, pricing_model, credit_eligible) = enums(
        publisher,
        optional(columns.pricing_model),
        optional(columns.credit_eligible),
    )?;
    Ok(UsageRow {
        date,
        subscription_position: sub.position,
        meter_id,
        meter_category,
        meter_name,
        unit,
        quantity,
        unit_price,
        cost,
        charge_type,
        publisher_type,
        pricing_model,
        credit_eligible,
        resource_id: optional(columns.resource_id),
    })
}

/// The required cells, trimmed: `too_few_fields` / `too_many_fields` when
/// the record's field count differs from the header's, `missing_value` for
/// an empty one.
fn required_cells<'a>(
    record: &'a impl Cells,
    columns: &UsageHeader,
) -> Result<[&'a str; 14], RowError> {
    let counted = || format!("{} fields, header has {}", record.count(), columns.len);
    if record.count() < columns.len {
        return Err((RejectReason::TooFewFields, counted()));
    }
    if record.count() > columns.len {
        return Err((RejectReason::TooManyFields, counted()));
    }
    let mut cells = [""; 14];
    for (i, (cell, position)) in cells.iter_mut().zip(columns.required).enumerate() {
        *cell = trimmed(record.cell(position));
        if cell.is_empty() {
            let detail = format!("empty {}", REQUIRED_COLUMNS[i]);
            return Err((RejectReason::MissingValue, detail));
        }
    }
    Ok(cells)
}

/// `cell` without surrounding whitespace (as `str::trim`). Most cells
/// begin and end with a printable ASCII character, so their ends are
/// looked at first.
fn trimmed(cell: &str) -> &str {
    let printable = |b: Option<&u8>| b.is_some_and(|b| (b'!'..=b'~').contains(b));
    let bytes = cell.as_bytes();
    if printable(bytes.first()) && printable(bytes.last()) {
        cell
    } else {
        cell.trim()
    }
}

/// The row's date, which must be the file's day (`bad_date`, `date_mismatch`).
fn row_date(date: &str, file: &FileInput) -> Result<NaiveDate, RowError> {
    let day = file.day;
    let value = if date == file.day_text {
        day
    } else {
        parse_usage_date(date)
            .ok_or_else(|| (RejectReason::BadDate, format!("{date:?} is not a date")))?
    };
    if value != day {
        let detail = format!("row dated {value}, file is for {day}");
        return Err((RejectReason::DateMismatch, detail));
    }
    Ok(value)
}

/// The row's subscription, under the row's profile under the row's account.
/// One lookup for a row that names them rightly; a wrong one is looked at
/// again to name the reason (`unknown_profile`, `unknown_subscription`).
fn known_subscription<'i>(
    index: &'i ReferenceIndex,
    probe: Probe,
    [account, profile, subscription]: [&str; 3],
) -> Result<&'i SubscriptionCheck, RowError> {
    if let Some(sub) = index.subscription(probe, [subscription, profile, account]) {
        return Ok(sub);
    }
    let profile_known = index
        .profile_accounts
        .get(profile)
        .is_some_and(|a| *a == account);
    Err(if profile_known {
        let detail = format!("subscription {subscription:?} is not under profile {profile:?}");
        (RejectReason::UnknownSubscription, detail)
    } else {
        let detail = format!("profile {profile:?} is not under account {account:?}");
        (RejectReason::UnknownProfile, detail)
    })
}

/// `before_start` (before the subscription's start or the profile's first
/// period) and `currency_mismatch`.
fn check_start_and_currency(
    sub: &SubscriptionCheck,
    date: NaiveDate,
    currency: &str,
) -> Result<(), RowError> {
    if date < sub.start_date || date < sub.first_period_start {
        let detail = format!(
            "dated {date}, before subscription start {} or first period {}",
            sub.start_date, sub.first_period_start
        );
        return Err((RejectReason::BeforeStart, detail));
    }
    if !currency.eq_ignore_ascii_case(sub.currency.code()) {
        let detail = format!("{currency} but profile bills in {}", sub.currency);
        return Err((RejectReason::CurrencyMismatch, detail));
    }
    Ok(())
}

/// A usage value (`bad_number`: not a decimal, or 10^18 or more).
fn usage_number(name: &str, text: &str) -> Result<i128, RowError> {
    parse_usage_value(text).ok_or_else(|| {
        let detail = match parse_scaled(text, USAGE_SCALE) {
            Some(_) => format!("{name} {text:?} has a magnitude of 10^18 or more"),
            None => format!("{name} {text:?} is not a decimal"),
        };
        (RejectReason::BadNumber, detail)
    })
}

/// publisherType, pricingModel (default `OnDemand`) and
/// isAzureCreditEligible (default: first party) as stored.
fn enums(
    publisher: &str,
    pricing_model: Option<&str>,
    credit_eligible: Option<&str>,
) -> Result<(&'static str, &'static str, bool), RowError> {
    let publisher_type = one_of(publisher, PUBLISHER_TYPES).ok_or_else(|| {
        (
            RejectReason::BadEnum,
            format!("publisherType {publisher:?}"),
        )
    })?;
    let pricing_model = match pricing_model {
        None => "OnDemand",
        Some(raw) => one_of(raw, PRICING_MODELS)
            .ok_or_else(|| (RejectReason::BadEnum, format!("pricingModel {raw:?}")))?,
    };
    let credit_eligible = match credit_eligible {
        None => publisher_type == "Azure",
        Some(v) => parse_bool(v).ok_or_else(|| {
            (
                RejectReason::BadBool,
                format!("isAzureCreditEligible {v:?}"),
            )
        })?,
    };
    Ok((publisher_type, pricing_model, credit_eligible))
}

/// `publisherType` spellings (any case) and the value stored for each.
pub(super) const PUBLISHER_TYPES: &[(&str, &str)] = &[
    ("Azure", "Azure"),
    ("Microsoft", "Azure"),
    ("Marketplace", "Marketplace"),
];

/// `pricingModel` spellings (any case) and the value stored for each.
pub(super) const PRICING_MODELS: &[(&str, &str)] = &[
    ("OnDemand", "OnDemand"),
    ("On Demand", "OnDemand"),
    ("Reservation", "Reservation"),
    ("SavingsPlan", "SavingsPlan"),
    ("Spot", "Spot"),
];

/// The stored value of an enum cell, matched case-insensitively.
pub(super) fn one_of(cell: &str, spellings: &[(&str, &'static str)]) -> Option<&'static str> {
    spellings
        .iter()
        .find(|(spelling, _)| cell.eq_ignore_ascii_case(spelling))
        .map(|&(_, value)| value)
}
