//! The domain nouns every stage shares: reference data (accounts, profiles,
//! subscriptions, roles, credits), billing periods, invoice lines, decisions
//! and invoices. Plain data only; the rules live in `decide`, the money
//! arithmetic here is limited to rounding to a currency's minor unit.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, Months, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// The agreement a billing account was signed under (SPEC §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Agreement {
    Mca,
    Mpa,
    Mosp,
}

/// A subscription's offer (SPEC §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Offer {
    PayAsYouGo,
    FreeTrial,
    MonthlyCredit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RoleKind {
    Owner,
    Contributor,
    Reader,
    InvoiceManager,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    BillingAccount,
    BillingProfile,
}

/// The four invoice languages (SPEC §2.2 `locale`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Locale {
    EnUs,
    NbNo,
    NlNl,
    SvSe,
}

impl Locale {
    pub fn parse(s: &str) -> Option<Locale> {
        match s.to_ascii_lowercase().as_str() {
            "en-us" => Some(Locale::EnUs),
            "nb-no" => Some(Locale::NbNo),
            "nl-nl" => Some(Locale::NlNl),
            "sv-se" => Some(Locale::SvSe),
            _ => None,
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Locale::EnUs => "en-US",
            Locale::NbNo => "nb-NO",
            Locale::NlNl => "nl-NL",
            Locale::SvSe => "sv-SE",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub agreement: Agreement,
    pub admin_email: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub currency: Currency,
    pub locale: Locale,
    pub created_date: NaiveDate,
    pub period_start_day: u32,
    pub email_invoice: bool,
    /// MOSP only; empty in the file means the account admin's address.
    pub invoice_email: Option<String>,
    pub payment_terms_days: u32,
    pub address: String,
    /// ISO 3166-1 alpha-2; `None` means the issuer's country.
    pub country: Option<String>,
    /// The customer's VAT number.
    pub vat_id: Option<String>,
    /// Overrides the VAT category SPEC §4.8 would choose.
    pub vat_category: Option<VatCategory>,
    /// The customer's Peppol participant id, `scheme:identifier`.
    pub peppol_id: Option<String>,
}

impl Profile {
    /// The profile's first period: the one containing the later of its
    /// createdDate and billing_start (SPEC §3).
    pub fn first_period(&self, billing_start: NaiveDate) -> Period {
        Period::containing(self.created_date.max(billing_start), self.period_start_day)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub profile_id: String,
    pub name: String,
    pub offer: Offer,
    pub start_date: NaiveDate,
    pub trial_end_date: Option<NaiveDate>,
    pub monthly_credit: Option<Decimal>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleAssignment {
    pub email: String,
    pub name: String,
    pub role: RoleKind,
    pub scope: Scope,
    pub scope_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub profile_id: String,
    pub email: String,
}

/// A setting of preferences.csv (SPEC §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Setting {
    /// Opt in or out of e-mail invoices (every agreement).
    EmailInvoice,
    /// The preferred address of a MOSP profile.
    InvoiceEmail,
    /// An additional recipient of a MOSP profile.
    AddRecipient,
    RemoveRecipient,
}

impl Setting {
    pub const ALL: [Setting; 4] = [
        Setting::EmailInvoice,
        Setting::InvoiceEmail,
        Setting::AddRecipient,
        Setting::RemoveRecipient,
    ];

    /// The setting named `s`, in any case.
    pub fn parse(s: &str) -> Option<Setting> {
        Setting::ALL
            .into_iter()
            .find(|setting| setting.as_str().eq_ignore_ascii_case(s))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Setting::EmailInvoice => "emailInvoice",
            Setting::InvoiceEmail => "invoiceEmail",
            Setting::AddRecipient => "addRecipient",
            Setting::RemoveRecipient => "removeRecipient",
        }
    }

    /// Settings only a MOSP profile has.
    pub fn mosp_only(self) -> bool {
        self != Setting::EmailInvoice
    }
}

/// An accepted change of preferences.csv, its value normalised (`true` /
/// `false`, or a lower-cased address).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreferenceChange {
    pub line: u64,
    pub profile_id: String,
    pub setting: Setting,
    pub value: String,
    pub changed_by: String,
    pub changed_date: NaiveDate,
}

/// A profile's e-mail invoice preference on some day (SPEC §2.3).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preference {
    pub email_invoice: bool,
    /// MOSP: the preferred address; `None` means the account admin's.
    pub invoice_email: Option<String>,
    /// MOSP: the additional recipients.
    pub recipients: std::collections::BTreeSet<String>,
}

