//! The command line (SPEC §7): clap derive types only, turned into each
//! stage's plain options. Stage modules never see clap.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "faktura",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("FAKTURA_COMMIT"), ")"),
    about = "Batch billing: usage CSVs to exact invoices, PDFs and e-mails"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less log output (warnings and errors only).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The nightly job: ingest, aggregate, decide, render, send.
    Run(StageArgs),
    /// Only ingest usage files into OUT/usage and OUT/rejects.
    Ingest(IngestArgs),
    /// Only aggregate usage into period lines (reports counts).
    Aggregate(StageArgs),
    /// Aggregate and decide: decisions, lines, invoices, numbers.
    Decide(StageArgs),
    /// Only render PDFs of issued invoices that have none yet.
    Render(StageArgs),
    /// Only deliver e-mails that are not sent yet.
    Send(SendArgs),
    /// Why a profile got an invoice or not, period by period (reads OUT only).
    Explain(ExplainArgs),
    /// What a profile's open periods would bill if they closed now: an
    /// estimate, read-only (no lock, nothing written, no number assigned).
    Preview(PreviewArgs),
    /// Write a synthetic data directory.
    Gen(GenArgs),
    /// Print the resolved configuration (without secrets).
    Config(ConfigArgs),
}

#[derive(Debug, Args)]
pub struct StageArgs {
    /// The data directory (SPEC §2).
    #[arg(long)]
    pub data: PathBuf,
    /// The output directory (SPEC §6), a local folder.
    #[arg(long, value_parser = local_folder)]
    pub out: PathBuf,
    /// The run date; default: today in UTC.
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// Configuration file; default: DATA/faktura.toml if it exists.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Be shard worker I of N (0-based): ingest every Nth day into OUT and
    /// write a manifest for the next `faktura run`. No lock, no ledger.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Send this invoice's e-mails again, to every recipient, deliberately.
    #[arg(long, value_name = "INVOICE")]
    pub resend: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[arg(long, value_parser = local_folder)]
    pub out: PathBuf,
    #[arg(long)]
    pub profile: String,
    /// Only the period starting in this month (YYYY-MM).
    #[arg(long)]
    pub period: Option<String>,
    /// The day to show the e-mail invoice preference on (YYYY-MM-DD);
    /// default: the as-of date of the last run.
    #[arg(long, value_name = "DATE")]
    pub on: Option<chrono::NaiveDate>,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The data directory: its reference files and credits (no usage file is read).
    #[arg(long)]
    pub data: PathBuf,
    /// The output directory whose ingested usage and ledger are read.
    #[arg(long, value_parser = local_folder)]
    pub out: PathBuf,
    #[arg(long)]
    pub profile: String,
    /// The day to estimate on; default: today in UTC.
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// Configuration file; default: DATA/faktura.toml if it exists.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: PreviewFormat,
}

/// `faktura preview --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PreviewFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    #[arg(long, default_value_t = 1000)]
    pub rows_per_day: u64,
    #[arg(long, default_value_t = 20)]
    pub profiles: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First usage day.
    #[arg(long, default_value = "2026-10-01")]
    pub start: NaiveDate,
    /// The usage's shape: `classic` (15 meters, 3-10 a subscription,
    /// uniform) or `azure` (a large tenant's month: 2,000 meters, 5-40 a
    /// subscription drawn Zipf-skewed, skewed volumes, Azure's charge and
    /// pricing mix, up to 8 fraction digits), `plain` (the azure month with
    /// 16 columns, long GUID ids, nothing quoted, one resource id per
    /// resource) or `wide` (the azure month as Azure's 65-column MCA
    /// export, with `tags` and `additionalInfo` JSON). The options below
    /// override it.
    #[arg(long, value_enum, default_value = "classic")]
    pub shape: Shape,
    /// Meters in the catalogue.
    #[arg(long, value_name = "N")]
    pub meters: Option<usize>,
    /// Meters each subscription uses, as A-B.
    #[arg(long, value_name = "A-B", value_parser = faktura::synth::parse_range)]
    pub meters_per_subscription: Option<(usize, usize)>,
    /// Zipf exponent of meter popularity (0: uniform).
    #[arg(long, value_name = "S")]
    pub meter_skew: Option<f64>,
    /// Zipf exponent of subscriptions' row volumes (0: uniform).
    #[arg(long, value_name = "S")]
    pub volume_skew: Option<f64>,
}

/// `faktura gen --shape`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Shape {
    Classic,
    Azure,
    Plain,
    Wide,
}

impl From<Shape> for faktura::synth::ShapePreset {
    fn from(shape: Shape) -> Self {
        match shape {
            Shape::Classic => faktura::synth::ShapePreset::Classic,
            Shape::Azure => faktura::synth::ShapePreset::Azure,
            Shape::Plain => faktura::synth::ShapePreset::Plain,
            Shape::Wide => faktura::synth::ShapePreset::Wide,
        }
    }
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `--out` as a path: OUT is always a local folder (SPEC §2: it holds the
/// ledger and the lock). A URL is refused (exit 2) rather than made a
/// local folder named `s3:`.
fn local_folder(out: &str) -> Result<PathBuf, String> {
    if faktura::remote::url_scheme(out).is_some() {
        return Err(format!(
            "OUT must be a local folder (it holds the ledger and the lock), not the URL `{out}`; \
             outputs are copied to a store with [publish] (SPEC §8)"
        ));
    }
    Ok(PathBuf::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_is_a_local_folder_never_a_url() {
        for url in [
            "s3://bucket/out",
            "az://container",
            "gs://b",
            "https://example.com/out",
        ] {
            let error = local_folder(url).unwrap_err();
            assert!(
                error.contains(url) && error.contains("local folder"),
                "{error}"
            );
        }
        for path in [
            "out",
            "/var/lib/faktura/out",
            "./a://b",
            "C:\\out",
            "weird name://",
        ] {
            assert_eq!(local_folder(path), Ok(PathBuf::from(path)), "{path}");
        }
    }
}
