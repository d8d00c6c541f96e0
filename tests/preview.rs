//! `faktura preview` (SPEC §7; issue 30): held to the truth (the decision
//! a period later gets equals what preview said when the rest of its days
//! had no usage), read-only (OUT byte for byte the same, and it answers
//! while a run holds the lock), and an unknown profile exits 2.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rust_decimal::Decimal;

use crate::common::{faktura, files_under, read_parquet_dir, run, sample_copy, strings};

/// `faktura preview ... --format json` on `as_of`, parsed.
fn preview(data: &Path, out: &Path, profile: &str, as_of: &str) -> Vec<serde_json::Value> {
    let output = faktura(&[
        "preview",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--profile",
        profile,
        "--as-of",
        as_of,
        "--format",
        "json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON array")
}

fn dec(value: &serde_json::Value) -> Decimal {
    value.to_string().trim_matches('"').parse().unwrap()
}

/// The text columns of a line's key, as the lines table names them.
const LINE_TEXTS: [&str; 8] = [
    "subscription_id",
    "meter_id",
    "meter_category",
    "meter_name",
    "unit_of_measure",
    "charge_type",
    "publisher_type",
    "pricing_model",
];

/// A line as (its key's texts, covered_by, quantity, cost, amount, rows).
type LineKey = (Vec<String>, String, Decimal, Decimal, Decimal, i64);

fn preview_lines(period: &serde_json::Value) -> BTreeSet<LineKey> {
    period["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let texts = LINE_TEXTS
                .iter()
                .map(|c| l[*c].as_str().unwrap().to_string())
                .collect();
            (
                texts,
                l["covered_by"].as_str().unwrap().to_string(),
                dec(&l["quantity"]).normalize(),
                dec(&l["cost"]).normalize(),
                dec(&l["amount"]).normalize(),
                l["rows"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The decided lines of (profile, kind, period_start), read with arrow-rs.
fn decided_lines(out: &Path, profile: &str, kind: &str, start: &str) -> BTreeSet<LineKey> {
    use arrow::array::AsArray;
    let mut lines = BTreeSet::new();
    for batch in read_parquet_dir(&out.join("lines")) {
        let decimal = |name: &str| {
            let array = batch
                .column_by_name(name)
                .unwrap()
                .as_primitive::<arrow::datatypes::Decimal128Type>()
                .clone();
            let scale = array.scale() as u32;
            (0..array.len())
                .map(|i| Decimal::from_i128_with_scale(array.value(i), scale).normalize())
                .collect::<Vec<_>>()
        };
        let starts = batch
            .column_by_name("period_start")
            .unwrap()
            .as_primitive::<arrow::datatypes::Date32Type>()
            .clone();
        let rows = batch
            .column_by_name("rows")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>()
            .clone();
        let (quantity, cost, amount) = (decimal("quantity"), decimal("cost"), decimal("amount"));
        let text_columns = LINE_TEXTS.map(|c| strings(&batch, c));
        let (profiles, kinds, covered) = (
            strings(&batch, "billing_profile_id"),
            strings(&batch, "kind"),
            strings(&batch, "covered_by"),
        );
        for i in 0..batch.num_rows() {
            if profiles[i] == profile
                && kinds[i] == kind
                && starts.value_as_date(i).unwrap().to_string() == start
            {
                lines.insert((
                    text_columns.iter().map(|c| c[i].clone()).collect(),
                    covered[i].clone(),
                    quantity[i],
                    cost[i],
                    amount[i],
                    rows.value(i),
                ));
            }
        }
    }
    lines
}

/// (profile, kind, period_start) -> the decisions table's row, as strings.
fn decisions(out: &Path) -> BTreeMap<(String, String, String), BTreeMap<String, String>> {
    use arrow::array::{Array, AsArray};
    let mut map = BTreeMap::new();
    for batch in read_parquet_dir(&out.join("decisions")) {
        let starts = batch
            .column_by_name("period_start")
            .unwrap()
            .as_primitive::<arrow::datatypes::Date32Type>()
            .clone();
        let (profiles, kinds, codes) = (
            strings(&batch, "billing_profile_id"),
            strings(&batch, "kind"),
            strings(&batch, "decision"),
        );
        let amounts = [
            "subtotal",
            "trial_covered",
            "monthly_credit",
            "prepaid_credit",
            "carried_in",
            "amount_due",
            "carried_out",
        ];
        for i in 0..batch.num_rows() {
            let mut row = BTreeMap::new();
            row.insert("decision".to_string(), codes[i].clone());
            for name in amounts {
                let array = batch
                    .column_by_name(name)
                    .unwrap()
                    .as_primitive::<arrow::datatypes::Decimal128Type>();
                let value = if array.is_null(i) {
                    "null".to_string()
                } else {
                    Decimal::from_i128_with_scale(array.value(i), 4)
                        .normalize()
                        .to_string()
                };
                row.insert(name.to_string(), value);
            }
            map.insert(
                (
                    profiles[i].clone(),
                    kinds[i].clone(),
                    starts.value_as_date(i).unwrap().to_string(),
                ),
                row,
            );
        }
    }
    map
}

const PROFILES: [&str; 6] = [
    "PRF-NORDLYS-NO",
    "PRF-NORDLYS-SE",
    "PRF-POLDER-NL",
    "PRF-POLDER-LAB",
    "PRF-POLDER-US",
    "7f3c2a10-5b1e-4c2d-9a8e-0d4f6b7c8e91",
];

#[test]
fn the_decision_equals_the_preview_when_the_remaining_days_bring_no_usage() {
    let data = sample_copy();
    let usage = data.path().join("usage");
    // Usage has arrived up to 2026-11-20; the rest of November is to come.
    for day in 21..=30 {
        std::fs::remove_file(usage.join(format!("2026-11-{day}.csv"))).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    run(data.path(), out.path(), "2026-11-20");
    let estimates: BTreeMap<&str, Vec<serde_json::Value>> = PROFILES
        .iter()
        .map(|p| (*p, preview(data.path(), out.path(), p, "2026-11-20")))
        .collect();
    let nordlys = &estimates["PRF-NORDLYS-NO"];
    assert_eq!(nordlys.len(), 1, "{nordlys:?}");
    assert_eq!(nordlys[0]["estimate"], true);
    assert_eq!(nordlys[0]["period_start"], "2026-11-01");
    assert_eq!(nordlys[0]["invoice_number"], serde_json::Value::Null);
    let missing: Vec<String> = (21..=30).map(|d| format!("2026-11-{d}")).collect();
    assert_eq!(nordlys[0]["days_without_usage"], serde_json::json!(missing));

    // The remaining days arrive with no usage; nightly runs until the
    // Swedish profile's period (Nov 15 - Dec 14) closes on Dec 17.
    let header = std::fs::read_to_string(usage.join("2026-11-20.csv"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
        + "\n";
    let mut day = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
    let last = chrono::NaiveDate::from_ymd_opt(2026, 12, 17).unwrap();
    while day <= last {
        if day <= chrono::NaiveDate::from_ymd_opt(2026, 12, 14).unwrap() {
            std::fs::write(usage.join(format!("{day}.csv")), &header).unwrap();
        }
        run(data.path(), out.path(), &day.to_string());
        day = day.succ_opt().unwrap();
    }

    let decided = decisions(out.path());
    let mut compared = 0;
    for (profile, periods) in &estimates {
        for period in periods {
            let kind = period["kind"].as_str().unwrap();
            let start = period["period_start"].as_str().unwrap();
            let key = (profile.to_string(), kind.to_string(), start.to_string());
            let row = decided
                .get(&key)
                .unwrap_or_else(|| panic!("{key:?} decided"));
            assert_eq!(
                row["decision"],
                period["decision"].as_str().unwrap(),
                "{key:?}"
            );
            for (name, value) in row.iter().filter(|(n, _)| *n != "decision") {
                assert_eq!(
                    value,
                    &dec(&period[name.as_str()]).normalize().to_string(),
                    "{key:?} {name}"
                );
            }
            assert_eq!(
                preview_lines(period),
                decided_lines(out.path(), profile, kind, start),
                "{key:?}"
            );
            compared += 1;
        }
    }
    assert!(compared >= 6, "{compared} periods compared");
}

#[test]
fn preview_changes_nothing_under_out_and_answers_while_a_run_holds_the_lock() {
    let data = sample_copy();
    let out = tempfile::tempdir().unwrap();
    run(data.path(), out.path(), "2026-11-20");
    // A run holds the lock (the OS lock faktura takes), as a nightly run
    // in progress would: a second run is refused, preview answers.
    let lock = out.path().join(".lock");
    std::fs::write(&lock, "pid 4242 since 2026-11-20T02:30:00+00:00\n").unwrap();
    let held = std::fs::File::open(&lock).unwrap();
    held.lock().unwrap();
    let (code, stderr) = run(data.path(), out.path(), "2026-11-21");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("pid 4242"), "{stderr}");
    let before: BTreeMap<_, _> = files_under(out.path())
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let modified = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, (bytes, modified))
        })
        .collect();
    let text = faktura(&[
        "preview",
        "--data",
        data.path().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--profile",
        "PRF-NORDLYS-NO",
        "--as-of",
        "2026-11-20",
    ]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("ESTIMATE"), "{text}");
    assert!(text.contains("total 912.84 NOK"), "{text}");
    preview(data.path(), out.path(), "PRF-POLDER-US", "2026-11-20");
    let after: BTreeMap<_, _> = files_under(out.path())
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let modified = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, (bytes, modified))
        })
        .collect();
    assert!(before == after, "preview changed OUT");
    held.unlock().unwrap();

    let output = faktura(&[
        "preview",
        "--data",
        data.path().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--profile",
        "PRF-NOBODY",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PRF-NOBODY"), "{stderr}");
}
