//! Where DATA is read from (SPEC §2): a local folder, or an object store
//! (`s3://`, `az://`, `gs://`) whose objects are read as a folder's files.
//!
//! A store's reference files (its top-level `*.csv` objects) and
//! `faktura.toml` are small: they are copied
//! into a private temporary folder for the command and read from there by
//! the same code as a folder's. Its usage files (only keys directly under
//! `usage/`) are listed once, with ETag and size, and streamed from the
//! store into ingest when their day is read; an object whose ETag and size
//! are those recorded is not read again.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::model::Stamp;
use crate::parse::parse_iso_date;
use crate::remote::{self, Remote, RemoteError, RemoteObject};
use crate::store;

/// Whether a top-level object of a store is one DATA's readers may read:
/// a reference file (`*.csv`) or `faktura.toml`.
fn is_reference_file(key: &str) -> bool {
    key.ends_with(".csv") || key == "faktura.toml"
}

/// DATA, opened: a folder the reference files are read from, and the
/// usage files.
#[derive(Debug)]
pub struct Data {
    dir: PathBuf,
    usage: UsageSource,
    /// A store's reference files, removed when the command ends.
    _staged: Option<TemporaryFolder>,
}

impl Data {
    /// Opens DATA at `location`: a folder as it is; a store URL is listed
    /// (its reference files copied, its usage objects listed), so a store
    /// that cannot be reached, authenticated or listed fails here.
    pub fn open(location: &Path) -> Result<Data, RemoteError> {
        let text = location.to_string_lossy();
        if !remote::is_store_url(&text) {
            return Ok(Data {
                dir: location.to_path_buf(),
                usage: UsageSource::Folder(location.to_path_buf()),
                _staged: None,
            });
        }
        let remote = Remote::open(&text)?;
        let staged = TemporaryFolder::create()?;
        for object in remote.list("")? {
            if is_reference_file(&object.key) {
                remote.download(
                    &object.key,
                    object.etag.as_deref(),
                    &staged.path.join(&object.key),
                )?;
            }
        }
        let usage = StoreUsage::list(remote)?;
        Ok(Data {
            dir: staged.path.clone(),
            usage: UsageSource::Store(usage),
            _staged: Some(staged),
        })
    }

    /// The folder the reference files and `faktura.toml` are read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn usage(&self) -> &UsageSource {
        &self.usage
    }
}

/// The usage files of DATA, listed by day; ingest reads them through this.
#[derive(Debug)]
pub enum UsageSource {
    /// `DATA/usage` on a local file system.
    Folder(PathBuf),
    /// `usage/` in an object store.
    Store(StoreUsage),
}

/// The usage files of DATA/usage, grouped by the day their name starts with.
pub struct UsageListing {
    pub days: BTreeMap<NaiveDate, Vec<PathBuf>>,
    pub ignored: Vec<String>,
}

impl UsageSource {
    /// What usage files' paths are relative to: the folder, or the store's
    /// URL (`s3://bucket/prefix`) taken as a path, so a file's path names
    /// its object in messages.
    pub fn root(&self) -> &Path {
        match self {
            UsageSource::Folder(dir) => dir,
            UsageSource::Store(usage) => &usage.root,
        }
    }

