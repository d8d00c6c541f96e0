//! The machine's floor for ingesting a month (issue 34): how long it takes
//! only to read a usage folder's files, and to read them and split every
//! record into fields with the csv crate (no checks, no parsing of values,
//! nothing written), one file per core as faktura's ingest has them.
//! `cargo run --release --example floor -- DATA/usage` prints both, with
//! the rows and bytes, as JSON; `benches/month.sh` compares ingest with it.

use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: floor DATA/usage");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("a readable usage folder")
        .map(|e| e.expect("a listable folder").path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();

    let started = Instant::now();
    let bytes: u64 = files
        .par_iter()
        .map(|f| std::fs::read(f).expect("a readable file").len() as u64)
        .sum();
    let read = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let (rows, fields): (u64, u64) = files
        .par_iter()
        .map(|f| {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .buffer_capacity(1 << 20)
                .from_path(f)
                .expect("a readable file");
            let mut record = csv::ByteRecord::new();
            let (mut rows, mut fields) = (0u64, 0u64);
            while reader.read_byte_record(&mut record).expect("CSV") {
                rows += 1;
                fields += record.len() as u64;
            }
            (rows, fields)
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let split = started.elapsed().as_secs_f64();
    println!(
        "{{\"files\": {}, \"bytes\": {bytes}, \"rows\": {rows}, \"fields\": {fields}, \
         \"read_seconds\": {read:.3}, \"read_and_split_seconds\": {split:.3}}}",
        files.len()
    );
}
