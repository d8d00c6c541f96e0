//! Checks before any stage runs, against what the ledger recorded: OUT that
//! lost its ledger is refused (SPEC §6), `billing_start` is resolved and
//! recorded once (§3), and profiles may not change their currency, period
//! start day or created date once decided, nor disappear once invoiced
//! (§2.2).

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::config::Settings;
use crate::ledger::{Ledger, LedgerError};
use crate::model::Reference;
use crate::store::FileError;

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "`{out}` holds issued invoices ({evidence}) but no ledger.sqlite: restore the ledger \
         from a backup before running again (faktura never numbers or sends again from scratch \
         over an earlier run's output)"
    )]
    LostLedger { out: PathBuf, evidence: String },
    /// The configuration or reference data conflicts with the ledger.
    #[error("configuration conflicts with what the ledger recorded: {0}")]
    Recorded(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    File(#[from] FileError),
}

/// OUT with issued invoices but no ledger is refused: numbering and
/// sending again from scratch would duplicate both.
pub fn check_ledger_present(out_dir: &Path) -> Result<(), PreflightError> {
    if crate::store::exists(&out_dir.join("ledger.sqlite"))? {
        return Ok(());
    }
    let mut evidence = Vec::new();
    for folder in ["invoices", "credit_notes", "pdf", "einvoice", "outbox"] {
        if !crate::store::list_dir(&out_dir.join(folder))?.is_empty() {
            evidence.push(format!("{folder}/"));
        }
    }
    if evidence.is_empty() {
        return Ok(());
    }
    Err(PreflightError::LostLedger {
        out: out_dir.to_path_buf(),
        evidence: evidence.join(", "),
    })
}

/// `billing_start`: the configured day, else the recorded one, else the
/// earliest usage file day (`earliest_usage_day`, asked only then);
/// recorded on the first run, never changed.
pub fn resolve_billing_start(
    settings: &Settings,
    ledger: &mut Ledger,
    earliest_usage_day: impl FnOnce() -> Result<Option<NaiveDate>, FileError>,
) -> Result<NaiveDate, PreflightError> {
    let recorded = match ledger.meta("billing_start")? {
        Some(text) => Some(
            text.parse::<NaiveDate>()
                .map_err(|e| LedgerError::Corrupt {
                    what: "meta.billing_start",
                    detail: e.to_string(),
                })?,
        ),
        None => None,
    };
    let start = match (settings.billing.billing_start, recorded) {
        (Some(configured), Some(recorded)) if configured != recorded => {
            return Err(PreflightError::Recorded(format!(
                "billing.billing_start is {configured}, but the ledger recorded {recorded} on the first run"
            )));
        }
        (_, Some(recorded)) => return Ok(recorded),
        (Some(configured), None) => configured,
        (None, None) => earliest_usage_day()?.ok_or_else(|| {
            PreflightError::Recorded(
                "no usage files and no billing.billing_start: nothing to start billing from".into(),
            )
        })?,
    };
    ledger.set_meta("billing_start", &start.to_string())?;
    Ok(start)
}

/// A profile's currency, periodStartDay and createdDate may not change once
/// decided, and a profile that has issued invoices may not be removed.
pub fn check_recorded_profiles(
    reference: &Reference,
    ledger: &Ledger,
) -> Result<(), PreflightError> {
    let mut problems = Vec::new();
    for (id, number) in &ledger.invoiced_profiles()? {
        if !reference.profiles.contains_key(id) {
            problems.push(format!(
                "profiles.csv: profile {id} is missing, but it has issued invoices (e.g. {number}); \
                 put it back"
            ));
        }
    }
    for (id, state) in &ledger.profile_states()? {
        let Some(profile) = reference.profiles.get(id) else {
            continue;
        };
        let changed = [
            (
                "currency",
                profile.currency.code().to_string(),
                state.currency.clone(),
            ),
            (
                "periodStartDay",
                profile.period_start_day.to_string(),
                state.period_start_day.to_string(),
            ),
            (
                "createdDate",
                profile.created_date.to_string(),
                state.created_date.to_string(),
            ),
        ];
        for (column, now, recorded) in changed {
            if now != recorded {
                problems.push(format!(
                    "profiles.csv: {id} {column} is {now}, recorded {recorded}"
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PreflightError::Recorded(problems.join("; ")))
    }
}
