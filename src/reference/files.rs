//! Each reference file row by row: the values a row must hold, the ids it
//! must name, every problem recorded with file, line, column and value.

use std::collections::{BTreeMap, HashSet};

use crate::model::{
    Account, Agreement, CreditGrant, Currency, Locale, Offer, Profile, Recipient, Reference,
    RoleAssignment, RoleKind, Scope, Subscription, VatCategory,
};
use crate::parse::parse_bool;

use super::{Problems, Row, Table, rows};

pub(super) fn read_accounts(t: &Table, p: &mut Problems) -> BTreeMap<String, Account> {
    let mut seen = HashSet::new();
    let mut out = BTreeMap::new();
    for row in rows(t) {
        let id = p.unique(&mut seen, &row, "billingAccountId");
        let agreement = p.required(&row, "agreement").and_then(|v| {
            let parsed = match v.to_ascii_uppercase().as_str() {
                "MCA" => Some(Agreement::Mca),
                "MPA" => Some(Agreement::Mpa),
                "MOSP" => Some(Agreement::Mosp),
                _ => None,
            };
            p.check(&row, "agreement", parsed, "MCA, MPA or MOSP")
        });
        let admin = p.email(&row, "adminEmail");
        if let (Some(id), Some(agreement), Some(admin_email)) = (id, agreement, admin) {
            let name = row.get("name").to_string();
            out.insert(
                id.clone(),
                Account {
                    id,
                    name,
                    agreement,
                    admin_email,
                },
            );
        }
    }
    out
}

pub(super) fn read_profiles(
    t: &Table,
    accounts: &BTreeMap<String, Account>,
    p: &mut Problems,
) -> BTreeMap<String, Profile> {
    let mut seen = HashSet::new();
    let mut out = BTreeMap::new();
    for row in rows(t) {
        let id = p.unique(&mut seen, &row, "billingProfileId");
        let account_id = p.required(&row, "billingAccountId").and_then(|v| {
            let known = accounts.contains_key(v).then(|| v.to_string());
            p.check(
                &row,
                "billingAccountId",
                known,
                "a billingAccountId of accounts.csv",
            )
        });
        let currency = p
            .required(&row, "currency")
            .and_then(|v| p.check(&row, "currency", Currency::parse(v), "an ISO 4217 currency"));
        let locale = p.required(&row, "locale").and_then(|v| {
            p.check(
                &row,
                "locale",
                Locale::parse(v),
                "one of en-US, nb-NO, nl-NL, sv-SE",
            )
        });
        let created = p.date(&row, "createdDate");
        let (start_day, email_invoice, invoice_email, terms) = read_billing_columns(&row, p);
        let tax = read_tax_columns(&row, p);
        if let (Some(id), Some(account_id), Some(currency), Some(locale), Some(created_date)) =
            (id, account_id, currency, locale, created)
            && let (Some(period_start_day), Some(email_invoice), Some(invoice_email), Some(terms)) =
                (start_day, email_invoice, invoice_email, terms)
            && let Some(tax) = tax
        {
            let profile = Profile {
                id: id.clone(),
                account_id,
                name: row.get("name").to_string(),
                currency,
                locale,
                created_date,
                period_start_day,
                email_invoice,
                invoice_email,
                payment_terms_days: terms,
                address: row.get("address").to_string(),
                country: tax.country,
                vat_id: tax.vat_id,
                vat_category: tax.vat_category,
                peppol_id: tax.peppol_id,
            };
            out.insert(id, profile);
        }
    }
    out
}

/// A profile's optional billing columns with their defaults:
/// periodStartDay (1), emailInvoice (false), invoiceEmail (none) and
/// paymentTermsDays (30); `None` for one that is invalid.
#[allow(clippy::type_complexity)]
fn read_billing_columns(
    row: &Row,
    p: &mut Problems,
) -> (
    Option<u32>,
    Option<bool>,
    Option<Option<String>>,
    Option<u32>,
) {
    let start_day = match row.get("periodStartDay") {
        "" => Some(1),
        v => {
            let day = v.parse::<u32>().ok().filter(|d| (1..=28).contains(d));
            p.check(row, "periodStartDay", day, "a day from 1 to 28")
        }
    };
    let email_invoice = match row.get("emailInvoice") {
        "" => Some(false),
        v => p.check(row, "emailInvoice", parse_bool(v), "a boolean"),
    };
    let invoice_email = match row.get("invoiceEmail") {
        "" => Some(None),
        _ => p.email(row, "invoiceEmail").map(Some),
    };
    let terms = match row.get("paymentTermsDays") {
        "" => Some(30),
        v => p.check(
            row,
            "paymentTermsDays",
            v.parse::<u32>().ok(),
            "a whole number of days",
        ),
    };
    (start_day, email_invoice, invoice_email, terms)
}

