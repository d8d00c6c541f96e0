//! faktura: a batch billing pipeline, run nightly by a scheduler.
//!
//! ```text
//!  DATA/usage/*.csv ──ingest──▶ OUT/usage/date=D/*.parquet  (+ OUT/rejects/D.csv)
//!                                   │
//!                              aggregate (polars)            lines per profile, kind, period
//!                                   │
//!  DATA/*.csv (reference) ──▶  decide (pure)  ◀──▶  OUT/ledger.sqlite (numbers, carries, outbox)
//!                                   │
//!                     OUT/decisions, lines, invoices/period=YYYY-MM/*.parquet
//!                                   │
//!                              render (printpdf) ──▶ OUT/pdf/YYYY-MM/{number}.pdf
//!                                   │
//!                              deliver (lettre)  ──▶ OUT/outbox/… or SMTP
//! ```
//!
//! [`run`] drives the stages; each stage is a module with a plain function.

pub mod aggregate;
pub mod config;
pub mod decide;
pub mod deliver;
pub mod einvoice;
pub mod explain;
pub mod ingest;
pub mod ledger;
pub mod locale;
pub mod logfile;
pub mod model;
pub mod outputs;
pub mod parse;
pub mod payments;
pub mod preferences;
pub mod progress;
pub mod reference;
pub mod render;
pub mod store;
pub mod summary;
pub mod synth;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use chrono::NaiveDate;
use rayon::prelude::*;

use crate::config::Settings;
use crate::ledger::Ledger;
use crate::model::{DecisionCode, Invoice, Reference};
use crate::summary::RunSummary;

/// A hash map for the hot loops of ingest: foldhash instead of SipHash
/// (keys come from our own files, not from an attacker).
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Exit statuses (SPEC §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ExitStatus {
    /// 0: everything done.
    Done = 0,
    /// 1: failed; nothing half-written.
    Failed = 1,
    /// 2: bad arguments, invalid reference data or configuration.
    BadInput = 2,
    /// 3: done, but something needs a person (see the summary).
    NeedsAttention = 3,
}

/// Which stages a command runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stages {
    All,
    Ingest,
    Aggregate,
    Decide,
    Render,
    Send,
}

impl Stages {
    fn includes(self, stage: Stages) -> bool {
        self == Stages::All || self == stage
    }
}

/// Options of `faktura run` and the single-stage commands.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub data_dir: PathBuf,
    pub out_dir: PathBuf,
    pub as_of: NaiveDate,
    pub config: Option<PathBuf>,
    pub stages: Stages,
    /// `faktura send --resend INVOICE`: send this invoice's e-mails again.
    pub resend: Option<String>,
}

/// Errors that stop a run before it produces anything.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("{0}")]
    Reference(#[from] reference::ReferenceErrors),
    #[error("configuration conflicts with what the ledger recorded: {0}")]
    Recorded(String),
    #[error(
        "`{out}` holds issued invoices ({evidence}) but no ledger.sqlite: restore the ledger \
         from a backup before running again (faktura never numbers or sends again from scratch \
         over an earlier run's output)"
    )]
    LostLedger { out: PathBuf, evidence: String },
    #[error("another faktura run holds `{lock}`: {holder}")]
    Locked { lock: PathBuf, holder: String },
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl RunError {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            RunError::Config(_) | RunError::Reference(_) | RunError::Recorded(_) => {
                ExitStatus::BadInput
            }
            RunError::LostLedger { .. } | RunError::Locked { .. } | RunError::Failed(_) => {
                ExitStatus::Failed
            }
        }
    }
}

/// Settings and reference data of a data directory, validated; nothing is written.
pub fn load_inputs(
    data_dir: &Path,
    config: Option<&Path>,
) -> Result<(Settings, Reference), RunError> {
    let settings = Settings::load(data_dir, config, &|name| std::env::var(name).ok())?;
    let reference = reference::load_reference(data_dir)?;
    Ok((settings, reference))
}

/// The exclusive lock on OUT, released by the kernel when the process dies.
pub struct OutLock {
    _file: File,
}

