//! What a decide step works with and produces: invoice lines, amounts,
//! decisions, issued invoices, and what the ledger keeps of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{EinvoiceAddresses, Period, Vat};

/// Which invoice a line belongs to (SPEC §4 rule 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    Services,
    Purchases,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Services => "services",
            Kind::Purchases => "purchases",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "services" => Some(Kind::Services),
            "purchases" => Some(Kind::Purchases),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CoveredBy {
    None,
    Trial,
    Adjustment,
}

impl CoveredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            CoveredBy::None => "none",
            CoveredBy::Trial => "trial",
            CoveredBy::Adjustment => "adjustment",
        }
    }

    pub fn parse(s: &str) -> Option<CoveredBy> {
        match s {
            "none" => Some(CoveredBy::None),
            "trial" => Some(CoveredBy::Trial),
            "adjustment" => Some(CoveredBy::Adjustment),
            _ => None,
        }
    }
}

/// What identifies an invoice line within a period (SPEC §4 rule 1): the
/// subscription, what it used, credit eligibility and trial coverage.
/// Both texts are shared (`Arc`): a month-end of a large tenant has about
/// 1.5 million lines over a few thousand meter texts, and a key is copied
/// into the lines, the billed sums and the invoice. Stored as JSON with
/// the ten fields flat, as before the texts were shared.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LineKey {
    pub subscription_id: Arc<str>,
    pub meter: Arc<MeterLine>,
    pub credit_eligible: bool,
    pub covered_by: CoveredBy,
}

/// What a line's usage was of: the meter and how it was charged and priced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MeterLine {
    pub meter_id: String,
    pub meter_category: String,
    pub meter_name: String,
    pub unit_of_measure: String,
    pub charge_type: String,
    pub publisher_type: String,
    pub pricing_model: String,
}

impl LineKey {
    /// SPEC §4 rule 7: Marketplace lines and reservation purchases/refunds.
    pub fn is_purchase(&self) -> bool {
        self.meter.is_purchase()
    }
}

impl MeterLine {
    /// SPEC §4 rule 7: Marketplace lines and reservation purchases/refunds.
    pub fn is_purchase(&self) -> bool {
        self.publisher_type == "Marketplace"
            || (self.pricing_model == "Reservation"
                && (self.charge_type.eq_ignore_ascii_case("purchase")
                    || self.charge_type.eq_ignore_ascii_case("refund")))
    }
}

impl Serialize for LineKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let m = &*self.meter;
        let mut out = serializer.serialize_struct("LineKey", 10)?;
        out.serialize_field("subscription_id", &*self.subscription_id)?;
        out.serialize_field("meter_id", &m.meter_id)?;
        out.serialize_field("meter_category", &m.meter_category)?;
        out.serialize_field("meter_name", &m.meter_name)?;
        out.serialize_field("unit_of_measure", &m.unit_of_measure)?;
        out.serialize_field("charge_type", &m.charge_type)?;
        out.serialize_field("publisher_type", &m.publisher_type)?;
        out.serialize_field("pricing_model", &m.pricing_model)?;
        out.serialize_field("credit_eligible", &self.credit_eligible)?;
        out.serialize_field("covered_by", &self.covered_by)?;
        out.end()
    }
}

impl<'de> Deserialize<'de> for LineKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// A line key as stored.
        #[derive(Deserialize)]
        struct Flat {
            subscription_id: String,
            meter_id: String,
            meter_category: String,
            meter_name: String,
            unit_of_measure: String,
            charge_type: String,
            publisher_type: String,
            pricing_model: String,
            credit_eligible: bool,
            covered_by: CoveredBy,
        }
        let f = Flat::deserialize(deserializer)?;
        Ok(LineKey {
            subscription_id: f.subscription_id.into(),
            meter: Arc::new(MeterLine {
                meter_id: f.meter_id,
                meter_category: f.meter_category,
                meter_name: f.meter_name,
                unit_of_measure: f.unit_of_measure,
                charge_type: f.charge_type,
                publisher_type: f.publisher_type,
                pricing_model: f.pricing_model,
            }),
            credit_eligible: f.credit_eligible,
            covered_by: f.covered_by,
        })
    }
}

