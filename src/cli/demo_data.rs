//! `helico demo-data`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use helico::data::demo::{DemoSources, build_demo_corpus};
use helico::data::prep::CcdCache;

#[derive(Args)]
pub struct DemoDataArgs {
    /// The CCD as BinaryCIF (the biotite wheel's components.bcif), read through the CCD cache.
    #[arg(long, default_value = "data/ccd/components.bcif")]
    pub ccd: PathBuf,
    /// Directory of mmCIF files to take protein and RNA chains from.
    #[arg(long, default_value = "data/openfold3/mmcifs")]
    pub mmcif_dir: PathBuf,
    /// Directory searched for protein alignments (.a3m, .sto) whose rows join the corpus.
    #[arg(long, default_value = "data/openfold3/alignments")]
    pub protein_msa: Vec<PathBuf>,
    /// Directory searched for RNA alignments (.a3m, .sto) whose rows join the corpus.
    #[arg(long, default_value = "data/rna_tools")]
    pub rna_msa: Vec<PathBuf>,
    /// Where to write smiles.smi, protein.fasta and rna.fasta.
    #[arg(long, default_value = "data/demo")]
    pub out: PathBuf,
    /// Print the counts as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn demo_data(a: DemoDataArgs) -> anyhow::Result<ExitCode> {
    let ccd = CcdCache::load_default(&a.ccd)
        .with_context(|| format!("cannot load the CCD {} (run `make setup` first)", a.ccd.display()))?
        .ccd;
    let sources = DemoSources { mmcif_dir: a.mmcif_dir, protein_alignments: a.protein_msa, rna_alignments: a.rna_msa };
    let corpus =
        build_demo_corpus(&ccd, &sources, &a.out).context("cannot build the demo corpus (run `make setup` first)")?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&corpus)?);
    } else {
        println!(
            "wrote {}: {} SMILES, {} protein and {} RNA sequences",
            a.out.display(),
            corpus.smiles,
            corpus.protein,
            corpus.rna
        );
    }
    Ok(ExitCode::SUCCESS)
}
