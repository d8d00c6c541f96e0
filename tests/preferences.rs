//! preferences.csv (SPEC §2.3, issue 15): every reject reason, changes that
//! wait for their date, invoices that keep the recipients they were issued
//! with, and `explain` telling who changed what and who was refused.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::{explain, faktura, files_under, run, sample_copy};

const HEADER: &str = "billingProfileId,setting,value,changedBy,changedDate";

fn write_preferences(data: &Path, rows: &[&str]) {
    let text = std::iter::once(HEADER)
        .chain(rows.iter().copied())
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(data.join("preferences.csv"), text + "\n").unwrap();
}

/// `rejects/preferences.csv` as (line, reason).
fn rejects(out: &Path) -> Vec<(u64, String)> {
    let path = out.join("rejects/preferences.csv");
    let mut reader = csv::Reader::from_path(&path).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(&r[0], "preferences.csv");
            (r[1].parse().unwrap(), r[2].to_string())
        })
        .collect()
}

/// Who the outbox holds messages for, per invoice number.
fn outbox(out: &Path) -> BTreeSet<(String, String)> {
    files_under(&out.join("outbox"))
        .into_iter()
        .map(|p| {
            let invoice = p.parent().unwrap().file_name().unwrap().to_string_lossy();
            let recipient = p.file_stem().unwrap().to_string_lossy();
            (invoice.into_owned(), recipient.into_owned())
        })
        .collect()
}

#[test]
fn each_reject_reason_names_its_line_and_the_run_goes_on() {
    let data = sample_copy();
    let mosp = "7f3c2a10-5b1e-4c2d-9a8e-0d4f6b7c8e91";
    write_preferences(
        data.path(),
        &[
            // 2: a Reader may not change it
            "PRF-NORDLYS-SE,emailInvoice,false,anna.lindqvist@nordlys.example,2026-11-10",
            // 3: nor an invalid changedBy
            "PRF-NORDLYS-SE,emailInvoice,false,anna..lindqvist@nordlys.example,2026-11-10",
            // 4: a MOSP setting on an MCA profile
            "PRF-NORDLYS-SE,addRecipient,x@nordlys.example,ingrid.haugen@nordlys.example,2026-11-10",
            // 5
            "PRF-NOPE,emailInvoice,true,ingrid.haugen@nordlys.example,2026-11-10",
            // 6
            "PRF-NORDLYS-SE,emailInvoices,true,ingrid.haugen@nordlys.example,2026-11-10",
            // 7
            "PRF-NORDLYS-SE,emailInvoice,maybe,ingrid.haugen@nordlys.example,2026-11-10",
            // 8
            &format!("{mosp},addRecipient,kontor@astrom,bjorn@astrom.example,2026-11-10"),
            // 9
            "PRF-NORDLYS-SE,emailInvoice,false,ingrid.haugen@nordlys.example,11/10/2026",
            // 10
            "PRF-NORDLYS-SE,emailInvoice,,ingrid.haugen@nordlys.example,2026-11-10",
            // 11
            "PRF-NORDLYS-SE,emailInvoice,false,ingrid.haugen@nordlys.example",
            // 12
            "PRF-NORDLYS-SE,emailInvoice,false,ingrid.haugen@nordlys.example,2026-11-10,extra",
            // 13: someone else than the MOSP admin
            &format!("{mosp},emailInvoice,false,bjorn.billing@astrom.example,2026-11-10"),
            // 14: accepted (an account Owner, any case)
            "prf-nordlys-se,emailInvoice,true,Ingrid.Haugen@Nordlys.example,2026-11-10",
        ],
    );
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(data.path(), out.path(), "2026-12-03");
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("13 e-mail preference changes rejected"),
        "{stderr}"
    );
    let expected: Vec<(u64, String)> = [
        (2, "not_authorized"),
        (3, "not_authorized"),
        (4, "mosp_only"),
        (5, "unknown_profile"),
        (6, "bad_enum"),
        (7, "bad_bool"),
        (8, "bad_email"),
        (9, "bad_date"),
        (10, "missing_value"),
        (11, "too_few_fields"),
        (12, "too_many_fields"),
        (13, "not_authorized"),
        // Profile ids match exactly, as everywhere else.
        (14, "unknown_profile"),
    ]
    .into_iter()
    .map(|(l, r)| (l, r.to_string()))
    .collect();
    assert_eq!(rejects(out.path()), expected);
    // Nothing refused took effect: the sample's recipients are unchanged.
    let sent = outbox(out.path());
    assert!(sent.contains(&(
        "INV-00000005".to_string(),
        "anna.lindqvist@nordlys.example".to_string()
    )));
    assert!(
        sent.iter()
            .any(|(i, r)| i == "INV-00000001" && r == "bjorn.billing@astrom.example")
    );
    let summary = files_under(&out.path().join("runs"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary[0]).unwrap()).unwrap();
    assert_eq!(summary["preferences_rejected"], 13);
}

