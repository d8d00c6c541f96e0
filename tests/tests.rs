//! Integration tests: each runs the real `faktura` binary in its own
//! temporary directory and reads what it wrote with independent readers
//! (arrow-rs for parquet, mail-parser for .eml, pdf-extract for PDFs).

mod common;
// The bundled sample through `faktura run`, and a second identical run.
mod end_to_end;
// Ingest: reject reasons, column order, gzip, incremental, killed runs, reference validation.
mod ingest;
// Billing rules: each decision code, holds, payments, explain, day order.
mod rules;
// Invoice PDFs: pagination, reproducible bytes, languages.
mod pdf;
// E-mail over SMTP to a local server: recipients, 451, 550, drops, re-send.
mod mail;
// Operations: killed and re-run, concurrent runs, bad configuration.
mod operations;
// Scale: shard workers then one run equal a single run.
mod scale;
// Hostile and broken input: odd addresses, huge values, a lost ledger, a full disk.
mod hardening;
// preferences.csv: who may change the e-mail invoice preference, and when it takes effect.
mod preferences;
// VAT and Peppol e-invoices, read back and checked against the invoices table.
mod einvoice;
// Credit notes: the table, PDFs in four languages, Peppol CreditNote, e-mails, edits.
mod credit_notes;
// Reminders: weeks of nightly runs over SMTP, payments, a skipped night, a kill.
mod reminders;
// Preview: equals the later decision; read-only; unknown profiles.
mod preview;
// SMTP over TLS to a real TLS relay: STARTTLS, SMTPS, AUTH, and every TLS failure.
mod tls;
// DATA in S3 and Azure Blob (moto, Azurite), and [publish].
mod stores;
