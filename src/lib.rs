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
pub mod explain;
pub mod ingest;
pub mod ledger;
pub mod locale;
pub mod model;
pub mod outputs;
pub mod parse;
pub mod payments;
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
            RunError::Locked { .. } | RunError::Failed(_) => ExitStatus::Failed,
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
            file.set_len(0).context("failed to write the lock file")?;
            file.rewind().context("failed to write the lock file")?;
            file.write_all(holder.as_bytes())
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
        let written = render_missing(ctx, ledger).context("failed to render invoices")?;
        tracing::info!(written, "rendered invoices");
        summary.pdfs_written = written;
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
        subscription_names: reference
            .subscriptions
            .values()
            .filter(|s| s.profile_id == profile.id)
            .map(|s| (s.id.clone(), s.name.clone()))
            .collect(),
    }
}

fn render_pdf(ctx: &StageContext, invoice: &Invoice) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        ctx.reference.profiles.contains_key(&invoice.profile_id),
        "profile {} of invoice {} is no longer in profiles.csv",
        invoice.profile_id,
        invoice.number
    );
    Ok(render::render_invoice(
        invoice,
        &parties(ctx.settings, ctx.reference, invoice),
    ))
}

/// Renders every issued invoice whose PDF is not on disk yet, in parallel.
fn render_missing(ctx: &StageContext, ledger: &Ledger) -> anyhow::Result<usize> {
    // Invoices with their lines are read only when some PDF is missing.
    let missing: BTreeSet<String> = ledger
        .invoice_heads()?
        .into_iter()
        .map(|(i, _, _)| i)
        .filter(|i| !pdf_path(&ctx.opts.out_dir, i.period, &i.number).exists())
        .map(|i| i.number)
        .collect();
    if missing.is_empty() {
        return Ok(0);
    }
    let invoices: Vec<Invoice> = ledger
        .invoices()?
        .into_iter()
        .map(|(i, _, _)| i)
        .filter(|i| missing.contains(&i.number))
        .collect();
    let progress = progress::Progress::new(invoices.len() as u64, "render");
    invoices
        .par_iter()
        .try_for_each(|invoice| -> anyhow::Result<()> {
            progress.inc();
            let bytes = render_pdf(ctx, invoice)?;
            let path = pdf_path(&ctx.opts.out_dir, invoice.period, &invoice.number);
            store::write_atomic(&path, &bytes)
                .with_context(|| format!("failed to write `{}`", path.display()))
        })?;
    Ok(invoices.len())
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
    // SMTP is latency-bound: several workers share the pooled transport,
    // and this thread records each outcome in the ledger as it arrives.
    let workers = match mailer {
        deliver::Mailer::File { .. } => 1,
        deliver::Mailer::Smtp { .. } => deliver::SMTP_CONNECTIONS,
    };
    let queue = std::sync::Mutex::new(todo.into_iter());
    // An accepted message not yet recorded is in the batch being recorded
    // (at most 1 + the queue), in the queue, or held by its blocked sender:
    // a kill repeats at most 3 x SMTP_CONNECTIONS + 1 messages, each once.
    // (A rendezvous channel halves that bound but cost a quarter of the
    // throughput against Python's smtpd.)
    let (outcomes, results) = std::sync::mpsc::sync_channel(deliver::SMTP_CONNECTIONS);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..workers {
            let outcomes = outcomes.clone();
            let (queue, mailer, invoices) = (&queue, &mailer, &invoices);
            scope.spawn(move || {
                loop {
                    let next = queue.lock().expect("queue lock").next();
                    let Some(delivery) = next else { return };
                    let result = deliver_one(ctx, mailer, invoices, &delivery);
                    if outcomes.send((delivery, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(outcomes);
        // Record as results arrive, a batch per transaction: the fewer
        // accepted-but-unrecorded messages, the fewer repeats after a kill.
        while let Ok(first) = results.recv() {
            let mut batch = vec![first];
            batch.extend(results.try_iter());
            let mut records = Vec::with_capacity(batch.len());
            for (delivery, result) in batch {
                progress.inc();
                let (outcome, tries) = result?;
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
            ledger.record_deliveries(&records)?;
        }
        Ok(())
    })?;
    Ok(report)
}

/// Builds one outbox message (PDF from disk, rendered again if missing) and
/// hands it to the transport, with retries.
fn deliver_one(
    ctx: &StageContext,
    mailer: &deliver::Mailer,
    invoices: &BTreeMap<String, Invoice>,
    delivery: &ledger::Delivery,
) -> anyhow::Result<(deliver::Outcome, u32)> {
    let invoice = invoices
        .get(&delivery.invoice_number)
        .with_context(|| format!("outbox names unknown invoice {}", delivery.invoice_number))?;
    let pdf = match std::fs::read(pdf_path(&ctx.opts.out_dir, invoice.period, &invoice.number)) {
        Ok(bytes) => bytes,
        Err(_) => render_pdf(ctx, invoice)?,
    };
    let profile = &ctx.reference.profiles[&invoice.profile_id];
    let message = deliver::build_message(
        invoice,
        &delivery.recipient,
        profile.locale,
        &profile.name,
        pdf,
        &ctx.settings.mail,
    )?;
    Ok(mailer.send_with_retry(&message, &invoice.number, &delivery.recipient))
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

/// A profile's currency, periodStartDay and createdDate may not change once decided.
fn check_recorded_profiles(reference: &Reference, ledger: &Ledger) -> Result<(), RunError> {
    let recorded = ledger
        .profile_states()
        .context("failed to read the ledger")?;
    let mut problems = Vec::new();
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
