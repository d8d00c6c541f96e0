//! Shard workers (`faktura ingest --shard I/N`): each ingests its share of
//! the days and writes a manifest; the next `faktura run` adopts them.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::model::{DayStats, FileFingerprint};
use crate::store;

use super::listing::{fingerprint, hashed_as_read};
use super::{IngestError, IngestOptions, IngestReport, RecordDay, Result, ingest_days};

/// One shard of N (`--shard I/N`): the days whose ordinal modulo N is I.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `I/N` with `0 <= I < N`.
    pub fn parse(s: &str) -> Option<Shard> {
        let (i, n) = s.split_once('/')?;
        let (index, count) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
        (count > 0 && index < count).then_some(Shard { index, count })
    }

    pub fn owns(&self, day: NaiveDate) -> bool {
        use chrono::Datelike;
        day.num_days_from_ce().rem_euclid(self.count as i32) == self.index as i32
    }
}

/// What a shard worker ingested: adopted into the ledger by the next run.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub days: Vec<(DayStats, Vec<FileFingerprint>)>,
}

/// `faktura ingest --shard I/N`: ingests this shard's days (all of them,
/// no ledger to compare with) and writes `OUT/manifests/shard-I-of-N.json`.
/// Takes no lock and never touches the ledger.
pub fn ingest_shard(opts: &IngestOptions, shard: Shard) -> Result<IngestReport> {
    let listing = opts.usage.list()?;
    let mut report = IngestReport::default();
    let mut manifest = Manifest::default();
    let mut todo = Vec::new();
    for (day, files) in listing.days {
        if day < opts.billing_start || !shard.owns(day) {
            continue;
        }
        // Hashed as they are read, or first when they are not plain CSV.
        let fingerprints = files
            .par_iter()
            .map(|f| match hashed_as_read(f) {
                true => Ok(None),
                false => fingerprint(opts.usage, f, None).map(Some),
            })
            .collect::<std::result::Result<Vec<_>, store::FileError>>()?;
        todo.push((day, files, fingerprints));
    }
    ingest_days(opts, todo, |stats, _, fingerprints| {
        manifest.days.push((stats.clone(), fingerprints));
        report.days_ingested.push(stats);
        Ok(())
    })?;
    let path = opts.out_dir.join(format!(
        "manifests/shard-{}-of-{}.json",
        shard.index, shard.count
    ));
    let json = serde_json::to_string_pretty(&manifest).expect("manifests serialize");
    store::write_atomic(&path, json.as_bytes())?;
    Ok(report)
}

/// Hands what shard workers ingested to `record` (the run records it in
/// the ledger), then removes their manifests; returns the number of days
/// adopted.
pub fn adopt_manifests(out_dir: &Path, mut record: impl RecordDay) -> Result<usize> {
    let dir = out_dir.join("manifests");
    let mut adopted = 0;
    let mut paths: Vec<PathBuf> = store::list_dir(&dir)?;
    paths.sort();
    for path in paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let bytes = std::fs::read(&path).map_err(store::failed("read", &path))?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| IngestError::Manifest {
                path: path.clone(),
                source,
            })?;
        for (stats, fingerprints) in &manifest.days {
            record(stats, fingerprints).map_err(IngestError::Record)?;
            adopted += 1;
        }
        std::fs::remove_file(&path).map_err(store::failed("remove", &path))?;
    }
    Ok(adopted)
}
