//! The month-end merge: the day caches of the wanted periods' days summed
//! into period lines in plain Rust over integer keys. Each cache row's
//! texts are numbered once (a subscription and a line text, each interned),
//! its day mapped to its profile's period, MOSP purchases split off and
//! free-trial usage marked; the sums are exact integers at the usage scale.
//! The sums are sharded by profile, a shard per core: each core sums its
//! profiles' rows into a map of its own. Lookups in one map of a month's
//! 1.5 million groups miss the cache; in a map of half of them, less so.
//! Memory follows the distinct lines of the month, not the cache rows:
//! days are read one at a time (the next while one is merged, see
//! `merge_period_lines`).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;

use crate::FastMap;
use crate::interner::Interner;
use crate::model::{Agreement, CoveredBy, Kind, LineKey, LineSums, MeterLine, Offer, Period};
use crate::model::{PeriodLines, Reference};
use crate::parse::scaled_to_decimal;

use super::{AggregateError, Result};

/// One group of the month: a line of a profile's period.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct GroupKey {
    profile: u32,
    kind: Kind,
    period_start: NaiveDate,
    subscription: u32,
    line: u32,
    credit_eligible: bool,
    covered_by: CoveredBy,
}

/// Exact sums at the usage scale.
#[derive(Clone, Copy, Default)]
struct ScaledSums {
    quantity: i128,
    cost: i128,
    rows: i64,
}

/// Where a day's rows of one subscription go.
#[derive(Clone, Copy)]
struct SubscriptionAt {
    profile: u32,
    period_start: NaiveDate,
    subscription: u32,
    is_mosp: bool,
    /// Whether the day is within the subscription's free trial (rule 2).
    in_trial: bool,
}

/// A profile as the merge needs it.
struct ProfilePlan<'r> {
    id: &'r str,
    period_start_day: u32,
    is_mosp: bool,
    /// Starts of its wanted periods.
    wanted: BTreeSet<NaiveDate>,
}

/// The month's lines as they are summed.
pub(super) struct LineMerge<'r> {
    profiles: Vec<ProfilePlan<'r>>,
    profile_index: FastMap<&'r str, u32>,
    /// Trial end of each FreeTrial subscription (SPEC §4 rule 2).
    trial_ends: FastMap<&'r str, NaiveDate>,
    subscriptions: Interner<Arc<str>>,
    lines: Interner<Arc<MeterLine>>,
    /// Whether line `i` is a purchase on a MOSP profile (rule 7).
    line_is_purchase: Vec<bool>,
    /// The sums, sharded by profile: each core sums its shard's rows.
    sums: Vec<FastMap<GroupKey, ScaledSums>>,
    scale: Option<usize>,
    /// Reused to encode a row's line texts.
    text: Vec<u8>,
}

impl<'r> LineMerge<'r> {
    pub(super) fn new(reference: &'r Reference, wanted: &BTreeSet<(String, NaiveDate)>) -> Self {
        let mut profiles = Vec::new();
        let mut profile_index = FastMap::default();
        for profile in reference.profiles.values() {
            let key = |start| (profile.id.clone(), start);
            let starts: BTreeSet<NaiveDate> = wanted
                .range(key(NaiveDate::MIN)..=key(NaiveDate::MAX))
                .map(|(_, start)| *start)
                .collect();
            if starts.is_empty() {
                continue;
            }
            profile_index.insert(profile.id.as_str(), profiles.len() as u32);
            profiles.push(ProfilePlan {
                id: &profile.id,
                period_start_day: profile.period_start_day,
                is_mosp: reference.account_of(profile).agreement == Agreement::Mosp,
                wanted: starts,
            });
        }
        let trial_ends = reference
            .subscriptions
            .values()
            .filter(|s| s.offer == Offer::FreeTrial)
            .filter_map(|s| Some((s.id.as_str(), s.trial_end_date?)))
            .collect();
        LineMerge {
            profiles,
            profile_index,
            trial_ends,
            subscriptions: Interner::default(),
            lines: Interner::default(),
            line_is_purchase: Vec::new(),
            sums: (0..rayon::current_num_threads().max(1))
                .map(|_| FastMap::default())
                .collect(),
            scale: None,
            text: Vec::new(),
        }
    }

