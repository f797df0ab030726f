//! Reverse sampling for the absorbing-state D3PM (Austin et al. 2021, §3.3, x0-parameterised
//! reverse process): canvases start as MASK, and over a subsequence of the steps T..0 each
//! still-masked token is revealed with the probability the forward process implies, its value
//! drawn from the denoiser's prediction of x0.
//!
//! The canvas of a sequence of n tokens is n MASKs followed by EOS (the caller chooses n, e.g.
//! from the training length distribution); canvases are packed into rows like training data,
//! so they attend only to themselves.
//!
//! The first steps see all-MASK canvases, which training rarely shows the model while
//! ᾱ_T > 0 (see `diffusion`, ≈ 0.364 with the default schedule).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::data::packing::{PackedBatch, SplitMix64, TokenSeq, pack};
use crate::data::seqs::Domain;
use crate::data::vocab::{MASK, Vocab};
use crate::models::d3pm::diffusion::Schedule;
use crate::models::d3pm::model::D3pmLm;
use crate::runtime::Runtime;

/// How to run the reverse process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SamplerConfig {
    /// Denoiser calls K, at steps evenly spaced over T..1 (1 ≤ K ≤ T).
    #[schemars(range(min = 1))]
    pub steps: i64,
    /// Softmax temperature of the token draws; 0 takes the most likely token.
    #[schemars(range(min = 0.0))]
    pub temperature: f64,
}

impl Default for SamplerConfig {
    /// One call per diffusion step of the default schedule (T = 100), temperature 1.
    fn default() -> Self {
        Self { steps: 100, temperature: 1.0 }
    }
}

impl SamplerConfig {
    /// Checks against the model's schedule, as (key, problem) pairs.
    pub fn problems(&self, timesteps: i64) -> Vec<(String, String)> {
        if (1..=timesteps).contains(&self.steps) {
            Vec::new()
        } else {
            vec![("steps".into(), format!("steps = {} must lie in 1..={timesteps} (the model's T)", self.steps))]
        }
    }
}

/// What `Sampler::sample` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    /// The sampled token ids of each canvas, EOS excluded, in request order.
    pub tokens: Vec<Vec<i64>>,
    /// With `trace`: K + 1 states (the all-MASK start, then after each step), each the decoded
    /// text of every canvas with MASK shown as `_`. Empty otherwise.
    pub trace: Vec<Vec<String>>,
}

/// A trained denoiser and what sampling needs around it.
pub struct Sampler<'a> {
    model: &'a D3pmLm,
    schedule: &'a Schedule,
    vocab: &'a Vocab,
    rt: &'a Runtime,
}

impl<'a> Sampler<'a> {
    pub fn new(model: &'a D3pmLm, schedule: &'a Schedule, vocab: &'a Vocab, rt: &'a Runtime) -> Sampler<'a> {
        Sampler { model, schedule, vocab, rt }
    }

    /// Samples one sequence of `domain` per entry of `lengths` (content tokens, EOS excluded),
    /// all canvases batched on `rt.device`, without gradients. Every random draw comes from
    /// `seed` alone (see [`uniform`]), so the samples do not depend on libtorch's process-wide
    /// generator.
    ///
    /// For k = K..1 with steps t_k = ⌊k·T/K⌋ (t_K = T, t_0 = 0): predict x0 logits from the
    /// canvas at t_k, keep only `domain`'s tokens, and reveal each still-masked position with
    /// probability (ᾱ_{t_{k−1}} − ᾱ_{t_k})/(1 − ᾱ_{t_k}) by a draw from softmax(logits / τ).
    /// At the last step ᾱ_0 = 1 reveals every remaining MASK.
    ///
    /// `cfg` must pass `SamplerConfig::problems` for this schedule.
    pub fn sample(&self, cfg: &SamplerConfig, domain: Domain, lengths: &[usize], seed: u64, trace: bool) -> Samples {
        let t_max = self.schedule.timesteps();
        assert!(cfg.problems(t_max).is_empty(), "sampler config {cfg:?} does not fit T = {t_max}");
        if lengths.is_empty() {
            return Samples { tokens: Vec::new(), trace: Vec::new() };
        }
        let _no_grad = tch::no_grad_guard();
        let canvases: Vec<TokenSeq> = lengths.iter().map(|&n| TokenSeq { domain, ids: vec![MASK; n] }).collect();
        let window = lengths.iter().max().map_or(0, |&n| n + 1).max(2);
        let batch = PackedBatch::new(&pack(&canvases, window, 0), window).to_device(self.rt.device);
        let real = batch.real(); // [B, L]
        let (b, l) = real.size2().expect("real: [B, L]");

        let allowed = Tensor::from_slice(&self.vocab.domain_tokens(domain)).to_device(self.rt.device);
        let forbidden =
            Tensor::ones([self.vocab.len() as i64], (Kind::Bool, self.rt.device)).index_fill(0, &allowed, 0); // [V]

        let mut rng = SplitMix64(seed);
        let mut x = batch.tokens.shallow_clone(); // [B, L]
        let mut states = Vec::new();
        if trace {
            states.push(self.decode(domain, &x, &real, lengths));
        }
        for pair in step_grid(t_max, cfg.steps).windows(2) {
            let (t_now, t_next) = (pair[0], pair[1]);
            let t = Tensor::full([b, l], t_now, (Kind::Int64, self.rt.device));
            // fp32 for the softmax over V, as in the loss.
            let logits = self.model.forward(&x, &t, &batch, self.rt, false).to_kind(Kind::Float); // [B, L, V]
            let logits = logits.masked_fill(&forbidden, f64::NEG_INFINITY);
            let draw = categorical(&logits, cfg.temperature, &mut rng); // [B, L]
            let p_reveal = self.schedule.reveal_probability(t_now, t_next);
            let coin = uniform(&mut rng, &[b, l], self.rt.device).lt(p_reveal);
            let reveal = x.eq(MASK).logical_and(&real).logical_and(&coin); // [B, L]
            x = draw.where_self(&reveal, &x);
            if trace {
                states.push(self.decode(domain, &x, &real, lengths));
            }
        }
        Samples { tokens: split(&x, &real, lengths), trace: states }
    }

    fn decode(&self, domain: Domain, x: &Tensor, real: &Tensor, lengths: &[usize]) -> Vec<String> {
        split(x, real, lengths).iter().map(|ids| self.vocab.decode(domain, ids)).collect()
    }
}

