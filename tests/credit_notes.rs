//! Credit notes (SPEC §2.4, §4.9, §6, §6.2; issue 29): the sample's
//! credit_notes.csv through `faktura run`, read back with arrow-rs,
//! pdf-extract and mail-parser; every locale's title; control characters
//! in a reason; an edited issued row; a purchases invoice's credit note;
//! a customer without a Peppol address. The e-invoices written are kept
//! for `.ci/run`'s official validator.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Decimal128Type};
use mail_parser::{MessageParser, MimeHeaders};
use rust_decimal::Decimal;

use crate::common::{
    explain, faktura, files_under, keep_for_the_validator, pdf_text, read_parquet_dir, run,
    run_args, sample_copy, sample_dir, snapshot, strings,
};

const AS_OF: &str = "2026-12-03";

/// One row of `credit_notes/`, as arrow-rs reads it.
#[derive(Debug, PartialEq)]
struct NoteRow {
    number: String,
    reference: String,
    invoice: String,
    issue_date: String,
    reason: String,
    net: Decimal,
    vat: Decimal,
    total: Decimal,
}

fn decimal_column(batch: &RecordBatch, name: &str) -> Vec<Decimal> {
    let column = batch.column_by_name(name).unwrap();
    assert_eq!(column.data_type(), &DataType::Decimal128(38, 4), "{name}");
    let array = column.as_primitive::<Decimal128Type>();
    (0..array.len())
        .map(|i| Decimal::from_i128_with_scale(array.value(i), 4).normalize())
        .collect()
}

fn note_rows(out: &Path) -> Vec<NoteRow> {
    let mut rows = Vec::new();
    for batch in read_parquet_dir(&out.join("credit_notes")) {
        let dates = batch
            .column_by_name("issue_date")
            .unwrap()
            .as_primitive::<Date32Type>()
            .clone();
        let (net, vat, total) = (
            decimal_column(&batch, "net_amount"),
            decimal_column(&batch, "vat_amount"),
            decimal_column(&batch, "total"),
        );
        let (numbers, refs, invoices, reasons) = (
            strings(&batch, "credit_note_number"),
            strings(&batch, "credit_note_ref"),
            strings(&batch, "invoice_number"),
            strings(&batch, "reason"),
        );
        for i in 0..batch.num_rows() {
            rows.push(NoteRow {
                number: numbers[i].clone(),
                reference: refs[i].clone(),
                invoice: invoices[i].clone(),
                issue_date: dates.value_as_date(i).unwrap().to_string(),
                reason: reasons[i].clone(),
                net: net[i],
                vat: vat[i],
                total: total[i],
            });
        }
    }
    rows.sort_by(|a, b| a.number.cmp(&b.number));
    rows
}

