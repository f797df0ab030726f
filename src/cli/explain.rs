//! `helico explain`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::{ExperimentArgs, OverrideArg, parse_override, report_invalid};
use helico::config;
use helico::exit;

#[derive(Args)]
pub struct ExplainArgs {
    /// The experiment TOML file.
    pub experiment: PathBuf,
    /// The dotted key to explain (e.g. model.n_layers); without one, the whole resolved
    /// experiment is printed with each value's source.
    pub key: Option<String>,
    /// Overrides, as for `helico run`.
    #[arg(value_parser = parse_override)]
    pub overrides: Vec<OverrideArg>,
    #[arg(long = "set-file", value_name = "FILE")]
    pub set_files: Vec<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn explain(a: ExplainArgs) -> anyhow::Result<ExitCode> {
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
