//! The send stage: every outbox message not yet sent (pending, or failed
//! transiently) goes to the transport through the sender pool, and each
//! outcome is recorded in the ledger as it arrives. `--resend INVOICE`
//! marks an invoice's deliveries pending again first.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::MailSettings;
use crate::ledger::{Delivery, Ledger};
use crate::model::{Invoice, InvoiceHead};
use crate::render;

use super::{DeliverError, Mailer, Outcome, SMTP_CONNECTIONS, build_message, pool};

/// What the send stage did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DeliveryReport {
    pub sent: usize,
    pub failed: usize,
    pub bounced: usize,
    pub already_sent: usize,
}

/// What sending needs besides the ledger.
pub struct Inputs<'a> {
    pub mail: &'a MailSettings,
    /// To render a PDF that is missing from disk.
    pub render: render::Inputs<'a>,
    /// `faktura send --resend INVOICE`.
    pub resend: Option<&'a str>,
}

/// Sends every outbox message not yet sent.
pub fn send_pending(inputs: &Inputs, ledger: &mut Ledger) -> Result<DeliveryReport, DeliverError> {
    let mailer = Mailer::new(inputs.mail, inputs.render.out_dir)?;
    let mut report = DeliveryReport::default();
    if let Some(number) = inputs.resend {
        if ledger.invoices_numbered(&[number.to_string()])?.is_empty() {
            return Err(DeliverError::NoSuchInvoice(number.to_string()));
        }
        let n = ledger.reset_deliveries(number)?;
        tracing::info!(invoice = %number, recipients = n, "re-sending on request");
    }
    let mut todo = Vec::new();
    for delivery in ledger.deliveries()? {
        match delivery.status.as_str() {
            "sent" => report.already_sent += 1,
            "bounced" => report.bounced += 1,
            _ => todo.push(delivery),
        }
    }
    if todo.is_empty() {
        return Ok(report);
    }
    let progress = crate::progress::Progress::new(todo.len() as u64, "send");
    // SMTP is latency-bound: several senders share the pooled transport,
    // and this thread records each outcome in the ledger as it arrives.
    // The file transport is bound by building messages and syncing files:
    // a few writers keep the cores busy while others wait for the disk.
    let senders = match mailer {
        Mailer::File { .. } => FILE_WRITERS,
        Mailer::Smtp { .. } => SMTP_CONNECTIONS,
    };
    // A batch of deliveries at a time, with only their invoices in memory.
    for batch in todo.chunks(DELIVERIES_PER_BATCH) {
        let numbers: BTreeSet<String> = batch.iter().map(|d| d.invoice_number.clone()).collect();
        let invoices =
            BatchInvoices::read(ledger, inputs, &numbers.into_iter().collect::<Vec<_>>())?;
        // Outcomes of the file transport wait for the batch's files to be
        // on disk; SMTP outcomes are recorded as they arrive.
        let mut written = Vec::new();
        pool::send_all(
            batch.to_vec(),
            senders,
            |delivery| deliver_one(inputs, &mailer, &invoices, delivery),
            |done| {
                progress.inc_by(done.len() as u64);
                let records = done.into_iter().map(|(delivery, (outcome, tries))| {
                    let (status, reply) = report.count(&delivery, outcome);
                    (
                        delivery.invoice_number,
                        delivery.recipient,
                        status,
                        reply,
                        tries,
                    )
                });
                match mailer {
                    Mailer::File { .. } => {
                        written.extend(records);
                        Ok(())
                    }
                    Mailer::Smtp { .. } => ledger.record_deliveries(&records.collect::<Vec<_>>()),
                }
            },
        )?;
        if !written.is_empty() {
            mailer.make_durable()?;
            ledger.record_deliveries(&written)?;
        }
    }
    Ok(report)
}

/// Deliveries sent per batch: their invoices are read for the batch only.
const DELIVERIES_PER_BATCH: usize = 512;

