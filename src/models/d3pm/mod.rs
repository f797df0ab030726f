//! D3PM sequence diffusion: a masked discrete-diffusion transformer over SMILES, protein and
//! RNA sequences (Austin et al. 2021, "Structured Denoising Diffusion Models in Discrete
//! State-Spaces", absorbing-state variant), configured as AtomWell describes it.

pub mod diffusion;
pub mod model;
pub mod sampler;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The D3PM language model: token + domain + timestep embeddings, a pre-norm transformer with
/// RoPE, and an LM head tied to the token embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct D3pmLmConfig {
    /// Transformer blocks.
    #[schemars(range(min = 1))]
    pub n_layers: i64,
    /// Model width D; divisible by `n_heads` into an even head width (RoPE rotates pairs).
    #[schemars(range(min = 2))]
    pub d_model: i64,
    /// Attention heads H.
    #[schemars(range(min = 1))]
    pub n_heads: i64,
    /// Feed-forward width as a multiple of D.
    #[schemars(range(min = 1))]
    pub ffn_mult: i64,
    /// Dropout on attention and feed-forward outputs during training.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub dropout: f64,
    /// Probability, during training, of dropping the [MASK] embedding at a masked position
    /// (the position then enters the transformer as position, domain and time only).
    #[schemars(range(min = 0.0, max = 1.0))]
    pub mask_embedding_dropout: f64,
    /// RoPE base θ.
    #[schemars(range(min = 1.0))]
    pub rope_theta: f64,
    /// LayerNorm ε.
    pub norm_eps: f64,
    /// The forward (noising) process.
    pub diffusion: DiffusionConfig,
}

impl Default for D3pmLmConfig {
    /// AtomWell's reference model: 12 layers, D 1024, 16 heads (~150M parameters).
    fn default() -> Self {
        Self {
            n_layers: 12,
            d_model: 1024,
            n_heads: 16,
            ffn_mult: 4,
            dropout: 0.0,
            mask_embedding_dropout: 0.1,
            rope_theta: 10_000.0,
            norm_eps: 1e-5,
            diffusion: DiffusionConfig::default(),
        }
    }
}

/// Absorbing-state forward process: token i is replaced by [MASK] at step t with probability
/// 1 − ᾱ_t, where ᾱ_t = Π_{s ≤ t} (1 − β_s) and β rises linearly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DiffusionConfig {
    /// Number of diffusion steps T.
    #[schemars(range(min = 1))]
    pub timesteps: i64,
    /// β_1, the first step's masking rate.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub beta_start: f64,
    /// β_T, the last step's masking rate.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub beta_end: f64,
}

impl Default for DiffusionConfig {
    fn default() -> Self {
        Self { timesteps: 100, beta_start: 1e-4, beta_end: 0.02 }
    }
}

impl D3pmLmConfig {
    /// Cross-field checks the schema cannot express, as (key, problem) pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.n_heads > 0 && self.d_model % self.n_heads != 0 {
            out.push((
                "d_model".into(),
                format!("d_model = {} is not divisible by n_heads = {}", self.d_model, self.n_heads),
            ));
        } else if self.n_heads > 0 && (self.d_model / self.n_heads) % 2 != 0 {
            out.push((
                "n_heads".into(),
                format!("head width d_model / n_heads = {} must be even for RoPE", self.d_model / self.n_heads),
            ));
        }
        let d = &self.diffusion;
        if d.beta_start > d.beta_end {
            out.push((
                "diffusion.beta_start".into(),
                format!("beta_start = {} exceeds beta_end = {}", d.beta_start, d.beta_end),
            ));
        }
        out
    }
}
