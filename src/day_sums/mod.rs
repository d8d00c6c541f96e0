//! Day sums: a day's accepted usage summed by (subscription, line key,
//! credit eligibility) while ingest parses it, so the month end never reads
//! the day's partition back to sum it. Ingest fills them chunk by chunk and
//! writes each day's cache; aggregate reads the caches.
//!
//! A cache is two files: `OUT/aggregates/date=D/lines.parquet` numbers the
//! day's distinct line texts (`line` and the seven text columns), and
//! `daily.parquet` holds the sums keyed by profile, subscription, `line`
//! and credit eligibility. The texts are thus read once a day, not once a
//! group (a large tenant's day has ~230,000 groups over ~20,000 line
//! texts). `lines.parquet` is written first: a `daily.parquet` with a
//! `line` column always has its own. A cache that aggregate computes
//! from a partition (one lost to a kill) has the texts in `daily.parquet`
//! itself, as every cache did before; aggregate reads both forms.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;

use crate::FastMap;
use crate::interner::Interner;
use crate::store;

#[cfg(test)]
pub(crate) mod oracle;

/// The columns of a day's cache that key its sums.
pub(crate) const GROUP_COLUMNS: &[&str] = &[
    "billing_profile_id",
    "date",
    "subscription_id",
    "meter_id",
    "meter_category",
    "meter_name",
    "unit_of_measure",
    "charge_type",
    "publisher_type",
    "pricing_model",
    "is_azure_credit_eligible",
];

/// Where the per-day sums of a usage partition are kept:
/// `OUT/aggregates/date=D/daily.parquet` beside `OUT/usage/date=D/usage.parquet`.
pub fn daily_cache_path(out_dir: &Path, day: chrono::NaiveDate) -> PathBuf {
    out_dir.join(format!("aggregates/date={day}/daily.parquet"))
}

/// The line texts of a day's cache, beside its `daily.parquet`.
pub fn line_texts_path(daily_cache: &Path) -> PathBuf {
    daily_cache.with_file_name("lines.parquet")
}

/// The seven line text columns (`GROUP_COLUMNS` from `meter_id` on,
/// without credit eligibility).
pub(crate) const LINE_TEXT_COLUMNS: &[&str] = GROUP_COLUMNS.split_at(3).1.split_at(7).0;

/// A day's accepted usage summed by (profile, line key) while it is parsed,
/// so the day's sums need not be read back from its partition.
///
/// Rows are parsed in parallel chunks, each keeping a [`ChunkSums`]; the
/// day merges them in order. A row's subscription comes as its position in
/// the reference data's [`SubscriptionTexts`] (so no text is hashed
/// for it), its line as text: the line's seven values are numbered within
/// the chunk, then within the day, so the day's sums are keyed by three
/// small numbers. Memory follows the day's distinct lines, not its rows.
pub struct DaySums {
    /// The ids of the subscription at each position a row may name.
    subscriptions: std::sync::Arc<SubscriptionTexts>,
    lines: LineTexts,
    sums: FastMap<GroupKey, ScaledSums>,
}

/// One group of a day: a subscription (which names the profile), a line
/// and credit eligibility.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct GroupKey {
    subscription: u32,
    line: u32,
    credit_eligible: bool,
}

/// Exact sums at the usage scale.
#[derive(Clone, Copy, Default)]
struct ScaledSums {
    quantity: i128,
    cost: i128,
    rows: i64,
}

impl ScaledSums {
    fn add(&mut self, other: ScaledSums) {
        self.quantity += other.quantity;
        self.cost += other.cost;
        self.rows += other.rows;
    }
}

/// Distinct line texts, numbered in order of first sight. A line text is
/// its seven values (`GROUP_COLUMNS` from `meter_id` on, without credit
/// eligibility), each written as its byte length (4 bytes, little-endian)
/// then its bytes: unambiguous whatever characters a value holds.
#[derive(Default)]
struct LineTexts(Interner<()>);