/// Messages the file transport writes at once.
const FILE_WRITERS: usize = 4;

/// A batch's invoices: every head (all an e-mail needs), and whole invoices
/// (with their lines) only where the PDF is missing from disk and has to
/// be rendered again.
struct BatchInvoices {
    heads: BTreeMap<String, InvoiceHead>,
    to_render: BTreeMap<String, Invoice>,
}

impl BatchInvoices {
    fn read(ledger: &Ledger, inputs: &Inputs, numbers: &[String]) -> Result<Self, DeliverError> {
        let heads: BTreeMap<String, InvoiceHead> = ledger
            .invoice_heads_numbered(numbers)?
            .into_iter()
            .map(|head| (head.number.clone(), head))
            .collect();
        let out = inputs.render.out_dir;
        let missing: Vec<String> = heads
            .values()
            .filter(|head| !render::pdf_path(out, head.period, &head.number).exists())
            .map(|head| head.number.clone())
            .collect();
        let to_render = ledger
            .invoices_numbered(&missing)?
            .into_iter()
            .map(|invoice| (invoice.number.clone(), invoice))
            .collect();
        Ok(BatchInvoices { heads, to_render })
    }
}

impl DeliveryReport {
    /// Counts one outcome; returns the outbox status and reply to record.
    fn count(&mut self, delivery: &Delivery, outcome: Outcome) -> (&'static str, Option<String>) {
        let (invoice, recipient) = (&delivery.invoice_number, &delivery.recipient);
        match outcome {
            Outcome::Sent => {
                self.sent += 1;
                ("sent", None)
            }
            Outcome::Transient(reply) => {
                self.failed += 1;
                tracing::warn!(%invoice, %recipient, %reply, "delivery failed; retried next run");
                ("failed", Some(reply))
            }
            Outcome::Permanent(reply) => {
                self.bounced += 1;
                tracing::warn!(%invoice, %recipient, %reply, "delivery refused");
                ("bounced", Some(reply))
            }
        }
    }
}

/// Builds one outbox message (PDF from disk, rendered again if missing) and
/// hands it to the transport, with retries. Never fails: a message that
/// cannot be built for its recipient is refused (`bounced`, with the
/// reason); one whose invoice or PDF cannot be had now is `failed`, and
/// tried again on the next run.
fn deliver_one(
    inputs: &Inputs,
    mailer: &Mailer,
    invoices: &BatchInvoices,
    delivery: &Delivery,
) -> (Outcome, u32) {
    let Some(invoice) = invoices.heads.get(&delivery.invoice_number) else {
        let reason = format!("outbox names unknown invoice {}", delivery.invoice_number);
        return (Outcome::Transient(reason), 1);
    };
    let path = render::pdf_path(inputs.render.out_dir, invoice.period, &invoice.number);
    let pdf = match (
        std::fs::read(&path),
        invoices.to_render.get(&invoice.number),
    ) {
        (Ok(bytes), _) => bytes,
        (Err(_), Some(whole)) => match render::render_pdf(&inputs.render, whole) {
            Ok(bytes) => bytes,
            Err(e) => return (Outcome::Transient(e.to_string()), 1),
        },
        (Err(e), None) => {
            return (
                Outcome::Transient(format!("cannot read {}: {e}", path.display())),
                1,
            );
        }
    };
    let Some(profile) = inputs.render.reference.profiles.get(&invoice.profile_id) else {
        let reason = format!("profile {} is not in profiles.csv", invoice.profile_id);
        return (Outcome::Transient(reason), 1);
    };
    let message = build_message(
        invoice,
        &delivery.recipient,
        profile.locale,
        &profile.name,
        pdf,
        inputs.mail,
    );
    match message {
        Ok(message) => mailer.send_with_retry(&message, &invoice.number, &delivery.recipient),
        Err(e) => (Outcome::Permanent(e.to_string()), 1),
    }
}
