//! Billing rules end to end (SPEC §3–§4) on small hand-made data
//! directories: one profile per decision code with the amounts worked out
//! by hand, held periods, payments and `explain`; and days fed in any order.

use std::path::Path;

use crate::common::{explain, faktura, files_under, read_parquet_dir, run, snapshot};

const HEADER: &str = "date,billingAccountId,billingProfileId,subscriptionId,meterId,meterCategory,meterName,unitOfMeasure,quantity,unitPrice,costInBillingCurrency,billingCurrency,chargeType,publisherType";

/// Profiles (USD, calendar months) and what October holds for each:
/// - P-ISSUE: 10.005 on Oct 5 and 5.10 on Oct 6, one line of 15.105 -> 15.11 due.
/// - P-NONE: no usage -> no_charges.
/// - P-NEW: created Oct 20 (31 - 20 = 11 days < 30), 8.00 -> deferred, 8.00 carried.
/// - P-TRIAL: FreeTrial to Oct 31, 3.333 -> trial_covered 3.33, free_trial.
/// - P-CREDIT: MonthlyCredit 50, 20.00 -> credit 20.00, covered_by_credit.
fn rules_dir(dir: &Path) {
    std::fs::create_dir_all(dir.join("usage")).unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    write(
        "accounts.csv",
        "billingAccountId,name,agreement,adminEmail\nA,Acme,MCA,admin@acme.example\n",
    );
    write(
        "profiles.csv",
        "billingProfileId,billingAccountId,name,currency,locale,createdDate,periodStartDay,emailInvoice\n\
         P-ISSUE,A,Issue,USD,en-US,2025-01-01,1,true\n\
         P-NONE,A,None,USD,en-US,2025-01-01,1,true\n\
         P-NEW,A,New,USD,en-US,2026-10-20,1,true\n\
         P-TRIAL,A,Trial,USD,en-US,2025-01-01,1,true\n\
         P-CREDIT,A,Credit,USD,en-US,2025-01-01,1,true\n",
    );
    write(
        "subscriptions.csv",
        "subscriptionId,billingProfileId,name,offer,startDate,trialEndDate,monthlyCredit\n\
         S-ISSUE,P-ISSUE,Issue,PayAsYouGo,2025-01-01,,\n\
         S-NEW,P-NEW,New,PayAsYouGo,2026-10-20,,\n\
         S-TRIAL,P-TRIAL,Trial,FreeTrial,2026-09-01,2026-10-31,\n\
         S-CREDIT,P-CREDIT,Credit,MonthlyCredit,2025-01-01,,50.00\n",
    );
    write(
        "roles.csv",
        "email,name,role,scope,scopeId\nowner@acme.example,Owner,Owner,billingProfile,P-ISSUE\n",
    );
    write(
        "faktura.toml",
        "[billing]\nbilling_start = \"2026-10-01\"\n",
    );
    let rows: &[(&str, &str, &str, &str)] = &[
        ("2026-10-05", "P-ISSUE", "S-ISSUE", "10.005"),
        ("2026-10-06", "P-ISSUE", "S-ISSUE", "5.10"),
        ("2026-10-25", "P-NEW", "S-NEW", "8.00"),
        ("2026-10-10", "P-TRIAL", "S-TRIAL", "3.333"),
        ("2026-10-12", "P-CREDIT", "S-CREDIT", "20.00"),
    ];
    let mut day = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    while day <= chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap() {
        let d = day.to_string();
        let mut text = format!("{HEADER}\n");
        for (_, profile, sub, cost) in rows.iter().filter(|r| r.0 == d) {
            text += &format!(
                "{d},A,{profile},{sub},m1,Virtual Machines,D2s v3,1 Hour,1,{cost},{cost},USD,Usage,Azure\n"
            );
        }
        write(&format!("usage/{d}.csv"), &text);
        day = day.succ_opt().unwrap();
    }
}

#[test]
fn each_decision_code_with_amounts_worked_out_by_hand_and_explained() {
    let data = tempfile::tempdir().unwrap();
    rules_dir(data.path());
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(data.path(), out.path(), "2026-11-03");
    assert_eq!(code, 0, "{stderr}");

    let october = "2026-10";
    let cases = [
        (
            "P-ISSUE",
            "Invoice INV-00000001 for October 2026 (2026-10-01 to 2026-10-31): amount due 15.11 USD, due 2026-12-03, status due.",
        ),
        (
            "P-NONE",
            "No invoice for October 2026 (2026-10-01 to 2026-10-31): there was no usage in the period and nothing carried from earlier periods.",
        ),
        (
            "P-NEW",
            "the amount of 8.00 USD is carried to the next period, not forgiven.",
        ),
        (
            "P-TRIAL",
            "No invoice for October 2026 (2026-10-01 to 2026-10-31): the free trial covered all 3.33 USD of usage.",
        ),
        (
            "P-CREDIT",
            "No invoice for October 2026 (2026-10-01 to 2026-10-31): the monthly credit of 20.00 USD covered all 20.00 USD of usage.",
        ),
    ];
    for (profile, expected) in cases {
        let text = explain(out.path(), profile, Some(october));
        assert!(text.contains(expected), "{profile}: {text}");
    }
    assert!(
        explain(out.path(), "P-ISSUE", Some(october))
            .contains("E-mailed to owner@acme.example (sent).")
    );

    // November: P-NEW is invoiced for its 8.00 carried in.
    let (code, stderr) = run(data.path(), out.path(), "2026-12-03");
    assert_eq!(code, 0, "{stderr}");
    let text = explain(out.path(), "P-NEW", Some("2026-11"));
    assert!(
        text.contains("Invoice INV-00000002 for November 2026"),
        "{text}"
    );
    assert!(text.contains("amount due 8.00 USD"), "{text}");
    assert!(text.contains("carried in 8.00 USD"), "{text}");
}

