//! Past-due reminders (SPEC §5.1; issue 30), played out over weeks of
//! nightly runs against a real SMTP server: payments arriving before the
//! first reminder, between the two and after the second, a credit note,
//! nights skipped over a reminder day, a relay that drops connections for
//! two nights, and a run killed while reminders are sent. Every message the
//! server received is counted: each expected reminder exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use mail_parser::{MessageParser, MimeHeaders};

use crate::common::smtp::{Received, Script, SmtpServer};
use crate::common::{explain, faktura_env, run_args, sample_copy, strings};

/// (invoice, reminder k, recipient) of a reminder message, from its Message-ID.
type ReminderKey = (String, u32, String);

fn reminder_of(message: &Received) -> Option<ReminderKey> {
    let parsed = MessageParser::default().parse(&message.data).unwrap();
    let id = parsed.message_id().unwrap().to_string();
    let (invoice, rest) = id.split_once(".reminder-")?;
    let k = rest.split('.').next()?.parse().ok()?;
    Some((invoice.to_string(), k, message.rcpt[0].clone()))
}

/// Every reminder message received, with how many times.
fn reminders_received(servers: &[&SmtpServer]) -> BTreeMap<ReminderKey, usize> {
    let mut out = BTreeMap::new();
    for server in servers {
        for message in server.received() {
            if let Some(key) = reminder_of(&message) {
                *out.entry(key).or_default() += 1;
            }
        }
    }
    out
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// The nightly job on `as_of` through `server`; its exit code and stderr.
fn night(data: &Path, out: &Path, as_of: NaiveDate, server: &SmtpServer) -> (i32, String) {
    let as_of = as_of.to_string();
    faktura_env(&run_args(data, out, &as_of), &server.env())
}

/// invoice number -> (status, reminders_sent), read back with arrow-rs.
fn invoices(out: &Path) -> BTreeMap<String, (String, i64)> {
    use arrow::array::AsArray;
    let mut map = BTreeMap::new();
    for batch in crate::common::read_parquet_dir(&out.join("invoices")) {
        let sent = batch
            .column_by_name("reminders_sent")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>()
            .clone();
        let (numbers, statuses) = (strings(&batch, "invoice_number"), strings(&batch, "status"));
        for i in 0..batch.num_rows() {
            map.insert(numbers[i].clone(), (statuses[i].clone(), sent.value(i)));
        }
    }
    map
}

const PAYMENTS_HEADER: &str = "invoiceNumber,amount,paidDate,paidBy\n";

/// The sample's invoices of 2026-12-03 fall due on 2026-12-17 (Polder NL,
/// 14 days' terms: INV-00000004 and INV-00000008) or 2027-01-02 (the rest);
/// reminders come 14 and 28 days after.
#[test]
fn weeks_of_nights_send_each_due_reminder_exactly_once() {
    let data = sample_copy();
    // A full credit of INV-00000006 dated 2027-01-05, instead of the sample's.
    std::fs::write(
        data.path().join("credit_notes.csv"),
        "creditNoteRef,invoiceNumber,date,amount,reason\nC1,INV-00000006,2027-01-05,,Withdrawn\n",
    )
    .unwrap();
    let payments = data.path().join("payments.csv");
    std::fs::write(&payments, PAYMENTS_HEADER).unwrap();
    let up = SmtpServer::start(Script::default());
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    night(data.path(), out, day("2026-12-03"), &up);
    let issued = up.received().len();

    let mut as_of = day("2026-12-04");
    // Every night to 2026-12-29; then none until 2027-01-15, over the
    // Polder invoices' first reminder day (2026-12-31) and second (01-14).
    while as_of <= day("2026-12-29") {
        night(data.path(), out, as_of, &up);
        as_of = as_of.succ_opt().unwrap();
    }
    assert!(
        reminders_received(&[&up]).is_empty(),
        "none due before 12-31"
    );
    // INV-00000003 paid in full on 2027-01-10, before its first reminder.
    std::fs::write(
        &payments,
        format!("{PAYMENTS_HEADER}INV-00000003,1037.76,2027-01-10,ingrid.haugen@nordlys.example\n"),
    )
    .unwrap();
    let (_, stderr) = night(data.path(), out, day("2027-01-15"), &up);
    assert!(
        stderr.contains("reminders: 2 issued, 2 messages sent"),
        "{stderr}"
    );

    // The relay drops every message on 01-16 and 01-17: the first
    // reminders of INV-1, 5, 7 and 9 fail and are retried.
    let down = SmtpServer::start(Script {
        drop_after: Some(0),
        ..Default::default()
    });
    let (code, stderr) = night(data.path(), out, day("2027-01-16"), &down);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("reminders: 4 issued, 0 messages sent"),
        "{stderr}"
    );
    // INV-00000005 paid on 01-17, between its reminders: its failed
    // reminder is cancelled, never sent.
    std::fs::write(
        &payments,
        format!(
            "{PAYMENTS_HEADER}INV-00000003,1037.76,2027-01-10,ingrid.haugen@nordlys.example\n\
             INV-00000005,1750.00,2027-01-17,ingrid.haugen@nordlys.example\n"
        ),
    )
    .unwrap();
    let (_, stderr) = night(data.path(), out, day("2027-01-17"), &down);
    assert!(
        stderr.contains("reminders: 0 issued, 0 messages sent, 2 cancelled"),
        "{stderr}"
    );
    let (_, stderr) = night(data.path(), out, day("2027-01-18"), &up);
    assert!(
        stderr.contains("reminders: 0 issued, 6 messages sent, 0 cancelled"),
        "{stderr}"
    );
    as_of = day("2027-01-19");
    while as_of <= day("2027-01-29") {
        night(data.path(), out, as_of, &up);
        as_of = as_of.succ_opt().unwrap();
    }

    // 01-30, second reminders, through a slow relay: killed mid-send, re-run.
    let slow = SmtpServer::start(Script {
        delay_data: Some(Duration::from_millis(250)),
        ..Default::default()
    });
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_faktura"))
        .args(run_args(data.path(), out, "2027-01-30"))
        .envs(slow.env())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while slow.received().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        killed,
        "the run ended before it could be killed while sending"
    );
    let at_kill = slow.received().len();
    assert!(at_kill < 6, "killed after {at_kill} of 6 messages");
    // Messages whose body went out before the kill still arrive; their
    // replies never do (the one unavoidable repeat, SPEC §5).
    std::thread::sleep(Duration::from_millis(1800));
    let before_rerun = slow.received().len();
    night(data.path(), out, day("2027-01-30"), &up);

    // INV-00000001 paid on 02-01, after its second reminder.
    std::fs::write(
        &payments,
        format!(
            "{PAYMENTS_HEADER}INV-00000003,1037.76,2027-01-10,ingrid.haugen@nordlys.example\n\
             INV-00000005,1750.00,2027-01-17,ingrid.haugen@nordlys.example\n\
             INV-00000001,29.76,2027-02-01,bjorn@astrom.example\n"
        ),
    )
    .unwrap();
    as_of = day("2027-01-31");
    while as_of <= day("2027-02-20") {
        night(data.path(), out, as_of, &up);
        as_of = as_of.succ_opt().unwrap();
    }

    let astrom = [
        "bjorn.billing@astrom.example",
        "kontor@astrom.example",
        "revisor@nordrevision.example",
    ];
    let nordlys_no = [
        "kari.larsen@nordlys.example",
        "ola.nordmann@nordlys.example",
    ];
    let mut expected: BTreeSet<ReminderKey> = BTreeSet::new();
    let mut add = |invoice: &str, k: u32, to: &[&str]| {
        for r in to {
            expected.insert((invoice.to_string(), k, r.to_string()));
        }
    };
    add("INV-00000004", 2, &["sanne.visser@polder.example"]);
    add("INV-00000008", 2, &["sanne.visser@polder.example"]);
    for k in [1, 2] {
        add("INV-00000001", k, &astrom);
        add("INV-00000007", k, &nordlys_no);
        add("INV-00000009", k, &["emma.jones@polder.example"]);
    }
    let got = reminders_received(&[&up, &down, &slow]);
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), expected);
    // Once each; the only repeats allowed are the kill's unavoidable ones
    // (accepted by the slow relay, not yet recorded), with the same Message-ID.
    let repeats: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeats.iter().all(|(k, n)| **n == 2 && k.1 == 2),
        "{repeats:?}"
    );
    assert!(repeats.len() <= before_rerun, "{repeats:?}");
    // Nothing else was sent after the invoices but the credit note's e-mails.
    let others: usize = [&up, &down, &slow]
        .iter()
        .flat_map(|s| s.received())
        .filter(|m| reminder_of(m).is_none())
        .count();
    assert_eq!(
        others,
        issued + 3,
        "the invoices, then CN-00000001 to Åström's three"
    );

    let table = invoices(out);
    for (invoice, status, sent) in [
        ("INV-00000001", "paid", 2),
        ("INV-00000003", "paid", 0),
        ("INV-00000004", "past_due", 2),
        ("INV-00000005", "paid", 1),
        ("INV-00000006", "credited", 0),
        ("INV-00000007", "past_due", 2),
        ("INV-00000008", "past_due", 2),
        ("INV-00000009", "past_due", 2),
        ("INV-00000002", "past_due", 0),
    ] {
        assert_eq!(table[invoice], (status.to_string(), sent), "{invoice}");
    }
    let explained = explain(out, "PRF-NORDLYS-SE", None);
    assert!(
        explained.contains(
            "Reminder 1, issued 2027-01-16, to anna.lindqvist@nordlys.example (cancelled)"
        ),
        "{explained}"
    );
    let explained = explain(out, "PRF-POLDER-NL", Some("2026-10"));
    assert!(
        explained.contains("Reminder 2, issued 2027-01-15, to sanne.visser@polder.example (sent)"),
        "{explained}"
    );
}

