//! Reference data: accounts, profiles, subscriptions, roles, recipients
//! and credit grants, validated as a whole before any stage runs.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Currency, Period, VatCategory};

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
    /// A USD, en-US, calendar-month profile `id` of `account`, created
    /// 2025-01-01, opted out, with no VAT data: what unit tests vary.
    #[cfg(test)]
    pub(crate) fn for_tests(id: &str, account: &str) -> Profile {
        Profile {
            id: id.into(),
            account_id: account.into(),
            name: id.into(),
            currency: Currency::parse("USD").expect("a currency"),
            locale: Locale::EnUs,
            created_date: NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date"),
            period_start_day: 1,
            email_invoice: false,
            invoice_email: None,
            payment_terms_days: 30,
            address: String::new(),
            country: None,
            vat_id: None,
            vat_category: None,
            peppol_id: None,
        }
    }

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
