//! `helico sample`: sequences from a trained D3PM run, with the metrics that say whether they
//! look like the training data: validity (SMILES that parse with purr; sequences within their
//! alphabet), uniqueness, and the length distribution against the training one.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::data::packing::SplitMix64;
use crate::data::seqs::Domain;
use crate::data::vocab::Vocab;
use crate::exit::BadInput;
use crate::models::d3pm::diffusion::Schedule;
use crate::models::d3pm::model::D3pmLm;
use crate::models::d3pm::sampler::{Sampler, SamplerConfig};
use crate::registry::model::Model;
use crate::runtime::Runtime;
use crate::train::checkpoint::{Checkpoints, load_into};

pub struct Request {
    pub domain: Domain,
    pub n: usize,
    pub sampler: SamplerConfig,
    pub seed: u64,
    /// Use the EMA weights when the run kept them.
    pub ema: bool,
    /// Write the denoising trajectory here (JSON lines, one per step).
    pub trace: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run: String,
    pub checkpoint_step: u64,
    pub weights: &'static str,
    pub domain: &'static str,
    pub samples: Vec<String>,
    pub metrics: Metrics,
    /// Where the samples were saved in the run directory.
    pub saved: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    /// Fraction that are valid (SMILES parse; residues within the alphabet).
    pub validity: f64,
    /// Distinct samples / samples.
    pub uniqueness: f64,
    pub length: LengthStats,
    pub training_length: LengthStats,
}

#[derive(Debug, Clone, Serialize)]
pub struct LengthStats {
    pub mean: f64,
    pub sd: f64,
    pub min: usize,
    pub max: usize,
}

impl LengthStats {
    fn of(lengths: &[usize]) -> LengthStats {
        let n = lengths.len().max(1) as f64;
        let mean = lengths.iter().sum::<usize>() as f64 / n;
        let var = lengths.iter().map(|&l| (l as f64 - mean).powi(2)).sum::<f64>() / n;
        LengthStats {
            mean,
            sd: var.sqrt(),
            min: lengths.iter().copied().min().unwrap_or(0),
            max: lengths.iter().copied().max().unwrap_or(0),
        }
    }
}

/// Samples from the latest checkpoint of the run in `dir`.
pub fn sample(dir: &Path, req: &Request) -> anyhow::Result<Report> {
    let exp = super::launch::read_experiment(dir)?;
    let Model::D3pmLm(cfg) = &exp.model;
    let vocab = Vocab::load(&dir.join("data/vocab.json"))?;
    let lengths_path = dir.join("data/lengths.json");
    let training: BTreeMap<String, Vec<usize>> = serde_json::from_slice(
        &std::fs::read(&lengths_path).with_context(|| format!("cannot read {}", lengths_path.display()))?,
    )
    .with_context(|| format!("{} is corrupt", lengths_path.display()))?;
    let training = training.get(req.domain.name()).filter(|l| !l.is_empty()).ok_or_else(|| {
        BadInput(format!(
            "run {} was not trained on {} sequences: nothing to sample lengths from",
            dir.display(),
            req.domain.name()
        ))
    })?;
    let problems = req.sampler.problems(cfg.diffusion.timesteps);
    if let Some((_, p)) = problems.first() {
        bail!(BadInput(format!("--{p}")));
    }

    let rt = Runtime::resolve(&exp.runtime).with_usable_attention(cfg.d_model / cfg.n_heads);
    let checkpoints = Checkpoints::new(dir.join("checkpoints"));
    let entry =
        checkpoints.latest()?.ok_or_else(|| BadInput(format!("run {} has no checkpoint yet", dir.display())))?;
    let loaded = checkpoints.load(&entry, rt.device)?;
    let mut vs = tch::nn::VarStore::new(rt.device);
    let model = D3pmLm::new(vs.root(), cfg, vocab.len());
    let (weights, tensors) = match (req.ema, loaded.ema) {
        (true, Some(ema)) => ("ema", ema),
        _ => ("model", loaded.model),
    };
    load_into(&vs, tensors, &format!("checkpoint {}", entry.path))?;
    vs.freeze();

    let window = exp.data.sequences().expect(crate::registry::data::SEQUENCES_ONLY).window as usize;
    let mut rng = SplitMix64(req.seed);
    let lengths: Vec<usize> =
        (0..req.n).map(|_| training[(rng.next_u64() % training.len() as u64) as usize].clamp(1, window - 1)).collect();
    let schedule = Schedule::new(&cfg.diffusion);
    let out = Sampler::new(&model, &schedule, &vocab, &rt).sample(
        &req.sampler,
        req.domain,
        &lengths,
        req.seed,
        req.trace.is_some(),
    );
    let samples: Vec<String> = out.tokens.iter().map(|ids| vocab.decode(req.domain, ids)).collect();

    if let Some(path) = &req.trace {
        let lines: String = out
            .trace
            .iter()
            .enumerate()
            .map(|(k, states)| format!("{}\n", serde_json::json!({ "step": k, "states": states })))
            .collect();
        crate::atomic::write(path, lines.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let valid = samples.iter().filter(|s| is_valid(req.domain, s)).count();
    let distinct: HashSet<&String> = samples.iter().collect();
    let metrics = Metrics {
        validity: valid as f64 / samples.len().max(1) as f64,
        uniqueness: distinct.len() as f64 / samples.len().max(1) as f64,
        length: LengthStats::of(&out.tokens.iter().map(Vec::len).collect::<Vec<_>>()),
        training_length: LengthStats::of(training),
    };
    let saved = dir.join("samples").join(format!(
        "{}-{}.fasta",
        chrono::Local::now().format("%Y%m%d-%H%M%S"),
        req.domain.name()
    ));
    std::fs::create_dir_all(dir.join("samples"))?;
    let fasta: String = samples
        .iter()
        .enumerate()
        .map(|(i, s)| format!(">sample_{i} domain:{} seed:{}\n{s}\n", req.domain.name(), req.seed))
        .collect();
    crate::atomic::write(&saved, fasta.as_bytes())?;
    Ok(Report {
        run: super::dir::id_of(dir),
        checkpoint_step: loaded.state.step,
        weights,
        domain: req.domain.name(),
        samples,
        metrics,
        saved,
    })
}

/// SMILES that purr parses; residue strings within the domain's alphabet.
pub fn is_valid(domain: Domain, text: &str) -> bool {
    match domain {
        Domain::Smiles => {
            let mut builder = purr::graph::Builder::new();
            !text.is_empty() && purr::read::read(text, &mut builder, None).is_ok() && builder.build().is_ok()
        }
        Domain::Protein => !text.is_empty() && text.chars().all(|c| "ACDEFGHIKLMNPQRSTVWYX".contains(c)),
        Domain::Rna => !text.is_empty() && text.chars().all(|c| "ACGUN".contains(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_uses_a_real_smiles_parser() {
        assert!(is_valid(Domain::Smiles, "c1ccccc1O"));
        assert!(!is_valid(Domain::Smiles, "c1ccccc"), "unclosed ring");
        assert!(!is_valid(Domain::Smiles, "C(C"), "unclosed branch");
        assert!(is_valid(Domain::Protein, "MKVX"));
        assert!(!is_valid(Domain::Protein, "MKVB"));
        assert!(!is_valid(Domain::Rna, ""));
    }
}
