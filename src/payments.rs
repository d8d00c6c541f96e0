//! Payments (SPEC §2.2 payments.csv): every payment received so far, matched
//! to issued invoices after the run's invoices are issued. Only the billing
//! account's admin may pay; anything else is rejected with a reason into
//! `OUT/rejects/payments.csv`. `amount_paid` is recomputed from the whole
//! file on every run, never added to what an earlier run counted.

use std::collections::BTreeMap;
use std::path::Path;

use rust_decimal::Decimal;

use crate::model::{InvoiceHead, Reference};
use crate::parse::{Header, parse_email, parse_iso_date, parse_money};
use crate::store;

const REQUIRED: &[&str] = &["invoiceNumber", "amount", "paidDate", "paidBy"];

/// One rejected payment row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentReject {
    pub line: u64,
    pub reason: &'static str,
    pub detail: String,
    pub raw: String,
}

#[derive(Debug, Default)]
pub struct Payments {
    pub paid_by_invoice: BTreeMap<String, Decimal>,
    pub rejects: Vec<PaymentReject>,
    /// Invoice numbers whose payments exceed the amount due.
    pub overpaid: Vec<String>,
}

/// Reads `DATA/payments.csv` (optional) against the issued invoices.
pub fn read_payments(
    data_dir: &Path,
    invoices: &[(InvoiceHead, Decimal, String)],
    reference: &Reference,
) -> anyhow::Result<Payments> {
    let mut out = Payments::default();
    let path = data_dir.join("payments.csv");
    if !path.exists() {
        return Ok(out);
    }
    let text = std::fs::read_to_string(&path).map_err(crate::store::failed("read", &path))?;
    let text = text.trim_start_matches('\u{feff}');
    let by_number: BTreeMap<&str, &InvoiceHead> = invoices
        .iter()
        .map(|(i, _, _)| (i.number.as_str(), i))
        .collect();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    if !reader.read_record(&mut record)? {
        return Ok(out);
    }
    let header = Header::new(record.iter());
    let missing = header.missing(REQUIRED);
    if !missing.is_empty() {
        out.rejects.push(PaymentReject {
            line: 1,
            reason: "missing_columns",
            detail: format!("missing columns: {}", missing.join(", ")),
            raw: text.lines().next().unwrap_or("").to_string(),
        });
        return Ok(out);
    }
    loop {
        let start = reader.position().byte() as usize;
        if !reader.read_record(&mut record)? {
            break;
        }
        let line = record.position().map_or(0, |p| p.line());
        let raw = text[start..reader.position().byte() as usize]
            .trim_end_matches(['\r', '\n'])
            .to_string();
        match check_payment(&record, &header, &by_number, reference) {
            Ok((number, amount)) => {
                let paid = out.paid_by_invoice.entry(number).or_default();
                match paid.checked_add(amount) {
                    Some(sum) => *paid = sum,
                    None => out.rejects.push(PaymentReject {
                        line,
                        reason: "bad_number",
                        detail: "the invoice's payments add up beyond 28 digits".into(),
                        raw,
                    }),
                }
            }
            Err((reason, detail)) => out.rejects.push(PaymentReject {
                line,
                reason,
                detail,
                raw,
            }),
        }
    }
    for (number, paid) in &out.paid_by_invoice {
        if by_number
            .get(number.as_str())
            .is_some_and(|i| *paid > i.amounts.amount_due)
        {
            out.overpaid.push(number.clone());
        }
    }
    Ok(out)
}

fn check_payment(
    record: &csv::StringRecord,
    header: &Header,
    invoices: &BTreeMap<&str, &InvoiceHead>,
    reference: &Reference,
) -> Result<(String, Decimal), (&'static str, String)> {
    if record.len() < header.len {
        return Err((
            "too_few_fields",
            format!("{} fields, header has {}", record.len(), header.len),
        ));
    }
    if record.len() > header.len {
        return Err((
            "too_many_fields",
            format!("{} fields, header has {}", record.len(), header.len),
        ));
    }
    let cell = |name: &str| header.position(name).map_or("", |i| record[i].trim());
    for name in REQUIRED {
        if cell(name).is_empty() {
            return Err(("missing_value", format!("empty {name}")));
        }
    }
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
pub fn write_rejects(out_dir: &Path, rejects: &[PaymentReject]) -> anyhow::Result<()> {
    let path = out_dir.join("rejects/payments.csv");
    if rejects.is_empty() {
        store::remove_if_exists(&path)?;
        return Ok(());
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["file", "line", "reason", "detail", "raw"])?;
    for r in rejects {
        writer.write_record([
            "payments.csv",
            &r.line.to_string(),
            r.reason,
            &r.detail,
            &r.raw,
        ])?;
    }
    let bytes = writer.into_inner()?;
    if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
        store::write_atomic(&path, &bytes)?;
    }
    Ok(())
}
