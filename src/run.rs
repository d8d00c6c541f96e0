//! The driver: `faktura run` and the single-stage commands. Loads and
//! checks the inputs, takes the OUT lock, runs the preflight checks against
//! the ledger, then each stage as one short function (ingest, aggregate,
//! decide, render, send), timing each into the run summary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use chrono::NaiveDate;

use crate::config::{self, Settings};
use crate::data_source::Data;
use crate::ledger::{self, Ledger};
use crate::model::{self, DecisionCode, Reference};
use crate::summary::RunSummary;
use crate::{
    aggregate, credit_notes, decide, deliver, ingest, outputs, payments, preferences, preflight,
    reference, reminders, render, store,
};

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
    #[error(transparent)]
    Reference(#[from] reference::ReferenceErrors),
    #[error(transparent)]
    Preflight(#[from] preflight::PreflightError),
    #[error(transparent)]
    Locked(#[from] store::LockError),
    /// DATA in an object store that cannot be reached, authenticated or listed.
    #[error(transparent)]
    Data(#[from] crate::remote::RemoteError),
    /// `--shard` without a configured billing_start.
    #[error("`--shard` needs billing.billing_start in the configuration")]
    ShardNeedsBillingStart,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl RunError {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            RunError::Config(_)
            | RunError::Reference(_)
            | RunError::ShardNeedsBillingStart
            | RunError::Preflight(preflight::PreflightError::Recorded(_)) => ExitStatus::BadInput,
            RunError::Preflight(_)
            | RunError::Locked(_)
            | RunError::Data(_)
            | RunError::Failed(_) => ExitStatus::Failed,
        }
    }
}

/// DATA at `location` (a folder or an object-store URL), opened, with
/// its settings and reference data, validated; nothing is written.
pub fn load_inputs(
    location: &Path,
    config: Option<&Path>,
) -> Result<(Data, Settings, Reference), RunError> {
    let data = Data::open(location)?;
    let settings = Settings::load(data.dir(), config, &|name| std::env::var(name).ok())?;
    let reference = reference::load_reference(data.dir())?;
    Ok((data, settings, reference))
}

/// A shard worker: ingests its share of the days into OUT's usage and
/// rejects partitions and writes a manifest for the next `faktura run`.
/// `billing.billing_start` must be configured, so every worker and the
/// following run agree on it.
pub fn run_shard(
    opts: &RunOptions,
    shard: ingest::Shard,
) -> Result<ingest::IngestReport, RunError> {
    let (data, settings, reference) = load_inputs(&opts.data_dir, opts.config.as_deref())?;
    let billing_start = settings
        .billing
        .billing_start
        .ok_or(RunError::ShardNeedsBillingStart)?;
    create_out(&opts.out_dir).context("failed to create OUT")?;
    let options = ingest::IngestOptions {
        usage: data.usage(),
        out_dir: &opts.out_dir,
        billing_start,
        reference: &reference,
    };
    let report = crate::memory::keeping_freed_blocks(|| ingest::ingest_shard(&options, shard))
        .context("failed to ingest the shard")?;
    Ok(report)
}

fn create_out(out_dir: &Path) -> Result<(), store::FileError> {
    std::fs::create_dir_all(out_dir).map_err(store::failed("create", out_dir))
}

/// The nightly job, or one stage of it: checks, then the stages, then the
/// summary (`OUT/runs/`), recorded in the ledger.
pub fn run(opts: &RunOptions) -> Result<RunSummary, RunError> {
    let (data, settings, reference) = load_inputs(&opts.data_dir, opts.config.as_deref())?;
    create_out(&opts.out_dir).context("failed to create OUT")?;
    let mut lock = store::lock_out(&opts.out_dir)?;
    preflight::check_ledger_present(&opts.out_dir)?;
    let mut ledger =
        Ledger::open(&opts.out_dir.join("ledger.sqlite")).context("failed to open the ledger")?;
    let billing_start = preflight::resolve_billing_start(&settings, &mut ledger, || {
        let listing = data.usage().list()?;
        Ok(listing.days.keys().next().copied())
    })?;
    preflight::check_recorded_profiles(&reference, &ledger)?;
    lock.record_holder()
        .context("failed to write the lock file")?;
    store::sweep_temporaries(&opts.out_dir).context("failed to clean temporary files")?;
    let adopted = ingest::adopt_manifests(&opts.out_dir, |stats, files| {
        Ok(ledger.record_day(stats, files)?)
    })
    .context("failed to adopt shard manifests")?;
    if adopted > 0 {
        tracing::info!(days = adopted, "adopted days ingested by shard workers");
    }
    let run_id = ledger
        .start_run(opts.as_of)
        .context("failed to record the run")?;
    let mut summary = RunSummary::new(run_id, opts.as_of, billing_start);
    summary.warnings.extend(reference.warnings.iter().cloned());
    if settings.tax.is_some() && settings.issuer.peppol_address().is_none() {
        summary.warnings.push(
            "no e-invoices are written: the issuer has no Peppol address \
             (issuer.peppol_id, or a NO, SE or DK issuer.vat_id that stands for one; SPEC §6.1)"
                .into(),
        );
    }
    let ctx = StageContext {
        opts,
        data: &data,
        settings: &settings,
        reference: &reference,
        billing_start,
    };
    run_stages(&ctx, &mut ledger, &mut summary)?;
    if let (Stages::All, Some(publish)) = (opts.stages, &settings.publish) {
        timed(&mut summary, "publish", |s| {
            let report = crate::publish::publish(&opts.out_dir, &publish.to, &mut ledger)
                .context("failed to publish")?;
            s.publish = Some(report);
            Ok(())
        })?;
    }
    finish(opts, run_id, &mut ledger, &mut summary)?;
    Ok(summary)
}

/// Reconciles, writes `OUT/runs/{as_of}-{run_id}.json` and records the run.
fn finish(
    opts: &RunOptions,
    run_id: i64,
    ledger: &mut Ledger,
    summary: &mut RunSummary,
) -> anyhow::Result<()> {
    summary
        .finish(ledger)
        .context("failed to summarise the run")?;
    let json = serde_json::to_string_pretty(&summary).context("failed to serialise the summary")?;
    let path = opts
        .out_dir
        .join(format!("runs/{}-{:06}.json", opts.as_of, run_id));
    store::write_atomic(&path, json.as_bytes())?;
    ledger
        .finish_run(run_id, summary.exit_code, &json)
        .context("failed to record the run")?;
    Ok(())
}

/// What every stage of one run shares.
struct StageContext<'a> {
    opts: &'a RunOptions,
    /// DATA, opened (its reference files in `data.dir()`).
    data: &'a Data,
    settings: &'a Settings,
    reference: &'a Reference,
    billing_start: NaiveDate,
}

impl StageContext<'_> {
    fn render_inputs(&self) -> render::Inputs<'_> {
        render::Inputs {
            out_dir: &self.opts.out_dir,
            issuer: &self.settings.issuer,
            reference: self.reference,
        }
    }
}