/// Takes the lock on `out_dir`, or names who holds it.
pub fn lock_out(out_dir: &Path) -> Result<OutLock, RunError> {
    let path = out_dir.join(".lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("failed to open lock file `{}`", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            use std::io::{Seek, Write};
            let holder = format!(
                "pid {} since {}\n",
                std::process::id(),
                chrono::Utc::now().to_rfc3339()
            );
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(holder.as_bytes()))
                .map_err(store::failed("write", &path))
                .context("failed to write the lock file")?;
            Ok(OutLock { _file: file })
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path)
                .unwrap_or_default()
                .trim()
                .to_string();
            Err(RunError::Locked { lock: path, holder })
        }
        Err(std::fs::TryLockError::Error(e)) => Err(anyhow::Error::new(e)
            .context(format!("failed to lock `{}`", path.display()))
            .into()),
    }
}

/// A shard worker: ingests its share of the days into OUT's usage and
/// rejects partitions and writes a manifest for the next `faktura run`.
/// `billing.billing_start` must be configured, so every worker and the
/// following run agree on it.
pub fn run_shard(
    opts: &RunOptions,
    shard: ingest::Shard,
) -> Result<ingest::IngestReport, RunError> {
    let (settings, reference) = load_inputs(&opts.data_dir, opts.config.as_deref())?;
    let billing_start = settings.billing.billing_start.ok_or_else(|| {
        RunError::Recorded("`--shard` needs billing.billing_start in the configuration".into())
    })?;
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("failed to create `{}`", opts.out_dir.display()))?;
    let report = ingest::ingest_shard(
        &ingest::IngestOptions {
            data_dir: &opts.data_dir,
            out_dir: &opts.out_dir,
            billing_start,
            reference: &reference,
        },
        shard,
    )
    .context("failed to ingest the shard")?;
    Ok(report)
}

/// The nightly job, or one stage of it.
pub fn run(opts: &RunOptions) -> Result<RunSummary, RunError> {
    let (settings, reference) = load_inputs(&opts.data_dir, opts.config.as_deref())?;
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("failed to create `{}`", opts.out_dir.display()))?;
    let _lock = lock_out(&opts.out_dir)?;
    check_ledger_present(&opts.out_dir)?;
    let mut ledger =
        Ledger::open(&opts.out_dir.join("ledger.sqlite")).context("failed to open the ledger")?;
    let billing_start = resolve_billing_start(&opts.data_dir, &settings, &mut ledger)?;
    check_recorded_profiles(&reference, &ledger)?;
    store::sweep_temporaries(&opts.out_dir).context("failed to clean temporary files")?;
    let adopted = ingest::adopt_manifests(&opts.out_dir, &mut ledger)
        .context("failed to adopt shard manifests")?;
    if adopted > 0 {
        tracing::info!(days = adopted, "adopted days ingested by shard workers");
    }

    let run_id = ledger
        .start_run(opts.as_of)
        .context("failed to record the run")?;
    let mut summary = RunSummary::new(run_id, opts.as_of, billing_start);
    summary.warnings.extend(reference.warnings.iter().cloned());
    let ctx = StageContext {
        opts,
        settings: &settings,
        reference: &reference,
        billing_start,
    };
    run_stages(&ctx, &mut ledger, &mut summary)?;
    summary
        .finish(&ledger)
        .context("failed to summarise the run")?;
    let json = serde_json::to_string_pretty(&summary).context("failed to serialise the summary")?;
    let path = opts
        .out_dir
        .join(format!("runs/{}-{:06}.json", opts.as_of, run_id));
    store::write_atomic(&path, json.as_bytes())
        .with_context(|| format!("failed to write `{}`", path.display()))?;
    ledger
        .finish_run(run_id, summary.exit_code, &json)
        .context("failed to record the run")?;
    Ok(summary)
}

struct StageContext<'a> {
    opts: &'a RunOptions,
    settings: &'a Settings,
    reference: &'a Reference,
    billing_start: NaiveDate,
}

