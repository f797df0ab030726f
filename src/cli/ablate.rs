//! `helico ablate EXP axis...` and `helico ablate report ID`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use helico::ablate::{self, AblateError, execute, spec};
use helico::exit;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true, after_help = AFTER_HELP)]
pub struct AblateArgs {
    #[command(subcommand)]
    pub command: Option<AblateCommand>,
    /// The base experiment TOML file, or an ablation file (ablations/*.toml) that names one.
    #[arg(required_unless_present = "resume")]
    pub experiment: Option<PathBuf>,
    /// Axes, multiplied: key=VALUES (see below). A `seed` axis replicates every trial.
    pub axes: Vec<String>,
    /// Keys that vary together, as one axis: 'name: k1=a,b; k2=c,d' (members of equal length).
    #[arg(long = "zip", value_name = "GROUP")]
    pub zips: Vec<String>,
    /// How axes combine [default: grid, or the ablation file's mode].
    #[arg(long, value_enum)]
    pub mode: Option<spec::Mode>,
    /// Print the trial table (axis values, config hash, plan, estimated device time); run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Trials at once, as child `helico run` processes; 1 runs them one after another in this
    /// process.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// Go on after a failed trial; the summary lists failures [default].
    #[arg(long, overrides_with = "fail_fast")]
    pub keep_going: bool,
    /// Stop at the first failed trial; running trials are interrupted and stay resumable.
    #[arg(long, overrides_with = "keep_going")]
    pub fail_fast: bool,
    /// Continue this ablation (an id, a unique prefix, <name>@latest or latest): run only its
    /// trials that are not done. With an experiment and axes, they must equal the original spec.
    #[arg(long, value_name = "ID")]
    pub resume: Option<String>,
    /// Refuse to start when the trials to run are estimated above N device-hours (GPU-hours on
    /// a GPU, CPU-hours without one), or cannot be estimated.
    #[arg(long, value_name = "N")]
    pub max_gpu_hours: Option<f64>,
    /// Where run directories go; ablations are kept under <DIR>/_ablations.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Print the plan or the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

const AFTER_HELP: &str = "Axis values: a,b,c (TOML values) · 0..4 · 0..=4 · a..b:step · linspace(a,b,n) · logspace(a,b,n) (ends are values, not exponents) · pow2(5..=8) · @v1,@v2 (registry variants) · @* (every variant of the slot).

Exit codes: 0 every trial has a completed run · 1 a trial failed · 2 invalid input · 130 interrupted (continue with --resume)";

#[derive(Subcommand)]
pub enum AblateCommand {
    /// Tabulate an ablation: axis values × metrics (mean ± sd over seeds, links to runs), also
    /// written as report.md and report.csv into the ablation's directory.
    Report(ReportArgs),
}

#[derive(Args)]
pub struct ReportArgs {
    /// The ablation: its id, a unique prefix, <name>@latest or latest.
    pub id: String,
    /// Where run directories go.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Print the table as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn ablate(a: AblateArgs) -> anyhow::Result<ExitCode> {
    if let Some(AblateCommand::Report(r)) = a.command {
        return report(r);
    }
    let env = std::env::vars().filter(|(k, _)| k.starts_with(helico::config::layers::ENV_PREFIX)).collect();
    let request =
        a.experiment.as_deref().map(|path| spec::Request { path, axes: &a.axes, zips: &a.zips, mode: a.mode, env });
    let prepared = match ablate::prepare(request.as_ref(), a.resume.as_deref(), &a.runs_dir) {
        Ok(p) => p,
        Err(e) => return refuse(e, a.json),
    };
    prepared.notes.iter().for_each(|n| eprintln!("note: {n}"));
    if let Some(Err(e)) = a.max_gpu_hours.map(|max| prepared.planned.check_budget(max)) {
        return refuse(e.into(), a.json);
    }
    if a.dry_run {
        let p = &prepared.planned;
        let json = json!({ "spec": p.spec, "spec_hash": p.spec.hash(), "trials": p.trials, "totals": p.totals() });
        if a.json {
            println!("{}", serde_json::to_string_pretty(&json)?)
        } else {
            print!("{}", p.table())
        }
        return Ok(ExitCode::SUCCESS);
    }
    let stop = super::stop_on_signals()?;
    let exe = std::env::current_exe()?;
    let settings = execute::Settings { root: a.runs_dir.clone(), jobs: a.jobs.into(), fail_fast: a.fail_fast, exe };
    let summary = ablate::run(prepared, &a.runs_dir, std::env::args().collect(), &settings, &stop)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?)
    } else {
        print!("{}", summary.text())
    }
    Ok(ExitCode::from(summary.exit_code()))
}

fn report(a: ReportArgs) -> anyhow::Result<ExitCode> {
    let dir = match ablate::store::find(&a.runs_dir, &a.id) {
        Ok(d) => d,
        Err(e) => return refuse(e.into(), a.json),
    };
    let report = ablate::report::build(&a.runs_dir, &dir)?;
    report.write(&dir)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let (md, csv) = (dir.join("report.md"), dir.join("report.csv"));
        println!("{}\nwritten: {}, {}", report.markdown(), md.display(), csv.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Input problems: printed (as JSON with `--json`), exit code 2; other errors pass through.
fn refuse(e: anyhow::Error, json: bool) -> anyhow::Result<ExitCode> {
    let Some(problem) = e.downcast_ref::<AblateError>() else { return Err(e) };
    match (json, problem) {
        (true, AblateError::Invalid { problems }) => {
            println!("{}", serde_json::to_string_pretty(&json!({ "ok": false, "problems": problems }))?)
        }
        (true, other) => {
            println!("{}", serde_json::to_string_pretty(&json!({ "ok": false, "error": other.to_string() }))?)
        }
        (false, AblateError::Invalid { .. }) => eprintln!("{problem}"),
        (false, other) => eprintln!("helico: {other}"),
    }
    Ok(ExitCode::from(exit::INVALID_INPUT))
}