/// invoice number -> (status, credited_total, reminders_sent).
fn invoice_status(out: &Path) -> BTreeMap<String, (String, Decimal, i64)> {
    let mut map = BTreeMap::new();
    for batch in read_parquet_dir(&out.join("invoices")) {
        let credited = decimal_column(&batch, "credited_total");
        let reminders = batch.column_by_name("reminders_sent").unwrap();
        assert_eq!(reminders.data_type(), &DataType::Int64);
        let reminders = reminders.as_primitive::<arrow::datatypes::Int64Type>();
        let (numbers, statuses) = (strings(&batch, "invoice_number"), strings(&batch, "status"));
        for i in 0..batch.num_rows() {
            map.insert(
                numbers[i].clone(),
                (statuses[i].clone(), credited[i], reminders.value(i)),
            );
        }
    }
    map
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn summary(out: &Path) -> serde_json::Value {
    let runs = files_under(&out.join("runs"));
    let last = runs.last().expect("a run summary");
    serde_json::from_slice(&std::fs::read(last).unwrap()).unwrap()
}

#[test]
fn the_sample_credits_one_invoice_in_full_and_one_in_part() {
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&sample_dir(), out.path(), AS_OF);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("2 credit notes issued, 1 rows rejected, 1 waiting"),
        "{stderr}"
    );
    assert!(stderr.contains("1 credit-note rows rejected"), "{stderr}");
    // INV-00000007: amount due 730.27 NOK, VAT 182.57, total 912.84, credited
    // in full; INV-00000003: 200.00 NOK of its 830.21 with 25 % VAT.
    let rows = note_rows(out.path());
    assert_eq!(
        rows,
        [
            NoteRow {
                number: "CN-00000001".into(),
                reference: "CR-2026-001".into(),
                invoice: "INV-00000007".into(),
                issue_date: AS_OF.into(),
                reason: "November withdrawn in full: the usage was a load test run by Example Cloud's own staff".into(),
                net: dec("730.27"),
                vat: dec("182.57"),
                total: dec("912.84"),
            },
            NoteRow {
                number: "CN-00000002".into(),
                reference: "CR-2026-002".into(),
                invoice: "INV-00000003".into(),
                issue_date: AS_OF.into(),
                reason: "Disputed Azure SQL Database hours during the October 14 outage".into(),
                net: dec("200"),
                vat: dec("50"),
                total: dec("250"),
            },
        ]
    );
    let status = invoice_status(out.path());
    assert_eq!(
        status["INV-00000007"],
        ("credited".into(), dec("912.84"), 0)
    );
    // 500.00 of 1037.76 paid, 250.00 credited: still due.
    assert_eq!(status["INV-00000003"], ("due".into(), dec("250"), 0));
    assert_eq!(status["INV-00000001"], ("due".into(), Decimal::ZERO, 0));

    let rejects = std::fs::read_to_string(out.path().join("rejects/credit_notes.csv")).unwrap();
    let lines: Vec<&str> = rejects.lines().collect();
    assert_eq!(lines.len(), 2, "{rejects}");
    assert!(
        lines[1].starts_with("credit_notes.csv,4,unknown_invoice,"),
        "{rejects}"
    );

    // The PDF in the profile's language: number, date, invoice, reason, amounts.
    let pdf = std::fs::read(out.path().join("pdf/2026-11/CN-00000001.pdf")).unwrap();
    let text = pdf_text(&pdf);
    for expected in [
        "Kreditnota",
        "CN-00000001",
        "INV-00000007",
        "3. desember 2026",
        "load test run by Example Cloud",
        "730,27",
        "182,57",
        "912,84",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    // The Peppol credit note refers to its invoice and its date.
    let xml = std::fs::read_to_string(out.path().join("einvoice/2026-10/CN-00000002.xml")).unwrap();
    for expected in [
        "<CreditNote xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2\"",
        "<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>",
        "<cbc:ID>INV-00000003</cbc:ID>",
        "<cbc:IssueDate>2026-12-03</cbc:IssueDate>",
        "<cbc:BuyerReference>PRF-NORDLYS-NO</cbc:BuyerReference>",
        "<cbc:PayableAmount currencyID=\"NOK\">250.00</cbc:PayableAmount>",
        "<cbc:TaxAmount currencyID=\"NOK\">50.00</cbc:TaxAmount>",
    ] {
        assert!(xml.contains(expected), "{expected:?} in\n{xml}");
    }
    // Each of the invoice's recipients gets the credit note once, PDF attached.
    for recipient in [
        "kari.larsen@nordlys.example",
        "ola.nordmann@nordlys.example",
    ] {
        let eml = std::fs::read(
            out.path()
                .join(format!("outbox/CN-00000001/{recipient}.eml")),
        )
        .unwrap();
        let message = MessageParser::default().parse(&eml).unwrap();
        assert!(message.subject().unwrap().contains("CN-00000001"));
        let attachment = message.attachments().next().expect("the PDF");
        assert_eq!(attachment.attachment_name(), Some("CN-00000001.pdf"));
        assert_eq!(attachment.contents(), pdf.as_slice());
    }
    let explained = explain(out.path(), "PRF-NORDLYS-NO", None);
    assert!(
        explained.contains("Credit note CN-00000001 of 2026-12-03 (ref CR-2026-001): net 730.27 NOK, VAT 182.57 NOK, total 912.84 NOK"),
        "{explained}"
    );
    assert!(
        explained.contains("status after the credit notes: credited"),
        "{explained}"
    );
    keep_for_the_validator(out.path(), "credit_notes_sample");

    // The same as_of again: nothing changes but the run summary.
    let before = snapshot(out.path());
    run(&sample_dir(), out.path(), AS_OF);
    assert!(snapshot(out.path()) == before, "a re-run changed outputs");

    // The row dated 2027-01-05 waited; a later run issues it, dated as_of.
    let (_, stderr) = run(&sample_dir(), out.path(), "2027-01-10");
    assert!(stderr.contains("1 credit notes issued"), "{stderr}");
    let rows = note_rows(out.path());
    assert_eq!(rows.len(), 3);
    assert_eq!(
        (
            rows[2].number.as_str(),
            rows[2].invoice.as_str(),
            rows[2].issue_date.as_str()
        ),
        ("CN-00000003", "INV-00000001", "2027-01-10")
    );
    assert_eq!(snapshot(out.path())["pdf/2026-11/CN-00000001.pdf"], pdf);
}