fn run_stages(
    ctx: &StageContext,
    ledger: &mut Ledger,
    summary: &mut RunSummary,
) -> anyhow::Result<()> {
    let stages = ctx.opts.stages;
    if stages.includes(Stages::Ingest) {
        let started = Instant::now();
        let _span = tracing::info_span!("ingest").entered();
        let report = ingest::ingest(
            &ingest::IngestOptions {
                data_dir: &ctx.opts.data_dir,
                out_dir: &ctx.opts.out_dir,
                billing_start: ctx.billing_start,
                reference: ctx.reference,
            },
            ledger,
        )
        .context("failed to ingest usage")?;
        tracing::info!(
            days = report.days_ingested.len(),
            unchanged = report.days_unchanged,
            "ingested usage"
        );
        summary.record_ingest(report, started.elapsed());
    }
    let needs_lines = stages.includes(Stages::Aggregate) || stages.includes(Stages::Decide);
    let mut lines = None;
    let fresh_days = ledger.fresh_days()?;
    let unchecked = ledger.unchecked()?;
    let late = decide::LateUsage {
        fresh_days: &fresh_days,
        unchecked: &unchecked,
    };
    let decided = ledger.decisions()?;
    if needs_lines {
        let started = Instant::now();
        let _span = tracing::info_span!("aggregate").entered();
        let partitions = aggregate::usage_partitions(&ctx.opts.out_dir)?;
        let wanted = decide::periods_needing_lines(
            ctx.reference,
            ctx.opts.as_of,
            ctx.settings.billing.settle_days,
            ctx.billing_start,
            &decided,
            &late,
        );
        let period_lines = aggregate::period_lines_from(&partitions, ctx.reference, &wanted)
            .context("failed to aggregate usage")?;
        tracing::info!(
            lines = line_count(&period_lines),
            periods = period_lines.len(),
            "aggregated usage"
        );
        summary.record_aggregate(
            line_count(&period_lines),
            period_lines.len(),
            started.elapsed(),
        );
        lines = Some(period_lines);
    }
    if stages.includes(Stages::Decide) {
        let started = Instant::now();
        let _span = tracing::info_span!("decide").entered();
        decide_and_record(
            ctx,
            ledger,
            lines.take().expect("aggregated above"),
            decided,
            late,
            summary,
        )?;
        summary
            .durations
            .insert("decide".into(), started.elapsed().as_secs_f64());
    }
    if stages.includes(Stages::Render) {
        let started = Instant::now();
        let _span = tracing::info_span!("render").entered();
        let report = render_missing(ctx, ledger).context("failed to render invoices")?;
        tracing::info!(written = report.written, "rendered invoices");
        for failure in &report.failed {
            tracing::error!(%failure, "invoice not rendered");
        }
        summary.pdfs_written = report.written;
        summary.render_failed = report.failed;
        summary
            .durations
            .insert("render".into(), started.elapsed().as_secs_f64());
    }
    if stages.includes(Stages::Send) {
        let started = Instant::now();
        let _span = tracing::info_span!("send").entered();
        let report = send_pending(ctx, ledger).context("failed to deliver invoices")?;
        tracing::info!(
            sent = report.sent,
            failed = report.failed,
            "delivered invoices"
        );
        summary.delivery = report;
        summary
            .durations
            .insert("send".into(), started.elapsed().as_secs_f64());
    }
    Ok(())
}

