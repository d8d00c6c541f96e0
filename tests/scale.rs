//! Beyond one machine (issue 9): four `faktura ingest --shard I/4` workers
//! into one OUT, then one `faktura run`, give exactly the outputs of a
//! single run.

use std::path::Path;

use crate::common::{faktura_env, ingest_shards_at_once, read_parquet_dir, snapshot};

#[test]
fn four_shards_then_one_run_equal_a_single_run() {
    let data = crate::common::generated(35, 400, 10, 9);
    let d = data.path().to_str().unwrap();
    std::fs::write(
        data.path().join("faktura.toml"),
        "[billing]\nbilling_start = \"2026-10-01\"\n",
    )
    .unwrap();

    let single = tempfile::tempdir().unwrap();
    let (code, stderr) = faktura_env(
        &[
            "run",
            "--data",
            d,
            "--out",
            single.path().to_str().unwrap(),
            "--as-of",
            "2026-11-10",
        ],
        &[],
    );
    // Periods ending after the last generated day are held: always exit 3.
    assert_eq!(code, 3, "{stderr}");

    let sharded = tempfile::tempdir().unwrap();
    let o = sharded.path().to_str().unwrap();
    // The workers run at the same time, as an Indexed Job's pods would.
    ingest_shards_at_once(d, sharded.path(), "2026-11-10", 4, &[]);
    assert!(
        !sharded.path().join("ledger.sqlite").exists(),
        "shard workers never touch the ledger"
    );
    assert_eq!(
        std::fs::read_dir(sharded.path().join("manifests"))
            .unwrap()
            .count(),
        4
    );

    let (code, stderr) = faktura_env(
        &["run", "--data", d, "--out", o, "--as-of", "2026-11-10"],
        &[],
    );
    // Periods ending after the last generated day are held: always exit 3.
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("0 days ingested, 35 unchanged"),
        "the run adopts the shards' days: {stderr}"
    );
    for folder in ["usage", "lines", "decisions", "invoices"] {
        assert_eq!(
            read_parquet_dir(&sharded.path().join(folder)),
            read_parquet_dir(&single.path().join(folder)),
            "{folder}"
        );
    }
    let outputs = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        snapshot(dir)
            .into_iter()
            .filter(|(k, _)| !k.starts_with("manifests/"))
            .collect()
    };
    assert!(
        outputs(sharded.path()) == outputs(single.path()),
        "every output file is identical"
    );
}

