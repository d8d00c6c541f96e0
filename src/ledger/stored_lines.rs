//! How a decided period's lines are kept in `lines.data`: their JSON,
//! deflated. A month end decides about 1.5 million lines; as plain JSON
//! they were 0.6 GB written to the ledger (and its write-ahead log) each
//! month, deflated about 9x less. Ledgers from before hold the JSON as
//! text; both are read.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use rusqlite::types::ValueRef;

use crate::model::Line;

use super::{LedgerError, Result};

/// The stored form of a period's lines.
pub(super) fn encode(lines: &[Line]) -> Vec<u8> {
    // Whole, not piecewise: the deflater is slow on serde's many small writes.
    let json = serde_json::to_vec(lines).expect("lines serialize to memory");
    let mut deflater = ZlibEncoder::new(Vec::with_capacity(json.len() / 8), Compression::fast());
    deflater.write_all(&json).expect("deflating to memory");
    deflater.finish().expect("deflating to memory")
}

/// A period's lines from their stored form: deflated JSON (a blob) or,
/// in a ledger from before, JSON text.
pub(super) fn decode(stored: ValueRef<'_>) -> Result<Vec<Line>> {
    let corrupt = |detail: String| LedgerError::Corrupt {
        what: "lines.data",
        detail,
    };
    let json = match stored {
        ValueRef::Text(json) => std::borrow::Cow::Borrowed(json),
        ValueRef::Blob(deflated) => {
            let mut json = Vec::with_capacity(deflated.len() * 10);
            ZlibDecoder::new(deflated)
                .read_to_end(&mut json)
                .map_err(|e| corrupt(format!("cannot inflate: {e}")))?;
            std::borrow::Cow::Owned(json)
        }
        other => return Err(corrupt(format!("a {:?} value", other.data_type()))),
    };
    serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn lines_read_back_from_either_stored_form() {
        let lines = vec![
            line("D2s v3, \"Øst\"", "0.1234567890"),
            line("B2ms", "-4.5"),
        ];
        let deflated = encode(&lines);
        let json = serde_json::to_string(&lines).unwrap();
        assert!(deflated.len() < json.len());
        assert_eq!(decode(ValueRef::Blob(&deflated)).unwrap(), lines);
        assert_eq!(decode(ValueRef::Text(json.as_bytes())).unwrap(), lines);
        assert!(matches!(
            decode(ValueRef::Blob(b"not deflate")),
            Err(LedgerError::Corrupt {
                what: "lines.data",
                ..
            })
        ));
        assert!(decode(ValueRef::Integer(7)).is_err());
    }
}
