//! Reminders (SPEC §5.1): after a run's payments and credit notes, every
//! past-due `services` invoice with recipients gets reminder *k*, the last
//! one due on or before `as_of`, when *k* is more than it has been sent.
//! One run issues at most one per invoice; a reminder passed over (a run
//! missed) is never issued later.

use chrono::NaiveDate;

use crate::ledger::{IssuedInvoice, ReminderIssue};
use crate::model::{InvoiceStatus, Kind};

/// The reminders due on `as_of`, reminder *k* falling due `days[k-1]`
/// days after an invoice's due date (`days` strictly increasing, from 1).
pub fn reminders_due(
    invoices: &[IssuedInvoice],
    days: &[i64],
    as_of: NaiveDate,
) -> Vec<ReminderIssue> {
    invoices
        .iter()
        .filter(|i| i.head.kind == Kind::Services && !i.head.recipients.is_empty())
        .filter(|i| i.status == InvoiceStatus::PastDue.as_str())
        .filter_map(|i| {
            let due = i.head.due_date;
            let reached = days
                .iter()
                .take_while(|d| due + chrono::Days::new(**d as u64) <= as_of)
                .count() as u32;
            (reached > i.reminders_sent).then(|| ReminderIssue {
                number: i.head.number.clone(),
                month: i.head.period.month_key(),
                reminder: reached,
                recipients: i.head.recipients.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::model::{Amounts, EinvoiceAddresses, InvoiceHead, Period};

    fn invoice(status: InvoiceStatus, sent: u32, kind: Kind, recipients: &[&str]) -> IssuedInvoice {
        let date = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        IssuedInvoice {
            head: InvoiceHead {
                number: "INV-1".into(),
                account_id: "A".into(),
                profile_id: "P".into(),
                kind,
                period: Period::containing(date - chrono::Days::new(40), 1),
                currency: "NOK".into(),
                invoice_date: date,
                due_date: date + chrono::Days::new(30),
                amounts: Amounts {
                    amount_due: Decimal::ONE,
                    ..Default::default()
                },
                recipients: recipients.iter().map(|r| r.to_string()).collect(),
                vat: None,
                einvoice: EinvoiceAddresses::Unrecorded,
            },
            amount_paid: Decimal::ZERO,
            credited_total: Decimal::ZERO,
            reminders_sent: sent,
            status: status.as_str().into(),
        }
    }

    /// Due 2027-01-02; reminders 14 and 28 days after: 01-16 and 01-30.
    #[test]
    fn the_last_reminder_due_is_issued_once_and_a_passed_over_one_never() {
        let day = |d: &str| d.parse::<NaiveDate>().unwrap();
        let due = |status, sent, as_of: &str| {
            let invoices = [invoice(status, sent, Kind::Services, &["a@b.example"])];
            reminders_due(&invoices, &[14, 28], day(as_of))
                .into_iter()
                .map(|r| r.reminder)
                .collect::<Vec<_>>()
        };
        use InvoiceStatus::*;
        assert_eq!(due(PastDue, 0, "2027-01-15"), Vec::<u32>::new());
        assert_eq!(due(PastDue, 0, "2027-01-16"), [1]);
        assert_eq!(due(PastDue, 1, "2027-01-20"), Vec::<u32>::new());
        assert_eq!(due(PastDue, 1, "2027-01-30"), [2]);
        // A run missed over both days: only the second, never the first.
        assert_eq!(due(PastDue, 0, "2027-02-10"), [2]);
        assert_eq!(due(PastDue, 2, "2027-03-10"), Vec::<u32>::new());
        for settled in [Paid, Credited, Due] {
            assert_eq!(due(settled, 0, "2027-02-10"), Vec::<u32>::new());
        }
        let purchases = [invoice(PastDue, 0, Kind::Purchases, &["a@b.example"])];
        assert!(reminders_due(&purchases, &[14], day("2027-02-10")).is_empty());
        let nobody = [invoice(PastDue, 0, Kind::Services, &[])];
        assert!(reminders_due(&nobody, &[14], day("2027-02-10")).is_empty());
    }
}
