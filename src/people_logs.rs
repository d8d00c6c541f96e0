//! The logs people append to, `payments.csv`, `preferences.csv` and
//! `credit_notes.csv` (SPEC §2.2, §2.3, §2.4), are read the same way: optional, re-read whole on every
//! run, each bad row rejected with a reason into `OUT/rejects/{name}`
//! (`file, line, reason, detail, raw`, as usage rejects), never stopping
//! the run. A file lacking a column is rejected whole (`missing_columns`,
//! line 1).

use std::path::{Path, PathBuf};

use crate::parse::Header;
use crate::store::{self, FileError};

/// One rejected row of a log file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowReject {
    pub line: u64,
    pub reason: &'static str,
    pub detail: String,
    pub raw: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("`{path}` is not valid CSV: {source}")]
    Csv { path: PathBuf, source: csv::Error },
}

/// One data row of a log file, as read.
pub struct LogRow<'r> {
    /// The physical line the record starts on (the header is line 1).
    pub line: u64,
    /// The record as written, without its line end.
    pub raw: &'r str,
    record: &'r csv::StringRecord,
    header: &'r Header,
}

impl LogRow<'_> {
    /// The trimmed cell of column `name` ("" when absent).
    pub fn cell(&self, name: &str) -> &str {
        self.header
            .position(name)
            .and_then(|i| self.record.get(i))
            .map_or("", str::trim)
    }

    /// `too_few_fields` / `too_many_fields` when the record's field count
    /// differs from the header's, else the first of `required` left empty
    /// (`missing_value`).
    pub fn check_shape(&self, required: &[&str]) -> Result<(), (&'static str, String)> {
        let (got, want) = (self.record.len(), self.header.len);
        let counted = format!("{got} fields, header has {want}");
        if got < want {
            return Err(("too_few_fields", counted));
        }
        if got > want {
            return Err(("too_many_fields", counted));
        }
        match required.iter().find(|name| self.cell(name).is_empty()) {
            Some(name) => Err(("missing_value", format!("empty {name}"))),
            None => Ok(()),
        }
    }

    pub fn reject(&self, (reason, detail): (&'static str, String)) -> RowReject {
        RowReject {
            line: self.line,
            reason,
            detail,
            raw: self.raw.to_string(),
        }
    }
}

/// Reads the log at `path` if it exists, handing each data row to `each`.
/// Returns the whole-file reject when the header lacks one of `required`.
pub fn read_log(
    path: &Path,
    required: &[&str],
    mut each: impl FnMut(&LogRow),
) -> Result<Option<RowReject>, LogError> {
    if !store::exists(path)? {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(store::failed("read", path))?;
    let text = text.trim_start_matches('\u{feff}');
    let csv_error = |source| LogError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    if !reader.read_record(&mut record).map_err(csv_error)? {
        return Ok(None);
    }
    let header = Header::new(record.iter());
    let missing = header.missing(required);
    if !missing.is_empty() {
        return Ok(Some(RowReject {
            line: 1,
            reason: "missing_columns",
            detail: format!("missing columns: {}", missing.join(", ")),
            raw: text.lines().next().unwrap_or("").to_string(),
        }));
    }
    loop {
        let start = reader.position().byte() as usize;
        if !reader.read_record(&mut record).map_err(csv_error)? {
            break;
        }
        let end = reader.position().byte() as usize;
        let row = LogRow {
            line: record.position().map_or(0, |p| p.line()),
            raw: text[start..end].trim_end_matches(['\r', '\n']),
            record: &record,
            header: &header,
        };
        each(&row);
    }
    Ok(None)
}

/// Writes `OUT/rejects/{name}` (unchanged bytes are not rewritten), or
/// removes a stale one when nothing is rejected.
pub fn write_rejects(out_dir: &Path, name: &str, rejects: &[RowReject]) -> Result<(), LogError> {
    let path = out_dir.join("rejects").join(name);
    if rejects.is_empty() {
        store::remove_if_exists(&path)?;
        return Ok(());
    }
    let csv_error = |source| LogError::Csv {
        path: path.clone(),
        source,
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(["file", "line", "reason", "detail", "raw"])
        .map_err(csv_error)?;
    for r in rejects {
        writer
            .write_record([name, &r.line.to_string(), r.reason, &r.detail, &r.raw])
            .map_err(csv_error)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| csv_error(csv::Error::from(e.into_error())))?;
    if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
        store::write_atomic(&path, &bytes)?;
    }
    Ok(())
}
