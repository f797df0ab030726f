//! `helico publish`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use helico::run::{publish, select};

#[derive(Args)]
pub struct PublishArgs {
    /// The finished run (its directory, or its id under --runs-dir).
    pub run: String,
    /// The Hugging Face model repository to publish to, `owner/name`.
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: String,
    /// The branch (or tag) the upload should go to.
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// Where to stage the upload folder (default: `<run>/publish`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Where run directories are.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Print what was staged as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn publish(a: PublishArgs) -> anyhow::Result<ExitCode> {
    let dir = select::find(&a.runs_dir, &a.run)?;
    let staged = publish::stage(&dir, &a.repo, &a.revision, a.out.as_deref())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&staged)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "staged {} files ({} weights of step {}) in {}\nupload from a machine with network:\n  {}\nthen it is at {}",
        staged.files.len(),
        staged.weights,
        staged.checkpoint_step,
        staged.dir.display(),
        staged.upload,
        staged.url
    );
    Ok(ExitCode::SUCCESS)
}
