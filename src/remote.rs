//! Object stores (S3, Azure Blob Storage, GCS) through the `object_store`
//! crate: DATA read from an `s3://`, `az://` or `gs://` URL (SPEC §2) and
//! OUT's tables published to one (`[publish]`, SPEC §8).
//!
//! Credentials, account and endpoint come from the environment as the
//! crate's `from_env` builders read them. The clients are async and
//! faktura is not: every call runs on one small tokio runtime, and an
//! object is read as a stream of chunks a blocking [`Read`] hands on, so a
//! large object is never held in memory whole. Uploads are whole or
//! absent: one `PUT`, or a multipart upload completed only at its end.

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

/// Errors of the object-store layer, each naming the URL.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("`{url}` is not an object-store URL faktura reads ({reason})")]
    BadUrl { url: String, reason: String },
    /// The store's own error, with its causes, is in the message (and not
    /// a source of its own: object_store's errors repeat their causes).
    #[error("cannot {action} `{url}`: {}{hint}", causes(cause.as_ref()))]
    Store {
        action: &'static str,
        url: String,
        cause: Box<object_store::Error>,
        /// What the environment lacks, when that is the likely cause.
        hint: String,
    },
    #[error("cannot {action} `{path}`: {cause}")]
    Local {
        action: &'static str,
        path: String,
        cause: std::io::Error,
    },
}

/// The URL schemes DATA and `[publish] to` may use.
const SCHEMES: &[&str] = &["s3", "az", "gs"];

/// Whether `location` is an object-store URL rather than a local path.
pub fn is_store_url(location: &str) -> bool {
    url_scheme(location).is_some_and(|scheme| SCHEMES.contains(&scheme))
}

/// The scheme of `location` when it is written as a URL (`scheme://…`, the
/// scheme a letter then letters, digits, `+`, `-` or `.`, RFC 3986 §3.1),
/// whether or not faktura can read it.
pub fn url_scheme(location: &str) -> Option<&str> {
    let (scheme, _) = location.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    valid.then_some(scheme)
}

/// An object listed in a store, its key relative to the store's prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteObject {
    /// The key below the prefix, `/`-separated (`usage/2026-11-01.csv`).
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
}

/// A bucket or container and a prefix in it.
#[derive(Clone)]
pub struct Remote {
    /// The URL as given, without a trailing `/`.
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl Remote {
    /// A client for `url` (`s3://bucket/prefix`, `az://container/prefix`,
    /// `gs://bucket/prefix`), configured from the environment. Nothing is
    /// contacted yet.
    pub fn open(url: &str) -> Result<Remote, RemoteError> {
        let url = url.trim_end_matches('/').to_string();
        let bad = |reason: &str| RemoteError::BadUrl {
            url: url.clone(),
            reason: reason.into(),
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket or container"));
        }
        let prefix = ObjectPath::parse(prefix).map_err(|e| bad(&e.to_string()))?;
        let built = build_store(scheme, bucket).map_err(|source| match source {
            BuildError::Scheme => bad("the scheme is not s3, az or gs"),
            BuildError::Store(cause) => RemoteError::Store {
                action: "configure a client for",
                url: url.clone(),
                cause: Box::new(cause),
                hint: credentials_hint(scheme),
            },
        })?;
        Ok(Remote {
            url,
            store: built,
            prefix,
        })
    }

    fn error(&self, action: &'static str, key: &str, cause: object_store::Error) -> RemoteError {
        RemoteError::Store {
            action,
            url: self.url_of(key).trim_end_matches('/').to_string(),
            cause: Box::new(cause),
            hint: credentials_hint(self.url.split("://").next().unwrap_or_default()),
        }
    }

    /// The URL as given (without a trailing `/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of the object at `key`.
    pub fn url_of(&self, key: &str) -> String {
        format!("{}/{key}", self.url)
    }

    /// The object path of `key`, its characters as they are: a listed key
    /// such as `usage/2026-10-02 export ø%.csv` is read back under that
    /// same key. (object_store's `join` percent-encodes `%`, `#`, non-ASCII
    /// and more, which names another key.) Only a key `parse` refuses
    /// (control characters, `.` or `..` parts) is encoded.
    fn location(&self, key: &str) -> ObjectPath {
        let parts: Vec<&str> = key.split('/').filter(|part| !part.is_empty()).collect();
        let joined = std::iter::once(self.prefix.as_ref())
            .filter(|prefix| !prefix.is_empty())
            .chain(parts.iter().copied())
            .collect::<Vec<_>>()
            .join("/");
        ObjectPath::parse(&joined).unwrap_or_else(|_| {
            parts
                .iter()
                .fold(self.prefix.clone(), |path, part| path.join(*part))
        })
    }

    /// The objects directly in `folder` (`""`: at the prefix itself), by
    /// key; deeper keys are not listed.
    pub fn list(&self, folder: &str) -> Result<Vec<RemoteObject>, RemoteError> {
        let location = self.location(folder);
        let listed = block_on(self.store.list_with_delimiter(Some(&location)));
        let listed = listed.map_err(|cause| self.error("list", folder, cause))?;
        let mut objects: Vec<RemoteObject> = listed
            .objects
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?.to_string();
                let key = match folder.trim_matches('/') {
                    "" => name,
                    folder => format!("{folder}/{name}"),
                };
                Some(RemoteObject {
                    key,
                    size: meta.size,
                    etag: meta.e_tag,
                })
            })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// A stream of the object's bytes, read as it goes; with `etag`, only
    /// the version listed (a replaced object fails to open).
    pub fn reader(&self, key: &str, etag: Option<&str>) -> std::io::Result<ObjectReader> {
        let location = self.location(key);
        let options = GetOptions::new().with_if_match(etag);
        let store = Arc::clone(&self.store);
        let got = block_on(async move { store.get_opts(&location, options).await })
            .map_err(|e| as_io_error(e, &self.url_of(key)))?;
        // The chunks in flight, so the download runs ahead of the parse:
        // up to ~130 MB more than reading a file (a 1 GB object: 530 MB
        // peak against 402 MB); 32 or 128 made a month 10-20 % slower
        // (benches/README.md).
        let (chunks, receiver) = tokio::sync::mpsc::channel(256);
        runtime().spawn(async move {
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.next().await {
                if chunks.send(chunk).await.is_err() {
                    break;
                }
            }
        });
        Ok(ObjectReader {
            url: self.url_of(key),
            receiver,
            current: Bytes::new(),
        })
    }

