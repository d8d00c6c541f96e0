//! Reference data (SPEC §2.2): accounts, profiles, subscriptions, roles,
//! recipients and credits, read and validated as a whole before any work
//! starts. Every problem found is reported with file, line, column and value;
//! one problem anywhere means no stage runs.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::model::{
    Account, Agreement, CreditGrant, Currency, Locale, Offer, Profile, Recipient, Reference,
    RoleAssignment, RoleKind, Scope, Subscription, VatCategory,
};
use crate::parse::{Header, parse_bool, parse_email, parse_iso_date, parse_money};

/// One problem in a reference file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferenceError {
    pub file: String,
    pub line: u64,
    pub column: String,
    pub value: String,
    pub problem: String,
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} line {}, column `{}`, value {:?}: {}",
            self.file, self.line, self.column, self.value, self.problem
        )
    }
}

/// All problems of a data directory's reference files.
#[derive(Debug)]
pub struct ReferenceErrors(pub Vec<ReferenceError>);

impl fmt::Display for ReferenceErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid reference data ({} problems):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ReferenceErrors {}

/// A reference CSV read whole: its header and trimmed cells per line.
struct Table {
    file: String,
    header: Header,
    rows: Vec<(u64, Vec<String>)>,
}

/// A row of a [`Table`], reading cells by column name and collecting errors.
struct Row<'a> {
    table: &'a Table,
    line: u64,
    cells: &'a [String],
}

impl<'a> Row<'a> {
    fn get(&self, column: &str) -> &'a str {
        self.table
            .header
            .position(column)
            .and_then(|i| self.cells.get(i))
            .map(String::as_str)
            .unwrap_or("")
    }

    fn error(&self, column: &str, problem: impl Into<String>) -> ReferenceError {
        ReferenceError {
            file: self.table.file.clone(),
            line: self.line,
            column: column.to_string(),
            value: self.get(column).to_string(),
            problem: problem.into(),
        }
    }
}

/// Collects problems while a file is validated.
#[derive(Default)]
struct Problems(Vec<ReferenceError>);

impl Problems {
    fn required<'a>(&mut self, row: &Row<'a>, column: &str) -> Option<&'a str> {
        let value = row.get(column);
        if value.is_empty() {
            self.0.push(row.error(column, "missing value"));
            return None;
        }
        Some(value)
    }

    fn check<T>(&mut self, row: &Row, column: &str, parsed: Option<T>, what: &str) -> Option<T> {
        if parsed.is_none() {
            self.0.push(row.error(column, format!("not {what}")));
        }
        parsed
    }

    fn date(&mut self, row: &Row, column: &str) -> Option<NaiveDate> {
        let value = self.required(row, column)?;
        self.check(row, column, parse_iso_date(value), "a date (YYYY-MM-DD)")
    }

    fn email(&mut self, row: &Row, column: &str) -> Option<String> {
        let value = self.required(row, column)?;
        self.check(row, column, parse_email(value), "a valid e-mail address")
    }

    fn money(&mut self, row: &Row, column: &str, currency: Option<Currency>) -> Option<Decimal> {
        let value = self.required(row, column)?;
        let amount = self.check(
            row,
            column,
            parse_money(value),
            "a decimal amount below 10^18",
        )?;
        if amount.is_sign_negative() && !amount.is_zero() {
            self.0.push(row.error(column, "negative amount"));
            return None;
        }
        if let Some(currency) = currency
            && !currency.fits_minor_unit(amount)
        {
            self.0.push(row.error(
                column,
                format!(
                    "more digits than {currency}'s {} decimals",
                    currency.minor_unit
                ),
            ));
            return None;
        }
        Some(amount)
    }

    fn unique(&mut self, seen: &mut HashSet<String>, row: &Row, column: &str) -> Option<String> {
        let id = self.required(row, column)?.to_string();
        if !seen.insert(id.clone()) {
            self.0.push(row.error(column, "duplicate id"));
        }
        Some(id)
    }
}

fn read_table(dir: &Path, name: &str, required: &[&str]) -> Result<Option<Table>, ReferenceError> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let file_error = |line: u64, problem: String| ReferenceError {
        file: name.to_string(),
        line,
        column: String::new(),
        value: String::new(),
        problem,
    };
    let bytes = std::fs::read(&path).map_err(|e| file_error(0, format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| file_error(0, "not valid UTF-8".into()))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(record)) => Header::new(record.iter()),
        Some(Err(e)) => return Err(file_error(1, e.to_string())),
        None => return Err(file_error(1, "empty file: no header".into())),
    };
    let missing = header.missing(required);
    if !missing.is_empty() {
        return Err(file_error(
            1,
            format!("missing columns: {}", missing.join(", ")),
        ));
    }
    let mut rows = Vec::new();
    for record in records {
        let record = record.map_err(|e| file_error(0, e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        rows.push((line, record.iter().map(|c| c.trim().to_string()).collect()));
    }
    Ok(Some(Table {
        file: name.to_string(),
        header,
        rows,
    }))
}

fn rows(table: &Table) -> impl Iterator<Item = Row<'_>> {
    table.rows.iter().map(move |(line, cells)| Row {
        table,
        line: *line,
        cells,
    })
}

