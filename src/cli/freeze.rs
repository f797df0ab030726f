//! `helico freeze`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use helico::run::{dir, freeze, select};

#[derive(Args)]
pub struct FreezeArgs {
    /// The run (a run directory, an id or a unique prefix of one, or name@latest).
    pub run: String,
    /// Where to write the experiment file [default: experiments/<name>-<run directory>.toml].
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Where run directories are.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn freeze(a: FreezeArgs) -> anyhow::Result<ExitCode> {
    let run = select::find(&a.runs_dir, &a.run)?;
    let output =
        a.output.unwrap_or_else(|| PathBuf::from(format!("experiments/{}.toml", dir::id_of(&run).replace('/', "-"))));
    let frozen = freeze::freeze(&run, &output, a.force)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&frozen)?);
        return Ok(ExitCode::SUCCESS);
    }
    match (&frozen.extends, &frozen.note) {
        (Some(base), _) => println!(
            "wrote {}: extends {base} and sets {} key(s): {}",
            frozen.path.display(),
            frozen.keys.len(),
            frozen.keys.join(", ")
        ),
        (None, note) => println!(
            "wrote {}: the whole resolved config ({})",
            frozen.path.display(),
            note.as_deref().unwrap_or("no experiment file")
        ),
    }
    Ok(ExitCode::SUCCESS)
}