    /// Copies the object at `key` to `to`, through a temporary file renamed
    /// into place.
    pub fn download(&self, key: &str, etag: Option<&str>, to: &Path) -> Result<(), RemoteError> {
        let mut reader = self.reader(key, etag).map_err(|cause| RemoteError::Local {
            action: "read",
            path: self.url_of(key),
            cause,
        })?;
        let local = |action, cause| RemoteError::Local {
            action,
            path: to.display().to_string(),
            cause,
        };
        let temporary = to.with_extension("download-tmp");
        let mut file = std::fs::File::create(&temporary).map_err(|e| local("create", e))?;
        std::io::copy(&mut reader, &mut file).map_err(|e| local("write", e))?;
        drop(file);
        std::fs::rename(&temporary, to).map_err(|e| local("rename into", e))
    }

    /// Uploads the local file `from` as `key`, whole or not at all.
    pub fn upload(&self, key: &str, from: &Path) -> Result<(), RemoteError> {
        let local = |action, cause| RemoteError::Local {
            action,
            path: from.display().to_string(),
            cause,
        };
        let store_error = |cause| self.error("upload to", key, cause);
        let location = self.location(key);
        let mut file = std::fs::File::open(from).map_err(|e| local("open", e))?;
        let size = file.metadata().map_err(|e| local("read", e))?.len();
        if size <= UPLOAD_PART_BYTES as u64 {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes).map_err(|e| local("read", e))?;
            block_on(self.store.put(&location, PutPayload::from(bytes))).map_err(store_error)?;
            return Ok(());
        }
        // The parts are uploaded by tasks the writer spawns on the runtime.
        let _runtime = runtime().enter();
        let upload = block_on(self.store.put_multipart(&location)).map_err(store_error)?;
        let mut parts =
            object_store::WriteMultipart::new_with_chunk_size(upload, UPLOAD_PART_BYTES);
        let mut block = vec![0; UPLOAD_PART_BYTES];
        loop {
            let n = match file.read(&mut block) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = block_on(parts.abort());
                    return Err(local("read", e));
                }
            };
            if let Err(e) = block_on(parts.wait_for_capacity(2)) {
                return Err(store_error(e));
            }
            parts.write(&block[..n]);
        }
        block_on(parts.finish()).map_err(store_error)?;
        Ok(())
    }

    /// Deletes the object at `key`; one already gone is not an error.
    pub fn delete(&self, key: &str) -> Result<(), RemoteError> {
        match block_on(self.store.delete(&self.location(key))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(cause) => Err(self.error("delete", key, cause)),
        }
    }
}

/// Files up to this size are uploaded in one request; larger ones in
/// parts of this size (S3 wants parts of at least 5 MiB).
const UPLOAD_PART_BYTES: usize = 8 << 20;

