//! Credit notes requested in `DATA/credit_notes.csv` (SPEC §2.4, §4.9):
//! re-read whole on every run after its invoices are issued, each row
//! judged in order of (date, line). A row is issued as a credit note,
//! waits for a later run (dated after `as_of`), or is rejected with a
//! reason into `OUT/rejects/credit_notes.csv`. The line that issued a
//! credit note is never judged again, even when edited.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::ledger::IssuedInvoice;
use crate::model::{CreditNote, Credited, Currency, InvoiceHead, Kind};
use crate::parse::{parse_iso_date, parse_money};
use crate::people_logs::{self, LogError, LogRow, RowReject};

const COLUMNS: &[&str] = &["creditNoteRef", "invoiceNumber", "date", "amount", "reason"];
/// Every column but `amount`, whose empty cell means "everything still creditable".
const NON_EMPTY: &[&str] = &["creditNoteRef", "invoiceNumber", "date", "reason"];

/// What one run made of credit_notes.csv.
#[derive(Debug, Default)]
pub struct CreditNoteRun {
    /// Issued this run, `(seq, note)`, in number order.
    pub issued: Vec<(u64, CreditNote)>,
    /// Rows rejected, in line order.
    pub rejects: Vec<RowReject>,
    /// Rows dated after `as_of`, left for a later run.
    pub waiting: usize,
}

/// What judging needs besides the file.
pub struct Issuing<'a> {
    pub as_of: NaiveDate,
    pub prefix: &'a str,
    pub next_seq: u64,
    pub invoices: &'a [IssuedInvoice],
    /// Credit notes issued by earlier runs.
    pub issued: &'a [CreditNote],
}

/// A well-formed row, to be judged against its invoice.
struct Request {
    line: u64,
    raw: String,
    credit_note_ref: String,
    invoice_number: String,
    date: NaiveDate,
    amount: String,
    reason: String,
}

/// Reads `DATA/credit_notes.csv` (optional) and issues what it asks for.
pub fn judge_credit_notes(data_dir: &Path, issuing: &Issuing) -> Result<CreditNoteRun, LogError> {
    let issued_refs: BTreeSet<&str> = issuing
        .issued
        .iter()
        .map(|n| n.credit_note_ref.as_str())
        .collect();
    let mut run = CreditNoteRun::default();
    let mut seen_refs: BTreeSet<String> = BTreeSet::new();
    let mut requests = Vec::new();
    let whole = people_logs::read_log(&data_dir.join("credit_notes.csv"), COLUMNS, |row| {
        let credit_note_ref = row.cell("creditNoteRef");
        if !credit_note_ref.is_empty() {
            if !seen_refs.insert(credit_note_ref.to_string()) {
                let detail = format!("creditNoteRef {credit_note_ref:?} is on an earlier line");
                run.rejects.push(row.reject(("duplicate_ref", detail)));
                return;
            }
            if issued_refs.contains(credit_note_ref) {
                return; // the line that issued it: never judged again
            }
        }
        if parse_iso_date(row.cell("date")).is_some_and(|d| d > issuing.as_of) {
            run.waiting += 1;
            return;
        }
        match request_of(row) {
            Ok(request) => requests.push(request),
            Err(reason) => run.rejects.push(row.reject(reason)),
        }
    })?;
    run.rejects.extend(whole);
    requests.sort_by_key(|r| (r.date, r.line));
    issue(issuing, requests, &mut run);
    run.rejects.sort_by_key(|r| r.line);
    Ok(run)
}

/// The row's shape, empty cells and date.
fn request_of(row: &LogRow) -> Result<Request, (&'static str, String)> {
    row.check_shape(NON_EMPTY)?;
    let date = parse_iso_date(row.cell("date"))
        .ok_or_else(|| ("bad_date", format!("date {:?}", row.cell("date"))))?;
    Ok(Request {
        line: row.line,
        raw: row.raw.to_string(),
        credit_note_ref: row.cell("creditNoteRef").to_string(),
        invoice_number: row.cell("invoiceNumber").to_string(),
        date,
        amount: row.cell("amount").to_string(),
        reason: row.cell("reason").to_string(),
    })
}

