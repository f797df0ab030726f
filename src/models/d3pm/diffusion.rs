//! The absorbing-state forward process of D3PM (Austin et al. 2021, §3 and App. A.2.2, "absorbing
//! state"), with the linear β schedule of `DiffusionConfig`.
//!
//! β_t rises linearly from `beta_start` (t = 1) to `beta_end` (t = T), as `torch.linspace`
//! spaces them; ᾱ_t = Π_{s≤t} (1 − β_s), ᾱ_0 = 1. At step t each content token of x0 is
//! independently replaced by MASK with probability 1 − ᾱ_t.
//!
//! With the default schedule (T = 100, β from 1e-4 to 0.02), ᾱ_T ≈ 0.364: training masks at
//! most ~64% of a sequence's tokens on average, and a sequence of n tokens is fully masked
//! with probability at most 0.64^n (rare beyond a few tokens), while the sampler starts from
//! all-MASK canvases. This is the specified schedule, kept as configured; a schedule that
//! reaches ᾱ_T ≈ 0 (larger β_end or T) removes the mismatch.
//!
//! What is masked: content tokens only. PAD is never masked (it is not part of any sequence),
//! and neither are EOS and SEP: they are structure the sampler fixes (the canvas length and
//! chain boundaries come from the caller), so the model is never asked to predict them.

use tch::{Kind, Tensor};

use crate::data::packing::PackedBatch;
use crate::data::vocab::{EOS, MASK, SEP};
use crate::models::d3pm::DiffusionConfig;

/// The schedule ᾱ_0..ᾱ_T, kept on the host in f64.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// ᾱ_t for t = 0..=T.
    alpha_bar: Vec<f64>,
}

/// The noised tokens of `Schedule::q_sample`.
#[derive(Debug)]
pub struct Noised {
    /// x_t: x0 with the masked positions set to MASK: [B, L] i64.
    pub x_t: Tensor,
    /// Which positions were masked: [B, L] bool.
    pub masked: Tensor,
}

impl Schedule {
    pub fn new(cfg: &DiffusionConfig) -> Schedule {
        let t_max = cfg.timesteps;
        let mut alpha_bar = Vec::with_capacity(t_max as usize + 1);
        alpha_bar.push(1.0);
        let mut prod = 1.0;
        for t in 1..=t_max {
            // torch.linspace(beta_start, beta_end, T)[t − 1]; T = 1 gives beta_start.
            let frac = if t_max > 1 { (t - 1) as f64 / (t_max - 1) as f64 } else { 0.0 };
            let beta = cfg.beta_start + (cfg.beta_end - cfg.beta_start) * frac;
            prod *= 1.0 - beta;
            alpha_bar.push(prod);
        }
        Schedule { alpha_bar }
    }

    /// T, the number of diffusion steps.
    pub fn timesteps(&self) -> i64 {
        self.alpha_bar.len() as i64 - 1
    }

    /// ᾱ_t, the probability that a content token is still unmasked at step t (0 ≤ t ≤ T).
    pub fn alpha_bar(&self, t: i64) -> f64 {
        self.alpha_bar[t as usize]
    }

    /// The probability that a token masked at step `from` is unmasked at the earlier step `to`
    /// under the forward process: (ᾱ_to − ᾱ_from) / (1 − ᾱ_from). It is the reverse step's
    /// reveal rate, and with `to = from − 1` the ELBO weight of step `from`. Where nothing can
    /// be masked yet (ᾱ_from = 1, a zero β at the start) it is 1: everything is revealed.
    pub fn reveal_probability(&self, from: i64, to: i64) -> f64 {
        let masked = 1.0 - self.alpha_bar(from);
        if masked <= 0.0 { 1.0 } else { (self.alpha_bar(to) - self.alpha_bar(from)) / masked }
    }

    /// ᾱ_t gathered per token. t: [B, L] i64 -> [B, L] fp32 on t's device.
    pub fn alpha_bar_at(&self, t: &Tensor) -> Tensor {
        gather_table(&self.alpha_bar, t)
    }

