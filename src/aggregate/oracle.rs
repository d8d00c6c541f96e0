//! The tests' oracle for [`super::period_lines_from`] and for the sums
//! ingest keeps: all accepted usage summed with polars straight from the
//! usage partitions, then merged into period lines in plain Rust, the
//! straightforward reading of SPEC §4 rules 1, 2 and 7.

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::day_sums::oracle::{DailySums, frame_to_daily_sums};
use crate::model::{CoveredBy, Kind, LineKey, Offer, Period, PeriodLines, Reference};

use super::{Result, sums_of_partition};

/// Sums all accepted usage by (profile, day, line key) with polars, straight
/// from the usage partitions (the tests' oracle for [`period_lines_from`]
/// and for the sums ingest keeps).
pub(super) fn daily_sums(partitions: &[PathBuf]) -> Result<Vec<DailySums>> {
    let mut out = Vec::new();
    for partition in partitions {
        out.extend(frame_to_daily_sums(&sums_of_partition(partition)?)?);
    }
    Ok(out)
}

/// Merges daily sums into the lines of each profile's periods in plain
/// Rust: the straightforward reading of SPEC §4 rules 1, 2 and 7 that the
/// tests hold the polars version to.
pub(super) fn period_lines(daily: &[DailySums], reference: &Reference) -> PeriodLines {
    let mut out = PeriodLines::new();
    for d in daily {
        let Some(profile) = reference.profiles.get(&d.profile_id) else {
            continue;
        };
        let period = Period::containing(d.date, profile.period_start_day);
        let is_mosp = reference.account_of(profile).agreement == crate::model::Agreement::Mosp;
        let kind = if is_mosp && d.key.is_purchase() {
            Kind::Purchases
        } else {
            Kind::Services
        };
        let mut key = d.key.clone();
        if kind == Kind::Services && is_trial_covered(reference, &key, d.date) {
            key.covered_by = CoveredBy::Trial;
        }
        out.entry((d.profile_id.clone(), kind, period.start))
            .or_default()
            .entry(key)
            .or_default()
            .add(&d.sums);
    }
    out
}

/// SPEC §4 rule 2: credit-eligible usage of a FreeTrial subscription up to
/// and including its trialEndDate.
fn is_trial_covered(reference: &Reference, key: &LineKey, date: NaiveDate) -> bool {
    let Some(sub) = reference.subscriptions.get(&*key.subscription_id) else {
        return false;
    };
    key.credit_eligible
        && sub.offer == Offer::FreeTrial
        && sub.trial_end_date.is_some_and(|end| date <= end)
}
