//! Deliver (SPEC §5): one e-mail per (invoice, recipient), in the profile's
//! language, with the PDF attached, through lettre. The outbox in the ledger
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
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use crate::config::{MailSettings, Security, TransportKind};
use crate::model::{InvoiceHead, Locale};
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
#[derive(Debug, PartialEq, Eq)]
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
                let tls = || {
                    TlsParameters::new(smtp.host.clone()).map_err(|e| setup_error(e.to_string()))
                };
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

    /// Hands one message to the transport.
    pub fn send(&self, message: &Message, invoice_number: &str, recipient: &str) -> Outcome {
        match self {
            Mailer::File { outbox } => {
                let Some(path) = outbox_path(outbox, invoice_number, recipient) else {
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

/// The file transport's `OUT/outbox/{invoice}/{recipient}.eml`, built only
/// from an address that passes [`parse_email`] (so it is a plain file name)
/// and an invoice number without a path separator; `None` otherwise.
pub fn outbox_path(outbox: &Path, invoice_number: &str, recipient: &str) -> Option<PathBuf> {
    let address = parse_email(recipient)?;
    let plain = |name: &str| {
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
    };
    plain(invoice_number).then(|| outbox.join(invoice_number).join(format!("{address}.eml")))
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
        invoice_number: &str,
        recipient: &str,
    ) -> (Outcome, u32) {
        let mut tries = 1;
        loop {
            let outcome = self.send(message, invoice_number, recipient);
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

/// Builds the e-mail of `invoice` for `recipient` with the PDF attached.
pub fn build_message(
    invoice: &InvoiceHead,
    recipient: &str,
    locale: Locale,
    customer_name: &str,
    pdf: Vec<u8>,
    settings: &MailSettings,
) -> Result<Message, DeliverError> {
    let build_error = |detail: String| DeliverError::Build {
        invoice: invoice.number.clone(),
        recipient: recipient.to_string(),
        detail,
    };
    let labels = locale.labels();
    let to: Mailbox = recipient
        .parse()
        .map_err(|e| build_error(format!("recipient: {e}")))?;
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|e| build_error(format!("from: {e}")))?;
    let month = locale.month_year(invoice.period.start);
    let subject = format!("{} {} – {month}", labels.email_subject, invoice.number);
    let (text, html) = message_bodies(invoice, locale, customer_name);
    let id = message_id(&invoice.number, recipient);
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
                .singlepart(SinglePart::plain(text))
                .singlepart(SinglePart::html(html)),
        )
        .singlepart(Attachment::new(format!("{}.pdf", invoice.number)).body(
            pdf,
            ContentType::parse("application/pdf").expect("valid content type"),
        ));
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .message_id(Some(id))
        .date(invoice_time(invoice));
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

/// The plain-text and HTML bodies of an invoice's e-mail, in `locale`.
fn message_bodies(invoice: &InvoiceHead, locale: Locale, customer_name: &str) -> (String, String) {
    let labels = locale.labels();
    let amount = locale.money(invoice.total(), &invoice.currency);
    let due = locale.date(invoice.due_date);
    let period = locale.period(invoice.period);
    let text = format!(
        "{greeting}\n\n{customer}: {body}\n\n{num_l}: {num}\n{period_l}: {period}\n{amount_l}: {amount}\n{due_l}: {due}\n\n{attached}\n",
        greeting = labels.email_greeting,
        customer = customer_name,
        body = labels.email_body,
        num_l = labels.invoice_number,
        num = invoice.number,
        period_l = labels.billing_period,
        amount_l = labels.amount_due,
        due_l = labels.due_date,
        attached = labels.email_attached,
    );
    let html = format!(
        "<!DOCTYPE html><html><body><p>{greeting}</p><p>{customer}: {body}</p><table>\
         <tr><td>{num_l}</td><td><b>{num}</b></td></tr><tr><td>{period_l}</td><td>{period}</td></tr>\
         <tr><td>{amount_l}</td><td><b>{amount}</b></td></tr><tr><td>{due_l}</td><td>{due}</td></tr>\
         </table><p>{attached}</p></body></html>",
        greeting = escape_html(labels.email_greeting),
        customer = escape_html(customer_name),
        body = escape_html(labels.email_body),
        num_l = escape_html(labels.invoice_number),
        num = escape_html(&invoice.number),
        period_l = escape_html(labels.billing_period),
        period = escape_html(&period),
        amount_l = escape_html(labels.amount_due),
        amount = escape_html(&amount),
        due_l = escape_html(labels.due_date),
        due = escape_html(&due),
        attached = escape_html(labels.email_attached),
    );
    (text, html)
}

/// Midnight UTC of the invoice date: a Date header that is the same on a re-send.
fn invoice_time(invoice: &InvoiceHead) -> SystemTime {
    let secs = invoice
        .invoice_date
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp();
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
        assert_eq!(outbox_path(outbox, "a/b", "a@b.de"), None);
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
