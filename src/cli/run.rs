//! `helico run`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clap::Args;

use super::{ExperimentArgs, OverrideArg, describe_drop, parse_override, report_invalid};
use helico::exit;
use helico::run::{launch, select, spawn};

#[derive(Args)]
pub struct RunArgs {
    /// The experiment TOML file.
    #[arg(required_unless_present = "resume")]
    pub experiment: Option<PathBuf>,
    /// Overrides, applied in order: key=value (a TOML value), slot=@variant, key+=value, ~key.
    #[arg(value_parser = parse_override)]
    pub overrides: Vec<OverrideArg>,
    /// A TOML file of overrides, applied after the experiment and before the environment.
    #[arg(long = "set-file", value_name = "FILE")]
    pub set_files: Vec<PathBuf>,
    /// Continue this unfinished run (a run directory or its id) from its latest checkpoint.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["experiment", "overrides", "set_files", "force"])]
    pub resume: Option<String>,
    /// Run even if a run with the same run key (config, code and data) already completed.
    #[arg(long)]
    pub force: bool,
    /// Where run directories go.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Train data-parallel on this many local GPUs, one process each (the global batch stays
    /// batch_size × grad_accum). Under torchrun or SLURM leave it out: their RANK/WORLD_SIZE
    /// (SLURM_PROCID/SLURM_NTASKS with MASTER_ADDR/MASTER_PORT) are read instead.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub gpus: Option<u16>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while the first is being handled ends the process at once.
        signal_hook::flag::register_conditional_shutdown(signal, exit::INTERRUPTED as i32, Arc::clone(&stop))?;
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let argv: Vec<String> = std::env::args().collect();
    if let Some(n) = a.gpus.filter(|&n| n > 1 && std::env::var_os("WORLD_SIZE").is_none()) {
        let args = without_gpus(&argv[1..]);
        let code = spawn::ranks(n as usize, &args)?;
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(exit::FAILURE)));
    }
    let launched = match (&a.resume, &a.experiment) {
        (Some(spec), _) => launch::resume(&select::find(&a.runs_dir, spec)?, &argv, &stop)?,
        (None, Some(experiment)) => {
            let exp = ExperimentArgs { experiment: experiment.clone(), overrides: a.overrides, set_files: a.set_files };
            let resolved = match exp.resolve() {
                Ok(r) => r,
                Err(e) => return report_invalid(e, a.json),
            };
            resolved.dropped().for_each(|d| eprintln!("note: {}", describe_drop(d)));
            launch::start(
                &resolved,
                &launch::Options { root: a.runs_dir, force: a.force, argv, ablation: trial_of_ablation()? },
                &stop,
            )?
        }
        (None, None) => unreachable!("clap requires an experiment unless --resume is given"),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&launched)?);
    }
    match launched {
        launch::Launched::Done { dir, summary } => {
            if !a.json {
                let eval = summary.final_eval_loss.map(|l| format!(", eval loss {l:.4}")).unwrap_or_default();
                println!("done: {} ({} steps{eval})", dir.display(), summary.steps);
            }
            Ok(ExitCode::SUCCESS)
        }
        launch::Launched::AlreadyDone { dir } => {
            if !a.json {
                println!(
                    "an identical run already completed: {}
(same config, code and data; pass --force to run it again)",
                    dir.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        launch::Launched::Interrupted { dir, step } => {
            eprintln!("interrupted at step {step}; continue with `helico run --resume {}`", dir.display());
            Ok(ExitCode::from(exit::INTERRUPTED))
        }
        // Rank 0 reports the run.
        launch::Launched::Follower { .. } => Ok(ExitCode::SUCCESS),
    }
}

/// The command line for each rank: the same, without `--gpus N` (the ranks must not spawn).
fn without_gpus(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if std::mem::take(&mut skip) {
            continue;
        }
        if a == "--gpus" {
            skip = true;
        } else if !a.starts_with("--gpus=") {
            out.push(a.clone());
        }
    }
    out
}

/// The ablation trial this run is, when `helico ablate --jobs N` started it.
fn trial_of_ablation() -> anyhow::Result<Option<helico::run::info::AblationRef>> {
    let var = helico::ablate::execute::TRIAL_ENV;
    match std::env::var(var) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("{var} is not a trial reference"))?)),
        Err(_) => Ok(None),
    }
}
