//! The e-mail outbox: one delivery per (invoice, recipient).

use super::*;

/// A delivery of the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub invoice_number: String,
    pub recipient: String,
    pub message_id: String,
    pub status: String,
    pub attempts: u32,
    pub last_reply: Option<String>,
}

impl Ledger {
    pub fn deliveries(&self) -> Result<Vec<Delivery>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT invoice_number, recipient, message_id, status, attempts, last_reply
                 FROM outbox ORDER BY invoice_number, recipient",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Delivery {
                    invoice_number: r.get(0)?,
                    recipient: r.get(1)?,
                    message_id: r.get(2)?,
                    status: r.get(3)?,
                    attempts: r.get(4)?,
                    last_reply: r.get(5)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.err())
    }

    /// Records several outcomes in one transaction (one sync for a batch),
    /// so recording keeps up with parallel senders: `(invoice, recipient,
    /// status, reply, tries)`.
    pub fn record_deliveries(
        &mut self,
        outcomes: &[(String, String, &str, Option<String>, u32)],
    ) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| sqlite_error(path.clone(), source);
        let tx = self.write()?;
        for (invoice, recipient, status, reply, tries) in outcomes {
            tx.execute(
                "UPDATE outbox SET status = ?3, attempts = attempts + ?5, last_reply = ?4
                 WHERE invoice_number = ?1 AND recipient = ?2",
                params![invoice, recipient, status, reply, tries],
            )
            .map_err(wrap)?;
        }
        tx.commit().map_err(wrap)
    }

    /// Puts every delivery of `invoice` back to pending, for a deliberate
    /// re-send; returns how many there are.
    pub fn reset_deliveries(&mut self, invoice: &str) -> Result<usize> {
        self.conn
            .execute(
                "UPDATE outbox SET status = 'pending' WHERE invoice_number = ?1",
                [invoice],
            )
            .map_err(self.err())
    }
}
