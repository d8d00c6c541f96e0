//! The parquet partitions whose contents changed and must be rewritten.

use rusqlite::Transaction;

use super::{Ledger, Result};

impl Ledger {
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
}

/// Marks `OUT/{folder}/period={month}` for rewriting, in the transaction
/// that changed what it holds.
pub(super) fn mark_dirty(tx: &Transaction, folder: &str, month: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO dirty (folder, month) VALUES (?1, ?2)",
        [folder, month],
    )
    .map(drop)
}