#[test]
fn a_shard_needs_a_valid_spec_and_a_configured_billing_start() {
    let data = crate::common::generated(2, 10, 2, 1);
    let d = data.path().to_str().unwrap();
    let out = data.path().join("out");
    let o = out.to_str().unwrap();
    let (code, stderr) = faktura_env(&["ingest", "--data", d, "--out", o, "--shard", "4/4"], &[]);
    assert_eq!(code, 2, "{stderr}");
    let (code, stderr) = faktura_env(&["ingest", "--data", d, "--out", o, "--shard", "0/2"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("billing_start"), "{stderr}");
}

/// `faktura gen --shape azure` (issue 17): a large tenant's shape that
/// faktura reads whole, with the mix the issue names, and whose month-end
/// lines (a file per month, written a row group at a time) sum to the
/// accepted usage cost.
#[test]
fn an_azure_shaped_month_is_accepted_whole_and_its_lines_reconcile() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().to_str().unwrap();
    let gen_args = [
        "gen",
        "--out",
        d,
        "--days",
        "31",
        "--rows-per-day",
        "3000",
        "--profiles",
        "40",
        "--seed",
        "17",
        "--shape",
        "azure",
    ];
    let output = crate::common::faktura(&gen_args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The shape: tags, Azure's charge and pricing mix, up to 8 fraction
    // digits, 5-40 meters a subscription, skewed volumes.
    let mut charges = std::collections::BTreeMap::<String, u64>::new();
    let mut pricing = std::collections::BTreeSet::new();
    let mut meters =
        std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
    let mut rows_of = std::collections::BTreeMap::<String, u64>::new();
    let mut most_digits = 0;
    for entry in std::fs::read_dir(data.path().join("usage")).unwrap() {
        let mut reader = csv::Reader::from_path(entry.unwrap().path()).unwrap();
        assert_eq!(reader.headers().unwrap().iter().next_back(), Some("tags"));
        for record in reader.records() {
            let r = record.unwrap();
            *charges.entry(r[12].to_string()).or_default() += 1;
            pricing.insert(r[14].to_string());
            meters
                .entry(r[3].to_string())
                .or_default()
                .insert(r[4].to_string());
            *rows_of.entry(r[3].to_string()).or_default() += 1;
            let digits = r[8].split_once('.').map_or(0, |(_, f)| f.len());
            most_digits = most_digits.max(digits);
        }
    }
    let total: u64 = charges.values().sum();
    let share = |charge: &str| charges.get(charge).copied().unwrap_or(0) as f64 / total as f64;
    assert!((0.95..0.99).contains(&share("Usage")), "{charges:?}");
    assert!((0.01..0.03).contains(&share("Purchase")), "{charges:?}");
    assert!((0.004..0.02).contains(&share("Refund")), "{charges:?}");
    assert_eq!(pricing.len(), 4, "{pricing:?}");
    assert_eq!(most_digits, 8);
    assert!(meters.values().all(|m| m.len() <= 40));
    assert!(meters.values().any(|m| m.len() > 20));
    let (busiest, quietest) = (
        rows_of.values().max().unwrap(),
        rows_of.values().min().unwrap(),
    );
    assert!(
        *busiest > 5 * quietest,
        "volumes are skewed: {busiest} vs {quietest}"
    );

    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = crate::common::run(data.path(), out.path(), "2026-11-05");
    assert!(code == 0 || code == 3, "{stderr}");
    let summary_path = crate::common::files_under(&out.path().join("runs"))
        .pop()
        .unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(summary_path).unwrap()).unwrap();
    let totals = &summary["reconciliation"];
    assert_eq!(totals["rows_read"], 93_000);
    assert_eq!(totals["rows_rejected"], 0, "{stderr}");
    assert!(
        summary["peak_rss_mb"]["aggregate"]
            .as_f64()
            .is_some_and(|mb| mb > 0.0)
    );

    // October's lines of the calendar-month profiles, read back by
    // arrow-rs, cost exactly what their October usage rows cost.
    let calendar: std::collections::BTreeSet<String> =
        csv::Reader::from_path(data.path().join("profiles.csv"))
            .unwrap()
            .records()
            .map(|r| r.unwrap())
            .filter(|r| &r[6] == "1")
            .map(|r| r[0].to_string())
            .collect();
    let mut usage_cost: i128 = 0;
    for entry in std::fs::read_dir(data.path().join("usage")).unwrap() {
        let mut reader = csv::Reader::from_path(entry.unwrap().path()).unwrap();
        for record in reader.records() {
            let r = record.unwrap();
            if calendar.contains(&r[2]) {
                usage_cost += scaled_10(&r[10]);
            }
        }
    }
    let mut lines_cost: i128 = 0;
    let mut lines = 0;
    for batch in crate::common::read_parquet_dir(&out.path().join("lines/period=2026-10")) {
        let profiles = crate::common::strings(&batch, "billing_profile_id");
        let cost = batch.column_by_name("cost").unwrap();
        let cost = cost
            .as_any()
            .downcast_ref::<arrow::array::Decimal128Array>()
            .unwrap();
        assert_eq!(cost.scale(), 10);
        for (i, profile) in profiles.iter().enumerate() {
            if calendar.contains(profile) {
                lines_cost += cost.value(i);
                lines += 1;
            }
        }
    }
    assert!(lines > 1_000, "{lines} lines");
    assert_eq!(lines_cost, usage_cost);
}

/// A decimal as an integer of 10^-10.
fn scaled_10(text: &str) -> i128 {
    let (negative, digits) = text.strip_prefix('-').map_or((false, text), |t| (true, t));
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let value: i128 = format!("{whole}{fraction:0<10}").parse().unwrap();
    if negative { -value } else { value }
}
