//! Issued invoices as stored, payments and statuses. An invoice is stored
//! without its lines (its `data` is the [`InvoiceHead`]): they are its
//! period's decided lines, kept once in the `lines` table and joined back
//! when an invoice is read whole. (Ledgers from before kept the lines in
//! `data` too; they are read the same way.)

use rust_decimal::Decimal;

use crate::model::{Invoice, InvoiceHead};

use super::outputs::mark_dirty;

use rusqlite::{OptionalExtension, params};

use super::{Ledger, LedgerError, Result, from_json, sqlite_error, text_cells};

impl Ledger {
    /// An invoice whole: its head and its period's decided lines.
    fn with_lines(&self, head: InvoiceHead) -> Result<Invoice> {
        let lines = self.lines_of(&(head.profile_id.clone(), head.kind, head.period.start))?;
        Ok(head.with_lines(lines))
    }

    /// Every issued invoice without its lines, with what has been paid and
    /// credited, the reminders sent and its stored status, in number order.
    pub fn invoice_heads(&self) -> Result<Vec<IssuedInvoice>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT data, amount_paid, status, credited_total, reminders_sent
                 FROM invoices ORDER BY seq",
            )
            .map_err(self.err())?;
        let mut rows = stmt.query([]).map_err(self.err())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(self.err())? {
            let [data, paid, status, credited] = text_cells(row).map_err(self.err())?;
            let reminders_sent: i64 = row.get(4).map_err(self.err())?;
            out.push(IssuedInvoice {
                head: from_json("invoices.data", &data)?,
                amount_paid: decimal("invoices.amount_paid", &paid)?,
                credited_total: decimal("invoices.credited_total", &credited)?,
                reminders_sent: reminders_sent as u32,
                status,
            });
        }
        Ok(out)
    }

    /// The issued invoices numbered `numbers`, with their lines, in that
    /// order (a few at a time keeps memory to those few).
    /// Numbers not issued are left out.
    pub fn invoices_numbered(&self, numbers: &[String]) -> Result<Vec<Invoice>> {
        self.invoice_heads_numbered(numbers)?
            .into_iter()
            .map(|head| self.with_lines(head))
            .collect()
    }

    /// The issued invoices numbered `numbers` without their lines, in that
    /// order. Numbers not issued are left out.
    pub fn invoice_heads_numbered(&self, numbers: &[String]) -> Result<Vec<InvoiceHead>> {
        let mut stmt = self
            .conn
            .prepare("SELECT data FROM invoices WHERE number = ?1")
            .map_err(self.err())?;
        let mut out = Vec::with_capacity(numbers.len());
        for number in numbers {
            let data: Option<String> = stmt
                .query_row([number], |r| r.get(0))
                .optional()
                .map_err(self.err())?;
            if let Some(data) = data {
                out.push(from_json("invoices.data", &data)?);
            }
        }
        Ok(out)
    }

    /// Stores new payment totals, credited totals and statuses; marks
    /// changed months dirty.
    pub fn update_statuses(&mut self, updates: &[StatusUpdate]) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| sqlite_error(path.clone(), source);
        let tx = self.write()?;
        for u in updates {
            tx.execute(
                "UPDATE invoices SET amount_paid = ?2, status = ?3, credited_total = ?4
                 WHERE number = ?1",
                params![
                    u.number,
                    u.amount_paid.to_string(),
                    u.status,
                    u.credited_total.to_string()
                ],
            )
            .map_err(wrap)?;
            mark_dirty(&tx, "invoices", &u.month).map_err(wrap)?;
        }
        tx.commit().map_err(wrap)
    }
}

/// An issued invoice as the ledger holds it: the head fixed at issue and
/// what changes after (SPEC §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedInvoice {
    pub head: InvoiceHead,
    pub amount_paid: Decimal,
    pub credited_total: Decimal,
    pub reminders_sent: u32,
    pub status: String,
}

/// New payment and credit totals and status of one invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusUpdate {
    pub number: String,
    /// `YYYY-MM` of its period: the `invoices/` partition to rewrite.
    pub month: String,
    pub amount_paid: Decimal,
    pub credited_total: Decimal,
    pub status: &'static str,
}

fn decimal(what: &'static str, text: &str) -> Result<Decimal> {
    text.parse()
        .map_err(|e: rust_decimal::Error| LedgerError::Corrupt {
            what,
            detail: e.to_string(),
        })
}
