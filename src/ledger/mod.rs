//! The ledger (`OUT/ledger.sqlite`): the state that makes re-runs safe.
//! Ingested files, per-day reconciliation, decisions (from which carries and
//! credit balances are derived), what each decided period has billed, issued
//! invoices and their gapless numbers, the e-mail outbox, and runs.
//!
//! Every change is one `BEGIN IMMEDIATE` transaction: a run killed before a
//! commit leaves the ledger as it was, so no number is skipped or reused.
//! The schema has a version (`PRAGMA user_version`); opening a ledger
//! migrates an older one in place and refuses a newer one.
//!
//! One file per group of tables: `ingest` (files, days, fresh days),
//! `decisions` (decisions, lines, billed sums, profile states, invoices
//! issued with them; `stored_lines` is how lines are kept), `invoices`
//! (payments and statuses), `outputs` (dirty partitions), `outbox`
//! (deliveries), `preferences`, `runs`.

use std::path::Path;

use crate::model::Kind;
use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

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
    #[error(
        "ledger `{path}` has schema version {found}, not the {known} this faktura knows: \
         run the faktura that wrote it (a newer one), or `faktura run` (an older one)"
    )]
    UnknownVersion {
        path: String,
        found: i64,
        known: i64,
    },
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

/// The schema version this faktura writes (`PRAGMA user_version`). Version
/// 0 is a ledger from before versions were kept: its tables are those of
/// version 1 but `preferences`, which the migration adds. Version 2 has the
/// same tables and writes `lines.data` deflated (`stored_lines`); its
/// version keeps an older faktura from reading what it cannot, and rows a
/// version 1 ledger holds are read as they are. Version 3 writes
/// `lines.data` in a compact form (`stored_lines`) and reads all three.
/// Version 4 names the file hash columns `content_hash` (they were
/// `sha256`): BLAKE3 for files hashed since, the SHA-256 hashes of older
/// versions kept as they are (`ingest::listing`). Version 5 adds credit
/// notes (`credit_notes`), the invoices' `credited_total` and
/// `reminders_sent`, the outbox's `document` (an invoice or a credit
/// note) and the reminders' outbox (`reminder_outbox`). Version 6 adds
/// the ETags of usage objects read from a store (`object_stamps`) and
/// what was published where (`published`).
const SCHEMA_VERSION: i64 = 6;

/// The tables (every statement is idempotent).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ingested_files (
    path TEXT PRIMARY KEY, day TEXT NOT NULL, size INTEGER NOT NULL, content_hash TEXT NOT NULL);
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
    data TEXT NOT NULL, amount_paid TEXT NOT NULL, status TEXT NOT NULL,
    credited_total TEXT NOT NULL DEFAULT '0', reminders_sent INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS outbox (
    invoice_number TEXT NOT NULL, recipient TEXT NOT NULL, message_id TEXT NOT NULL,
    status TEXT NOT NULL, attempts INTEGER NOT NULL, last_reply TEXT,
    document TEXT NOT NULL DEFAULT 'invoice',
    PRIMARY KEY (invoice_number, recipient));
