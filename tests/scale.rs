//! Beyond one machine (issue 9): four `faktura ingest --shard I/4` workers
//! into one OUT, then one `faktura run`, give exactly the outputs of a
//! single run.

use std::path::Path;

use crate::common::{faktura_env, read_parquet_dir, snapshot};

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
    let workers: Vec<_> = (0..4)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_faktura"))
                .args([
                    "ingest",
                    "--data",
                    d,
                    "--out",
                    o,
                    "--as-of",
                    "2026-11-10",
                    "--shard",
                    &format!("{i}/4"),
                ])
                .output()
        })
        .collect();
    for w in workers {
        let w = w.unwrap();
        assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    }
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
