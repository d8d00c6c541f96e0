//! DATA in an object store and `[publish]` (SPEC §2, §8), against real
//! servers the tests start: moto's S3 server and Azure's emulator Azurite.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::stores::{self, Kind, StoreServer};
use crate::common::{
    faktura_env, files_under, ingest_shards_at_once, run_args, sample_copy, snapshot,
};

/// OUT's files but the ledger, the lock and the run summaries.
fn outputs(out: &Path) -> BTreeMap<String, Vec<u8>> {
    snapshot(out)
}

/// OUT's files under the folders `[publish]` mirrors.
fn published(out: &Path) -> BTreeMap<String, Vec<u8>> {
    outputs(out)
        .into_iter()
        .filter(|(k, _)| faktura::publish::FOLDERS.contains(&k.split('/').next().unwrap()))
        .collect()
}

/// Adds `[publish] to = URL` to DATA's faktura.toml (made if absent).
fn publish_to(data: &Path, url: &str) {
    let config = data.join("faktura.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap_or_default();
    toml += &format!("\n[publish]\nto = \"{url}\"\n");
    std::fs::write(&config, toml).unwrap();
}

/// The store's environment with its endpoint moved to a port nobody
/// listens on: the store is down.
fn env_with_store_down(server: &StoreServer) -> Env {
    let mut env = server.env();
    for (k, v) in &mut env {
        if k == "AWS_ENDPOINT" {
            *v = format!("http://127.0.0.1:{}", free_port());
        }
    }
    env
}

/// `faktura run` with the store's environment; exit code and stderr.
fn run_with(
    server: &StoreServer,
    data: &str,
    out: &Path,
    as_of: &str,
    extra: &[&str],
) -> (i32, String) {
    let mut args = run_args(Path::new(data), out, as_of);
    args.extend_from_slice(extra);
    faktura_env(&args, &server.env())
}

/// The sample with a stray nested key and a stray name in usage/, which
/// a folder and a store both leave alone, and a day's file under a name
/// with spaces, `%`, `#`, brackets and a non-ASCII letter.
fn sample_with_strays() -> tempfile::TempDir {
    let data = sample_copy();
    let usage = data.path().join("usage");
    std::fs::create_dir_all(usage.join("archive")).unwrap();
    std::fs::copy(
        usage.join("2026-10-01.csv"),
        usage.join("archive/2026-10-01.csv"),
    )
    .unwrap();
    std::fs::write(usage.join("README.txt"), "exports land here\n").unwrap();
    // A name with characters object_store would percent-encode in a path.
    std::fs::rename(
        usage.join("2026-10-02.csv"),
        usage.join("2026-10-02 export (copy) ø%#[1].csv"),
    )
    .unwrap();
    data
}

/// The sample run from a local folder and from the store, on two nights
/// (the second issues the credit note dated 2027-01-05 and a reminder):
/// every output file is byte for byte the same; a third run reads nothing
/// again.
fn runs_from_the_store_equal_the_local_run(kind: Kind) {
    let Some(server) = stores::start(kind) else {
        return;
    };
    server.create_bucket("exports");
    let data = sample_with_strays();
    server.upload_dir("exports", "billing/daily", data.path());
    let url = server.url("exports", "billing/daily");
    let (local_out, store_out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for as_of in ["2026-12-05", "2027-01-10"] {
        let local = data.path().to_str().unwrap();
        let (local_code, local_log) = run_with(&server, local, local_out.path(), as_of, &[]);
        let (store_code, store_log) = run_with(&server, &url, store_out.path(), as_of, &[]);
        assert_eq!(local_code, 3, "{local_log}");
        assert_eq!(store_code, local_code, "{store_log}");
        let (local_files, store_files) = (outputs(local_out.path()), outputs(store_out.path()));
        assert!(local_files.keys().any(|k| k.starts_with("einvoice/")));
        assert_eq!(
            local_files.keys().collect::<Vec<_>>(),
            store_files.keys().collect::<Vec<_>>()
        );
        for (path, bytes) in &local_files {
            assert!(
                store_files[path] == *bytes,
                "{path} differs ({kind:?}, {as_of})"
            );
        }
    }
    // Nothing changed in the store: no day is read again.
    let (code, log) = run_with(&server, &url, store_out.path(), "2027-01-10", &[]);
    assert_eq!(code, 3, "{log}");
    assert!(log.contains("0 days ingested, 61 unchanged"), "{log}");
    // The same bytes uploaded again: Azure gives the blob a new ETag, so its
    // day is read and ingested again; S3's ETag of one PUT is the bytes'
    // MD5, the same, so nothing is read. OUT is the same either way.
    let before = outputs(store_out.path());
    let day = "usage/2026-10-07.csv";
    let bytes = std::fs::read(data.path().join(day)).unwrap();
    stores::put(
        &server.client("exports"),
        &format!("billing/daily/{day}"),
        bytes,
    );
    let (code, log) = run_with(&server, &url, store_out.path(), "2027-01-10", &[]);
    assert_eq!(code, 3, "{log}");
    let expected = match kind {
        Kind::Azure => "1 days ingested, 60 unchanged",
        Kind::S3 => "0 days ingested, 61 unchanged",
    };
    assert!(log.contains(expected), "{log}");
    assert!(outputs(store_out.path()) == before);
}

#[test]
fn runs_from_s3_equal_the_local_run() {
    runs_from_the_store_equal_the_local_run(Kind::S3);
}

#[test]
fn runs_from_azurite_equal_the_local_run() {
    runs_from_the_store_equal_the_local_run(Kind::Azure);
}

/// A re-uploaded object (new ETag and bytes) re-ingests its day alone; a
/// gzip object is read through; an unchanged one is not read again.
#[test]
fn a_reuploaded_object_reingests_its_day() {
    let Some(server) = stores::start(Kind::S3) else {
        return;
    };
    server.create_bucket("exports");
    let data = sample_copy();
    // One day as .csv.gz, as exports are often compressed.
    let day3 = data.path().join("usage/2026-10-03.csv");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &std::fs::read(&day3).unwrap()).unwrap();
    std::fs::write(day3.with_extension("csv.gz"), gz.finish().unwrap()).unwrap();
    std::fs::remove_file(&day3).unwrap();
    server.upload_dir("exports", "data", data.path());
    let url = server.url("exports", "data");
    let out = tempfile::tempdir().unwrap();
    let (code, log) = run_with(&server, &url, out.path(), "2026-11-20", &[]);
    assert_eq!(code, 3, "{log}");
    assert!(log.contains("61 days ingested, 0 unchanged"), "{log}");
    // (The sample's rejected payments and preference changes stay: exit 3.)
    let (code, log) = run_with(&server, &url, out.path(), "2026-11-20", &[]);
    assert_eq!(code, 3, "{log}");
    assert!(log.contains("0 days ingested, 61 unchanged"), "{log}");

    // 2026-10-05 re-exported with one more row.
    let day5 = data.path().join("usage/2026-10-05.csv");
    let mut text = std::fs::read_to_string(&day5).unwrap();
    let last = text.lines().last().unwrap().to_string();
    text += &format!("{last}\n");
    std::fs::write(&day5, &text).unwrap();
    let client = server.client("exports");
    stores::put(&client, "data/usage/2026-10-05.csv", text.into_bytes());
    let (code, log) = run_with(&server, &url, out.path(), "2026-11-20", &[]);
    assert_eq!(code, 3, "{log}");
    assert!(log.contains("1 days ingested, 60 unchanged"), "{log}");

    // The same as a clean run of the folder as it is now.
    let clean = tempfile::tempdir().unwrap();
    let (code, log) = run_with(
        &server,
        data.path().to_str().unwrap(),
        clean.path(),
        "2026-11-20",
        &[],
    );
    assert_eq!(code, 3, "{log}");
    let partition = "usage/date=2026-10-05/usage.parquet";
    let rebuilt = outputs(out.path())
        .remove(partition)
        .expect("the day's partition");
    assert!(rebuilt == outputs(clean.path())[partition]);
}

/// An object deleted after DATA was listed and before its day was read is
/// rejected `unreadable` (exit 3, the file named); once it is back, the
/// next run reads its day and OUT equals a clean run's.
#[test]
fn an_object_gone_after_listing_is_unreadable_and_read_again() {
    let Some(server) = stores::start(Kind::S3) else {
        return;
    };
    server.create_bucket("exports");
    let data = crate::common::generated(12, 4000, 20, 7);
    server.upload_dir("exports", "d", data.path());
    let url = server.url("exports", "d");
    let out = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_faktura"))
        .args(run_args(Path::new(&url), out.path(), "2026-10-20"))
        .envs(server.env())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Stopped once the first day is in place: the last day's object is
    // listed but not yet read.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !files_under(&out.path().join("usage"))
        .iter()
        .any(|p| p.ends_with("usage.parquet"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no partition within 2 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    signal(&child, libc::SIGSTOP);
    let last = "d/usage/2026-10-12.csv";
    let client = server.client("exports");
    stores::delete(&client, last);
    signal(&child, libc::SIGCONT);
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{log}");
    assert!(
        log.contains("usage file usage/2026-10-12.csv rejected whole: unreadable"),
        "{log}"
    );
    let rejects = std::fs::read_to_string(out.path().join("rejects/2026-10-12.csv")).unwrap();
    assert!(
        rejects.contains("unreadable") && rejects.contains("s3://exports/d/usage/2026-10-12.csv"),
        "{rejects}"
    );

    // Back in the store: read again; OUT's usage equals a clean run's.
    stores::put(
        &client,
        last,
        std::fs::read(data.path().join("usage/2026-10-12.csv")).unwrap(),
    );
    let (code, log) = run_with(&server, &url, out.path(), "2026-10-20", &[]);
    assert!(log.contains("1 days ingested, 11 unchanged"), "{log}");
    let clean = tempfile::tempdir().unwrap();
    let (clean_code, _) = run_with(
        &server,
        data.path().to_str().unwrap(),
        clean.path(),
        "2026-10-20",
        &[],
    );
    assert_eq!(code, clean_code, "{log}");
    let usage = |out: &Path| -> BTreeMap<String, Vec<u8>> {
        outputs(out)
            .into_iter()
            .filter(|(k, _)| k.starts_with("usage/"))
            .collect()
    };
    assert!(usage(out.path()) == usage(clean.path()));
}

fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: kill(2) on a child process of this test.
    let sent = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(sent, 0);
}

/// A store that is down, a bucket that does not exist, no credentials: exit
/// 1 naming the URL and the cause, nothing written under OUT.
#[test]
fn store_faults_fail_the_run_naming_the_url() {
    let Some(server) = stores::start(Kind::S3) else {
        return;
    };
    server.create_bucket("exports");
    let out = tempfile::tempdir().unwrap();
    let data = sample_copy();
    let down = env_with_store_down(&server);
    let no_credentials: Vec<(String, String)> = server
        .env()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET"))
        .collect();
    let cases: [(&str, Env, &str); 3] = [
        ("s3://exports/data", down, "Connection refused"),
        ("s3://no-such-bucket/data", server.env(), "NoSuchBucket"),
        (
            "s3://exports/data",
            no_credentials,
            "no credentials in the environment: set AWS_ACCESS_KEY_ID",
        ),
    ];
    for (url, env, cause) in cases {
        let mut args = run_args(Path::new(url), out.path(), "2026-11-20");
        args.push("-q");
        let env: Vec<(String, String)> = env
            .into_iter()
            // No instance metadata service to wait for here.
            .chain([("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string())])
            .collect();
        let (code, log) = faktura_env(&args, &env);
        assert_eq!(code, 1, "{url}: {log}");
        assert!(log.contains(&format!("cannot list `{url}`")), "{log}");
        assert!(log.contains(cause), "{url}: {log}");
        assert!(
            files_under(out.path()).is_empty(),
            "{:?}",
            files_under(out.path())
        );
    }
    // A folder that is fine still runs with the same environment.
    let (code, log) = run_with(
        &server,
        data.path().to_str().unwrap(),
        out.path(),
        "2026-11-20",
        &[],
    );
    assert_eq!(code, 3, "{log}");
}

/// Environment variables, as `faktura_env` takes them.
type Env = Vec<(String, String)>;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `[publish]`: the first run uploads OUT's published folders whole, a run
/// with nothing new uploads nothing, a later run uploads what changed and
/// deletes what OUT no longer holds; the store then holds exactly OUT's
/// files, byte for byte.
fn publish_mirrors_out(kind: Kind) {
    let Some(server) = stores::start(kind) else {
        return;
    };
    server.create_bucket("lake");
    let data = sample_copy();
    publish_to(data.path(), &server.url("lake", "faktura"));
    let out = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let (code, log) = run_with(&server, data_dir, out.path(), "2026-12-05", &[]);
    assert_eq!(code, 3, "{log}");
    let first = published(out.path());
    assert!(
        log.contains(&format!(
            "publish:   {} uploaded, 0 deleted, 0 unchanged, 0 pending",
            first.len()
        )),
        "{log}"
    );
    assert!(server.download_all("lake", "faktura") == first);

    let (_, log) = run_with(&server, data_dir, out.path(), "2026-12-05", &[]);
    assert!(
        log.contains(&format!(
            "publish:   0 uploaded, 0 deleted, {} unchanged, 0 pending",
            first.len()
        )),
        "{log}"
    );

    // A later night (a credit note, a reminder) uploads what it wrote.
    let stray = out.path().join("pdf/notes.txt");
    std::fs::write(&stray, "left here by hand\n").unwrap();
    let (_, log) = run_with(&server, data_dir, out.path(), "2027-01-10", &[]);
    assert!(!log.contains(" 0 uploaded"), "{log}");
    let now = published(out.path());
    assert!(now.keys().any(|k| k.starts_with("credit_notes/")));
    assert!(server.download_all("lake", "faktura") == now, "{log}");
    // A file OUT no longer holds goes from the store too.
    std::fs::remove_file(&stray).unwrap();
    let (_, log) = run_with(&server, data_dir, out.path(), "2027-01-10", &[]);
    assert!(log.contains(" 0 uploaded, 1 deleted"), "{log}");
    let now = published(out.path());
    assert!(!now.contains_key("pdf/notes.txt"));
    assert!(server.download_all("lake", "faktura") == now, "{log}");
}

#[test]
fn publish_mirrors_out_to_s3() {
    publish_mirrors_out(Kind::S3);
}

#[test]
fn publish_mirrors_out_to_azurite() {
    publish_mirrors_out(Kind::Azure);
}

/// A store that fails while publishing does not fail the run: exit 3 says
/// how many files wait, and the next run with the store back publishes
/// them all (as after a kill: what was recorded is not sent again).
#[test]
fn a_failed_publish_is_completed_by_the_next_run() {
    let Some(server) = stores::start(Kind::S3) else {
        return;
    };
    server.create_bucket("lake");
    let data = sample_copy();
    publish_to(data.path(), "s3://lake/out");
    let out = tempfile::tempdir().unwrap();
    let args = run_args(data.path(), out.path(), "2026-12-05");
    let down = env_with_store_down(&server);
    let (code, log) = faktura_env(&args, &down);
    assert_eq!(code, 3, "{log}");
    assert!(
        log.contains("files not yet published to s3://lake/out"),
        "{log}"
    );
    assert!(log.contains("Connection refused"), "{log}");
    assert!(
        !files_under(&out.path().join("invoices")).is_empty(),
        "billing went on"
    );

    let (code, log) = faktura_env(&args, &server.env());
    assert!(log.contains(" 0 pending"), "{log}");
    assert_eq!(code, 3, "{log}"); // the sample's rejected rows
    assert!(server.download_all("lake", "out") == published(out.path()));
}

/// A run killed while it publishes: the next run completes the target,
/// which then holds exactly OUT's files (none half-written).
#[test]
fn a_publish_killed_part_way_is_completed_by_the_next_run() {
    let Some(server) = stores::start(Kind::S3) else {
        return;
    };
    server.create_bucket("lake");
    let data = crate::common::generated(40, 300, 30, 11);
    publish_to(data.path(), "s3://lake/out");
    let out = tempfile::tempdir().unwrap();
    let args = run_args(data.path(), out.path(), "2026-11-20");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_faktura"))
        .args(&args)
        .envs(server.env())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the first objects are in the store.
    let client = server.client("lake");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut killed = false;
    while child.try_wait().unwrap().is_none() {
        if stores::count(&client, "out") > 0 {
            child.kill().unwrap(); // SIGKILL
            killed = true;
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no upload within 2 minutes"
        );
    }
    child.wait().unwrap();
    assert!(
        killed,
        "the run ended before it could be killed while publishing"
    );
    let partial = server.download_all("lake", "out");
    assert!(
        partial.len() < published(out.path()).len(),
        "killed part-way"
    );

    let (code, log) = faktura_env(&args, &server.env());
    assert!(log.contains(" 0 pending"), "{log}");
    assert!(code == 0 || code == 3, "{log}");
    assert!(server.download_all("lake", "out") == published(out.path()));
}

/// The Kubernetes example's shape: four shard workers read DATA from the
/// bucket into one OUT, then one run from the bucket adopts their days
/// (their ETags recorded: nothing read again) and equals a single run of
/// the folder.
#[test]
fn shard_workers_reading_s3_then_one_run_equal_a_single_run() {
    let Some(server) = stores::start(Kind::S3) else {
        return;
    };
    server.create_bucket("exports");
    let data = crate::common::generated(35, 400, 10, 9);
    std::fs::write(
        data.path().join("faktura.toml"),
        "[billing]\nbilling_start = \"2026-10-01\"\n",
    )
    .unwrap();
    server.upload_dir("exports", "azure", data.path());
    let url = server.url("exports", "azure");
    let single = tempfile::tempdir().unwrap();
    let (code, log) = run_with(
        &server,
        data.path().to_str().unwrap(),
        single.path(),
        "2026-11-10",
        &[],
    );
    assert_eq!(code, 3, "{log}"); // periods after the last day are held

    let sharded = tempfile::tempdir().unwrap();
    ingest_shards_at_once(&url, sharded.path(), "2026-11-10", 4, &server.env());
    let (code, log) = run_with(&server, &url, sharded.path(), "2026-11-10", &[]);
    assert_eq!(code, 3, "{log}");
    assert!(log.contains("0 days ingested, 35 unchanged"), "{log}");
    let (mut a, mut b) = (outputs(single.path()), outputs(sharded.path()));
    // The outbox's file names and Message-IDs are the same; compare all.
    a.retain(|k, _| !k.starts_with("manifests/"));
    b.retain(|k, _| !k.starts_with("manifests/"));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(b[path] == *bytes, "{path} differs");
    }
}
