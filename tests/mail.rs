//! E-mail delivery over SMTP to a real server on 127.0.0.1 (SPEC §5,
//! issue 7): recipients, dot-stuffing, 451 retried, 550 permanent, a
//! dropped connection and a re-run, and a deliberate re-send.

use std::collections::BTreeMap;

use mail_parser::{MessageParser, MimeHeaders};

use crate::common::smtp::{Script, SmtpServer};
use crate::common::{faktura_env, run_args, sample_copy};

const AS_OF: &str = "2026-12-03";

fn run_smtp(
    data: &std::path::Path,
    out: &std::path::Path,
    server: &SmtpServer,
    extra: &[&str],
) -> (i32, String) {
    let mut args = run_args(data, out, AS_OF);
    args.extend_from_slice(extra);
    faktura_env(&args, &server.env())
}

/// `faktura send --resend INVOICE` to `server`.
fn resend(
    data: &std::path::Path,
    out: &std::path::Path,
    server: &SmtpServer,
    invoice: &str,
) -> (i32, String) {
    let (data, out) = (data.to_str().unwrap(), out.to_str().unwrap());
    let args = [
        "send", "--data", data, "--out", out, "--as-of", AS_OF, "--resend", invoice,
    ];
    faktura_env(&args, &server.env())
}

/// (invoice or credit note number from the subject, recipient) -> how many
/// times received.
fn deliveries(server: &SmtpServer) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for m in server.received() {
        assert_eq!(m.rcpt.len(), 1, "one message per person");
        let parsed = MessageParser::default()
            .parse(&m.data)
            .expect("message parses");
        let subject = parsed.subject().unwrap().to_string();
        let invoice = subject
            .split_whitespace()
            .find(|w| w.starts_with("INV-") || w.starts_with("CN-"))
            .unwrap()
            .to_string();
        *out.entry((invoice, m.rcpt[0].clone())).or_default() += 1;
    }
    out
}

/// Who the sample's invoices go to (SPEC §5), as issued on 2026-12-03,
/// with preferences.csv applied (SPEC §2.3): the MOSP admin added
/// kontor@astrom.example, PRF-POLDER-US's Owner opted in (INV-00000009).
fn expected() -> Vec<(String, String)> {
    let pairs = [
        // The sample's credit notes of INV-00000007 and INV-00000003.
        ("CN-00000001", "kari.larsen@nordlys.example"),
        ("CN-00000001", "ola.nordmann@nordlys.example"),
        ("CN-00000002", "kari.larsen@nordlys.example"),
        ("CN-00000002", "ola.nordmann@nordlys.example"),
        ("INV-00000001", "bjorn.billing@astrom.example"),
        ("INV-00000001", "kontor@astrom.example"),
        ("INV-00000001", "revisor@nordrevision.example"),
        ("INV-00000003", "kari.larsen@nordlys.example"),
        ("INV-00000003", "ola.nordmann@nordlys.example"),
        ("INV-00000004", "sanne.visser@polder.example"),
        ("INV-00000005", "anna.lindqvist@nordlys.example"),
        ("INV-00000005", "per.ostberg@nordlys.example"),
        ("INV-00000006", "bjorn.billing@astrom.example"),
        ("INV-00000006", "kontor@astrom.example"),
        ("INV-00000006", "revisor@nordrevision.example"),
        ("INV-00000007", "kari.larsen@nordlys.example"),
        ("INV-00000007", "ola.nordmann@nordlys.example"),
        ("INV-00000008", "sanne.visser@polder.example"),
        ("INV-00000009", "emma.jones@polder.example"),
    ];
    pairs
        .iter()
        .map(|(i, r)| (i.to_string(), r.to_string()))
        .collect()
}