fn decide_and_record(
    ctx: &StageContext,
    ledger: &mut Ledger,
    lines: aggregate::PeriodLines,
    decided: BTreeMap<ledger::DecisionKey, model::Decision>,
    late: decide::LateUsage,
    summary: &mut RunSummary,
) -> anyhow::Result<()> {
    let present_days: BTreeSet<NaiveDate> = ledger
        .days()?
        .into_iter()
        .filter(|d| d.present)
        .map(|d| d.day)
        .collect();
    // Only decided periods late usage may have touched are compared with
    // what was billed; a period is at most 31 days long.
    let earliest = [
        late.fresh_days.first().map(|d| *d - chrono::Days::new(31)),
        late.unchecked.iter().map(|(_, _, start)| *start).min(),
    ]
    .into_iter()
    .flatten()
    .min();
    let billed = match earliest {
        Some(since) => ledger.billed_since(since)?,
        None => BTreeMap::new(),
    };
    let preferences = read_preferences(ctx, ledger, summary)?;
    let tax_rule = ctx.settings.tax_rule();
    let input = decide::DecideInput {
        reference: ctx.reference,
        as_of: ctx.opts.as_of,
        settle_days: ctx.settings.billing.settle_days,
        billing_start: ctx.billing_start,
        invoice_prefix: &ctx.settings.billing.invoice_prefix,
        present_days: &present_days,
        lines: &lines,
        late,
        decided: &decided,
        billed: &billed,
        next_seq: ledger.next_invoice_seq()?,
        preferences: &preferences,
        tax: tax_rule.as_ref(),
    };
    let commit = decide::decide(&input);
    // Decided: the period lines and earlier decisions are no longer needed.
    drop((lines, decided, billed));
    for d in &commit.decisions {
        *summary
            .decisions
            .entry(d.code.as_str().to_string())
            .or_default() += 1;
    }
    summary.invoices_issued = commit
        .invoices
        .iter()
        .map(|(_, i)| i.number.clone())
        .collect();
    ledger
        .commit_decisions(&commit)
        .context("failed to record decisions")?;
    let (decisions, invoices) = (commit.decisions.len(), commit.invoices.len());
    drop(commit);

    let payments =
        payments::read_payments(&ctx.opts.data_dir, &ledger.invoice_heads()?, ctx.reference)
            .context("failed to read payments")?;
    payments::write_rejects(&ctx.opts.out_dir, &payments.rejects)?;
    summary.payments_rejected = payments.rejects.len();
    summary.overpaid = payments.overpaid.clone();
    outputs::update_statuses(ledger, ctx.opts.as_of, &payments.paid_by_invoice)?;
    let written =
        outputs::write_dirty(&ctx.opts.out_dir, ledger).context("failed to write outputs")?;
    tracing::info!(decisions, invoices, written, "decided");
    let held = ledger
        .decisions_coded(DecisionCode::HeldIncompleteUsage)?
        .values()
        .map(|d| format!("{} {} {}", d.profile_id, d.kind.as_str(), d.period.start))
        .collect();
    summary.held = held;
    Ok(())
}

/// Reads preferences.csv (SPEC §2.3): rejects written, each profile's
/// history kept in the ledger for `explain`; returns the accepted changes.
fn read_preferences(
    ctx: &StageContext,
    ledger: &mut Ledger,
    summary: &mut RunSummary,
) -> anyhow::Result<model::PreferenceChanges> {
    let log = preferences::read_preferences(&ctx.opts.data_dir, ctx.reference)
        .context("failed to read preferences")?;
    preferences::write_rejects(&ctx.opts.out_dir, &log.rejects)?;
    summary.preferences_rejected = log.rejects.len();
    let records = preferences::ProfilePreferences::of_all(ctx.reference, &log);
    let mut json = Vec::with_capacity(records.len());
    for (profile, record) in &records {
        json.push((profile.as_str(), serde_json::to_string(record)?));
    }
    ledger
        .replace_preferences(json)
        .context("failed to record preferences")?;
    Ok(log.changes)
}

fn line_count(lines: &aggregate::PeriodLines) -> usize {
    lines.values().map(|keys| keys.len()).sum()
}

/// The PDF path of an invoice: `pdf/YYYY-MM/{number}.pdf`.
pub fn pdf_path(out_dir: &Path, period: model::Period, number: &str) -> PathBuf {
    out_dir.join(format!("pdf/{}/{number}.pdf", period.month_key()))
}

fn parties<'a>(
    settings: &'a Settings,
    reference: &'a Reference,
    invoice: &Invoice,
) -> render::Parties<'a> {
    let profile = &reference.profiles[&invoice.profile_id];
    render::Parties {
        issuer: &settings.issuer,
        locale: profile.locale,
        customer_name: &profile.name,
        customer_address: &profile.address,
        account_name: &reference.account_of(profile).name,
        customer_vat_id: profile.vat_id.as_deref(),
        subscription_names: reference
            .subscriptions
            .values()
            .filter(|s| s.profile_id == profile.id)
            .map(|s| (s.id.clone(), s.name.clone()))
            .collect(),
    }
}