/// Reads and validates every reference file of `data_dir`.
pub fn load_reference(data_dir: &Path) -> Result<Reference, ReferenceErrors> {
    let mut problems = Problems::default();
    let mut open = |name: &str, required: &[&str], optional: bool| -> Option<Table> {
        match read_table(data_dir, name, required) {
            Ok(Some(t)) => Some(t),
            Ok(None) if optional => None,
            Ok(None) => {
                problems.0.push(ReferenceError {
                    file: name.into(),
                    line: 0,
                    column: String::new(),
                    value: String::new(),
                    problem: "file is missing".into(),
                });
                None
            }
            Err(e) => {
                problems.0.push(e);
                None
            }
        }
    };
    let accounts = open(
        "accounts.csv",
        &["billingAccountId", "name", "agreement", "adminEmail"],
        false,
    );
    let profiles = open(
        "profiles.csv",
        &[
            "billingProfileId",
            "billingAccountId",
            "name",
            "currency",
            "locale",
            "createdDate",
        ],
        false,
    );
    let subscriptions = open(
        "subscriptions.csv",
        &[
            "subscriptionId",
            "billingProfileId",
            "name",
            "offer",
            "startDate",
        ],
        false,
    );
    let roles = open("roles.csv", &["email", "role", "scope", "scopeId"], false);
    let recipients = open("recipients.csv", &["billingProfileId", "email"], true);
    let credits = open(
        "credits.csv",
        &[
            "creditId",
            "billingProfileId",
            "amount",
            "effectiveDate",
            "expiryDate",
        ],
        true,
    );

    let mut reference = Reference::default();
    if let Some(t) = &accounts {
        reference.accounts = read_accounts(t, &mut problems);
    }
    if let Some(t) = &profiles {
        reference.profiles = read_profiles(t, &reference.accounts, &mut problems);
    }
    if let Some(t) = &subscriptions {
        reference.subscriptions = read_subscriptions(t, &reference.profiles, &mut problems);
    }
    if let Some(t) = &roles {
        reference.roles = read_roles(t, &reference, &mut problems);
    }
    if let Some(t) = &recipients {
        reference.recipients = read_recipients(t, &mut reference, &mut problems);
    }
    if let Some(t) = &credits {
        reference.credits = read_credits(t, &reference.profiles, &mut problems);
    }
    if problems.0.is_empty() {
        Ok(reference)
    } else {
        Err(ReferenceErrors(problems.0))
    }
}

fn read_accounts(t: &Table, p: &mut Problems) -> BTreeMap<String, Account> {
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

fn read_profiles(
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
        let start_day = match row.get("periodStartDay") {
            "" => Some(1),
            v => {
                let day = v.parse::<u32>().ok().filter(|d| (1..=28).contains(d));
                p.check(&row, "periodStartDay", day, "a day from 1 to 28")
            }
        };
        let email_invoice = match row.get("emailInvoice") {
            "" => Some(false),
            v => p.check(&row, "emailInvoice", parse_bool(v), "a boolean"),
        };
        let invoice_email = match row.get("invoiceEmail") {
            "" => Some(None),
            _ => p.email(&row, "invoiceEmail").map(Some),
        };
        let terms = match row.get("paymentTermsDays") {
            "" => Some(30),
            v => p.check(
                &row,
                "paymentTermsDays",
                v.parse::<u32>().ok(),
                "a whole number of days",
            ),
        };
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

/// A profile's optional VAT and e-invoice columns (SPEC §2.2, §4.8).
struct TaxColumns {
    country: Option<String>,
    vat_id: Option<String>,
    vat_category: Option<VatCategory>,
    peppol_id: Option<String>,
}

fn read_tax_columns(row: &Row, p: &mut Problems) -> Option<TaxColumns> {
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
                crate::model::peppol_id(v),
                "a Peppol participant id `scheme:identifier`",
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

fn read_subscriptions(
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
            let parsed = match v.to_ascii_lowercase().as_str() {
                "payasyougo" => Some(Offer::PayAsYouGo),
                "freetrial" => Some(Offer::FreeTrial),
                "monthlycredit" => Some(Offer::MonthlyCredit),
                _ => None,
            };
            p.check(
                &row,
                "offer",
                parsed,
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

fn read_roles(t: &Table, reference: &Reference, p: &mut Problems) -> Vec<RoleAssignment> {
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

fn read_recipients(t: &Table, reference: &mut Reference, p: &mut Problems) -> Vec<Recipient> {
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

fn read_credits(
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
