//! Listing `DATA/usage` by day, and file fingerprints (size, content hash,
//! modification time): a day is re-ingested only when its files changed.
//!
//! Contents are hashed with BLAKE3 (recorded as `blake3:` and hex). A
//! ledger from before version 4 holds SHA-256 hashes (bare hex): a file
//! fingerprinted then is hashed with SHA-256 again to be compared, so an
//! upgrade re-ingests no unchanged day.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use sha2::{Digest, Sha256};

use crate::model::FileFingerprint;
use crate::parse::parse_iso_date;
use crate::store;

use super::relative;

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
    for path in store::list_dir(&data_dir.join("usage"))? {
        // Metadata follows a symbolic link: a linked file is read like any
        // other. One gone since it was listed is not there.
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => {}
            Ok(_) => continue,
            Err(reason) if reason.kind() == std::io::ErrorKind::NotFound => continue,
            Err(reason) => return Err(store::failed("inspect", &path)(reason)),
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let day = name.get(..10).and_then(parse_iso_date);
        let is_csv = name.ends_with(".csv") || name.ends_with(".csv.gz");
        match day {
            Some(day) if is_csv => listing.days.entry(day).or_default().push(path),
            _ => listing.ignored.push(format!("usage/{name}")),
        }
    }
    for files in listing.days.values_mut() {
        files.sort();
    }
    listing.ignored.sort();
    Ok(listing)
}

/// The fingerprint of the file at `path`, hashed as `known` (what the
/// ledger holds for it, if anything) was, so the two compare.
pub(super) fn fingerprint(
    data_dir: &Path,
    path: &Path,
    known: Option<&FileFingerprint>,
) -> Result<FileFingerprint, store::FileError> {
    let mut file = std::fs::File::open(path).map_err(store::failed("open", path))?;
    let metadata = file.metadata().map_err(store::failed("read", path))?;
    let mut hash = match known {
        Some(known) if is_sha256(&known.content_hash) => ReadHash::sha256(&metadata),
        _ => ReadHash::new(&metadata),
    };
    let mut block = vec![0; 1 << 20];
    loop {
        match file.read(&mut block) {
            Ok(0) => break,
            Ok(n) => hash.update(&block[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(store::failed("read", path)(e)),
        }
    }
    Ok(hash.finish(relative(data_dir, path)))
}

/// A file's content hash taken from the bytes as they are read, so a file
/// read to be ingested need not be read again to be fingerprinted.
pub(super) struct ReadHash {
    hasher: ContentHasher,
    size: u64,
    modified_ns: Option<i64>,
}

/// BLAKE3 for every file hashed now; SHA-256 only to compare a file with a
/// fingerprint a ledger before version 4 holds.
enum ContentHasher {
    Blake3(Box<blake3::Hasher>),
    Sha256(Sha256),
}

impl ReadHash {
    /// A BLAKE3 hash; `metadata` is the file's when it was opened.
    pub(super) fn new(metadata: &std::fs::Metadata) -> ReadHash {
        ReadHash::with(metadata, ContentHasher::Blake3(Box::default()))
    }

    /// A SHA-256 hash, as faktura took before ledger version 4.
    fn sha256(metadata: &std::fs::Metadata) -> ReadHash {
        ReadHash::with(metadata, ContentHasher::Sha256(Sha256::new()))
    }

    fn with(metadata: &std::fs::Metadata, hasher: ContentHasher) -> ReadHash {
        ReadHash {
            hasher,
            size: 0,
            modified_ns: modified_ns(metadata),
        }
    }

    pub(super) fn update(&mut self, bytes: &[u8]) {
        match &mut self.hasher {
            ContentHasher::Blake3(hasher) => {
                hasher.update(bytes);
            }
            ContentHasher::Sha256(hasher) => hasher.update(bytes),
        }
        self.size += bytes.len() as u64;
    }

    /// The fingerprint of the bytes hashed, `path` relative to DATA.
    pub(super) fn finish(self, path: String) -> FileFingerprint {
        let content_hash = match self.hasher {
            ContentHasher::Blake3(hasher) => format!("{BLAKE3_PREFIX}{}", hasher.finalize()),
            ContentHasher::Sha256(hasher) => hex(&hasher.finalize()),
        };
        FileFingerprint {
            path,
            size: self.size,
            content_hash,
            modified_ns: self.modified_ns,
        }
    }
}

/// How a BLAKE3 content hash starts; an older SHA-256 one is bare hex.
const BLAKE3_PREFIX: &str = "blake3:";

fn is_sha256(content_hash: &str) -> bool {
    !content_hash.starts_with(BLAKE3_PREFIX)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The fingerprint of `path`: taken from `known` when the file still has
/// the size and modification time it had when it was hashed; `None` when
/// the file is certainly not one ingested before (a path or size the
/// ledger does not know) and is plain CSV, so it is hashed as it is read
/// to be ingested; else hashed now.
pub(super) fn fingerprint_unless_new(
    data_dir: &Path,
    path: &Path,
    known: &HashMap<String, FileFingerprint>,
) -> Result<Option<FileFingerprint>, store::FileError> {
    let metadata = std::fs::metadata(path).map_err(store::failed("read", path))?;
    let known = known
        .get(&relative(data_dir, path))
        .filter(|k| k.size == metadata.len());
    match known {
        Some(k) if k.modified_ns.is_some() && k.modified_ns == modified_ns(&metadata) => {
            Ok(Some(k.clone()))
        }
        None if hashed_as_read(path) => Ok(None),
        known => fingerprint(data_dir, path, known).map(Some),
    }
}

/// Whether ingest reads the file's own bytes (not a gzip stream's contents),
/// so it can hash them as it parses.
pub(super) fn hashed_as_read(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "csv")
}

pub(super) fn modified_ns(metadata: &std::fs::Metadata) -> Option<i64> {
    let since_epoch = metadata
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    i64::try_from(since_epoch.as_nanos()).ok()
}