#[test]
fn every_entitled_recipient_gets_one_message_with_the_pdf() {
    let data = sample_copy();
    // A customer name starting with a dot puts a body line that must be dot-stuffed.
    let profiles = std::fs::read_to_string(data.path().join("profiles.csv")).unwrap();
    std::fs::write(
        data.path().join("profiles.csv"),
        profiles.replace("Polder Data – Nederland", ".NET Polder – Nederland"),
    )
    .unwrap();
    let server = SmtpServer::start(Script::default());
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run_smtp(data.path(), out.path(), &server, &[]);
    assert_eq!(code, 3, "{stderr}"); // the sample's rejected rows
    let got = deliveries(&server);
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), expected());
    assert!(got.values().all(|n| *n == 1));
    // Pooled: the fifteen messages share the senders' few connections.
    assert!(
        server.connections() <= 8,
        "{} connections",
        server.connections()
    );
    // Purchases invoices (INV-00000002): nothing sent.
    assert!(!got.keys().any(|(i, _)| i == "INV-00000002"));

    for m in server.received() {
        let parsed = MessageParser::default().parse(&m.data).unwrap();
        let to = parsed
            .to()
            .unwrap()
            .first()
            .unwrap()
            .address()
            .unwrap()
            .to_lowercase();
        assert_eq!(to, m.rcpt[0]);
        let attachment = parsed.attachments().next().expect("PDF attached");
        let invoice = parsed
            .subject()
            .unwrap()
            .split_whitespace()
            .find(|w| w.starts_with("INV-") || w.starts_with("CN-"))
            .unwrap()
            .to_string();
        assert_eq!(
            attachment.attachment_name(),
            Some(format!("{invoice}.pdf").as_str())
        );
        assert!(attachment.contents().starts_with(b"%PDF"));
        assert_eq!(
            parsed.from().unwrap().first().unwrap().address(),
            Some("billing@example.com")
        );
        assert!(parsed.body_html(0).is_some(), "an HTML alternative");
        if invoice == "INV-00000004" {
            let text = parsed.body_text(0).unwrap();
            assert!(
                text.contains("\n.NET Polder – Nederland: uw factuur staat klaar."),
                "{text}"
            );
            assert!(text.contains("€ 170,40"), "{text}");
        }
    }

    // A re-run sends nothing again.
    let (_, stderr) = run_smtp(data.path(), out.path(), &server, &[]);
    assert!(
        stderr.contains("0 sent, 0 failed, 0 refused, 19 sent earlier"),
        "{stderr}"
    );
    assert_eq!(server.received().len(), 19);
}

#[test]
fn a_451_is_retried_and_delivered_once() {
    let data = sample_copy();
    let server = SmtpServer::start(Script {
        temp_fail_data: 2,
        ..Default::default()
    });
    let out = tempfile::tempdir().unwrap();
    let (_, stderr) = run_smtp(data.path(), out.path(), &server, &[]);
    assert!(stderr.contains("19 sent, 0 failed"), "{stderr}");
    let got = deliveries(&server);
    assert_eq!(got.len(), 19);
    assert!(got.values().all(|n| *n == 1));
}

#[test]
fn a_550_is_recorded_as_permanent_and_the_others_are_delivered() {
    let data = sample_copy();
    let server = SmtpServer::start(Script {
        reject_rcpt: vec!["kari.larsen@nordlys.example".into()],
        ..Default::default()
    });
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run_smtp(data.path(), out.path(), &server, &[]);
    assert_eq!(code, 3);
    // Kari gets two invoices and the two credit notes.
    assert!(stderr.contains("15 sent, 0 failed, 4 refused"), "{stderr}");
    assert_eq!(server.received().len(), 15);
    // Not retried on the next run, and still reported.
    let (code, stderr) = run_smtp(data.path(), out.path(), &server, &[]);
    assert_eq!(code, 3);
    assert!(stderr.contains("4 e-mails refused permanently"), "{stderr}");
    assert_eq!(server.received().len(), 15);
    let explain = std::process::Command::new(env!("CARGO_BIN_EXE_faktura"))
        .args([
            "explain",
            "--out",
            out.path().to_str().unwrap(),
            "--profile",
            "PRF-NORDLYS-NO",
            "--period",
            "2026-10",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(explain.stdout).unwrap();
    assert!(
        text.contains("kari.larsen@nordlys.example (bounced: "),
        "{text}"
    );
}

#[test]
fn a_dropped_connection_then_a_rerun_leaves_exactly_one_message_each() {
    let data = sample_copy();
    let server = SmtpServer::start(Script {
        drop_after: Some(5),
        ..Default::default()
    });
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run_smtp(data.path(), out.path(), &server, &[]);
    assert_eq!(code, 3);
    assert!(stderr.contains("5 sent, 14 failed"), "{stderr}");
    assert_eq!(server.received().len(), 5);

    server.heal();
    let (_, stderr) = run_smtp(data.path(), out.path(), &server, &[]);
    assert!(
        stderr.contains("14 sent, 0 failed, 0 refused, 5 sent earlier"),
        "{stderr}"
    );
    let got = deliveries(&server);
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), expected());
    assert!(got.values().all(|n| *n == 1), "{got:?}");
}

