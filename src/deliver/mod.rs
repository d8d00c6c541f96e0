//! Deliver (SPEC §5, §5.1): one e-mail per (invoice, recipient), per
//! (credit note, recipient) and per (invoice, reminder, recipient), in the
//! profile's language, with the PDF attached, through lettre. The outbox in the ledger
//! records every delivery: `pending` until tried, `sent` once a transport
//! accepted it (never sent again by a re-run), `failed` after a transient
//! failure (retried on the next run), `bounced` after a permanent one.
//!
//! Message-IDs, dates and MIME boundaries are derived from the invoice and
//! recipient, so the one unavoidable repeat (killed after the server
//! accepted, before the ledger recorded it) is the same message.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use crate::config::{MailSettings, Security, TransportKind};
use crate::model::{CreditNote, InvoiceHead, Locale};
use crate::parse::parse_email;
use crate::store;

pub mod pool;
mod send;

pub use send::{DeliveryReport, Inputs, send_pending};

pub use crate::model::message_id;

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("cannot build the e-mail for {invoice} to {recipient}: {detail}")]
    Build {
        invoice: String,
        recipient: String,
        detail: String,
    },
    #[error("cannot set up the SMTP transport to {host}:{port}: {detail}")]
    Setup {
        host: String,
        port: u16,
        detail: String,
    },
    #[error("no issued invoice {0} to re-send")]
    NoSuchInvoice(String),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    Outbox(#[from] store::FileError),
}

/// What a transport said about one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Worth retrying later: 4xx, refused or dropped connections, timeouts.
    Transient(String),
    /// The server refused for good (5xx).
    Permanent(String),
}

/// Where messages go: `OUT/outbox/…/*.eml` or an SMTP server.
pub enum Mailer {
    File {
        outbox: PathBuf,
    },
    Smtp {
        transport: SmtpTransport,
        /// `max_per_second` as the next free sending slot, shared by all senders.
        rate: Option<(Duration, std::sync::Mutex<std::time::Instant>)>,
    },
}

impl Mailer {
    pub fn new(settings: &MailSettings, out_dir: &Path) -> Result<Mailer, DeliverError> {
        match settings.transport {
            TransportKind::File => Ok(Mailer::File {
                outbox: out_dir.join("outbox"),
            }),
            TransportKind::Smtp => {
                let smtp = &settings.smtp;
                let setup_error = |detail: String| DeliverError::Setup {
                    host: smtp.host.clone(),
                    port: smtp.port,
                    detail,
                };
                let tls = || tls_parameters(smtp).map_err(setup_error);
                let tls = match smtp.security {
                    Security::None => Tls::None,
                    Security::Starttls => Tls::Required(tls()?),
                    Security::Tls => Tls::Wrapper(tls()?),
                };
                let mut builder = SmtpTransport::builder_dangerous(&smtp.host)
                    .port(smtp.port)
                    .tls(tls)
                    .timeout(Some(Duration::from_secs(smtp.timeout_secs)))
                    .pool_config(PoolConfig::new().max_size(SMTP_CONNECTIONS as u32));
                if let (Some(user), Some(password)) = (&smtp.user, &smtp.password) {
                    builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
                }
                let min_interval = smtp
                    .max_per_second
                    .filter(|n| *n > 0)
                    .map(|n| Duration::from_secs_f64(1.0 / n as f64));
                let rate =
                    min_interval.map(|i| (i, std::sync::Mutex::new(std::time::Instant::now())));
                Ok(Mailer::Smtp {
                    transport: builder.build(),
                    rate,
                })
            }
        }
    }

    /// Makes the messages handed over so far durable before they are
    /// recorded as sent: the file transport writes a batch of `.eml` files
    /// unsynced and flushes them to disk at once. SMTP servers have
    /// accepted theirs already.
    pub fn make_durable(&self) -> Result<(), store::FileError> {
        match self {
            Mailer::File { outbox } => store::sync_filesystem(outbox),
            Mailer::Smtp { .. } => Ok(()),
        }
    }

