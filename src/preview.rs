//! `faktura preview` (SPEC §7): what a profile's open periods would bill if
//! they closed now. From the first period not yet decided (a held one
//! counts as not decided) up to the one containing `as_of`, each period is
//! decided by the very rules of `decide` on the usage already ingested
//! under OUT, with rule 6a set aside (its days without usage are listed
//! instead) and carries flowing from one period to the next. An estimate:
//! no lock, nothing under OUT written, no number assigned, no usage file
//! of DATA read (DATA gives the reference files and credits).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::value::RawValue;

use crate::config::Settings;
use crate::ledger::{Ledger, LedgerError};
use crate::model::{Currency, Decision, DecisionKey, Kind, Line, Period, Vat};
use crate::{aggregate, decide, run};

/// What `faktura preview` is asked.
#[derive(Clone, Debug)]
pub struct PreviewOptions {
    pub data_dir: PathBuf,
    pub out_dir: PathBuf,
    pub profile: String,
    pub as_of: NaiveDate,
    pub config: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// Exit 2, like any bad argument or reference data.
    #[error("no profile {0:?} in profiles.csv")]
    UnknownProfile(String),
    #[error(transparent)]
    Inputs(#[from] run::RunError),
    #[error("no ledger at `{}`: has `faktura run` run into this OUT?", .0.display())]
    NoLedger(PathBuf),
    #[error("the ledger at `{0}` records no billing_start: has `faktura run` run into this OUT?")]
    NoBillingStart(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Aggregate(#[from] aggregate::AggregateError),
}

impl PreviewError {
    /// SPEC §7: exit 2 for an unknown profile and bad inputs, else 1.
    pub fn is_bad_input(&self) -> bool {
        match self {
            PreviewError::UnknownProfile(_) => true,
            PreviewError::Inputs(e) => e.exit_status() == run::ExitStatus::BadInput,
            _ => false,
        }
    }
}

/// One period of the estimate: the decision as `decide` would make it now,
/// its VAT and total where it would issue an invoice, and its lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodEstimate {
    pub decision: Decision,
    pub vat: Option<Vat>,
    pub total: Option<Decimal>,
    /// Days of the period with no usage file ingested (rule 6a set aside).
    pub days_without_usage: Vec<NaiveDate>,
    pub lines: Vec<Line>,
}

/// The estimate of `opts.profile`'s open periods, in period order,
/// `services` before `purchases` within a period.
pub fn preview(opts: &PreviewOptions) -> Result<Vec<PeriodEstimate>, PreviewError> {
    let (_data, settings, reference) = run::load_inputs(&opts.data_dir, opts.config.as_deref())?;
    let Some(profile) = reference.profiles.get(&opts.profile) else {
        return Err(PreviewError::UnknownProfile(opts.profile.clone()));
    };
    let path = opts.out_dir.join("ledger.sqlite");
    if !path.exists() {
        return Err(PreviewError::NoLedger(path));
    }
    let ledger = Ledger::open_read_only(&path)?;
    let billing_start = billing_start(&settings, &ledger, &path)?;
    // Closing the period that contains as_of closes every one before it.
    let open = Period::containing(opts.as_of, profile.period_start_day);
    let closing = open.end + chrono::Days::new(1 + u64::from(settings.billing.settle_days));
    let mut only = reference.clone();
    only.profiles.retain(|id, _| *id == opts.profile);
    let commit = decide_on(opts, &settings, &only, &ledger, billing_start, closing)?;
    let ingested: BTreeSet<NaiveDate> = ledger
        .days()?
        .into_iter()
        .filter(|d| d.present)
        .map(|d| d.day)
        .collect();
    let without_usage = |period: Period| -> Vec<NaiveDate> {
        period
            .days()
            .filter(|d| *d >= billing_start && !ingested.contains(d))
            .collect()
    };
    Ok(estimates_of(opts, commit, &without_usage))
}

/// What `decide` makes of the profile's periods up to `closing` (when the
/// open one has closed), on the lines ingested so far, every day present.
fn decide_on(
    opts: &PreviewOptions,
    settings: &Settings,
    only: &crate::model::Reference,
    ledger: &Ledger,
    billing_start: NaiveDate,
    closing: NaiveDate,
) -> Result<crate::model::DecideCommit, PreviewError> {
    let settle_days = settings.billing.settle_days;
    let decided: BTreeMap<DecisionKey, Decision> = ledger
        .decisions()?
        .into_iter()
        .filter(|(key, _)| key.0 == opts.profile)
        .collect();
    let (fresh_days, unchecked) = (ledger.fresh_days()?, ledger.unchecked()?);
    let late = decide::LateUsage {
        fresh_days: &fresh_days,
        unchecked: &unchecked,
    };
    let wanted =
        decide::periods_needing_lines(only, closing, settle_days, billing_start, &decided, &late);
    let partitions = aggregate::usage_partitions(&opts.out_dir)?;
    let lines = aggregate::period_lines_read_only(&partitions, only, &wanted)?;
    let billed = run::billed_sums_late_usage_may_touch(ledger, &late)?;
    // Every day present: rule 6a holds nothing back.
    let every_day: BTreeSet<NaiveDate> = billing_start
        .iter_days()
        .take_while(|d| *d < closing)
        .collect();
    let tax = settings.tax_rule();
    let input = decide::DecideInput {
        reference: only,
        as_of: closing,
        settle_days,
        billing_start,
        invoice_prefix: &settings.billing.invoice_prefix,
        present_days: &every_day,
        lines: &lines,
        late,
        decided: &decided,
        billed: &billed,
        next_seq: 1,
        preferences: &Default::default(),
        tax: tax.as_ref(),
    };
    Ok(decide::decide(&input))
}

/// The commit's decisions of the profile as estimates: no number, decided
/// on `as_of`, with their lines, VAT and total, in period order.
fn estimates_of(
    opts: &PreviewOptions,
    commit: crate::model::DecideCommit,
    without_usage: &dyn Fn(Period) -> Vec<NaiveDate>,
) -> Vec<PeriodEstimate> {
    let mut period_lines: BTreeMap<DecisionKey, Vec<Line>> = commit.lines.into_iter().collect();
    let invoices: BTreeMap<DecisionKey, (Option<Vat>, Decimal)> = commit
        .invoices
        .into_iter()
        .map(|(_, i)| {
            let total = i.total();
            ((i.profile_id, i.kind, i.period.start), (i.vat, total))
        })
        .collect();
    let mut estimates: Vec<PeriodEstimate> = commit
        .decisions
        .into_iter()
        .filter(|d| d.profile_id == opts.profile)
        .map(|mut decision| {
            let key = (
                decision.profile_id.clone(),
                decision.kind,
                decision.period.start,
            );
            decision.invoice_number = None;
            decision.decided_on = opts.as_of;
            let (vat, total) = match invoices.get(&key) {
                Some((vat, total)) => (vat.clone(), Some(*total)),
                None => (None, None),
            };
            PeriodEstimate {
                days_without_usage: without_usage(decision.period),
                lines: period_lines.remove(&key).unwrap_or_default(),
                decision,
                vat,
                total,
            }
        })
        .collect();
    estimates.sort_by_key(|e| (e.decision.period.start, e.decision.kind));
    estimates
}

/// `billing_start` as the run resolves it: configured, else recorded.
fn billing_start(
    settings: &Settings,
    ledger: &Ledger,
    path: &Path,
) -> Result<NaiveDate, PreviewError> {
    if let Some(start) = settings.billing.billing_start {
        return Ok(start);
    }
    let recorded = ledger
        .meta("billing_start")?
        .ok_or_else(|| PreviewError::NoBillingStart(path.display().to_string()))?;
    recorded.parse().map_err(|e: chrono::ParseError| {
        PreviewError::Ledger(LedgerError::Corrupt {
            what: "meta.billing_start",
            detail: e.to_string(),
        })
    })
}

/// `--format json` (SPEC §7): one array of period objects, each with the
/// decisions table's columns plus `vat_category`, `vat_rate`,
/// `vat_amount`, `total`, `estimate`, `days_without_usage` and `lines`.
/// Amounts are exact JSON numbers, written from their decimals (never
/// through a float).
pub fn to_json(estimates: &[PeriodEstimate]) -> String {
    let periods: Vec<PeriodJson> = estimates.iter().map(PeriodJson::of).collect();
    serde_json::to_string_pretty(&periods).expect("estimates serialize")
}

type Number = Box<RawValue>;

/// An exact decimal as a JSON number.
fn number(value: Decimal) -> Number {
    RawValue::from_string(value.to_string()).expect("a decimal is a JSON number")
}

/// An amount as a JSON number with the currency's minor-unit digits.
fn money(value: Decimal, currency: &str) -> Number {
    let digits = Currency::parse(currency).map_or(2, |c| c.minor_unit) as usize;
    RawValue::from_string(format!("{value:.digits$}")).expect("an amount is a JSON number")
}

/// One period of `--format json`, in the decisions table's column order.
#[derive(serde::Serialize)]
struct PeriodJson<'a> {
    billing_account_id: &'a str,
    billing_profile_id: &'a str,
    kind: &'static str,
    period_start: NaiveDate,
    period_end: NaiveDate,
    currency: &'a str,
    decision: &'static str,
    subtotal: Option<Number>,
    trial_covered: Option<Number>,
    monthly_credit: Option<Number>,
    prepaid_credit: Option<Number>,
    carried_in: Option<Number>,
    amount_due: Option<Number>,
    carried_out: Option<Number>,
    invoice_number: Option<&'a str>,
    missing_days: &'a [NaiveDate],
    decided_on: NaiveDate,
    vat_category: Option<&'static str>,
    vat_rate: Number,
    vat_amount: Number,
    total: Option<Number>,
    estimate: bool,
    days_without_usage: &'a [NaiveDate],
    lines: Vec<LineJson<'a>>,
}

impl<'a> PeriodJson<'a> {
    fn of(e: &'a PeriodEstimate) -> Self {
        let d = &e.decision;
        let c = d.currency.as_str();
        let amount =
            |f: fn(&crate::model::Amounts) -> Decimal| d.amounts.as_ref().map(|a| money(f(a), c));
        let vat = e.vat.as_ref();
        PeriodJson {
            billing_account_id: &d.account_id,
            billing_profile_id: &d.profile_id,
            kind: d.kind.as_str(),
            period_start: d.period.start,
            period_end: d.period.end,
            currency: c,
            decision: d.code.as_str(),
            subtotal: amount(|a| a.subtotal),
            trial_covered: amount(|a| a.trial_covered),
            monthly_credit: amount(|a| a.monthly_credit),
            prepaid_credit: amount(|a| a.prepaid_credit),
            carried_in: amount(|a| a.carried_in),
            amount_due: amount(|a| a.amount_due),
            carried_out: amount(|a| a.carried_out),
            invoice_number: None,
            missing_days: &d.missing_days,
            decided_on: d.decided_on,
            vat_category: vat.map(|v| v.category.as_str()),
            vat_rate: number(vat.map_or(Decimal::ZERO, |v| v.rate.normalize())),
            vat_amount: money(vat.map_or(Decimal::ZERO, |v| v.amount), c),
            total: e.total.map(|t| money(t, c)),
            estimate: true,
            days_without_usage: &e.days_without_usage,
            lines: e.lines.iter().map(|l| LineJson::of(d, l)).collect(),
        }
    }
}

/// One line of a period, in the lines table's column order.
#[derive(serde::Serialize)]
struct LineJson<'a> {
    billing_profile_id: &'a str,
    kind: &'static str,
    period_start: NaiveDate,
    period_end: NaiveDate,
    subscription_id: &'a str,
    meter_id: &'a str,
    meter_category: &'a str,
    meter_name: &'a str,
    unit_of_measure: &'a str,
    charge_type: &'a str,
    publisher_type: &'a str,
    pricing_model: &'a str,
    is_azure_credit_eligible: bool,
    covered_by: &'static str,
    currency: &'a str,
    quantity: Number,
    cost: Number,
    amount: Number,
    rows: i64,
}