    /// The days the wanted periods span, of those given.
    pub(super) fn days_needed(&self, days: &[NaiveDate]) -> BTreeSet<NaiveDate> {
        let mut needed = BTreeSet::new();
        for profile in &self.profiles {
            for day in days {
                let start = Period::containing(*day, profile.period_start_day).start;
                if profile.wanted.contains(&start) {
                    needed.insert(*day);
                }
            }
        }
        needed
    }

    /// Adds one day's cache: its sums (profile, subscription, credit
    /// eligibility, `quantity`, `cost_in_billing_currency`, `rows`) with
    /// either a `line` number into `texts` or the seven line texts.
    ///
    /// One loop over a day's ~230,000 groups, long on purpose: the
    /// month-end merge it is took 1.8 s where polars' join and group-by
    /// took 23 s (benches/README.md).
    pub(super) fn add_day(
        &mut self,
        day: NaiveDate,
        cache: &DataFrame,
        texts: Option<&DataFrame>,
    ) -> Result<()> {
        let profile = text_column(cache, "billing_profile_id")?;
        let subscription = text_column(cache, "subscription_id")?;
        let line_of_row = self.line_ids(cache, texts)?;
        let eligible: Vec<bool> = cache
            .column("is_azure_credit_eligible")?
            .bool()?
            .iter()
            .map(|v| v.unwrap_or(false))
            .collect();
        let (quantity, q_scale) = crate::columns::decimal_values(cache.column("quantity")?)?;
        let (cost, c_scale) =
            crate::columns::decimal_values(cache.column("cost_in_billing_currency")?)?;
        let rows: Vec<i64> = cache
            .column("rows")?
            .i64()?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect();
        let scale = *self.scale.get_or_insert(q_scale);
        if q_scale != scale || c_scale != scale {
            return Err(AggregateError::Frame(PolarsError::ComputeError(
                format!("the sums of {day} are at scale {q_scale}/{c_scale}, not {scale}").into(),
            )));
        }
        // Each profile's wanted period holding this day, if any.
        let period_of: Vec<Option<NaiveDate>> = self
            .profiles
            .iter()
            .map(|p| {
                let start = Period::containing(day, p.period_start_day).start;
                p.wanted.contains(&start).then_some(start)
            })
            .collect();
        // Each row's group (texts numbered on this thread), then the sums
        // of each shard's rows on the cores.
        let mut groups: Vec<Option<GroupKey>> = vec![None; cache.height()];
        // A cache's rows come sorted by subscription: a row of the same
        // profile and subscription as the row before takes that row's
        // lookups instead of hashing both ids again.
        let mut last: Option<(&str, &str, Option<SubscriptionAt>)> = None;
        for (i, group) in groups.iter_mut().enumerate() {
            let (profile, sub) = (profile[i], subscription[i]);
            let at = match last {
                Some((p, s, at)) if p == profile && s == sub => at,
                _ => {
                    let at = self.subscription_at(profile, sub, day, &period_of);
                    last = Some((profile, sub, at));
                    at
                }
            };
            let Some(at) = at else {
                continue;
            };
            let line = line_of_row[i];
            let kind = if at.is_mosp && self.line_is_purchase[line as usize] {
                Kind::Purchases
            } else {
                Kind::Services
            };
            let trial = kind == Kind::Services && eligible[i] && at.in_trial;
            *group = Some(GroupKey {
                profile: at.profile,
                kind,
                period_start: at.period_start,
                subscription: at.subscription,
                line,
                credit_eligible: eligible[i],
                covered_by: if trial {
                    CoveredBy::Trial
                } else {
                    CoveredBy::None
                },
            });
        }
        let shards = self.sums.len();
        self.sums
            .par_iter_mut()
            .enumerate()
            .for_each(|(shard, sums)| {
                for (i, group) in groups.iter().enumerate() {
                    let Some(key) = group.filter(|k| k.profile as usize % shards == shard) else {
                        continue;
                    };
                    let sum = sums.entry(key).or_default();
                    sum.quantity += quantity[i].unwrap_or(0);
                    sum.cost += cost[i].unwrap_or(0);
                    sum.rows += rows[i];
                }
            });
        Ok(())
    }

