//! Issued invoices as stored (with or without their lines), payments and
//! statuses.

use rust_decimal::Decimal;

use crate::model::{Invoice, InvoiceHead};

use super::*;

impl Ledger {
    /// Every issued invoice with what has been paid and its stored status.
    pub fn invoices(&self) -> Result<Vec<(Invoice, Decimal, String)>> {
        self.invoice_rows()
    }

    /// Like [`Ledger::invoices`], without the invoices' lines.
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