impl<'a> LineJson<'a> {
    fn of(d: &'a Decision, line: &'a Line) -> Self {
        let (k, m) = (&line.key, &*line.key.meter);
        LineJson {
            billing_profile_id: &d.profile_id,
            kind: d.kind.as_str(),
            period_start: d.period.start,
            period_end: d.period.end,
            subscription_id: &k.subscription_id,
            meter_id: &m.meter_id,
            meter_category: &m.meter_category,
            meter_name: &m.meter_name,
            unit_of_measure: &m.unit_of_measure,
            charge_type: &m.charge_type,
            publisher_type: &m.publisher_type,
            pricing_model: &m.pricing_model,
            is_azure_credit_eligible: k.credit_eligible,
            covered_by: k.covered_by.as_str(),
            currency: &d.currency,
            quantity: number(line.sums.quantity.normalize()),
            cost: number(line.sums.cost.normalize()),
            amount: money(line.amount, &d.currency),
            rows: line.sums.rows,
        }
    }
}

/// The estimate for a person: each period's decision, lines and amounts,
/// marked as an estimate.
pub fn to_text(profile: &str, as_of: NaiveDate, estimates: &[PeriodEstimate]) -> String {
    let mut out = format!(
        "ESTIMATE for {profile} as of {as_of}: what the open periods would bill if they closed now, \
         on the usage ingested so far. Not an invoice; no number is assigned.\n"
    );
    if estimates.is_empty() {
        out += "Nothing to estimate: every period up to this day is decided.\n";
    }
    for e in estimates {
        out.push('\n');
        out += &period_text(e);
    }
    out
}

