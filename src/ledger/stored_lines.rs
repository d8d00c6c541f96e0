//! How a decided period's lines are kept in `lines.data`. A month end
//! decides about 1.5 million lines (2.2 million at 20-80 meters a
//! subscription), written once and read back to render every invoice, so
//! the form is compact and quick both ways: `FKL3` then, deflated, a table
//! of the period's distinct texts and each line as numbers into it (its
//! subscription and seven meter texts), a flag byte and its decimals as
//! their 16-byte form. Ledgers from before hold deflated JSON (schema
//! version 2) or JSON text (version 1); all three are read.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use rusqlite::types::ValueRef;
use rust_decimal::Decimal;

use crate::model::{CoveredBy, Line, LineKey, LineSums, MeterLine};

use super::{LedgerError, Result};

/// The first bytes of the compact form (deflated data starts with 0x78).
const COMPACT: &[u8; 4] = b"FKL3";

/// The stored form of a period's lines.
pub(super) fn encode(lines: &[Line]) -> Vec<u8> {
    let mut texts = TextTable::default();
    let mut body = Vec::with_capacity(lines.len() * 64);
    for line in lines {
        let key = &line.key;
        put_varint(&mut body, texts.index(&key.subscription_id));
        for text in meter_texts(&key.meter) {
            put_varint(&mut body, texts.index(text));
        }
        body.push(u8::from(key.credit_eligible) | covered_by_code(key.covered_by) << 1);
        for value in [line.sums.quantity, line.sums.cost, line.amount] {
            body.extend_from_slice(&value.serialize());
        }
        body.extend_from_slice(&line.sums.rows.to_le_bytes());
    }
    let mut head = Vec::new();
    put_varint(&mut head, texts.order.len() as u64);
    for text in &texts.order {
        put_varint(&mut head, text.len() as u64);
        head.extend_from_slice(text.as_bytes());
    }
    put_varint(&mut head, lines.len() as u64);
    let mut stored = Vec::with_capacity(body.len() / 4 + COMPACT.len());
    stored.extend_from_slice(COMPACT);
    let mut deflater = ZlibEncoder::new(stored, Compression::fast());
    deflater.write_all(&head).expect("deflating to memory");
    deflater.write_all(&body).expect("deflating to memory");
    deflater.finish().expect("deflating to memory")
}

/// A period's lines from their stored form: the compact form, deflated
/// JSON, or JSON text.
pub(super) fn decode(stored: ValueRef<'_>) -> Result<Vec<Line>> {
    let json = match stored {
        ValueRef::Blob(compact) if compact.starts_with(COMPACT) => {
            return decode_compact(&inflate(&compact[COMPACT.len()..])?);
        }
        ValueRef::Blob(deflated) => std::borrow::Cow::Owned(inflate(deflated)?),
        ValueRef::Text(json) => std::borrow::Cow::Borrowed(json),
        other => return Err(corrupt(format!("a {:?} value", other.data_type()))),
    };
    serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))
}

fn corrupt(detail: String) -> LedgerError {
    LedgerError::Corrupt {
        what: "lines.data",
        detail,
    }
}

fn inflate(deflated: &[u8]) -> Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(deflated.len() * 8);
    ZlibDecoder::new(deflated)
        .read_to_end(&mut raw)
        .map_err(|e| corrupt(format!("cannot inflate: {e}")))?;
    Ok(raw)
}

