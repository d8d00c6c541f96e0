//! VAT (SPEC §4.8): a category and rate per issued invoice, from its profile.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Currency, Profile, peppol_id_of_vat_id};

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
    /// The seller's Peppol address (SPEC §6.1): `issuer.peppol_id`, else
    /// the id its VAT number stands for; without one, no e-invoices.
    pub seller_peppol_id: Option<String>,
}

/// Whether an issued invoice has an e-invoice and between which Peppol
/// addresses (SPEC §6.1), fixed when it is issued.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EinvoiceAddresses {
    /// Not recorded (issued without `[tax]`, or by a faktura from before
    /// addresses were recorded: derived when rendered).
    #[default]
    Unrecorded,
    /// No e-invoice: the issuer has no Peppol address (no e-invoice at all
    /// is written; the run summary says so once).
    NoSeller,
    /// No e-invoice: the buyer has no Peppol address, and why (counted in
    /// the summary's `einvoices_skipped`).
    Skipped(String),
    /// Seller's and buyer's Peppol participant ids.
    To { seller: String, buyer: String },
}

impl EinvoiceAddresses {
    /// SPEC §6.1: the buyer's `peppolId`, else the id its `vatId` stands
    /// for; the seller's `seller_peppol_id`. Either missing: no e-invoice.
    pub fn between(seller: Option<&str>, profile: &Profile) -> EinvoiceAddresses {
        let Some(seller) = seller else {
            return EinvoiceAddresses::NoSeller;
        };
        let buyer = profile
            .peppol_id
            .clone()
            .or_else(|| profile.vat_id.as_deref().and_then(peppol_id_of_vat_id));
        match buyer {
            Some(buyer) => EinvoiceAddresses::To {
                seller: seller.to_string(),
                buyer,
            },
            None => EinvoiceAddresses::Skipped(format!(
                "profile {} has no Peppol address (no peppolId, and no NO, SE or DK vatId that stands for one)",
                profile.id
            )),
        }
    }
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

    /// Whether an invoice of `profile` gets an e-invoice (SPEC §6.1).
    pub fn einvoice_addresses(&self, profile: &Profile) -> EinvoiceAddresses {
        EinvoiceAddresses::between(self.seller_peppol_id.as_deref(), profile)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Locale;

    fn customer(
        country: Option<&str>,
        vat_id: Option<&str>,
        category: Option<VatCategory>,
    ) -> Profile {
        Profile {
            currency: Currency::parse("NOK").unwrap(),
            locale: Locale::NbNo,
            country: country.map(str::to_string),
            vat_id: vat_id.map(str::to_string),
            vat_category: category,
            ..Profile::for_tests("P", "A")
        }
    }

    #[test]
    fn vat_category_by_spec_4_8() {
        let rule = TaxRule {
            rate: Decimal::new(25, 0),
            issuer_country: "NO".into(),
            seller_peppol_id: None,
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
}