impl Preference {
    /// The preference as first set up: profiles.csv and recipients.csv.
    pub fn initial(reference: &Reference, profile: &Profile) -> Preference {
        Preference {
            email_invoice: profile.email_invoice,
            invoice_email: profile.invoice_email.clone(),
            recipients: reference
                .recipients
                .iter()
                .filter(|r| r.profile_id == profile.id)
                .map(|r| r.email.clone())
                .collect(),
        }
    }

    /// The preference on `day`: the initial one with every change dated on
    /// or before it applied in order of (date, line); `changes` are the
    /// profile's accepted changes, in that order.
    pub fn on(
        reference: &Reference,
        profile: &Profile,
        changes: &[PreferenceChange],
        day: NaiveDate,
    ) -> Preference {
        Preference::initial(reference, profile).updated(changes, day)
    }

    /// This preference with `changes` dated on or before `day` applied.
    pub fn updated(mut self, changes: &[PreferenceChange], day: NaiveDate) -> Preference {
        for change in changes.iter().filter(|c| c.changed_date <= day) {
            self.apply(change);
        }
        self
    }

    /// Applies one change: a later change of a setting wins; adding a listed
    /// recipient or removing an unlisted one changes nothing.
    pub fn apply(&mut self, change: &PreferenceChange) {
        match change.setting {
            Setting::EmailInvoice => self.email_invoice = change.value == "true",
            Setting::InvoiceEmail => self.invoice_email = Some(change.value.clone()),
            Setting::AddRecipient => {
                self.recipients.insert(change.value.clone());
            }
            Setting::RemoveRecipient => {
                self.recipients.remove(&change.value);
            }
        }
    }
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

/// Every profile's accepted preference changes, each list in order of
/// (changedDate, line).
pub type PreferenceChanges = BTreeMap<String, Vec<PreferenceChange>>;

/// A prepaid or promotional credit grant (SPEC §4 rule 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditGrant {
    pub id: String,
    pub profile_id: String,
    pub amount: Decimal,
    pub effective_date: NaiveDate,
    /// The grant's last valid day.
    pub expiry_date: NaiveDate,
}

/// All reference data of a data directory, validated as a whole.
#[derive(Clone, Debug, Default)]
pub struct Reference {
    pub accounts: BTreeMap<String, Account>,
    pub profiles: BTreeMap<String, Profile>,
    pub subscriptions: BTreeMap<String, Subscription>,
    pub roles: Vec<RoleAssignment>,
    pub recipients: Vec<Recipient>,
    pub credits: Vec<CreditGrant>,
    /// Non-fatal remarks made while loading (ignored rows and the like).
    pub warnings: Vec<String>,
}

impl Reference {
    pub fn account_of(&self, profile: &Profile) -> &Account {
        &self.accounts[&profile.account_id]
    }
}

/// ISO 3166-1 alpha-2 country codes (the 249 officially assigned).
#[rustfmt::skip]
const ISO_3166: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// A country code of ISO 3166-1 alpha-2, in any case; upper-cased.
pub fn country_code(s: &str) -> Option<String> {
    let code = s.trim().to_ascii_uppercase();
    ISO_3166.contains(&code.as_str()).then_some(code)
}

