//! The `faktura` binary: parse arguments, set up logging, call the library,
//! map the outcome to an exit status (see the README's table).

mod cli;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command, LogFormat, StageArgs};
use faktura::run::{ExitStatus, RunOptions, Stages};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let status = match cli.command {
        Command::Run(a) => run(a, Stages::All),
        Command::Ingest(a) => match a.shard.as_deref() {
            None => run(a.stage, Stages::Ingest),
            Some(text) => shard(a.stage, text),
        },
        Command::Aggregate(a) => run(a, Stages::Aggregate),
        Command::Decide(a) => run(a, Stages::Decide),
        Command::Render(a) => run(a, Stages::Render),
        Command::Send(a) => run_stage(a.stage, Stages::Send, a.resend),
        Command::Explain(a) => report(
            faktura::explain::explain(&a.out, &a.profile, a.period.as_deref(), a.on)
                .map_err(Into::into),
        ),
        Command::Preview(a) => preview(a),
        Command::Gen(a) => {
            let mut shape = faktura::synth::UsageShape::preset(a.shape.into());
            shape.catalogue = a.meters.unwrap_or(shape.catalogue);
            shape.meters_per_subscription = a
                .meters_per_subscription
                .unwrap_or(shape.meters_per_subscription);
            shape.meter_skew = a.meter_skew.unwrap_or(shape.meter_skew);
            shape.volume_skew = a.volume_skew.unwrap_or(shape.volume_skew);
            let opts = faktura::synth::GenOptions {
                out_dir: a.out,
                days: a.days,
                rows_per_day: a.rows_per_day,
                profiles: a.profiles,
                seed: a.seed,
                start: a.start,
                shape,
            };
            let written = faktura::synth::generate(&opts);
            report(
                written
                    .map(|rows| format!("wrote {rows} usage rows\n"))
                    .map_err(Into::into),
            )
        }
        Command::Config(a) => match faktura::run::load_inputs(&a.data, a.config.as_deref()) {
            Ok((_, settings, _)) => report(toml::to_string(&settings).map_err(Into::into)),
            Err(e) => fail(&e.into(), ExitStatus::BadInput),
        },
    };
    ExitCode::from(status as u8)
}

fn run(args: StageArgs, stages: Stages) -> ExitStatus {
    run_stage(args, stages, None)
}

fn options(args: StageArgs, stages: Stages, resend: Option<String>) -> RunOptions {
    RunOptions {
        resend,
        data_dir: args.data,
        out_dir: args.out,
        as_of: args
            .as_of
            .unwrap_or_else(|| chrono::Utc::now().date_naive()),
        config: args.config,
        stages,
    }
}

fn run_stage(args: StageArgs, stages: Stages, resend: Option<String>) -> ExitStatus {
    let opts = options(args, stages, resend);
    match faktura::run::run(&opts) {
        Ok(summary) => {
            eprint!("{}", summary.human());
            if summary.exit_code == 0 {
                ExitStatus::Done
            } else {
                ExitStatus::NeedsAttention
            }
        }
        Err(e) => {
            let status = e.exit_status();
            fail(&anyhow::Error::new(e), status)
        }
    }
}

fn shard(args: StageArgs, text: &str) -> ExitStatus {
    let Some(shard) = faktura::ingest::Shard::parse(text) else {
        eprintln!("error: --shard takes I/N with 0 <= I < N, not {text:?}");
        return ExitStatus::BadInput;
    };
    let opts = options(args, Stages::Ingest, None);
    match faktura::run::run_shard(&opts, shard) {
        Ok(report) => {
            let rows: u64 = report.days_ingested.iter().map(|d| d.rows_read).sum();
            eprintln!(
                "shard {}/{}: {} days ingested, {rows} rows read; manifest written",
                shard.index,
                shard.count,
                report.days_ingested.len()
            );
            ExitStatus::Done
        }
        Err(e) => {
            let status = e.exit_status();
            fail(&anyhow::Error::new(e), status)
        }
    }
}

fn preview(args: cli::PreviewArgs) -> ExitStatus {
    let opts = faktura::preview::PreviewOptions {
        data_dir: args.data,
        out_dir: args.out,
        profile: args.profile,
        as_of: args
            .as_of
            .unwrap_or_else(|| chrono::Utc::now().date_naive()),
        config: args.config,
    };
    match faktura::preview::preview(&opts) {
        Ok(estimates) => {
            match args.format {
                cli::PreviewFormat::Json => println!("{}", faktura::preview::to_json(&estimates)),
                cli::PreviewFormat::Text => print!(
                    "{}",
                    faktura::preview::to_text(&opts.profile, opts.as_of, &estimates)
                ),
            }
            ExitStatus::Done
        }
        Err(e) => {
            let status = if e.is_bad_input() {
                ExitStatus::BadInput
            } else {
                ExitStatus::Failed
            };
            fail(&anyhow::Error::new(e), status)
        }
    }
}

fn report(result: anyhow::Result<String>) -> ExitStatus {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitStatus::Done
        }
        Err(e) => fail(&e, ExitStatus::Failed),
    }
}

fn fail(error: &anyhow::Error, status: ExitStatus) -> ExitStatus {
    eprintln!("error: {error:#}");
    status
}

fn init_logging(cli: &Cli) {
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FAKTURA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}