/// A profile's optional VAT and e-invoice columns (SPEC §2.2, §4.8).
pub(super) struct TaxColumns {
    pub(super) country: Option<String>,
    pub(super) vat_id: Option<String>,
    pub(super) vat_category: Option<VatCategory>,
    pub(super) peppol_id: Option<String>,
}

pub(super) fn read_tax_columns(row: &Row, p: &mut Problems) -> Option<TaxColumns> {
    let optional = |value: &str| (!value.is_empty()).then(|| value.to_string());
    let country = match row.get("country") {
        "" => Some(None),
        v => p
            .check(
                row,
                "country",
                crate::model::country_code(v),
                "an ISO 3166-1 alpha-2 country code",
            )
            .map(Some),
    };
    let vat_category = match row.get("vatCategory") {
        "" => Some(None),
        v => p
            .check(
                row,
                "vatCategory",
                VatCategory::parse(v),
                "one of S, AE, Z, E, O",
            )
            .map(Some),
    };
    let vat_id = optional(row.get("vatId"));
    if vat_category == Some(Some(VatCategory::AE)) && vat_id.is_none() {
        p.0.push(row.error(
            "vatCategory",
            "AE (reverse charge) needs the customer's vatId",
        ));
        return None;
    }
    let peppol_id = match row.get("peppolId") {
        "" => Some(None),
        v => p
            .check(
                row,
                "peppolId",
                crate::model::peppol_id(v).filter(|id| crate::model::peppol_id_passes_checks(id)),
                "a Peppol participant id `scheme:identifier` whose check digits pass the official rules (SPEC §6.1)",
            )
            .map(Some),
    };
    Some(TaxColumns {
        country: country?,
        vat_id,
        vat_category: vat_category?,
        peppol_id: peppol_id?,
    })
}

pub(super) fn read_subscriptions(
    t: &Table,
    profiles: &BTreeMap<String, Profile>,
    p: &mut Problems,
) -> BTreeMap<String, Subscription> {
    let mut seen = HashSet::new();
    let mut out = BTreeMap::new();
    for row in rows(t) {
        let id = p.unique(&mut seen, &row, "subscriptionId");
        let profile = p.required(&row, "billingProfileId").and_then(|v| {
            p.check(
                &row,
                "billingProfileId",
                profiles.get(v),
                "a billingProfileId of profiles.csv",
            )
        });
        let offer = p.required(&row, "offer").and_then(|v| {
            p.check(
                &row,
                "offer",
                parse_offer(v),
                "PayAsYouGo, FreeTrial or MonthlyCredit",
            )
        });
        let start_date = p.date(&row, "startDate");
        let trial_end_date = match (offer, row.get("trialEndDate")) {
            (Some(Offer::FreeTrial), _) => p.date(&row, "trialEndDate").map(Some),
            (_, "") => Some(None),
            _ => p.date(&row, "trialEndDate").map(Some),
        };
        let monthly_credit = match (offer, row.get("monthlyCredit")) {
            (_, "") if offer != Some(Offer::MonthlyCredit) => Some(None),
            _ => p
                .money(&row, "monthlyCredit", profile.map(|pr| pr.currency))
                .map(Some),
        };
        if let (Some(id), Some(profile), Some(offer), Some(start_date)) =
            (id, profile, offer, start_date)
            && let (Some(trial_end_date), Some(monthly_credit)) = (trial_end_date, monthly_credit)
        {
            let subscription = Subscription {
                id: id.clone(),
                profile_id: profile.id.clone(),
                name: row.get("name").to_string(),
                offer,
                start_date,
                trial_end_date,
                monthly_credit,
            };
            out.insert(id, subscription);
        }
    }
    out
}