impl LineTexts {
    fn id(&mut self, text: &[u8]) -> u32 {
        self.0.id(text, || ())
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn text(&self, id: u32) -> &[u8] {
        self.0.text(id)
    }

    /// The seven values of line `id`.
    fn values(&self, id: u32) -> [&str; 7] {
        self.value_bytes(id)
            .map(|value| std::str::from_utf8(value).expect("line texts are made of str values"))
    }

    /// The bytes of the seven values of line `id`, not checked again to be
    /// UTF-8.
    fn value_bytes(&self, id: u32) -> [&[u8]; 7] {
        let mut rest = self.text(id);
        std::array::from_fn(|_| {
            let (len, after) = rest.split_at(4);
            let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
            let (value, after) = after.split_at(len);
            rest = after;
            value
        })
    }
}

pub(crate) fn write_line_text(text: &mut Vec<u8>, values: &[&str; 7]) {
    text.clear();
    for value in values {
        let len = u32::try_from(value.len()).expect("a value shorter than 4 GB");
        text.extend_from_slice(&len.to_le_bytes());
        text.extend_from_slice(value.as_bytes());
    }
}

/// One accepted usage row as [`DaySums`] needs it.
pub struct SumsRow<'a> {
    /// The row's subscription: its position in the [`SubscriptionTexts`].
    pub subscription: u32,
    /// `meter_id`, `meter_category`, `meter_name`, `unit_of_measure`,
    /// `charge_type`, `publisher_type`, `pricing_model`.
    pub line: [&'a str; 7],
    pub credit_eligible: bool,
    pub quantity: i128,
    pub cost: i128,
}

/// The rows of one chunk, their lines numbered within the chunk.
#[derive(Default)]
pub struct ChunkSums {
    lines: LineTexts,
    rows: Vec<(GroupKey, ScaledSums)>,
    text: Vec<u8>,
}

impl ChunkSums {
    /// Adds a row; returns the number of its line in the chunk.
    pub fn add(&mut self, row: &SumsRow) -> u32 {
        write_line_text(&mut self.text, &row.line);
        let line = self.lines.id(&self.text);
        let key = GroupKey {
            subscription: row.subscription,
            line,
            credit_eligible: row.credit_eligible,
        };
        let sums = ScaledSums {
            quantity: row.quantity,
            cost: row.cost,
            rows: 1,
        };
        self.rows.push((key, sums));
        line
    }

    /// How many distinct lines the chunk's rows have.
    pub fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// The bytes of the seven values (as [`SumsRow::line`]) of the
    /// chunk's line `line`.
    pub fn line_values(&self, line: u32) -> [&[u8]; 7] {
        self.lines.value_bytes(line)
    }
}

/// The text columns that follow from a row's subscription, in the order
/// of [`SubscriptionTexts`].
pub(crate) const SUBSCRIPTION_COLUMNS: [&str; 4] = [
    "billing_account_id",
    "billing_profile_id",
    "subscription_id",
    "billing_currency",
];

/// Where the profile's and the subscription's ids are in [`SUBSCRIPTION_COLUMNS`].
const PROFILE_ID: usize = 1;
const SUBSCRIPTION_ID: usize = 2;

/// What the usage columns hold for each reference subscription's rows
/// (account id, profile id, own id and currency code, as
/// [`SUBSCRIPTION_COLUMNS`]), each column's distinct values numbered once,
/// so a row group's dictionaries are made without hashing a text.
#[derive(Default)]
pub struct SubscriptionTexts {
    /// For each subscription by position, the numbers of its values.
    numbers: Vec<[u32; 4]>,
    /// Each column's distinct values.
    values: [Vec<String>; 4],
}

impl SubscriptionTexts {
    /// The texts of each subscription, by position.
    pub fn new<'a>(subscriptions: impl Iterator<Item = [&'a str; 4]>) -> SubscriptionTexts {
        let mut texts = SubscriptionTexts::default();
        let mut numbers: [FastMap<&str, u32>; 4] = Default::default();
        for subscription in subscriptions {
            let mut numbered = [0; 4];
            for (i, text) in subscription.into_iter().enumerate() {
                let values = &mut texts.values[i];
                numbered[i] = *numbers[i].entry(text).or_insert_with(|| {
                    values.push(text.to_string());
                    (values.len() - 1) as u32
                });
            }
            texts.numbers.push(numbered);
        }
        texts
    }

    /// The value of `column` (as [`SUBSCRIPTION_COLUMNS`]) for the
    /// subscription at `position`: its number among the column's distinct
    /// values, and the value.
    pub(crate) fn value(&self, position: u32, column: usize) -> (u32, &str) {
        let number = self.numbers[position as usize][column];
        (number, &self.values[column][number as usize])
    }

    /// How many distinct values `column` has.
    pub(crate) fn distinct(&self, column: usize) -> usize {
        self.values[column].len()
    }
}

impl DaySums {
    pub fn new(subscriptions: std::sync::Arc<SubscriptionTexts>) -> DaySums {
        DaySums {
            subscriptions,
            lines: LineTexts::default(),
            sums: FastMap::default(),
        }
    }

    /// Adds a chunk's rows, renumbering its lines as the day's.
    pub fn merge(&mut self, chunk: ChunkSums) {
        let day_line: Vec<u32> = (0..chunk.lines.len() as u32)
            .map(|id| self.lines.id(chunk.lines.text(id)))
            .collect();
        for (mut key, sums) in chunk.rows {
            key.line = day_line[key.line as usize];
            self.sums.entry(key).or_default().add(sums);
        }
    }