/// Runs the stages the command asked for, each timed into the summary.
fn run_stages(
    ctx: &StageContext,
    ledger: &mut Ledger,
    summary: &mut RunSummary,
) -> anyhow::Result<()> {
    let stages = ctx.opts.stages;
    if stages.includes(Stages::Ingest) {
        timed(summary, "ingest", |s| ingest_stage(ctx, ledger, s))?;
    }
    if stages.includes(Stages::Aggregate) || stages.includes(Stages::Decide) {
        let late = LateDays::read(ledger)?;
        let decided = ledger.decisions()?;
        let lines = timed(summary, "aggregate", |s| {
            aggregate_stage(ctx, &decided, &late.view(), s)
        })?;
        if stages.includes(Stages::Decide) {
            timed(summary, "decide", |s| {
                decide_stage(ctx, ledger, lines, decided, late.view(), s)
            })?;
        }
    }
    if stages.includes(Stages::Render) {
        timed(summary, "render", |s| render_stage(ctx, ledger, s))?;
    }
    if stages.includes(Stages::Send) {
        timed(summary, "send", |s| send_stage(ctx, ledger, s))?;
    }
    Ok(())
}

/// Runs one stage in its tracing span and records how long it took.
fn timed<T>(
    summary: &mut RunSummary,
    stage: &'static str,
    work: impl FnOnce(&mut RunSummary) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let started = Instant::now();
    crate::memory::start_stage();
    let _span = tracing::info_span!("stage", stage).entered();
    let out = work(summary)?;
    summary
        .durations
        .insert(stage.into(), started.elapsed().as_secs_f64());
    if let Some(peak) = crate::memory::stage_peak_mb() {
        summary.peak_rss_mb.insert(stage.into(), peak);
    }
    Ok(out)
}

fn ingest_stage(
    ctx: &StageContext,
    ledger: &mut Ledger,
    summary: &mut RunSummary,
) -> anyhow::Result<()> {
    let options = ingest::IngestOptions {
        usage: ctx.data.usage(),
        out_dir: &ctx.opts.out_dir,
        billing_start: ctx.billing_start,
        reference: ctx.reference,
    };
    let ingested = ledger.ingested_files_by_day()?;
    let report = crate::memory::keeping_freed_blocks(|| {
        ingest::ingest(&options, &ingested, |stats, files| {
            Ok(ledger.record_day(stats, files)?)
        })
    })
    .context("failed to ingest usage")?;
    tracing::info!(
        days = report.days_ingested.len(),
        unchanged = report.days_unchanged,
        "ingested usage"
    );
    summary.record_ingest(report);
    Ok(())
}