/// An offer of subscriptions.csv, in any case.
fn parse_offer(text: &str) -> Option<Offer> {
    match text.to_ascii_lowercase().as_str() {
        "payasyougo" => Some(Offer::PayAsYouGo),
        "freetrial" => Some(Offer::FreeTrial),
        "monthlycredit" => Some(Offer::MonthlyCredit),
        _ => None,
    }
}

pub(super) fn read_roles(
    t: &Table,
    reference: &Reference,
    p: &mut Problems,
) -> Vec<RoleAssignment> {
    let mut out = Vec::new();
    for row in rows(t) {
        let email = p.email(&row, "email");
        let role = p.required(&row, "role").and_then(|v| {
            let parsed = match v.to_ascii_lowercase().as_str() {
                "owner" => Some(RoleKind::Owner),
                "contributor" => Some(RoleKind::Contributor),
                "reader" => Some(RoleKind::Reader),
                "invoicemanager" => Some(RoleKind::InvoiceManager),
                _ => None,
            };
            p.check(
                &row,
                "role",
                parsed,
                "Owner, Contributor, Reader or InvoiceManager",
            )
        });
        let scope = p.required(&row, "scope").and_then(|v| {
            let parsed = match v.to_ascii_lowercase().as_str() {
                "billingaccount" => Some(Scope::BillingAccount),
                "billingprofile" => Some(Scope::BillingProfile),
                _ => None,
            };
            p.check(&row, "scope", parsed, "billingAccount or billingProfile")
        });
        let scope_id = p.required(&row, "scopeId").and_then(|v| {
            let known = match scope? {
                Scope::BillingAccount => reference.accounts.contains_key(v),
                Scope::BillingProfile => reference.profiles.contains_key(v),
            };
            p.check(
                &row,
                "scopeId",
                known.then(|| v.to_string()),
                "an id in the named scope",
            )
        });
        if let (Some(email), Some(role), Some(scope), Some(scope_id)) =
            (email, role, scope, scope_id)
        {
            let name = row.get("name").to_string();
            out.push(RoleAssignment {
                email,
                name,
                role,
                scope,
                scope_id,
            });
        }
    }
    out
}

pub(super) fn read_recipients(
    t: &Table,
    reference: &mut Reference,
    p: &mut Problems,
) -> Vec<Recipient> {
    let mut out = Vec::new();
    for row in rows(t) {
        let profile = p.required(&row, "billingProfileId").and_then(|v| {
            let profile = reference.profiles.get(v);
            p.check(
                &row,
                "billingProfileId",
                profile,
                "a billingProfileId of profiles.csv",
            )
        });
        let email = p.email(&row, "email");
        let (Some(profile), Some(email)) = (profile, email) else {
            continue;
        };
        if reference.account_of(profile).agreement != Agreement::Mosp {
            reference.warnings.push(format!(
                "recipients.csv line {}: profile {} is not MOSP; row ignored",
                row.line, profile.id
            ));
            continue;
        }
        out.push(Recipient {
            profile_id: profile.id.clone(),
            email,
        });
    }
    out
}

pub(super) fn read_credits(
    t: &Table,
    profiles: &BTreeMap<String, Profile>,
    p: &mut Problems,
) -> Vec<CreditGrant> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for row in rows(t) {
        let id = p.unique(&mut seen, &row, "creditId");
        let profile = p.required(&row, "billingProfileId").and_then(|v| {
            p.check(
                &row,
                "billingProfileId",
                profiles.get(v),
                "a billingProfileId of profiles.csv",
            )
        });
        let amount = p.money(&row, "amount", profile.map(|pr| pr.currency));
        let effective = p.date(&row, "effectiveDate");
        let expiry = p.date(&row, "expiryDate");
        if let (Some(id), Some(profile), Some(amount), Some(effective_date), Some(expiry_date)) =
            (id, profile, amount, effective, expiry)
        {
            out.push(CreditGrant {
                id,
                profile_id: profile.id.clone(),
                amount,
                effective_date,
                expiry_date,
            });
        }
    }
    out
}