    /// The day's sums as its cache holds them: `daily.parquet` (profile,
    /// date, subscription, `line`, credit eligibility, `quantity`,
    /// `cost_in_billing_currency`, `rows`, in the order of (subscription
    /// position, line first seen, credit eligibility)) and `lines.parquet`
    /// (`line` and its seven texts).
    fn into_frames(self, day: NaiveDate, scale: usize) -> PolarsResult<(DataFrame, DataFrame)> {
        let mut groups: Vec<(GroupKey, ScaledSums)> = self.sums.into_iter().collect();
        groups.sort_unstable_by_key(|(key, _)| *key);
        let height = groups.len();
        let (profiles, subscriptions): (Vec<&str>, Vec<&str>) = groups
            .iter()
            .map(|(key, _)| {
                let of = |column| self.subscriptions.value(key.subscription, column).1;
                (of(PROFILE_ID), of(SUBSCRIPTION_ID))
            })
            .unzip();
        let column = |name: &str, f: fn(&(GroupKey, ScaledSums)) -> i128| {
            crate::columns::decimal_column(name, groups.iter().map(f).collect(), scale)
        };
        let sums = DataFrame::new(
            height,
            vec![
                Column::new("billing_profile_id".into(), profiles),
                crate::columns::date_column("date", vec![day; height]),
                Column::new("subscription_id".into(), subscriptions),
                Column::new(
                    "line".into(),
                    groups.iter().map(|(k, _)| k.line).collect::<Vec<u32>>(),
                ),
                Column::new(
                    "is_azure_credit_eligible".into(),
                    groups
                        .iter()
                        .map(|(k, _)| k.credit_eligible)
                        .collect::<Vec<_>>(),
                ),
                column("quantity", |(_, s)| s.quantity)?,
                column("cost_in_billing_currency", |(_, s)| s.cost)?,
                Column::new(
                    "rows".into(),
                    groups.iter().map(|(_, s)| s.rows).collect::<Vec<i64>>(),
                ),
            ],
        )?;
        let count = self.lines.len();
        let mut texts: Vec<Vec<&str>> = (0..7).map(|_| Vec::with_capacity(count)).collect();
        for id in 0..count as u32 {
            for (column, value) in texts.iter_mut().zip(self.lines.values(id)) {
                column.push(value);
            }
        }
        let mut columns = vec![Column::new(
            "line".into(),
            (0..count as u32).collect::<Vec<_>>(),
        )];
        for (name, values) in LINE_TEXT_COLUMNS.iter().zip(&texts) {
            columns.push(Column::new((*name).into(), values));
        }
        Ok((sums, DataFrame::new(count, columns)?))
    }

    /// The day's cache, to be written once its partition is in place.
    pub fn into_cache(self, day: NaiveDate, scale: usize) -> PolarsResult<DayCache> {
        let frames = if self.sums.is_empty() {
            None
        } else {
            Some(self.into_frames(day, scale)?)
        };
        Ok(DayCache { day, frames })
    }
}

/// A day's sums as its cache files hold them (sums, line texts); none for
/// a day without accepted rows.
pub struct DayCache {
    day: NaiveDate,
    frames: Option<(DataFrame, DataFrame)>,
}

impl DayCache {
    /// Writes the day's cache (`lines.parquet`, then `daily.parquet`), or
    /// removes it when the day has no accepted rows.
    pub fn write(self, out_dir: &Path) -> Result<(), store::ParquetError> {
        let path = daily_cache_path(out_dir, self.day);
        match self.frames {
            None => Ok(store::remove_if_exists(&path)?),
            Some((mut sums, mut lines)) => {
                store::write_cache_parquet(&line_texts_path(&path), &mut lines)?;
                store::write_cache_parquet(&path, &mut sums)
            }
        }
    }
}