/// A Peppol participant id `scheme:identifier` (e.g. `0192:923456789`):
/// a scheme of letters and digits, an identifier without spaces.
pub fn peppol_id(s: &str) -> Option<String> {
    let (scheme, identifier) = s.trim().split_once(':')?;
    let scheme_ok = !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric());
    let identifier_ok = !identifier.is_empty()
        && identifier
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control());
    (scheme_ok && identifier_ok).then(|| format!("{scheme}:{identifier}"))
}

/// An ISO 4217 currency with its minor unit (the number of decimals an
/// amount is rounded to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    pub code: [u8; 3],
    pub minor_unit: u32,
}

/// ISO 4217 active codes and their minor units. Codes not listed are unknown
/// (a configuration error), so a typo such as `NKO` is caught.
#[rustfmt::skip]
const ISO_4217: &[(&str, u32)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("ANG", 2), ("AOA", 2), ("ARS", 2),
    ("AUD", 2), ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2),
    ("BHD", 3), ("BIF", 0), ("BMD", 2), ("BND", 2), ("BOB", 2), ("BRL", 2), ("BSD", 2),
    ("BTN", 2), ("BWP", 2), ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHF", 2),
    ("CLP", 0), ("CNY", 2), ("COP", 2), ("CRC", 2), ("CUP", 2), ("CVE", 2), ("CZK", 2),
    ("DJF", 0), ("DKK", 2), ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ERN", 2), ("ETB", 2),
    ("EUR", 2), ("FJD", 2), ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2),
    ("GMD", 2), ("GNF", 0), ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2),
    ("HUF", 2), ("IDR", 2), ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0),
    ("JMD", 2), ("JOD", 3), ("JPY", 0), ("KES", 2), ("KGS", 2), ("KHR", 2), ("KMF", 0),
    ("KPW", 2), ("KRW", 0), ("KWD", 3), ("KYD", 2), ("KZT", 2), ("LAK", 2), ("LBP", 2),
    ("LKR", 2), ("LRD", 2), ("LSL", 2), ("LYD", 3), ("MAD", 2), ("MDL", 2), ("MGA", 2),
    ("MKD", 2), ("MMK", 2), ("MNT", 2), ("MOP", 2), ("MRU", 2), ("MUR", 2), ("MVR", 2),
    ("MWK", 2), ("MXN", 2), ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2), ("NIO", 2),
    ("NOK", 2), ("NPR", 2), ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2), ("PGK", 2),
    ("PHP", 2), ("PKR", 2), ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2),
    ("RUB", 2), ("RWF", 0), ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2),
    ("SGD", 2), ("SHP", 2), ("SLE", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2),
    ("SYP", 2), ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2), ("TND", 3), ("TOP", 2),
    ("TRY", 2), ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2), ("UGX", 0), ("USD", 2),
    ("UYU", 2), ("UZS", 2), ("VES", 2), ("VND", 0), ("VUV", 0), ("WST", 2), ("XAF", 0),
    ("XCD", 2), ("XOF", 0), ("XPF", 0), ("YER", 2), ("ZAR", 2), ("ZMW", 2), ("ZWG", 2),
];

