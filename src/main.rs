//! The `helico` command line: one thin function per subcommand; the work happens in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use helico::config::overrides::{self, Override};
use helico::config::{self, Inputs, Resolved};
use helico::data::seqs::Domain;
use helico::exit;
use helico::models::d3pm::sampler::SamplerConfig;
use helico::registry::describe;
use helico::run::launch;

/// A declarative experiment engine for AlphaFold3-like models and sequence diffusion models.
#[derive(Parser)]
#[command(name = "helico", version, after_help = exit::HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train an experiment into a new run directory with a full snapshot, or resume a run.
    Run(RunArgs),
    /// Validate an experiment and run one tiny forward/backward step on the CPU.
    Check(CheckArgs),
    /// Show a key's resolved value, its default, and every layer that set it.
    Explain(ExplainArgs),
    /// Print the experiment JSON schema (draft-07), for editors and validators.
    Schema,
    /// List the registry's slots and variants, or show one variant's parameters.
    Registry(RegistryArgs),
    /// Sample sequences from a trained D3PM run, with validity, uniqueness and length metrics.
    Sample(SampleArgs),
    /// Build the embedded demo corpus (SMILES from the CCD, chains from openfold3's test
    /// structures) from the set-up's registry packages.
    DemoData(DemoDataArgs),
}

/// An experiment file and the layers above it.
#[derive(Args)]
struct ExperimentArgs {
    /// The experiment TOML file.
    experiment: PathBuf,
    /// Overrides, applied in order: key=value (a TOML value), slot=@variant, key+=value, ~key.
    #[arg(value_parser = parse_override)]
    overrides: Vec<OverrideArg>,
    /// A TOML file of overrides, applied after the experiment and before the environment.
    #[arg(long = "set-file", value_name = "FILE")]
    set_files: Vec<PathBuf>,
}

#[derive(Clone)]
struct OverrideArg {
    raw: String,
    parsed: Override,
}

fn parse_override(raw: &str) -> Result<OverrideArg, String> {
    overrides::parse(raw).map(|parsed| OverrideArg { raw: raw.to_owned(), parsed })
}

impl ExperimentArgs {
    fn resolve(&self) -> Result<Resolved, config::error::Invalid> {
        let parsed: Vec<Override> = self.overrides.iter().map(|o| o.parsed.clone()).collect();
        let raw: Vec<String> = self.overrides.iter().map(|o| o.raw.clone()).collect();
        config::resolve(&Inputs::new(&self.experiment, &self.set_files, &parsed, &raw))
    }
}

