//! faktura: a batch billing pipeline, run nightly by a scheduler.
//!
//! ```text
//!  DATA/usage/*.csv ──ingest──▶ OUT/usage/date=D/*.parquet  (+ OUT/rejects/D.csv)
//!                                   │  (day_sums: each day's sums, kept as it is parsed)
//!                              aggregate (Rust merge)        lines per profile, kind, period
//!                                   │
//!  DATA/*.csv (reference) ──▶  decide (pure)  ◀──▶  OUT/ledger.sqlite (numbers, carries, outbox)
//!  DATA/preferences.csv ──▶        │
//!  DATA/payments.csv ──▶  outputs: OUT/decisions, lines, invoices/period=YYYY-MM/*.parquet
//!                                   │
//!                              render (lopdf + printpdf's fonts, quick-xml) ──▶ OUT/pdf/…, OUT/einvoice/…
//!                                   │
//!                              deliver (lettre)  ──▶ OUT/outbox/… or SMTP
//! ```
//!
//! [`run`] drives the stages, after the [`preflight`] checks; each stage is
//! a module with a plain function; [`model`] holds the nouns they share.

pub mod aggregate;
pub mod columns;
pub mod config;
pub mod credit_notes;
pub mod data_source;
pub mod day_sums;
pub mod decide;
pub mod deliver;
pub mod explain;
pub mod ingest;
pub(crate) mod interner;
pub mod ledger;
pub mod locale;
pub mod memory;
pub mod model;
pub mod outputs;
pub mod parse;
pub mod payments;
pub mod people_logs;
pub mod preferences;
pub mod preflight;
pub mod preview;
pub mod progress;
pub mod publish;
pub mod reference;
pub mod reminders;
pub mod remote;
pub mod render;
pub mod run;
pub mod store;
pub mod summary;
pub mod synth;

/// A hash map for the hot loops of ingest: foldhash instead of SipHash
/// (keys come from our own files, not from an attacker).
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
