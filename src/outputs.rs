//! The analysts' tables (SPEC §6): `decisions/`, `lines/`, `invoices/` and
//! `credit_notes/`,
//! one parquet file per `period=YYYY-MM` partition, written from the ledger
//! (a period's lines from memory when this run just decided them: they are
//! what the ledger holds). The ledger marks a partition dirty in the same
//! transaction that changes it; a partition is rewritten (atomically) and
//! then marked clean, so a run killed in between simply rewrites it next
//! time (from the ledger alone, to the same bytes).

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;
use rust_decimal::Decimal;

use crate::FastMap;
use crate::ledger::{IssuedInvoice, Ledger, LedgerError, StatusUpdate};
use std::sync::Arc;

use crate::columns::{
    date_column, decimal_column, opt_decimal_column, opt_string_column, string_column,
};
use crate::model::{
    CreditNote, Decision, DecisionKey, InvoiceHead, InvoiceStatus, Line, MeterLine,
};
use crate::parse::{USAGE_SCALE, decimal_to_scaled};
use crate::store;

#[derive(Debug, thiserror::Error)]
pub enum OutputsError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Building the table of one partition file from the ledger.
    #[error("cannot build `{path}` from the ledger: {source}")]
    Table { path: PathBuf, source: PolarsError },
    /// A column built before its partition is known (named by `write_dirty`).
    #[error("cannot build a table from the ledger: {0}")]
    Frame(#[from] PolarsError),
    #[error(transparent)]
    Parquet(#[from] store::ParquetError),
    #[error(transparent)]
    File(#[from] store::FileError),
    #[error("the ledger names an unknown output folder `{0}`")]
    UnknownFolder(String),
}

type Result<T> = std::result::Result<T, OutputsError>;

/// Amount columns are Decimal(38,4) (SPEC §6).
const AMOUNT_SCALE: u32 = 4;

fn amount(value: Decimal) -> i128 {
    decimal_to_scaled(value, AMOUNT_SCALE)
}

/// Lines the caller holds, by period, as the ledger has them: `lines/`
/// need not read them back (a month end decides about 1.5 million).
pub type LinesAtHand<'a> = FastMap<&'a DecisionKey, &'a [Line]>;

/// Rewrites every dirty partition; returns how many files were written.
pub fn write_dirty(out_dir: &Path, ledger: &mut Ledger, at_hand: &LinesAtHand) -> Result<usize> {
    let dirty = ledger.dirty()?;
    for (folder, month) in &dirty {
        let path = out_dir.join(format!("{folder}/period={month}/{folder}.parquet"));
        let named = |e: OutputsError| match e {
            OutputsError::Frame(source) => OutputsError::Table {
                path: path.clone(),
                source,
            },
            other => other,
        };
        let mut df = match folder.as_str() {
            "decisions" => decisions_frame(ledger, month).map_err(named)?,
            "lines" => {
                let bytes = lines_parquet(ledger, month, at_hand).map_err(named)?;
                store::write_atomic(&path, &bytes)?;
                ledger.clear_dirty(folder, month)?;
                continue;
            }
            "invoices" => invoices_frame(ledger, month).map_err(named)?,
            "credit_notes" => credit_notes_frame(ledger, month).map_err(named)?,
            other => return Err(OutputsError::UnknownFolder(other.to_string())),
        };
        store::write_parquet(&path, &mut df)?;
        ledger.clear_dirty(folder, month)?;
    }
    Ok(dirty.len())
}

fn decisions_frame(ledger: &Ledger, month: &str) -> Result<DataFrame> {
    let decisions: Vec<Decision> = ledger
        .decisions()?
        .into_values()
        .filter(|d| d.period.month_key() == month)
        .collect();
    let text = |f: &dyn Fn(&Decision) -> String| decisions.iter().map(f).collect::<Vec<_>>();
    let money = |f: &dyn Fn(&crate::model::Amounts) -> Decimal| -> Vec<Option<i128>> {
        decisions
            .iter()
            .map(|d| d.amounts.as_ref().map(|a| amount(f(a))))
            .collect()
    };
    let missing: Vec<Series> = decisions
        .iter()
        .map(|d| {
            date_column("", d.missing_days.clone())
                .as_materialized_series()
                .clone()
        })
        .collect();
    let missing_days = Series::new("missing_days".into(), missing)
        .cast(&DataType::List(Box::new(DataType::Date)))?;
    let invoice_numbers: Vec<Option<String>> =
        decisions.iter().map(|d| d.invoice_number.clone()).collect();
    let scale = AMOUNT_SCALE as usize;
    let columns = vec![
        string_column("billing_account_id", &text(&|d| d.account_id.clone())),
        string_column("billing_profile_id", &text(&|d| d.profile_id.clone())),
        string_column("kind", &text(&|d| d.kind.as_str().into())),
        date_column(
            "period_start",
            decisions.iter().map(|d| d.period.start).collect(),
        ),
        date_column(
            "period_end",
            decisions.iter().map(|d| d.period.end).collect(),
        ),
        string_column("currency", &text(&|d| d.currency.clone())),
        string_column("decision", &text(&|d| d.code.as_str().into())),
        opt_decimal_column("subtotal", money(&|a| a.subtotal), scale)?,
        opt_decimal_column("trial_covered", money(&|a| a.trial_covered), scale)?,
        opt_decimal_column("monthly_credit", money(&|a| a.monthly_credit), scale)?,
        opt_decimal_column("prepaid_credit", money(&|a| a.prepaid_credit), scale)?,
        opt_decimal_column("carried_in", money(&|a| a.carried_in), scale)?,
        opt_decimal_column("amount_due", money(&|a| a.amount_due), scale)?,
        opt_decimal_column("carried_out", money(&|a| a.carried_out), scale)?,
        opt_string_column("invoice_number", &invoice_numbers),
        missing_days.into(),
        date_column(
            "decided_on",
            decisions.iter().map(|d| d.decided_on).collect(),
        ),
    ];
    Ok(DataFrame::new(decisions.len(), columns)?)
}

/// A month's `lines/` parquet: its periods' lines taken from `at_hand`
/// (what this run decided) or else read from the ledger, a period at a
/// time, and encoded a row group at a time, so memory holds two row groups
/// besides what is at hand (a month end has about 1.5 million lines). A
/// row group is encoded on a thread of its own while the next is gathered.
fn lines_parquet(ledger: &Ledger, month: &str, at_hand: &LinesAtHand) -> Result<Vec<u8>> {
    let schema = LineColumns::default().into_frame()?.schema().clone();
    let (groups, to_encode) = std::sync::mpsc::sync_channel::<DataFrame>(1);
    std::thread::scope(|scope| {
        let encoder = scope.spawn(move || -> PolarsResult<Vec<u8>> {
            let mut bytes = Vec::new();
            let mut writer = ParquetWriter::new(&mut bytes)
                .with_compression(ParquetCompression::Zstd(None))
                .batched(&schema)?;
            for group in to_encode {
                writer.write_batch(&group)?;
            }
            writer.finish()?;
            drop(writer);
            Ok(bytes)
        });
        let gathered = gather_line_groups(ledger, month, at_hand, &groups);
        drop(groups);
        // The encoder's own error explains a closed channel better.
        let bytes = encoder.join().expect("the lines encoder does not panic")?;
        gathered?;
        Ok(bytes)
    })
}

/// Hands the month's lines to `groups` a row group at a time, in the
/// order of the ledger's periods; stops early if the encoder has stopped.
fn gather_line_groups(
    ledger: &Ledger,
    month: &str,
    at_hand: &LinesAtHand,
    groups: &std::sync::mpsc::SyncSender<DataFrame>,
) -> Result<()> {
    let decided = ledger.decisions()?;
    let mut columns = LineColumns::default();
    for key in ledger.line_periods_in_month(month)? {
        let Some(decision) = decided.get(&key) else {
            continue;
        };
        let read;
        let lines = match at_hand.get(&key) {
            Some(lines) => lines,
            None => {
                read = ledger.lines_of(&key)?;
                read.as_slice()
            }
        };
        for line in lines {
            columns.push(&key, decision, line);
        }
        if columns.len() >= LINE_ROWS_PER_GROUP
            && groups
                .send(std::mem::take(&mut columns).into_frame()?)
                .is_err()
        {
            return Ok(());
        }
    }
    if columns.len() > 0 {
        // A closed channel is the encoder's error, reported by the caller.
        let _ = groups.send(columns.into_frame()?);
    }
    Ok(())
}

/// Lines gathered before they are encoded as a row group.
const LINE_ROWS_PER_GROUP: usize = 64 * 1024;

/// Rows of `lines/`, column by column (SPEC §6).
#[derive(Default)]
struct LineColumns {
    profile: Vec<String>,
    kind: Vec<&'static str>,
    period_start: Vec<NaiveDate>,
    period_end: Vec<NaiveDate>,
    subscription: Vec<Arc<str>>,
    meter: Vec<Arc<MeterLine>>,
    credit_eligible: Vec<bool>,
    covered_by: Vec<&'static str>,
    currency: Vec<String>,
    quantity: Vec<i128>,
    cost: Vec<i128>,
    amount: Vec<i128>,
    rows: Vec<i64>,
}

impl LineColumns {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn push(&mut self, key: &DecisionKey, decision: &Decision, line: &Line) {
        self.profile.push(key.0.clone());
        self.kind.push(key.1.as_str());
        self.period_start.push(decision.period.start);
        self.period_end.push(decision.period.end);
        self.subscription.push(line.key.subscription_id.clone());
        self.meter.push(line.key.meter.clone());
        self.credit_eligible.push(line.key.credit_eligible);
        self.covered_by.push(line.key.covered_by.as_str());
        self.currency.push(decision.currency.clone());
        self.quantity
            .push(decimal_to_scaled(line.sums.quantity, USAGE_SCALE));
        self.cost
            .push(decimal_to_scaled(line.sums.cost, USAGE_SCALE));
        self.amount.push(amount(line.amount));
        self.rows.push(line.sums.rows);
    }

    fn into_frame(self) -> PolarsResult<DataFrame> {
        let meter =
            |f: fn(&MeterLine) -> &str| -> Vec<&str> { self.meter.iter().map(|m| f(m)).collect() };
        let subscriptions: Vec<&str> = self.subscription.iter().map(|s| &**s).collect();
        let columns = vec![
            string_column("billing_profile_id", &self.profile),
            string_column("kind", &self.kind),
            date_column("period_start", self.period_start.clone()),
            date_column("period_end", self.period_end.clone()),
            string_column("subscription_id", &subscriptions),
            string_column("meter_id", &meter(|m| &m.meter_id)),
            string_column("meter_category", &meter(|m| &m.meter_category)),
            string_column("meter_name", &meter(|m| &m.meter_name)),
            string_column("unit_of_measure", &meter(|m| &m.unit_of_measure)),
            string_column("charge_type", &meter(|m| &m.charge_type)),
            string_column("publisher_type", &meter(|m| &m.publisher_type)),
            string_column("pricing_model", &meter(|m| &m.pricing_model)),
            Column::new("is_azure_credit_eligible".into(), &self.credit_eligible),
            string_column("covered_by", &self.covered_by),
            string_column("currency", &self.currency),
            decimal_column("quantity", self.quantity.clone(), USAGE_SCALE as usize)?,
            decimal_column("cost", self.cost.clone(), USAGE_SCALE as usize)?,
            decimal_column("amount", self.amount.clone(), AMOUNT_SCALE as usize)?,
            Column::new("rows".into(), &self.rows),
        ];
        DataFrame::new(self.rows.len(), columns)
    }
}

fn invoices_frame(ledger: &Ledger, month: &str) -> Result<DataFrame> {
    let invoices: Vec<IssuedInvoice> = ledger
        .invoice_heads()?
        .into_iter()
        .filter(|i| i.head.period.month_key() == month)
        .collect();
    let text = |f: &dyn Fn(&IssuedInvoice) -> String| invoices.iter().map(f).collect::<Vec<_>>();
    let dates =
        |f: &dyn Fn(&InvoiceHead) -> NaiveDate| invoices.iter().map(|r| f(&r.head)).collect();
    let money = |f: &dyn Fn(&IssuedInvoice) -> Decimal| {
        invoices.iter().map(|r| amount(f(r))).collect::<Vec<_>>()
    };
    let scale = AMOUNT_SCALE as usize;
    let mut columns = vec![
        string_column("invoice_number", &text(&|r| r.head.number.clone())),
        string_column("billing_account_id", &text(&|r| r.head.account_id.clone())),
        string_column("billing_profile_id", &text(&|r| r.head.profile_id.clone())),
        string_column("kind", &text(&|r| r.head.kind.as_str().into())),
        date_column("period_start", dates(&|i| i.period.start)),
        date_column("period_end", dates(&|i| i.period.end)),
        string_column("currency", &text(&|r| r.head.currency.clone())),
        date_column("invoice_date", dates(&|i| i.invoice_date)),
        date_column("due_date", dates(&|i| i.due_date)),
        decimal_column("subtotal", money(&|r| r.head.amounts.subtotal), scale)?,
        decimal_column("credits", money(&|r| r.head.amounts.credits()), scale)?,
        decimal_column("amount_due", money(&|r| r.head.amounts.amount_due), scale)?,
        decimal_column("amount_paid", money(&|r| r.amount_paid), scale)?,
        string_column("status", &text(&|r| r.status.clone())),
        Column::new(
            "recipients".into(),
            invoices
                .iter()
                .map(|r| r.head.recipients.len() as i64)
                .collect::<Vec<i64>>(),
        ),
    ];
    let heads: Vec<&InvoiceHead> = invoices.iter().map(|r| &r.head).collect();
    columns.extend(vat_columns(&heads)?);
    columns.extend([
        decimal_column("total", money(&|r| r.head.total()), scale)?,
        decimal_column("credited_total", money(&|r| r.credited_total), scale)?,
        Column::new(
            "reminders_sent".into(),
            invoices
                .iter()
                .map(|r| i64::from(r.reminders_sent))
                .collect::<Vec<i64>>(),
        ),
    ]);
    Ok(DataFrame::new(invoices.len(), columns)?)
}

/// `vat_category` (null without VAT), `vat_rate` and `vat_amount` of the
/// invoices table (SPEC §6).
fn vat_columns(heads: &[&InvoiceHead]) -> Result<[Column; 3]> {
    let scale = AMOUNT_SCALE as usize;
    let vat = |f: fn(&crate::model::Vat) -> Decimal| -> Vec<i128> {
        heads
            .iter()
            .map(|h| amount(h.vat.as_ref().map_or(Decimal::ZERO, f)))
            .collect()
    };
    let categories: Vec<Option<String>> = heads
        .iter()
        .map(|h| h.vat.as_ref().map(|v| v.category.as_str().to_string()))
        .collect();
    Ok([
        opt_string_column("vat_category", &categories),
        decimal_column("vat_rate", vat(|v| v.rate), scale)?,
        decimal_column("vat_amount", vat(|v| v.amount), scale)?,
    ])
}

/// A month's `credit_notes/` (SPEC §6): the notes of invoices whose
/// period starts in it.
fn credit_notes_frame(ledger: &Ledger, month: &str) -> Result<DataFrame> {
    let notes: Vec<CreditNote> = ledger
        .credit_notes()?
        .into_iter()
        .filter(|n| n.period.month_key() == month)
        .collect();
    let text = |f: &dyn Fn(&CreditNote) -> String| notes.iter().map(f).collect::<Vec<_>>();
    let money =
        |f: &dyn Fn(&CreditNote) -> Decimal| notes.iter().map(|n| amount(f(n))).collect::<Vec<_>>();
    let scale = AMOUNT_SCALE as usize;
    let columns = vec![
        string_column("credit_note_number", &text(&|n| n.number.clone())),
        string_column("credit_note_ref", &text(&|n| n.credit_note_ref.clone())),
        string_column("invoice_number", &text(&|n| n.invoice_number.clone())),
        string_column("billing_account_id", &text(&|n| n.account_id.clone())),
        string_column("billing_profile_id", &text(&|n| n.profile_id.clone())),
        string_column("kind", &text(&|n| n.kind.as_str().into())),
        date_column(
            "period_start",
            notes.iter().map(|n| n.period.start).collect(),
        ),
        string_column("currency", &text(&|n| n.currency.clone())),
        date_column("issue_date", notes.iter().map(|n| n.issue_date).collect()),
        string_column("reason", &text(&|n| n.reason.clone())),
        decimal_column("net_amount", money(&|n| n.net_amount), scale)?,
        opt_string_column(
            "vat_category",
            &notes
                .iter()
                .map(|n| n.vat.as_ref().map(|v| v.category.as_str().to_string()))
                .collect::<Vec<_>>(),
        ),
        decimal_column(
            "vat_rate",
            money(&|n| n.vat.as_ref().map_or(Decimal::ZERO, |v| v.rate)),
            scale,
        )?,
        decimal_column("vat_amount", money(&|n| n.vat_amount()), scale)?,
        decimal_column("total", money(&|n| n.total()), scale)?,
    ];
    Ok(DataFrame::new(notes.len(), columns)?)
}

/// What an invoice's status follows from on a run (SPEC §6).
pub struct Statuses<'a> {
    pub as_of: NaiveDate,
    /// The payments accepted so far, per invoice number.
    pub paid: &'a std::collections::BTreeMap<String, Decimal>,
    /// Every credit note issued so far.
    pub credit_notes: &'a [CreditNote],
}

/// Brings each invoice's payments, credited total and status up to date
/// (SPEC §6), in `invoices` and in the ledger. Returns how many changed.
pub fn update_statuses(
    ledger: &mut Ledger,
    statuses: &Statuses,
    invoices: &mut [IssuedInvoice],
) -> Result<usize> {
    let mut credited: std::collections::BTreeMap<&str, Decimal> = Default::default();
    for note in statuses.credit_notes {
        *credited.entry(note.invoice_number.as_str()).or_default() += note.total();
    }
    let mut updates = Vec::new();
    for issued in invoices.iter_mut() {
        let invoice = &issued.head;
        let amount_paid = statuses
            .paid
            .get(&invoice.number)
            .copied()
            .unwrap_or_default();
        let credited_total = credited
            .get(invoice.number.as_str())
            .copied()
            .unwrap_or_default();
        let status = InvoiceStatus::of(
            invoice.total(),
            credited_total,
            amount_paid,
            invoice.due_date,
            statuses.as_of,
        )
        .as_str();
        if amount_paid != issued.amount_paid
            || credited_total != issued.credited_total
            || status != issued.status
        {
            updates.push(StatusUpdate {
                number: invoice.number.clone(),
                month: invoice.period.month_key(),
                amount_paid,
                credited_total,
                status,
            });
            issued.amount_paid = amount_paid;
            issued.credited_total = credited_total;
            issued.status = status.to_string();
        }
    }
    ledger.update_statuses(&updates)?;
    Ok(updates.len())
}