    /// T · (ᾱ_{t−1} − ᾱ_t) / (1 − ᾱ_t) per token: the weight of a masked token's cross-entropy
    /// in a one-sample Monte Carlo estimate of the ELBO's diffusion terms Σ_{t=1..T} L_{t−1}.
    /// t: [B, L] i64 in 1..=T -> [B, L] fp32.
    pub fn elbo_weight_at(&self, t: &Tensor) -> Tensor {
        let t_max = self.timesteps();
        let mut table = vec![0.0];
        table.extend((1..=t_max).map(|s| t_max as f64 * self.reveal_probability(s, s - 1)));
        gather_table(&table, t)
    }

    /// One t per packed sequence, uniform in 1..=T, broadcast over the sequence's tokens
    /// (padding gets some t in 1..=T; it is never read). Drawn on the batch's device from
    /// libtorch's generator, so `tch::manual_seed` fixes it.
    /// -> t: [B, L] i64.
    pub fn sample_t(&self, batch: &PackedBatch) -> Tensor {
        let (b, l) = batch.segments.size2().expect("segments: [B, L]");
        // Column s of the table is segment s's step; a row holds at most L segments.
        let table = Tensor::randint_low(1, self.timesteps() + 1, [b, l + 1], (Kind::Int64, batch.segments.device()));
        table.gather(1, &batch.segments, false) // [B, L]
    }

    /// Samples x_t ~ q(x_t | x0): each maskable token (see [`maskable`]) becomes MASK with
    /// probability 1 − ᾱ_t, independently, from libtorch's generator.
    /// x0, t: [B, L] i64, real: [B, L] bool -> x_t [B, L] i64, masked [B, L] bool.
    pub fn q_sample(&self, x0: &Tensor, t: &Tensor, real: &Tensor) -> Noised {
        let u = Tensor::rand(x0.size(), (Kind::Float, x0.device())); // [B, L]
        let masked = u.lt_tensor(&(1.0 - self.alpha_bar_at(t))).logical_and(&maskable(x0, real));
        Noised { x_t: x0.masked_fill(&masked, MASK), masked }
    }
}

/// The positions the forward process may mask: real tokens other than EOS and SEP.
/// x0: [B, L] i64, real: [B, L] bool -> [B, L] bool.
pub fn maskable(x0: &Tensor, real: &Tensor) -> Tensor {
    real.logical_and(&x0.ne(EOS)).logical_and(&x0.ne(SEP))
}