#[test]
fn every_locale_titles_its_credit_note_and_control_characters_are_left_out() {
    let data = sample_copy();
    // One invoice of a profile in each locale; a reason with control characters.
    std::fs::write(
        data.path().join("credit_notes.csv"),
        "creditNoteRef,invoiceNumber,date,amount,reason\n\
         EN,INV-00000001,2026-12-03,,Wrong\u{7} meter\u{0} billed\n\
         NB,INV-00000003,2026-12-03,100,Feil måler\n\
         NL,INV-00000004,2026-12-03,,Verkeerde meter\n\
         SV,INV-00000005,2026-12-03,1.00,Fel mätare\u{1b}\n\
         CTRL,INV-00000006,2026-12-03,1.00,\u{7}\u{1}\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(data.path(), out.path(), AS_OF);
    assert_eq!(code, 3, "{stderr}");
    let titles = [
        (
            "CN-00000001",
            "2026-10",
            "Credit note",
            "Wrong meter billed",
        ),
        ("CN-00000002", "2026-10", "Kreditnota", "Feil måler"),
        ("CN-00000003", "2026-10", "Creditnota", "Verkeerde meter"),
        ("CN-00000004", "2026-10", "Kreditfaktura", "Fel mätare"),
    ];
    for (number, month, title, reason) in titles {
        let path = out.path().join(format!("pdf/{month}/{number}.pdf"));
        let text = pdf_text(&std::fs::read(&path).unwrap());
        assert!(text.contains(title), "{number}: {title:?} in\n{text}");
        assert!(text.contains(reason), "{number}: {reason:?} in\n{text}");
        assert!(
            !text.contains('\u{7}') && !text.contains('\u{1b}'),
            "{number}"
        );
        let xml =
            std::fs::read_to_string(out.path().join(format!("einvoice/{month}/{number}.xml")))
                .unwrap();
        assert!(xml.contains(reason), "{number}: {reason:?} in\n{xml}");
        assert!(
            !xml.chars().any(|c| c.is_control() && c != '\n'),
            "{number}"
        );
    }
    // A reason of control characters alone leaves no empty element behind
    // (PEPPOL-EN16931-R008); the validator checks the file in CI.
    let xml = std::fs::read_to_string(out.path().join("einvoice/2026-11/CN-00000005.xml")).unwrap();
    assert!(!xml.contains("></cbc:"), "an empty element in\n{xml}");
    // The table keeps the reason as written.
    assert_eq!(
        note_rows(out.path())[0].reason,
        "Wrong\u{7} meter\u{0} billed"
    );
    for eml in files_under(&out.path().join("outbox/CN-00000001")) {
        let bytes = std::fs::read(&eml).unwrap();
        let message = MessageParser::default().parse(&bytes).unwrap();
        let body = message.body_text(0).unwrap();
        assert!(body.contains("Wrong meter billed"), "{body}");
        assert!(!body.contains('\u{7}') && !body.contains('\u{0}'), "{body}");
    }
    keep_for_the_validator(out.path(), "credit_notes_locales");
}

#[test]
fn an_issued_row_edited_later_changes_nothing_and_a_copy_of_it_is_a_duplicate() {
    let data = sample_copy();
    let out = tempfile::tempdir().unwrap();
    run(data.path(), out.path(), AS_OF);
    let before = snapshot(out.path());
    let path = data.path().join("credit_notes.csv");
    let edited = std::fs::read_to_string(&path).unwrap().replace(
        "CR-2026-002,INV-00000003,2026-12-03,200.00,Disputed",
        "CR-2026-002,INV-00000003,2026-12-03,300.00,Changed",
    ) + "CR-2026-001,INV-00000001,2026-12-04,1.00,copy of an issued ref\n";
    std::fs::write(&path, edited).unwrap();
    let (_, stderr) = run(data.path(), out.path(), "2026-12-04");
    assert!(
        stderr.contains("0 credit notes issued, 2 rows rejected"),
        "{stderr}"
    );
    let after = snapshot(out.path());
    for name in [
        "pdf/2026-10/CN-00000002.pdf",
        "einvoice/2026-10/CN-00000002.xml",
    ] {
        assert!(after[name] == before[name], "{name} changed");
    }
    assert_eq!(note_rows(out.path())[1].net, dec("200"));
    let rejects = std::fs::read_to_string(out.path().join("rejects/credit_notes.csv")).unwrap();
    assert!(
        rejects.contains("credit_notes.csv,6,duplicate_ref,"),
        "{rejects}"
    );
    assert!(
        !rejects.contains(",3,"),
        "the issued line is never rejected: {rejects}"
    );
}

#[test]
fn a_purchases_invoice_is_credited_and_rendered_but_never_emailed() {
    let data = sample_copy();
    // INV-00000002 is the sample's purchases invoice (reservations, MOSP).
    std::fs::write(
        data.path().join("credit_notes.csv"),
        "creditNoteRef,invoiceNumber,date,amount,reason\nP1,INV-00000002,2026-12-03,,Reservation returned\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(data.path(), out.path(), AS_OF);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(note_rows(out.path()).len(), 1);
    assert!(out.path().join("pdf/2026-10/CN-00000001.pdf").exists());
    assert!(!out.path().join("outbox/CN-00000001").exists());
    assert_eq!(invoice_status(out.path())["INV-00000002"].0, "credited");
}

#[test]
fn a_credit_note_prefix_equal_to_the_invoice_prefix_is_a_configuration_error() {
    let data = sample_copy();
    let config = std::fs::read_to_string(data.path().join("faktura.toml")).unwrap();
    std::fs::write(
        data.path().join("faktura.toml"),
        config.replace(
            "invoice_prefix = \"INV-\"",
            "invoice_prefix = \"INV-\"\ncredit_note_prefix = \"INV-\"",
        ),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("out");
    let (code, stderr) = run(data.path(), &out_dir, AS_OF);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("credit_note_prefix"), "{stderr}");
    assert!(!out_dir.exists());
}

#[test]
fn a_buyer_without_a_peppol_address_gets_no_einvoice_and_explain_says_why() {
    let data = sample_copy();
    let profiles = std::fs::read_to_string(data.path().join("profiles.csv")).unwrap();
    // PRF-POLDER-NL loses its peppolId and a Dutch VAT number stands for
    // none; PRF-NORDLYS-NO loses its peppolId, but its VAT number stands
    // for 0192:987654325.
    let profiles = profiles
        .replace(
            "NL123456789B01,,0106:12345678\nPRF-POLDER-LAB",
            "NL123456789B01,,\nPRF-POLDER-LAB",
        )
        .replace("NO 987 654 325 MVA,,0192:987654325", "NO 987 654 325 MVA,,");
    std::fs::write(data.path().join("profiles.csv"), profiles).unwrap();
    // A credit note of an invoice without an e-invoice has none either.
    std::fs::write(
        data.path().join("credit_notes.csv"),
        "creditNoteRef,invoiceNumber,date,amount,reason\nNL,INV-00000004,2026-12-03,1,x\nNO,INV-00000003,2026-12-03,1,y\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(data.path(), out.path(), AS_OF);
    assert_eq!(code, 3, "{stderr}");
    let skipped = &summary(out.path())["einvoices_skipped"];
    assert_eq!(
        skipped,
        &serde_json::json!(["INV-00000004", "INV-00000008"])
    );
    for missing in [
        "2026-10/INV-00000004.xml",
        "2026-11/INV-00000008.xml",
        "2026-10/CN-00000001.xml",
    ] {
        assert!(
            !out.path().join("einvoice").join(missing).exists(),
            "{missing}"
        );
    }
    let xml =
        std::fs::read_to_string(out.path().join("einvoice/2026-10/INV-00000003.xml")).unwrap();
    assert!(
        xml.contains("<cbc:EndpointID schemeID=\"0192\">987654325</cbc:EndpointID>"),
        "{xml}"
    );
    assert!(out.path().join("einvoice/2026-10/CN-00000002.xml").exists());
    assert!(!xml.contains("schemeID=\"EM\""));
    let explained = explain(out.path(), "PRF-POLDER-NL", Some("2026-10"));
    assert!(
        explained.contains("No e-invoice: profile PRF-POLDER-NL has no Peppol address"),
        "{explained}"
    );
    keep_for_the_validator(out.path(), "credit_notes_addresses");

    // A configured peppolId whose check digit fails is a configuration error.
    let profiles = std::fs::read_to_string(data.path().join("profiles.csv")).unwrap();
    std::fs::write(
        data.path().join("profiles.csv"),
        profiles.replace("0007:5566778899", "0007:5566778898"),
    )
    .unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let output = faktura(&run_args(data.path(), &fresh.path().join("o"), AS_OF));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("0007:5566778898"), "{stderr}");
}

#[test]
fn without_a_seller_address_no_einvoice_is_written_and_the_summary_says_so_once() {
    let data = sample_copy();
    let config = std::fs::read_to_string(data.path().join("faktura.toml")).unwrap();
    std::fs::write(
        data.path().join("faktura.toml"),
        config
            .replace("peppol_id = \"0192:123456785\"\n", "")
            .replace(
                "vat_id = \"NO 123 456 785 MVA\"",
                "vat_id = \"GB 123 4567 89\"",
            )
            .replace("country = \"NO\"", "country = \"GB\""),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(data.path(), out.path(), AS_OF);
    assert_eq!(code, 3, "{stderr}");
    assert!(files_under(&out.path().join("einvoice")).is_empty());
    let summary = summary(out.path());
    assert_eq!(summary["einvoices_skipped"], serde_json::json!([]));
    let warnings: Vec<&str> = summary["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_str())
        .filter(|w| w.contains("no e-invoices are written"))
        .collect();
    assert_eq!(warnings.len(), 1, "{summary}");
    let explained = explain(out.path(), "PRF-NORDLYS-NO", Some("2026-10"));
    assert!(
        explained.contains("No e-invoice: the issuer has no Peppol address"),
        "{explained}"
    );
}
