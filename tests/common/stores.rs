//! Real object stores for the tests: moto's S3 server (`moto_server`, PyPI
//! `moto[server]`) and Azure's own emulator (`azurite-blob`, npm
//! `azurite`), each started on 127.0.0.1 by the test that needs it and
//! stopped when it ends. Buckets and containers are created over plain
//! HTTP (moto takes an unsigned `PUT`; Azurite a request signed with its
//! published development key); objects are put with the `object_store`
//! crate, the client faktura uses, configured here independently of it.
//!
//! `.ci/run` installs both servers. Where one is missing the test says so
//! and passes, unless `FAKTURA_REQUIRE_STORES=1` (set by `.ci/run`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// Azurite's well-known development account and key (published by Microsoft).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Which kind of store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    S3,
    Azure,
}

/// A running store server, stopped on drop.
pub struct StoreServer {
    pub kind: Kind,
    pub port: u16,
    child: Child,
    _workdir: tempfile::TempDir,
}

impl Drop for StoreServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server of `kind`, or `None` (with a note on stderr) when it is
/// not installed and `.ci/run` did not require it.
pub fn start(kind: Kind) -> Option<StoreServer> {
    let program = match kind {
        Kind::S3 => "moto_server",
        Kind::Azure => "azurite-blob",
    };
    if !on_path(program) {
        let required = std::env::var("FAKTURA_REQUIRE_STORES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{program} is not installed (bash .ci/run installs it)"
        );
        eprintln!(
            "note: {program} is not installed; this store test did not run (bash .ci/run installs it)"
        );
        return None;
    }
    let port = free_port();
    let workdir = tempfile::tempdir().unwrap();
    let mut command = Command::new(program);
    match kind {
        Kind::S3 => command.args(["-H", "127.0.0.1", "-p", &port.to_string()]),
        Kind::Azure => command.args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--location",
            workdir.path().to_str().unwrap(),
            "--silent",
            "--skipApiVersionCheck",
        ]),
    };
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let server = StoreServer {
        kind,
        port,
        child,
        _workdir: workdir,
    };
    server.wait_until_listening();
    Some(server)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl StoreServer {
    fn wait_until_listening(&self) {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the {:?} server did not listen on {} within a minute",
                self.kind,
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The environment faktura (and [`StoreServer::client`]) read the
    /// store's endpoint and credentials from.
    pub fn env(&self) -> Vec<(String, String)> {
        let endpoint = format!("http://127.0.0.1:{}", self.port);
        let pairs: Vec<(&str, String)> = match self.kind {
            Kind::S3 => vec![
                ("AWS_ACCESS_KEY_ID", "test".into()),
                ("AWS_SECRET_ACCESS_KEY", "test".into()),
                ("AWS_REGION", "us-east-1".into()),
                ("AWS_ENDPOINT", endpoint),
                ("AWS_ALLOW_HTTP", "true".into()),
            ],
            Kind::Azure => vec![
                ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
                ("AZURITE_BLOB_STORAGE_URL", endpoint),
            ],
        };
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// The URL of `bucket`/`prefix` in this store.
    pub fn url(&self, bucket: &str, prefix: &str) -> String {
        let scheme = match self.kind {
            Kind::S3 => "s3",
            Kind::Azure => "az",
        };
        format!("{scheme}://{bucket}/{prefix}")
    }

    /// Creates a bucket (S3) or container (Azure).
    pub fn create_bucket(&self, bucket: &str) {
        let status = match self.kind {
            Kind::S3 => self.http("PUT", &format!("/{bucket}"), &[]),
            Kind::Azure => {
                let date = chrono::Utc::now()
                    .format("%a, %d %b %Y %H:%M:%S GMT")
                    .to_string();
                let version = "2021-08-06";
                let resource =
                    format!("/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{bucket}\nrestype:container");
                let to_sign = format!(
                    "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}"
                );
                let authorization = format!(
                    "SharedKey {AZURITE_ACCOUNT}:{}",
                    sign(AZURITE_KEY, &to_sign)
                );
                self.http(
                    "PUT",
                    &format!("/{AZURITE_ACCOUNT}/{bucket}?restype=container"),
                    &[
                        ("x-ms-date", &date),
                        ("x-ms-version", version),
                        ("Authorization", &authorization),
                    ],
                )
            }
        };
        assert!(
            (200..300).contains(&status),
            "creating {bucket} answered {status}"
        );
    }

    /// One HTTP/1.1 request without a body; the status code.
    fn http(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> u16 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n",
            self.port
        );
        for (name, value) in headers {
            request += &format!("{name}: {value}\r\n");
        }
        request += "\r\n";
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {response:?}"))
    }

    /// A client of `bucket` (no prefix), configured like faktura's.
    pub fn client(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        let env = self.env();
        let get = |name: &str| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        match self.kind {
            Kind::S3 => Arc::new(
                object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_access_key_id(get("AWS_ACCESS_KEY_ID"))
                    .with_secret_access_key(get("AWS_SECRET_ACCESS_KEY"))
                    .with_region(get("AWS_REGION"))
                    .with_endpoint(get("AWS_ENDPOINT"))
                    .with_allow_http(true)
                    .build()
                    .unwrap(),
            ),
            // The emulator's account, addressed by endpoint (the builder's
            // emulator mode reads its URL from this process's environment).
            Kind::Azure => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::new()
                    .with_container_name(bucket)
                    .with_account(AZURITE_ACCOUNT)
                    .with_access_key(AZURITE_KEY)
                    .with_endpoint(format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.port))
                    .with_allow_http(true)
                    .build()
                    .unwrap(),
            ),
        }
    }

    /// Copies every file under `dir` to `bucket` under `prefix`.
    pub fn upload_dir(&self, bucket: &str, prefix: &str, dir: &Path) {
        let client = self.client(bucket);
        for file in super::files_under(dir) {
            let key = format!(
                "{prefix}/{}",
                file.strip_prefix(dir).unwrap().to_string_lossy()
            );
            put(&client, &key, std::fs::read(&file).unwrap());
        }
    }

    /// Every object in `bucket` under `prefix`, by key below it, with its bytes.
    pub fn download_all(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> std::collections::BTreeMap<String, Vec<u8>> {
        let client = self.client(bucket);
        let runtime = runtime();
        runtime.block_on(async {
            use futures::TryStreamExt;
            let listed: Vec<_> = client
                .list(Some(&ObjectPath::from(prefix)))
                .try_collect()
                .await
                .unwrap();
            let mut objects = std::collections::BTreeMap::new();
            for meta in listed {
                let bytes = client
                    .get(&meta.location)
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                let key = meta.location.as_ref()[prefix.len() + 1..].to_string();
                objects.insert(key, bytes.to_vec());
            }
            objects
        })
    }
}

/// Puts `bytes` at `key`.
pub fn put(client: &Arc<dyn ObjectStore>, key: &str, bytes: Vec<u8>) {
    runtime()
        .block_on(client.put(&ObjectPath::parse(key).unwrap(), PutPayload::from(bytes)))
        .unwrap();
}

/// How many objects `client`'s bucket holds under `prefix`.
pub fn count(client: &Arc<dyn ObjectStore>, prefix: &str) -> usize {
    use futures::StreamExt;
    runtime().block_on(client.list(Some(&ObjectPath::from(prefix))).count())
}

/// Deletes the object at `key`.
pub fn delete(client: &Arc<dyn ObjectStore>, key: &str) {
    runtime()
        .block_on(client.delete(&ObjectPath::parse(key).unwrap()))
        .unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Base64 of HMAC-SHA256 of `text` under the base64 `key` (Azure SharedKey).
fn sign(key: &str, text: &str) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &engine.decode(key).unwrap());
    engine.encode(ring::hmac::sign(&key, text.as_bytes()).as_ref())
}