    /// A file's path relative to DATA (`usage/2026-11-01.csv`).
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(self.root())
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/")
    }

    /// `YYYY-MM-DD*.csv` and `.csv.gz` files of `usage/`, by day.
    pub fn list(&self) -> Result<UsageListing, store::FileError> {
        let mut listing = UsageListing {
            days: BTreeMap::new(),
            ignored: Vec::new(),
        };
        let names: Vec<(String, PathBuf)> = match self {
            UsageSource::Folder(dir) => list_folder(dir)?,
            UsageSource::Store(usage) => usage
                .objects
                .keys()
                .map(|path| (file_name(path), path.clone()))
                .collect(),
        };
        for (name, path) in names {
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

    /// A file's stamp as listed: size and modification time for a local
    /// file, size and ETag for an object.
    pub fn stamp(&self, path: &Path) -> Result<Stamp, store::FileError> {
        match self {
            UsageSource::Folder(_) => {
                let metadata = std::fs::metadata(path).map_err(store::failed("read", path))?;
                Ok(Stamp::of_file(&metadata))
            }
            UsageSource::Store(usage) => Ok(usage.stamp(path)),
        }
    }

    /// A reader of the file's contents (a `.gz` decompressed) and its
    /// stamp when opened. An object gone since it was listed, or replaced,
    /// is `NotFound`.
    pub fn open(&self, path: &Path) -> std::io::Result<(Box<dyn Read + Send>, Stamp)> {
        let (raw, stamp) = self.open_raw(path)?;
        if path.extension().is_some_and(|e| e == "gz") {
            let decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(raw));
            return Ok((Box::new(decoder), stamp));
        }
        Ok((raw, stamp))
    }

    /// A reader of the file's own bytes and its stamp when opened.
    pub fn open_raw(&self, path: &Path) -> std::io::Result<(Box<dyn Read + Send>, Stamp)> {
        match self {
            UsageSource::Folder(_) => {
                let file = std::fs::File::open(path)?;
                let metadata = file.metadata()?;
                read_ahead(&file);
                Ok((Box::new(file), Stamp::of_file(&metadata)))
            }
            UsageSource::Store(usage) => {
                let stamp = usage.stamp(path);
                let key = self.relative(path);
                let reader = usage.remote.reader(&key, stamp.etag.as_deref())?;
                Ok((Box::new(reader), stamp))
            }
        }
    }
}

/// Asks the kernel to read the whole file into the page cache in the
/// background, so a file the cache has dropped (a nightly job's) is read
/// from disk while its first blocks are parsed, not block by block between
/// parses. A hint: nothing changes if it is not taken.
fn read_ahead(file: &std::fs::File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: posix_fadvise only advises the kernel about this open file.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// The regular files of `DATA/usage` (a symbolic link to one is read like
/// any other; one gone since it was listed is not there).
fn list_folder(data_dir: &Path) -> Result<Vec<(String, PathBuf)>, store::FileError> {
    let mut files = Vec::new();
    for path in store::list_dir(&data_dir.join("usage"))? {
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => {}
            Ok(_) => continue,
            Err(reason) if reason.kind() == std::io::ErrorKind::NotFound => continue,
            Err(reason) => return Err(store::failed("inspect", &path)(reason)),
        }
        files.push((file_name(&path), path));
    }
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The usage objects of a store, as listed when DATA was opened.
pub struct StoreUsage {
    remote: Remote,
    /// The store's URL as a path; objects' paths are below it.
    root: PathBuf,
    objects: HashMap<PathBuf, RemoteObject>,
}

impl std::fmt::Debug for StoreUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} usage objects)",
            self.remote.url(),
            self.objects.len()
        )
    }
}

impl StoreUsage {
    fn list(remote: Remote) -> Result<StoreUsage, RemoteError> {
        let root = PathBuf::from(remote.url());
        let objects = remote
            .list("usage")?
            .into_iter()
            .map(|object| (root.join(&object.key), object))
            .collect();
        Ok(StoreUsage {
            remote,
            root,
            objects,
        })
    }

    fn stamp(&self, path: &Path) -> Stamp {
        let object = self.objects.get(path);
        Stamp {
            size: object.map_or(0, |o| o.size),
            modified_ns: None,
            etag: object.and_then(|o| o.etag.clone()),
        }
    }
}

/// A private folder under the system's temporary folder, removed on drop.
#[derive(Debug)]
struct TemporaryFolder {
    path: PathBuf,
}

impl TemporaryFolder {
    fn create() -> Result<TemporaryFolder, RemoteError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("faktura-data-{}-{nanos:09}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|source| RemoteError::Local {
            action: "create",
            path: path.display().to_string(),
            cause: source,
        })?;
        Ok(TemporaryFolder { path })
    }
}

impl Drop for TemporaryFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
