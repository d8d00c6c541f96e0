//! Credit notes (SPEC §4.9): corrections of an issued invoice, each with a
//! number of its own sequence, and the cumulative VAT rule that credits an
//! invoice's VAT exactly when it is credited in full.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Currency, EinvoiceAddresses, InvoiceHead, Kind, Period, Vat};

/// An issued credit note. Like an invoice, it never changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditNote {
    pub number: String,
    /// The requester's `creditNoteRef`.
    pub credit_note_ref: String,
    /// The line of credit_notes.csv that issued it.
    pub source_line: u64,
    pub invoice_number: String,
    pub invoice_date: NaiveDate,
    pub account_id: String,
    pub profile_id: String,
    pub kind: Kind,
    /// The credited invoice's period.
    pub period: Period,
    pub currency: String,
    /// The run's `as_of`.
    pub issue_date: NaiveDate,
    /// As written in the file (trimmed); [`CreditNote::printable_reason`]
    /// is what documents and e-mails carry.
    pub reason: String,
    pub net_amount: Decimal,
    /// The invoice's category and rate with this note's VAT; `None` when
    /// the invoice has no VAT.
    pub vat: Option<Vat>,
    /// The invoice's recipients (fixed at issue); empty for `purchases`.
    pub recipients: Vec<String>,
    /// The invoice's e-invoice addresses: a credit note has an e-invoice
    /// when its invoice has one (SPEC §6.2).
    pub einvoice: EinvoiceAddresses,
}

impl CreditNote {
    pub fn vat_amount(&self) -> Decimal {
        self.vat.as_ref().map_or(Decimal::ZERO, |v| v.amount)
    }

    /// `net_amount + vat_amount`.
    pub fn total(&self) -> Decimal {
        self.net_amount + self.vat_amount()
    }

    /// The reason without the characters XML 1.0 cannot carry (SPEC §2.4).
    pub fn printable_reason(&self) -> String {
        without_control_characters(&self.reason)
    }
}

/// `text` without control characters (but tab, line feed and carriage
/// return become a space) and without U+FFFE and U+FFFF.
pub fn without_control_characters(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\t' | '\n' | '\r' => Some(' '),
            '\u{FFFE}' | '\u{FFFF}' => None,
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// What an invoice has been credited so far: net and VAT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Credited {
    pub net: Decimal,
    pub vat: Decimal,
    pub total: Decimal,
}

impl Credited {
    pub fn add(&mut self, note: &CreditNote) {
        self.net += note.net_amount;
        self.vat += note.vat_amount();
        self.total += note.total();
    }

    /// The invoice's creditable net: its `amount_due` less what earlier
    /// credit notes took back (SPEC §4.9).
    pub fn creditable(&self, invoice: &InvoiceHead) -> Decimal {
        invoice.amounts.amount_due - self.net
    }

    /// The VAT of a note crediting `net` more (SPEC §4.9):
    /// R(N x rate / 100) less the VAT credited before, N being the net
    /// credited with this note included.
    pub fn vat_of_next(&self, invoice: &InvoiceHead, net: Decimal) -> Option<Vat> {
        let vat = invoice.vat.as_ref()?;
        let currency = Currency::parse(&invoice.currency)?;
        let cumulative = currency.round((self.net + net) * vat.rate / Decimal::ONE_HUNDRED);
        Some(Vat {
            category: vat.category,
            rate: vat.rate,
            amount: cumulative - self.vat,
        })
    }
}
