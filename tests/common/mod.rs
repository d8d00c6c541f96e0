//! Helpers shared by the integration tests.

pub mod smtp;
pub mod stores;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The repository's bundled sample data directory.
pub fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample")
}

/// Runs the faktura binary with `args`.
pub fn faktura(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_faktura"))
        .args(args)
        .env_remove("FAKTURA_LOG")
        .output()
        .expect("faktura runs")
}

/// The arguments of `faktura run --data DATA --out OUT --as-of AS_OF`.
pub fn run_args<'a>(data: &'a Path, out: &'a Path, as_of: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--as-of",
        as_of,
    ]
}

/// `faktura run --data DATA --out OUT --as-of AS_OF`, returning the exit code.
pub fn run(data: &Path, out: &Path, as_of: &str) -> (i32, String) {
    let output = faktura(&run_args(data, out, as_of));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().expect("exited"), stderr)
}

/// `faktura ARGS` with extra environment variables; returns exit code and stderr.
pub fn faktura_env(args: &[&str], env: &[(String, String)]) -> (i32, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_faktura"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("FAKTURA_LOG")
        .output()
        .expect("faktura runs");
    (
        output.status.code().expect("exited"),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `faktura ingest --shard I/N` for every I into one OUT, the workers all
/// started before any is waited for, as an Indexed Job's pods run; panics
/// naming a worker that failed.
pub fn ingest_shards_at_once(
    data: &str,
    out: &Path,
    as_of: &str,
    shards: u32,
    env: &[(String, String)],
) {
    let workers: Vec<_> = (0..shards)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_faktura"))
                .args([
                    "ingest",
                    "--data",
                    data,
                    "--out",
                    out.to_str().unwrap(),
                    "--as-of",
                    as_of,
                ])
                .args(["--shard", &format!("{i}/{shards}")])
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("faktura starts")
        })
        .collect();
    for (i, worker) in workers.into_iter().enumerate() {
        let output = worker.wait_with_output().expect("faktura runs");
        assert!(
            output.status.success(),
            "shard {i}/{shards}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// `faktura gen` into a new temporary directory (start 2026-10-01).
pub fn generated(days: u32, rows_per_day: u32, profiles: u32, seed: u32) -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let output = faktura(&[
        "gen",
        "--out",
        data.path().to_str().unwrap(),
        "--days",
        &days.to_string(),
        "--rows-per-day",
        &rows_per_day.to_string(),
        "--profiles",
        &profiles.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    data
}

/// `faktura explain --out OUT --profile PROFILE [--period PERIOD]`, which must succeed.
pub fn explain(out: &Path, profile: &str, period: Option<&str>) -> String {
    let mut args = vec![
        "explain",
        "--out",
        out.to_str().unwrap(),
        "--profile",
        profile,
    ];
    if let Some(period) = period {
        args.extend(["--period", period]);
    }
    let output = faktura(&args);
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

/// A copy of the bundled sample in a temporary directory, to edit.
pub fn sample_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for path in files_under(&sample_dir()) {
        let rel = path.strip_prefix(sample_dir()).unwrap();
        let target = dir.path().join(rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&path, target).unwrap();
    }
    dir
}

/// Every parquet file under `dir`, read with arrow-rs.
pub fn read_parquet_dir(dir: &Path) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for path in files_under(dir) {
        if path.extension().is_some_and(|e| e == "parquet") {
            let file = std::fs::File::open(&path).unwrap();
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                batches.push(batch.unwrap());
            }
        }
    }
    batches
}

/// A string column of any string type, as Strings.
pub fn strings(batch: &RecordBatch, name: &str) -> Vec<String> {
    use arrow::array::{Array, AsArray};
    let column = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"));
    let column = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8).unwrap();
    let array = column.as_string::<i32>();
    (0..array.len())
        .map(|i| array.value(i).to_string())
        .collect()
}

/// All files under `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Contents of every output file except the ledger, run summaries and lock.
pub fn snapshot(out: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(out)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(out).unwrap().to_string_lossy().into_owned(),
                p,
            )
        })
        .filter(|(rel, _)| {
            !rel.starts_with("ledger.sqlite") && !rel.starts_with("runs/") && rel != ".lock"
        })
        .map(|(rel, p)| (rel, std::fs::read(p).unwrap()))
        .collect()
}

/// The text of a PDF, extracted by pdf-extract (a second, independent reader).
pub fn pdf_text(bytes: &[u8]) -> String {
    pdf_extract::extract_text_from_mem(bytes).expect("PDF parses")
}

/// Copies `OUT/einvoice` to `target/tmp/einvoices/{name}` for `.ci/run`,
/// which checks every file there with the official Peppol validator.
pub fn keep_for_the_validator(out: &Path, name: &str) {
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("einvoices")
        .join(name);
    let _ = std::fs::remove_dir_all(&keep);
    for file in files_under(&out.join("einvoice")) {
        let target = keep.join(file.strip_prefix(out.join("einvoice")).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, target).unwrap();
    }
}
