//! File fingerprints (size, content hash, and the modification time or
//! ETag they were taken at): a day is re-ingested only when its files
//! changed. The files are listed and opened through
//! [`crate::data_source::UsageSource`], a folder or an object store.
//!
//! Contents are hashed with BLAKE3 (recorded as `blake3:` and hex). A
//! ledger from before version 4 holds SHA-256 hashes (bare hex): a file
//! fingerprinted then is hashed with SHA-256 again to be compared, so an
//! upgrade re-ingests no unchanged day.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::data_source::UsageSource;
use crate::model::{FileFingerprint, Stamp};
use crate::store;

/// The fingerprint of the file at `path`, hashed as `known` (what the
/// ledger holds for it, if anything) was, so the two compare.
pub(super) fn fingerprint(
    usage: &UsageSource,
    path: &Path,
    known: Option<&FileFingerprint>,
) -> Result<FileFingerprint, store::FileError> {
    let (mut file, stamp) = usage.open_raw(path).map_err(store::failed("open", path))?;
    let mut hash = match known {
        Some(known) if is_sha256(&known.content_hash) => ReadHash::sha256(stamp),
        _ => ReadHash::new(stamp),
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
    Ok(hash.finish(usage.relative(path)))
}

/// A file's content hash taken from the bytes as they are read, so a file
/// read to be ingested need not be read again to be fingerprinted.
pub(super) struct ReadHash {
    hasher: ContentHasher,
    size: u64,
    /// The file's stamp when it was opened.
    stamp: Stamp,
}

/// BLAKE3 for every file hashed now; SHA-256 only to compare a file with a
/// fingerprint a ledger before version 4 holds.
enum ContentHasher {
    Blake3(Box<blake3::Hasher>),
    Sha256(Sha256),
}

impl ReadHash {
    /// A BLAKE3 hash; `stamp` is the file's when it was opened.
    pub(super) fn new(stamp: Stamp) -> ReadHash {
        ReadHash::with(stamp, ContentHasher::Blake3(Box::default()))
    }

    /// A SHA-256 hash, as faktura took before ledger version 4.
    fn sha256(stamp: Stamp) -> ReadHash {
        ReadHash::with(stamp, ContentHasher::Sha256(Sha256::new()))
    }

    fn with(stamp: Stamp, hasher: ContentHasher) -> ReadHash {
        ReadHash {
            hasher,
            size: 0,
            stamp,
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
            modified_ns: self.stamp.modified_ns,
            etag: self.stamp.etag,
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
/// the size and modification time (or ETag) it had when it was hashed;
/// `None` when the file is certainly not one ingested before (a path or
/// size the ledger does not know) and is plain CSV, so it is hashed as it
/// is read to be ingested; else hashed now.
pub(super) fn fingerprint_unless_new(
    usage: &UsageSource,
    path: &Path,
    known: &HashMap<String, FileFingerprint>,
) -> Result<Option<FileFingerprint>, store::FileError> {
    let stamp = usage.stamp(path)?;
    let known = known
        .get(&usage.relative(path))
        .filter(|k| k.size == stamp.size);
    match known {
        Some(k) if stamp.matches(k) => Ok(Some(k.clone())),
        None if hashed_as_read(path) => Ok(None),
        known => fingerprint(usage, path, known).map(Some),
    }
}

/// Whether ingest reads the file's own bytes (not a gzip stream's contents),
/// so it can hash them as it parses.
pub(super) fn hashed_as_read(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "csv")
}
