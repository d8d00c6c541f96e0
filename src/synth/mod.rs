//! `faktura gen`: a deterministic synthetic data directory of any size —
//! reference files that validate and daily usage files in Azure's
//! usage-details shape, with GUIDs, long resource ids, quoted meter names
//! containing commas, quotes and non-ASCII letters, refunds, Marketplace
//! and reservation purchases. The same seed gives the same bytes.
//! (Named `synth` because edition 2024 reserves `gen`.)

use std::path::PathBuf;

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::store::{self, FileError};

/// Options of `faktura gen`.
#[derive(Clone, Debug)]
pub struct GenOptions {
    pub out_dir: PathBuf,
    pub days: u32,
    pub rows_per_day: u64,
    pub profiles: u32,
    pub seed: u64,
    pub start: NaiveDate,
    pub shape: UsageShape,
}

/// SplitMix64: tiny, fast, and stable across versions (unlike a crate's RNG).
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }

    fn guid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

mod invoice;
mod reference;
mod shape;
mod usage;

pub use invoice::synthetic_invoice;
use reference::write_reference;
pub use shape::{Layout, ShapePreset, UsageShape, parse_range};
use usage::{RowPlan, choose_meters, meters, write_day};

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot format generated data: {0}")]
    Format(#[from] std::fmt::Error),
}

type Result<T> = std::result::Result<T, SynthError>;

/// Writes the data directory; returns the number of usage rows written.
pub fn generate(opts: &GenOptions) -> Result<u64> {
    let dir = &opts.out_dir;
    let usage = dir.join("usage");
    std::fs::create_dir_all(&usage).map_err(store::failed("create", &usage))?;
    let mut rng = Rng::new(opts.seed, 0);
    let meters = meters(&mut rng, &opts.shape);
    let (profiles, mut subscriptions) = write_reference(dir, opts, &mut rng)?;
    choose_meters(
        &mut subscriptions,
        &profiles,
        &meters,
        &opts.shape,
        &mut rng,
    );
    let plan = RowPlan::new(&profiles, &subscriptions, &meters, &opts.shape, &mut rng);
    let written: u64 = (0..opts.days)
        .into_par_iter()
        .map(|day_index| write_day(dir, opts, day_index, &plan))
        .collect::<Result<Vec<u64>>>()?
        .into_iter()
        .sum();
    Ok(written)
}

/// An integer at a decimal scale, written as a plain decimal.
pub(super) struct Scaled(i128, u32);

impl std::fmt::Display for Scaled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Scaled(value, scale) = *self;
        let divisor = 10i128.pow(scale);
        let sign = if value < 0 { "-" } else { "" };
        let abs = value.abs();
        write!(
            f,
            "{sign}{}.{:0width$}",
            abs / divisor,
            abs % divisor,
            width = scale as usize
        )
    }
}

/// An integer at a decimal scale, written without trailing fraction
/// zeros (`1.5`, `3`), as exports write values of varying precision.
pub(super) struct Trimmed(i128, u32);

impl std::fmt::Display for Trimmed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let full = Scaled(self.0, self.1).to_string();
        f.write_str(full.trim_end_matches('0').trim_end_matches('.'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn scaled_numbers_print_exactly() {
        assert_eq!(Scaled(12345, 4).to_string(), "1.2345");
        assert_eq!(Scaled(-5, 2).to_string(), "-0.05");
        assert_eq!(Scaled(0, 10).to_string(), "0.0000000000");
        assert_eq!(Trimmed(150_000_000, 8).to_string(), "1.5");
        assert_eq!(Trimmed(-300_000_000, 8).to_string(), "-3");
        assert_eq!(Trimmed(1, 8).to_string(), "0.00000001");
        assert_eq!(Trimmed(0, 8).to_string(), "0");
    }

    #[test]
    pub(super) fn same_seed_same_guids() {
        assert_eq!(Rng::new(7, 1).guid(), Rng::new(7, 1).guid());
        assert_ne!(Rng::new(7, 1).guid(), Rng::new(8, 1).guid());
    }
}
