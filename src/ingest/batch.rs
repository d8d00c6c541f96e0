//! Accepted rows on their way to the partition (SPEC §6 `usage`). Eleven
//! of the text columns follow from a row's subscription (account, profile,
//! subscription, currency) or from its line (meter id, category and name,
//! unit, charge type, publisher type, pricing model), and `source_file`
//! from its file: each is kept as a dictionary, one index a row into its
//! distinct values in order of first sight. They are written as the
//! dictionary-encoded string columns polars writes for strings, without
//! building each row's string and hashing it again to find the dictionary:
//! a row costs an index, not eleven strings.

use polars::prelude::*;
use polars_arrow::array::{
    Array, DictionaryArray, MutableBinaryViewArray, PrimitiveArray, Utf8ViewArray,
};
use polars_arrow::datatypes::{ArrowDataType, IntegerType};

use crate::day_sums::{ChunkSums, LINE_TEXT_COLUMNS, SUBSCRIPTION_COLUMNS, SubscriptionTexts};
use crate::interner::Interner;
use crate::parse::USAGE_SCALE;

use super::rows::UsageRow;

/// The usage columns in the partition's order.
pub(super) const USAGE_COLUMNS: [&str; 19] = [
    "date",
    "billing_account_id",
    "billing_profile_id",
    "subscription_id",
    "meter_id",
    "meter_category",
    "meter_name",
    "unit_of_measure",
    "quantity",
    "unit_price",
    "cost_in_billing_currency",
    "billing_currency",
    "charge_type",
    "publisher_type",
    "pricing_model",
    "is_azure_credit_eligible",
    "resource_id",
    "source_file",
    "source_line",
];

/// Accepted rows of a chunk, column by column, as they are taken.
pub(super) struct UsageColumns {
    date: Vec<i32>,
    /// Each row's subscription: its position in the reference data.
    subscription: Vec<u32>,
    /// Each row's line: its number in the chunk's sums.
    line: Vec<u32>,
    quantity: Vec<i128>,
    unit_price: Vec<i128>,
    pub(super) cost: Vec<i128>,
    credit_eligible: Vec<bool>,
    resource_id: StringChunkedBuilder,
    source_line: Vec<i64>,
}

impl UsageColumns {
    pub(super) fn with_capacity(n: usize) -> UsageColumns {
        UsageColumns {
            date: Vec::with_capacity(n),
            subscription: Vec::with_capacity(n),
            line: Vec::with_capacity(n),
            quantity: Vec::with_capacity(n),
            unit_price: Vec::with_capacity(n),
            cost: Vec::with_capacity(n),
            credit_eligible: Vec::with_capacity(n),
            resource_id: StringChunkedBuilder::new("resource_id".into(), n),
            source_line: Vec::with_capacity(n),
        }
    }

    /// Adds a row whose line is numbered `line_number` in the chunk's sums.
    pub(super) fn push(&mut self, row: &UsageRow, line: u64, line_number: u32) {
        self.date.push(crate::columns::days_since_epoch(row.date));
        self.subscription.push(row.subscription_position);
        self.line.push(line_number);
        self.quantity.push(row.quantity);
        self.unit_price.push(row.unit_price);
        self.cost.push(row.cost);
        self.credit_eligible.push(row.credit_eligible);
        self.resource_id.append_option(row.resource_id);
        self.source_line.push(line as i64);
    }

