//! The send stage: every outbox message not yet sent (pending, or failed
//! transiently) goes to the transport through the sender pool, and each
//! outcome is recorded in the ledger as it arrives. A reminder whose
//! invoice is no longer past due, or has a later reminder, is cancelled
//! instead (SPEC §5.1). `--resend INVOICE` marks an invoice's deliveries
//! pending again first.

use std::collections::{BTreeMap, BTreeSet};

use lettre::message::Body;

use crate::config::MailSettings;
use crate::ledger::{Delivery, DeliveryOutcome, Document, IssuedInvoice, Ledger};
use crate::model::{CreditNote, Invoice, InvoiceStatus, Profile};
use crate::render;

use super::{
    DeliverError, Mailer, Outcome, ReminderFacts, SMTP_CONNECTIONS, build_credit_note_message,
    build_message, build_reminder_message, pool,
};

/// What the send stage did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DeliveryReport {
    pub sent: usize,
    pub failed: usize,
    pub bounced: usize,
    pub already_sent: usize,
    /// Reminder messages sent this run (SPEC §5.1), also counted in `sent`.
    pub reminders_sent: usize,
    /// Reminder messages cancelled this run: their invoice was paid or
    /// credited, or a later reminder was issued.
    pub reminders_cancelled: usize,
}

/// What sending needs besides the ledger.
pub struct Inputs<'a> {
    pub mail: &'a MailSettings,
    /// To render a PDF that is missing from disk.
    pub render: render::Inputs<'a>,
    /// `faktura send --resend INVOICE`.
    pub resend: Option<&'a str>,
    /// `[reminders] days` (SPEC §5.1): reminder *k* is due `days[k-1]`
    /// days after the due date, the date its message carries.
    pub reminder_days: &'a [i64],
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
    let deliveries = ledger.deliveries()?;
    let finished = |d: &Delivery| matches!(d.status.as_str(), "sent" | "bounced" | "cancelled");
    if deliveries.iter().all(finished) {
        // A night with nothing to send reads no invoice or credit note.
        sort_out(deliveries, &Documents::default(), &mut report);
        return Ok(report);
    }
    let documents = Documents::read(ledger)?;
    let (todo, cancelled) = sort_out(deliveries, &documents, &mut report);
    cancel(ledger, &cancelled, &mut report)?;
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
    // A batch of deliveries at a time, with only their invoices' lines in memory.
    for batch in todo.chunks(DELIVERIES_PER_BATCH) {
        let to_render = InvoicesToRender::read(ledger, inputs, &documents, batch)?;
        let sending = Sending {
            inputs,
            mailer: &mailer,
            documents: &documents,
            to_render: &to_render,
            progress: &progress,
        };
        sending.send_batch(batch, senders, ledger, &mut report)?;
    }
    Ok(report)
}

/// The deliveries still to send, and the reminders that never will be
/// (counting those sent and refused before).
fn sort_out(
    deliveries: Vec<Delivery>,
    documents: &Documents,
    report: &mut DeliveryReport,
) -> (Vec<Delivery>, Vec<Delivery>) {
    let (mut todo, mut cancelled) = (Vec::new(), Vec::new());
    for delivery in deliveries {
        match delivery.status.as_str() {
            "sent" => report.already_sent += 1,
            "bounced" => report.bounced += 1,
            "cancelled" => {}
            _ if documents.reminder_is_void(&delivery) => cancelled.push(delivery),
            _ => todo.push(delivery),
        }
    }
    (todo, cancelled)
}

/// One batch's sending: what every sender shares.
struct Sending<'a> {
    inputs: &'a Inputs<'a>,
    mailer: &'a Mailer,
    documents: &'a Documents,
    to_render: &'a InvoicesToRender,
    progress: &'a crate::progress::Progress,
}

impl Sending<'_> {
    /// Sends a batch through `senders` senders, recording each outcome: as
    /// it arrives over SMTP, once the batch's files are on disk for the
    /// file transport.
    fn send_batch(
        &self,
        batch: &[Delivery],
        senders: usize,
        ledger: &mut Ledger,
        report: &mut DeliveryReport,
    ) -> Result<(), DeliverError> {
        let mut written = Vec::new();
        pool::send_all(
            jobs(batch, self.mailer),
            senders,
            |job| deliver_job(self, job),
            |done| {
                let sent: Vec<_> = done
                    .into_iter()
                    .flat_map(|(job, outcomes)| job.into_iter().zip(outcomes))
                    .collect();
                self.progress.inc_by(sent.len() as u64);
                let records = sent.into_iter().map(|(delivery, (outcome, tries))| {
                    let (status, reply) = report.count(&delivery, outcome);
                    DeliveryOutcome {
                        document: delivery.document,
                        number: delivery.number,
                        recipient: delivery.recipient,
                        status,
                        reply,
                        tries,
                    }
                });
                match self.mailer {
                    Mailer::File { .. } => {
                        written.extend(records);
                        Ok(())
                    }
                    Mailer::Smtp { .. } => ledger.record_deliveries(&records.collect::<Vec<_>>()),
                }
            },
        )?;
        if !written.is_empty() {
            self.mailer.make_durable()?;
            ledger.record_deliveries(&written)?;
        }
        Ok(())
    }
}

