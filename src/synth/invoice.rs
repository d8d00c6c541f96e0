//! A synthetic issued invoice, for the render tests and benchmarks.

use chrono::NaiveDate;

use super::Rng;
use super::usage::METER_SHAPES;

/// A synthetic issued invoice with `lines` lines over a few subscriptions
/// and meter categories, for render tests and benchmarks.
pub fn synthetic_invoice(number: &str, lines: usize, currency: &str) -> crate::model::Invoice {
    use crate::model::{
        Amounts, CoveredBy, Invoice, Kind, Line, LineKey, LineSums, MeterLine, Period,
    };
    use rust_decimal::Decimal;
    let currency_info = crate::model::Currency::parse(currency).expect("a known currency");
    let mut rng = Rng::new(lines as u64, 99);
    let items: Vec<Line> = (0..lines)
        .map(|i| {
            let (category, name, unit, _, _, _, _) = METER_SHAPES[i % METER_SHAPES.len()];
            let cost = Decimal::new(rng.below(5_000_000) as i64 + 1, 4);
            Line {
                key: LineKey {
                    subscription_id: format!("sub-{:02}", i / 40).into(),
                    meter: std::sync::Arc::new(MeterLine {
                        meter_id: format!("meter-{i:05}"),
                        meter_category: category.to_string(),
                        meter_name: format!("{name} #{i}"),
                        unit_of_measure: unit.to_string(),
                        charge_type: "Usage".into(),
                        publisher_type: "Azure".into(),
                        pricing_model: "OnDemand".into(),
                    }),
                    credit_eligible: true,
                    covered_by: CoveredBy::None,
                },
                sums: LineSums {
                    quantity: Decimal::new(rng.below(100_000) as i64, 2),
                    cost,
                    rows: 30,
                },
                amount: currency_info.round(cost),
            }
        })
        .collect();
    let subtotal: Decimal = items.iter().map(|l| l.amount).sum();
    let date = NaiveDate::from_ymd_opt(2026, 11, 3).expect("valid date");
    Invoice {
        number: number.to_string(),
        account_id: "acct-00001".into(),
        profile_id: "prof-000001".into(),
        kind: Kind::Services,
        period: Period::containing(
            NaiveDate::from_ymd_opt(2026, 10, 15).expect("valid date"),
            1,
        ),
        currency: currency.to_string(),
        invoice_date: date,
        due_date: date + chrono::Days::new(30),
        amounts: Amounts {
            subtotal,
            amount_due: subtotal,
            ..Default::default()
        },
        lines: items,
        recipients: vec!["ap@customer.example".into()],
        vat: None,
        einvoice: Default::default(),
    }
}