/// The lines of an inflated compact form.
fn decode_compact(raw: &[u8]) -> Result<Vec<Line>> {
    let mut input = Input(raw);
    let text_count = input.count()?;
    let mut texts: Vec<Arc<str>> = Vec::with_capacity(text_count);
    for _ in 0..text_count {
        let len = input.count()?;
        let text = std::str::from_utf8(input.take(len)?)
            .map_err(|e| corrupt(format!("a text that is not UTF-8: {e}")))?;
        texts.push(text.into());
    }
    let text = |index: u64| {
        usize::try_from(index)
            .ok()
            .and_then(|i| texts.get(i))
            .ok_or_else(|| corrupt(format!("text {index} of {text_count}")))
    };
    let line_count = input.count()?;
    let mut lines = Vec::with_capacity(line_count);
    // Lines of one meter share its texts, as the month-end merge made them.
    let mut meters: HashMap<[u64; 7], Arc<MeterLine>> = HashMap::new();
    for _ in 0..line_count {
        let subscription_id = Arc::clone(text(input.varint()?)?);
        let mut indices = [0u64; 7];
        for index in &mut indices {
            *index = input.varint()?;
        }
        let meter = match meters.get(&indices) {
            Some(meter) => Arc::clone(meter),
            None => {
                let [a, b, c, d, e, f, g] = indices.map(|i| text(i).map(|t| t.to_string()));
                let meter = Arc::new(MeterLine {
                    meter_id: a?,
                    meter_category: b?,
                    meter_name: c?,
                    unit_of_measure: d?,
                    charge_type: e?,
                    publisher_type: f?,
                    pricing_model: g?,
                });
                meters.insert(indices, Arc::clone(&meter));
                meter
            }
        };
        let flags = input.take(1)?[0];
        let covered_by = covered_by_of(flags >> 1)?;
        let [quantity, cost, amount] = [input.decimal()?, input.decimal()?, input.decimal()?];
        let rows = i64::from_le_bytes(input.take(8)?.try_into().expect("8 bytes"));
        lines.push(Line {
            key: LineKey {
                subscription_id,
                meter,
                credit_eligible: flags & 1 == 1,
                covered_by,
            },
            sums: LineSums {
                quantity,
                cost,
                rows,
            },
            amount,
        });
    }
    if !input.0.is_empty() {
        return Err(corrupt(format!("{} bytes after the lines", input.0.len())));
    }
    Ok(lines)
}

/// The seven texts of a line's meter, in the stored order.
fn meter_texts(meter: &MeterLine) -> [&str; 7] {
    [
        &meter.meter_id,
        &meter.meter_category,
        &meter.meter_name,
        &meter.unit_of_measure,
        &meter.charge_type,
        &meter.publisher_type,
        &meter.pricing_model,
    ]
}

fn covered_by_code(covered_by: CoveredBy) -> u8 {
    match covered_by {
        CoveredBy::None => 0,
        CoveredBy::Trial => 1,
        CoveredBy::Adjustment => 2,
    }
}

fn covered_by_of(code: u8) -> Result<CoveredBy> {
    match code {
        0 => Ok(CoveredBy::None),
        1 => Ok(CoveredBy::Trial),
        2 => Ok(CoveredBy::Adjustment),
        _ => Err(corrupt(format!("covered_by code {code}"))),
    }
}

/// A period's distinct texts, numbered in order of first use.
#[derive(Default)]
struct TextTable<'a> {
    numbers: HashMap<&'a str, u64>,
    order: Vec<&'a str>,
}

impl<'a> TextTable<'a> {
    fn index(&mut self, text: &'a str) -> u64 {
        let next = self.order.len() as u64;
        *self.numbers.entry(text).or_insert_with(|| {
            self.order.push(text);
            next
        })
    }
}