/// The batch cut into what one sender takes at a time. Over SMTP a single
/// message, recorded as soon as the server accepts it. For the file
/// transport a document's deliveries together (the batch is ordered by
/// document): one writer fills the document's folder, reading the PDF
/// once, where writers sharing a folder would queue on its lock.
fn jobs(batch: &[Delivery], mailer: &Mailer) -> Vec<Vec<Delivery>> {
    match mailer {
        Mailer::Smtp { .. } => batch.iter().map(|d| vec![d.clone()]).collect(),
        Mailer::File { .. } => batch
            .chunk_by(|a, b| a.document == b.document && a.number == b.number)
            .map(<[Delivery]>::to_vec)
            .collect(),
    }
}

/// Records reminders that will never be sent as `cancelled`.
fn cancel(
    ledger: &mut Ledger,
    cancelled: &[Delivery],
    report: &mut DeliveryReport,
) -> Result<(), DeliverError> {
    let outcomes: Vec<DeliveryOutcome> = cancelled
        .iter()
        .map(|d| DeliveryOutcome {
            document: d.document,
            number: d.number.clone(),
            recipient: d.recipient.clone(),
            status: "cancelled",
            reply: d.last_reply.clone(),
            tries: 0,
        })
        .collect();
    ledger.record_deliveries(&outcomes)?;
    report.reminders_cancelled += outcomes.len();
    Ok(())
}

/// Deliveries sent per batch: their invoices are read whole for the batch only.
const DELIVERIES_PER_BATCH: usize = 512;

/// Messages the file transport writes at once.
const FILE_WRITERS: usize = 4;

/// Every issued invoice (without lines) and credit note: all a message needs.
#[derive(Default)]
struct Documents {
    invoices: BTreeMap<String, IssuedInvoice>,
    credit_notes: BTreeMap<String, CreditNote>,
}

impl Documents {
    fn read(ledger: &Ledger) -> Result<Self, DeliverError> {
        Ok(Documents {
            invoices: ledger
                .invoice_heads()?
                .into_iter()
                .map(|i| (i.head.number.clone(), i))
                .collect(),
            credit_notes: ledger
                .credit_notes()?
                .into_iter()
                .map(|n| (n.number.clone(), n))
                .collect(),
        })
    }

    /// A reminder that failed or was never tried is sent only while its
    /// invoice is past due and no later reminder has been issued.
    fn reminder_is_void(&self, delivery: &Delivery) -> bool {
        let Document::Reminder(k) = delivery.document else {
            return false;
        };
        self.invoices
            .get(&delivery.number)
            .is_none_or(|i| i.status != InvoiceStatus::PastDue.as_str() || i.reminders_sent > k)
    }
}

/// Whole invoices (with their lines) of a batch whose PDF is missing from
/// disk and has to be rendered again.
struct InvoicesToRender(BTreeMap<String, Invoice>);

impl InvoicesToRender {
    fn read(
        ledger: &Ledger,
        inputs: &Inputs,
        documents: &Documents,
        batch: &[Delivery],
    ) -> Result<Self, DeliverError> {
        let out = inputs.render.out_dir;
        // Each invoice's PDF looked for once, however many recipients it has.
        let numbers: BTreeSet<&String> = batch
            .iter()
            .filter(|d| d.document != Document::CreditNote)
            .map(|d| &d.number)
            .collect();
        let missing: Vec<String> = numbers
            .into_iter()
            .filter_map(|number| documents.invoices.get(number))
            .filter(|i| !render::pdf_path(out, i.head.period, &i.head.number).exists())
            .map(|i| i.head.number.clone())
            .collect();
        Ok(InvoicesToRender(
            ledger
                .invoices_numbered(&missing)?
                .into_iter()
                .map(|invoice| (invoice.number.clone(), invoice))
                .collect(),
        ))
    }
}

impl DeliveryReport {
    /// Counts one outcome; returns the outbox status and reply to record.
    fn count(&mut self, delivery: &Delivery, outcome: Outcome) -> (&'static str, Option<String>) {
        let (number, recipient) = (&delivery.number, &delivery.recipient);
        match outcome {
            Outcome::Sent => {
                self.sent += 1;
                if matches!(delivery.document, Document::Reminder(_)) {
                    self.reminders_sent += 1;
                }
                ("sent", None)
            }
            Outcome::Transient(reply) => {
                self.failed += 1;
                tracing::warn!(%number, %recipient, %reply, "delivery failed; retried next run");
                ("failed", Some(reply))
            }
            Outcome::Permanent(reply) => {
                self.bounced += 1;
                tracing::warn!(%number, %recipient, %reply, "delivery refused");
                ("bounced", Some(reply))
            }
        }
    }
}

