//! `faktura explain`: why a profile got an invoice or not, period by period,
//! in words a support person can read out to a customer. Reads OUT only
//! (the ledger), never the data directory.

use std::path::Path;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::ledger::{Delivery, Document, IssuedInvoice, Ledger, LedgerError};
use crate::model::{CreditNote, Decision, DecisionCode, EinvoiceAddresses, Invoice, Kind, Locale};
use crate::preferences::ProfilePreferences;

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("no ledger at `{}`: has faktura run into this OUT?", .0.display())]
    NoLedger(std::path::PathBuf),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Explains every decided period of `profile`, or only those starting in
/// `period` (`YYYY-MM`). Without a period, also its e-mail invoice
/// preference on `on` (default: the as_of of the last run) and the changes
/// behind it, accepted and refused.
pub fn explain(
    out_dir: &Path,
    profile: &str,
    period: Option<&str>,
    on: Option<NaiveDate>,
) -> Result<String, ExplainError> {
    let path = out_dir.join("ledger.sqlite");
    if !path.exists() {
        return Err(ExplainError::NoLedger(path));
    }
    let ledger = Ledger::open_read_only(&path)?;
    let deliveries = ledger.deliveries()?;
    let decisions: Vec<Decision> = ledger
        .decisions()?
        .into_values()
        .filter(|d| d.profile_id == profile)
        .filter(|d| period.is_none_or(|p| d.period.month_key() == p))
        .collect();
    let invoices = ProfileInvoices::read(&ledger, profile, &decisions)?;
    let mut out = String::new();
    if decisions.is_empty() {
        let scope = period.map_or(String::new(), |p| format!(" for {p}"));
        out += &format!("No decisions recorded for profile {profile}{scope}.\n");
    }
    let history = InvoiceHistory {
        deliveries: &deliveries,
        credit_notes: &invoices.credit_notes,
    };
    for d in &decisions {
        out += &explain_decision(d, invoices.of(d), &history);
        out.push('\n');
    }
    // The preference is the profile's, not a period's: shown when no
    // period is asked for.
    if period.is_none() {
        out += &explain_preference(&ledger, profile, on)?;
    }
    Ok(out)
}

/// A profile's invoices of the decisions explained (only those read with
/// their lines), as issued and as they stand, and its credit notes.
struct ProfileInvoices {
    invoices: Vec<Invoice>,
    issued: std::collections::BTreeMap<String, IssuedInvoice>,
    credit_notes: Vec<CreditNote>,
}

impl ProfileInvoices {
    fn read(ledger: &Ledger, profile: &str, decisions: &[Decision]) -> Result<Self, LedgerError> {
        let numbers: Vec<String> = decisions
            .iter()
            .filter_map(|d| d.invoice_number.clone())
            .collect();
        Ok(ProfileInvoices {
            issued: ledger
                .invoice_heads()?
                .into_iter()
                .filter(|i| numbers.contains(&i.head.number))
                .map(|i| (i.head.number.clone(), i))
                .collect(),
            credit_notes: ledger
                .credit_notes()?
                .into_iter()
                .filter(|n| n.profile_id == profile)
                .collect(),
            invoices: ledger.invoices_numbered(&numbers)?,
        })
    }

    /// The invoice decision `d` issued, whole and as it stands.
    fn of(&self, d: &Decision) -> Option<(&Invoice, &IssuedInvoice)> {
        let invoice = self
            .invoices
            .iter()
            .find(|i| Some(&i.number) == d.invoice_number.as_ref())?;
        Some((invoice, self.issued.get(&invoice.number)?))
    }
}

/// The profile's e-mail invoice preference on `on` (default: the last
/// run's as_of) and the changes behind it.
fn explain_preference(
    ledger: &Ledger,
    profile: &str,
    on: Option<NaiveDate>,
) -> Result<String, ExplainError> {
    let Some(record) = ledger.preferences_of(profile)? else {
        return Ok(String::new());
    };
    let record: ProfilePreferences =
        serde_json::from_str(&record).map_err(|e| LedgerError::Corrupt {
            what: "preferences.data",
            detail: e.to_string(),
        })?;
    let day = match on {
        Some(day) => Some(day),
        None => ledger.latest_as_of()?,
    };
    Ok(day.map_or(String::new(), |day| record.explain(profile, day)))
}

fn money(value: Decimal, currency: &str) -> String {
    let minor = crate::model::Currency::parse(currency).map_or(2, |c| c.minor_unit);
    format!("{:.*} {currency}", minor as usize, value)
}

/// What happened to a profile's invoices after they were issued.
pub struct InvoiceHistory<'a> {
    pub deliveries: &'a [Delivery],
    pub credit_notes: &'a [CreditNote],
}