/// Exact sums of the usage rows behind one line; costs at scale 10.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineSums {
    pub quantity: Decimal,
    pub cost: Decimal,
    pub rows: i64,
}

impl LineSums {
    pub fn add(&mut self, other: &LineSums) {
        self.quantity += other.quantity;
        self.cost += other.cost;
        self.rows += other.rows;
    }
}

/// An invoice line as decided: exact sums plus the rounded amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub key: LineKey,
    pub sums: LineSums,
    pub amount: Decimal,
}

/// The decision codes of SPEC §4 rule 6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DecisionCode {
    HeldIncompleteUsage,
    NoCharges,
    DeferredFirst30Days,
    FreeTrial,
    CoveredByCredit,
    InvoiceIssued,
}

impl DecisionCode {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionCode::HeldIncompleteUsage => "held_incomplete_usage",
            DecisionCode::NoCharges => "no_charges",
            DecisionCode::DeferredFirst30Days => "deferred_first_30_days",
            DecisionCode::FreeTrial => "free_trial",
            DecisionCode::CoveredByCredit => "covered_by_credit",
            DecisionCode::InvoiceIssued => "invoice_issued",
        }
    }

    pub fn parse(s: &str) -> Option<DecisionCode> {
        [
            DecisionCode::HeldIncompleteUsage,
            DecisionCode::NoCharges,
            DecisionCode::DeferredFirst30Days,
            DecisionCode::FreeTrial,
            DecisionCode::CoveredByCredit,
            DecisionCode::InvoiceIssued,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// The amounts behind a non-held decision (SPEC §6 `decisions`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amounts {
    pub subtotal: Decimal,
    pub trial_covered: Decimal,
    pub monthly_credit: Decimal,
    pub prepaid_credit: Decimal,
    pub carried_in: Decimal,
    pub amount_due: Decimal,
    pub carried_out: Decimal,
}

impl Amounts {
    /// `amount_due` plus the VAT of an invoice (none without `[tax]`).
    pub fn total(&self, vat: Option<&Vat>) -> Decimal {
        self.amount_due + vat.map_or(Decimal::ZERO, |v| v.amount)
    }

    /// Monthly and prepaid credits applied.
    pub fn credits(&self) -> Decimal {
        self.monthly_credit + self.prepaid_credit
    }
}

/// One row of `decisions/`: what was decided for a profile, kind and period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub account_id: String,
    pub profile_id: String,
    pub kind: Kind,
    pub period: Period,
    pub currency: String,
    pub code: DecisionCode,
    /// `None` only for held decisions.
    pub amounts: Option<Amounts>,
    pub invoice_number: Option<String>,
    pub missing_days: Vec<NaiveDate>,
    pub decided_on: NaiveDate,
    /// Prepaid grants drawn, `(creditId, amount)`, for `explain`.
    pub credits_used: Vec<(String, Decimal)>,
}

/// Invoice status (SPEC §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvoiceStatus {
    Due,
    PastDue,
    Paid,
    Credited,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Due => "due",
            InvoiceStatus::PastDue => "past_due",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Credited => "credited",
        }
    }

    /// SPEC §6: `credited` when credit notes took back the whole total;
    /// else `paid` once payments reach what is still owed (`total -
    /// credited_total`); else `past_due` after the due date, `due` until then.
    pub fn of(
        total: Decimal,
        credited_total: Decimal,
        amount_paid: Decimal,
        due: NaiveDate,
        as_of: NaiveDate,
    ) -> Self {
        if credited_total == total {
            InvoiceStatus::Credited
        } else if amount_paid >= total - credited_total {
            InvoiceStatus::Paid
        } else if as_of > due {
            InvoiceStatus::PastDue
        } else {
            InvoiceStatus::Due
        }
    }
}

/// An issued invoice. Its number, lines and amounts never change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub number: String,
    pub account_id: String,
    pub profile_id: String,
    pub kind: Kind,
    pub period: Period,
    pub currency: String,
    pub invoice_date: NaiveDate,
    pub due_date: NaiveDate,
    pub amounts: Amounts,
    pub lines: Vec<Line>,
    /// Fixed when the invoice is issued (SPEC §5); lower-cased.
    pub recipients: Vec<String>,
    /// None without `[tax]` (SPEC §4.8); fixed when issued.
    #[serde(default)]
    pub vat: Option<Vat>,
    /// Whether it has an e-invoice (SPEC §6.1); fixed when issued.
    #[serde(default)]
    pub einvoice: EinvoiceAddresses,
}