/// Builds the messages of a job's deliveries (all of one document: the
/// PDF from disk, rendered again if missing) and hands each to the
/// transport, with retries; an outcome for every delivery, in order.
/// Never fails: a message that cannot be built for its recipient is
/// refused (`bounced`, with the reason); one whose document or PDF cannot
/// be had now is `failed`, and tried again on the next run.
fn deliver_job(sending: &Sending, job: &[Delivery]) -> Vec<(Outcome, u32)> {
    let Some(first) = job.first() else {
        return Vec::new();
    };
    let parts = document_parts(sending, first);
    job.iter()
        .map(|delivery| {
            let built = parts
                .as_ref()
                .map_err(Outcome::clone)
                .and_then(|(profile, pdf)| build(sending, delivery, profile, pdf.clone()));
            match built {
                Ok((message, folder)) => {
                    sending
                        .mailer
                        .send_with_retry(&message, &folder, &delivery.recipient)
                }
                Err(outcome) => (outcome, 1),
            }
        })
        .collect()
}

/// What all of a document's messages share: the profile it is for and
/// the PDF they attach; or the outcome that stands for each of them when
/// either cannot be had.
fn document_parts<'a>(
    sending: &'a Sending,
    delivery: &Delivery,
) -> Result<(&'a Profile, Body), Outcome> {
    let documents = sending.documents;
    let number = &delivery.number;
    let unknown = || Outcome::Transient(format!("outbox names unknown document {number}"));
    let (profile_id, period) = match delivery.document {
        Document::CreditNote => {
            let note = documents.credit_notes.get(number).ok_or_else(unknown)?;
            (&note.profile_id, note.period)
        }
        _ => {
            let invoice = documents.invoices.get(number).ok_or_else(unknown)?;
            (&invoice.head.profile_id, invoice.head.period)
        }
    };
    let Some(profile) = sending.inputs.render.reference.profiles.get(profile_id) else {
        let reason = format!("profile {profile_id} is not in profiles.csv");
        return Err(Outcome::Transient(reason));
    };
    Ok((profile, Body::new(pdf_of(sending, delivery, period)?)))
}

/// The message of `delivery` with `pdf` attached and its outbox folder, or
/// the refusal that stands for it when it cannot be built.
fn build(
    sending: &Sending,
    delivery: &Delivery,
    profile: &Profile,
    pdf: Body,
) -> Result<(lettre::Message, String), Outcome> {
    let (inputs, documents) = (sending.inputs, sending.documents);
    let number = &delivery.number;
    let (locale, name, recipient) = (profile.locale, &profile.name, &delivery.recipient);
    let built = match delivery.document {
        Document::Invoice => {
            let head = &documents.invoices[number].head;
            build_message(head, recipient, locale, name, pdf, inputs.mail)
                .map(|m| (m, number.clone()))
        }
        Document::CreditNote => {
            let note = &documents.credit_notes[number];
            build_credit_note_message(note, recipient, locale, name, pdf, inputs.mail)
                .map(|m| (m, number.clone()))
        }
        Document::Reminder(k) => {
            let invoice = &documents.invoices[number];
            let facts = reminder_facts(inputs, invoice, k);
            build_reminder_message(
                &invoice.head,
                &facts,
                recipient,
                locale,
                name,
                pdf,
                inputs.mail,
            )
            .map(|m| (m, format!("{number}/reminder-{k}")))
        }
    };
    built.map_err(|e| Outcome::Permanent(e.to_string()))
}

/// The PDF a message attaches (a reminder: its invoice's), from disk, or
/// rendered again when it is missing there.
fn pdf_of(
    sending: &Sending,
    delivery: &Delivery,
    period: crate::model::Period,
) -> Result<Vec<u8>, Outcome> {
    let (inputs, number) = (sending.inputs, &delivery.number);
    let path = render::pdf_path(inputs.render.out_dir, period, number);
    std::fs::read(&path).or_else(|e| {
        let rendered = match delivery.document {
            Document::CreditNote => sending
                .documents
                .credit_notes
                .get(number)
                .map(|note| render::render_credit_note_pdf(&inputs.render, note)),
            _ => sending
                .to_render
                .0
                .get(number)
                .map(|whole| render::render_pdf(&inputs.render, whole)),
        };
        match rendered {
            Some(Ok(bytes)) => Ok(bytes),
            Some(Err(e)) => Err(Outcome::Transient(e.to_string())),
            None => Err(Outcome::Transient(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    })
}

/// Reminder `k` of `invoice`: the day it fell due and what is still owed.
fn reminder_facts(inputs: &Inputs, invoice: &IssuedInvoice, k: u32) -> ReminderFacts {
    let days = inputs
        .reminder_days
        .get(k as usize - 1)
        .copied()
        .unwrap_or_default();
    ReminderFacts {
        reminder: k,
        date: invoice.head.due_date + chrono::Days::new(days.max(0) as u64),
        still_owed: invoice.head.total() - invoice.amount_paid - invoice.credited_total,
    }
}
