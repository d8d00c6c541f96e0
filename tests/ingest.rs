//! Ingest (SPEC §2): every reject reason, column order and header case,
//! gzip, incremental re-ingest, a killed run, and reference validation.

use std::path::Path;

use arrow::array::RecordBatch;

use crate::common::{faktura, files_under, read_parquet_dir};

const HEADER: &str = "date,billingAccountId,billingProfileId,subscriptionId,meterId,meterCategory,meterName,unitOfMeasure,quantity,unitPrice,costInBillingCurrency,billingCurrency,chargeType,publisherType,pricingModel,isAzureCreditEligible,resourceId";

/// A good row for `day` with cost `cost`.
fn row(day: &str, cost: &str) -> String {
    format!(
        "{day},A,P,S,m1,Virtual Machines,\"D2s v3, Nordic – Øst\",1 Hour,2,0.5,{cost},USD,Usage,Azure,OnDemand,True,/subscriptions/S/vm-1"
    )
}

/// A data directory with one MCA account A, profile P (USD, created
/// 2026-09-20) and PayAsYouGo subscription S starting 2026-10-02.
pub fn reference_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("usage")).unwrap();
    std::fs::write(
        p.join("accounts.csv"),
        "billingAccountId,name,agreement,adminEmail\nA,Acme,MCA,admin@acme.example\n",
    )
    .unwrap();
    std::fs::write(
        p.join("profiles.csv"),
        "billingProfileId,billingAccountId,name,currency,locale,createdDate,periodStartDay,emailInvoice\nP,A,Acme,USD,en-US,2026-09-20,1,true\n",
    )
    .unwrap();
    std::fs::write(
        p.join("subscriptions.csv"),
        "subscriptionId,billingProfileId,name,offer,startDate,trialEndDate,monthlyCredit\nS,P,Main,PayAsYouGo,2026-10-02,,\n",
    )
    .unwrap();
    std::fs::write(
        p.join("roles.csv"),
        "email,name,role,scope,scopeId\nowner@acme.example,Owner,Owner,billingProfile,P\n",
    )
    .unwrap();
    std::fs::write(
        p.join("faktura.toml"),
        "[billing]\nbilling_start = \"2026-10-01\"\n",
    )
    .unwrap();
    dir
}

fn stage(stage: &str, data: &Path, out: &Path) -> i32 {
    let output = faktura(&[
        stage,
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--as-of",
        "2026-10-10",
    ]);
    output.status.code().unwrap()
}

fn rejects(out: &Path) -> Vec<(String, u64, String)> {
    let mut found = Vec::new();
    for path in files_under(&out.join("rejects")) {
        let mut reader = csv::Reader::from_path(&path).unwrap();
        for record in reader.records() {
            let r = record.unwrap();
            found.push((r[0].to_string(), r[1].parse().unwrap(), r[2].to_string()));
        }
    }
    found
}