/// An error and those of its causes its own text does not already say
/// (object_store's messages repeat some and leave out others, such as a
/// refused connection).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let said = e.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        cause = e.source();
    }
    text
}

/// A hint when the environment names no credentials for `scheme`'s store
/// (the client then asks the cloud's metadata service, which fails off it).
fn credentials_hint(scheme: &str) -> String {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let missing = match scheme {
        "s3" if !set("AWS_ACCESS_KEY_ID") && !set("AWS_WEB_IDENTITY_TOKEN_FILE") => {
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        }
        "az" if !set("AZURE_STORAGE_ACCOUNT_KEY")
            && !set("AZURE_STORAGE_USE_EMULATOR")
            && !set("AZURE_FEDERATED_TOKEN_FILE") =>
        {
            "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY"
        }
        "gs" if !set("GOOGLE_SERVICE_ACCOUNT") && !set("GOOGLE_APPLICATION_CREDENTIALS") => {
            "GOOGLE_SERVICE_ACCOUNT"
        }
        _ => return String::new(),
    };
    format!(" (no credentials in the environment: set {missing})")
}

enum BuildError {
    Scheme,
    Store(object_store::Error),
}

/// The client for one bucket or container. Retries are few and short, so
/// a store that is down fails the run within seconds, not minutes.
fn build_store(scheme: &str, bucket: &str) -> Result<Arc<dyn ObjectStore>, BuildError> {
    let retry = RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let store: Arc<dyn ObjectStore> = match scheme {
        "s3" => Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry)
                .build()
                .map_err(BuildError::Store)?,
        ),
        "az" => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_container_name(bucket)
                .with_retry(retry)
                .build()
                .map_err(BuildError::Store)?,
        ),
        "gs" => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry)
                .build()
                .map_err(BuildError::Store)?,
        ),
        _ => return Err(BuildError::Scheme),
    };
    Ok(store)
}

/// An object's bytes as they arrive.
pub struct ObjectReader {
    url: String,
    receiver: tokio::sync::mpsc::Receiver<object_store::Result<Bytes>>,
    current: Bytes,
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(as_io_error(e, &self.url)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A store error as an I/O error of the object at `url`: an object gone
/// (or replaced since it was listed) is `NotFound`.
fn as_io_error(error: object_store::Error, url: &str) -> std::io::Error {
    let kind = match &error {
        object_store::Error::NotFound { .. } | object_store::Error::Precondition { .. } => {
            std::io::ErrorKind::NotFound
        }
        _ => std::io::ErrorKind::Other,
    };
    std::io::Error::new(kind, format!("{url}: {error}"))
}

/// The runtime every store call runs on, started when first needed.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("faktura-store")
            .enable_all()
            .build()
            .expect("a tokio runtime starts")
    })
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_are_told_from_paths() {
        assert!(is_store_url("s3://bucket/prefix"));
        assert!(is_store_url("az://container"));
        assert!(is_store_url("gs://bucket/a/b"));
        assert!(!is_store_url("/var/lib/faktura/data"));
        assert!(!is_store_url("data"));
        assert!(!is_store_url("http://example.com/data"));
        assert!(!is_store_url("s3:/bucket"));
        assert_eq!(url_scheme("http://example.com/data"), Some("http"));
        assert_eq!(url_scheme("./s3://bucket"), None);
    }

    #[test]
    fn keys_are_placed_under_the_prefix() {
        let remote = Remote::open("s3://exports/billing/daily/").unwrap();
        assert_eq!(remote.url(), "s3://exports/billing/daily");
        assert_eq!(
            remote.location("usage/2026-11-01.csv").as_ref(),
            "billing/daily/usage/2026-11-01.csv"
        );
        assert_eq!(
            remote.url_of("usage/2026-11-01.csv"),
            "s3://exports/billing/daily/usage/2026-11-01.csv"
        );
        let bare = Remote::open("s3://exports").unwrap();
        assert_eq!(bare.location("profiles.csv").as_ref(), "profiles.csv");
        let odd = "usage/2026-10-02 export (copy) ø%#[1].csv";
        assert_eq!(
            bare.location(odd).as_ref(),
            odd,
            "listed keys read back as they are"
        );
        assert_eq!(bare.location("usage/a\u{1}b").as_ref(), "usage/a%01b");
    }

    #[test]
    fn a_url_without_a_bucket_is_refused() {
        let error = Remote::open("s3:///prefix").unwrap_err();
        assert!(error.to_string().contains("s3:///prefix"), "{error}");
        assert!(matches!(error, RemoteError::BadUrl { .. }));
    }
}