CREATE TABLE IF NOT EXISTS credit_notes (
    seq INTEGER PRIMARY KEY, number TEXT NOT NULL UNIQUE, ref TEXT NOT NULL UNIQUE,
    invoice_number TEXT NOT NULL, period_start TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reminder_outbox (
    invoice_number TEXT NOT NULL, reminder INTEGER NOT NULL, recipient TEXT NOT NULL,
    message_id TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
    last_reply TEXT, issued_on TEXT NOT NULL,
    PRIMARY KEY (invoice_number, reminder, recipient));
CREATE TABLE IF NOT EXISTS dirty (folder TEXT NOT NULL, month TEXT NOT NULL,
    PRIMARY KEY (folder, month));
CREATE TABLE IF NOT EXISTS fresh_days (day TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS unchecked (
    profile_id TEXT NOT NULL, kind TEXT NOT NULL, period_start TEXT NOT NULL,
    PRIMARY KEY (profile_id, kind, period_start));
CREATE TABLE IF NOT EXISTS file_stamps (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, modified_ns INTEGER NOT NULL,
    content_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS object_stamps (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, etag TEXT NOT NULL,
    content_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS published (
    target TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
    modified_ns INTEGER NOT NULL, content_hash TEXT NOT NULL, PRIMARY KEY (target, path));
CREATE TABLE IF NOT EXISTS preferences (profile_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, as_of TEXT NOT NULL, exit_code INTEGER, summary TEXT);
";

/// An open ledger.
pub struct Ledger {
    conn: Connection,
    path: String,
}

mod credit_notes;
mod decisions;
mod ingest;
mod invoices;
mod outbox;
mod outputs;
mod preferences;
mod published;
mod reminders;
mod runs;
mod stored_lines;

pub use crate::model::{
    Billed, DayStats, DecideCommit, DecisionKey, FileFingerprint, ProfileState,
};
pub use invoices::{IssuedInvoice, StatusUpdate};
pub use outbox::{Delivery, DeliveryOutcome, Document};
pub use published::PublishedFile;
pub use reminders::ReminderIssue;

/// A row's first `N` columns as text.
fn text_cells<const N: usize>(row: &rusqlite::Row<'_>) -> rusqlite::Result<[String; N]> {
    let mut cells: [String; N] = std::array::from_fn(|_| String::new());
    for (i, cell) in cells.iter_mut().enumerate() {
        *cell = row.get(i)?;
    }
    Ok(cells)
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
        let mut ledger = Ledger {
            conn,
            path: display,
        };
        ledger.migrate()?;
        Ok(ledger)
    }

    /// Opens the ledger to read only, changing nothing under OUT (`faktura
    /// preview`): no migration, and no `-wal` or `-shm` file created. With
    /// no `-wal` beside it no writer has it open, so it is read as an
    /// immutable file; otherwise through the writer's WAL, read-only.
    pub fn open_read_only(path: &Path) -> Result<Ledger> {
        let display = path.display().to_string();
        let wrap = |source| sqlite_error(display.clone(), source);
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let mode = if Path::new(&wal).exists() {
            "mode=ro"
        } else {
            "immutable=1"
        };
        let uri = format!("file:{}?{mode}", uri_path(&display));
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_URI
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&uri, flags).map_err(wrap)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(wrap)?;
        let ledger = Ledger {
            conn,
            path: display,
        };
        let found = ledger.schema_version()?;
        if found != SCHEMA_VERSION {
            return Err(LedgerError::UnknownVersion {
                path: ledger.path.clone(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        Ok(ledger)
    }

    /// The schema version the ledger holds.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(self.err())
    }

    /// Brings an older ledger (or a new, empty one) to [`SCHEMA_VERSION`]
    /// in one transaction; refuses one written by a newer faktura.
    fn migrate(&mut self) -> Result<()> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(LedgerError::UnknownVersion {
                path: self.path.clone(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        let path = self.path.clone();
        let wrap = |source| sqlite_error(path.clone(), source);
        let tx = self.write()?;
        // 0 -> 1: every table of version 1 that is missing (an empty file
        // gets them all; a ledger from before versions gets `preferences`).
        // 1 -> 2 -> 3: nothing to change. 3 -> 4: the hash columns renamed.
        for table in ["ingested_files", "file_stamps"] {
            if has_column(&tx, table, "sha256").map_err(wrap)? {
                tx.execute_batch(&format!(
                    "ALTER TABLE {table} RENAME COLUMN sha256 TO content_hash"
                ))
                .map_err(wrap)?;
            }
        }
        tx.execute_batch(SCHEMA).map_err(wrap)?;
        // 4 -> 5: columns the existing tables lack. 5 -> 6: new tables only.
        for (table, column, definition) in [
            ("invoices", "credited_total", "TEXT NOT NULL DEFAULT '0'"),
            ("invoices", "reminders_sent", "INTEGER NOT NULL DEFAULT 0"),
            ("outbox", "document", "TEXT NOT NULL DEFAULT 'invoice'"),
        ] {
            if !has_column(&tx, table, column).map_err(wrap)? {
                tx.execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN {column} {definition}"
                ))
                .map_err(wrap)?;
            }
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(wrap)?;
        tx.commit().map_err(wrap)
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
            each(text_cells(row).map_err(self.err())?)?;
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
}

/// A path as the path of a `file:` URI: `%`, `?` and `#` escaped.
fn uri_path(path: &str) -> String {
    path.replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23")
}

/// Whether `table` exists and has `column`.
fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
        params![table, column],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ledger as faktura wrote it before schema versions (83cd583): every
    /// table but `preferences`, `user_version` 0.
    fn unversioned_ledger(path: &Path) {
        let old_schema: String = SCHEMA
            .lines()
            .filter(|l| !l.contains("preferences"))
            .collect::<Vec<_>>()
            .join("\n");
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(&old_schema).unwrap();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('billing_start', '2026-10-01')",
            [],
        )
        .unwrap();
    }

    #[test]
    fn an_unversioned_ledger_is_migrated_in_place_keeping_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        unversioned_ledger(&path);
        let mut ledger = Ledger::open(&path).unwrap();
        assert_eq!(ledger.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(
            ledger.meta("billing_start").unwrap().as_deref(),
            Some("2026-10-01")
        );
        ledger
            .replace_preferences([("P", "{}".to_string())])
            .unwrap();
        assert_eq!(ledger.preferences_of("P").unwrap().as_deref(), Some("{}"));
        drop(ledger);
        // Opening again changes nothing.
        let ledger = Ledger::open(&path).unwrap();
        assert_eq!(ledger.schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn a_ledger_from_a_newer_faktura_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let error = Ledger::open(&path).err().expect("refused");
        assert!(
            matches!(error, LedgerError::UnknownVersion { found, .. } if found == SCHEMA_VERSION + 1),
            "{error}"
        );
        assert!(error.to_string().contains(&path.display().to_string()));
    }
}
