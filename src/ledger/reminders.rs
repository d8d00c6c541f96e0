//! Reminders issued (SPEC §5.1): an invoice's `reminders_sent` and a
//! pending message per recipient, in one transaction.

use super::outputs::mark_dirty;
use chrono::NaiveDate;
use rusqlite::params;

use super::{Ledger, Result, sqlite_error};

/// Reminder `reminder` of invoice `number` (its period's `month`), to its
/// `recipients`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReminderIssue {
    pub number: String,
    pub month: String,
    pub reminder: u32,
    pub recipients: Vec<String>,
}

impl Ledger {
    /// Records reminders issued on `as_of`: each invoice's
    /// `reminders_sent`, a pending message per recipient, and the
    /// `invoices/` partitions they change.
    pub fn commit_reminders(&mut self, issues: &[ReminderIssue], as_of: NaiveDate) -> Result<()> {
        if issues.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let wrap = |source| sqlite_error(path.clone(), source);
        let tx = self.write()?;
        for issue in issues {
            tx.execute(
                "UPDATE invoices SET reminders_sent = ?2 WHERE number = ?1",
                params![issue.number, issue.reminder],
            )
            .map_err(wrap)?;
            mark_dirty(&tx, "invoices", &issue.month).map_err(wrap)?;
            for recipient in &issue.recipients {
                let id =
                    crate::model::reminder_message_id(&issue.number, issue.reminder, recipient);
                tx.execute(
                    "INSERT OR IGNORE INTO reminder_outbox
                     (invoice_number, reminder, recipient, message_id, status, attempts, issued_on)
                     VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5)",
                    params![
                        issue.number,
                        issue.reminder,
                        recipient,
                        id,
                        as_of.to_string()
                    ],
                )
                .map_err(wrap)?;
            }
        }
        tx.commit().map_err(wrap)
    }
}