impl Currency {
    /// Looks a code up in ISO 4217, case-insensitively.
    pub fn parse(code: &str) -> Option<Currency> {
        let upper = code.to_ascii_uppercase();
        let minor = ISO_4217.iter().find(|(c, _)| *c == upper)?.1;
        let b = upper.as_bytes();
        Some(Currency {
            code: [b[0], b[1], b[2]],
            minor_unit: minor,
        })
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).expect("ISO codes are ASCII")
    }

    /// Rounds half away from zero to the minor unit (SPEC §4 rule 1).
    pub fn round(&self, value: Decimal) -> Decimal {
        value.round_dp_with_strategy(self.minor_unit, RoundingStrategy::MidpointAwayFromZero)
    }

    /// Whether `value` has no more digits than the minor unit, judged by value
    /// (`100.000` USD is fine).
    pub fn fits_minor_unit(&self, value: Decimal) -> bool {
        value.normalize().scale() <= self.minor_unit
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A billing period: `start` to `end`, both inclusive (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Period {
    /// The period with anchor day `start_day` (1-28) that contains `date`.
    pub fn containing(date: NaiveDate, start_day: u32) -> Period {
        let this_month = date.with_day(start_day).expect("start day is 1-28");
        let start = if date.day() >= start_day {
            this_month
        } else {
            this_month - Months::new(1)
        };
        Period::starting(start)
    }

    /// The period starting on `start` (its anchor day is `start.day()`).
    pub fn starting(start: NaiveDate) -> Period {
        let end = start + Months::new(1) - chrono::Days::new(1);
        Period { start, end }
    }

    pub fn next(&self) -> Period {
        Period::starting(self.start + Months::new(1))
    }

    /// Closed on `as_of` when `as_of >= end + 1 + settle_days`.
    pub fn is_closed(&self, as_of: NaiveDate, settle_days: u32) -> bool {
        as_of >= self.end + chrono::Days::new(1 + settle_days as u64)
    }

    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + use<> {
        let end = self.end;
        self.start.iter_days().take_while(move |d| *d <= end)
    }

    /// `YYYY-MM` of the period's start: the partition name of its outputs.
    pub fn month_key(&self) -> String {
        self.start.format("%Y-%m").to_string()
    }
}

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

/// What identifies an invoice line within a period (SPEC §4 rule 1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LineKey {
    pub subscription_id: String,
    pub meter_id: String,
    pub meter_category: String,
    pub meter_name: String,
    pub unit_of_measure: String,
    pub charge_type: String,
    pub publisher_type: String,
    pub pricing_model: String,
    pub credit_eligible: bool,
    pub covered_by: CoveredBy,
}

impl LineKey {
    /// SPEC §4 rule 7: Marketplace lines and reservation purchases/refunds.
    pub fn is_purchase(&self) -> bool {
        let charge = self.charge_type.to_ascii_lowercase();
        self.publisher_type == "Marketplace"
            || (self.pricing_model == "Reservation" && (charge == "purchase" || charge == "refund"))
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

/// Invoice payment status (SPEC §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvoiceStatus {
    Due,
    PastDue,
    Paid,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Due => "due",
            InvoiceStatus::PastDue => "past_due",
            InvoiceStatus::Paid => "paid",
        }
    }

    /// `paid` once payments reach the invoice's total (SPEC §4.8).
    pub fn of(total: Decimal, amount_paid: Decimal, due: NaiveDate, as_of: NaiveDate) -> Self {
        if amount_paid >= total {
            InvoiceStatus::Paid
        } else if as_of > due {
            InvoiceStatus::PastDue
        } else {
            InvoiceStatus::Due
        }
    }
}

/// A VAT category of EN 16931 (UNCL 5305), one per invoice (SPEC §4.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VatCategory {
    /// Standard rate.
    S,
    /// Reverse charge: the customer accounts for the VAT.
    AE,
    /// Zero rated.
    Z,
    /// Exempt.
    E,
    /// Outside the scope of VAT.
    O,
}

impl VatCategory {
    pub fn parse(s: &str) -> Option<VatCategory> {
        match s.to_ascii_uppercase().as_str() {
            "S" => Some(VatCategory::S),
            "AE" => Some(VatCategory::AE),
            "Z" => Some(VatCategory::Z),
            "E" => Some(VatCategory::E),
            "O" => Some(VatCategory::O),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VatCategory::S => "S",
            VatCategory::AE => "AE",
            VatCategory::Z => "Z",
            VatCategory::E => "E",
            VatCategory::O => "O",
        }
    }
}

/// The VAT of an issued invoice: its category, rate (percent) and amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vat {
    pub category: VatCategory,
    pub rate: Decimal,
    pub amount: Decimal,
}

