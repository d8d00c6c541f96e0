//! The run summary: `OUT/runs/{as_of}-{run_id}.json` and the short human
//! version printed at the end of every run. It says what each stage did,
//! how the money reconciles, and what needs a person (which sets exit 3).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::deliver::DeliveryReport;
use crate::ingest::IngestReport;
use crate::ledger::Ledger;
use crate::model::DecideCommit;
use crate::parse::UsageSum;

/// Totals over every ingested day: rows read = accepted + rejected.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Reconciliation {
    pub days: usize,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    pub accepted_cost: UsageSum,
    pub balanced: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub run_id: i64,
    pub as_of: NaiveDate,
    pub billing_start: NaiveDate,
    pub exit_code: i32,
    pub ingest: Option<IngestReport>,
    pub aggregate_lines: usize,
    pub periods_with_usage: usize,
    /// Decisions written this run, by code.
    pub decisions: BTreeMap<String, usize>,
    pub invoices_issued: Vec<String>,
    pub pdfs_written: usize,
    pub einvoices_written: usize,
    /// Invoices whose PDF could not be rendered: `{invoice}: {reason}`.
    pub render_failed: Vec<String>,
    pub delivery: DeliveryReport,
    pub payments_rejected: usize,
    /// Credit notes issued this run (SPEC §4.9).
    pub credit_notes_issued: Vec<String>,
    /// Rows of credit_notes.csv rejected (SPEC §2.4).
    pub credit_notes_rejected: usize,
    /// Rows of credit_notes.csv dated after `as_of`, left for later runs.
    pub credit_notes_waiting: usize,
    /// Reminders issued this run (SPEC §5.1): `{invoice} reminder {k}`;
    /// the messages sent are counted in `delivery.reminders_sent`.
    pub reminders_issued: Vec<String>,
    /// Invoices issued this run that get no e-invoice: their buyer has no
    /// Peppol address (SPEC §6.1).
    pub einvoices_skipped: Vec<String>,
    /// Rows of preferences.csv rejected (SPEC §2.3).
    pub preferences_rejected: usize,
    pub overpaid: Vec<String>,
    /// Periods currently held for missing usage: `profile kind period_start`.
    pub held: Vec<String>,
    /// What `[publish]` copied this run; absent when nothing is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<crate::publish::PublishReport>,
    /// All ingested days so far (from the ledger).
    pub reconciliation: Reconciliation,
    /// What needs a person; non-empty means exit 3.
    pub needs_attention: Vec<String>,
    pub warnings: Vec<String>,
    /// Seconds per stage.
    pub durations: BTreeMap<String, f64>,
    /// Peak resident memory (MB) per stage, where the system tells it.
    pub peak_rss_mb: BTreeMap<String, f64>,
}

impl RunSummary {
    pub fn new(run_id: i64, as_of: NaiveDate, billing_start: NaiveDate) -> RunSummary {
        RunSummary {
            run_id,
            as_of,
            billing_start,
            exit_code: 0,
            ingest: None,
            aggregate_lines: 0,
            periods_with_usage: 0,
            decisions: BTreeMap::new(),
            invoices_issued: Vec::new(),
            pdfs_written: 0,
            einvoices_written: 0,
            render_failed: Vec::new(),
            delivery: DeliveryReport::default(),
            payments_rejected: 0,
            credit_notes_issued: Vec::new(),
            credit_notes_rejected: 0,
            credit_notes_waiting: 0,
            reminders_issued: Vec::new(),
            einvoices_skipped: Vec::new(),
            preferences_rejected: 0,
            overpaid: Vec::new(),
            held: Vec::new(),
            publish: None,
            reconciliation: Reconciliation::default(),
            needs_attention: Vec::new(),
            warnings: Vec::new(),
            durations: BTreeMap::new(),
            peak_rss_mb: BTreeMap::new(),
        }
    }

    pub fn record_ingest(&mut self, report: IngestReport) {
        for f in &report.ignored_files {
            self.warnings
                .push(format!("ignored {f}: its name does not start with a date"));
        }
        for f in &report.files_before_billing_start {
            self.warnings
                .push(format!("ignored {f}: dated before billing_start"));
        }
        self.ingest = Some(report);
    }

    pub fn record_aggregate(&mut self, lines: usize, periods: usize) {
        self.aggregate_lines = lines;
        self.periods_with_usage = periods;
    }

    /// Decisions written this run, by code, and the invoices issued.
    pub fn record_decisions(&mut self, commit: &DecideCommit) {
        for d in &commit.decisions {
            *self
                .decisions
                .entry(d.code.as_str().to_string())
                .or_default() += 1;
        }
        self.invoices_issued = commit
            .invoices
            .iter()
            .map(|(_, i)| i.number.clone())
            .collect();
        self.einvoices_skipped = commit
            .invoices
            .iter()
            .filter(|(_, i)| matches!(i.einvoice, crate::model::EinvoiceAddresses::Skipped(_)))
            .map(|(_, i)| i.number.clone())
            .collect();
    }

    /// Reconciles, lists what needs a person and sets the exit code.
    pub fn finish(&mut self, ledger: &Ledger) -> crate::ledger::Result<()> {
        self.reconcile(ledger)?;
        self.needs_attention = self.what_needs_a_person();
        self.exit_code = if self.needs_attention.is_empty() {
            0
        } else {
            3
        };
        Ok(())
    }

