//! Issued invoices as stored, payments and statuses. An invoice is stored
//! without its lines (its `data` is the [`InvoiceHead`]): they are its
//! period's decided lines, kept once in the `lines` table and joined back
//! when an invoice is read whole. (Ledgers from before kept the lines in
//! `data` too; they are read the same way.)

use rust_decimal::Decimal;

use crate::model::{Invoice, InvoiceHead};

use super::*;

impl Ledger {
    /// An invoice whole: its head and its period's decided lines.
    fn with_lines(&self, head: InvoiceHead) -> Result<Invoice> {
        let lines = self.lines_of(&(head.profile_id.clone(), head.kind, head.period.start))?;
        Ok(head.with_lines(lines))
    }

    /// Every issued invoice without its lines, with what has been paid
    /// and its stored status.
    pub fn invoice_heads(&self) -> Result<Vec<(InvoiceHead, Decimal, String)>> {
        self.invoice_rows()
    }

    fn invoice_rows<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<(T, Decimal, String)>> {
        let mut out = Vec::new();
        self.for_text_rows(
            "SELECT data, amount_paid, status FROM invoices ORDER BY seq",
            [],
            |[data, paid, status]| {
                let paid = paid
                    .parse()
                    .map_err(|e: rust_decimal::Error| LedgerError::Corrupt {
                        what: "invoices.amount_paid",
                        detail: e.to_string(),
                    })?;
                out.push((from_json("invoices.data", &data)?, paid, status));
                Ok(())
            },
        )?;
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

    /// Stores new payment totals and statuses; marks changed months dirty.
    pub fn update_payments(
        &mut self,
        updates: &[(String, String, Decimal, &'static str)],
    ) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| sqlite_error(path.clone(), source);
        let tx = self.write()?;
        for (number, month, paid, status) in updates {
            tx.execute(
                "UPDATE invoices SET amount_paid = ?2, status = ?3 WHERE number = ?1",
                params![number, paid.to_string(), status],
            )
            .map_err(wrap)?;
            mark_dirty(&tx, "invoices", month).map_err(wrap)?;
        }
        tx.commit().map_err(wrap)
    }
}
