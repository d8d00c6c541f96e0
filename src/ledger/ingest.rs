//! Ingested files and their fingerprints, per-day reconciliation, and the
//! days ingested since the last decide step.

use chrono::NaiveDate;

use crate::model::{DayStats, FileFingerprint};

use rusqlite::params;

use super::{Ledger, LedgerError, Result, date, sqlite_error};

const FINGERPRINT_COLUMNS: &str = "SELECT f.path, f.size, f.content_hash, s.modified_ns, o.etag
     FROM ingested_files f LEFT JOIN file_stamps s
     ON s.path = f.path AND s.size = f.size AND s.content_hash = f.content_hash
     LEFT JOIN object_stamps o
     ON o.path = f.path AND o.size = f.size AND o.content_hash = f.content_hash";

const FINGERPRINT_COLUMNS_WITH_DAY: &str =
    "SELECT f.path, f.size, f.content_hash, s.modified_ns, o.etag, f.day
     FROM ingested_files f LEFT JOIN file_stamps s
     ON s.path = f.path AND s.size = f.size AND s.content_hash = f.content_hash
     LEFT JOIN object_stamps o
     ON o.path = f.path AND o.size = f.size AND o.content_hash = f.content_hash";

impl Ledger {
    pub fn ingested_files(&self, day: NaiveDate) -> Result<Vec<FileFingerprint>> {
        self.fingerprints(
            &format!("{FINGERPRINT_COLUMNS} WHERE f.day = ?1 ORDER BY f.path"),
            [day.to_string()],
        )
    }

    /// Every file ingested so far, by the day it was ingested for (each
    /// day's in path order).
    pub fn ingested_files_by_day(
        &self,
    ) -> Result<std::collections::BTreeMap<NaiveDate, Vec<FileFingerprint>>> {
        let mut by_day: std::collections::BTreeMap<NaiveDate, Vec<FileFingerprint>> =
            Default::default();
        let mut stmt = self
            .conn
            .prepare(&format!(
                "{FINGERPRINT_COLUMNS_WITH_DAY} ORDER BY f.day, f.path"
            ))
            .map_err(self.err())?;
        let mut rows = stmt.query([]).map_err(self.err())?;
        while let Some(r) = rows.next().map_err(self.err())? {
            let day: String = r.get(5).map_err(self.err())?;
            let fingerprint = FileFingerprint {
                path: r.get(0).map_err(self.err())?,
                size: r.get::<_, i64>(1).map_err(self.err())? as u64,
                content_hash: r.get(2).map_err(self.err())?,
                modified_ns: r.get(3).map_err(self.err())?,
                etag: r.get(4).map_err(self.err())?,
            };
            by_day
                .entry(date("ingested_files.day", &day)?)
                .or_default()
                .push(fingerprint);
        }
        Ok(by_day)
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
                    content_hash: r.get(2)?,
                    modified_ns: r.get(3)?,
                    etag: r.get(4)?,
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
                "INSERT OR REPLACE INTO ingested_files (path, day, size, content_hash) VALUES (?1, ?2, ?3, ?4)",
                params![f.path, day, f.size as i64, f.content_hash],
            )
            .map_err(wrap)?;
            if let Some(modified_ns) = f.modified_ns {
                tx.execute(
                    "INSERT OR REPLACE INTO file_stamps (path, size, modified_ns, content_hash)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![f.path, f.size as i64, modified_ns, f.content_hash],
                )
                .map_err(wrap)?;
            }
            if let Some(etag) = &f.etag {
                tx.execute(
                    "INSERT OR REPLACE INTO object_stamps (path, size, etag, content_hash)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![f.path, f.size as i64, etag, f.content_hash],
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
}