/// One decision in plain words.
pub fn explain_decision(
    d: &Decision,
    invoice: Option<(&Invoice, &IssuedInvoice)>,
    history: &InvoiceHistory,
) -> String {
    let month = Locale::EnUs.month_year(d.period.start);
    let what = match d.kind {
        Kind::Services => String::new(),
        Kind::Purchases => " (purchases)".to_string(),
    };
    let span = format!("{} to {}", d.period.start, d.period.end);
    let m = |v: Decimal| money(v, &d.currency);
    let Some(a) = d.amounts else {
        return explain_hold(d, &month, &what, &span);
    };
    let carried = if a.carried_in.is_zero() {
        String::new()
    } else if a.carried_in < Decimal::ZERO {
        format!(
            " A credit of {} was carried from earlier periods.",
            m(-a.carried_in)
        )
    } else {
        format!(" {} was carried from earlier periods.", m(a.carried_in))
    };
    match d.code {
        DecisionCode::HeldIncompleteUsage => unreachable!("held decisions have no amounts"),
        DecisionCode::NoCharges => {
            format!(
                "No invoice for {month}{what} ({span}): there was no usage in the period and nothing carried from earlier periods.\n"
            )
        }
        DecisionCode::DeferredFirst30Days => format!(
            "No invoice for {month}{what} ({span}): the profile is new (its period ended fewer than 30 days after it was created), so the amount of {} is carried to the next period, not forgiven.{carried}\n",
            m(a.amount_due)
        ),
        DecisionCode::FreeTrial => format!(
            "No invoice for {month}{what} ({span}): the free trial covered all {} of usage.{carried}\n",
            m(a.trial_covered)
        ),
        DecisionCode::CoveredByCredit => {
            let head = format!("No invoice for {month}{what} ({span})");
            explain_covered(d, &a, &head)
        }
        DecisionCode::InvoiceIssued => explain_invoice(d, invoice, history, &month, &what, &span),
    }
}

/// A held period: the days it waits for, or the earlier period that holds it.
fn explain_hold(d: &Decision, month: &str, what: &str, span: &str) -> String {
    let days: Vec<String> = d.missing_days.iter().map(|x| x.to_string()).collect();
    if days.is_empty() {
        format!(
            "No invoice yet for {month}{what} ({span}): an earlier period of this profile is still held for missing usage, and periods are decided in order.\n"
        )
    } else {
        format!(
            "No invoice yet for {month}{what} ({span}): no usage file arrived for {}. The period is decided on the first run after they arrive (a day that truly had no usage needs a header-only file).\n",
            days.join(", ")
        )
    }
}

/// `covered_by_credit`: which credits covered the usage, or the refunds
/// that netted it to zero or less, and any credit carried on.
fn explain_covered(d: &Decision, a: &crate::model::Amounts, head: &str) -> String {
    let m = |v: Decimal| money(v, &d.currency);
    let mut covers = Vec::new();
    if !a.monthly_credit.is_zero() {
        covers.push(format!("the monthly credit of {}", m(a.monthly_credit)));
    }
    for (id, used) in &d.credits_used {
        covers.push(format!("{} of prepaid credit {id}", m(*used)));
    }
    if a.carried_in < Decimal::ZERO {
        covers.push(format!(
            "a credit of {} carried from earlier periods",
            m(-a.carried_in)
        ));
    }
    if covers.is_empty() {
        // Nothing but the lines themselves: refunds netted them to zero or less.
        let left = if a.carried_out < Decimal::ZERO {
            format!(
                " The credit of {} is carried to the next period.",
                m(-a.carried_out)
            )
        } else {
            String::new()
        };
        return format!(
            "{head}: refunds and credits in the period net the charges to {}.{left}\n",
            m(a.subtotal)
        );
    }
    let left = if a.carried_out < Decimal::ZERO {
        format!(
            " The remaining {} is carried to the next period as a credit.",
            m(-a.carried_out)
        )
    } else {
        String::new()
    };
    format!(
        "{head}: {} covered all {} of usage.{left}\n",
        join_words(&covers),
        m(a.subtotal)
    )
}