    /// Hands one message to the transport; the file transport writes it
    /// to `OUT/outbox/{folder}/{recipient}.eml` (`folder`: the document's
    /// number, or `{invoice}/reminder-{k}`).
    pub fn send(&self, message: &Message, folder: &str, recipient: &str) -> Outcome {
        match self {
            Mailer::File { outbox } => {
                let Some(path) = outbox_path(outbox, folder, recipient) else {
                    return Outcome::Permanent(format!(
                        "{recipient:?} is not a valid e-mail address (SPEC §2)"
                    ));
                };
                match store::write_unsynced(&path, &message.formatted()) {
                    Ok(()) => Outcome::Sent,
                    Err(e) => Outcome::Transient(format!("cannot write {}: {e}", path.display())),
                }
            }
            Mailer::Smtp { transport, rate } => {
                if let Some((interval, next)) = rate {
                    let wait = {
                        let mut next = next.lock().expect("rate lock");
                        let now = std::time::Instant::now();
                        let slot = (*next).max(now);
                        *next = slot + *interval;
                        slot - now
                    };
                    std::thread::sleep(wait);
                }
                match transport.send(message) {
                    Ok(_) => Outcome::Sent,
                    Err(e) if e.is_permanent() => Outcome::Permanent(e.to_string()),
                    Err(e) => Outcome::Transient(e.to_string()),
                }
            }
        }
    }
}

/// TLS towards `smtp.host`, trusting the system's CAs and `ca_file`'s.
/// A certificate another CA signed, an expired one or one for another
/// host fails the handshake: never a fall back to plain text.
fn tls_parameters(smtp: &crate::config::SmtpSettings) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(smtp.host.clone());
    if let Some(ca_file) = &smtp.ca_file {
        let pem = std::fs::read(ca_file)
            .map_err(|e| format!("cannot read ca_file `{}`: {e}", ca_file.display()))?;
        let certificate = lettre::transport::smtp::client::Certificate::from_pem(&pem)
            .map_err(|e| format!("ca_file `{}`: {e}", ca_file.display()))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build().map_err(|e| e.to_string())
}

/// The file transport's `OUT/outbox/{folder}/{recipient}.eml`, built only
/// from an address that passes [`parse_email`] (so it is a plain file name)
/// and a folder of one or two plain names (`INV-1`, `INV-1/reminder-2`);
/// `None` otherwise.
pub fn outbox_path(outbox: &Path, folder: &str, recipient: &str) -> Option<PathBuf> {
    let address = parse_email(recipient)?;
    let plain = |name: &str| {
        !name.is_empty() && name != "." && name != ".." && !name.contains(['\\', '\0'])
    };
    let parts: Vec<&str> = folder.split('/').collect();
    (parts.len() <= 2 && parts.iter().all(|p| plain(p)))
        .then(|| outbox.join(folder).join(format!("{address}.eml")))
}

/// SMTP connections (and senders) used at once. Delivery is latency-bound
/// (lettre leaves Nagle's algorithm on, ~40 ms a message on a connection),
/// so throughput comes from parallel connections.
pub const SMTP_CONNECTIONS: usize = 32;

/// Waits between tries of a message after a transient failure, within a run.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(500)];

impl Mailer {
    /// Sends, retrying transient failures with backoff; returns the final
    /// outcome and how many tries it took.
    pub fn send_with_retry(
        &self,
        message: &Message,
        folder: &str,
        recipient: &str,
    ) -> (Outcome, u32) {
        let mut tries = 1;
        loop {
            let outcome = self.send(message, folder, recipient);
            match outcome {
                Outcome::Transient(_) if (tries as usize) <= RETRY_DELAYS.len() => {
                    std::thread::sleep(RETRY_DELAYS[tries as usize - 1]);
                    tries += 1;
                }
                _ => return (outcome, tries),
            }
        }
    }
}

/// What a message is made of besides the addresses of `[mail]`.
pub struct Email<'a> {
    /// The document's number, for errors.
    pub number: &'a str,
    pub recipient: &'a str,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachment_name: String,
    /// The PDF as lettre encodes it (`Body::new`: base64), encoded once
    /// for all the messages that attach it.
    pub pdf: Body,
    pub message_id: String,
    /// The Date header: midnight UTC of the document's date, the same on a re-send.
    pub date: chrono::NaiveDate,
}