fn latest_summary(out: &Path) -> serde_json::Value {
    let path = files_under(&out.join("runs")).pop().unwrap();
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn every_reject_reason_names_file_line_and_reason() {
    let data = reference_dir();
    let day = "2026-10-03";
    let good = row(day, "1");
    let rows = [
        (good.clone(), None),
        (good.replacen(day, "2026-13-45", 1), Some("bad_date")),
        (good.replacen(day, "2026-10-04", 1), Some("date_mismatch")),
        (
            good.replacen(",A,P,", ",A,NOPE,", 1),
            Some("unknown_profile"),
        ),
        (
            good.replacen(",S,m1,", ",NOPE,m1,", 1),
            Some("unknown_subscription"),
        ),
        (good.replace(",USD,", ",EUR,"), Some("currency_mismatch")),
        (good.replace(",2,0.5,", ",\"2,5\",0.5,"), Some("bad_number")),
        (good.replace(",Azure,", ",Google,"), Some("bad_enum")),
        (good.replace(",OnDemand,", ",Lease,"), Some("bad_enum")),
        (good.replace(",True,", ",maybe,"), Some("bad_bool")),
        (good.replace(",m1,", ",,"), Some("missing_value")),
        (
            good.replacen(",/subscriptions/S/vm-1", "", 1),
            Some("too_few_fields"),
        ),
        (format!("{good},extra"), Some("too_many_fields")),
        // A quoted field spanning two physical lines: the next row starts one line later.
        (
            good.replace("\"D2s v3, Nordic – Øst\"", "\"D2s v3,\nØst\""),
            None,
        ),
        (good.replace(",2,0.5,", ",abc,0.5,"), Some("bad_number")),
    ];
    let mut text = format!("{HEADER}\n");
    let mut expected = Vec::new();
    let mut line = 2;
    for (r, reason) in &rows {
        text += r;
        text.push('\n');
        if let Some(reason) = reason {
            expected.push((format!("usage/{day}.csv"), line, reason.to_string()));
        }
        line += 1 + r.matches('\n').count() as u64;
    }
    std::fs::write(data.path().join(format!("usage/{day}.csv")), text).unwrap();
    // before_start: dated before the subscription's startDate (2026-10-02).
    std::fs::write(
        data.path().join("usage/2026-10-01.csv"),
        format!("{HEADER}\n{}\n", row("2026-10-01", "1")),
    )
    .unwrap();
    expected.push(("usage/2026-10-01.csv".into(), 2, "before_start".into()));
    // Whole files: a header lacking columns, a corrupt gzip, invalid UTF-8.
    std::fs::write(
        data.path().join("usage/2026-10-04.csv"),
        "date,quantity\n2026-10-04,1\n",
    )
    .unwrap();
    expected.push(("usage/2026-10-04.csv".into(), 1, "missing_columns".into()));
    std::fs::write(
        data.path().join("usage/2026-10-05.csv.gz"),
        b"\x1f\x8b\x08\x00garbage",
    )
    .unwrap();
    expected.push(("usage/2026-10-05.csv.gz".into(), 1, "unreadable".into()));
    let mut bad_utf8 = format!("{HEADER}\n{}\n", row("2026-10-06", "1")).into_bytes();
    bad_utf8.extend_from_slice(
        b"2026-10-06,A,P,S,m1,VM,\xff\xfe,1 Hour,1,1,1,USD,Usage,Azure,OnDemand,True,x\n",
    );
    std::fs::write(data.path().join("usage/2026-10-06.csv"), bad_utf8).unwrap();
    expected.push(("usage/2026-10-06.csv".into(), 1, "unreadable".into()));

    let out = tempfile::tempdir().unwrap();
    assert_eq!(stage("ingest", data.path(), out.path()), 3);
    let mut found = rejects(out.path());
    found.sort();
    expected.sort();
    assert_eq!(found, expected);

    let missing = std::fs::read_to_string(out.path().join("rejects/2026-10-04.csv")).unwrap();
    assert!(
        missing.contains("missing columns: billingAccountId"),
        "{missing}"
    );
    // The bad bytes are on the file's third line (header, a good row, the bad one).
    let invalid = std::fs::read_to_string(out.path().join("rejects/2026-10-06.csv")).unwrap();
    assert!(invalid.contains("invalid UTF-8 on line 3"), "{invalid}");

    // Reconciliation: rows read = accepted + rejected, per day; whole-file rejects count no rows.
    let summary = latest_summary(out.path());
    for day in summary["ingest"]["days_ingested"].as_array().unwrap() {
        let read = day["rows_read"].as_u64().unwrap();
        assert_eq!(
            read,
            day["rows_accepted"].as_u64().unwrap() + day["rows_rejected"].as_u64().unwrap()
        );
        if day["day"] == "2026-10-03" {
            assert_eq!((read, day["rows_accepted"].as_u64().unwrap()), (15, 2));
            assert_eq!(day["accepted_cost"], "2");
        }
        if day["day"] == "2026-10-04" || day["day"] == "2026-10-05" {
            assert_eq!(read, 0);
            assert_eq!(day["present"], false);
        }
    }
}

/// Usage batches without `source_file`, for comparing twins of one file.
fn usage_without_source(out: &Path) -> Vec<RecordBatch> {
    read_parquet_dir(&out.join("usage"))
        .into_iter()
        .map(|b| {
            let keep: Vec<usize> = (0..b.num_columns())
                .filter(|i| b.schema().field(*i).name() != "source_file")
                .collect();
            b.project(&keep).unwrap()
        })
        .collect()
}

fn day_text(day: &str) -> String {
    let mut text = format!("{HEADER}\n");
    for i in 0..40 {
        text += &row(day, &format!("{i}.{i:02}5"));
        text.push('\n');
    }
    text += &row(day, "-3.25").replace("Usage", "Refund");
    text.push('\n');
    text
}

#[test]
fn gzip_file_equals_its_plain_twin() {
    use std::io::Write;
    let plain = reference_dir();
    let gzipped = reference_dir();
    let text = day_text("2026-10-03");
    std::fs::write(plain.path().join("usage/2026-10-03.csv"), &text).unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    std::fs::write(
        gzipped.path().join("usage/2026-10-03.csv.gz"),
        encoder.finish().unwrap(),
    )
    .unwrap();
    let (out_plain, out_gz) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_eq!(stage("ingest", plain.path(), out_plain.path()), 0);
    assert_eq!(stage("ingest", gzipped.path(), out_gz.path()), 0);
    let batches = usage_without_source(out_plain.path());
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 41);
    assert_eq!(batches, usage_without_source(out_gz.path()));
}

