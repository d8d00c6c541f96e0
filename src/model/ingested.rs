//! What ingest hands on: a usage day's reconciliation and the files it
//! read, with their fingerprints. The run records them in the ledger; the
//! run summary reports them.

use chrono::NaiveDate;

/// A file of a usage day as last ingested.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct FileFingerprint {
    pub path: String,
    pub size: u64,
    /// `blake3:` and the BLAKE3 hash of its bytes in hex; a bare hex
    /// SHA-256 in what ledgers before version 4 recorded.
    #[serde(alias = "sha256")]
    pub content_hash: String,
    /// The file's modification time when it was hashed (nanoseconds since
    /// the epoch): a file with the same size and time is not hashed again.
    #[serde(default)]
    pub modified_ns: Option<i64>,
    /// The object's ETag when it was hashed, for DATA in an object store:
    /// an object with the same size and ETag is not read again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl FileFingerprint {
    /// Same path and contents (the modification time aside), `other`
    /// being the newer. An object of a store is known by its ETag too: one
    /// uploaded again is a new file even when its bytes are the same.
    pub fn same_file(&self, other: &FileFingerprint) -> bool {
        (&self.path, self.size, &self.content_hash)
            == (&other.path, other.size, &other.content_hash)
            && (other.etag.is_none() || self.etag == other.etag)
    }
}

/// What a usage file is known by without reading it: its size and
/// modification time (a local file) or its size and ETag (an object).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub modified_ns: Option<i64>,
    pub etag: Option<String>,
}

impl Stamp {
    /// A local file's stamp.
    pub fn of_file(metadata: &std::fs::Metadata) -> Stamp {
        let modified_ns = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_nanos()).ok());
        Stamp {
            size: metadata.len(),
            modified_ns,
            etag: None,
        }
    }

    /// Whether `fingerprint` was taken of the file as it is now: the same
    /// size, and the same modification time or ETag.
    pub fn matches(&self, fingerprint: &FileFingerprint) -> bool {
        let same_time = self.modified_ns.is_some() && self.modified_ns == fingerprint.modified_ns;
        let same_etag = self.etag.is_some() && self.etag == fingerprint.etag;
        self.size == fingerprint.size && (same_time || same_etag)
    }
}

/// Reconciliation of one usage day (SPEC: read = accepted + rejected).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DayStats {
    pub day: NaiveDate,
    /// At least one file of the day was read (not rejected whole).
    pub present: bool,
    pub files: u64,
    pub files_rejected: u64,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    pub accepted_cost: crate::parse::UsageSum,
}