impl Invoice {
    pub fn credits(&self) -> Decimal {
        self.amounts.credits()
    }

    /// `amount_due` plus VAT: what the customer pays.
    pub fn total(&self) -> Decimal {
        self.amounts.total(self.vat.as_ref())
    }

    /// The invoice without its lines.
    pub fn head(&self) -> InvoiceHead {
        InvoiceHead {
            number: self.number.clone(),
            account_id: self.account_id.clone(),
            profile_id: self.profile_id.clone(),
            kind: self.kind,
            period: self.period,
            currency: self.currency.clone(),
            invoice_date: self.invoice_date,
            due_date: self.due_date,
            amounts: self.amounts,
            recipients: self.recipients.clone(),
            vat: self.vat.clone(),
            einvoice: self.einvoice.clone(),
        }
    }
}

/// An issued invoice without its lines: all that payments, statuses and
/// the invoices table need, read without the lines' memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceHead {
    pub number: String,
    pub account_id: String,
    pub profile_id: String,
    pub kind: Kind,
    pub period: Period,
    pub currency: String,
    pub invoice_date: NaiveDate,
    pub due_date: NaiveDate,
    pub amounts: Amounts,
    pub recipients: Vec<String>,
    #[serde(default)]
    pub vat: Option<Vat>,
    #[serde(default)]
    pub einvoice: EinvoiceAddresses,
}

impl InvoiceHead {
    /// `amount_due` plus VAT: what the customer pays.
    pub fn total(&self) -> Decimal {
        self.amounts.total(self.vat.as_ref())
    }

    /// The invoice with these lines.
    pub fn with_lines(self, lines: Vec<Line>) -> Invoice {
        Invoice {
            number: self.number,
            account_id: self.account_id,
            profile_id: self.profile_id,
            kind: self.kind,
            period: self.period,
            currency: self.currency,
            invoice_date: self.invoice_date,
            due_date: self.due_date,
            amounts: self.amounts,
            lines,
            recipients: self.recipients,
            vat: self.vat,
            einvoice: self.einvoice,
        }
    }
}

/// Current lines of every period: (profile, kind, period start) -> key -> sums.
pub type PeriodLines = BTreeMap<(String, Kind, NaiveDate), BTreeMap<LineKey, LineSums>>;

/// A profile's settings as recorded when faktura first decided for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileState {
    pub currency: String,
    pub period_start_day: u32,
    pub created_date: NaiveDate,
}

/// Key of a decision, of its lines and of what its period billed.
pub type DecisionKey = (String, Kind, NaiveDate);

/// Billed sums per line key of a decided period.
pub type Billed = BTreeMap<LineKey, LineSums>;

/// Everything one decide step commits, in one transaction.
#[derive(Debug, Default)]
pub struct DecideCommit {
    pub decisions: Vec<Decision>,
    pub lines: Vec<(DecisionKey, Vec<Line>)>,
    pub billed: Vec<(DecisionKey, Billed)>,
    pub invoices: Vec<(u64, Invoice)>,
    pub profile_states: Vec<(String, ProfileState)>,
    /// The fresh days this step compared decided periods against: no
    /// longer fresh once committed.
    pub seen_fresh_days: Vec<NaiveDate>,
    /// Decided periods late usage may have touched, not yet compared with
    /// their billed sums: replaces what the ledger held.
    pub unchecked: Vec<DecisionKey>,
}

/// The deterministic Message-ID of an (invoice, recipient) delivery
/// (SPEC §5): the same on every re-send, whatever the case of the address.
pub fn message_id(invoice_number: &str, recipient: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest =
        Sha256::digest(format!("{invoice_number}\n{}", recipient.to_lowercase()).as_bytes());
    let hash: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("<{invoice_number}.{hash}@faktura.invoice>")
}

/// The deterministic Message-ID of a reminder (SPEC §5.1), per (invoice,
/// reminder, recipient).
pub fn reminder_message_id(invoice_number: &str, reminder: u32, recipient: &str) -> String {
    message_id(&format!("{invoice_number}.reminder-{reminder}"), recipient)
}