#[test]
fn shuffled_columns_and_header_case_give_identical_parquet() {
    let text = day_text("2026-10-03");
    let baseline = reference_dir();
    std::fs::write(baseline.path().join("usage/2026-10-03.csv"), &text).unwrap();
    let out = tempfile::tempdir().unwrap();
    assert_eq!(stage("ingest", baseline.path(), out.path()), 0);
    let expected = read_parquet_dir(&out.path().join("usage"));

    // A property over permutations: a seeded shuffle of the columns and a
    // seeded mix of upper/lower case in every header name, plus a BOM and CRLF.
    let rows: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for case in 0..6 {
        let mut order: Vec<usize> = (0..rows[0].len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(vec![0xEF, 0xBB, 0xBF]);
        for (i, r) in rows.iter().enumerate() {
            let cells: Vec<String> = order
                .iter()
                .map(|&c| {
                    if i > 0 {
                        return r[c].clone();
                    }
                    r[c].chars()
                        .map(|ch| {
                            if next() % 2 == 0 {
                                ch.to_ascii_uppercase()
                            } else {
                                ch.to_ascii_lowercase()
                            }
                        })
                        .collect()
                })
                .collect();
            writer.write_record(&cells).unwrap();
        }
        let data = reference_dir();
        std::fs::write(
            data.path().join("usage/2026-10-03.csv"),
            writer.into_inner().unwrap(),
        )
        .unwrap();
        let out = tempfile::tempdir().unwrap();
        assert_eq!(stage("ingest", data.path(), out.path()), 0, "case {case}");
        let got = read_parquet_dir(&out.path().join("usage"));
        assert_eq!(got.len(), expected.len(), "case {case}");
        for (g, e) in got.iter().zip(&expected) {
            for (i, field) in e.schema().fields().iter().enumerate() {
                assert_eq!(
                    g.column(i),
                    e.column(i),
                    "case {case}: column {} (order {order:?})",
                    field.name()
                );
            }
        }
    }
}

#[test]
fn changed_file_is_reingested_and_unchanged_one_is_not() {
    let data = reference_dir();
    for day in ["2026-10-03", "2026-10-04", "2026-10-05"] {
        std::fs::write(data.path().join(format!("usage/{day}.csv")), day_text(day)).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    assert_eq!(stage("ingest", data.path(), out.path()), 0);
    let first = std::fs::read(out.path().join("usage/date=2026-10-03/usage.parquet")).unwrap();

    // Unchanged: nothing ingested, nothing rewritten.
    assert_eq!(stage("ingest", data.path(), out.path()), 0);
    let summary = latest_summary(out.path());
    assert_eq!(
        summary["ingest"]["days_ingested"].as_array().unwrap().len(),
        0
    );
    assert_eq!(summary["ingest"]["days_unchanged"], 3);

    // One day changes: only it is ingested again, and its partition replaced.
    let changed = day_text("2026-10-04") + &row("2026-10-04", "100") + "\n";
    std::fs::write(data.path().join("usage/2026-10-04.csv"), changed).unwrap();
    assert_eq!(stage("ingest", data.path(), out.path()), 0);
    let summary = latest_summary(out.path());
    let days = summary["ingest"]["days_ingested"].as_array().unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0]["day"], "2026-10-04");
    assert_eq!(days[0]["rows_accepted"], 42);
    assert_eq!(summary["ingest"]["days_unchanged"], 2);
    assert_eq!(
        std::fs::read(out.path().join("usage/date=2026-10-03/usage.parquet")).unwrap(),
        first
    );
}

