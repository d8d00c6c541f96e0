//! What `[publish]` copied to each target: a file's size, modification
//! time and content hash when it was uploaded, so nothing unchanged is
//! uploaded again and what OUT no longer holds is deleted there.

use std::collections::HashMap;

use rusqlite::params;

use super::{Ledger, Result};

/// A file of OUT as it was when last published to a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedFile {
    /// Relative to OUT, `/`-separated: the object's key under the target.
    pub path: String,
    pub size: u64,
    pub modified_ns: i64,
    pub content_hash: String,
}

impl Ledger {
    /// Every file published to `target`, by path.
    pub fn published(&self, target: &str) -> Result<HashMap<String, PublishedFile>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT path, size, modified_ns, content_hash FROM published WHERE target = ?1",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([target], |r| {
                Ok(PublishedFile {
                    path: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    modified_ns: r.get(2)?,
                    content_hash: r.get(3)?,
                })
            })
            .map_err(self.err())?;
        rows.map(|row| row.map(|f| (f.path.clone(), f)))
            .collect::<std::result::Result<_, _>>()
            .map_err(self.err())
    }

    /// Records `file` as published to `target` (replacing what was there).
    pub fn record_published(&mut self, target: &str, file: &PublishedFile) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO published (target, path, size, modified_ns, content_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    target,
                    file.path,
                    file.size as i64,
                    file.modified_ns,
                    file.content_hash
                ],
            )
            .map(drop)
            .map_err(self.err())
    }

    /// Forgets `path` at `target` (its object was deleted).
    pub fn forget_published(&mut self, target: &str, path: &str) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM published WHERE target = ?1 AND path = ?2",
                params![target, path],
            )
            .map(drop)
            .map_err(self.err())
    }
}