impl Vat {
    /// SPEC §4.8: `amount_due` x rate / 100, rounded half away from zero to
    /// the currency's minor unit.
    pub fn on(
        amount_due: Decimal,
        category: VatCategory,
        rate: Decimal,
        currency: Currency,
    ) -> Vat {
        let rate = if category == VatCategory::S {
            rate
        } else {
            Decimal::ZERO
        };
        Vat {
            category,
            rate,
            amount: currency.round(amount_due * rate / Decimal::ONE_HUNDRED),
        }
    }
}

/// The VAT rule of a run (SPEC §4.8), present when `[tax] rate` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaxRule {
    /// The standard rate in percent (category `S`).
    pub rate: Decimal,
    /// The issuer's country: a customer elsewhere with a VAT number is
    /// reverse-charged (`AE`).
    pub issuer_country: String,
}

impl TaxRule {
    /// A profile's category: `vatCategory` if set; else `AE` when its
    /// country differs from the issuer's and it has a VAT number; else `S`.
    pub fn category_of(&self, profile: &Profile) -> VatCategory {
        if let Some(category) = profile.vat_category {
            return category;
        }
        let abroad = profile
            .country
            .as_deref()
            .is_some_and(|c| c != self.issuer_country);
        if abroad && profile.vat_id.is_some() {
            VatCategory::AE
        } else {
            VatCategory::S
        }
    }

    /// The VAT of an invoice of `profile` owing `amount_due`.
    pub fn vat(&self, profile: &Profile, amount_due: Decimal) -> Vat {
        Vat::on(
            amount_due,
            self.category_of(profile),
            self.rate,
            profile.currency,
        )
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
}

impl Invoice {
    pub fn credits(&self) -> Decimal {
        self.amounts.credits()
    }

    /// `amount_due` plus VAT: what the customer pays.
    pub fn total(&self) -> Decimal {
        self.amounts.amount_due + self.vat.as_ref().map_or(Decimal::ZERO, |v| v.amount)
    }
}

/// An issued invoice without its lines: all that payments, statuses and
/// the invoices table need, read without the lines' memory.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
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
}

