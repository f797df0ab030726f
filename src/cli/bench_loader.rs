//! `helico bench loader`: AF3 loader throughput over a preprocessed directory; writes
//! `<date>-loader.json` and `.md` with the command that made them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use helico::bench::loader::{self, LoaderBench};
use helico::data::prep::journal;
use helico::data::prep::loader::{Af3DataConfig, PadMode, Sampler};
use helico::exit::BadInput;

#[derive(Args)]
pub struct LoaderBenchArgs {
    /// A directory made by `helico preprocess --out DIR`.
    pub dir: PathBuf,
    /// Tokens per example at most.
    #[arg(long, default_value_t = 384, value_parser = clap::value_parser!(i64).range(1..))]
    pub crop: i64,
    /// Examples per batch.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..))]
    pub batch: i64,
    /// Loader threads (0: batches are made by the timing thread).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i64).range(0..))]
    pub workers: i64,
    /// Batches to time, after a first one that fills the pipeline; epochs follow one another.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    pub batches: u64,
    /// How examples are drawn.
    #[arg(long, value_enum, default_value_t = SamplerArg::Af3Weighted)]
    pub sampler: SamplerArg,
    /// What batches are padded to: the batch's largest example, or the crop size and 24 atoms per token.
    #[arg(long, value_enum, default_value_t = PadArg::BatchMax)]
    pub pad: PadArg,
    /// Seed of the draws, crops and conformer augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the JSON and markdown reports go.
    #[arg(long, value_name = "DIR", default_value = "bench/results")]
    pub out: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SamplerArg {
    Uniform,
    Af3Weighted,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PadArg {
    BatchMax,
    Fixed,
}

pub fn bench_loader(a: LoaderBenchArgs) -> anyhow::Result<ExitCode> {
    journal::read_summary(&a.dir).map_err(|e| BadInput(e.to_string()))?;
    let data = Af3DataConfig {
        dir: a.dir.to_string_lossy().into_owned(),
        crop_size: a.crop,
        batch_size: a.batch,
        workers: a.workers,
        sampler: match a.sampler {
            SamplerArg::Uniform => Sampler::Uniform,
            SamplerArg::Af3Weighted => Sampler::Af3Weighted,
        },
        pad: match a.pad {
            PadArg::BatchMax => PadMode::BatchMax,
            PadArg::Fixed => PadMode::Fixed,
        },
        ..Af3DataConfig::default()
    };
    let args = std::env::args().skip(1).map(|s| if s.contains(' ') { format!("{s:?}") } else { s });
    let command = std::iter::once("helico".to_owned()).chain(args).collect::<Vec<_>>().join(" ");
    let bench = LoaderBench { data, batches: a.batches as usize, seed: a.seed, command };
    let report = loader::run(&bench)?;
    let written = report.write(&a.out)?;
    super::bench::print_report(&report, &report.markdown(), written, a.json)
}