#[test]
fn a_pdf_gone_from_disk_is_rendered_again_for_the_email() {
    let data = sample_copy();
    let server = SmtpServer::start(Script::default());
    let out = tempfile::tempdir().unwrap();
    run_smtp(data.path(), out.path(), &server, &[]);
    let pdf = crate::common::files_under(&out.path().join("pdf"))
        .into_iter()
        .find(|p| p.ends_with("INV-00000003.pdf"))
        .expect("INV-00000003 rendered");
    let original = std::fs::read(&pdf).unwrap();
    std::fs::remove_file(&pdf).unwrap();
    let sent_before = server.received().len();
    let (code, stderr) = resend(data.path(), out.path(), &server, "INV-00000003");
    assert_eq!(code, 0, "{stderr}");
    let resent: Vec<_> = server.received()[sent_before..].to_vec();
    assert_eq!(resent.len(), 2, "both of INV-00000003's recipients");
    for m in resent {
        let parsed = MessageParser::default().parse(&m.data).unwrap();
        let attachment = parsed.attachments().next().expect("PDF attached");
        assert_eq!(attachment.attachment_name(), Some("INV-00000003.pdf"));
        assert!(
            attachment.contents() == original.as_slice(),
            "the same PDF, rendered again from the ledger"
        );
    }
    assert!(
        !pdf.exists(),
        "rendered for the e-mail only: `send` writes no PDF, so this was not read back from disk"
    );
}

#[test]
fn resend_sends_an_invoice_again_with_the_same_message_ids() {
    let data = sample_copy();
    let server = SmtpServer::start(Script::default());
    let out = tempfile::tempdir().unwrap();
    run_smtp(data.path(), out.path(), &server, &[]);
    let (code, stderr) = resend(data.path(), out.path(), &server, "INV-00000003");
    assert_eq!(code, 0, "{stderr}");
    let got = deliveries(&server);
    assert_eq!(
        got[&(
            "INV-00000003".to_string(),
            "ola.nordmann@nordlys.example".to_string()
        )],
        2
    );
    assert_eq!(server.received().len(), 21);
    let ids: Vec<String> = server
        .received()
        .iter()
        .filter(|m| m.rcpt[0] == "ola.nordmann@nordlys.example")
        .map(|m| {
            MessageParser::default()
                .parse(&m.data)
                .unwrap()
                .message_id()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        ids.iter()
            .filter(|id| id.starts_with("INV-00000003"))
            .count(),
        2
    );
    assert_eq!(
        ids.iter()
            .filter(|id| id.starts_with("INV-00000003"))
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        1
    );
}

#[test]
fn names_with_line_breaks_cannot_inject_headers() {
    let data = sample_copy();
    let profiles = std::fs::read_to_string(data.path().join("profiles.csv")).unwrap();
    let evil = "\"Polder Data\r\nBcc: evil@attacker.example\r\nSubject: pay here\"";
    std::fs::write(
        data.path().join("profiles.csv"),
        profiles.replace("Polder Data – Nederland", evil),
    )
    .unwrap();
    let server = SmtpServer::start(Script::default());
    let out = tempfile::tempdir().unwrap();
    run_smtp(data.path(), out.path(), &server, &[]);
    assert_eq!(
        server.received().len(),
        19,
        "nobody extra received anything"
    );
    for m in server.received() {
        assert_ne!(m.rcpt[0], "evil@attacker.example");
        let parsed = MessageParser::default().parse(&m.data).unwrap();
        assert!(parsed.header("Bcc").is_none());
        assert!(!parsed.subject().unwrap().contains("pay here"));
    }
}