#[test]
fn the_file_transport_writes_a_reminder_with_the_invoice_attached() {
    let out = tempfile::tempdir().unwrap();
    let sample = crate::common::sample_dir();
    crate::common::run(&sample, out.path(), "2026-12-03");
    let (_, stderr) = crate::common::run(&sample, out.path(), "2027-01-10");
    assert!(
        stderr.contains("reminders: 2 issued, 2 messages sent"),
        "{stderr}"
    );
    let path = out
        .path()
        .join("outbox/INV-00000004/reminder-1/sanne.visser@polder.example.eml");
    let eml = std::fs::read(&path).unwrap();
    let message = MessageParser::default().parse(&eml).unwrap();
    assert_eq!(
        message.subject(),
        Some("Betalingsherinnering 1: Factuur INV-00000004")
    );
    let body = message.body_text(0).unwrap();
    for expected in [
        "Vervaldatum: 17 december 2026",
        "Openstaand bedrag: € 170,40",
    ] {
        assert!(body.contains(expected), "{expected:?} in {body}");
    }
    let pdf = std::fs::read(out.path().join("pdf/2026-10/INV-00000004.pdf")).unwrap();
    let attachment = message.attachments().next().unwrap();
    assert_eq!(attachment.attachment_name(), Some("INV-00000004.pdf"));
    assert_eq!(attachment.contents(), pdf.as_slice());
    // The same night again: nothing more.
    let (_, stderr) = crate::common::run(&sample, out.path(), "2027-01-10");
    assert!(
        stderr.contains("reminders: 0 issued, 0 messages sent"),
        "{stderr}"
    );
}

#[test]
fn a_bad_reminder_list_is_a_configuration_error() {
    let data = sample_copy();
    let config = std::fs::read_to_string(data.path().join("faktura.toml")).unwrap();
    for (days, env) in [
        ("[28, 14]", None),
        ("[0, 14]", None),
        ("[]", None),
        ("[14, 14]", None),
        ("[14, 28]", Some("14,x")),
        ("[14, 28]", Some("7,7")),
    ] {
        std::fs::write(
            data.path().join("faktura.toml"),
            config.replace("days = [14, 28]", &format!("days = {days}")),
        )
        .unwrap();
        let out = tempfile::tempdir().unwrap();
        let out_dir = out.path().join("o");
        let env: Vec<(String, String)> = env
            .map(|v| vec![("FAKTURA_REMINDERS_DAYS".to_string(), v.to_string())])
            .unwrap_or_default();
        let (code, stderr) = faktura_env(&run_args(data.path(), &out_dir, "2026-12-03"), &env);
        assert_eq!(code, 2, "{days} {env:?}: {stderr}");
        assert!(stderr.contains("reminders"), "{stderr}");
        assert!(!out_dir.exists());
    }
}
