//! The ledger (`OUT/ledger.sqlite`): the state that makes re-runs safe.
//! Ingested files, per-day reconciliation, decisions (from which carries and
//! credit balances are derived), what each decided period has billed, issued
//! invoices and their gapless numbers, the e-mail outbox, and runs.
//!
//! Every change is one `BEGIN IMMEDIATE` transaction: a run killed before a
//! commit leaves the ledger as it was, so no number is skipped or reused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use rust_decimal::Decimal;

use crate::model::{Decision, DecisionCode, Invoice, InvoiceHead, Kind, LineKey, LineSums};

pub type Result<T> = std::result::Result<T, LedgerError>;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger `{path}`: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("ledger `{path}`: No space left on device (SQLite: {source})")]
    DiskFull {
        path: String,
        source: rusqlite::Error,
    },
    #[error("ledger holds data faktura cannot read ({what}): {detail}")]
    Corrupt { what: &'static str, detail: String },
}

/// A SQLite error on the ledger at `path`; a full disk is said in the
/// operating system's words.
fn sqlite_error(path: String, source: rusqlite::Error) -> LedgerError {
    if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        LedgerError::DiskFull { path, source }
    } else {
        LedgerError::Sqlite { path, source }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ingested_files (
    path TEXT PRIMARY KEY, day TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS days (
    day TEXT PRIMARY KEY, present INTEGER NOT NULL, files INTEGER NOT NULL,
    files_rejected INTEGER NOT NULL, rows_read INTEGER NOT NULL, rows_accepted INTEGER NOT NULL,
    rows_rejected INTEGER NOT NULL, accepted_cost TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS profile_state (
    profile_id TEXT PRIMARY KEY, currency TEXT NOT NULL, period_start_day INTEGER NOT NULL,
    created_date TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (
    profile_id TEXT NOT NULL, kind TEXT NOT NULL, period_start TEXT NOT NULL,
    code TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (profile_id, kind, period_start));
CREATE TABLE IF NOT EXISTS billed (
    profile_id TEXT NOT NULL, kind TEXT NOT NULL, period_start TEXT NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (profile_id, kind, period_start));
CREATE TABLE IF NOT EXISTS lines (
    profile_id TEXT NOT NULL, kind TEXT NOT NULL, period_start TEXT NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (profile_id, kind, period_start));
CREATE TABLE IF NOT EXISTS invoices (
    seq INTEGER PRIMARY KEY, number TEXT NOT NULL UNIQUE, period_start TEXT NOT NULL,
    data TEXT NOT NULL, amount_paid TEXT NOT NULL, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    invoice_number TEXT NOT NULL, recipient TEXT NOT NULL, message_id TEXT NOT NULL,
    status TEXT NOT NULL, attempts INTEGER NOT NULL, last_reply TEXT,
    PRIMARY KEY (invoice_number, recipient));
CREATE TABLE IF NOT EXISTS dirty (folder TEXT NOT NULL, month TEXT NOT NULL,
    PRIMARY KEY (folder, month));
CREATE TABLE IF NOT EXISTS fresh_days (day TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS unchecked (
    profile_id TEXT NOT NULL, kind TEXT NOT NULL, period_start TEXT NOT NULL,
    PRIMARY KEY (profile_id, kind, period_start));
CREATE TABLE IF NOT EXISTS file_stamps (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, modified_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS preferences (profile_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, as_of TEXT NOT NULL, exit_code INTEGER, summary TEXT);
";

/// An open ledger.
pub struct Ledger {
    conn: Connection,
    path: String,
}

/// A file of a usage day as last ingested.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct FileFingerprint {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// The file's modification time when it was hashed (nanoseconds since
    /// the epoch): a file with the same size and time is not hashed again.
    #[serde(default)]
    pub modified_ns: Option<i64>,
}

impl FileFingerprint {
    /// Same path and contents (the modification time aside).
    pub fn same_file(&self, other: &FileFingerprint) -> bool {
        (&self.path, self.size, &self.sha256) == (&other.path, other.size, &other.sha256)
    }
}

const FINGERPRINT_COLUMNS: &str = "SELECT f.path, f.size, f.sha256, s.modified_ns
     FROM ingested_files f LEFT JOIN file_stamps s
     ON s.path = f.path AND s.size = f.size AND s.sha256 = f.sha256";

/// Reconciliation of one usage day (SPEC: read = accepted + rejected).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DayStats {
    pub day: NaiveDate,
    /// At least one file of the day was read (not rejected whole).
    pub present: bool,
    pub files: u64,
    pub files_rejected: u64,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    pub accepted_cost: crate::parse::UsageSum,
}

pub use crate::model::{Billed, DecideCommit, DecisionKey, ProfileState};

/// A delivery of the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub invoice_number: String,
    pub recipient: String,
    pub message_id: String,
    pub status: String,
    pub attempts: u32,
    pub last_reply: Option<String>,
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("ledger records serialize")
}

fn from_json<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| LedgerError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

fn date(what: &'static str, text: &str) -> Result<NaiveDate> {
    text.parse()
        .map_err(|e: chrono::ParseError| LedgerError::Corrupt {
            what,
            detail: e.to_string(),
        })
}

fn parse_kind(what: &'static str, text: &str) -> Result<Kind> {
    Kind::parse(text).ok_or(LedgerError::Corrupt {
        what,
        detail: text.to_string(),
    })
}

impl Ledger {
    pub fn open(path: &Path) -> Result<Ledger> {
        let display = path.display().to_string();
        let wrap = |source| sqlite_error(display.clone(), source);
        let conn = Connection::open(path).map_err(wrap)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(wrap)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(wrap)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(wrap)?;
        conn.execute_batch(SCHEMA).map_err(wrap)?;
        Ok(Ledger {
            conn,
            path: display,
        })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
        |source| sqlite_error(self.path.clone(), source)
    }

    /// Runs a query whose `N` columns are all text and hands each row to
    /// `each`, one at a time (rows are not gathered first).
    fn for_text_rows<const N: usize>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        mut each: impl FnMut([String; N]) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
        let mut rows = stmt.query(params).map_err(self.err())?;
        while let Some(row) = rows.next().map_err(self.err())? {
            let mut cells: [String; N] = std::array::from_fn(|_| String::new());
            for (i, cell) in cells.iter_mut().enumerate() {
                *cell = row.get(i).map_err(self.err())?;
            }
            each(cells)?;
        }
        Ok(())
    }

    fn write(&mut self) -> Result<Transaction<'_>> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(move |source| sqlite_error(path, source))
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.err())
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(drop)
            .map_err(self.err())
    }

    // ---- ingest ----

    pub fn ingested_files(&self, day: NaiveDate) -> Result<Vec<FileFingerprint>> {
        self.fingerprints(
            &format!("{FINGERPRINT_COLUMNS} WHERE f.day = ?1 ORDER BY f.path"),
            [day.to_string()],
        )
    }

    /// Every file ingested so far.
    pub fn all_ingested_files(&self) -> Result<Vec<FileFingerprint>> {
        self.fingerprints(FINGERPRINT_COLUMNS, [])
    }

    fn fingerprints(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<FileFingerprint>> {
        let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
        let rows = stmt
            .query_map(params, |r| {
                Ok(FileFingerprint {
                    path: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    sha256: r.get(2)?,
                    modified_ns: r.get(3)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.err())
    }

    /// Records a day's files and reconciliation, replacing what was there.
    pub fn record_day(&mut self, stats: &DayStats, files: &[FileFingerprint]) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| sqlite_error(path.clone(), source);
        let tx = self.write()?;
        let day = stats.day.to_string();
        tx.execute("DELETE FROM ingested_files WHERE day = ?1", [&day])
            .map_err(wrap)?;
        tx.execute("INSERT OR IGNORE INTO fresh_days (day) VALUES (?1)", [&day])
            .map_err(wrap)?;
        for f in files {
            tx.execute(
                "INSERT OR REPLACE INTO ingested_files (path, day, size, sha256) VALUES (?1, ?2, ?3, ?4)",
                params![f.path, day, f.size as i64, f.sha256],
            )
            .map_err(wrap)?;
            if let Some(modified_ns) = f.modified_ns {
                tx.execute(
                    "INSERT OR REPLACE INTO file_stamps (path, size, modified_ns, sha256)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![f.path, f.size as i64, modified_ns, f.sha256],
                )
                .map_err(wrap)?;
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO days (day, present, files, files_rejected, rows_read,
                 rows_accepted, rows_rejected, accepted_cost)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                day,
                stats.present,
                stats.files as i64,
                stats.files_rejected as i64,
                stats.rows_read as i64,
                stats.rows_accepted as i64,
                stats.rows_rejected as i64,
                stats.accepted_cost.to_string()
            ],
        )
        .map_err(wrap)?;
        tx.commit().map_err(wrap)
    }

    pub fn days(&self) -> Result<Vec<DayStats>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT day, present, files, files_rejected, rows_read, rows_accepted,
                        rows_rejected, accepted_cost FROM days ORDER BY day",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, bool>(1)?,
                    [
                        r.get::<_, i64>(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ],
                    r.get::<_, String>(7)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (day, present, n, cost) = row.map_err(self.err())?;
            out.push(DayStats {
                day: date("days.day", &day)?,
                present,
                files: n[0] as u64,
                files_rejected: n[1] as u64,
                rows_read: n[2] as u64,
                rows_accepted: n[3] as u64,
                rows_rejected: n[4] as u64,
                accepted_cost: cost.parse().map_err(|detail| LedgerError::Corrupt {
                    what: "days.accepted_cost",
                    detail,
                })?,
            });
        }
        Ok(out)
    }

    // ---- decide ----

    /// Profiles that have issued at least one invoice, with one of its numbers.
    pub fn invoiced_profiles(&self) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        self.for_text_rows(
            "SELECT json_extract(data, '$.profile_id'), MIN(number) FROM invoices
             GROUP BY json_extract(data, '$.profile_id')",
            [],
            |[profile, number]| {
                out.insert(profile, number);
                Ok(())
            },
        )?;
        Ok(out)
    }

    pub fn profile_states(&self) -> Result<BTreeMap<String, ProfileState>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT profile_id, currency, period_start_day, created_date FROM profile_state",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (id, currency, period_start_day, created) = row.map_err(self.err())?;
            let created_date = date("profile_state.created_date", &created)?;
            out.insert(
                id,
                ProfileState {
                    currency,
                    period_start_day,
                    created_date,
                },
            );
        }
        Ok(out)
    }

    pub fn decisions(&self) -> Result<BTreeMap<DecisionKey, Decision>> {
        self.decisions_of("SELECT data FROM decisions", [])
    }

    /// The decisions of one code.
    pub fn decisions_coded(&self, code: DecisionCode) -> Result<BTreeMap<DecisionKey, Decision>> {
        self.decisions_of(
            "SELECT data FROM decisions WHERE code = ?1",
            [code.as_str()],
        )
    }

    fn decisions_of(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<BTreeMap<DecisionKey, Decision>> {
        let mut out = BTreeMap::new();
        self.for_text_rows(sql, params, |[data]| {
            let decision: Decision = from_json("decisions.data", &data)?;
            let key = (
                decision.profile_id.clone(),
                decision.kind,
                decision.period.start,
            );
            out.insert(key, decision);
            Ok(())
        })?;
        Ok(out)
    }

    /// Billed sums of the decided periods starting on or after `since`
    /// (periods starting earlier cannot contain a later fresh day).
    pub fn billed_since(&self, since: NaiveDate) -> Result<BTreeMap<DecisionKey, Billed>> {
        let mut out = BTreeMap::new();
        self.for_text_rows(
            "SELECT profile_id, kind, period_start, data FROM billed WHERE period_start >= ?1",
            [since.to_string()],
            |[profile, kind, start, data]| {
                let entries: Vec<(LineKey, LineSums)> = from_json("billed.data", &data)?;
                let kind = parse_kind("billed.kind", &kind)?;
                out.insert(
                    (profile, kind, date("billed.period_start", &start)?),
                    entries.into_iter().collect(),
                );
                Ok(())
            },
        )?;
        Ok(out)
    }

    pub fn lines_of(&self, key: &DecisionKey) -> Result<Vec<crate::model::Line>> {
        let data: Option<String> = self
            .conn
            .query_row(
                "SELECT data FROM lines WHERE profile_id = ?1 AND kind = ?2 AND period_start = ?3",
                params![key.0, key.1.as_str(), key.2.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        data.map_or(Ok(Vec::new()), |d| from_json("lines.data", &d))
    }

    /// Lines of every decided period whose start falls in the month `YYYY-MM`.
    pub fn lines_in_month(
        &self,
        month: &str,
    ) -> Result<Vec<(DecisionKey, Vec<crate::model::Line>)>> {
        let mut out = Vec::new();
        self.for_text_rows(
            "SELECT profile_id, kind, period_start, data FROM lines
             WHERE substr(period_start, 1, 7) = ?1 ORDER BY profile_id, kind, period_start",
            [month],
            |[profile, kind, start, data]| {
                let kind = parse_kind("lines.kind", &kind)?;
                out.push((
                    (profile, kind, date("lines.period_start", &start)?),
                    from_json("lines.data", &data)?,
                ));
                Ok(())
            },
        )?;
        Ok(out)
    }

    pub fn next_invoice_seq(&self) -> Result<u64> {
        let max: Option<i64> = self
            .conn
            .query_row("SELECT MAX(seq) FROM invoices", [], |r| r.get(0))
            .map_err(self.err())?;
        Ok(max.map_or(1, |m| m as u64 + 1))
    }

    /// Commits a decide step: decisions, lines, billed sums, invoices with
    /// their numbers and outbox rows, and the outputs they make dirty.
    pub fn commit_decisions(&mut self, commit: &DecideCommit) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| sqlite_error(path.clone(), source);
        let tx = self.write()?;
        for d in &commit.decisions {
            tx.execute(
                "INSERT OR REPLACE INTO decisions (profile_id, kind, period_start, code, data)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    d.profile_id,
                    d.kind.as_str(),
                    d.period.start.to_string(),
                    d.code.as_str(),
                    json(d)
                ],
            )
            .map_err(wrap)?;
            mark_dirty(&tx, "decisions", &d.period.month_key()).map_err(wrap)?;
        }
        for ((profile, kind, start), lines) in &commit.lines {
            tx.execute(
                "INSERT OR REPLACE INTO lines (profile_id, kind, period_start, data) VALUES (?1, ?2, ?3, ?4)",
                params![profile, kind.as_str(), start.to_string(), json(lines)],
            )
            .map_err(wrap)?;
            mark_dirty(&tx, "lines", &start.format("%Y-%m").to_string()).map_err(wrap)?;
        }
        for ((profile, kind, start), billed) in &commit.billed {
            let entries: Vec<_> = billed.iter().collect();
            tx.execute(
                "INSERT OR REPLACE INTO billed (profile_id, kind, period_start, data) VALUES (?1, ?2, ?3, ?4)",
                params![profile, kind.as_str(), start.to_string(), json(&entries)],
            )
            .map_err(wrap)?;
        }
        for (seq, invoice) in &commit.invoices {
            tx.execute(
                "INSERT INTO invoices (seq, number, period_start, data, amount_paid, status)
                 VALUES (?1, ?2, ?3, ?4, '0', 'due')",
                params![
                    *seq as i64,
                    invoice.number,
                    invoice.period.start.to_string(),
                    json(invoice)
                ],
            )
            .map_err(wrap)?;
            mark_dirty(&tx, "invoices", &invoice.period.month_key()).map_err(wrap)?;
            for recipient in &invoice.recipients {
                tx.execute(
                    "INSERT OR IGNORE INTO outbox (invoice_number, recipient, message_id, status, attempts)
                     VALUES (?1, ?2, ?3, 'pending', 0)",
                    params![invoice.number, recipient, crate::model::message_id(&invoice.number, recipient)],
                )
                .map_err(wrap)?;
            }
        }
        for (id, state) in &commit.profile_states {
            tx.execute(
                "INSERT OR IGNORE INTO profile_state (profile_id, currency, period_start_day, created_date)
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, state.currency, state.period_start_day, state.created_date.to_string()],
            )
            .map_err(wrap)?;
        }
        for day in &commit.seen_fresh_days {
            tx.execute("DELETE FROM fresh_days WHERE day = ?1", [day.to_string()])
                .map_err(wrap)?;
        }
        tx.execute("DELETE FROM unchecked", []).map_err(wrap)?;
        for (profile, kind, start) in &commit.unchecked {
            tx.execute(
                "INSERT INTO unchecked (profile_id, kind, period_start) VALUES (?1, ?2, ?3)",
                params![profile, kind.as_str(), start.to_string()],
            )
            .map_err(wrap)?;
        }
        tx.commit().map_err(wrap)
    }

    /// Decided periods still to be compared with their billed sums
    /// ([`DecideCommit::unchecked`]).
    pub fn unchecked(&self) -> Result<BTreeSet<DecisionKey>> {
        let mut out = BTreeSet::new();
        self.for_text_rows(
            "SELECT profile_id, kind, period_start FROM unchecked",
            [],
            |[profile, kind, start]| {
                let kind = parse_kind("unchecked.kind", &kind)?;
                out.insert((profile, kind, date("unchecked.period_start", &start)?));
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Days ingested (or re-ingested) since a decide step last looked at
    /// them: only decided periods containing one can have late usage.
    pub fn fresh_days(&self) -> Result<BTreeSet<NaiveDate>> {
        let mut out = BTreeSet::new();
        self.for_text_rows("SELECT day FROM fresh_days", [], |[day]| {
            out.insert(date("fresh_days.day", &day)?);
            Ok(())
        })?;
        Ok(out)
    }

    // ---- invoices ----

    /// Every issued invoice with what has been paid and its stored status.
    pub fn invoices(&self) -> Result<Vec<(Invoice, Decimal, String)>> {
        self.invoice_rows()
    }

    /// Like [`Ledger::invoices`], without the invoices' lines.
    pub fn invoice_heads(&self) -> Result<Vec<(InvoiceHead, Decimal, String)>> {
        self.invoice_rows()
    }

    fn invoice_rows<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<(T, Decimal, String)>> {
        let mut out = Vec::new();
        self.for_text_rows(
            "SELECT data, amount_paid, status FROM invoices ORDER BY seq",
            [],
            |[data, paid, status]| {
                let paid = paid
                    .parse()
                    .map_err(|e: rust_decimal::Error| LedgerError::Corrupt {
                        what: "invoices.amount_paid",
                        detail: e.to_string(),
                    })?;
                out.push((from_json("invoices.data", &data)?, paid, status));
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Stores new payment totals and statuses; marks changed months dirty.
    pub fn update_payments(
        &mut self,
        updates: &[(String, String, Decimal, &'static str)],
    ) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| sqlite_error(path.clone(), source);
        let tx = self.write()?;
        for (number, month, paid, status) in updates {
            tx.execute(
                "UPDATE invoices SET amount_paid = ?2, status = ?3 WHERE number = ?1",
                params![number, paid.to_string(), status],
            )
            .map_err(wrap)?;
            mark_dirty(&tx, "invoices", month).map_err(wrap)?;
        }
        tx.commit().map_err(wrap)
    }

    // ---- outputs ----

    pub fn dirty(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT folder, month FROM dirty ORDER BY folder, month")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.err())
    }

    pub fn clear_dirty(&mut self, folder: &str, month: &str) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM dirty WHERE folder = ?1 AND month = ?2",
                [folder, month],
            )
            .map(drop)
            .map_err(self.err())
    }

    // ---- outbox ----

    pub fn deliveries(&self) -> Result<Vec<Delivery>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT invoice_number, recipient, message_id, status, attempts, last_reply
                 FROM outbox ORDER BY invoice_number, recipient",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Delivery {
                    invoice_number: r.get(0)?,
                    recipient: r.get(1)?,
                    message_id: r.get(2)?,
                    status: r.get(3)?,
                    attempts: r.get(4)?,
                    last_reply: r.get(5)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.err())
    }

    /// Records several outcomes in one transaction (one sync for a batch),
    /// so recording keeps up with parallel senders: `(invoice, recipient,
    /// status, reply, tries)`.
    pub fn record_deliveries(
        &mut self,
        outcomes: &[(String, String, &str, Option<String>, u32)],
    ) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| sqlite_error(path.clone(), source);
        let tx = self.write()?;
        for (invoice, recipient, status, reply, tries) in outcomes {
            tx.execute(
                "UPDATE outbox SET status = ?3, attempts = attempts + ?5, last_reply = ?4
                 WHERE invoice_number = ?1 AND recipient = ?2",
                params![invoice, recipient, status, reply, tries],
            )
            .map_err(wrap)?;
        }
        tx.commit().map_err(wrap)
    }

    /// Puts every delivery of `invoice` back to pending, for a deliberate
    /// re-send; returns how many there are.
    pub fn reset_deliveries(&mut self, invoice: &str) -> Result<usize> {
        self.conn
            .execute(
                "UPDATE outbox SET status = 'pending' WHERE invoice_number = ?1",
                [invoice],
            )
            .map_err(self.err())
    }

    // ---- e-mail invoice preferences (for explain) ----

    /// Replaces every profile's preference record (JSON, one per profile id).
    pub fn replace_preferences<'p>(
        &mut self,
        records: impl IntoIterator<Item = (&'p str, String)>,
    ) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| sqlite_error(path.clone(), source);
        let tx = self.write()?;
        tx.execute("DELETE FROM preferences", []).map_err(wrap)?;
        for (profile, data) in records {
            tx.execute(
                "INSERT INTO preferences (profile_id, data) VALUES (?1, ?2)",
                [profile, data.as_str()],
            )
            .map_err(wrap)?;
        }
        tx.commit().map_err(wrap)
    }

    /// The preference record of `profile` the last run kept, if any.
    pub fn preferences_of(&self, profile: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT data FROM preferences WHERE profile_id = ?1",
                [profile],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    // ---- runs ----

    /// The as_of of the latest run, if any.
    pub fn latest_as_of(&self) -> Result<Option<NaiveDate>> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT as_of FROM runs ORDER BY id DESC LIMIT 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.err())?;
        text.map(|t| date("runs.as_of", &t)).transpose()
    }

    pub fn start_run(&mut self, as_of: NaiveDate) -> Result<i64> {
        self.conn
            .execute("INSERT INTO runs (as_of) VALUES (?1)", [as_of.to_string()])
            .map_err(self.err())?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn finish_run(&mut self, id: i64, exit_code: i32, summary: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET exit_code = ?2, summary = ?3 WHERE id = ?1",
                params![id, exit_code, summary],
            )
            .map(drop)
            .map_err(self.err())
    }
}

fn mark_dirty(tx: &Transaction, folder: &str, month: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO dirty (folder, month) VALUES (?1, ?2)",
        [folder, month],
    )
    .map(drop)
}
