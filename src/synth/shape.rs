//! The shape of generated usage: how many meters the catalogue has, how
//! many each subscription uses, how skewed meter popularity and
//! subscription volumes are, and the charge-type, pricing-model and
//! decimal mix of the rows. `classic` is the small shape faktura's tests
//! were written on; `azure` is a large Azure tenant's month (issue #17):
//! a 2,000-meter catalogue, 5-40 meters per subscription drawn
//! Zipf-skewed, Zipf-skewed subscription volumes, ~97 % Usage, ~2 %
//! Purchase, ~1 % Refund, all four pricing models, up to 8 fraction digits.

use super::Rng;

/// A named starting point for [`UsageShape`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapePreset {
    Classic,
    Azure,
    /// A plainer month (issue 34): 16 columns, no `tags` or
    /// `isAzureCreditEligible`, almost nothing quoted, long GUID-based ids,
    /// one resource id per resource, repeated day after day.
    Plain,
    /// Azure's full MCA cost and usage details export: its 65 columns in
    /// Azure's order and casing, `tags` and `additionalInfo` JSON, well
    /// over 1 KB a row.
    Wide,
}

/// How a usage file's columns are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// faktura's usage columns (with Azure's `tags` under `azure_mix`).
    Usage,
    /// The plain shape's 16 columns.
    Plain,
    /// Azure's 65 MCA columns.
    Wide,
}

/// How generated usage is shaped.
#[derive(Clone, Debug, PartialEq)]
pub struct UsageShape {
    /// Meters in the catalogue (at least the 15 base meters).
    pub catalogue: usize,
    /// The least and most meters one subscription uses.
    pub meters_per_subscription: (usize, usize),
    /// Zipf exponent of meter popularity (0: uniform).
    pub meter_skew: f64,
    /// Zipf exponent of subscriptions' row volumes (0: uniform).
    pub volume_skew: f64,
    /// Rows draw charge type and pricing model from Azure's mix and carry
    /// up to 8 fraction digits; otherwise each meter has its own charge
    /// type and pricing model, 1 row in 200 is a refund, and values have
    /// 4 (quantity), 6 (price) and 10 (cost) fraction digits.
    pub azure_mix: bool,
    /// The columns a file has.
    pub layout: Layout,
}

impl UsageShape {
    pub fn preset(preset: ShapePreset) -> UsageShape {
        match preset {
            ShapePreset::Classic => UsageShape {
                catalogue: 15,
                meters_per_subscription: (3, 10),
                meter_skew: 0.0,
                volume_skew: 0.0,
                azure_mix: false,
                layout: Layout::Usage,
            },
            ShapePreset::Azure => UsageShape {
                catalogue: 2_000,
                meters_per_subscription: (5, 40),
                meter_skew: 1.0,
                volume_skew: 0.5,
                azure_mix: true,
                layout: Layout::Usage,
            },
            ShapePreset::Plain => UsageShape {
                layout: Layout::Plain,
                ..UsageShape::preset(ShapePreset::Azure)
            },
            ShapePreset::Wide => UsageShape {
                layout: Layout::Wide,
                ..UsageShape::preset(ShapePreset::Azure)
            },
        }
    }

    /// Ids as Azure writes them: GUID-based billing accounts (~85
    /// characters), MCA-style profile ids.
    pub(super) fn long_ids(&self) -> bool {
        self.layout != Layout::Usage
    }

    /// Whether this is the classic shape, generated exactly as before the
    /// shapes existed (the same seed gives the same bytes).
    pub(super) fn is_classic(&self) -> bool {
        *self == UsageShape::preset(ShapePreset::Classic)
    }
}

impl Default for UsageShape {
    fn default() -> UsageShape {
        UsageShape::preset(ShapePreset::Classic)
    }
}

/// Parses `A-B` (or `N`) meters per subscription.
pub fn parse_range(text: &str) -> Result<(usize, usize), String> {
    let (low, high) = text.split_once('-').unwrap_or((text, text));
    let number = |t: &str| {
        t.trim()
            .parse::<usize>()
            .map_err(|_| format!("{text:?} is not a range like 5-40"))
    };
    let (low, high) = (number(low)?, number(high)?);
    if low == 0 || low > high {
        return Err(format!("{text:?}: need 1 <= A <= B in A-B"));
    }
    Ok((low, high))
}

/// Draws indexes 0..n with probability proportional to 1/(i+1)^s: a
/// cumulative table searched with one random number.
pub(super) struct Zipf {
    cumulative: Vec<u64>,
}

impl Zipf {
    pub(super) fn new(n: usize, s: f64) -> Zipf {
        let weights: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-s)).collect();
        let total: f64 = weights.iter().sum();
        let mut running = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                running += w;
                ((running / total) * u64::MAX as f64) as u64
            })
            .collect();
        Zipf { cumulative }
    }

    pub(super) fn draw(&self, rng: &mut Rng) -> usize {
        let u = rng.next();
        self.cumulative
            .partition_point(|&c| c < u)
            .min(self.cumulative.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_draws_favour_low_ranks_and_stay_in_range() {
        let zipf = Zipf::new(100, 1.0);
        let mut rng = Rng::new(1, 1);
        let mut counts = [0u32; 100];
        for _ in 0..100_000 {
            counts[zipf.draw(&mut rng)] += 1;
        }
        // 1/H(100) ~ 19 % of draws go to rank 0, 1/(2 H) ~ 9.6 % to rank 1.
        assert!((17_000..21_000).contains(&counts[0]), "{}", counts[0]);
        assert!((8_500..10_700).contains(&counts[1]), "{}", counts[1]);
        assert!(counts[99] > 0);
        let uniform = Zipf::new(4, 0.0);
        let mut seen = [0u32; 4];
        for _ in 0..4_000 {
            seen[uniform.draw(&mut rng)] += 1;
        }
        assert!(seen.iter().all(|&c| (850..1150).contains(&c)), "{seen:?}");
    }

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("5-40"), Ok((5, 40)));
        assert_eq!(parse_range("7"), Ok((7, 7)));
        assert!(parse_range("40-5").is_err());
        assert!(parse_range("0-3").is_err());
        assert!(parse_range("a-b").is_err());
    }
}
