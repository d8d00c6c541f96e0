//! Reference data (SPEC §2.2): accounts, profiles, subscriptions, roles,
//! recipients and credits, read and validated as a whole before any work
//! starts. Every problem found is reported with file, line, column and value;
//! one problem anywhere means no stage runs.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::model::{Currency, Reference};
use crate::parse::{Header, parse_email, parse_iso_date, parse_money};

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
    let file_error = |line: u64, problem: String| ReferenceError {
        file: name.to_string(),
        line,
        column: String::new(),
        value: String::new(),
        problem,
    };
    // Only "not found" is an absent file: one that cannot be looked at is
    // a problem, never an optional file left out.
    match path.try_exists() {
        Ok(true) => {}
        Ok(false) => return Ok(None),
        Err(e) => {
            return Err(file_error(
                0,
                format!("cannot look at `{}`: {e}", path.display()),
            ));
        }
    }
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
    let mut tables = FILES.map(|(name, required, optional)| {
        open_table(data_dir, name, required, optional, &mut problems)
    });
    let [
        accounts,
        profiles,
        subscriptions,
        roles,
        recipients,
        credits,
    ] = &mut tables;
    let mut reference = Reference::default();
    if let Some(t) = accounts {
        reference.accounts = read_accounts(t, &mut problems);
    }
    if let Some(t) = profiles {
        reference.profiles = read_profiles(t, &reference.accounts, &mut problems);
    }
    if let Some(t) = subscriptions {
        reference.subscriptions = read_subscriptions(t, &reference.profiles, &mut problems);
    }
    if let Some(t) = roles {
        reference.roles = read_roles(t, &reference, &mut problems);
    }
    if let Some(t) = recipients {
        reference.recipients = read_recipients(t, &mut reference, &mut problems);
    }
    if let Some(t) = credits {
        reference.credits = read_credits(t, &reference.profiles, &mut problems);
    }
    if problems.0.is_empty() {
        Ok(reference)
    } else {
        Err(ReferenceErrors(problems.0))
    }
}

/// The reference files, in the order they are read: name, required
/// columns, whether the file may be absent (SPEC §2, §2.2).
const FILES: [(&str, &[&str], bool); 6] = [
    (
        "accounts.csv",
        &["billingAccountId", "name", "agreement", "adminEmail"],
        false,
    ),
    (
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
    ),
    (
        "subscriptions.csv",
        &[
            "subscriptionId",
            "billingProfileId",
            "name",
            "offer",
            "startDate",
        ],
        false,
    ),
    ("roles.csv", &["email", "role", "scope", "scopeId"], false),
    ("recipients.csv", &["billingProfileId", "email"], true),
    (
        "credits.csv",
        &[
            "creditId",
            "billingProfileId",
            "amount",
            "effectiveDate",
            "expiryDate",
        ],
        true,
    ),
];

/// Reads one reference file; a problem (missing when required, a column
/// lacking, unreadable) is added to `problems`.
fn open_table(
    data_dir: &Path,
    name: &str,
    required: &[&str],
    optional: bool,
    problems: &mut Problems,
) -> Option<Table> {
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
}

mod files;

use files::*;
