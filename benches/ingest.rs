//! Ingest throughput on `faktura gen` data: CSV to validated usage parquet.
//! `cargo bench --bench ingest` (set FAKTURA_BENCH_ROWS to change the size).

use std::time::Duration;

use chrono::NaiveDate;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn ingest_generated(c: &mut Criterion) {
    let rows_per_day: u64 = std::env::var("FAKTURA_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let data = tempfile::tempdir().unwrap();
    let start = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    faktura::synth::generate(&faktura::synth::GenOptions {
        out_dir: data.path().to_path_buf(),
        days: 4,
        rows_per_day,
        profiles: 500,
        seed: 7,
        start,
        shape: Default::default(),
    })
    .unwrap();
    let bytes: u64 = std::fs::read_dir(data.path().join("usage"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let reference = faktura::reference::load_reference(data.path()).unwrap();

    let mut group = c.benchmark_group("ingest");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function(format!("{} rows", rows_per_day * 4), |b| {
        b.iter(|| {
            let out = tempfile::tempdir().unwrap();
            let usage = faktura::data_source::UsageSource::Folder(data.path().to_path_buf());
            let opts = faktura::ingest::IngestOptions {
                usage: &usage,
                out_dir: out.path(),
                billing_start: start,
                reference: &reference,
            };
            faktura::ingest::ingest(&opts, &Default::default(), |_, _| Ok(())).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, ingest_generated);
criterion_main!(benches);