#[test]
fn a_killed_ingest_leaves_no_partial_partition_and_the_next_run_completes_it() {
    let data = crate::common::generated(4, 60000, 12, 3);
    let reference_out = tempfile::tempdir().unwrap();
    assert_eq!(stage("ingest", data.path(), reference_out.path()), 0);
    let expected = read_parquet_dir(&reference_out.path().join("usage"));

    // Kill points found by watching what the run has done, not by sleeping:
    // a partition being written, then one and two days in place.
    let partitions = |out: &Path| {
        files_under(&out.join("usage"))
            .iter()
            .filter(|p| p.file_name().is_some_and(|n| n == "usage.parquet"))
            .count()
    };
    type Milestone = (&'static str, Box<dyn Fn(&Path) -> bool>);
    let milestones: Vec<Milestone> = vec![
        (
            "a partition is being written",
            Box::new(|o| !files_under(&o.join("usage")).is_empty()),
        ),
        ("one day in place", Box::new(move |o| partitions(o) >= 1)),
        ("two days in place", Box::new(move |o| partitions(o) >= 2)),
    ];
    let mut kills = 0;
    for (moment, reached) in &milestones {
        let out = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_faktura"))
            .args([
                "ingest",
                "--data",
                data.path().to_str().unwrap(),
                "--out",
                out.path().to_str().unwrap(),
                "--as-of",
                "2026-10-10",
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while child.try_wait().unwrap().is_none()
            && !reached(out.path())
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        let when = moment;
        // Whatever is in place is a complete parquet file (readable), never a partial one.
        for path in files_under(&out.path().join("usage")) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name == "usage.parquet" {
                read_parquet_dir(path.parent().unwrap());
            }
        }
        assert_eq!(
            stage("ingest", data.path(), out.path()),
            0,
            "re-run after a kill when {when}"
        );
        assert!(
            files_under(out.path())
                .iter()
                .all(|p| !p.to_string_lossy().contains(".tmp-"))
        );
        assert_eq!(
            read_parquet_dir(&out.path().join("usage")),
            expected,
            "after a kill when {when}"
        );
    }
    assert!(
        kills >= 2,
        "only {kills} of {} runs were still running when killed",
        milestones.len()
    );
}

#[test]
fn invalid_reference_data_names_file_line_column_and_value_and_writes_nothing() {
    let data = reference_dir();
    std::fs::write(
        data.path().join("profiles.csv"),
        "billingProfileId,billingAccountId,name,currency,locale,createdDate\nP,A,Acme,NKO,en-US,2026-09-20\nP,GHOST,Acme,USD,xx-XX,20260920\n",
    )
    .unwrap();
    let out = data.path().join("out");
    let output = faktura(&[
        "run",
        "--data",
        data.path().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--as-of",
        "2026-10-10",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "profiles.csv line 2, column `currency`, value \"NKO\"",
        "profiles.csv line 3, column `billingProfileId`, value \"P\": duplicate id",
        "profiles.csv line 3, column `billingAccountId`, value \"GHOST\"",
        "profiles.csv line 3, column `locale`, value \"xx-XX\"",
        "profiles.csv line 3, column `createdDate`, value \"20260920\"",
    ] {
        assert!(stderr.contains(expected), "{expected} not in {stderr}");
    }
    assert!(!out.exists(), "OUT was created");
}

/// A new file is hashed as it is read to be ingested: the ledger holds each
/// file's size and BLAKE3 hash (taken here with blake3 from the file as it
/// is on disk), for a file with a BOM and CRLF, one rejected whole for its
/// columns, one found unreadable part-way and a gzip alike; a second run
/// then finds every day unchanged.
#[test]
fn files_are_fingerprinted_as_read_and_a_second_run_finds_them_unchanged() {
    let data = reference_dir();
    let usage = data.path().join("usage");
    let crlf = format!("\u{feff}{}", day_text("2026-10-03")).replace('\n', "\r\n");
    std::fs::write(usage.join("2026-10-03.csv"), crlf).unwrap();
    std::fs::write(usage.join("2026-10-04-a.csv"), "no,usage,columns\n1,2,3\n").unwrap();
    let mut broken = day_text("2026-10-04").into_bytes();
    broken.extend_from_slice(b"2026-10-04,A,P,S,m1,\xff\n");
    std::fs::write(usage.join("2026-10-04-b.csv"), broken).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, day_text("2026-10-05").as_bytes()).unwrap();
    std::fs::write(usage.join("2026-10-05.csv.gz"), gz.finish().unwrap()).unwrap();

    // Exit 3: two files are rejected whole, which needs a person.
    let out = tempfile::tempdir().unwrap();
    assert_eq!(stage("ingest", data.path(), out.path()), 3);
    let on_disk = hashed_files(&usage, |bytes| {
        format!("blake3:{}", blake3::hash(bytes).to_hex())
    });
    assert_eq!(recorded_hashes(out.path()), on_disk);

    stage("ingest", data.path(), out.path());
    let summary = latest_summary(out.path());
    assert_eq!(
        summary["ingest"]["days_ingested"].as_array().unwrap().len(),
        0
    );
    assert_eq!(summary["ingest"]["days_unchanged"], 3);
}

/// A ledger of version 3 named the hash columns `sha256` and held SHA-256
/// hashes: opened, its columns are renamed, its hashes kept, and files
/// whose modification time moved are hashed with SHA-256 to compare them,
/// so an unchanged day is not ingested again; a changed file is, and its
/// new hash is BLAKE3's.
#[test]
fn sha256_hashes_of_an_older_ledger_still_find_unchanged_files() {
    let data = reference_dir();
    let usage = data.path().join("usage");
    std::fs::write(usage.join("2026-10-03.csv"), day_text("2026-10-03")).unwrap();
    std::fs::write(usage.join("2026-10-04.csv"), day_text("2026-10-04")).unwrap();
    let out = tempfile::tempdir().unwrap();
    assert_eq!(stage("ingest", data.path(), out.path()), 0);

    // The ledger as version 3 wrote it.
    let sha256 = |bytes: &[u8]| -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(bytes);
        digest.iter().map(|b| format!("{b:02x}")).collect()
    };
    let old_hashes = hashed_files(&usage, sha256);
    let ledger = rusqlite::Connection::open(out.path().join("ledger.sqlite")).unwrap();
    for table in ["ingested_files", "file_stamps"] {
        ledger
            .execute_batch(&format!(
                "ALTER TABLE {table} RENAME COLUMN content_hash TO sha256"
            ))
            .unwrap();
        for (path, _, hash) in &old_hashes {
            ledger
                .execute(
                    &format!("UPDATE {table} SET sha256 = ?1 WHERE path = ?2"),
                    [hash, path],
                )
                .unwrap();
        }
    }
    ledger.pragma_update(None, "user_version", 3).unwrap();
    drop(ledger);
    // Copied back or touched: same bytes, another modification time.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    for name in ["2026-10-03.csv", "2026-10-04.csv"] {
        let file = std::fs::File::options()
            .append(true)
            .open(usage.join(name))
            .unwrap();
        file.set_modified(later).unwrap();
    }

    assert_eq!(stage("ingest", data.path(), out.path()), 0);
    let summary = latest_summary(out.path());
    assert_eq!(summary["ingest"]["days_unchanged"], 2, "{summary}");
    assert_eq!(recorded_hashes(out.path()), old_hashes);

    let changed = day_text("2026-10-04").replace("-3.25", "-4.25");
    assert_ne!(changed, day_text("2026-10-04"), "the day's text changed");
    std::fs::write(usage.join("2026-10-04.csv"), changed).unwrap();
    assert_eq!(stage("ingest", data.path(), out.path()), 0);
    let summary = latest_summary(out.path());
    assert_eq!(summary["ingest"]["days_unchanged"], 1, "{summary}");
    let recorded = recorded_hashes(out.path());
    assert_eq!(recorded[0], old_hashes[0]);
    let bytes = std::fs::read(usage.join("2026-10-04.csv")).unwrap();
    assert_eq!(
        recorded[1].2,
        format!("blake3:{}", blake3::hash(&bytes).to_hex())
    );
}

