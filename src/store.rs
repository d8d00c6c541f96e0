//! Files under OUT, written so that a killed run leaves no partial file:
//! everything goes to a temporary name in the same folder, is synced, and is
//! renamed into place; every failure names its path and the OS reason.
//! Also the lock that keeps a second run out of OUT, and a DataFrame
//! written as a parquet file (`columns` builds the typed columns).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use polars::prelude::*;

/// A file operation that failed: the path and the operating system's reason
/// (`No space left on device`, `Permission denied`, …), so an operator
/// knows what to fix.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} `{path}`: {reason}")]
pub struct FileError {
    pub action: &'static str,
    pub path: PathBuf,
    pub reason: std::io::Error,
}

/// Names `path` in an I/O error: `.map_err(store::failed("write", &path))`.
pub fn failed<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> FileError + 'a {
    move |reason| FileError {
        action,
        path: path.to_path_buf(),
        reason,
    }
}

/// Writes `bytes` to `path` atomically (temporary name, fsync, rename).
/// A failure names `path` and leaves no temporary file behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    write_renderable(path, bytes)?;
    // Make the rename itself durable.
    let dir = path.parent().expect("output paths have a parent");
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Like [`write_atomic`] without syncing the directory: the bytes are on
/// disk before the name appears, but a crash may lose the new name. For
/// files a re-run makes again when they are missing (PDFs, e-invoices),
/// it saves a disk flush per file.
pub fn write_renderable(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let tmp = write_temporary(path, bytes, SyncWhen::Now)?;
    rename_into_place(&tmp, path)
}

/// Writes files a re-run can make again (PDFs, e-invoices) together: each
/// to its temporary name, then one [`sync_filesystem`] for them all, then
/// each renamed into place. As with [`write_renderable`], a name never
/// appears before its bytes are on disk, at one disk flush a batch instead
/// of one a file. A failure names the file and leaves no temporary behind.
pub fn write_renderables(files: &[(PathBuf, Vec<u8>)]) -> Result<(), FileError> {
    let Some((first, _)) = files.first() else {
        return Ok(());
    };
    if !cfg!(target_os = "linux") {
        return files
            .iter()
            .try_for_each(|(path, bytes)| write_renderable(path, bytes));
    }
    let mut temporaries = Vec::with_capacity(files.len());
    let written = (|| {
        for (path, bytes) in files {
            temporaries.push(write_temporary(path, bytes, SyncWhen::Later)?);
        }
        sync_filesystem(first.parent().expect("output paths have a parent"))?;
        for ((path, _), tmp) in files.iter().zip(&temporaries) {
            rename_into_place(tmp, path)?;
        }
        Ok(())
    })();
    if written.is_err() {
        for tmp in &temporaries {
            let _ = fs::remove_file(tmp);
        }
    }
    written
}

/// Writes `bytes` to `path` through a temporary name and a rename, without
/// syncing: a reader never sees a partial file, but a crash may lose it.
/// A batch of such files is made durable at once with [`sync_filesystem`]
/// (where the system has no `syncfs`, each file is synced as it is written).
pub fn write_unsynced(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    if !cfg!(target_os = "linux") {
        return write_atomic(path, bytes);
    }
    let tmp = write_temporary(path, bytes, SyncWhen::Later)?;
    rename_into_place(&tmp, path)
}

/// Whether a temporary file is synced as it is written or, with others,
/// by the caller later.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SyncWhen {
    Now,
    Later,
}

/// Writes `bytes` to the temporary name of `path` (its folder made when
/// missing) and returns that name. A failure names `path` and leaves no
/// temporary file behind.
fn write_temporary(path: &Path, bytes: &[u8], sync: SyncWhen) -> Result<PathBuf, FileError> {
    let dir = path.parent().expect("output paths have a parent");
    fs::create_dir_all(dir).map_err(failed("create", dir))?;
    let tmp = temporary_name(path);
    let written = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if sync == SyncWhen::Now {
            file.sync_all()?;
        }
        Ok(())
    })();
    if let Err(reason) = written {
        let _ = fs::remove_file(&tmp);
        return Err(failed("write", path)(reason));
    }
    Ok(tmp)
}