/// One invoice's PDF. A panic inside the PDF library is caught and
/// reported as this invoice's failure, so it cannot stop the others.
fn render_pdf(ctx: &StageContext, invoice: &Invoice) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        ctx.reference.profiles.contains_key(&invoice.profile_id),
        "profile {} of invoice {} is no longer in profiles.csv",
        invoice.profile_id,
        invoice.number
    );
    let parties = parties(ctx.settings, ctx.reference, invoice);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        render::render_invoice(invoice, &parties)
    }))
    .map_err(|panic| {
        let reason = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("the PDF library panicked");
        anyhow::anyhow!("cannot render invoice {}: {reason}", invoice.number)
    })
}

/// Renders every issued invoice whose PDF (or, with VAT, e-invoice) is not
/// on disk yet, in parallel. An invoice that cannot be rendered does not
/// stop the others: it is listed in the result (and the run exits 3); one
/// that cannot be written (a full disk) fails the run, naming the path.
fn render_missing(ctx: &StageContext, ledger: &Ledger) -> anyhow::Result<RenderReport> {
    let out = &ctx.opts.out_dir;
    let missing_pdf = |number: &str, period| !pdf_path(out, period, number).exists();
    let missing_xml = |number: &str, period, has_vat: bool| {
        has_vat && !einvoice::einvoice_path(out, period, number).exists()
    };
    // Invoices with their lines are read only when something is missing.
    let missing: BTreeSet<String> = ledger
        .invoice_heads()?
        .into_iter()
        .map(|(i, _, _)| i)
        .filter(|i| {
            missing_pdf(&i.number, i.period) || missing_xml(&i.number, i.period, i.vat.is_some())
        })
        .map(|i| i.number)
        .collect();
    if missing.is_empty() {
        return Ok(RenderReport::default());
    }
    let invoices: Vec<Invoice> = ledger
        .invoices()?
        .into_iter()
        .map(|(i, _, _)| i)
        .filter(|i| missing.contains(&i.number))
        .collect();
    let progress = progress::Progress::new(invoices.len() as u64, "render");
    let outcomes: Vec<anyhow::Result<(usize, Option<String>)>> = invoices
        .par_iter()
        .map(|invoice| {
            progress.inc();
            let (number, period) = (&invoice.number, invoice.period);
            let mut written = 0;
            if missing_pdf(number, period) {
                match render_pdf(ctx, invoice) {
                    Ok(bytes) => write_output(&pdf_path(out, period, number), &bytes)?,
                    Err(e) => return Ok((0, Some(format!("{number}: {e:#}")))),
                }
                written += 1;
            }
            if missing_xml(number, period, invoice.vat.is_some()) {
                match render_einvoice(ctx, invoice) {
                    Ok(bytes) => {
                        write_output(&einvoice::einvoice_path(out, period, number), &bytes)?
                    }
                    Err(e) => return Ok((written, Some(format!("{number}: {e:#}")))),
                }
            }
            Ok((written, None))
        })
        .collect();
    let mut report = RenderReport::default();
    for outcome in outcomes {
        let (written, failure) = outcome?;
        report.written += written;
        report.failed.extend(failure);
    }
    Ok(report)
}

fn write_output(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    store::write_atomic(path, bytes)?;
    Ok(())
}

/// One invoice's e-invoice (SPEC §6.1).
fn render_einvoice(ctx: &StageContext, invoice: &Invoice) -> anyhow::Result<Vec<u8>> {
    let profile = ctx
        .reference
        .profiles
        .get(&invoice.profile_id)
        .with_context(|| format!("profile {} is not in profiles.csv", invoice.profile_id))?;
    let subscription_name = |id: &str| {
        ctx.reference
            .subscriptions
            .get(id)
            .map(|s| s.name.as_str())
            .filter(|n| !n.is_empty())
    };
    let parties = einvoice::Parties {
        issuer: &ctx.settings.issuer,
        profile,
        account: ctx.reference.account_of(profile),
        subscription_name: &subscription_name,
    };
    Ok(einvoice::ubl_invoice(invoice, &parties)?)
}

/// What the render stage did.
#[derive(Default)]
struct RenderReport {
    /// PDFs written.
    written: usize,
    /// `{invoice}: {reason}` for each invoice that could not be rendered.
    failed: Vec<String>,
}