/// Days ingested since the last decide step, and decided periods they
/// touched that are still unchecked (both from the ledger).
struct LateDays {
    fresh_days: BTreeSet<NaiveDate>,
    unchecked: BTreeSet<model::DecisionKey>,
}

impl LateDays {
    fn read(ledger: &Ledger) -> Result<LateDays, ledger::LedgerError> {
        Ok(LateDays {
            fresh_days: ledger.fresh_days()?,
            unchecked: ledger.unchecked()?,
        })
    }

    fn view(&self) -> decide::LateUsage<'_> {
        decide::LateUsage {
            fresh_days: &self.fresh_days,
            unchecked: &self.unchecked,
        }
    }
}

/// The lines of the periods the decide step will look at.
fn aggregate_stage(
    ctx: &StageContext,
    decided: &BTreeMap<model::DecisionKey, model::Decision>,
    late: &decide::LateUsage,
    summary: &mut RunSummary,
) -> anyhow::Result<model::PeriodLines> {
    let partitions = aggregate::usage_partitions(&ctx.opts.out_dir)?;
    let wanted = decide::periods_needing_lines(
        ctx.reference,
        ctx.opts.as_of,
        ctx.settings.billing.settle_days,
        ctx.billing_start,
        decided,
        late,
    );
    let lines = aggregate::period_lines_from(&partitions, ctx.reference, &wanted)
        .context("failed to aggregate usage")?;
    let count: usize = lines.values().map(|keys| keys.len()).sum();
    tracing::info!(lines = count, periods = lines.len(), "aggregated usage");
    summary.record_aggregate(count, lines.len());
    Ok(lines)
}

/// Decides, records the decisions and invoices, then payments, statuses
/// and the analysts' parquet.
fn decide_stage(
    ctx: &StageContext,
    ledger: &mut Ledger,
    lines: model::PeriodLines,
    decided: BTreeMap<model::DecisionKey, model::Decision>,
    late: decide::LateUsage,
    summary: &mut RunSummary,
) -> anyhow::Result<()> {
    let present_days: BTreeSet<NaiveDate> = ledger
        .days()?
        .into_iter()
        .filter(|d| d.present)
        .map(|d| d.day)
        .collect();
    let billed = billed_sums_late_usage_may_touch(ledger, &late)?;
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
    tracing::debug!("decided; recording");
    // Decided: the period lines and earlier decisions are no longer needed.
    drop((lines, decided, billed));
    summary.record_decisions(&commit);
    ledger
        .commit_decisions(&commit)
        .context("failed to record decisions")?;
    tracing::debug!("recorded; writing outputs");
    let (decisions, invoices) = (commit.decisions.len(), commit.invoices.len());
    let written = record_payments_and_outputs(ctx, ledger, summary, &commit.lines)?;
    drop(commit);
    tracing::info!(decisions, invoices, written, "decided");
    summary.held = ledger
        .decisions_coded(DecisionCode::HeldIncompleteUsage)?
        .values()
        .map(|d| format!("{} {} {}", d.profile_id, d.kind.as_str(), d.period.start))
        .collect();
    Ok(())
}

/// Only decided periods late usage may have touched are compared with what
/// they billed; a period is at most 31 days long.
pub(crate) fn billed_sums_late_usage_may_touch(
    ledger: &Ledger,
    late: &decide::LateUsage,
) -> Result<BTreeMap<model::DecisionKey, model::Billed>, ledger::LedgerError> {
    let earliest = [
        late.fresh_days.first().map(|d| *d - chrono::Days::new(31)),
        late.unchecked.iter().map(|(_, _, start)| *start).min(),
    ]
    .into_iter()
    .flatten()
    .min();
    match earliest {
        Some(since) => ledger.billed_since(since),
        None => Ok(BTreeMap::new()),
    }
}