/// One draw per row from softmax(logits / τ) by Gumbel-max (argmax of logits/τ plus Gumbel
/// noise); τ = 0 is the argmax. logits: [..., V] -> [...].
fn categorical(logits: &Tensor, temperature: f64, rng: &mut SplitMix64) -> Tensor {
    if temperature == 0.0 {
        return logits.argmax(-1, false);
    }
    let gumbel = -(-uniform(rng, &logits.size(), logits.device()).log()).log(); // [..., V]
    (logits / temperature + gumbel).argmax(-1, false)
}

/// Uniform draws in (0, 1) of `shape` from `rng`, made on the CPU and moved to `device`: the
/// same seed gives the same samples on every device and in every thread (libtorch's generator
/// is one per process, shared by whatever else runs).
fn uniform(rng: &mut SplitMix64, shape: &[i64], device: Device) -> Tensor {
    let n: i64 = shape.iter().product();
    // The top 24 bits, centred in their bin: exactly representable in f32, never 0 or 1.
    let u: Vec<f32> = (0..n).map(|_| ((rng.next_u64() >> 40) as f32 + 0.5) / (1u64 << 24) as f32).collect();
    Tensor::from_slice(&u).view(shape).to_device(device)
}

/// The content tokens of each canvas: the real tokens, row-major, are the canvases in order
/// (packing is greedy and order-preserving), each `n + 1` long with its EOS last.
fn split(x: &Tensor, real: &Tensor, lengths: &[usize]) -> Vec<Vec<i64>> {
    let flat = Vec::<i64>::try_from(x.masked_select(real).to_device(tch::Device::Cpu)).expect("sampled tokens are i64");
    let mut at = 0;
    lengths
        .iter()
        .map(|&n| {
            let ids = flat[at..at + n].to_vec();
            at += n + 1;
            ids
        })
        .collect()
}

