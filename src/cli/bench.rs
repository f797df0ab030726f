//! `helico bench`: the benchmarks, one subcommand each (`bench d3pm` here, `bench parse` in
//! bench_parse.rs).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use super::{ExperimentArgs, describe_drop, report_invalid};
use helico::bench::d3pm::{self, Options, TorchOptions};
use helico::registry::attention::Attention;

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchCommand,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// D3PM training throughput (non-padding tokens/s, MFU) per attention kernel, beside the
    /// PyTorch model of bench/d3pm_torch.py (eager and torch.compile) on the same batches;
    /// writes <date>-d3pm-<gpu>.json and .md.
    D3pm(D3pmBenchArgs),
    /// AF3 loader throughput over a preprocessed directory (examples/s; read, crop, features,
    /// collate per example); writes <date>-loader.json and .md.
    Loader(super::bench_loader::LoaderBenchArgs),
    /// Structure parsing on one core against gemmi, biotite and Biopython, preprocessing with
    /// several workers, and reading the cache back; writes <date>-parse.json and .md.
    Parse(super::bench_parse::ParseBenchArgs),
}

#[derive(Args)]
pub struct D3pmBenchArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
    /// Timed optimizer steps per variant.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed optimizer steps first (torch.compile compiles during these).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// helico's attention kernels to time.
    #[arg(long, value_delimiter = ',', default_value = "flash_varlen,efficient_varlen,sdpa")]
    pub kernels: Vec<Kernel>,
    /// PyTorch variants, mode-kernel: modes eager, compile; kernels sdpa (dense mask), varlen.
    #[arg(long, value_delimiter = ',', default_value = "eager-sdpa,eager-varlen,compile-sdpa,compile-varlen", value_parser = parse_variant)]
    pub torch_variants: Vec<String>,
    /// Leave the PyTorch side out.
    #[arg(long)]
    pub no_torch: bool,
    /// The Python interpreter with torch.
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
    /// The PyTorch implementation.
    #[arg(long, default_value = "bench/d3pm_torch.py")]
    pub script: PathBuf,
    /// Micro-batches handed to PyTorch (it cycles them; helico reads its data stream).
    #[arg(long, default_value_t = 32)]
    pub pool: usize,
    /// Profile one more step of each helico kernel and report GPU time by kernel (GPU only).
    #[arg(long)]
    pub profile: bool,
    /// Where the JSON and markdown reports go.
    #[arg(long, value_name = "DIR", default_value = "bench/results")]
    pub out: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Kernel {
    Math,
    Sdpa,
    #[value(name = "flash_varlen")]
    FlashVarlen,
    #[value(name = "efficient_varlen")]
    EfficientVarlen,
}

fn parse_variant(raw: &str) -> Result<String, String> {
    match raw.split_once('-') {
        Some(("eager" | "compile", "sdpa" | "varlen")) => Ok(raw.to_owned()),
        _ => Err(format!("\"{raw}\" is not mode-kernel with mode eager or compile and kernel sdpa or varlen")),
    }
}

pub fn bench(a: BenchArgs) -> anyhow::Result<ExitCode> {
    match a.what {
        BenchCommand::D3pm(a) => d3pm(a),
        BenchCommand::Parse(a) => super::bench_parse::parse(a),
        BenchCommand::Loader(a) => super::bench_loader::bench_loader(a),
    }
}

fn d3pm(a: D3pmBenchArgs) -> anyhow::Result<ExitCode> {
    let resolved = match a.exp.resolve() {
        Ok(r) => r,
        Err(e) => return report_invalid(e, a.json),
    };
    resolved.dropped().for_each(|d| eprintln!("note: {}", describe_drop(d)));
    let kernels = a
        .kernels
        .iter()
        .map(|k| match k {
            Kernel::Math => Attention::Math(Default::default()),
            Kernel::Sdpa => Attention::Sdpa(Default::default()),
            Kernel::FlashVarlen => Attention::FlashVarlen(Default::default()),
            Kernel::EfficientVarlen => Attention::EfficientVarlen(Default::default()),
        })
        .collect();
    let torch =
        (!a.no_torch).then_some(TorchOptions { python: a.python, script: a.script, variants: a.torch_variants });
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let opts = Options { steps: a.steps, warmup: a.warmup, kernels, torch, pool: a.pool, profile: a.profile, command };
    let report = d3pm::run(&resolved.experiment, &a.exp.experiment.display().to_string(), &opts)?;
    let written = report.write(&a.out)?;
    print_report(&report, &report.markdown(), written, a.json)
}

/// Prints a written benchmark report: its JSON with `--json`, else its markdown and where the
/// two files went.
pub(super) fn print_report(
    report: &impl serde::Serialize,
    markdown: &str,
    (json, md): (std::path::PathBuf, std::path::PathBuf),
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    if as_json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{markdown}");
        println!("\nwrote {} and {}", json.display(), md.display());
    }
    Ok(ExitCode::SUCCESS)
}
