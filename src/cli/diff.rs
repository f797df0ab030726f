//! `helico diff`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use helico::config::schema::Schema;
use helico::run::compare::RunView;
use helico::run::diff::{self, render};
use helico::run::select;

#[derive(Args)]
pub struct DiffArgs {
    /// The runs to compare (a run directory, an id or a unique prefix of one, or name@latest);
    /// the first is the baseline the deltas are taken against.
    #[arg(required = true, num_args = 2.., value_name = "RUN")]
    pub runs: Vec<String>,
    /// Show every config key (equal and non-semantic ones too), every module and every metric.
    #[arg(long)]
    pub all: bool,
    /// Show the patch from the baseline's code to each other run's.
    #[arg(long)]
    pub code: bool,
    /// List the data files and data parameters that differ.
    #[arg(long)]
    pub data: bool,
    /// Print Markdown tables (for pull requests and notes).
    #[arg(long, conflicts_with = "json")]
    pub md: bool,
    /// Overlay the runs' metric curves in this image file.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Where run directories are; also where seed replicas are looked for.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn diff(a: DiffArgs) -> anyhow::Result<ExitCode> {
    let schema = Schema::experiment();
    let mut views = Vec::new();
    for spec in &a.runs {
        views.push(RunView::load(&select::find(&a.runs_dir, spec)?, &schema)?);
    }
    let opts = diff::Options { all: a.all, code: a.code, data: a.data, root: a.runs_dir.clone() };
    let d = diff::diff(&views, &opts, &schema)?;
    if let Some(file) = &a.plot {
        let series = diff::metrics::plot_series(&views, a.all);
        eprintln!(
            "note: --plot {}: {} curves collected, not drawn: drawing waits for the plot module",
            file.display(),
            series.len()
        );
    }
    match (a.json, a.md) {
        (true, _) => println!("{}", serde_json::to_string_pretty(&d)?),
        (false, true) => print!("{}", render::markdown(&d)),
        (false, false) => print!("{}", render::text(&d)),
    }
    Ok(ExitCode::SUCCESS)
}