fn explain_invoice(
    d: &Decision,
    invoice: Option<(&Invoice, &IssuedInvoice)>,
    history: &InvoiceHistory,
    month: &str,
    what: &str,
    span: &str,
) -> String {
    let Some((invoice, issued)) = invoice else {
        return format!(
            "Invoice for {month}{what} ({span}) is recorded but missing from the ledger.\n"
        );
    };
    let m = |v: Decimal| money(v, &d.currency);
    let mut out = format!(
        "Invoice {} for {month}{what} ({span}): amount due {}, due {}, status {}",
        invoice.number,
        m(invoice.amounts.amount_due),
        invoice.due_date,
        issued.status
    );
    if !issued.amount_paid.is_zero() {
        out += &format!(" ({} paid)", m(issued.amount_paid));
    }
    out += ".\n";
    out += &amounts_line(invoice);
    match &invoice.einvoice {
        EinvoiceAddresses::Skipped(why) => out += &format!("  No e-invoice: {why}.\n"),
        EinvoiceAddresses::NoSeller => {
            out += "  No e-invoice: the issuer has no Peppol address (issuer.peppol_id, or a NO, SE or DK vat_id).\n"
        }
        EinvoiceAddresses::Unrecorded | EinvoiceAddresses::To { .. } => {}
    }
    out += &explain_credit_notes(invoice, issued, history.credit_notes);
    let of_invoice = |document: Document| {
        history
            .deliveries
            .iter()
            .filter(move |x| x.number == invoice.number && x.document == document)
    };
    let sent: Vec<String> = of_invoice(Document::Invoice).map(delivery_state).collect();
    if sent.is_empty() {
        out += match d.kind {
            Kind::Purchases => "  Not e-mailed: purchases invoices are never e-mailed.\n",
            Kind::Services => {
                "  Not e-mailed: the profile has not opted in to e-mail invoices, or has no one to send to.\n"
            }
        };
    } else {
        out += &format!("  E-mailed to {}.\n", sent.join(", "));
    }
    out += &explain_reminders(history.deliveries, &invoice.number);
    out
}

/// What an invoice's amounts were made of: subtotal, trial, credits,
/// carry, VAT and total.
fn amounts_line(invoice: &Invoice) -> String {
    let m = |v: Decimal| money(v, &invoice.currency);
    let a = &invoice.amounts;
    let mut out = format!("  Subtotal {}", m(a.subtotal));
    if !a.trial_covered.is_zero() {
        out += &format!(", free trial covered {}", m(a.trial_covered));
    }
    if !invoice.credits().is_zero() {
        out += &format!(", credits {}", m(invoice.credits()));
    }
    if !a.carried_in.is_zero() {
        out += &format!(", carried in {}", m(a.carried_in));
    }
    if let Some(vat) = &invoice.vat {
        out += &format!(
            "; VAT {} ({} % {}), total {}",
            m(vat.amount),
            vat.rate.normalize(),
            vat.category.as_str(),
            m(invoice.total())
        );
    }
    out + ".\n"
}

/// An invoice's credit notes, and its status after them.
fn explain_credit_notes(invoice: &Invoice, issued: &IssuedInvoice, notes: &[CreditNote]) -> String {
    let notes: Vec<&CreditNote> = notes
        .iter()
        .filter(|n| n.invoice_number == invoice.number)
        .collect();
    if notes.is_empty() {
        return String::new();
    }
    let m = |v: Decimal| money(v, &invoice.currency);
    let mut out = String::new();
    for n in &notes {
        out += &format!(
            "  Credit note {} of {} (ref {}): net {}, VAT {}, total {}; reason: {}.\n",
            n.number,
            n.issue_date,
            n.credit_note_ref,
            m(n.net_amount),
            m(n.vat_amount()),
            m(n.total()),
            n.printable_reason()
        );
    }
    out += &format!(
        "  Credited {} of {}; status after the credit notes: {}.\n",
        m(issued.credited_total),
        m(invoice.total()),
        issued.status
    );
    out
}

/// The reminders of an invoice (SPEC §5.1): which, to whom, delivered or not.
fn explain_reminders(deliveries: &[Delivery], number: &str) -> String {
    let mut by_reminder: std::collections::BTreeMap<(u32, String), Vec<String>> =
        Default::default();
    for d in deliveries.iter().filter(|d| d.number == number) {
        if let Document::Reminder(k) = d.document {
            let issued = d.issued_on.clone().unwrap_or_default();
            by_reminder
                .entry((k, issued))
                .or_default()
                .push(delivery_state(d));
        }
    }
    by_reminder
        .into_iter()
        .map(|((k, issued), to)| {
            format!("  Reminder {k}, issued {issued}, to {}.\n", to.join(", "))
        })
        .collect()
}

/// `ann@example.com (sent)`, or with the server's last reply when it failed
/// or was refused: `ann@example.com (failed: 451 try again later)`.
fn delivery_state(d: &Delivery) -> String {
    match (&d.last_reply, d.status.as_str()) {
        (Some(reply), "failed" | "bounced") => format!("{} ({}: {reply})", d.recipient, d.status),
        _ => format!("{} ({})", d.recipient, d.status),
    }
}

fn join_words(items: &[String]) -> String {
    match items {
        [] => "credits".to_string(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}