/// LEB128: seven bits a byte, low first, the high bit set on all but the last.
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The unread rest of an inflated compact form.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(corrupt(format!("{n} bytes wanted, {} left", self.0.len())));
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(corrupt("a number longer than 64 bits".into()))
    }

    /// A count, which cannot exceed the bytes left (each item takes one).
    fn count(&mut self) -> Result<usize> {
        let count = self.varint()?;
        usize::try_from(count)
            .ok()
            .filter(|c| *c <= self.0.len())
            .ok_or_else(|| {
                corrupt(format!(
                    "a count of {count} with {} bytes left",
                    self.0.len()
                ))
            })
    }

    fn decimal(&mut self) -> Result<Decimal> {
        let bytes: [u8; 16] = self.take(16)?.try_into().expect("16 bytes");
        Ok(Decimal::deserialize(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(meter_name: &str, cost: &str) -> Line {
        serde_json::from_value(serde_json::json!({
            "key": {"subscription_id": "S", "meter_id": "M", "meter_category": "Compute",
                    "meter_name": meter_name, "unit_of_measure": "1 Hour",
                    "charge_type": "Usage", "publisher_type": "Azure",
                    "pricing_model": "OnDemand", "credit_eligible": true, "covered_by": "None"},
            "sums": {"quantity": "1.5", "cost": cost, "rows": 2},
            "amount": "0.12"
        }))
        .unwrap()
    }

    /// `lines.data` as schema version 2 wrote it: deflated JSON.
    fn deflated_json(lines: &[Line]) -> Vec<u8> {
        let mut deflater = ZlibEncoder::new(Vec::new(), Compression::fast());
        deflater
            .write_all(&serde_json::to_vec(lines).unwrap())
            .unwrap();
        deflater.finish().unwrap()
    }

    #[test]
    fn lines_read_back_from_every_stored_form() {
        let lines = vec![
            line("D2s v3, \"Øst\"", "0.1234567890"),
            line("B2ms", "-4.5"),
            line("D2s v3, \"Øst\"", "0"),
        ];
        let compact = encode(&lines);
        let json = serde_json::to_string(&lines).unwrap();
        assert!(compact.starts_with(COMPACT));
        assert!(compact.len() < deflated_json(&lines).len());
        assert_eq!(decode(ValueRef::Blob(&compact)).unwrap(), lines);
        assert_eq!(
            decode(ValueRef::Blob(&deflated_json(&lines))).unwrap(),
            lines
        );
        assert_eq!(decode(ValueRef::Text(json.as_bytes())).unwrap(), lines);
        assert_eq!(decode(ValueRef::Blob(&encode(&[]))).unwrap(), vec![]);
        // Lines of one meter share it again, as the merge made them.
        let decoded = decode(ValueRef::Blob(&compact)).unwrap();
        assert!(Arc::ptr_eq(&decoded[0].key.meter, &decoded[2].key.meter));
    }

    #[test]
    fn a_damaged_stored_form_is_corrupt_not_a_panic() {
        let compact = encode(&[line("B2ms", "-4.5"), line("D2s", "7")]);
        let mut damaged = vec![
            b"not deflate".to_vec(),
            compact[..compact.len() - 3].to_vec(),
        ];
        // Cut short inside the deflated data, and valid deflate of a body cut short.
        let raw = inflate(&compact[COMPACT.len()..]).unwrap();
        for cut in [0, 1, 5, raw.len() / 2, raw.len() - 1] {
            let mut deflater = ZlibEncoder::new(COMPACT.to_vec(), Compression::fast());
            deflater.write_all(&raw[..cut]).unwrap();
            damaged.push(deflater.finish().unwrap());
        }
        for bytes in &damaged {
            assert!(
                matches!(
                    decode(ValueRef::Blob(bytes)),
                    Err(LedgerError::Corrupt {
                        what: "lines.data",
                        ..
                    })
                ),
                "{bytes:?}"
            );
        }
        assert!(decode(ValueRef::Integer(7)).is_err());
    }

    fn any_line() -> impl Strategy<Value = Line> {
        let text = || "\\PC{0,12}";
        let decimal = || (any::<i64>(), 0u32..=28).prop_map(|(m, s)| Decimal::new(m, s));
        (
            (text(), prop::array::uniform7(text()), any::<bool>(), 0u8..3),
            (decimal(), decimal(), any::<i64>(), decimal()),
        )
            .prop_map(|((subscription, meter, credit_eligible, covered), sums)| {
                let [a, b, c, d, e, f, g] = meter;
                Line {
                    key: LineKey {
                        subscription_id: subscription.into(),
                        meter: Arc::new(MeterLine {
                            meter_id: a,
                            meter_category: b,
                            meter_name: c,
                            unit_of_measure: d,
                            charge_type: e,
                            publisher_type: f,
                            pricing_model: g,
                        }),
                        credit_eligible,
                        covered_by: covered_by_of(covered).unwrap(),
                    },
                    sums: LineSums {
                        quantity: sums.0,
                        cost: sums.1,
                        rows: sums.2,
                    },
                    amount: sums.3,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Any lines come back as they went in, to the scale of every decimal.
        #[test]
        fn lines_come_back_from_the_compact_form_as_they_went_in(
            lines in prop::collection::vec(any_line(), 0..40)
        ) {
            let decoded = decode(ValueRef::Blob(&encode(&lines))).unwrap();
            prop_assert_eq!(&decoded, &lines);
            for (got, want) in decoded.iter().zip(&lines) {
                prop_assert_eq!(got.amount.to_string(), want.amount.to_string());
                prop_assert_eq!(got.sums.cost.to_string(), want.sums.cost.to_string());
            }
        }
    }
}