    /// What a day's row of `profile` and subscription `sub` adds to: its
    /// profile's wanted period holding the day (`period_of`, by profile),
    /// none when there is none.
    fn subscription_at(
        &mut self,
        profile: &str,
        sub: &str,
        day: NaiveDate,
        period_of: &[Option<NaiveDate>],
    ) -> Option<SubscriptionAt> {
        let &p = self.profile_index.get(profile)?;
        let period_start = period_of[p as usize]?;
        Some(SubscriptionAt {
            profile: p,
            period_start,
            subscription: self.subscriptions.id(sub.as_bytes(), || sub.into()),
            is_mosp: self.profiles[p as usize].is_mosp,
            in_trial: self.trial_ends.get(sub).is_some_and(|end| day <= *end),
        })
    }

    /// The month's number of each cache row's line: through the day's
    /// numbered texts, or from the row's own texts.
    fn line_ids(&mut self, cache: &DataFrame, texts: Option<&DataFrame>) -> Result<Vec<u32>> {
        let columns = |frame| -> PolarsResult<Vec<Vec<&str>>> {
            crate::day_sums::LINE_TEXT_COLUMNS
                .iter()
                .map(|c| text_column(frame, c))
                .collect()
        };
        let numbered = |frame: &DataFrame| -> PolarsResult<Vec<u32>> {
            Ok(frame
                .column("line")?
                .u32()?
                .iter()
                .map(|v| v.unwrap_or(0))
                .collect())
        };
        let ids_of = |merge: &mut Self, values: &[Vec<&str>]| -> Vec<u32> {
            let rows = values.first().map_or(0, Vec::len);
            (0..rows)
                .map(|i| merge.line_id(&std::array::from_fn(|c| values[c][i])))
                .collect()
        };
        Ok(match texts {
            Some(texts) => {
                let day_lines = ids_of(self, &columns(texts)?);
                let mut month_line = vec![u32::MAX; day_lines.len()];
                for (local, id) in numbered(texts)?.into_iter().zip(day_lines) {
                    if let Some(slot) = month_line.get_mut(local as usize) {
                        *slot = id;
                    }
                }
                numbered(cache)?
                    .into_iter()
                    .map(|local| {
                        month_line
                            .get(local as usize)
                            .copied()
                            .filter(|id| *id != u32::MAX)
                            .ok_or_else(|| {
                                AggregateError::Frame(PolarsError::ComputeError(
                                    format!("a day's sums name line {local}, which its texts lack")
                                        .into(),
                                ))
                            })
                    })
                    .collect::<Result<_>>()?
            }
            None => ids_of(self, &columns(cache)?),
        })
    }

    /// The number of a line text, interned the first time.
    fn line_id(&mut self, values: &[&str; 7]) -> u32 {
        crate::day_sums::write_line_text(&mut self.text, values);
        let before = self.lines.values.len();
        let id = self.lines.id(&self.text, || {
            Arc::new(MeterLine {
                meter_id: values[0].into(),
                meter_category: values[1].into(),
                meter_name: values[2].into(),
                unit_of_measure: values[3].into(),
                charge_type: values[4].into(),
                publisher_type: values[5].into(),
                pricing_model: values[6].into(),
            })
        });
        if self.lines.values.len() > before {
            let is_purchase = self.lines.values[id as usize].is_purchase();
            self.line_is_purchase.push(is_purchase);
        }
        id
    }

