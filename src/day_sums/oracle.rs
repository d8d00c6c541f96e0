//! The tests' plain view of a day cache: each (profile, day, line key)
//! group as a struct, read from a cache frame with its exact sums.

use chrono::NaiveDate;
use polars::prelude::*;

use crate::model::{CoveredBy, LineKey, LineSums, MeterLine};
use crate::parse::scaled_to_decimal;

/// Exact sums of one (profile, day, line key) group of usage rows: the
/// tests' plain view of a day cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DailySums {
    pub profile_id: String,
    pub date: NaiveDate,
    /// The line key with `covered_by` still `None`; trial coverage depends
    /// on the subscription and is applied by [`period_lines`].
    pub key: LineKey,
    pub sums: LineSums,
}

pub(crate) fn frame_to_daily_sums(df: &DataFrame) -> PolarsResult<Vec<DailySums>> {
    let text = |name: &str| -> PolarsResult<Vec<String>> {
        Ok(df
            .column(name)?
            .str()?
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect())
    };
    let profile = text("billing_profile_id")?;
    let subscription = text("subscription_id")?;
    let meter_id = text("meter_id")?;
    let category = text("meter_category")?;
    let meter_name = text("meter_name")?;
    let unit = text("unit_of_measure")?;
    let charge = text("charge_type")?;
    let publisher = text("publisher_type")?;
    let pricing = text("pricing_model")?;
    let eligible: Vec<bool> = df
        .column("is_azure_credit_eligible")?
        .bool()?
        .iter()
        .map(|v| v.unwrap_or(false))
        .collect();
    let dates: Vec<i32> = df
        .column("date")?
        .as_materialized_series()
        .date()?
        .physical()
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();
    let (quantity, q_scale) = crate::columns::decimal_values(df.column("quantity")?)?;
    let (cost, c_scale) = crate::columns::decimal_values(df.column("cost_in_billing_currency")?)?;
    let rows: Vec<i64> = df
        .column("rows")?
        .i64()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();

    let to_decimal = |v: Option<i128>, scale: usize, i: usize| {
        scaled_to_decimal(v.unwrap_or(0), scale as u32)
            .ok_or_else(|| polars_err!(ComputeError: "a sum of {} exceeds 28 digits", profile[i]))
    };
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        out.push(DailySums {
            profile_id: profile[i].clone(),
            date: crate::columns::date_from_days(dates[i]),
            key: LineKey {
                subscription_id: subscription[i].as_str().into(),
                meter: std::sync::Arc::new(MeterLine {
                    meter_id: meter_id[i].clone(),
                    meter_category: category[i].clone(),
                    meter_name: meter_name[i].clone(),
                    unit_of_measure: unit[i].clone(),
                    charge_type: charge[i].clone(),
                    publisher_type: publisher[i].clone(),
                    pricing_model: pricing[i].clone(),
                }),
                credit_eligible: eligible[i],
                covered_by: CoveredBy::None,
            },
            sums: LineSums {
                quantity: to_decimal(quantity[i], q_scale, i)?,
                cost: to_decimal(cost[i], c_scale, i)?,
                rows: rows[i],
            },
        });
    }
    Ok(out)
}
