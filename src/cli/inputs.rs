//! `helico inputs check`: validate an inference input in any format and print the
//! normalised entities, so inputs can be fixed before a prediction is queued.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use helico::data::inputs::{self, InferenceInput, InputError, Ligand, Molecule, TextSource};
use helico::data::prep::CcdCache;
use helico::exit::{self, BadInput};

#[derive(Args)]
pub struct InputsArgs {
    #[command(subcommand)]
    pub command: InputsCommand,
}

#[derive(Subcommand)]
pub enum InputsCommand {
    /// Validate an input (Boltz YAML, AlphaFold 3 or Protenix JSON, mmCIF, or --sequences)
    /// and print its entities; every problem is reported with file, line and field.
    Check(CheckArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// The input file: .yaml/.yml (Boltz), .json (AlphaFold 3 or Protenix), .cif/.mmcif/.bcif
    /// (optionally .gz).
    #[arg(required_unless_present = "sequences", conflicts_with = "sequences")]
    pub file: Option<PathBuf>,
    /// Chains inline instead of a file: "A:MKVL…,B:ACGU,C:ccd:ATP,D:smiles:CCO" (a bare
    /// sequence's kind is inferred; write A:protein:…, A:rna:… or A:dna:… to say it).
    #[arg(long)]
    pub sequences: Option<String>,
    /// A Chemical Component Dictionary (components.bcif or .cif) to check CCD codes and bonded
    /// atom names against.
    #[arg(long, value_name = "FILE")]
    pub ccd: Option<PathBuf>,
    /// Print the normalised inputs, or the problems, as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn inputs(a: InputsArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        InputsCommand::Check(c) => check(c),
    }
}

fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let ccd = match &a.ccd {
        Some(path) => {
            Some(CcdCache::load_default(path).map_err(|e| BadInput(format!("cannot load the CCD: {e}")))?.ccd)
        }
        None => None,
    };
    let result = match (&a.file, &a.sequences) {
        (Some(path), _) => inputs::read(path, ccd.as_ref()),
        (None, Some(spec)) => inputs::from_sequences(spec, ccd.as_ref()).map(|input| vec![input]),
        (None, None) => return Err(BadInput("give an input file or --sequences".into()).into()),
    };
    let jobs = match (result, a.json) {
        (Ok(jobs), _) => jobs,
        (Err(InputError::Invalid(problems)), true) => {
            println!("{}", serde_json::to_string_pretty(&json!({ "ok": false, "problems": problems }))?);
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
        (Err(e), true) => {
            println!("{}", serde_json::to_string_pretty(&json!({ "ok": false, "error": e.to_string() }))?);
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
        (Err(e), false) => return Err(BadInput(e.to_string()).into()),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json!({ "ok": true, "inputs": jobs }))?);
    } else {
        jobs.iter().for_each(|job| print!("{}", describe(job)));
    }
    Ok(ExitCode::SUCCESS)
}

/// A job as a few readable lines: a header, then one line per entity.
fn describe(job: &InferenceInput) -> String {
    let chains: usize = job.entities.iter().map(|e| e.chains.len()).sum();
    let count = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut out = format!(
        "{} ({}): {}, {}",
        job.name,
        job.format.label(),
        count(job.entities.len(), "entity", "entities"),
        count(chains, "chain", "chains")
    );
    if !job.seeds.is_empty() {
        let seeds: Vec<String> = job.seeds.iter().map(u64::to_string).collect();
        let _ = write!(out, ", seeds {}", seeds.join(" "));
    }
    if !job.bonds.is_empty() {
        let _ = write!(out, ", {}", count(job.bonds.len(), "bond", "bonds"));
    }
    out.push('\n');
    for entity in &job.entities {
        let what = match &entity.molecule {
            Molecule::Polymer(p) => {
                let mut s = format!("{:<7} {} residues", p.kind.name(), p.sequence.len());
                for m in &p.modifications {
                    let _ = write!(s, ", {}{}→{}", p.sequence.as_bytes()[m.position - 1] as char, m.position, m.ccd);
                }
                for (which, msa) in [("unpaired", &p.msa.unpaired), ("paired", &p.msa.paired)] {
                    let _ = match msa {
                        Some(TextSource::File(path)) => write!(s, ", {which} MSA {}", path.display()),
                        Some(TextSource::Inline(t)) if t.is_empty() => write!(s, ", no {which} MSA"),
                        Some(TextSource::Inline(t)) => write!(s, ", {which} MSA inline ({} bytes)", t.len()),
                        None => Ok(()),
                    };
                }
                s
            }
            Molecule::Ligand(Ligand::Ccd(codes)) => format!("ligand  CCD {}", codes.join(" ")),
            Molecule::Ligand(Ligand::Smiles(smiles)) => format!("ligand  SMILES {smiles}"),
        };
        let _ = writeln!(out, "  {:<8} {what}", entity.chains.join(","));
    }
    out
}
