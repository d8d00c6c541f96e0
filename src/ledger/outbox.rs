//! The e-mail outbox: one delivery per (invoice, recipient), per (credit
//! note, recipient) (table `outbox`, told apart by `document`) and per
//! (invoice, reminder, recipient) (table `reminder_outbox`).

use rusqlite::{Transaction, params};

use super::{Ledger, Result, sqlite_error};

/// What a message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Document {
    Invoice,
    CreditNote,
    /// Reminder *k* of an invoice (SPEC §5.1), counted from 1.
    Reminder(u32),
}

impl Document {
    fn outbox_name(self) -> &'static str {
        match self {
            Document::Invoice => "invoice",
            Document::CreditNote => "credit_note",
            Document::Reminder(_) => "reminder",
        }
    }
}

/// A delivery of the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub document: Document,
    /// The invoice's number (an invoice or a reminder) or the credit note's.
    pub number: String,
    pub recipient: String,
    pub message_id: String,
    pub status: String,
    pub attempts: u32,
    pub last_reply: Option<String>,
    /// When a reminder was issued (the run's `as_of`); `None` for others.
    pub issued_on: Option<String>,
}

/// The outcome of one delivery to record: status, reply and tries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryOutcome {
    pub document: Document,
    pub number: String,
    pub recipient: String,
    pub status: &'static str,
    pub reply: Option<String>,
    pub tries: u32,
}

impl Ledger {
    /// Every delivery: invoices' and credit notes' by number, then
    /// reminders' by invoice and reminder.
    pub fn deliveries(&self) -> Result<Vec<Delivery>> {
        // One shape for both tables: the document (its kind, or the
        // reminder's number) and when it was issued come last.
        let mut out = self.deliveries_of(
            "SELECT invoice_number, recipient, message_id, status, attempts, last_reply,
                    document, NULL FROM outbox ORDER BY invoice_number, recipient",
            |r| {
                let kind: String = r.get(6)?;
                Ok(match kind.as_str() {
                    "credit_note" => Document::CreditNote,
                    _ => Document::Invoice,
                })
            },
        )?;
        out.extend(self.deliveries_of(
            "SELECT invoice_number, recipient, message_id, status, attempts, last_reply,
                    reminder, issued_on FROM reminder_outbox
             ORDER BY invoice_number, reminder, recipient",
            |r| Ok(Document::Reminder(r.get(6)?)),
        )?);
        Ok(out)
    }

    /// The deliveries `sql` selects, its seventh column read by `document`.
    fn deliveries_of(
        &self,
        sql: &str,
        document: impl Fn(&rusqlite::Row) -> rusqlite::Result<Document>,
    ) -> Result<Vec<Delivery>> {
        let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Delivery {
                    document: document(r)?,
                    number: r.get(0)?,
                    recipient: r.get(1)?,
                    message_id: r.get(2)?,
                    status: r.get(3)?,
                    attempts: r.get(4)?,
                    last_reply: r.get(5)?,
                    issued_on: r.get(7)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.err())
    }

    /// Records several outcomes in one transaction (one sync for a batch),
    /// so recording keeps up with parallel senders.
    pub fn record_deliveries(&mut self, outcomes: &[DeliveryOutcome]) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| sqlite_error(path.clone(), source);
        let tx = self.write()?;
        for o in outcomes {
            match o.document {
                Document::Reminder(k) => tx.execute(
                    "UPDATE reminder_outbox SET status = ?4, attempts = attempts + ?6, last_reply = ?5
                     WHERE invoice_number = ?1 AND reminder = ?2 AND recipient = ?3",
                    params![o.number, k, o.recipient, o.status, o.reply, o.tries],
                ),
                other => tx.execute(
                    "UPDATE outbox SET status = ?3, attempts = attempts + ?5, last_reply = ?4
                     WHERE invoice_number = ?1 AND recipient = ?2 AND document = ?6",
                    params![
                        o.number,
                        o.recipient,
                        o.status,
                        o.reply,
                        o.tries,
                        other.outbox_name()
                    ],
                ),
            }
            .map_err(wrap)?;
        }
        tx.commit().map_err(wrap)
    }

    /// Puts every delivery of invoice `invoice` back to pending, for a
    /// deliberate re-send; returns how many there are.
    pub fn reset_deliveries(&mut self, invoice: &str) -> Result<usize> {
        self.conn
            .execute(
                "UPDATE outbox SET status = 'pending' WHERE invoice_number = ?1",
                [invoice],
            )
            .map_err(self.err())
    }
}

/// Adds a pending delivery of `document` numbered `number` to `recipient`,
/// in the transaction that issues it.
pub(super) fn add_delivery(
    tx: &Transaction,
    document: Document,
    number: &str,
    recipient: &str,
) -> rusqlite::Result<()> {
    match document {
        Document::Reminder(_) => unreachable!("reminders are added with the day they are issued"),
        other => tx.execute(
            "INSERT OR IGNORE INTO outbox
             (invoice_number, recipient, message_id, status, attempts, document)
             VALUES (?1, ?2, ?3, 'pending', 0, ?4)",
            params![
                number,
                recipient,
                crate::model::message_id(number, recipient),
                other.outbox_name()
            ],
        ),
    }
    .map(drop)
}
