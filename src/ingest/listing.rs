//! Listing `DATA/usage` by day, and file fingerprints (size, SHA-256,
//! modification time): a day is re-ingested only when its files changed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::ledger::FileFingerprint;
use crate::parse::parse_iso_date;
use crate::store;

use super::*;

/// The usage files of `DATA/usage`, grouped by the day their name starts with.
pub struct UsageListing {
    pub days: BTreeMap<NaiveDate, Vec<PathBuf>>,
    pub ignored: Vec<String>,
}

/// Lists `DATA/usage`: `YYYY-MM-DD*.csv` and `.csv.gz` files by day.
pub fn list_usage_files(data_dir: &Path) -> Result<UsageListing, store::FileError> {
    let mut listing = UsageListing {
        days: BTreeMap::new(),
        ignored: Vec::new(),
    };
    let dir = data_dir.join("usage");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(listing);
    };
    for entry in entries {
        let entry = entry.map_err(store::failed("list", &dir))?;
        // Metadata follows a symbolic link: a linked file is read like any other.
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => {}
            Ok(_) => continue,
            Err(reason) => return Err(store::failed("read", &path)(reason)),
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let day = name.get(..10).and_then(parse_iso_date);
        let is_csv = name.ends_with(".csv") || name.ends_with(".csv.gz");
        match day {
            Some(day) if is_csv => listing.days.entry(day).or_default().push(entry.path()),
            _ => listing.ignored.push(format!("usage/{name}")),
        }
    }
    for files in listing.days.values_mut() {
        files.sort();
    }
    listing.ignored.sort();
    Ok(listing)
}

pub(super) fn fingerprint(
    data_dir: &Path,
    path: &Path,
) -> Result<FileFingerprint, store::FileError> {
    let mut file = std::fs::File::open(path).map_err(store::failed("open", path))?;
    let metadata = file.metadata().map_err(store::failed("read", path))?;
    let modified_ns = modified_ns(&metadata);
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher).map_err(store::failed("read", path))?;
    let digest = hasher.finalize();
    Ok(FileFingerprint {
        path: relative(data_dir, path),
        size,
        sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        modified_ns,
    })
}

/// The fingerprint of `path`, taken from `known` when the file still has
/// the size and modification time it had when it was hashed.
pub(super) fn fingerprint_known(
    data_dir: &Path,
    path: &Path,
    known: &HashMap<String, FileFingerprint>,
) -> Result<FileFingerprint, store::FileError> {
    let metadata = std::fs::metadata(path).map_err(store::failed("read", path))?;
    if let Some(k) = known.get(&relative(data_dir, path))
        && k.size == metadata.len()
        && k.modified_ns.is_some()
        && k.modified_ns == modified_ns(&metadata)
    {
        return Ok(k.clone());
    }
    fingerprint(data_dir, path)
}

pub(super) fn modified_ns(metadata: &std::fs::Metadata) -> Option<i64> {
    let since_epoch = metadata
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    i64::try_from(since_epoch.as_nanos()).ok()
}