impl InvoiceHead {
    /// `amount_due` plus VAT: what the customer pays.
    pub fn total(&self) -> Decimal {
        self.amounts.amount_due + self.vat.as_ref().map_or(Decimal::ZERO, |v| v.amount)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(
        country: Option<&str>,
        vat_id: Option<&str>,
        category: Option<VatCategory>,
    ) -> Profile {
        Profile {
            id: "P".into(),
            account_id: "A".into(),
            name: "P".into(),
            currency: Currency::parse("NOK").unwrap(),
            locale: Locale::NbNo,
            created_date: d("2025-01-01"),
            period_start_day: 1,
            email_invoice: false,
            invoice_email: None,
            payment_terms_days: 30,
            address: String::new(),
            country: country.map(str::to_string),
            vat_id: vat_id.map(str::to_string),
            vat_category: category,
            peppol_id: None,
        }
    }

    #[test]
    fn vat_category_by_spec_4_8() {
        let rule = TaxRule {
            rate: Decimal::new(25, 0),
            issuer_country: "NO".into(),
        };
        let cases = [
            // (country, vatId, vatCategory, expected)
            (None, None, None, VatCategory::S),
            (Some("NO"), Some("NO987654325MVA"), None, VatCategory::S),
            (Some("NL"), Some("NL123456789B01"), None, VatCategory::AE),
            (Some("SE"), None, None, VatCategory::S),
            (None, Some("NL123456789B01"), None, VatCategory::S),
            (
                Some("NL"),
                Some("NL123456789B01"),
                Some(VatCategory::S),
                VatCategory::S,
            ),
            (Some("NO"), None, Some(VatCategory::Z), VatCategory::Z),
            (Some("NO"), None, Some(VatCategory::E), VatCategory::E),
            (Some("US"), None, Some(VatCategory::O), VatCategory::O),
            (
                Some("NO"),
                Some("X"),
                Some(VatCategory::AE),
                VatCategory::AE,
            ),
        ];
        for (country, vat_id, category, expected) in cases {
            let profile = customer(country, vat_id, category);
            assert_eq!(
                rule.category_of(&profile),
                expected,
                "{country:?} {vat_id:?} {category:?}"
            );
            let vat = rule.vat(&profile, Decimal::new(10000, 2));
            let rate = if expected == VatCategory::S { 25 } else { 0 };
            assert_eq!(vat.rate, Decimal::new(rate, 0));
            assert_eq!(vat.amount, Decimal::new(rate * 100, 2));
        }
    }

    #[test]
    fn vat_rounds_half_away_from_zero_to_the_minor_unit() {
        let nok = Currency::parse("NOK").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let vat = |amount: &str, rate: &str, currency| {
            Vat::on(
                amount.parse().unwrap(),
                VatCategory::S,
                rate.parse().unwrap(),
                currency,
            )
            .amount
        };
        assert_eq!(
            vat("830.21", "25", nok),
            "207.55".parse::<Decimal>().unwrap()
        ); // 207.5525
        assert_eq!(vat("0.02", "25", nok), "0.01".parse::<Decimal>().unwrap()); // 0.005
        assert_eq!(vat("0.06", "25", nok), "0.02".parse::<Decimal>().unwrap()); // 0.015
        assert_eq!(
            vat("10.10", "12.5", nok),
            "1.26".parse::<Decimal>().unwrap()
        ); // 1.2625
        assert_eq!(vat("102", "25", jpy), Decimal::new(26, 0)); // 25.5
        assert_eq!(vat("101", "25", jpy), Decimal::new(25, 0)); // 25.25
        // Not S: no VAT whatever the configured rate.
        let reverse = Vat::on(
            Decimal::new(100, 0),
            VatCategory::AE,
            Decimal::new(25, 0),
            nok,
        );
        assert_eq!(
            (reverse.rate, reverse.amount),
            (Decimal::ZERO, Decimal::ZERO)
        );
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn periods_on_calendar_and_anchored_days() {
        let cases = [
            // (date, start day, expected start, expected end)
            ("2026-10-15", 1, "2026-10-01", "2026-10-31"),
            ("2026-02-28", 1, "2026-02-01", "2026-02-28"),
            ("2028-02-29", 1, "2028-02-01", "2028-02-29"),
            ("2026-10-14", 15, "2026-09-15", "2026-10-14"),
            ("2026-10-15", 15, "2026-10-15", "2026-11-14"),
            ("2027-01-10", 28, "2026-12-28", "2027-01-27"),
            ("2027-02-27", 28, "2027-01-28", "2027-02-27"),
            ("2027-02-28", 28, "2027-02-28", "2027-03-27"),
            ("2028-02-29", 28, "2028-02-28", "2028-03-27"),
            ("2028-02-27", 28, "2028-01-28", "2028-02-27"),
            ("2026-12-31", 1, "2026-12-01", "2026-12-31"),
        ];
        for (date, day, start, end) in cases {
            let p = Period::containing(d(date), day);
            assert_eq!((p.start, p.end), (d(start), d(end)), "{date} day {day}");
        }
    }

    #[test]
    fn closed_after_settle_days() {
        let p = Period::containing(d("2026-10-05"), 1);
        assert!(!p.is_closed(d("2026-11-02"), 2));
        assert!(p.is_closed(d("2026-11-03"), 2));
        assert!(p.is_closed(d("2026-11-01"), 0));
    }

    #[test]
    fn currency_rounding_and_minor_units() {
        let usd = Currency::parse("usd").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let dec = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(usd.round(dec("1.005")), dec("1.01"));
        assert_eq!(usd.round(dec("-1.005")), dec("-1.01"));
        assert_eq!(usd.round(dec("1.0049999")), dec("1.00"));
        assert_eq!(jpy.round(dec("12.5")), dec("13"));
        assert!(usd.fits_minor_unit(dec("100.000")));
        assert!(!usd.fits_minor_unit(dec("100.001")));
        assert!(Currency::parse("NKO").is_none());
    }
}
