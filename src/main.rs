//! The `helico` command line: the subcommands live in `cli/`, one file each; the work happens
//! in the library.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use helico::{config, exit};

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
    Run(cli::run::RunArgs),
    /// Sweep an experiment over axes of values (grid, zip groups, one-at-a-time), or tabulate a
    /// sweep with `helico ablate report ID`.
    Ablate(cli::ablate::AblateArgs),
    /// Validate an experiment and run one tiny forward/backward step on the CPU.
    Check(cli::check::CheckArgs),
    /// Show a key's resolved value, its default, and every layer that set it.
    Explain(cli::explain::ExplainArgs),
    /// Print the experiment JSON schema (draft-07), for editors and validators.
    Schema,
    /// List the registry's slots and variants, or show one variant's parameters.
    Registry(cli::registry::RegistryArgs),
    /// Sample sequences from a trained D3PM run, with validity, uniqueness and length metrics.
    Sample(cli::sample::SampleArgs),
    /// Compare runs key by key: config (with each value's source), variant switches, model,
    /// code, data, environment, and metrics with deltas judged against seed noise.
    Diff(cli::diff::DiffArgs),
    /// List runs with status, age, key metrics and overrides, filtered on config keys and status.
    Ls(cli::ls::LsArgs),
    /// Write an experiment file (extends + minimal overrides) that reproduces a run.
    Freeze(cli::freeze::FreezeArgs),
    /// Stage a finished run for the Hugging Face Hub (weights, resolved config, model card)
    /// and record the target repository in its links.json; no network is used.
    Publish(cli::publish::PublishArgs),
    /// Measure throughput: D3PM training against the PyTorch reference (GPU), structure
    /// parsing against gemmi, biotite and Biopython, the AF3 loader; results go to bench/results/.
    Bench(cli::bench::BenchArgs),
    /// Build the embedded demo corpus (SMILES from the CCD, chains from openfold3's test
    /// structures) from the set-up's registry packages.
    DemoData(cli::demo_data::DemoDataArgs),
    /// Validate inference inputs (Boltz YAML, AlphaFold 3 or Protenix JSON, mmCIF,
    /// --sequences) and print their entities.
    Inputs(cli::inputs::InputsArgs),
    /// Turn a directory of mmCIF/BinaryCIF files into the per-structure cache AF3 training
    /// reads, with a manifest of every entry and rejection; resumable.
    Preprocess(cli::preprocess::PreprocessArgs),
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
        Command::Run(a) => cli::run::run(a),
        Command::Ablate(a) => cli::ablate::ablate(a),
        Command::Check(a) => cli::check::check(a),
        Command::Explain(a) => cli::explain::explain(a),
        Command::Schema => cli::registry::schema(),
        Command::Registry(a) => cli::registry::registry(a),
        Command::Sample(a) => cli::sample::sample(a),
        Command::Diff(a) => cli::diff::diff(a),
        Command::Ls(a) => cli::ls::ls(a),
        Command::Freeze(a) => cli::freeze::freeze(a),
        Command::Publish(a) => cli::publish::publish(a),
        Command::DemoData(a) => cli::demo_data::demo_data(a),
        Command::Inputs(a) => cli::inputs::inputs(a),
        Command::Preprocess(a) => cli::preprocess::preprocess(a),
        Command::Bench(a) => cli::bench::bench(a),
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

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