#[derive(Args)]
struct RunArgs {
    /// The experiment TOML file.
    #[arg(required_unless_present = "resume")]
    experiment: Option<PathBuf>,
    /// Overrides, applied in order: key=value (a TOML value), slot=@variant, key+=value, ~key.
    #[arg(value_parser = parse_override)]
    overrides: Vec<OverrideArg>,
    /// A TOML file of overrides, applied after the experiment and before the environment.
    #[arg(long = "set-file", value_name = "FILE")]
    set_files: Vec<PathBuf>,
    /// Continue this unfinished run (a run directory or its id) from its latest checkpoint.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["experiment", "overrides", "set_files", "force"])]
    resume: Option<String>,
    /// Run even if a run with the same run key (config, code and data) already completed.
    #[arg(long)]
    force: bool,
    /// Where run directories go.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    runs_dir: PathBuf,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SampleArgs {
    /// The run (its directory, or its id under --runs-dir).
    run: String,
    /// The language to sample: smiles, protein or rna.
    #[arg(long, value_parser = parse_domain)]
    domain: Domain,
    /// Number of sequences.
    #[arg(long, default_value_t = 8)]
    n: usize,
    /// Denoiser calls (1..=T; fewer is faster and coarser).
    #[arg(long, default_value_t = 100)]
    steps: i64,
    /// Softmax temperature of the token draws (0: most likely token).
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Seed of the lengths and draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Use the raw weights even when the run kept an EMA of them.
    #[arg(long)]
    no_ema: bool,
    /// Write the denoising trajectory to this file, one JSON line per step (for plots and
    /// animations).
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Where run directories are.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    runs_dir: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_domain(s: &str) -> Result<Domain, String> {
    Domain::ALL
        .into_iter()
        .find(|d| d.name() == s)
        .ok_or_else(|| format!("`{s}` is not a domain: use smiles, protein or rna"))
}

#[derive(Args)]
struct DemoDataArgs {
    /// The CCD as BinaryCIF (the biotite wheel's components.bcif).
    #[arg(long, default_value = "data/ccd/components.bcif")]
    ccd: PathBuf,
    /// Directory of mmCIF files to take protein and RNA chains from.
    #[arg(long, default_value = "data/openfold3/mmcifs")]
    mmcif_dir: PathBuf,
    /// Directory searched for protein alignments (.a3m, .sto) whose rows join the corpus.
    #[arg(long, default_value = "data/openfold3/alignments")]
    protein_msa: Vec<PathBuf>,
    /// Directory searched for RNA alignments (.a3m, .sto) whose rows join the corpus.
    #[arg(long, default_value = "data/rna_tools")]
    rna_msa: Vec<PathBuf>,
    /// Where to write smiles.smi, protein.fasta and rna.fasta.
    #[arg(long, default_value = "data/demo")]
    out: PathBuf,
    /// Print the counts as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    exp: ExperimentArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ExplainArgs {
    /// The experiment TOML file.
    experiment: PathBuf,
    /// The dotted key to explain (e.g. model.n_layers); without one, the whole resolved
    /// experiment is printed with each value's source.
    key: Option<String>,
    /// Overrides, as for `helico run`.
    #[arg(value_parser = parse_override)]
    overrides: Vec<OverrideArg>,
    #[arg(long = "set-file", value_name = "FILE")]
    set_files: Vec<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RegistryArgs {
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// List every slot and its variants.
    List {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a variant's parameters (types, defaults, docs), or every variant of a slot.
    Show {
        /// `slot.variant` (e.g. model.d3pm_lm, attention.sdpa) or a slot (e.g. schedule).
        what: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    // Die quietly when a reader closes the pipe (`helico explain … | head`), as Unix tools do,
    // instead of panicking on the next print.
    // SAFETY: resetting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run(a),
        Command::Check(a) => check(a),
        Command::Explain(a) => explain(a),
        Command::Schema => schema(),
        Command::Registry(a) => registry(a),
        Command::Sample(a) => sample(a),
        Command::DemoData(a) => demo_data(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Configuration problems render themselves, one block each; others get a prefix.
            match e.downcast_ref::<config::error::Invalid>() {
                Some(invalid) => eprintln!("{invalid}"),
                None => eprintln!("helico: {e:#}"),
            }
            ExitCode::from(exit::code_for(&e))
        }
    }
}

/// Prints every problem (as JSON with `--json`) and returns the invalid-input exit code.
fn report_invalid(e: config::error::Invalid, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(&json!({ "ok": false, "problems": e.problems }))?);
        return Ok(ExitCode::from(exit::INVALID_INPUT));
    }
    Err(e.into())
}

fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while the first is being handled ends the process at once.
        signal_hook::flag::register_conditional_shutdown(signal, exit::INTERRUPTED as i32, Arc::clone(&stop))?;
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let argv: Vec<String> = std::env::args().collect();
    let launched = match (&a.resume, &a.experiment) {
        (Some(spec), _) => launch::resume(&launch::find_run(&a.runs_dir, spec)?, &argv, &stop)?,
        (None, Some(experiment)) => {
            let exp = ExperimentArgs { experiment: experiment.clone(), overrides: a.overrides, set_files: a.set_files };
            let resolved = match exp.resolve() {
                Ok(r) => r,
                Err(e) => return report_invalid(e, a.json),
            };
            resolved.dropped().for_each(|d| eprintln!("note: {}", describe_drop(d)));
            launch::start(&resolved, &launch::Options { root: a.runs_dir, force: a.force, argv }, &stop)?
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
    }
}

fn sample(a: SampleArgs) -> anyhow::Result<ExitCode> {
    let dir = launch::find_run(&a.runs_dir, &a.run)?;
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

fn demo_data(a: DemoDataArgs) -> anyhow::Result<ExitCode> {
    let sources = helico::data::demo::DemoSources {
        ccd: a.ccd,
        mmcif_dir: a.mmcif_dir,
        protein_alignments: a.protein_msa,
        rna_alignments: a.rna_msa,
    };
    let corpus = helico::data::demo::build_demo_corpus(&sources, &a.out)
        .context("cannot build the demo corpus (run `make setup` first)")?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&corpus)?);
    } else {
        println!(
            "wrote {}: {} SMILES, {} protein and {} RNA sequences",
            a.out.display(),
            corpus.smiles,
            corpus.protein,
            corpus.rna
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let resolved = match a.exp.resolve() {
        Ok(r) => r,
        Err(e) => return report_invalid(e, a.json),
    };
    let dropped: Vec<String> = resolved.dropped().map(describe_drop).collect();
    for d in dropped.iter().filter(|_| !a.json) {
        eprintln!("note: {d}");
    }
    let step = launch::check(&resolved.experiment)?;
    if a.json {
        let out = json!({ "ok": true, "name": resolved.experiment.name, "config_hash": resolved.config_hash, "dropped": dropped, "step": step });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "ok: {} is valid (config hash {}); one forward/backward step on the CPU: {} parameters, loss {:.4} on a {}-token window, {:.1} s",
            a.exp.experiment.display(),
            &resolved.config_hash[..12],
            step.parameters,
            step.loss,
            step.window,
            step.seconds
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_drop(e: &config::tree::Event) -> String {
    let config::tree::Op::Dropped { switched_to, by } = &e.op else { return String::new() };
    let value = e.value.as_ref().map(|v| format!(" = {v}")).unwrap_or_default();
    format!(
        "dropped `{}`{value} (set at {}): {by} switched it to @{switched_to}, which has no such key",
        e.key, e.source
    )
}

fn explain(a: ExplainArgs) -> anyhow::Result<ExitCode> {
    let mut overrides = a.overrides;
    // `explain EXP train.steps=5` has no key: the first word is an override.
    let key = match a.key {
        Some(k) if k.contains('=') || k.starts_with('~') => {
            overrides.insert(0, parse_override(&k).map_err(exit::BadInput)?);
            None
        }
        k => k,
    };
    let exp = ExperimentArgs { experiment: a.experiment, overrides, set_files: a.set_files };
    let resolved = match exp.resolve() {
        Ok(r) => r,
        Err(e) => return report_invalid(e, a.json),
    };
    let Some(key) = key else {
        if a.json {
            let out = json!({ "config": resolved.table, "provenance": resolved.provenance, "config_hash": resolved.config_hash });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            print!("{}", resolved.to_annotated_toml());
        }
        return Ok(ExitCode::SUCCESS);
    };
    let ex = match resolved.explain(&key) {
        Ok(ex) => ex,
        Err(near) => {
            let hint = near.first().map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
            return Err(exit::BadInput(format!(
                "no key `{key}` in the resolved experiment{hint} (`helico schema` lists every key)"
            ))
            .into());
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&ex)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} = {}", ex.key, ex.value);
    if let Some(doc) = &ex.doc {
        println!("  {doc}");
    }
    if let Some(d) = &ex.default {
        println!("  default: {d}");
    }
    println!("  from: {}", ex.source);
    for e in &ex.history {
        let value = e.value.as_ref().map(|v| format!(" {v}")).unwrap_or_default();
        let op = match &e.op {
            config::tree::Op::Set => "set".to_owned(),
            config::tree::Op::Append => "append".to_owned(),
            config::tree::Op::Reset => "reset".to_owned(),
            config::tree::Op::Dropped { switched_to, by } => format!("dropped (switch to @{switched_to} by {by})"),
        };
        println!("  {:<40} {} {op}{value}", e.source.to_string(), e.key);
    }
    Ok(ExitCode::SUCCESS)
}

fn schema() -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(&config::schema::experiment_schema())?);
    Ok(ExitCode::SUCCESS)
}

fn registry(a: RegistryArgs) -> anyhow::Result<ExitCode> {
    let slots = describe::slots(&config::schema::Schema::experiment());
    let (what, json) = match a.command {
        RegistryCommand::List { json: true } => {
            println!("{}", serde_json::to_string_pretty(&slots)?);
            return Ok(ExitCode::SUCCESS);
        }
        RegistryCommand::List { json: false } => {
            print!("{}", describe::render_list(&slots));
            return Ok(ExitCode::SUCCESS);
        }
        RegistryCommand::Show { what, json } => (what, json),
    };
    let (slot, variant) = describe::find(&slots, &what).map_err(exit::BadInput)?;
    if json {
        let out = match variant {
            Some(v) => serde_json::to_value(v)?,
            None => serde_json::to_value(slot)?,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", describe::render_show(slot, variant));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