    /// The chunk's batch: `sums` are the chunk's, which number its lines,
    /// `source_file` the file the rows came from.
    pub(super) fn into_batch(
        self,
        sums: &ChunkSums,
        source_file: &str,
    ) -> PolarsResult<UsageBatch> {
        let mut texts = Vec::with_capacity(LINE_TEXT_COLUMNS.len() + 1);
        // Each line's seven values are looked up once, into all columns
        // (named as a line text's values are ordered).
        let mut columns: [TextColumn; 7] =
            std::array::from_fn(|i| TextColumn::empty(LINE_TEXT_COLUMNS[i], self.line.len()));
        let mut keys_of_line = vec![[NO_KEY; 7]; sums.line_count()];
        for &line in &self.line {
            let keys = &mut keys_of_line[line as usize];
            if keys[0] == NO_KEY {
                let values = sums.line_values(line);
                for ((key, column), value) in keys.iter_mut().zip(&mut columns).zip(values) {
                    *key = column.values.id(value, || ());
                }
            }
            for (column, &key) in columns.iter_mut().zip(keys.iter()) {
                column.keys.push(key);
            }
        }
        texts.extend(columns);
        let height = self.date.len();
        texts.push(TextColumn::constant("source_file", source_file, height));
        let scale = USAGE_SCALE as usize;
        let frame = DataFrame::new(
            height,
            vec![
                Int32Chunked::from_vec("date".into(), self.date)
                    .into_date()
                    .into_series()
                    .into(),
                crate::columns::decimal_column("quantity", self.quantity, scale)?,
                crate::columns::decimal_column("unit_price", self.unit_price, scale)?,
                crate::columns::decimal_column("cost_in_billing_currency", self.cost, scale)?,
                Column::new("is_azure_credit_eligible".into(), self.credit_eligible),
                Column::from(self.resource_id.finish().into_series()),
                Column::new("source_line".into(), self.source_line),
            ],
        )?;
        Ok(UsageBatch {
            frame,
            subscription: self.subscription,
            texts,
        })
    }
}

/// Accepted rows: the text columns that follow from a row's line or file
/// as dictionaries, each row's subscription by position (its columns are
/// made when the batch is written, where a row group's distinct
/// subscriptions are looked up once), the other columns as a frame.
pub(super) struct UsageBatch {
    frame: DataFrame,
    subscription: Vec<u32>,
    texts: Vec<TextColumn>,
}

impl UsageBatch {
    pub(super) fn height(&self) -> usize {
        self.frame.height()
    }

    /// Appends `other`'s rows.
    pub(super) fn append(&mut self, other: &UsageBatch) -> PolarsResult<()> {
        self.frame.vstack_mut(&other.frame)?;
        self.subscription.extend_from_slice(&other.subscription);
        for (text, more) in self.texts.iter_mut().zip(&other.texts) {
            text.append(more);
        }
        Ok(())
    }

    /// The partition's schema: text columns are strings.
    pub(super) fn schema(&self) -> Schema {
        USAGE_COLUMNS
            .iter()
            .map(|&name| match self.frame.schema().get(name) {
                Some(dtype) => Field::new(name.into(), dtype.clone()),
                None => Field::new(name.into(), DataType::String),
            })
            .collect()
    }

    /// The subscription column `column` (as [`SUBSCRIPTION_COLUMNS`]) of
    /// the rows: each row's key, and the values in order of first sight.
    fn subscription_column(
        &self,
        subscriptions: &SubscriptionTexts,
        column: usize,
    ) -> (Vec<u32>, Utf8ViewArray) {
        let mut key_of_number = vec![NO_KEY; subscriptions.distinct(column)];
        let mut values = MutableBinaryViewArray::<str>::new();
        let keys = self
            .subscription
            .iter()
            .map(|&position| {
                let (number, value) = subscriptions.value(position, column);
                let key = &mut key_of_number[number as usize];
                if *key == NO_KEY {
                    *key = values.len() as u32;
                    values.push_value(value);
                }
                *key
            })
            .collect();
        (keys, values.into())
    }

    /// The text column `name` as a dictionary (each row's key, and the
    /// values in order of first sight); `None` for a column of the frame.
    fn dictionary(
        &self,
        name: &str,
        subscriptions: &SubscriptionTexts,
    ) -> Option<(Vec<u32>, Utf8ViewArray)> {
        if let Some(column) = SUBSCRIPTION_COLUMNS.iter().position(|&c| c == name) {
            return Some(self.subscription_column(subscriptions, column));
        }
        let text = self.texts.iter().find(|t| t.name == name)?;
        Some((text.keys.clone(), text.values()))
    }