/// The steps t_K..t_0 of `Sampler::sample`: t_k = ⌊k·T/K⌋, strictly decreasing from T to 0
/// when K ≤ T (consecutive k·T/K differ by T/K ≥ 1).
fn step_grid(t_max: i64, steps: i64) -> Vec<i64> {
    (0..=steps).rev().map(|k| k * t_max / steps).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::seqs::Record;
    use crate::models::d3pm::{D3pmLmConfig, DiffusionConfig};
    use crate::registry::attention::Attention;
    use tch::{Device, nn};

    fn setup() -> (nn::VarStore, D3pmLm, Schedule, Vocab) {
        let cfg = D3pmLmConfig {
            n_layers: 2,
            d_model: 16,
            n_heads: 2,
            ffn_mult: 2,
            diffusion: DiffusionConfig { timesteps: 20, beta_start: 0.01, beta_end: 0.2 },
            ..Default::default()
        };
        let record = |text: &str| Record {
            domain: Domain::Smiles,
            text: text.into(),
            name: "test".into(),
            file: "test".into(),
            line: 1,
        };
        let vocab = Vocab::build(&[record("CC(=O)Oc1ccccc1"), record("C[NH3+].[Cl-]")]);
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = D3pmLm::new(vs.root(), &cfg, vocab.len());
        (vs, model, Schedule::new(&cfg.diffusion), vocab)
    }

    #[test]
    fn step_grid_runs_from_t_to_zero() {
        assert_eq!(step_grid(10, 10), (0..=10).rev().collect::<Vec<_>>());
        assert_eq!(step_grid(100, 4), [100, 75, 50, 25, 0]);
        assert_eq!(step_grid(10, 3), [10, 6, 3, 0]);
        assert_eq!(step_grid(7, 1), [7, 0]);
    }

    #[test]
    fn samples_are_in_domain_sized_and_seeded() {
        let (_vs, model, schedule, vocab) = setup();
        let rt = Runtime::cpu(Attention::Sdpa(Default::default()));
        let sampler = Sampler::new(&model, &schedule, &vocab, &rt);
        let cfg = SamplerConfig { steps: 7, temperature: 1.0 };
        let lengths = [5, 0, 12, 1, 30];
        for domain in Domain::ALL {
            let a = sampler.sample(&cfg, domain, &lengths, 11, false);
            let b = sampler.sample(&cfg, domain, &lengths, 11, false);
            assert_eq!(a, b, "same seed, same samples");
            let allowed = vocab.domain_tokens(domain);
            assert_eq!(a.tokens.iter().map(Vec::len).collect::<Vec<_>>(), lengths);
            assert!(a.tokens.iter().flatten().all(|id| allowed.contains(id)), "{domain:?}: {:?}", a.tokens);
            assert!(a.trace.is_empty());
        }
        let c = sampler.sample(&cfg, Domain::Protein, &lengths, 12, false);
        assert_ne!(c, sampler.sample(&cfg, Domain::Protein, &lengths, 11, false));
        let greedy = SamplerConfig { steps: 3, temperature: 0.0 };
        assert_eq!(sampler.sample(&greedy, Domain::Rna, &[4], 0, false).tokens[0].len(), 4);
        assert!(sampler.sample(&cfg, Domain::Rna, &[], 0, true).tokens.is_empty());
    }

    #[test]
    fn gumbel_draws_follow_the_softmax() {
        let n = 40_000;
        let logits = Tensor::from_slice(&[0.0f32, 1.0, 2.0, f32::NEG_INFINITY]).expand([n, 4], false);
        let mut rng = SplitMix64(3);
        for tau in [1.0, 0.5] {
            let draws = categorical(&logits, tau, &mut rng);
            let freq = draws.bincount::<Tensor>(None, 4).to_kind(Kind::Float) / n as f64;
            let expected = (&logits / tau).softmax(-1, Kind::Float).get(0);
            // 4 sd of a binomial proportion at n = 40 000 is ≤ 0.01.
            assert!(freq.allclose(&expected, 0.0, 0.01, false), "τ = {tau}: {freq} vs {expected}");
        }
        assert_eq!(Vec::<i64>::try_from(categorical(&logits.narrow(0, 0, 2), 0.0, &mut rng)).unwrap(), [2, 2]);
    }

    #[test]
    fn trace_unmasks_monotonically() {
        let (_vs, model, schedule, vocab) = setup();
        let rt = Runtime::cpu(Attention::Math(Default::default()));
        let sampler = Sampler::new(&model, &schedule, &vocab, &rt);
        let lengths = [6, 25, 3];
        let out = sampler.sample(&SamplerConfig { steps: 20, temperature: 1.0 }, Domain::Protein, &lengths, 5, true);
        assert_eq!(out.trace.len(), 21);
        let masks: Vec<usize> = out.trace.iter().map(|s| s.iter().map(|c| c.matches('_').count()).sum()).collect();
        assert_eq!(masks[0], 34);
        assert_eq!(*masks.last().unwrap(), 0);
        assert!(masks.windows(2).all(|w| w[1] <= w[0]), "{masks:?}");
        assert!(masks.windows(2).any(|w| 0 < w[1] && w[1] < w[0]), "reveals should spread over steps: {masks:?}");
        assert_eq!(
            out.trace.last().unwrap(),
            &out.tokens.iter().map(|ids| vocab.decode(Domain::Protein, ids)).collect::<Vec<_>>()
        );
        assert_eq!(out.trace[0][1], "_".repeat(25));
    }
}
