//! `helico ls`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use helico::config::schema::Schema;
use helico::run::ls::{self, Filter};

#[derive(Args)]
pub struct LsArgs {
    /// Filters, all of which must hold: KEY=VALUE, KEY!=VALUE, KEY<VALUE, KEY<=VALUE,
    /// KEY>VALUE, KEY>=VALUE on config keys (SLOT=@VARIANT for a variant), `status` and `name`.
    /// Quote the ones with < or > for the shell.
    pub filters: Vec<String>,
    /// Where run directories are.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Print the listing as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn ls(a: LsArgs) -> anyhow::Result<ExitCode> {
    let schema = Schema::experiment();
    let filters = a.filters.iter().map(|f| Filter::parse(f, &schema)).collect::<Result<Vec<_>, _>>()?;
    let listing = ls::list(&a.runs_dir, &filters);
    for w in &listing.warnings {
        eprintln!("warning: {w}");
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
    } else {
        print!("{}", ls::render(&listing));
    }
    Ok(ExitCode::SUCCESS)
}
