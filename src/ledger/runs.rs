//! Runs: when each started, its as-of date, exit code and summary.

use chrono::NaiveDate;

use rusqlite::{OptionalExtension, params};

use super::{Ledger, Result, date};

impl Ledger {
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