/// Sends every outbox message not yet sent (pending, or failed transiently).
fn send_pending(
    ctx: &StageContext,
    ledger: &mut Ledger,
) -> anyhow::Result<summary::DeliveryReport> {
    let mailer = deliver::Mailer::new(&ctx.settings.mail, &ctx.opts.out_dir)?;
    let load_invoices = |ledger: &Ledger| -> anyhow::Result<BTreeMap<String, Invoice>> {
        Ok(ledger
            .invoices()?
            .into_iter()
            .map(|(i, _, _)| (i.number.clone(), i))
            .collect())
    };
    let mut report = summary::DeliveryReport::default();
    if let Some(number) = &ctx.opts.resend {
        anyhow::ensure!(
            load_invoices(ledger)?.contains_key(number),
            "no issued invoice {number} to re-send"
        );
        let n = ledger.reset_deliveries(number)?;
        tracing::info!(invoice = %number, recipients = n, "re-sending on request");
    }
    let mut todo = Vec::new();
    for delivery in ledger.deliveries()? {
        match delivery.status.as_str() {
            "sent" => report.already_sent += 1,
            "bounced" => report.bounced += 1,
            _ => todo.push(delivery),
        }
    }
    if todo.is_empty() {
        return Ok(report);
    }
    let invoices = load_invoices(ledger)?;
    let progress = progress::Progress::new(todo.len() as u64, "send");
    // SMTP is latency-bound: several senders share the pooled transport,
    // and this thread records each outcome in the ledger as it arrives.
    let senders = match mailer {
        deliver::Mailer::File { .. } => 1,
        deliver::Mailer::Smtp { .. } => deliver::SMTP_CONNECTIONS,
    };
    deliver::pool::send_all(
        todo,
        senders,
        |delivery| deliver_one(ctx, &mailer, &invoices, delivery),
        |batch| {
            let mut records = Vec::with_capacity(batch.len());
            for (delivery, (outcome, tries)) in batch {
                progress.inc();
                let (status, reply) = match outcome {
                    deliver::Outcome::Sent => {
                        report.sent += 1;
                        ("sent", None)
                    }
                    deliver::Outcome::Transient(reply) => {
                        report.failed += 1;
                        tracing::warn!(invoice = %delivery.invoice_number, recipient = %delivery.recipient, %reply, "delivery failed; retried next run");
                        ("failed", Some(reply))
                    }
                    deliver::Outcome::Permanent(reply) => {
                        report.bounced += 1;
                        tracing::warn!(invoice = %delivery.invoice_number, recipient = %delivery.recipient, %reply, "delivery refused");
                        ("bounced", Some(reply))
                    }
                };
                records.push((
                    delivery.invoice_number,
                    delivery.recipient,
                    status,
                    reply,
                    tries,
                ));
            }
            ledger.record_deliveries(&records)
        },
    )
    .context("failed to record deliveries in the ledger")?;
    Ok(report)
}

/// Builds one outbox message (PDF from disk, rendered again if missing) and
/// hands it to the transport, with retries. Never fails: a message that
/// cannot be built for its recipient is refused (`bounced`, with the
/// reason); one whose invoice or PDF cannot be had now is `failed`, and
/// tried again on the next run.
fn deliver_one(
    ctx: &StageContext,
    mailer: &deliver::Mailer,
    invoices: &BTreeMap<String, Invoice>,
    delivery: &ledger::Delivery,
) -> (deliver::Outcome, u32) {
    let Some(invoice) = invoices.get(&delivery.invoice_number) else {
        let reason = format!("outbox names unknown invoice {}", delivery.invoice_number);
        return (deliver::Outcome::Transient(reason), 1);
    };
    let path = pdf_path(&ctx.opts.out_dir, invoice.period, &invoice.number);
    let pdf = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(_) => match render_pdf(ctx, invoice) {
            Ok(bytes) => bytes,
            Err(e) => return (deliver::Outcome::Transient(format!("{e:#}")), 1),
        },
    };
    let Some(profile) = ctx.reference.profiles.get(&invoice.profile_id) else {
        let reason = format!("profile {} is not in profiles.csv", invoice.profile_id);
        return (deliver::Outcome::Transient(reason), 1);
    };
    match deliver::build_message(
        invoice,
        &delivery.recipient,
        profile.locale,
        &profile.name,
        pdf,
        &ctx.settings.mail,
    ) {
        Ok(message) => mailer.send_with_retry(&message, &invoice.number, &delivery.recipient),
        Err(e) => (deliver::Outcome::Permanent(e.to_string()), 1),
    }
}

