//! The subcommands, one file each: its arguments (doc comments are the help) and one thin
//! function that wires them to the library.

pub mod ablate;
pub mod bench;
pub mod bench_loader;
pub mod bench_parse;
pub mod check;
pub mod demo_data;
pub mod diff;
pub mod explain;
pub mod freeze;
pub mod inputs;
pub mod ls;
pub mod preprocess;
pub mod publish;
pub mod registry;
pub mod run;
pub mod sample;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Args;
use serde_json::json;

use helico::config::overrides::{self, Override};
use helico::config::{self, Inputs, Resolved};
use helico::exit;

/// An experiment file and the layers above it.
#[derive(Args)]
pub struct ExperimentArgs {
    /// The experiment TOML file.
    pub experiment: PathBuf,
    /// Overrides, applied in order: key=value (a TOML value), slot=@variant, key+=value, ~key.
    #[arg(value_parser = parse_override)]
    pub overrides: Vec<OverrideArg>,
    /// A TOML file of overrides, applied after the experiment and before the environment.
    #[arg(long = "set-file", value_name = "FILE")]
    pub set_files: Vec<PathBuf>,
}

#[derive(Clone)]
pub struct OverrideArg {
    pub raw: String,
    pub parsed: Override,
}

pub fn parse_override(raw: &str) -> Result<OverrideArg, String> {
    overrides::parse(raw).map(|parsed| OverrideArg { raw: raw.to_owned(), parsed })
}

impl ExperimentArgs {
    pub fn resolve(&self) -> Result<Resolved, config::error::Invalid> {
        let parsed: Vec<Override> = self.overrides.iter().map(|o| o.parsed.clone()).collect();
        let raw: Vec<String> = self.overrides.iter().map(|o| o.raw.clone()).collect();
        config::resolve(&Inputs::new(&self.experiment, &self.set_files, &parsed, &raw))
    }
}

/// Prints every problem (as JSON with `--json`) and returns the invalid-input exit code.
pub fn report_invalid(e: config::error::Invalid, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(&json!({ "ok": false, "problems": e.problems }))?);
        return Ok(ExitCode::from(exit::INVALID_INPUT));
    }
    Err(e.into())
}

pub fn describe_drop(e: &config::tree::Event) -> String {
    let config::tree::Op::Dropped { switched_to, by } = &e.op else { return String::new() };
    let value = e.value.as_ref().map(|v| format!(" = {v}")).unwrap_or_default();
    format!(
        "dropped `{}`{value} (set at {}): {by} switched it to @{switched_to}, which has no such key",
        e.key, e.source
    )
}

/// A flag SIGINT and SIGTERM set, so work can stop at a safe point; a second signal while the
/// first is being handled ends the process at once.
pub fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, exit::INTERRUPTED as i32, Arc::clone(&stop))?;
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    Ok(stop)
}