/// Renames a written temporary file to `path`; removes it if that fails.
fn rename_into_place(tmp: &Path, path: &Path) -> Result<(), FileError> {
    fs::rename(tmp, path).map_err(|reason| {
        let _ = fs::remove_file(tmp);
        failed("write", path)(reason)
    })
}

/// Flushes everything written to the file system that holds `dir` (files,
/// renames, new folders) to disk: one `syncfs(2)` for a batch written with
/// [`write_unsynced`] instead of two disk flushes a file.
pub fn sync_filesystem(dir: &Path) -> Result<(), FileError> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let folder = fs::File::open(dir).map_err(failed("open", dir))?;
        // SAFETY: syncfs only reads the descriptor, which `folder` keeps open.
        if unsafe { libc::syncfs(folder.as_raw_fd()) } != 0 {
            return Err(failed("sync", dir)(std::io::Error::last_os_error()));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = dir;
    Ok(())
}

/// The temporary name `path` is written under before it is renamed into place.
fn temporary_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .expect("output paths name a file")
        .to_string_lossy();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Removes a file if it exists.
pub fn remove_if_exists(path: &Path) -> Result<(), FileError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(failed("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Whether `path` exists. Only "not found" counts as absent: a path that
/// cannot be looked at (no permission on its folder, an I/O error) is an
/// error naming it and the reason, never taken for a missing file.
pub fn exists(path: &Path) -> Result<bool, FileError> {
    path.try_exists().map_err(failed("inspect", path))
}

/// The entries of folder `dir`, sorted; none when it does not exist. Only
/// "not found" counts as absent: a folder that cannot be listed (no
/// permission, an I/O error) is an error naming it and the reason.
pub fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, FileError> {
    let Some(entries) = entries(dir)? else {
        return Ok(Vec::new());
    };
    let mut paths = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(failed("list", dir))?;
    paths.sort();
    Ok(paths)
}

/// The entries of `dir`, unsorted; `None` when it does not exist.
fn entries(dir: &Path) -> Result<Option<fs::ReadDir>, FileError> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(Some(entries)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(failed("list", dir)(e)),
    }
}

/// Removes temporary files a killed run left behind under `dir`. Every
/// run walks all of OUT, which grows by each night's documents and
/// e-mails: an entry's kind comes from the directory listing itself, not
/// from reading each file's inode (a walk of the 428,000 entries of a
/// month of 100,000 profiles, in Python: 17.9 s with an `lstat` each while
/// the inodes were not cached, 1.3 s from the listings alone).
pub fn sweep_temporaries(dir: &Path) -> Result<usize, FileError> {
    let Some(entries) = entries(dir)? else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(failed("list", dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(failed("inspect", &path))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            removed += sweep_temporaries(&path)?;
        } else if name.starts_with('.') && name.contains(".tmp-") {
            fs::remove_file(&path).map_err(failed("remove", &path))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// A file being written by a library that may lose the operating system's
/// reason for a failed write (polars' parquet writer reports a full disk as
/// "Invalid thrift: transport error"): remembers the first I/O error, so
/// the caller can name it.
pub struct RecordingFile {
    file: fs::File,
    first_error: FirstIoError,
}

/// The first I/O error a [`RecordingFile`] saw, shared with its writer.
#[derive(Clone, Default)]
pub struct FirstIoError(std::sync::Arc<std::sync::Mutex<Option<std::io::Error>>>);

impl FirstIoError {
    pub fn take(&self) -> Option<std::io::Error> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl RecordingFile {
    pub fn create(path: &Path) -> Result<(RecordingFile, FirstIoError), FileError> {
        let file = fs::File::create(path).map_err(failed("create", path))?;
        let first = FirstIoError::default();
        Ok((
            RecordingFile {
                file,
                first_error: first.clone(),
            },
            first,
        ))
    }

    fn remember<T>(&self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &result {
            let mut slot = self.first_error.0.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
        }
        result
    }
}

impl Write for RecordingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.file.write(buf);
        self.remember(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.file.flush();
        self.remember(result)
    }
}

impl std::io::Seek for RecordingFile {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        let result = self.file.seek(pos);
        self.remember(result)
    }
}

/// The exclusive lock on OUT (`OUT/.lock`), released by the kernel when
/// the process dies, so a killed run never leaves OUT locked.
pub struct OutLock {
    file: fs::File,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another faktura run holds `{lock}`: {holder}")]
    Held { lock: PathBuf, holder: String },
    #[error(transparent)]
    File(#[from] FileError),
}

/// Takes the lock on `out_dir`, or names who holds it. The file's text
/// (who holds it) is written by [`OutLock::record_holder`], once the run
/// is sure to go ahead, so a run refused by its checks changes nothing.
pub fn lock_out(out_dir: &Path) -> Result<OutLock, LockError> {
    let path = out_dir.join(".lock");
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(failed("open", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(OutLock { file, path }),
        Err(fs::TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(&path)
                .unwrap_or_default()
                .trim()
                .to_string();
            Err(LockError::Held { lock: path, holder })
        }
        Err(fs::TryLockError::Error(e)) => Err(failed("lock", &path)(e).into()),
    }
}

impl OutLock {
    /// Writes who holds the lock (pid and start time) into the lock file,
    /// for a second run to name.
    pub fn record_holder(&mut self) -> Result<(), FileError> {
        use std::io::Seek;
        let holder = format!(
            "pid {} since {}\n",
            std::process::id(),
            chrono::Utc::now().to_rfc3339()
        );
        self.file
            .set_len(0)
            .and_then(|()| self.file.rewind())
            .and_then(|()| self.file.write_all(holder.as_bytes()))
            .map_err(failed("write", &self.path))
    }
}

/// Serialises a DataFrame to parquet bytes (zstd, statistics on).
pub fn parquet_bytes(df: &mut DataFrame) -> PolarsResult<Vec<u8>> {
    parquet_bytes_compressed(df, ParquetCompression::Zstd(None))
}

fn parquet_bytes_compressed(
    df: &mut DataFrame,
    compression: ParquetCompression,
) -> PolarsResult<Vec<u8>> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(compression)
        .finish(df)?;
    Ok(buf)
}

/// A parquet file that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    #[error("cannot encode `{path}` as parquet: {source}")]
    Encode { path: PathBuf, source: PolarsError },
    #[error(transparent)]
    File(#[from] FileError),
}

/// Writes a DataFrame as parquet to `path`, atomically (zstd).
pub fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<(), ParquetError> {
    write_parquet_compressed(path, df, ParquetCompression::Zstd(None))
}

/// Writes one of faktura's own caches (the day sums under `aggregates/`)
/// as parquet to `path`, atomically, with snappy: written by every ingest
/// and read by every month end, where zstd was 3 % of ingest for files a
/// third smaller.
pub fn write_cache_parquet(path: &Path, df: &mut DataFrame) -> Result<(), ParquetError> {
    write_parquet_compressed(path, df, ParquetCompression::Snappy)
}

fn write_parquet_compressed(
    path: &Path,
    df: &mut DataFrame,
    compression: ParquetCompression,
) -> Result<(), ParquetError> {
    let bytes =
        parquet_bytes_compressed(df, compression).map_err(|source| ParquetError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    write_atomic(path, &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Temporaries at any depth go; other files stay, dot-files too; a
    /// symbolic link to a folder is not followed out of OUT.
    #[cfg(unix)]
    #[test]
    fn the_sweep_removes_temporaries_at_any_depth_and_nothing_else() {
        let out = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let deep = out.path().join("outbox/INV-00000001/reminder-1");
        fs::create_dir_all(&deep).unwrap();
        let temporaries = [
            out.path().join(".ledger.sqlite.tmp-7"),
            deep.join(".ann@example.com.eml.tmp-4242"),
        ];
        let kept = [
            out.path().join(".hidden"),
            deep.join("ann@example.com.eml"),
            out.path().join("tmp-notes.txt"),
        ];
        for file in temporaries.iter().chain(&kept) {
            fs::write(file, b"x").unwrap();
        }
        let elsewhere = outside.path().join(".report.csv.tmp-9");
        fs::write(&elsewhere, b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), out.path().join("linked")).unwrap();

        assert_eq!(sweep_temporaries(out.path()).unwrap(), 2);
        assert!(temporaries.iter().all(|t| !t.exists()));
        assert!(kept.iter().all(|k| k.exists()));
        assert!(elsewhere.exists(), "a link is not followed");
        assert_eq!(sweep_temporaries(&out.path().join("missing")).unwrap(), 0);
    }
}
