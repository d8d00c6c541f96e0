//! The analysts' tables (SPEC §6): `decisions/`, `lines/` and `invoices/`,
//! one parquet file per `period=YYYY-MM` partition, written from the ledger.
//! The ledger marks a partition dirty in the same transaction that changes
//! it; a partition is rewritten (atomically) and then marked clean, so a run
//! killed in between simply rewrites it next time.

use std::path::Path;

use chrono::NaiveDate;
use polars::prelude::*;
use rust_decimal::Decimal;

use crate::ledger::{Ledger, LedgerError};
use crate::model::{Decision, InvoiceStatus, Kind, Line, Period};
use crate::parse::{USAGE_SCALE, decimal_to_scaled};
use crate::store::{
    self, date_column, decimal_column, opt_decimal_column, opt_string_column, string_column,
};

#[derive(Debug, thiserror::Error)]
pub enum OutputsError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot build a table from the ledger: {0}")]
    Table(#[from] PolarsError),
    #[error(transparent)]
    Parquet(#[from] store::ParquetError),
    #[error("the ledger names an unknown output folder `{0}`")]
    UnknownFolder(String),
}

type Result<T> = std::result::Result<T, OutputsError>;

/// Amount columns are Decimal(38,4) (SPEC §6).
const AMOUNT_SCALE: u32 = 4;

fn amount(value: Decimal) -> i128 {
    decimal_to_scaled(value, AMOUNT_SCALE)
}

/// Rewrites every dirty partition; returns how many files were written.
pub fn write_dirty(out_dir: &Path, ledger: &mut Ledger) -> Result<usize> {
    let dirty = ledger.dirty()?;
    for (folder, month) in &dirty {
        let path = out_dir.join(format!("{folder}/period={month}/{folder}.parquet"));
        let mut df = match folder.as_str() {
            "decisions" => decisions_frame(ledger, month)?,
            "lines" => lines_frame(ledger, month)?,
            "invoices" => invoices_frame(ledger, month)?,
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

/// One row of `lines/`: a line with the decision it belongs to.
struct LineRow {
    profile_id: String,
    kind: Kind,
    period: Period,
    currency: String,
    line: Line,
}

fn lines_frame(ledger: &Ledger, month: &str) -> Result<DataFrame> {
    let decided = ledger.decisions()?;
    let mut rows = Vec::new();
    for (key, lines) in ledger.lines_in_month(month)? {
        let decision = &decided[&key];
        for line in lines {
            rows.push(LineRow {
                profile_id: key.0.clone(),
                kind: key.1,
                period: decision.period,
                currency: decision.currency.clone(),
                line,
            });
        }
    }
    let text = |f: &dyn Fn(&LineRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let usage_decimal = |name: &str, f: &dyn Fn(&LineRow) -> Decimal| {
        let values = rows
            .iter()
            .map(|r| decimal_to_scaled(f(r), USAGE_SCALE))
            .collect();
        decimal_column(name, values, USAGE_SCALE as usize)
    };
    let columns = vec![
        string_column("billing_profile_id", &text(&|r| r.profile_id.clone())),
        string_column("kind", &text(&|r| r.kind.as_str().into())),
        date_column(
            "period_start",
            rows.iter().map(|r| r.period.start).collect(),
        ),
        date_column("period_end", rows.iter().map(|r| r.period.end).collect()),
        string_column(
            "subscription_id",
            &text(&|r| r.line.key.subscription_id.clone()),
        ),
        string_column("meter_id", &text(&|r| r.line.key.meter_id.clone())),
        string_column(
            "meter_category",
            &text(&|r| r.line.key.meter_category.clone()),
        ),
        string_column("meter_name", &text(&|r| r.line.key.meter_name.clone())),
        string_column(
            "unit_of_measure",
            &text(&|r| r.line.key.unit_of_measure.clone()),
        ),
        string_column("charge_type", &text(&|r| r.line.key.charge_type.clone())),
        string_column(
            "publisher_type",
            &text(&|r| r.line.key.publisher_type.clone()),
        ),
        string_column(
            "pricing_model",
            &text(&|r| r.line.key.pricing_model.clone()),
        ),
        Column::new(
            "is_azure_credit_eligible".into(),
            rows.iter()
                .map(|r| r.line.key.credit_eligible)
                .collect::<Vec<_>>(),
        ),
        string_column(
            "covered_by",
            &text(&|r| r.line.key.covered_by.as_str().into()),
        ),
        string_column("currency", &text(&|r| r.currency.clone())),
        usage_decimal("quantity", &|r| r.line.sums.quantity)?,
        usage_decimal("cost", &|r| r.line.sums.cost)?,
        decimal_column(
            "amount",
            rows.iter().map(|r| amount(r.line.amount)).collect(),
            AMOUNT_SCALE as usize,
        )?,
        Column::new(
            "rows".into(),
            rows.iter().map(|r| r.line.sums.rows).collect::<Vec<i64>>(),
        ),
    ];
    Ok(DataFrame::new(rows.len(), columns)?)
}

fn invoices_frame(ledger: &Ledger, month: &str) -> Result<DataFrame> {
    let invoices: Vec<_> = ledger
        .invoice_heads()?
        .into_iter()
        .filter(|(i, _, _)| i.period.month_key() == month)
        .collect();
    let text = |f: &dyn Fn(&(crate::model::InvoiceHead, Decimal, String)) -> String| {
        invoices.iter().map(f).collect::<Vec<_>>()
    };
    let dates = |f: &dyn Fn(&crate::model::InvoiceHead) -> NaiveDate| {
        invoices.iter().map(|r| f(&r.0)).collect()
    };
    let money = |f: &dyn Fn(&(crate::model::InvoiceHead, Decimal, String)) -> Decimal| {
        invoices.iter().map(|r| amount(f(r))).collect::<Vec<_>>()
    };
    let scale = AMOUNT_SCALE as usize;
    let columns = vec![
        string_column("invoice_number", &text(&|r| r.0.number.clone())),
        string_column("billing_account_id", &text(&|r| r.0.account_id.clone())),
        string_column("billing_profile_id", &text(&|r| r.0.profile_id.clone())),
        string_column("kind", &text(&|r| r.0.kind.as_str().into())),
        date_column("period_start", dates(&|i| i.period.start)),
        date_column("period_end", dates(&|i| i.period.end)),
        string_column("currency", &text(&|r| r.0.currency.clone())),
        date_column("invoice_date", dates(&|i| i.invoice_date)),
        date_column("due_date", dates(&|i| i.due_date)),
        decimal_column("subtotal", money(&|r| r.0.amounts.subtotal), scale)?,
        decimal_column("credits", money(&|r| r.0.amounts.credits()), scale)?,
        decimal_column("amount_due", money(&|r| r.0.amounts.amount_due), scale)?,
        decimal_column("amount_paid", money(&|r| r.1), scale)?,
        string_column("status", &text(&|r| r.2.clone())),
        Column::new(
            "recipients".into(),
            invoices
                .iter()
                .map(|r| r.0.recipients.len() as i64)
                .collect::<Vec<i64>>(),
        ),
        opt_string_column(
            "vat_category",
            &invoices
                .iter()
                .map(|r| r.0.vat.as_ref().map(|v| v.category.as_str().to_string()))
                .collect::<Vec<_>>(),
        ),
        decimal_column(
            "vat_rate",
            money(&|r| r.0.vat.as_ref().map_or(Decimal::ZERO, |v| v.rate)),
            scale,
        )?,
        decimal_column(
            "vat_amount",
            money(&|r| r.0.vat.as_ref().map_or(Decimal::ZERO, |v| v.amount)),
            scale,
        )?,
        decimal_column("total", money(&|r| r.0.total()), scale)?,
    ];
    Ok(DataFrame::new(invoices.len(), columns)?)
}

/// Brings each invoice's status up to date for `as_of` and the payments
/// accepted so far (`paid` per invoice number). Returns changed invoices.
pub fn update_statuses(
    ledger: &mut Ledger,
    as_of: NaiveDate,
    paid: &std::collections::BTreeMap<String, Decimal>,
) -> Result<usize> {
    let mut updates = Vec::new();
    for (invoice, old_paid, old_status) in ledger.invoice_heads()? {
        let new_paid = paid.get(&invoice.number).copied().unwrap_or_default();
        let status = InvoiceStatus::of(invoice.total(), new_paid, invoice.due_date, as_of).as_str();
        if new_paid != old_paid || status != old_status {
            updates.push((
                invoice.number.clone(),
                invoice.period.month_key(),
                new_paid,
                status,
            ));
        }
    }
    ledger.update_payments(&updates)?;
    Ok(updates.len())
}