    /// The summed lines, keyed as the decide step reads them.
    pub(super) fn into_period_lines(mut self) -> Result<PeriodLines> {
        let scale = self.scale.unwrap_or(0) as u32;
        // Each group's subscription and line are replaced by their texts'
        // ranks in text order, so that sorting the groups by their own
        // fields orders them as their line keys, with no string compared
        // and nothing looked up while sorting. Profiles are numbered in id
        // order (the reference's map order), so they sort as their ids.
        let (subscription_rank, subscription_at_rank) = ranks(&self.subscriptions.values);
        let (line_rank, line_at_rank) = ranks(&self.lines.values);
        let mut groups: Vec<(GroupKey, ScaledSums)> = std::mem::take(&mut self.sums)
            .into_iter()
            .flatten()
            .map(|(k, sums)| {
                let ranked = GroupKey {
                    subscription: subscription_rank[k.subscription as usize],
                    line: line_rank[k.line as usize],
                    ..k
                };
                (ranked, sums)
            })
            .collect();
        groups.par_sort_unstable_by_key(|(k, _)| {
            (
                k.profile,
                k.kind,
                k.period_start,
                k.subscription,
                k.line,
                k.credit_eligible,
                k.covered_by,
            )
        });
        let mut out = PeriodLines::new();
        let mut period: Option<(PeriodAt, Vec<(LineKey, LineSums)>)> = None;
        for (ranked, sums) in groups {
            let key = GroupKey {
                subscription: subscription_at_rank[ranked.subscription as usize],
                line: line_at_rank[ranked.line as usize],
                ..ranked
            };
            let profile = self.profiles[key.profile as usize].id;
            let too_large = || AggregateError::SumTooLarge {
                profile: profile.to_string(),
            };
            let line_key = LineKey {
                subscription_id: self.subscriptions.values[key.subscription as usize].clone(),
                meter: self.lines.values[key.line as usize].clone(),
                credit_eligible: key.credit_eligible,
                covered_by: key.covered_by,
            };
            let sums = LineSums {
                quantity: scaled_to_decimal(sums.quantity, scale).ok_or_else(too_large)?,
                cost: scaled_to_decimal(sums.cost, scale).ok_or_else(too_large)?,
                rows: sums.rows,
            };
            let at = (key.profile, key.kind, key.period_start);
            match &mut period {
                Some((current, lines)) if *current == at => lines.push((line_key, sums)),
                _ => {
                    if let Some((done, lines)) = period.replace((at, vec![(line_key, sums)])) {
                        out.insert(self.period_key(done), lines.into_iter().collect());
                    }
                }
            }
        }
        if let Some((done, lines)) = period {
            out.insert(self.period_key(done), lines.into_iter().collect());
        }
        Ok(out)
    }

    fn period_key(
        &self,
        (profile, kind, start): (u32, Kind, NaiveDate),
    ) -> (String, Kind, NaiveDate) {
        (self.profiles[profile as usize].id.to_string(), kind, start)
    }
}

/// A text column's values (none as empty), borrowed from the frame.
fn text_column<'f>(frame: &'f DataFrame, name: &str) -> PolarsResult<Vec<&'f str>> {
    Ok(frame
        .column(name)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default())
        .collect())
}

/// A period of a profile by its number: (profile, kind, period start).
type PeriodAt = (u32, Kind, NaiveDate);

/// The rank of each value in sorted order, and the value at each rank.
fn ranks<T: Ord>(values: &[T]) -> (Vec<u32>, Vec<u32>) {
    let mut order: Vec<u32> = (0..values.len() as u32).collect();
    order.sort_unstable_by(|a, b| values[*a as usize].cmp(&values[*b as usize]));
    let mut rank = vec![0; values.len()];
    for (r, i) in order.iter().enumerate() {
        rank[*i as usize] = r as u32;
    }
    (rank, order)
}