/// After the run's invoices are issued: credit notes judged and issued,
/// payments matched, statuses brought up to date, and every parquet
/// partition whose contents changed rewritten.
fn record_payments_and_outputs(
    ctx: &StageContext,
    ledger: &mut Ledger,
    summary: &mut RunSummary,
    decided_lines: &[(model::DecisionKey, Vec<model::Line>)],
) -> anyhow::Result<usize> {
    // The issued invoices are read once: credit notes, payments, statuses
    // and reminders all work on this copy, which the statuses keep current.
    let mut invoices = ledger.invoice_heads()?;
    let credit_notes = issue_credit_notes(ctx, ledger, summary, &invoices)?;
    let payments = payments::read_payments(ctx.data.dir(), &invoices, ctx.reference)
        .context("failed to read payments")?;
    payments::write_rejects(&ctx.opts.out_dir, &payments.rejects)?;
    summary.payments_rejected = payments.rejects.len();
    let statuses = outputs::Statuses {
        as_of: ctx.opts.as_of,
        paid: &payments.paid_by_invoice,
        credit_notes: &credit_notes,
    };
    outputs::update_statuses(ledger, &statuses, &mut invoices)?;
    summary.overpaid = payments::overpaid(&invoices);
    issue_reminders(ctx, ledger, summary, &invoices)?;
    let at_hand: outputs::LinesAtHand = decided_lines
        .iter()
        .map(|(key, lines)| (key, lines.as_slice()))
        .collect();
    outputs::write_dirty(&ctx.opts.out_dir, ledger, &at_hand).context("failed to write outputs")
}

/// Judges credit_notes.csv (SPEC §2.4, §4.9) against the issued invoices
/// and records the credit notes it issues, numbered, with their e-mails;
/// returns every credit note issued so far.
fn issue_credit_notes(
    ctx: &StageContext,
    ledger: &mut Ledger,
    summary: &mut RunSummary,
    invoices: &[ledger::IssuedInvoice],
) -> anyhow::Result<Vec<model::CreditNote>> {
    let mut issued = ledger.credit_notes()?;
    let issuing = credit_notes::Issuing {
        as_of: ctx.opts.as_of,
        prefix: &ctx.settings.billing.credit_note_prefix,
        next_seq: ledger.next_credit_note_seq()?,
        invoices,
        issued: &issued,
    };
    let run = credit_notes::judge_credit_notes(ctx.data.dir(), &issuing)
        .context("failed to read credit notes")?;
    credit_notes::write_rejects(&ctx.opts.out_dir, &run.rejects)?;
    ledger
        .commit_credit_notes(&run.issued)
        .context("failed to record credit notes")?;
    summary.credit_notes_issued = run.issued.iter().map(|(_, n)| n.number.clone()).collect();
    summary.credit_notes_rejected = run.rejects.len();
    summary.credit_notes_waiting = run.waiting;
    issued.extend(run.issued.into_iter().map(|(_, note)| note));
    Ok(issued)
}

/// Issues the reminders due on `as_of` (SPEC §5.1), with `[reminders]`.
fn issue_reminders(
    ctx: &StageContext,
    ledger: &mut Ledger,
    summary: &mut RunSummary,
    invoices: &[ledger::IssuedInvoice],
) -> anyhow::Result<()> {
    let Some(settings) = &ctx.settings.reminders else {
        return Ok(());
    };
    let due = reminders::reminders_due(invoices, &settings.days, ctx.opts.as_of);
    ledger
        .commit_reminders(&due, ctx.opts.as_of)
        .context("failed to record reminders")?;
    summary.reminders_issued = due
        .iter()
        .map(|r| format!("{} reminder {}", r.number, r.reminder))
        .collect();
    Ok(())
}

/// Reads preferences.csv (SPEC §2.3): rejects written, each profile's
/// history kept in the ledger for `explain`; returns the accepted changes.
fn read_preferences(
    ctx: &StageContext,
    ledger: &mut Ledger,
    summary: &mut RunSummary,
) -> anyhow::Result<model::PreferenceChanges> {
    let log = preferences::read_preferences(ctx.data.dir(), ctx.reference)
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

fn render_stage(
    ctx: &StageContext,
    ledger: &mut Ledger,
    summary: &mut RunSummary,
) -> anyhow::Result<()> {
    let report = render::render_missing(&ctx.render_inputs(), ledger)
        .context("failed to render invoices")?;
    tracing::info!(written = report.written, "rendered invoices");
    for failure in &report.failed {
        tracing::error!(%failure, "invoice not rendered");
    }
    summary.pdfs_written = report.written;
    summary.einvoices_written = report.einvoices_written;
    summary.render_failed = report.failed;
    Ok(())
}

fn send_stage(
    ctx: &StageContext,
    ledger: &mut Ledger,
    summary: &mut RunSummary,
) -> anyhow::Result<()> {
    let inputs = deliver::Inputs {
        mail: &ctx.settings.mail,
        render: ctx.render_inputs(),
        resend: ctx.opts.resend.as_deref(),
        reminder_days: ctx
            .settings
            .reminders
            .as_ref()
            .map_or(&[][..], |r| r.days.as_slice()),
    };
    let report = deliver::send_pending(&inputs, ledger).context("failed to deliver invoices")?;
    tracing::info!(
        sent = report.sent,
        failed = report.failed,
        "delivered invoices"
    );
    summary.delivery = report;
    Ok(())
}
