//! Files under OUT, written so that a killed run leaves no partial file:
//! everything goes to a temporary name in the same folder, is synced, and is
//! renamed into place. Also the small polars helpers that turn plain Rust
//! columns into typed Series (Decimal(38,s), date32) and a DataFrame into
//! parquet bytes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;

/// Writes `bytes` to `path` atomically (temporary name, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("output paths have a parent");
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .expect("output paths name a file")
        .to_string_lossy();
    let tmp: PathBuf = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    // Make the rename itself durable.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes a file if it exists.
pub fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes temporary files a killed run left behind under `dir`.
pub fn sweep_temporaries(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(0);
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() {
            removed += sweep_temporaries(&path)?;
        } else if name.starts_with('.') && name.contains(".tmp-") {
            fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Serialises a DataFrame to parquet bytes (zstd, statistics on).
pub fn parquet_bytes(df: &mut DataFrame) -> PolarsResult<Vec<u8>> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)?;
    Ok(buf)
}

/// Writes a DataFrame as parquet to `path`, atomically.
pub fn write_parquet(path: &Path, df: &mut DataFrame) -> anyhow::Result<()> {
    let bytes = parquet_bytes(df)?;
    write_atomic(path, &bytes)?;
    Ok(())
}

pub fn decimal_column(name: &str, values: Vec<i128>, scale: usize) -> PolarsResult<Column> {
    Ok(Int128Chunked::from_vec(name.into(), values)
        .into_decimal(38, scale)?
        .into_series()
        .into())
}

pub fn opt_decimal_column(
    name: &str,
    values: Vec<Option<i128>>,
    scale: usize,
) -> PolarsResult<Column> {
    Ok(
        Int128Chunked::from_iter_options(name.into(), values.into_iter())
            .into_decimal(38, scale)?
            .into_series()
            .into(),
    )
}

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

pub fn days_since_epoch(date: NaiveDate) -> i32 {
    (date - EPOCH).num_days() as i32
}

pub fn date_from_days(days: i32) -> NaiveDate {
    EPOCH + chrono::Days::new(days as u64)
}

pub fn date_column(name: &str, values: Vec<NaiveDate>) -> Column {
    let days: Vec<i32> = values.into_iter().map(days_since_epoch).collect();
    Int32Chunked::from_vec(name.into(), days)
        .into_date()
        .into_series()
        .into()
}

pub fn string_column<S: AsRef<str>>(name: &str, values: &[S]) -> Column {
    let refs: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
    Column::new(name.into(), refs)
}

pub fn opt_string_column(name: &str, values: &[Option<String>]) -> Column {
    let refs: Vec<Option<&str>> = values.iter().map(Option::as_deref).collect();
    Column::new(name.into(), refs)
}

/// A decimal Column's values as `(i128, scale)`.
pub fn decimal_values(column: &Column) -> PolarsResult<(Vec<Option<i128>>, usize)> {
    let series = column.as_materialized_series();
    let decimal = series.decimal()?;
    let scale = decimal.scale();
    Ok((decimal.physical().iter().collect(), scale))
}
