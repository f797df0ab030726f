//! `helico preprocess`: structure files to the per-structure cache the AF3 loader reads.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::Context;
use clap::Args;

use helico::data::prep::{self, CcdCache, Job, Params, PrepError};
use helico::data::structure::{AF3_MAX_RESOLUTION, Filters};
use helico::exit::{self, BadInput};

#[derive(Args)]
pub struct PreprocessArgs {
    /// Directory searched (recursively) for .cif, .cif.gz, .bcif and .bcif.gz files.
    #[arg(long)]
    pub src: PathBuf,
    /// Output directory: structures/, manifest.jsonl and prep.json. A second run into the same
    /// directory only does the files that changed or were not done.
    #[arg(long)]
    pub out: PathBuf,
    /// The Chemical Component Dictionary (BinaryCIF or text).
    #[arg(long, default_value = "data/ccd/components.bcif")]
    pub ccd: PathBuf,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
    /// Reject structures worse than this resolution, Å, and those without one (`inf`: keep all).
    #[arg(long, default_value_t = AF3_MAX_RESOLUTION)]
    pub max_resolution: f32,
    /// Reject structures released after this day (YYYY-MM-DD; AF3 trains up to 2021-09-30).
    #[arg(long)]
    pub released_by: Option<chrono::NaiveDate>,
    /// Reject structures with more tokens than this.
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Build this biological assembly (e.g. 1) instead of the asymmetric unit.
    #[arg(long)]
    pub assembly: Option<String>,
    /// MSAs in the OpenFold layout, <DIR>/<entry>_<author chain>/*.{a3m,sto}[.gz], as a
    /// directory or a plain .tar; repeatable (searched in order). Stored in the cache files.
    #[arg(long, value_name = "DIR|TAR")]
    pub msa: Vec<PathBuf>,
    /// Print the summary as JSON (and draw no progress bar).
    #[arg(long)]
    pub json: bool,
}

pub fn preprocess(a: PreprocessArgs) -> anyhow::Result<ExitCode> {
    let stop = super::stop_on_signals()?;
    let CcdCache { ccd, blake3: ccd_blake3, .. } = CcdCache::load_default(&a.ccd)
        .with_context(|| format!("cannot load the CCD {} (run `make setup`)", a.ccd.display()))?;
    let filters = Filters {
        max_resolution: a.max_resolution.is_finite().then_some(a.max_resolution),
        released_by: a.released_by,
        max_tokens: a.max_tokens,
        ..Filters::default()
    };
    let params = Params { filters, assembly: a.assembly, msa: a.msa, ..Params::default() };
    let job = Job {
        src: &a.src,
        out: &a.out,
        ccd: &ccd,
        ccd_blake3: &ccd_blake3,
        params: &params,
        jobs: a.jobs,
        progress: !a.json,
        stop: &stop,
    };
    let summary = match prep::run(&job) {
        Err(e @ PrepError::Source { .. }) => return Err(BadInput(format!("{e}; pass --src DIR of mmCIF files")).into()),
        Err(e @ PrepError::Alignments { .. }) => {
            let hint = "pass --msa DIR or a plain .tar holding <entry>_<chain>/ alignment directories";
            return Err(BadInput(format!("{e}; {hint}")).into());
        }
        other => other?,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{}: {} structures kept, {} rejected, {} failed ({} processed in {:.1} s, {:.1}/s; {} up to date)",
            summary.out.display(),
            summary.ok,
            summary.rejected,
            summary.failed,
            summary.processed,
            summary.seconds,
            summary.structures_per_second,
            summary.up_to_date
        );
        for (label, n) in &summary.rejected_by {
            println!("  rejected, {label}: {n}");
        }
        for failure in &summary.failures {
            println!("  failed: {failure}");
        }
        if !params.msa.is_empty() {
            println!(
                "  alignments stored for {} entities; {} files left out",
                summary.msa_entities, summary.msa_problems
            );
            for problem in &summary.msa_problem_examples {
                println!("  alignment left out: {problem}");
            }
        }
        println!("dataset hash {} (every entry and reason: manifest.jsonl)", summary.dataset_hash);
    }
    if summary.interrupted || stop.load(Ordering::Relaxed) {
        eprintln!("helico: interrupted; run the same command again to finish the remaining files");
        return Ok(ExitCode::from(exit::INTERRUPTED));
    }
    Ok(ExitCode::SUCCESS)
}