fn period_text(e: &PeriodEstimate) -> String {
    let d = &e.decision;
    let m = |v: Decimal| {
        let digits = Currency::parse(&d.currency).map_or(2, |c| c.minor_unit) as usize;
        format!("{v:.digits$} {}", d.currency)
    };
    let kind = match d.kind {
        Kind::Services => "",
        Kind::Purchases => " (purchases)",
    };
    let mut out = format!(
        "{} to {}{kind}: would be {}\n",
        d.period.start,
        d.period.end,
        d.code.as_str()
    );
    if !e.days_without_usage.is_empty() {
        let days: Vec<String> = e.days_without_usage.iter().map(|d| d.to_string()).collect();
        out += &format!("  days without usage so far: {}\n", days.join(", "));
    }
    out += &lines_text(e, &m);
    if let Some(a) = &d.amounts {
        out += &format!(
            "  subtotal {}, free trial {}, monthly credit {}, prepaid credit {}, carried in {}\n  amount due {}, carried out {}\n",
            m(a.subtotal),
            m(a.trial_covered),
            m(a.monthly_credit),
            m(a.prepaid_credit),
            m(a.carried_in),
            m(a.amount_due),
            m(a.carried_out)
        );
    }
    if let (Some(vat), Some(total)) = (&e.vat, e.total) {
        out += &format!(
            "  VAT {} ({} % {}), total {}\n",
            m(vat.amount),
            vat.rate.normalize(),
            vat.category.as_str(),
            m(total)
        );
    } else if let Some(total) = e.total {
        out += &format!("  total {}\n", m(total));
    }
    out
}

/// The estimate's lines, one a row: subscription, meter, how it was
/// charged, quantity and amount.
fn lines_text(e: &PeriodEstimate, m: &dyn Fn(Decimal) -> String) -> String {
    let mut out = String::new();
    for line in &e.lines {
        let meter = &line.key.meter;
        let mut how = vec![meter.charge_type.as_str(), meter.pricing_model.as_str()];
        if line.key.covered_by != crate::model::CoveredBy::None {
            how.push(line.key.covered_by.as_str());
        }
        out += &format!(
            "  {} · {} · {} ({}): {} × {} = {}\n",
            line.key.subscription_id,
            meter.meter_category,
            meter.meter_name,
            how.join(", "),
            line.sums.quantity.normalize(),
            meter.unit_of_measure,
            m(line.amount)
        );
    }
    out
}