/// A cache's sums with their line texts joined back: the form a cache
/// computed from a partition has (the tests' view of a cache).
#[cfg(test)]
pub(crate) fn with_texts(sums: DataFrame, lines: DataFrame) -> PolarsResult<DataFrame> {
    sums.lazy()
        .join(
            lines.lazy(),
            [col("line")],
            [col("line")],
            JoinArgs::new(JoinType::Left),
        )
        .select(
            GROUP_COLUMNS
                .iter()
                .chain(&["quantity", "cost_in_billing_currency", "rows"])
                .map(|c| col(*c))
                .collect::<Vec<_>>(),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::oracle::frame_to_daily_sums;
    use super::*;
    use std::collections::BTreeMap;
    use std::hash::BuildHasher;

    /// Hashes every text to 0, so that each id is found along its chain.
    #[derive(Default)]
    struct OneHash;

    impl BuildHasher for OneHash {
        type Hasher = OneHasher;
        fn build_hasher(&self) -> OneHasher {
            OneHasher
        }
    }

    struct OneHasher;

    impl std::hash::Hasher for OneHasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, _: &[u8]) {}
    }

    fn texts_are_numbered_once<S: BuildHasher + Default>() {
        let mut lines = Interner::<(), S>::default();
        let texts: Vec<Vec<u8>> = ["a", "", "ab", "b", "ba", "a\0", "æ"]
            .iter()
            .map(|t| t.as_bytes().to_vec())
            .collect();
        let ids: Vec<u32> = texts.iter().map(|t| lines.id(t, || ())).collect();
        assert_eq!(ids, (0..texts.len() as u32).collect::<Vec<_>>());
        for (text, id) in texts.iter().zip(&ids).rev() {
            assert_eq!(lines.id(text, || ()), *id);
            assert_eq!(lines.text(*id), text.as_slice());
        }
        assert_eq!(lines.len(), texts.len());
    }

    #[test]
    fn texts_are_numbered_once_whether_hashes_differ_or_all_collide() {
        texts_are_numbered_once::<foldhash::fast::FixedState>();
        texts_are_numbered_once::<OneHash>();
    }

    fn names(list: &[(&str, &str)]) -> std::sync::Arc<SubscriptionTexts> {
        SubscriptionTexts::new(list.iter().map(|&(p, s)| ["A", p, s, "NOK"])).into()
    }

    /// A day's cache as one frame with its texts.
    fn cache_frame(sums: DaySums, day: NaiveDate, scale: usize) -> DataFrame {
        let (sums, lines) = sums.into_frames(day, scale).unwrap();
        with_texts(sums, lines).unwrap()
    }

    #[test]
    fn day_sums_keep_any_characters_in_a_key() {
        let name = "12:VM, \"Spot\" \u{1f}\u{0}\u{4}Øst:3";
        let mut sums = DaySums::new(names(&[("P:1", "S")]));
        for cost in [5, 7] {
            let mut chunk = ChunkSums::default();
            chunk.add(&SumsRow {
                subscription: 0,
                line: ["m", "Compute", name, "1 Hour", "Usage", "Azure", "OnDemand"],
                credit_eligible: true,
                quantity: 1,
                cost,
            });
            sums.merge(chunk);
        }
        let day = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        let sums = frame_to_daily_sums(&cache_frame(sums, day, 10)).unwrap();
        assert_eq!(sums.len(), 1);
        assert_eq!(sums[0].profile_id, "P:1");
        assert_eq!(&*sums[0].key.subscription_id, "S");
        assert_eq!(sums[0].key.meter.meter_name, name);
        assert_eq!(sums[0].key.meter.pricing_model, "OnDemand");
        assert!(sums[0].key.credit_eligible);
        assert_eq!(sums[0].sums.rows, 2);
    }

    #[test]
    fn day_sums_merged_from_chunks_equal_the_rows_summed_one_by_one() {
        let subscriptions = [("P1", "S1"), ("P1", "S2"), ("P2", "S3")];
        let mut sums = DaySums::new(names(&subscriptions));
        let mut expected: BTreeMap<(String, String, bool), (i128, i64)> = BTreeMap::new();
        let meters: Vec<String> = (0..997).map(|m| format!("meter {m}")).collect();
        let mut chunk = ChunkSums::default();
        for i in 0..600_000i128 {
            let (s, meter) = ((i % 3) as u32, &meters[(i % 997) as usize]);
            chunk.add(&SumsRow {
                subscription: s,
                line: [
                    meter, "Compute", "VM", "1 Hour", "Usage", "Azure", "OnDemand",
                ],
                credit_eligible: i % 2 == 0,
                quantity: 1,
                cost: i,
            });
            let entry = expected
                .entry((
                    subscriptions[s as usize].1.into(),
                    meter.clone(),
                    i % 2 == 0,
                ))
                .or_default();
            entry.0 += i;
            entry.1 += 1;
            if i % 50_000 == 0 {
                sums.merge(std::mem::take(&mut chunk));
            }
        }
        sums.merge(chunk);
        let day = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        let got: BTreeMap<(String, String, bool), (i128, i64)> =
            frame_to_daily_sums(&cache_frame(sums, day, 0))
                .unwrap()
                .into_iter()
                .map(|d| {
                    let profile = if &*d.key.subscription_id == "S3" {
                        "P2"
                    } else {
                        "P1"
                    };
                    assert_eq!(d.profile_id, profile);
                    let key = (
                        d.key.subscription_id.to_string(),
                        d.key.meter.meter_id.clone(),
                        d.key.credit_eligible,
                    );
                    (key, (d.sums.cost.try_into().unwrap(), d.sums.rows))
                })
                .collect();
        assert_eq!(got, expected);
    }
}