/// Judges the requests in order, numbering those issued.
fn issue(issuing: &Issuing, requests: Vec<Request>, run: &mut CreditNoteRun) {
    let invoices: BTreeMap<&str, &InvoiceHead> = issuing
        .invoices
        .iter()
        .map(|i| (i.head.number.as_str(), &i.head))
        .collect();
    let mut credited: BTreeMap<String, Credited> = BTreeMap::new();
    for note in issuing.issued {
        credited
            .entry(note.invoice_number.clone())
            .or_default()
            .add(note);
    }
    let mut seq = issuing.next_seq;
    for request in requests {
        let Some(invoice) = invoices.get(request.invoice_number.as_str()) else {
            let detail = format!("no issued invoice {:?}", request.invoice_number);
            run.rejects
                .push(reject(&request, ("unknown_invoice", detail)));
            continue;
        };
        let so_far = credited.entry(invoice.number.clone()).or_default();
        match credit_note(&request, invoice, so_far, issuing.as_of) {
            Ok(mut note) => {
                note.number = format!("{}{seq:08}", issuing.prefix);
                so_far.add(&note);
                run.issued.push((seq, note));
                seq += 1;
            }
            Err(reason) => run.rejects.push(reject(&request, reason)),
        }
    }
}

fn reject(request: &Request, (reason, detail): (&'static str, String)) -> RowReject {
    RowReject {
        line: request.line,
        reason,
        detail,
        raw: request.raw.clone(),
    }
}

/// The credit note `request` asks for against `invoice`, which earlier
/// notes credited `so_far` (SPEC §4.9), issued on `as_of`; unnumbered.
fn credit_note(
    request: &Request,
    invoice: &InvoiceHead,
    so_far: &Credited,
    as_of: NaiveDate,
) -> Result<CreditNote, (&'static str, String)> {
    if request.date < invoice.invoice_date {
        return Err((
            "before_invoice",
            format!(
                "date {} is before invoice {}'s date {}",
                request.date, invoice.number, invoice.invoice_date
            ),
        ));
    }
    let creditable = so_far.creditable(invoice);
    let net = match request.amount.as_str() {
        "" => creditable,
        text => amount(text, &invoice.currency)?,
    };
    if creditable <= Decimal::ZERO || net > creditable {
        return Err((
            "exceeds_invoice",
            format!(
                "{} {} is more than the {creditable} {} still creditable on {}",
                net, invoice.currency, invoice.currency, invoice.number
            ),
        ));
    }
    Ok(CreditNote {
        number: String::new(),
        credit_note_ref: request.credit_note_ref.clone(),
        source_line: request.line,
        invoice_number: invoice.number.clone(),
        invoice_date: invoice.invoice_date,
        account_id: invoice.account_id.clone(),
        profile_id: invoice.profile_id.clone(),
        kind: invoice.kind,
        period: invoice.period,
        currency: invoice.currency.clone(),
        issue_date: as_of,
        reason: request.reason.clone(),
        net_amount: net,
        vat: so_far.vat_of_next(invoice, net),
        recipients: match invoice.kind {
            Kind::Services => invoice.recipients.clone(),
            Kind::Purchases => Vec::new(),
        },
        einvoice: invoice.einvoice.clone(),
    })
}

/// A positive amount with at most the currency's minor-unit digits,
/// judged by value (`100.000` USD is fine).
fn amount(text: &str, currency: &str) -> Result<Decimal, (&'static str, String)> {
    let fits = |a: &Decimal| Currency::parse(currency).is_some_and(|c| c.fits_minor_unit(*a));
    parse_money(text)
        .filter(|a| *a > Decimal::ZERO && fits(a))
        .map(|a| a.normalize())
        .ok_or_else(|| {
            (
                "bad_number",
                format!(
                    "amount {text:?} is not a positive decimal with at most {currency}'s minor-unit digits"
                ),
            )
        })
}

/// Writes `rejects/credit_notes.csv`, or removes a stale one.
pub fn write_rejects(out_dir: &Path, rejects: &[RowReject]) -> Result<(), LogError> {
    people_logs::write_rejects(out_dir, "credit_notes.csv", rejects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Amounts, EinvoiceAddresses, Period, Vat, VatCategory};

    fn invoice(number: &str, currency: &str, amount_due: &str, rate: i64) -> IssuedInvoice {
        let amount_due: Decimal = amount_due.parse().unwrap();
        let c = Currency::parse(currency).unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
        IssuedInvoice {
            head: InvoiceHead {
                number: number.into(),
                account_id: "A".into(),
                profile_id: "P".into(),
                kind: Kind::Services,
                period: Period::containing(date - chrono::Days::new(20), 1),
                currency: currency.into(),
                invoice_date: date,
                due_date: date + chrono::Days::new(30),
                amounts: Amounts {
                    subtotal: amount_due,
                    amount_due,
                    ..Default::default()
                },
                recipients: vec!["a@b.example".into()],
                vat: Some(Vat::on(
                    amount_due,
                    VatCategory::S,
                    Decimal::new(rate, 0),
                    c,
                )),
                einvoice: EinvoiceAddresses::Unrecorded,
            },
            amount_paid: Decimal::ZERO,
            credited_total: Decimal::ZERO,
            reminders_sent: 0,
            status: "due".into(),
        }
    }

    fn judge(csv: &str, invoices: &[IssuedInvoice], issued: &[CreditNote]) -> CreditNoteRun {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("credit_notes.csv"), csv).unwrap();
        let issuing = Issuing {
            as_of: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            prefix: "CN-",
            next_seq: issued.len() as u64 + 1,
            invoices,
            issued,
        };
        judge_credit_notes(dir.path(), &issuing).unwrap()
    }

    const HEAD: &str = "creditNoteRef,invoiceNumber,date,amount,reason\n";

    #[test]
    fn many_small_credits_of_a_jpy_invoice_end_with_exactly_its_vat() {
        // 1001 JPY at 25 %: VAT 250 (250.25 rounds down).
        let invoices = [invoice("INV-1", "JPY", "1001", 25)];
        let mut csv = HEAD.to_string();
        for i in 0..1000 {
            csv += &format!("R{i},INV-1,2026-11-10,1,one yen\n");
        }
        csv += "LAST,INV-1,2026-11-11,,the rest\n";
        let run = judge(&csv, &invoices, &[]);
        assert!(run.rejects.is_empty(), "{:?}", run.rejects.first());
        assert_eq!(run.issued.len(), 1001);
        let vat: Decimal = run.issued.iter().map(|(_, n)| n.vat_amount()).sum();
        let net: Decimal = run.issued.iter().map(|(_, n)| n.net_amount).sum();
        assert_eq!((net, vat), (Decimal::new(1001, 0), Decimal::new(250, 0)));
        assert!(
            run.issued
                .iter()
                .all(|(_, n)| n.vat_amount() >= Decimal::ZERO)
        );
        assert_eq!(run.issued[0].1.number, "CN-00000001");
        assert_eq!(run.issued[1000].1.number, "CN-00001001");
        assert_eq!(run.issued[1000].1.credit_note_ref, "LAST");
    }

    #[test]
    fn every_reject_reason_of_spec_2_4() {
        let invoices = [invoice("INV-1", "NOK", "100.00", 25)];
        let csv = format!(
            "{HEAD}\
             A,INV-1,2026-11-10,10.00,ok\n\
             A,INV-1,2026-11-10,10.00,again\n\
             B,INV-9,2026-11-10,10.00,unknown\n\
             C,INV-1,2026-11-01,10.00,before\n\
             D,INV-1,2026-11-10,95.00,too much\n\
             E,INV-1,2026-11-10,0,zero\n\
             F,INV-1,2026-11-10,-5,negative\n\
             G,INV-1,2026-11-10,1.005,three digits\n\
             H,INV-1,2026-11-10,abc,malformed\n\
             I,INV-1,10/11/2026,1,bad date\n\
             J,INV-1,2026-11-10,1,\n\
             K,INV-1,2026-11-10\n\
             L,INV-1,2026-11-10,1,x,y\n\
             M,INV-1,2026-12-02,1,waits\n\
             N,INV-1,2026-11-10,1.000,fine by value\n\
             O,INV-1,2026-11-10,1E+30,huge\n"
        );
        let run = judge(&csv, &invoices, &[]);
        let reasons: Vec<(u64, &str)> = run.rejects.iter().map(|r| (r.line, r.reason)).collect();
        assert_eq!(
            reasons,
            [
                (3, "duplicate_ref"),
                (4, "unknown_invoice"),
                (5, "before_invoice"),
                (6, "exceeds_invoice"),
                (7, "bad_number"),
                (8, "bad_number"),
                (9, "bad_number"),
                (10, "bad_number"),
                (11, "bad_date"),
                (12, "missing_value"),
                (13, "too_few_fields"),
                (14, "too_many_fields"),
                (17, "bad_number"),
            ]
        );
        assert_eq!(run.waiting, 1);
        let issued: Vec<(&str, Decimal)> = run
            .issued
            .iter()
            .map(|(_, n)| (n.credit_note_ref.as_str(), n.net_amount))
            .collect();
        assert_eq!(issued, [("A", Decimal::new(10, 0)), ("N", Decimal::ONE)]);
    }

    #[test]
    fn an_issued_line_is_never_judged_again_and_a_later_copy_stays_a_duplicate() {
        let invoices = [invoice("INV-1", "NOK", "100.00", 25)];
        let first = judge(
            &format!("{HEAD}A,INV-1,2026-11-10,,all of it\n"),
            &invoices,
            &[],
        );
        assert_eq!(first.issued.len(), 1);
        let note = &first.issued[0].1;
        assert_eq!(note.net_amount, Decimal::new(10000, 2));
        assert_eq!(note.vat_amount(), Decimal::new(2500, 2));
        let issued = [note.clone()];
        // Edited after it issued (amount, invoice): changes nothing, no reject.
        let again = judge(
            &format!(
                "{HEAD}A,INV-9,2026-11-10,5,edited\nA,INV-1,2026-11-10,1,copy\nB,INV-1,2026-11-20,,rest\n"
            ),
            &invoices,
            &issued,
        );
        assert!(again.issued.is_empty());
        let reasons: Vec<(u64, &str)> = again.rejects.iter().map(|r| (r.line, r.reason)).collect();
        assert_eq!(reasons, [(3, "duplicate_ref"), (4, "exceeds_invoice")]);
    }

    #[test]
    fn rows_are_judged_in_order_of_date_then_line() {
        let invoices = [invoice("INV-1", "NOK", "100.00", 25)];
        let csv = format!("{HEAD}LATE,INV-1,2026-11-20,60,b\nEARLY,INV-1,2026-11-10,60,a\n");
        let run = judge(&csv, &invoices, &[]);
        assert_eq!(run.issued.len(), 1);
        assert_eq!(run.issued[0].1.credit_note_ref, "EARLY");
        assert_eq!(run.rejects[0].line, 2);
        assert_eq!(run.rejects[0].reason, "exceeds_invoice");
    }

    #[test]
    fn a_file_without_a_column_is_rejected_whole() {
        let run = judge(
            "creditNoteRef,invoiceNumber,date,amount\nA,INV-1,2026-11-10,1\n",
            &[],
            &[],
        );
        assert_eq!(run.rejects.len(), 1);
        assert_eq!(
            (run.rejects[0].line, run.rejects[0].reason),
            (1, "missing_columns")
        );
        assert!(run.rejects[0].detail.contains("reason"));
    }
}
