//! `helico sample`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use helico::data::seqs::Domain;
use helico::models::d3pm::sampler::SamplerConfig;
use helico::run::select;

#[derive(Args)]
pub struct SampleArgs {
    /// The run (its directory, or its id under --runs-dir).
    pub run: String,
    /// The language to sample: smiles, protein or rna.
    #[arg(long, value_parser = parse_domain)]
    pub domain: Domain,
    /// Number of sequences.
    #[arg(long, default_value_t = 8)]
    pub n: usize,
    /// Denoiser calls (1..=T; fewer is faster and coarser).
    #[arg(long, default_value_t = 100)]
    pub steps: i64,
    /// Softmax temperature of the token draws (0: most likely token).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Seed of the lengths and draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use the raw weights even when the run kept an EMA of them.
    #[arg(long)]
    pub no_ema: bool,
    /// Write the denoising trajectory to this file, one JSON line per step (for plots and
    /// animations).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Where run directories are.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_domain(s: &str) -> Result<Domain, String> {
    Domain::ALL
        .into_iter()
        .find(|d| d.name() == s)
        .ok_or_else(|| format!("`{s}` is not a domain: use smiles, protein or rna"))
}

pub fn sample(a: SampleArgs) -> anyhow::Result<ExitCode> {
    let dir = select::find(&a.runs_dir, &a.run)?;
    let sampler = SamplerConfig { steps: a.steps, temperature: a.temperature };
    let req = helico::run::sample::Request {
        domain: a.domain,
        n: a.n,
        sampler,
        seed: a.seed,
        ema: !a.no_ema,
        trace: a.trace,
    };
    let report = helico::run::sample::sample(&dir, &req)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    for (i, s) in report.samples.iter().enumerate() {
        println!(">sample_{i}\n{s}");
    }
    let m = &report.metrics;
    eprintln!(
        "{} {} samples from {} (step {}, {} weights): validity {:.2}, uniqueness {:.2}, length {:.1} ± {:.1} (training {:.1} ± {:.1}); saved to {}",
        report.samples.len(),
        report.domain,
        report.run,
        report.checkpoint_step,
        report.weights,
        m.validity,
        m.uniqueness,
        m.length.mean,
        m.length.sd,
        m.training_length.mean,
        m.training_length.sd,
        report.saved.display()
    );
    Ok(ExitCode::SUCCESS)
}
