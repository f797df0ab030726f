//! `helico bench parse`: parse throughput against gemmi, biotite and Biopython, and
//! preprocessing scaling; writes JSON and markdown results with the command that made them.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::Context;
use clap::Args;

use helico::bench::parse::{self, ParseBench};
use helico::exit::BadInput;

#[derive(Args)]
pub struct ParseBenchArgs {
    /// Directory of .cif files to parse (all of them, not recursively).
    #[arg(long, default_value = "data/openfold3/mmcifs")]
    pub files: PathBuf,
    /// Seconds each single-core measurement runs at least.
    #[arg(long, default_value_t = 3.0)]
    pub min_seconds: f64,
    /// Copies of the files preprocessed in the scaling measurement.
    #[arg(long, default_value_t = 4)]
    pub copies: usize,
    /// Worker counts of the scaling measurement.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub jobs: Vec<usize>,
    /// The CCD (for completion and preprocessing), loaded through the CCD cache before any timing.
    #[arg(long, default_value = "data/ccd/components.bcif")]
    pub ccd: PathBuf,
    /// The Python with gemmi, biotite and Biopython.
    #[arg(long, default_value = ".venv/bin/python")]
    pub python: PathBuf,
    /// Where `<date>-parse.json` and `<date>-parse.md` go.
    #[arg(long, default_value = "bench/results")]
    pub out: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn parse(a: ParseBenchArgs) -> anyhow::Result<ExitCode> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&a.files)
        .map_err(|e| BadInput(format!("--files {}: {e}", a.files.display())))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cif"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(BadInput(format!("--files {}: no .cif files (run `make setup`)", a.files.display())).into());
    }
    let bench = ParseBench {
        files,
        min_seconds: a.min_seconds,
        script: PathBuf::from("bench/parse_python.py"),
        python: a.python,
        ccd: a.ccd,
        copies: a.copies,
        jobs: a.jobs,
    };
    let report = parse::run(&bench)?;
    let args = std::env::args().skip(1).map(|s| if s.contains(' ') { format!("{s:?}") } else { s });
    let command: Vec<String> = std::iter::once("helico".to_owned()).chain(args).collect();
    let commit = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .map_or_else(|| "unknown".to_owned(), |o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let date = chrono::Local::now().format("%Y%m%d").to_string();
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let json = serde_json::json!({ "command": command.join(" "), "commit": commit, "date": date, "report": report });
    let base = a.out.join(format!("{date}-parse"));
    std::fs::write(base.with_extension("json"), serde_json::to_string_pretty(&json)? + "\n")?;
    let md = parse::markdown(&report, &command.join(" "), &commit, &date);
    std::fs::write(base.with_extension("md"), &md)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print!("{md}");
        println!("\nwrote {}.json and .md", base.display());
    }
    Ok(ExitCode::SUCCESS)
}
