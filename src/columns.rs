//! Polars columns of the types SPEC §6 names, built from and read back
//! to plain values: `Decimal(38, s)` from scaled integers, `date32` from
//! dates, strings; used by the partition writer, the caches and the
//! analysts' tables.

use chrono::NaiveDate;
use polars::prelude::*;

/// A `Decimal(38, scale)` column of integers scaled by 10^scale.
pub fn decimal_column(name: &str, values: Vec<i128>, scale: usize) -> PolarsResult<Column> {
    Ok(Int128Chunked::from_vec(name.into(), values)
        .into_decimal(38, scale)?
        .into_series()
        .into())
}

/// [`decimal_column`] with nulls.
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

/// Days since 1970-01-01, as `date32` counts them.
pub fn days_since_epoch(date: NaiveDate) -> i32 {
    (date - EPOCH).num_days() as i32
}

/// The date `days` after 1970-01-01.
pub fn date_from_days(days: i32) -> NaiveDate {
    EPOCH + chrono::Days::new(days as u64)
}

/// A `date32` column.
pub fn date_column(name: &str, values: Vec<NaiveDate>) -> Column {
    let days: Vec<i32> = values.into_iter().map(days_since_epoch).collect();
    Int32Chunked::from_vec(name.into(), days)
        .into_date()
        .into_series()
        .into()
}

/// A string column.
pub fn string_column<S: AsRef<str>>(name: &str, values: &[S]) -> Column {
    let refs: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
    Column::new(name.into(), refs)
}

/// A string column with nulls.
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