#[test]
fn held_until_the_missing_day_arrives_then_decided_in_order() {
    let data = tempfile::tempdir().unwrap();
    rules_dir(data.path());
    std::fs::remove_file(data.path().join("usage/2026-10-15.csv")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(data.path(), out.path(), "2026-12-03");
    assert_eq!(code, 3, "{stderr}");
    let text = explain(out.path(), "P-ISSUE", Some("2026-10"));
    assert!(
        text.contains("no usage file arrived for 2026-10-15"),
        "{text}"
    );
    let text = explain(out.path(), "P-ISSUE", Some("2026-11"));
    assert!(
        text.contains("an earlier period of this profile is still held"),
        "{text}"
    );
    assert!(files_under(&out.path().join("invoices")).is_empty());

    // A day that truly had no usage: a header-only file releases it.
    std::fs::write(
        data.path().join("usage/2026-10-15.csv"),
        format!("{HEADER}\n"),
    )
    .unwrap();
    let (code, stderr) = run(data.path(), out.path(), "2026-12-03");
    assert_eq!(code, 0, "{stderr}");
    let numbers: Vec<String> = files_under(&out.path().join("pdf"))
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    // P-ISSUE October, then P-NEW November (period_end order).
    assert_eq!(numbers, ["INV-00000001", "INV-00000002"]);
}

#[test]
fn payments_make_invoices_partly_paid_past_due_then_paid() {
    let data = tempfile::tempdir().unwrap();
    rules_dir(data.path());
    let out = tempfile::tempdir().unwrap();
    run(data.path(), out.path(), "2026-11-03");
    let status = |out: &Path| {
        let text = explain(out, "P-ISSUE", Some("2026-10"));
        text.lines().next().unwrap().to_string()
    };
    // A partial payment by the admin leaves it due; one by someone else is rejected.
    std::fs::write(
        data.path().join("payments.csv"),
        "invoiceNumber,amount,paidDate,paidBy\nINV-00000001,10.00,2026-11-10,Admin@Acme.example\nINV-00000001,5.11,2026-11-10,owner@acme.example\nINV-00000001,-1,2026-11-10,admin@acme.example\n",
    )
    .unwrap();
    let (code, _) = run(data.path(), out.path(), "2026-11-20");
    assert_eq!(code, 3);
    assert!(
        status(out.path()).contains("status due (10.00 USD paid)"),
        "{}",
        status(out.path())
    );
    let rejected = std::fs::read_to_string(out.path().join("rejects/payments.csv")).unwrap();
    assert!(rejected.contains(",3,not_admin,"), "{rejected}");
    assert!(rejected.contains(",4,bad_number,"), "{rejected}");

    // After the due date it is past due.
    let (_, _) = run(data.path(), out.path(), "2026-12-04");
    assert!(
        status(out.path()).contains("status past_due"),
        "{}",
        status(out.path())
    );

    // The rest from the admin: paid. amount_paid is the file's sum, not added to earlier runs.
    std::fs::write(
        data.path().join("payments.csv"),
        "invoiceNumber,amount,paidDate,paidBy\nINV-00000001,10.00,2026-11-10,admin@acme.example\nINV-00000001,5.11,2026-12-05,admin@acme.example\n",
    )
    .unwrap();
    let (code, _) = run(data.path(), out.path(), "2026-12-06");
    assert_eq!(code, 0);
    assert!(
        status(out.path()).contains("status paid (15.11 USD paid)"),
        "{}",
        status(out.path())
    );
    assert!(!out.path().join("rejects/payments.csv").exists());
}

#[test]
fn feeding_the_days_in_any_order_gives_the_same_result() {
    let source = tempfile::tempdir().unwrap();
    let generated = faktura(&[
        "gen",
        "--out",
        source.path().to_str().unwrap(),
        "--days",
        "40",
        "--rows-per-day",
        "150",
        "--profiles",
        "9",
        "--seed",
        "11",
    ]);
    assert!(generated.status.success());
    std::fs::write(
        source.path().join("faktura.toml"),
        "[billing]\nbilling_start = \"2026-10-01\"\n",
    )
    .unwrap();
    let all_at_once = tempfile::tempdir().unwrap();
    run(source.path(), all_at_once.path(), "2026-11-20");

    // The same files arriving in a shuffled order over four nights (same as_of,
    // so decided_on and invoice dates match).
    let mut days: Vec<_> = files_under(&source.path().join("usage"));
    let mut seed = 0x9e37_79b9u64;
    for i in (1..days.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        days.swap(i, (seed >> 33) as usize % (i + 1));
    }
    let data = tempfile::tempdir().unwrap();
    for name in [
        "accounts.csv",
        "profiles.csv",
        "subscriptions.csv",
        "roles.csv",
        "recipients.csv",
        "credits.csv",
        "faktura.toml",
    ] {
        std::fs::copy(source.path().join(name), data.path().join(name)).unwrap();
    }
    std::fs::create_dir_all(data.path().join("usage")).unwrap();
    let out = tempfile::tempdir().unwrap();
    for batch in days.chunks(days.len().div_ceil(4)) {
        for file in batch {
            std::fs::copy(
                file,
                data.path().join("usage").join(file.file_name().unwrap()),
            )
            .unwrap();
        }
        run(data.path(), out.path(), "2026-11-20");
    }
    for folder in ["lines", "decisions", "invoices"] {
        assert_eq!(
            read_parquet_dir(&out.path().join(folder)),
            read_parquet_dir(&all_at_once.path().join(folder)),
            "{folder}"
        );
    }
    let pdfs = |dir: &Path| {
        snapshot(dir)
            .into_iter()
            .filter(|(k, _)| k.starts_with("pdf/"))
            .collect::<Vec<_>>()
    };
    assert_eq!(pdfs(out.path()), pdfs(all_at_once.path()));
    assert!(!pdfs(out.path()).is_empty());
}

#[test]
fn a_month_decided_over_several_nights_has_the_lines_of_one_run() {
    // `lines/` of a month holds periods decided on different nights: the
    // night's own from memory, earlier nights' from the ledger.
    let data = tempfile::tempdir().unwrap();
    let generated = faktura(&[
        "gen",
        "--out",
        data.path().to_str().unwrap(),
        "--days",
        "50",
        "--rows-per-day",
        "120",
        "--profiles",
        "15",
        "--seed",
        "7",
    ]);
    assert!(generated.status.success());
    let mut profiles = csv::Reader::from_path(data.path().join("profiles.csv")).unwrap();
    let column = profiles
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "periodStartDay")
        .unwrap();
    let start_days: Vec<String> = profiles
        .records()
        .map(|r| r.unwrap()[column].to_string())
        .collect();
    assert!(
        start_days.iter().any(|d| d != "1"),
        "some profile's periods start on another day than the 1st: {start_days:?}"
    );
    let at_once = tempfile::tempdir().unwrap();
    run(data.path(), at_once.path(), "2026-11-25");
    let nightly = tempfile::tempdir().unwrap();
    let mut decided = Vec::new();
    for as_of in ["2026-11-05", "2026-11-12", "2026-11-25"] {
        run(data.path(), nightly.path(), as_of);
        let lines = read_parquet_dir(&nightly.path().join("lines/period=2026-10"));
        decided.push(lines.iter().map(|b| b.num_rows()).sum::<usize>());
    }
    assert!(
        decided[0] > 0 && decided[2] > decided[0],
        "October's periods are decided on more than one night: {decided:?}"
    );
    assert_eq!(
        read_parquet_dir(&nightly.path().join("lines")),
        read_parquet_dir(&at_once.path().join("lines"))
    );
}