/// A message with a plain-text and an HTML body and the PDF attached;
/// MIME boundaries derived from the Message-ID, so a re-send is the same.
pub fn build_email(email: Email, settings: &MailSettings) -> Result<Message, DeliverError> {
    let build_error = |detail: String| DeliverError::Build {
        invoice: email.number.to_string(),
        recipient: email.recipient.to_string(),
        detail,
    };
    let to: Mailbox = email
        .recipient
        .parse()
        .map_err(|e| build_error(format!("recipient: {e}")))?;
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|e| build_error(format!("from: {e}")))?;
    let id = &email.message_id;
    let boundary = |part: &str| {
        format!(
            "faktura-{part}-{}",
            id.trim_matches(['<', '>']).replace('@', "-")
        )
    };
    let body = MultiPart::mixed()
        .boundary(boundary("mixed"))
        .multipart(
            MultiPart::alternative()
                .boundary(boundary("alt"))
                .singlepart(SinglePart::plain(email.text))
                .singlepart(SinglePart::html(email.html)),
        )
        .singlepart(Attachment::new(email.attachment_name).body(
            email.pdf,
            ContentType::parse("application/pdf").expect("valid content type"),
        ));
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject)
        .message_id(Some(id.clone()))
        .date(midnight(email.date));
    if let Some(reply_to) = &settings.reply_to {
        let reply_to: Mailbox = reply_to
            .parse()
            .map_err(|e| build_error(format!("reply_to: {e}")))?;
        builder = builder.reply_to(reply_to);
    }
    builder
        .multipart(body)
        .map_err(|e| build_error(e.to_string()))
}

/// Builds the e-mail of `invoice` for `recipient` with the PDF attached.
pub fn build_message(
    invoice: &InvoiceHead,
    recipient: &str,
    locale: Locale,
    customer_name: &str,
    pdf: Body,
    settings: &MailSettings,
) -> Result<Message, DeliverError> {
    let labels = locale.labels();
    let month = locale.month_year(invoice.period.start);
    let rows = [
        (labels.invoice_number, invoice.number.clone()),
        (labels.billing_period, locale.period(invoice.period)),
        (
            labels.amount_due,
            locale.money(invoice.total(), &invoice.currency),
        ),
        (labels.due_date, locale.date(invoice.due_date)),
    ];
    let (text, html) = bodies(
        labels.email_greeting,
        &format!("{customer_name}: {}", labels.email_body),
        &rows,
        &[labels.email_attached],
    );
    let email = Email {
        number: &invoice.number,
        recipient,
        subject: format!("{} {} – {month}", labels.email_subject, invoice.number),
        text,
        html,
        attachment_name: format!("{}.pdf", invoice.number),
        pdf,
        message_id: message_id(&invoice.number, recipient),
        date: invoice.invoice_date,
    };
    build_email(email, settings)
}

/// Builds the e-mail of credit note `note` for `recipient`, its PDF attached.
pub fn build_credit_note_message(
    note: &CreditNote,
    recipient: &str,
    locale: Locale,
    customer_name: &str,
    pdf: Body,
    settings: &MailSettings,
) -> Result<Message, DeliverError> {
    let labels = locale.labels();
    let rows = [
        (labels.credit_note_number, note.number.clone()),
        (labels.corrects_invoice, note.invoice_number.clone()),
        (labels.reason, note.printable_reason()),
        (labels.total, locale.money(note.total(), &note.currency)),
    ];
    let (text, html) = bodies(
        labels.email_greeting,
        &format!("{customer_name}: {}", labels.credit_email_body),
        &rows,
        &[labels.credit_email_attached],
    );
    let email = Email {
        number: &note.number,
        recipient,
        subject: format!(
            "{} {} – {} {}",
            labels.credit_note, note.number, labels.invoice, note.invoice_number
        ),
        text,
        html,
        attachment_name: format!("{}.pdf", note.number),
        pdf,
        message_id: message_id(&note.number, recipient),
        date: note.issue_date,
    };
    build_email(email, settings)
}

