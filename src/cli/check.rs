//! `helico check`.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::{ExperimentArgs, describe_drop, report_invalid};
use helico::run::launch;

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
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