#[test]
fn late_usage_arriving_on_a_quiet_night_is_billed_on_the_next_period() {
    let data = tempfile::tempdir().unwrap();
    rules_dir(data.path());
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(data.path(), out.path(), "2026-11-03");
    assert_eq!(code, 0, "{stderr}");
    // A second file for 20 October arrives after October was invoiced, on
    // a night when no period closes.
    std::fs::write(
        data.path().join("usage/2026-10-20-late.csv"),
        format!(
            "{HEADER}\n2026-10-20,A,P-ISSUE,S-ISSUE,m1,Virtual Machines,D2s v3,1 Hour,1,2.50,2.50,USD,Usage,Azure\n"
        ),
    )
    .unwrap();
    let (code, stderr) = run(data.path(), out.path(), "2026-11-10");
    assert_eq!(code, 0, "{stderr}");
    assert!(files_under(&out.path().join("invoices/period=2026-11")).is_empty());
    // November closes: its invoice carries October's late 2.50.
    let (code, stderr) = run(data.path(), out.path(), "2026-12-03");
    assert_eq!(code, 0, "{stderr}");
    let text = explain(out.path(), "P-ISSUE", Some("2026-11"));
    assert!(text.contains("INV-00000002"), "{text}");
    // Exactly the late usage: not 12.50, not 2.500.
    assert!(text.contains("amount due 2.50 USD,"), "{text}");
    assert!(text.contains("Subtotal 2.50 USD."), "{text}");
}