    /// Rows read = accepted + rejected, and the accepted cost, over every
    /// day ingested so far.
    fn reconcile(&mut self, ledger: &Ledger) -> crate::ledger::Result<()> {
        let days = ledger.days()?;
        let r = &mut self.reconciliation;
        r.days = days.len();
        for d in &days {
            r.rows_read += d.rows_read;
            r.rows_accepted += d.rows_accepted;
            r.rows_rejected += d.rows_rejected;
            r.accepted_cost = r.accepted_cost.checked_add(d.accepted_cost).ok_or(
                crate::ledger::LedgerError::Corrupt {
                    what: "days.accepted_cost",
                    detail: "the sum over all days exceeds 38 digits".into(),
                },
            )?;
        }
        r.balanced = r.rows_read == r.rows_accepted + r.rows_rejected;
        Ok(())
    }

    /// What makes the run exit 3 (SPEC §7), in words.
    fn what_needs_a_person(&self) -> Vec<String> {
        let mut attention = Vec::new();
        if let Some(ingest) = &self.ingest {
            let rejected: u64 = ingest.days_ingested.iter().map(|d| d.rows_rejected).sum();
            if rejected > 0 {
                attention.push(format!(
                    "{rejected} usage rows rejected this run (see rejects/)"
                ));
            }
            for (file, reason) in &ingest.files_rejected {
                attention.push(format!("usage file {file} rejected whole: {reason}"));
            }
        }
        if !self.held.is_empty() {
            attention.push(format!(
                "{} periods held for missing usage days",
                self.held.len()
            ));
        }
        for failure in &self.render_failed {
            attention.push(format!("invoice not rendered: {failure}"));
        }
        let counted = [
            (self.delivery.failed, "e-mails failed and will be retried"),
            (self.delivery.bounced, "e-mails refused permanently"),
            (
                self.payments_rejected,
                "payments rejected (see rejects/payments.csv)",
            ),
            (
                self.credit_notes_rejected,
                "credit-note rows rejected (see rejects/credit_notes.csv)",
            ),
            (
                self.preferences_rejected,
                "e-mail preference changes rejected (see rejects/preferences.csv)",
            ),
        ];
        for (count, what) in counted {
            if count > 0 {
                attention.push(format!("{count} {what}"));
            }
        }
        if let Some(p) = self.publish.as_ref().filter(|p| p.pending > 0) {
            attention.push(format!(
                "{} files not yet published to {} (the next run retries): {}",
                p.pending,
                p.to,
                p.failure.as_deref().unwrap_or("stopped")
            ));
        }
        attention
    }

    /// The short human summary printed at the end of a run.
    pub fn human(&self) -> String {
        let mut out = format!("faktura run {} as of {}\n", self.run_id, self.as_of);
        if let Some(i) = &self.ingest {
            let read: u64 = i.days_ingested.iter().map(|d| d.rows_read).sum();
            let accepted: u64 = i.days_ingested.iter().map(|d| d.rows_accepted).sum();
            out += &format!(
                "  ingest:    {} days ingested, {} unchanged; {read} rows read, {accepted} accepted, {} rejected\n",
                i.days_ingested.len(),
                i.days_unchanged,
                read - accepted
            );
        }
        out += &self.after_ingest_lines();
        let r = &self.reconciliation;
        out += &format!(
            "  totals:    {} days, {} rows read = {} accepted + {} rejected{}; accepted cost {}\n",
            r.days,
            r.rows_read,
            r.rows_accepted,
            r.rows_rejected,
            if r.balanced {
                ""
            } else {
                " (DOES NOT BALANCE)"
            },
            r.accepted_cost
        );
        if self.needs_attention.is_empty() {
            out += "  status:    done\n";
        } else {
            out += "  needs attention:\n";
            for item in &self.needs_attention {
                out += &format!("    - {item}\n");
            }
        }
        out
    }

    /// The lines of the stages after ingest: decide, credit notes, render,
    /// send and reminders.
    fn after_ingest_lines(&self) -> String {
        let decisions: Vec<String> = self
            .decisions
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        let decisions = if decisions.is_empty() {
            "none".to_string()
        } else {
            decisions.join(", ")
        };
        let d = &self.delivery;
        [
            format!(
                "  decide:    {} new decisions ({decisions}); {} invoices issued",
                self.decisions.values().sum::<usize>(),
                self.invoices_issued.len()
            ),
            format!(
                "  credit:    {} credit notes issued, {} rows rejected, {} waiting",
                self.credit_notes_issued.len(),
                self.credit_notes_rejected,
                self.credit_notes_waiting
            ),
            format!(
                "  render:    {} PDFs written, {} e-invoices ({} invoices without one)",
                self.pdfs_written,
                self.einvoices_written,
                self.einvoices_skipped.len()
            ),
            format!(
                "  send:      {} sent, {} failed, {} refused, {} sent earlier",
                d.sent, d.failed, d.bounced, d.already_sent
            ),
            format!(
                "  reminders: {} issued, {} messages sent, {} cancelled",
                self.reminders_issued.len(),
                d.reminders_sent,
                d.reminders_cancelled
            ),
        ]
        .map(|line| line + "\n")
        .concat()
            + &self.publish_line()
    }

    fn publish_line(&self) -> String {
        match &self.publish {
            Some(p) => format!(
                "  publish:   {} uploaded, {} deleted, {} unchanged, {} pending ({})\n",
                p.uploaded, p.deleted, p.unchanged, p.pending, p.to
            ),
            None => String::new(),
        }
    }
}
