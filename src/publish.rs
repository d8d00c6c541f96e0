//! Publishing (SPEC §8 `[publish]`): OUT's `usage`, `lines`, `decisions`,
//! `invoices`, `credit_notes`, `pdf` and `einvoice` folders mirrored to an
//! object store under the same relative paths, at the end of `faktura run`.
//!
//! What the ledger records as published to the target is compared with
//! OUT: a file new or changed since (size and modification time, then its
//! content hash) is uploaded whole, one OUT no longer holds is deleted
//! there, anything else is left alone. Each upload or deletion is recorded
//! as soon as it is done, so a run killed part-way leaves the next run the
//! rest. A store that fails does not fail the run: publishing stops, what
//! is left is counted, and the next run carries on.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::ledger::{Ledger, LedgerError, PublishedFile};
use crate::remote::{Remote, RemoteError};
use crate::store;

/// The folders of OUT that are published.
pub const FOLDERS: &[&str] = &[
    "usage",
    "lines",
    "decisions",
    "invoices",
    "credit_notes",
    "pdf",
    "einvoice",
];

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// OUT itself could not be read: the run fails.
    #[error(transparent)]
    File(#[from] store::FileError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// What one publish did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PublishReport {
    /// The target, as configured.
    pub to: String,
    pub uploaded: usize,
    pub deleted: usize,
    pub unchanged: usize,
    /// Uploads and deletions not done (the next run does them).
    pub pending: usize,
    /// Why publishing stopped, naming the object and the cause.
    pub failure: Option<String>,
}

/// A change the target needs.
enum Change {
    Upload(PublishedFile),
    /// Rewritten with the same bytes: recorded with its new time, not sent.
    Restamp(PublishedFile),
    Delete(String),
}

/// Mirrors OUT's published folders to `to`.
pub fn publish(
    out_dir: &Path,
    to: &str,
    ledger: &mut Ledger,
) -> Result<PublishReport, PublishError> {
    let mut report = PublishReport {
        to: to.to_string(),
        ..Default::default()
    };
    let published = ledger.published(to)?;
    let (changes, unchanged) = changes(out_dir, &published)?;
    report.unchanged = unchanged;
    let mut remote: Option<Remote> = None;
    for (done, change) in changes.iter().enumerate() {
        if let Err(e) = apply(change, out_dir, to, &mut remote, &mut report) {
            report.pending = changes[done..]
                .iter()
                .filter(|c| !matches!(c, Change::Restamp(_)))
                .count();
            report.failure = Some(e.to_string());
            tracing::warn!(to, error = %e, "publishing stopped; the next run carries on");
            return Ok(report);
        }
        match change {
            Change::Upload(file) | Change::Restamp(file) => ledger.record_published(to, file)?,
            Change::Delete(path) => ledger.forget_published(to, path)?,
        }
    }
    Ok(report)
}

/// Applies one change to the target, its client made when first needed.
fn apply(
    change: &Change,
    out_dir: &Path,
    to: &str,
    remote: &mut Option<Remote>,
    report: &mut PublishReport,
) -> Result<(), RemoteError> {
    let store = match remote {
        Some(remote) => remote,
        None if matches!(change, Change::Restamp(_)) => return Ok(()),
        None => remote.insert(Remote::open(to)?),
    };
    match change {
        Change::Upload(file) => {
            store.upload(&file.path, &out_dir.join(&file.path))?;
            report.uploaded += 1;
        }
        Change::Restamp(_) => {}
        Change::Delete(path) => {
            store.delete(path)?;
            report.deleted += 1;
        }
    }
    Ok(())
}

/// The uploads and deletions the target needs (in path order, uploads
/// first), and how many files are unchanged.
fn changes(
    out_dir: &Path,
    published: &HashMap<String, PublishedFile>,
) -> Result<(Vec<Change>, usize), PublishError> {
    let files = published_files(out_dir)?;
    let mut changes = Vec::new();
    let mut unchanged = 0;
    for (path, (size, modified_ns)) in &files {
        let before = published.get(path);
        if before.is_some_and(|b| b.size == *size && b.modified_ns == *modified_ns) {
            unchanged += 1;
            continue;
        }
        let local = out_dir.join(path);
        let file = PublishedFile {
            path: path.clone(),
            size: *size,
            modified_ns: *modified_ns,
            content_hash: content_hash(&local)?,
        };
        if before.is_some_and(|b| b.content_hash == file.content_hash) {
            unchanged += 1;
            changes.push(Change::Restamp(file));
        } else {
            changes.push(Change::Upload(file));
        }
    }
    let mut gone: Vec<&String> = published
        .keys()
        .filter(|p| !files.contains_key(*p))
        .collect();
    gone.sort();
    changes.extend(gone.into_iter().map(|p| Change::Delete(p.clone())));
    Ok((changes, unchanged))
}

/// The regular files of the published folders, by path relative to OUT
/// (`/`-separated), with their size and modification time. Temporary
/// files (a leading `.`) are not published.
fn published_files(out_dir: &Path) -> Result<BTreeMap<String, (u64, i64)>, PublishError> {
    let mut files = BTreeMap::new();
    let mut folders: Vec<PathBuf> = FOLDERS.iter().map(|f| out_dir.join(f)).collect();
    while let Some(folder) = folders.pop() {
        for path in store::list_dir(&folder)? {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if name.as_deref().is_none_or(|n| n.starts_with('.')) {
                continue;
            }
            let metadata = match std::fs::symlink_metadata(&path) {
                Ok(metadata) => metadata,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(store::failed("inspect", &path)(e).into()),
            };
            if metadata.is_dir() {
                folders.push(path);
            } else if metadata.is_file() {
                let stamp = crate::model::Stamp::of_file(&metadata);
                let relative = path
                    .strip_prefix(out_dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                files.insert(relative, (stamp.size, stamp.modified_ns.unwrap_or(0)));
            }
        }
    }
    Ok(files)
}

/// `blake3:` and the hex BLAKE3 hash of the file's bytes.
fn content_hash(path: &Path) -> Result<String, store::FileError> {
    let file = std::fs::File::open(path).map_err(store::failed("open", path))?;
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(file)
        .map_err(store::failed("read", path))?;
    Ok(format!("blake3:{}", hasher.finalize()))
}