#[test]
fn a_file_lacking_a_column_is_rejected_whole_and_changes_nothing() {
    let data = sample_copy();
    std::fs::write(
        data.path().join("preferences.csv"),
        "billingProfileId,setting,value,changedBy\nPRF-POLDER-US,emailInvoice,true,emma.jones@polder.example\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(data.path(), out.path(), "2026-12-03");
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(
        rejects(out.path()),
        vec![(1, "missing_columns".to_string())]
    );
    let text = std::fs::read_to_string(out.path().join("rejects/preferences.csv")).unwrap();
    assert!(text.contains("changedDate"), "{text}");
    // PRF-POLDER-US stays opted out (profiles.csv).
    assert!(!outbox(out.path()).iter().any(|(i, _)| i == "INV-00000009"));
}

#[test]
fn a_change_waits_for_its_date_and_issued_invoices_keep_their_recipients() {
    let data = sample_copy();
    write_preferences(
        data.path(),
        &[
            // The account Owner opts PRF-NORDLYS-NO out on 15 November.
            "PRF-NORDLYS-NO,emailInvoice,false,ingrid.haugen@nordlys.example,2026-11-15",
            // The profile's Owner opts PRF-POLDER-US in on 20 November.
            "PRF-POLDER-US,emailInvoice,true,emma.jones@polder.example,2026-11-20",
        ],
    );
    let out = tempfile::tempdir().unwrap();
    // 3 November: October is invoiced; both changes lie ahead and wait.
    let (code, stderr) = run(data.path(), out.path(), "2026-11-03");
    assert_eq!(code, 3, "{stderr}");
    assert!(
        !out.path().join("rejects/preferences.csv").exists(),
        "later-dated changes are kept, not rejected"
    );
    let october = outbox(out.path());
    let nordlys_october = (
        "INV-00000003".to_string(),
        "ola.nordmann@nordlys.example".to_string(),
    );
    assert!(october.contains(&nordlys_october), "{october:?}");
    let text = explain(out.path(), "PRF-NORDLYS-NO", None);
    assert!(text.contains("E-mail invoices on 2026-11-03: on"), "{text}");
    assert!(
        text.contains("ingrid.haugen@nordlys.example set emailInvoice to false: accepted; takes effect on 2026-11-15"),
        "{text}"
    );

    // 3 December: November is invoiced with both changes in force.
    let (code, stderr) = run(data.path(), out.path(), "2026-12-03");
    assert_eq!(code, 3, "{stderr}");
    let december = outbox(out.path());
    // October's invoice keeps its recipients; nothing new is sent for it.
    let sent_for = |all: &BTreeSet<(String, String)>, invoice: &str| -> BTreeSet<String> {
        all.iter()
            .filter(|(i, _)| i == invoice)
            .map(|(_, r)| r.clone())
            .collect()
    };
    assert_eq!(
        sent_for(&december, "INV-00000003"),
        sent_for(&october, "INV-00000003")
    );
    let invoices = crate::common::read_parquet_dir(&out.path().join("invoices/period=2026-11"));
    let mut recipients_by_profile = std::collections::BTreeMap::new();
    for batch in &invoices {
        let profiles = crate::common::strings(batch, "billing_profile_id");
        let counts = batch
            .column_by_name("recipients")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap();
        for (profile, count) in profiles.into_iter().zip(counts.iter()) {
            recipients_by_profile.insert(profile, count.unwrap());
        }
    }
    // November: PRF-NORDLYS-NO opted out, PRF-POLDER-US opted in.
    assert_eq!(recipients_by_profile["PRF-NORDLYS-NO"], 0);
    assert_eq!(recipients_by_profile["PRF-POLDER-US"], 1);
    assert!(
        december
            .iter()
            .any(|(_, r)| r == "emma.jones@polder.example"),
        "{december:?}"
    );
}

#[test]
fn explain_shows_the_preference_an_accepted_change_and_a_refused_one() {
    let data = sample_copy();
    let out = tempfile::tempdir().unwrap();
    // The sample's own preferences.csv.
    let (code, stderr) = run(data.path(), out.path(), "2026-12-03");
    assert_eq!(code, 3, "{stderr}");
    let text = explain(out.path(), "PRF-NORDLYS-NO", None);
    assert!(text.contains("E-mail invoices on 2026-12-03: on"), "{text}");
    assert!(
        text.contains("2026-11-12 line 3: kari.larsen@nordlys.example set emailInvoice to false: refused (not_authorized): Kari Larsen is an Invoice Manager; only Owners and Contributors may change this."),
        "{text}"
    );
    let text = explain(out.path(), "7f3c2a10-5b1e-4c2d-9a8e-0d4f6b7c8e91", None);
    assert!(
        text.contains("E-mail invoices on 2026-12-03: on, to bjorn.billing@astrom.example, additional recipients kontor@astrom.example, revisor@nordrevision.example."),
        "{text}"
    );
    assert!(
        text.contains("2026-11-28 line 5: bjorn@astrom.example set addRecipient to kontor@astrom.example: accepted."),
        "{text}"
    );
    // On a day before the change, as a support person would ask.
    let output = faktura(&[
        "explain",
        "--out",
        out.path().to_str().unwrap(),
        "--profile",
        "7f3c2a10-5b1e-4c2d-9a8e-0d4f6b7c8e91",
        "--on",
        "2026-11-27",
    ]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("E-mail invoices on 2026-11-27: on, to bjorn.billing@astrom.example, additional recipients revisor@nordrevision.example."),
        "{text}"
    );
}
