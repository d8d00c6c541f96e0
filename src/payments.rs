//! Payments (SPEC §2.2 payments.csv): every payment received so far, matched
//! to issued invoices after the run's invoices are issued. Only the billing
//! account's admin may pay; anything else is rejected with a reason into
//! `OUT/rejects/payments.csv`. `amount_paid` is recomputed from the whole
//! file on every run, never added to what an earlier run counted.

use std::collections::BTreeMap;
use std::path::Path;

use rust_decimal::Decimal;

use crate::ledger::IssuedInvoice;
use crate::model::{InvoiceHead, Reference};
use crate::parse::{parse_email, parse_iso_date, parse_money};
use crate::people_logs::{self, LogError, LogRow, RowReject};

const REQUIRED: &[&str] = &["invoiceNumber", "amount", "paidDate", "paidBy"];

#[derive(Debug, Default)]
pub struct Payments {
    pub paid_by_invoice: BTreeMap<String, Decimal>,
    pub rejects: Vec<RowReject>,
}

/// Reads `DATA/payments.csv` (optional) against the issued invoices.
pub fn read_payments(
    data_dir: &Path,
    invoices: &[IssuedInvoice],
    reference: &Reference,
) -> Result<Payments, LogError> {
    let mut out = Payments::default();
    let by_number: BTreeMap<&str, &InvoiceHead> = invoices
        .iter()
        .map(|i| (i.head.number.as_str(), &i.head))
        .collect();
    let whole =
        people_logs::read_log(
            &data_dir.join("payments.csv"),
            REQUIRED,
            |row| match check_payment(row, &by_number, reference) {
                Ok((number, amount)) => {
                    let paid = out.paid_by_invoice.entry(number).or_default();
                    match paid.checked_add(amount) {
                        Some(sum) => *paid = sum,
                        None => out.rejects.push(row.reject((
                            "bad_number",
                            "the invoice's payments add up beyond 28 digits".into(),
                        ))),
                    }
                }
                Err(reason) => out.rejects.push(row.reject(reason)),
            },
        )?;
    out.rejects.extend(whole);
    Ok(out)
}

/// Invoices whose payments exceed what is owed on them: their total less
/// what credit notes took back.
pub fn overpaid(invoices: &[IssuedInvoice]) -> Vec<String> {
    invoices
        .iter()
        .filter(|i| i.amount_paid > i.head.total() - i.credited_total)
        .map(|i| i.head.number.clone())
        .collect()
}

fn check_payment(
    row: &LogRow,
    invoices: &BTreeMap<&str, &InvoiceHead>,
    reference: &Reference,
) -> Result<(String, Decimal), (&'static str, String)> {
    row.check_shape(REQUIRED)?;
    let cell = |name: &str| row.cell(name);
    let number = cell("invoiceNumber");
    let invoice = invoices
        .get(number)
        .ok_or_else(|| ("unknown_invoice", format!("no issued invoice {number:?}")))?;
    let amount = parse_money(cell("amount"))
        .filter(|a| !a.is_sign_negative() || a.is_zero())
        .ok_or_else(|| {
            let detail = format!(
                "amount {:?} is not a non-negative decimal below 10^18",
                cell("amount")
            );
            ("bad_number", detail)
        })?;
    parse_iso_date(cell("paidDate"))
        .ok_or_else(|| ("bad_date", format!("paidDate {:?}", cell("paidDate"))))?;
    let payer = parse_email(cell("paidBy"))
        .ok_or_else(|| ("not_admin", format!("paidBy {:?}", cell("paidBy"))))?;
    let admin = reference
        .accounts
        .get(&invoice.account_id)
        .map(|a| a.admin_email.as_str());
    if admin != Some(payer.as_str()) {
        return Err((
            "not_admin",
            format!("{payer} is not the admin of account {}", invoice.account_id),
        ));
    }
    Ok((number.to_string(), amount))
}

/// Writes `rejects/payments.csv`, or removes a stale one.
pub fn write_rejects(out_dir: &Path, rejects: &[RowReject]) -> Result<(), LogError> {
    people_logs::write_rejects(out_dir, "payments.csv", rejects)
}