/// `table[t]` per element as fp32 (ample for probabilities and weights), on t's device.
fn gather_table(table: &[f64], t: &Tensor) -> Tensor {
    // A non-blocking upload: a blocking one would wait for every kernel queued on the GPU.
    let table = Tensor::from_slice(table).to_kind(Kind::Float).to_device_(t.device(), Kind::Float, true, false); // [T + 1]
    table.index_select(0, &t.flatten(0, -1)).view(t.size().as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::packing::{PackedBatch, TokenSeq, pack};
    use crate::data::seqs::Domain;
    use crate::data::vocab::PAD;
    use tch::Device;

    #[test]
    fn schedule_values() {
        let s = Schedule::new(&DiffusionConfig::default());
        assert_eq!(s.timesteps(), 100);
        assert_eq!(s.alpha_bar(0), 1.0);
        assert!((s.alpha_bar(1) - (1.0 - 1e-4)).abs() < 1e-12);
        // Σβ = 1.005, Σβ² ≈ 0.0134: ᾱ_T ≈ exp(−Σβ − Σβ²/2) ≈ 0.364.
        assert!((s.alpha_bar(100) - 0.3636).abs() < 1e-3, "{}", s.alpha_bar(100));
        assert!((1..=100).all(|t| s.alpha_bar(t) < s.alpha_bar(t - 1)));
        assert!((s.reveal_probability(1, 0) - 1.0).abs() < 1e-12);
        assert!((s.reveal_probability(100, 0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn mask_rate_matches_one_minus_alpha_bar() {
        tch::manual_seed(0);
        let s = Schedule::new(&DiffusionConfig::default());
        let (b, l) = (64, 512);
        let x0 = Tensor::randint_low(4, 30, [b, l], (Kind::Int64, Device::Cpu));
        // The last quarter of each row is padding.
        let real = Tensor::arange(l, (Kind::Int64, Device::Cpu)).lt(l * 3 / 4).unsqueeze(0).expand([b, l], false);
        let x0 = x0.masked_fill(&real.logical_not(), PAD);
        let n = (b * l * 3 / 4) as f64;
        for t_val in [1, 10, 50, 100] {
            let t = Tensor::full([b, l], t_val, (Kind::Int64, Device::Cpu));
            let noised = s.q_sample(&x0, &t, &real);
            let rate = noised.masked.sum(Kind::Float).double_value(&[]) / n;
            let p = 1.0 - s.alpha_bar(t_val);
            let se = (p * (1.0 - p) / n).sqrt();
            assert!((rate - p).abs() < 4.0 * se + 1e-9, "t = {t_val}: rate {rate}, expected {p} ± {se}");
            assert_eq!(noised.masked.logical_and(&real.logical_not()).sum(Kind::Int64).int64_value(&[]), 0);
            assert!(noised.x_t.masked_select(&real.logical_not()).eq(PAD).all().int64_value(&[]) == 1);
            assert!(noised.x_t.masked_select(&noised.masked).eq(MASK).all().int64_value(&[]) == 1);
        }
    }

    #[test]
    fn eos_and_sep_are_never_masked() {
        let s = Schedule::new(&DiffusionConfig { timesteps: 10, beta_start: 0.5, beta_end: 0.9 });
        let x0 = Tensor::from_slice(&[5i64, EOS, SEP, 6, EOS, PAD]).view([1, 6]).repeat([100, 1]);
        let real = x0.ne(PAD);
        let noised = s.q_sample(&x0, &Tensor::full([100, 6], 10, (Kind::Int64, Device::Cpu)), &real);
        let col_masked = noised.masked.sum_dim_intlist(0, false, Kind::Int64);
        assert_eq!(Vec::<i64>::try_from(col_masked.ne(0)).unwrap(), [1, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn one_t_per_sequence() {
        tch::manual_seed(1);
        let s = Schedule::new(&DiffusionConfig::default());
        let seqs: Vec<TokenSeq> =
            (0..40).map(|i| TokenSeq { domain: Domain::Protein, ids: vec![5; 1 + (i * 7) % 13] }).collect();
        let batch = PackedBatch::new(&pack(&seqs, 32, 0), 32);
        let t = s.sample_t(&batch);
        let (t, seg) = (
            Vec::<i64>::try_from(t.flatten(0, -1)).unwrap(),
            Vec::<i64>::try_from(batch.segments.flatten(0, -1)).unwrap(),
        );
        assert!(t.iter().all(|&v| (1..=100).contains(&v)));
        for i in 1..t.len() {
            if i % 32 != 0 && seg[i] == seg[i - 1] && seg[i] > 0 {
                assert_eq!(t[i], t[i - 1], "t changes inside a sequence at {i}");
            }
        }
        let distinct: std::collections::BTreeSet<_> = t.iter().collect();
        assert!(distinct.len() > 10);
    }

    #[test]
    fn elbo_weights() {
        let s = Schedule::new(&DiffusionConfig::default());
        let t = Tensor::from_slice(&[1i64, 50, 100]).view([1, 3]);
        let w = Vec::<f32>::try_from(s.elbo_weight_at(&t).flatten(0, -1)).unwrap();
        assert!((w[0] - 100.0).abs() < 1e-3);
        let w50 = 100.0 * (s.alpha_bar(49) - s.alpha_bar(50)) / (1.0 - s.alpha_bar(50));
        assert!((w[1] as f64 - w50).abs() < 1e-4);
    }
}
