//! Issued credit notes (SPEC §4.9), numbered from a gapless sequence of
//! their own in the transaction that issues them, with their e-mails.

use crate::model::CreditNote;

use super::outbox::{Document, add_delivery};
use super::outputs::mark_dirty;
use rusqlite::params;

use super::{Ledger, Result, from_json, json, sqlite_error};

impl Ledger {
    /// Every issued credit note, in number order.
    pub fn credit_notes(&self) -> Result<Vec<CreditNote>> {
        let mut out = Vec::new();
        self.for_text_rows(
            "SELECT data FROM credit_notes ORDER BY seq",
            [],
            |[data]| {
                out.push(from_json("credit_notes.data", &data)?);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// The next number of the credit notes' sequence.
    pub fn next_credit_note_seq(&self) -> Result<u64> {
        let max: Option<i64> = self
            .conn
            .query_row("SELECT MAX(seq) FROM credit_notes", [], |r| r.get(0))
            .map_err(self.err())?;
        Ok(max.map_or(1, |m| m as u64 + 1))
    }

    /// Records credit notes just issued, `(seq, note)`, with a pending
    /// e-mail per recipient, and marks the `credit_notes/` and
    /// `invoices/` partitions they change, in one transaction.
    pub fn commit_credit_notes(&mut self, notes: &[(u64, CreditNote)]) -> Result<()> {
        if notes.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let wrap = |source| sqlite_error(path.clone(), source);
        let tx = self.write()?;
        for (seq, note) in notes {
            tx.execute(
                "INSERT INTO credit_notes (seq, number, ref, invoice_number, period_start, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    *seq as i64,
                    note.number,
                    note.credit_note_ref,
                    note.invoice_number,
                    note.period.start.to_string(),
                    json(note)
                ],
            )
            .map_err(wrap)?;
            let month = note.period.month_key();
            mark_dirty(&tx, "credit_notes", &month).map_err(wrap)?;
            mark_dirty(&tx, "invoices", &month).map_err(wrap)?;
            for recipient in &note.recipients {
                add_delivery(&tx, Document::CreditNote, &note.number, recipient).map_err(wrap)?;
            }
        }
        tx.commit().map_err(wrap)
    }
}