/// Path (relative to DATA), size and content hash of each file in `usage`.
fn hashed_files(usage: &Path, hash: impl Fn(&[u8]) -> String) -> Vec<(String, i64, String)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(usage).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        files.push((format!("usage/{name}"), bytes.len() as i64, hash(&bytes)));
    }
    files.sort();
    files
}

/// The ingested files the ledger in `out` records, by path.
fn recorded_hashes(out: &Path) -> Vec<(String, i64, String)> {
    let ledger = rusqlite::Connection::open(out.join("ledger.sqlite")).unwrap();
    ledger
        .prepare("SELECT path, size, content_hash FROM ingested_files ORDER BY path")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Real EA exports (`tests/data/azure/`, unchanged), split by their date
/// column into daily files as an operator's script would, with reference
/// files made from their ids: every row is accepted (SPEC §2: EA's `Cost`,
/// `billingCurrencyCode`, `MM/DD/YYYY` and `9/2/2023` dates, a BOM, CRLF),
/// and the accepted cost is the file's, to the last decimal.
#[test]
fn real_ea_exports_are_read_row_for_row() {
    use std::collections::{BTreeMap, BTreeSet};
    let exports = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/azure");
    for export in files_under(&exports) {
        if export.extension().is_none_or(|e| e != "csv") {
            continue;
        }
        let text = std::fs::read_to_string(&export).unwrap();
        let text = text.trim_start_matches('\u{feff}');
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header = reader.headers().unwrap().clone();
        let column = |names: &[&str]| {
            header
                .iter()
                .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
                .unwrap()
        };
        let (date, account, profile, subscription) = (
            column(&["Date"]),
            column(&["BillingAccountId"]),
            column(&["BillingProfileId"]),
            column(&["SubscriptionId"]),
        );
        let (cost, currency) = (
            column(&["Cost", "CostInBillingCurrency"]),
            column(&["BillingCurrency", "BillingCurrencyCode"]),
        );
        let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        let data = tempfile::tempdir().unwrap();
        let mut days: BTreeMap<String, Vec<&csv::StringRecord>> = BTreeMap::new();
        for r in &records {
            let parts: Vec<u32> = r[date].split('/').map(|p| p.parse().unwrap()).collect();
            let day = format!("{:04}-{:02}-{:02}", parts[2], parts[0], parts[1]);
            days.entry(day).or_default().push(r);
        }
        std::fs::create_dir_all(data.path().join("usage")).unwrap();
        for (day, rows) in &days {
            let mut writer =
                csv::Writer::from_path(data.path().join(format!("usage/{day}.csv"))).unwrap();
            writer.write_record(&header).unwrap();
            for r in rows {
                writer.write_record(*r).unwrap();
            }
        }
        let set = |f: &dyn Fn(&csv::StringRecord) -> String| -> BTreeSet<String> {
            records.iter().map(f).collect()
        };
        let write = |name: &str, head: &str, lines: BTreeSet<String>| {
            let body: String = lines.into_iter().map(|l| l + "\n").collect();
            std::fs::write(data.path().join(name), format!("{head}\n{body}")).unwrap();
        };
        write(
            "accounts.csv",
            "billingAccountId,name,agreement,adminEmail",
            set(&|r| format!("{},EA,MCA,admin@ea.example", &r[account])),
        );
        write(
            "profiles.csv",
            "billingProfileId,billingAccountId,name,currency,locale,createdDate,periodStartDay,emailInvoice",
            set(&|r| {
                format!(
                    "{},{},P,{},en-US,2020-01-01,1,false",
                    &r[profile], &r[account], &r[currency]
                )
            }),
        );
        write(
            "subscriptions.csv",
            "subscriptionId,billingProfileId,name,offer,startDate",
            set(&|r| {
                format!(
                    "{},{},S,PayAsYouGo,2020-01-01",
                    &r[subscription], &r[profile]
                )
            }),
        );
        write(
            "roles.csv",
            "email,name,role,scope,scopeId",
            BTreeSet::new(),
        );
        let out = tempfile::tempdir().unwrap();
        let code = stage("ingest", data.path(), out.path());
        let name = export.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(code, 0, "{name}: {:?}", rejects(out.path()));
        let summary = latest_summary(out.path());
        let r = &summary["reconciliation"];
        assert_eq!(r["rows_read"], records.len(), "{name}");
        assert_eq!(r["rows_accepted"], records.len(), "{name}");
        // The accepted cost is the sum of the export's cost column, each
        // value rounded half-to-even to 10 fraction digits (SPEC §2).
        let expected: rust_decimal::Decimal = records
            .iter()
            .map(|r| {
                let value = rust_decimal::Decimal::from_scientific(&r[cost])
                    .or_else(|_| r[cost].parse())
                    .unwrap();
                value
                    .round_dp_with_strategy(10, rust_decimal::RoundingStrategy::MidpointNearestEven)
            })
            .sum();
        let accepted: rust_decimal::Decimal = r["accepted_cost"].as_str().unwrap().parse().unwrap();
        assert_eq!(accepted.normalize(), expected.normalize(), "{name}");
    }
}

/// `faktura gen --shape plain` and `--shape wide` (issue 34): the same seed
/// gives the same bytes; plain has 16 columns and nothing quoted, wide
/// Azure's 65 MCA columns at over 1 KB a row; every row of both is
/// accepted.
#[test]
fn the_plain_and_wide_shapes_are_reproducible_and_read_row_for_row() {
    for (shape, columns) in [("plain", 16), ("wide", 65)] {
        let generate = |dir: &Path| {
            let output = faktura(&[
                "gen",
                "--out",
                dir.to_str().unwrap(),
                "--days",
                "2",
                "--rows-per-day",
                "3000",
                "--profiles",
                "40",
                "--seed",
                "11",
                "--shape",
                shape,
            ]);
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        generate(a.path());
        generate(b.path());
        for file in files_under(a.path()) {
            let twin = b.path().join(file.strip_prefix(a.path()).unwrap());
            assert!(
                std::fs::read(&file).unwrap() == std::fs::read(&twin).unwrap(),
                "{shape}: {}",
                file.display()
            );
        }
        let day = std::fs::read_to_string(a.path().join("usage/2026-10-01.csv")).unwrap();
        let mut reader = csv::Reader::from_reader(day.as_bytes());
        assert_eq!(reader.headers().unwrap().len(), columns, "{shape}");
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert!(rows.iter().all(|r| r.len() == columns), "{shape}");
        if shape == "plain" {
            assert!(!day.contains('"'), "plain: a quoted field");
        } else {
            let bytes = day.len() / (rows.len() + 1);
            assert!(bytes > 1024, "wide: {bytes} bytes a row");
        }
        let out = tempfile::tempdir().unwrap();
        assert_eq!(
            stage("ingest", a.path(), out.path()),
            0,
            "{shape}: {:?}",
            rejects(out.path())
        );
        let r = &latest_summary(out.path())["reconciliation"];
        assert_eq!(r["rows_read"], 6000, "{shape}");
        assert_eq!(r["rows_accepted"], 6000, "{shape}");
    }
}
