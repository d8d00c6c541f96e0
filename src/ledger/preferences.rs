//! Each profile's e-mail invoice preference record, kept for `explain`.

use rusqlite::OptionalExtension;

use super::{Ledger, Result, sqlite_error};

impl Ledger {
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
}