/// What a reminder says besides its invoice (SPEC §5.1).
pub struct ReminderFacts {
    /// *k*, counted from 1.
    pub reminder: u32,
    /// The day reminder *k* fell due: the message's date.
    pub date: chrono::NaiveDate,
    /// `total - amount_paid - credited_total`.
    pub still_owed: rust_decimal::Decimal,
}

/// Builds reminder *k* of `invoice` for `recipient`, the invoice PDF attached.
pub fn build_reminder_message(
    invoice: &InvoiceHead,
    facts: &ReminderFacts,
    recipient: &str,
    locale: Locale,
    customer_name: &str,
    pdf: Body,
    settings: &MailSettings,
) -> Result<Message, DeliverError> {
    let labels = locale.labels();
    let rows = [
        (labels.invoice_number, invoice.number.clone()),
        (labels.invoice_date, locale.date(invoice.invoice_date)),
        (labels.due_date, locale.date(invoice.due_date)),
        (
            labels.amount_outstanding,
            locale.money(facts.still_owed, &invoice.currency),
        ),
    ];
    let (text, html) = bodies(
        labels.email_greeting,
        &format!("{customer_name}: {}", labels.reminder_body),
        &rows,
        &[labels.reminder_attached, labels.reminder_paid_already],
    );
    let email = Email {
        number: &invoice.number,
        recipient,
        subject: format!(
            "{} {}: {} {}",
            labels.reminder_subject, facts.reminder, labels.invoice, invoice.number
        ),
        text,
        html,
        attachment_name: format!("{}.pdf", invoice.number),
        pdf,
        message_id: crate::model::reminder_message_id(&invoice.number, facts.reminder, recipient),
        date: facts.date,
    };
    build_email(email, settings)
}

/// The plain-text and HTML bodies: a greeting, an opening line, a table of
/// (label, value) rows (values in bold) and closing lines.
fn bodies(
    greeting: &str,
    opening: &str,
    rows: &[(&str, String)],
    closing: &[&str],
) -> (String, String) {
    let mut text = format!("{greeting}\n\n{opening}\n\n");
    let mut html = format!(
        "<!DOCTYPE html><html><body><p>{}</p><p>{}</p><table>",
        escape_html(greeting),
        escape_html(opening)
    );
    for (label, value) in rows {
        text += &format!("{label}: {value}\n");
        html += &format!(
            "<tr><td>{}</td><td><b>{}</b></td></tr>",
            escape_html(label),
            escape_html(value)
        );
    }
    html += "</table>";
    text.push('\n');
    for line in closing {
        text += &format!("{line}\n");
        html += &format!("<p>{}</p>", escape_html(line));
    }
    html += "</body></html>";
    (text, html)
}

/// Midnight UTC of `date`: a Date header that is the same on a re-send.
fn midnight(date: chrono::NaiveDate) -> SystemTime {
    let secs = date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
    UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_paths_never_leave_the_outbox() {
        let outbox = Path::new("/o/outbox");
        assert_eq!(
            outbox_path(outbox, "INV-1", "Ann@Example.com"),
            Some(PathBuf::from("/o/outbox/INV-1/ann@example.com.eml"))
        );
        for recipient in [
            "/tmp/x@evil.example",
            "../x@evil.example",
            "a/b@c.de",
            "x@../../e",
        ] {
            assert_eq!(outbox_path(outbox, "INV-1", recipient), None, "{recipient}");
        }
        assert_eq!(outbox_path(outbox, "..", "a@b.de"), None);
        assert_eq!(outbox_path(outbox, "a/../b", "a@b.de"), None);
        assert_eq!(outbox_path(outbox, "/a", "a@b.de"), None);
        assert_eq!(
            outbox_path(outbox, "INV-1/reminder-2", "a@b.de"),
            Some(PathBuf::from("/o/outbox/INV-1/reminder-2/a@b.de.eml"))
        );
    }

    #[test]
    fn message_ids_are_stable_and_case_insensitive() {
        assert_eq!(
            message_id("INV-1", "Ann@Example.com"),
            message_id("INV-1", "ann@example.com")
        );
        assert_ne!(
            message_id("INV-1", "ann@example.com"),
            message_id("INV-2", "ann@example.com")
        );
    }
}