    /// The columns as arrow arrays in the partition's order, the frame
    /// made one chunk first.
    pub(super) fn arrow_columns(
        &mut self,
        subscriptions: &SubscriptionTexts,
    ) -> Vec<Box<dyn Array>> {
        self.frame.rechunk_mut_par();
        USAGE_COLUMNS
            .iter()
            .map(|&name| match self.dictionary(name, subscriptions) {
                Some((keys, values)) => dictionary_array(keys, values),
                None => self
                    .frame
                    .column(name)
                    .expect("every other usage column is in the frame")
                    .as_materialized_series()
                    .to_arrow(0, CompatLevel::newest()),
            })
            .collect()
    }

    /// All columns as a frame of the partition's schema, the texts as
    /// strings.
    #[cfg(test)]
    pub(super) fn to_frame(&self, subscriptions: &SubscriptionTexts) -> PolarsResult<DataFrame> {
        let columns = USAGE_COLUMNS
            .iter()
            .map(|&name| match self.dictionary(name, subscriptions) {
                Some((keys, values)) => {
                    let strings = StringChunked::with_chunk(name.into(), strings(&keys, &values));
                    Ok(strings.into_series().into())
                }
                None => self.frame.column(name).cloned(),
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        DataFrame::new(self.height(), columns)
    }
}

/// A text column as a dictionary: each row's index into the distinct
/// values, which are numbered in order of first sight.
struct TextColumn {
    name: &'static str,
    keys: Vec<u32>,
    values: Interner<()>,
}

/// A code not yet given a key.
const NO_KEY: u32 = u32::MAX;

impl TextColumn {
    /// No values yet, room for `rows` rows.
    fn empty(name: &'static str, rows: usize) -> TextColumn {
        TextColumn {
            name,
            keys: Vec::with_capacity(rows),
            values: Interner::default(),
        }
    }

    /// `rows` rows of one value.
    fn constant(name: &'static str, value: &str, rows: usize) -> TextColumn {
        let mut values = Interner::default();
        if rows > 0 {
            values.id(value.as_bytes(), || ());
        }
        TextColumn {
            name,
            keys: vec![0; rows],
            values,
        }
    }

    fn append(&mut self, other: &TextColumn) {
        let keys: Vec<u32> = (0..other.values.len() as u32)
            .map(|key| self.values.id(other.values.text(key), || ()))
            .collect();
        self.keys
            .extend(other.keys.iter().map(|&key| keys[key as usize]));
    }

    fn value(&self, key: u32) -> &str {
        std::str::from_utf8(self.values.text(key)).expect("values are made from str")
    }

    /// The distinct values, in order of first sight.
    fn values(&self) -> Utf8ViewArray {
        let mut values = MutableBinaryViewArray::<str>::with_capacity(self.values.len());
        for key in 0..self.values.len() as u32 {
            values.push_value(self.value(key));
        }
        values.into()
    }
}

/// A text column for the parquet writer: a dictionary array (`keys` into
/// `values`), which it writes as it is, as polars does a string column of
/// few distinct values. A column whose values are mostly distinct is handed
/// over as strings, for polars to choose dictionary or plain encoding (it
/// takes plain past 3 distinct values in 4 by its estimate).
fn dictionary_array(keys: Vec<u32>, values: Utf8ViewArray) -> Box<dyn Array> {
    let rows = keys.len();
    if rows > 128 && values.len() * 2 > rows {
        return strings(&keys, &values).boxed();
    }
    let dtype = ArrowDataType::Dictionary(
        IntegerType::UInt32,
        Box::new(ArrowDataType::Utf8View),
        false,
    );
    DictionaryArray::try_new(dtype, PrimitiveArray::from_vec(keys), values.boxed())
        .expect("every key indexes a value")
        .boxed()
}

/// Each row's value of `keys` into `values`.
fn strings(keys: &[u32], values: &Utf8ViewArray) -> Utf8ViewArray {
    let mut strings = MutableBinaryViewArray::<str>::with_capacity(keys.len());
    for &key in keys {
        strings.push_value(values.value(key as usize));
    }
    strings.into()
}