/// `billing_start`: the configured day, else the recorded one, else the
/// earliest usage file day; recorded on the first run, never changed.
fn resolve_billing_start(
    data_dir: &Path,
    settings: &Settings,
    ledger: &mut Ledger,
) -> Result<NaiveDate, RunError> {
    let recorded = ledger
        .meta("billing_start")
        .context("failed to read the ledger")?
        .map(|s| s.parse::<NaiveDate>())
        .transpose()
        .context("ledger holds an invalid billing_start")?;
    let earliest = || -> anyhow::Result<Option<NaiveDate>> {
        Ok(ingest::list_usage_files(data_dir)?
            .days
            .keys()
            .next()
            .copied())
    };
    match (settings.billing.billing_start, recorded) {
        (Some(configured), Some(recorded)) if configured != recorded => {
            Err(RunError::Recorded(format!(
                "billing.billing_start is {configured}, but the ledger recorded {recorded} on the first run"
            )))
        }
        (_, Some(recorded)) => Ok(recorded),
        (configured, None) => {
            let start = match configured {
                Some(day) => day,
                None => match earliest()? {
                    Some(day) => day,
                    None => {
                        return Err(RunError::Recorded(
                            "no usage files and no billing.billing_start: nothing to start billing from".into(),
                        ));
                    }
                },
            };
            ledger
                .set_meta("billing_start", &start.to_string())
                .context("failed to record billing_start")?;
            Ok(start)
        }
    }
}

/// OUT with issued invoices but no ledger is refused (SPEC §6): numbering
/// and sending again from scratch would duplicate both.
fn check_ledger_present(out_dir: &Path) -> Result<(), RunError> {
    if out_dir.join("ledger.sqlite").exists() {
        return Ok(());
    }
    let holds_files = |folder: &str| {
        let dir = out_dir.join(folder);
        std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some())
    };
    let evidence: Vec<String> = ["invoices", "pdf", "outbox"]
        .into_iter()
        .filter(|folder| holds_files(folder))
        .map(|folder| format!("{folder}/"))
        .collect();
    if evidence.is_empty() {
        return Ok(());
    }
    Err(RunError::LostLedger {
        out: out_dir.to_path_buf(),
        evidence: evidence.join(", "),
    })
}

/// A profile's currency, periodStartDay and createdDate may not change once
/// decided, and a profile that has issued invoices may not be removed.
fn check_recorded_profiles(reference: &Reference, ledger: &Ledger) -> Result<(), RunError> {
    let recorded = ledger
        .profile_states()
        .context("failed to read the ledger")?;
    let invoiced = ledger
        .invoiced_profiles()
        .context("failed to read the ledger")?;
    let mut problems = Vec::new();
    for (id, number) in &invoiced {
        if !reference.profiles.contains_key(id) {
            problems.push(format!(
                "profiles.csv: profile {id} is missing, but it has issued invoices (e.g. {number}); \
                 put it back"
            ));
        }
    }
    for (id, state) in &recorded {
        let Some(profile) = reference.profiles.get(id) else {
            continue;
        };
        if profile.currency.code() != state.currency {
            problems.push(format!(
                "profiles.csv: {id} currency is {}, recorded {}",
                profile.currency, state.currency
            ));
        }
        if profile.period_start_day != state.period_start_day {
            problems.push(format!(
                "profiles.csv: {id} periodStartDay is {}, recorded {}",
                profile.period_start_day, state.period_start_day
            ));
        }
        if profile.created_date != state.created_date {
            problems.push(format!(
                "profiles.csv: {id} createdDate is {}, recorded {}",
                profile.created_date, state.created_date
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RunError::Recorded(problems.join("; ")))
    }
}
