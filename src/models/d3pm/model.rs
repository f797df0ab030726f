//! The D3PM denoiser: a pre-norm transformer that reads x_t and predicts logits of x0 at every
//! position (Austin et al. 2021, the x0-parameterisation of §3.3).
//!
//! Input = token embedding + domain embedding + an MLP of sinusoidal timestep features. Each
//! block: LayerNorm → multi-head self-attention with rotary position embedding (Su et al.
//! 2021, "RoFormer"; the rotate-half layout of GPT-NeoX) → residual; LayerNorm → GELU
//! feed-forward → residual. A final LayerNorm and an LM head tied to the token embedding.
//! Attention is block-diagonal over packed sequences and RoPE positions restart at 0 for each
//! sequence, so a packed sequence gets exactly the logits it would get alone. With a kernel
//! that takes the packed layout (`flash_varlen`), the whole network runs on the T real tokens
//! only ([T, D] activations): padding costs nothing anywhere, not only in attention.
//! `bench/d3pm_torch.py` is an independent PyTorch implementation with the same parameter
//! names, tested against this one.
//!
//! Precision: parameters stay fp32 (master weights); activations take `rt.kind`. Weights are
//! cast to the activation dtype where used (what autocast does), activations are cast at
//! block entry; attention softmax (`nn::attention`) and LayerNorm statistics (libtorch's
//! `layer_norm` accumulates in fp32 for bf16 input) stay fp32, as do RoPE and timestep angles.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::data::packing::PackedBatch;
use crate::data::seqs::Domain;
use crate::data::vocab::MASK;
use crate::models::d3pm::D3pmLmConfig;
use crate::nn::attention::{Layout, attend, packs};
use crate::registry::attention::Attention;
use crate::runtime::Runtime;
use crate::sys::Varlen;

/// Standard deviation of embedding and linear weights at init: GPT-2's (Radford et al. 2019;
/// `_init_weights` in karpathy/nanoGPT `model.py`).
const INIT_STD: f64 = 0.02;
/// Longest period of the sinusoidal timestep features: `max_period` of `timestep_embedding`
/// in openai/guided-diffusion `guided_diffusion/nn.py`.
const TIME_MAX_PERIOD: f64 = 10_000.0;
/// Rows of the domain embedding: SMILES 0, protein 1, RNA 2 (`Domain::index`).
const N_DOMAINS: i64 = Domain::ALL.len() as i64;

/// The D3PM LM. Parameter paths (under the given `vs`): `tok_emb`, `domain_emb`, `time_mlp/0`,
/// `time_mlp/2`, `blocks/{i}/{norm1, attn/qkv, attn/out, norm2, ffn/fc1, ffn/fc2}`,
/// `final_norm`. Every LayerNorm path contains `norm` and every bias ends in `bias`: AdamW
/// exempts exactly those from weight decay.
#[derive(Debug)]
pub struct D3pmLm {
    tok_emb: nn::Embedding,
    domain_emb: nn::Embedding,
    time_mlp: TimeMlp,
    blocks: Vec<Block>,
    final_norm: nn::LayerNorm,
    n_heads: i64,
    rope_theta: f64,
    norm_eps: f64,
    mask_embedding_dropout: f64,
}

impl D3pmLm {
    pub fn new(vs: nn::Path, cfg: &D3pmLmConfig, vocab_size: i64) -> D3pmLm {
        let emb_init = nn::EmbeddingConfig { ws_init: normal(INIT_STD), ..Default::default() };
        D3pmLm {
            // normal(0, 0.02), GPT-2; the LM head reuses this matrix.
            tok_emb: nn::embedding(&vs / "tok_emb", vocab_size, cfg.d_model, emb_init),
            domain_emb: nn::embedding(&vs / "domain_emb", N_DOMAINS, cfg.d_model, emb_init),
            time_mlp: TimeMlp::new(&vs / "time_mlp", cfg),
            blocks: (0..cfg.n_layers).map(|i| Block::new(&vs / "blocks" / i, cfg)).collect(),
            final_norm: layer_norm(&vs / "final_norm", cfg),
            n_heads: cfg.n_heads,
            rope_theta: cfg.rope_theta,
            norm_eps: cfg.norm_eps,
            mask_embedding_dropout: cfg.mask_embedding_dropout,
        }
    }

    /// Logits of x0 at every position.
    ///
    /// x_t: [B, L] i64 (x0 with some tokens replaced by MASK), t: [B, L] i64 in 0..=T (the
    /// step of each token's sequence), batch: the packed layout (`positions`, `domains`,
    /// `segments`, all [B, L]) -> [B, L, V] in `rt.kind`.
    ///
    /// `train` enables dropout and mask-embedding dropout: at each position holding MASK,
    /// independently with probability `mask_embedding_dropout`, the token embedding is replaced
    /// by zeros (not rescaled), so the position enters the transformer as domain and time only
    /// (its position still acts through RoPE). Unmasked positions keep their embedding; at
    /// evaluation every MASK keeps it.
    pub fn forward(&self, x_t: &Tensor, t: &Tensor, batch: &PackedBatch, rt: &Runtime, train: bool) -> Tensor {
        if packs(&rt.attention) {
            return self.forward_packed(x_t, t, batch, rt, train);
        }
        let layout = Layout::Padded { segments: &batch.segments };
        self.forward_tokens(x_t, t, &batch.positions, &batch.domains, &layout, rt, train) // [B, L, V]
    }

    /// `forward` on the real tokens only ([T, D] activations), attention by `cu_seqlens`; the
    /// logits come back in rows, zero on padding. Any kernel computes it (`math` and `sdpa`
    /// densely, for tests); `forward` takes this path for the kernels that pack.
    pub(crate) fn forward_packed(
        &self,
        x_t: &Tensor,
        t: &Tensor,
        batch: &PackedBatch,
        rt: &Runtime,
        train: bool,
    ) -> Tensor {
        let (b, l) = x_t.size2().expect("x_t: [B, L]");
        // The real tokens, row-major, as `cu_seqlens` counts them (indexed at packing time, so
        // nothing here waits for the GPU).
        let real = &batch.real_index; // [T]
        let take = |x: &Tensor| x.flatten(0, 1).index_select(0, real); // [T]
        let layout = Layout::Packed(Varlen { cu_seqlens: &batch.cu_seqlens, max_seqlen: batch.max_seqlen });
        let logits = self.forward_tokens(
            &take(x_t),
            &take(t),
            &take(&batch.positions),
            &take(&batch.domains),
            &layout,
            rt,
            train,
        ); // [T, V]
        let v = logits.size2().expect("logits: [T, V]").1;
        // Back to rows; padding gets zero logits, which no loss reads.
        Tensor::zeros([b * l, v], (logits.kind(), logits.device())).index_copy(0, real, &logits).view([b, l, v])
    }

    /// The network on tokens in either layout: x_t, t, positions, domains: [B, L] (padded) or
    /// [T] (packed) i64 -> logits [B, L, V] or [T, V] in `rt.kind`.
    #[allow(clippy::too_many_arguments)]
    fn forward_tokens(
        &self,
        x_t: &Tensor,
        t: &Tensor,
        positions: &Tensor,
        domains: &Tensor,
        layout: &Layout<'_>,
        rt: &Runtime,
        train: bool,
    ) -> Tensor {
        let d = self.tok_emb.ws.size2().expect("tok_emb: [V, D]").1;
        let mut tok = self.tok_emb.forward(x_t); // [..., D]
        if train && self.mask_embedding_dropout > 0.0 {
            let coin = Tensor::rand(x_t.size(), (Kind::Float, x_t.device())).lt(self.mask_embedding_dropout);
            let drop = x_t.eq(MASK).logical_and(&coin); // [...]
            tok = tok.masked_fill(&drop.unsqueeze(-1), 0.0);
        }
        let dom = self.domain_emb.forward(domains); // [..., D]
        let mut h = (tok + dom).to_kind(rt.kind) + self.time_mlp.forward(t, rt.kind); // [..., D]
        let rope = Rope::new(positions, d / self.n_heads, self.rope_theta, rt.kind);
        for block in &self.blocks {
            h = block.forward(&h, &rope, layout, rt, train);
        }
        let h = norm(&h, &self.final_norm, self.norm_eps);
        h.linear(&self.tok_emb.ws.to_kind(h.kind()), None::<Tensor>) // [..., V]
    }

    /// Number of parameters (the tied LM head counted once).
    pub fn param_count(&self) -> i64 {
        let mut params = vec![&self.tok_emb.ws, &self.domain_emb.ws];
        params.extend(linear_params(&self.time_mlp.linear_0).chain(linear_params(&self.time_mlp.linear_2)));
        for block in &self.blocks {
            params.extend(norm_params(&block.norm1).chain(norm_params(&block.norm2)));
            for linear in [&block.attn.qkv, &block.attn.out, &block.ffn.fc1, &block.ffn.fc2] {
                params.extend(linear_params(linear));
            }
        }
        params.extend(norm_params(&self.final_norm));
        params.iter().map(|p| p.numel() as i64).sum()
    }
}

/// Sinusoidal features of the step t, then Linear → SiLU → Linear (D → D → D). Paths
/// `time_mlp/0` and `time_mlp/2` are the `nn.Sequential` indices of the PyTorch reference.
#[derive(Debug)]
struct TimeMlp {
    linear_0: nn::Linear,
    linear_2: nn::Linear,
    d_model: i64,
    timesteps: i64,
}

impl TimeMlp {
    fn new(vs: nn::Path, cfg: &D3pmLmConfig) -> TimeMlp {
        TimeMlp {
            linear_0: linear(&vs / 0, cfg.d_model, cfg.d_model, INIT_STD),
            linear_2: linear(&vs / 2, cfg.d_model, cfg.d_model, INIT_STD),
            d_model: cfg.d_model,
            timesteps: cfg.diffusion.timesteps,
        }
    }

    /// t: [...] i64 in 0..=T -> [..., D] in `kind`. The MLP runs once over the T + 1
    /// possible steps and the rows are gathered per token: (T + 1)·D² rather than B·L·D² work.
    fn forward(&self, t: &Tensor, kind: Kind) -> Tensor {
        // fp32 angles: t · frequency needs more mantissa than bf16 has.
        let steps = Tensor::arange(self.timesteps + 1, (Kind::Float, t.device())); // [T + 1]
        let half = self.d_model / 2;
        let i = Tensor::arange(half, (Kind::Float, t.device())); // [D/2]
        let freqs = (i * (-TIME_MAX_PERIOD.ln() / half as f64)).exp(); // [D/2]
        let args = steps.unsqueeze(-1) * freqs.unsqueeze(0); // [T + 1, D/2]
        let feats = Tensor::cat(&[args.cos(), args.sin()], -1).to_kind(kind); // [T + 1, D]
        let table = linear_fwd(&linear_fwd(&feats, &self.linear_0).silu(), &self.linear_2); // [T + 1, D]
        let mut shape = t.size();
        shape.push(self.d_model);
        table.index_select(0, &t.flatten(0, -1)).view(shape.as_slice()) // [..., D]
    }
}

/// One pre-norm transformer block.
#[derive(Debug)]
struct Block {
    norm1: nn::LayerNorm,
    attn: SelfAttention,
    norm2: nn::LayerNorm,
    ffn: FeedForward,
    dropout: f64,
    norm_eps: f64,
}

impl Block {
    fn new(vs: nn::Path, cfg: &D3pmLmConfig) -> Block {
        Block {
            norm1: layer_norm(&vs / "norm1", cfg),
            attn: SelfAttention::new(&vs / "attn", cfg),
            norm2: layer_norm(&vs / "norm2", cfg),
            ffn: FeedForward::new(&vs / "ffn", cfg),
            dropout: cfg.dropout,
            norm_eps: cfg.norm_eps,
        }
    }

    /// x: [B, L, D] or [T, D] (as `layout`) -> the same shape in `rt.kind`.
    fn forward(&self, x: &Tensor, rope: &Rope, layout: &Layout<'_>, rt: &Runtime, train: bool) -> Tensor {
        let x = x.to_kind(rt.kind);
        let h = self.attn.forward(&norm(&x, &self.norm1, self.norm_eps), rope, layout, &rt.attention);
        let x = x + dropout(h, self.dropout, train);
        let h = self.ffn.forward(&norm(&x, &self.norm2, self.norm_eps));
        x + dropout(h, self.dropout, train)
    }
}

/// Multi-head self-attention with RoPE on q and k, within packed segments.
#[derive(Debug)]
struct SelfAttention {
    qkv: nn::Linear,
    out: nn::Linear,
    n_heads: i64,
}

impl SelfAttention {
    fn new(vs: nn::Path, cfg: &D3pmLmConfig) -> SelfAttention {
        SelfAttention {
            // Output features: q, k, v, each head-major (H × Dh).
            qkv: linear(&vs / "qkv", cfg.d_model, 3 * cfg.d_model, INIT_STD),
            // Residual-branch output: GPT-2 scales its init by 1/√(2·n_layers), so the residual
            // stream's variance does not grow with depth (two branches per block).
            out: linear(&vs / "out", cfg.d_model, cfg.d_model, residual_std(cfg)),
            n_heads: cfg.n_heads,
        }
    }

    /// x: [B, L, D] or [T, D] (as `layout`) -> the same shape.
    fn forward(&self, x: &Tensor, rope: &Rope, layout: &Layout<'_>, attention: &Attention) -> Tensor {
        let shape = x.size();
        let d = *shape.last().expect("x: [..., D]");
        let lead = &shape[..shape.len() - 1];
        let heads = |g: &[i64]| [lead, g, &[self.n_heads, d / self.n_heads]].concat();
        // Split and unbind rather than narrow and select: their backward is one concatenation,
        // where slicing's writes a zero tensor of the whole input per slice.
        let qkv = linear_fwd(x, &self.qkv).split_with_sizes([2 * d, d], -1); // [..., 2D], [..., D]
        // RoPE on q and k together: one set of kernels for both.
        let qk = rope.apply(&qkv[0].view(heads(&[2]).as_slice())).unbind(-3); // 2 × [..., H, Dh]
        let v = qkv[1].view(heads(&[]).as_slice()); // [..., H, Dh]
        let o = attend(attention, &qk[0], &qk[1], &v, layout); // [..., H, Dh]
        linear_fwd(&o.reshape(shape.as_slice()), &self.out) // [..., D]
    }
}

/// Linear → GELU (exact, erf) → Linear, D → ffn_mult·D → D.
#[derive(Debug)]
struct FeedForward {
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl FeedForward {
    fn new(vs: nn::Path, cfg: &D3pmLmConfig) -> FeedForward {
        let hidden = cfg.ffn_mult * cfg.d_model;
        FeedForward {
            fc1: linear(&vs / "fc1", cfg.d_model, hidden, INIT_STD),
            // Residual-branch output: 1/√(2·n_layers)-scaled, as `attn/out`.
            fc2: linear(&vs / "fc2", hidden, cfg.d_model, residual_std(cfg)),
        }
    }

    /// x: [B, L, D] -> [B, L, D].
    fn forward(&self, x: &Tensor) -> Tensor {
        linear_fwd(&linear_fwd(x, &self.fc1).gelu("none"), &self.fc2)
    }
}

/// Rotary position embedding for every token, shared by all blocks.
#[derive(Debug)]
struct Rope {
    /// cos of position · θ^(−2i/Dh), i < Dh/2: [..., 1, 1, Dh/2] (broadcast over q/k and heads).
    cos: Tensor,
    /// The matching sin: [..., 1, 1, Dh/2].
    sin: Tensor,
}

impl Rope {
    /// positions: [B, L] or [T] i64 (restarting at 0 for each packed sequence).
    fn new(positions: &Tensor, head_dim: i64, theta: f64, kind: Kind) -> Rope {
        let half = head_dim / 2;
        // fp32 angles: positions in the thousands need more mantissa than bf16 has.
        let i = Tensor::arange(half, (Kind::Float, positions.device())); // [Dh/2]
        let inv_freq = (i * (-2.0 * theta.ln() / head_dim as f64)).exp(); // [Dh/2]: θ^(−2i/Dh)
        let angles = positions.to_kind(Kind::Float).unsqueeze(-1) * inv_freq; // [..., Dh/2]
        let broadcast = |x: Tensor| x.unsqueeze(-2).unsqueeze(-2).to_kind(kind); // [..., 1, 1, Dh/2]
        Rope { cos: broadcast(angles.cos()), sin: broadcast(angles.sin()) }
    }

    /// Rotates each (x_i, x_{i + Dh/2}) pair by its angle: (x1, x2) ↦ (x1·cos − x2·sin,
    /// x2·cos + x1·sin). x: [..., G, H, Dh] (G: q and k) -> [..., G, H, Dh], contiguous.
    /// `sys::rope` writes both halves in place of a swapped copy, and its backward is the
    /// inverse rotation: a roll or concatenation of the halves and its autograd backward cost
    /// ~15% of a GPU training step (bench/results/20261121-0850-d3pm-h200.md).
    fn apply(&self, x: &Tensor) -> Tensor {
        crate::sys::rope(x, &self.cos, &self.sin).expect("rope takes any device; cos and sin are made in x's dtype")
    }
}

/// normal(0, std) init.
fn normal(std: f64) -> nn::Init {
    nn::Init::Randn { mean: 0.0, stdev: std }
}

/// GPT-2's init std for projections onto the residual stream: 0.02 / √(2·n_layers).
fn residual_std(cfg: &D3pmLmConfig) -> f64 {
    INIT_STD / ((2 * cfg.n_layers) as f64).sqrt()
}

/// A linear layer with weight normal(0, std) and zero bias (GPT-2).
fn linear(vs: nn::Path, d_in: i64, d_out: i64, std: f64) -> nn::Linear {
    let cfg = nn::LinearConfig { ws_init: normal(std), bs_init: Some(nn::Init::Const(0.0)), bias: true };
    nn::linear(vs, d_in, d_out, cfg)
}

/// A LayerNorm with gain 1 and bias 0.
fn layer_norm(vs: nn::Path, cfg: &D3pmLmConfig) -> nn::LayerNorm {
    nn::layer_norm(vs, vec![cfg.d_model], nn::LayerNormConfig { eps: cfg.norm_eps, ..Default::default() })
}

/// x Wᵀ + b with the fp32 master weights cast to x's dtype (a no-op in fp32).
fn linear_fwd(x: &Tensor, layer: &nn::Linear) -> Tensor {
    let kind = x.kind();
    x.linear(&layer.ws.to_kind(kind), layer.bs.as_ref().map(|b| b.to_kind(kind)))
}

/// LayerNorm over the last axis with the affine parameters cast to x's dtype; libtorch
/// computes mean and variance in fp32 for bf16 input.
fn norm(x: &Tensor, layer: &nn::LayerNorm, eps: f64) -> Tensor {
    let kind = x.kind();
    let w = layer.ws.as_ref().map(|w| w.to_kind(kind));
    let b = layer.bs.as_ref().map(|b| b.to_kind(kind));
    x.layer_norm(&layer.normalized_shape, w, b, eps, true)
}

fn dropout(x: Tensor, p: f64, train: bool) -> Tensor {
    if train && p > 0.0 { x.dropout(p, true) } else { x }
}

fn linear_params(layer: &nn::Linear) -> impl Iterator<Item = &Tensor> {
    std::iter::once(&layer.ws).chain(layer.bs.as_ref())
}

fn norm_params(layer: &nn::LayerNorm) -> impl Iterator<Item = &Tensor> {
    layer.ws.iter().chain(layer.bs.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::packing::{PackedRow, TokenSeq, pack};
    use crate::models::d3pm::DiffusionConfig;
    use crate::models::d3pm::diffusion::Schedule;
    use tch::Device;

    fn tiny_config() -> D3pmLmConfig {
        D3pmLmConfig {
            n_layers: 2,
            d_model: 16,
            n_heads: 2,
            ffn_mult: 2,
            dropout: 0.0,
            mask_embedding_dropout: 0.0,
            rope_theta: 10_000.0,
            norm_eps: 1e-5,
            diffusion: DiffusionConfig { timesteps: 10, beta_start: 0.05, beta_end: 0.3 },
        }
    }

    /// Every parameter redrawn from N(0, 0.3²) (norm gains around 1), so biases and norm
    /// parameters take part in the comparisons.
    fn randomize(vs: &nn::VarStore) {
        tch::no_grad(|| {
            for (name, mut p) in vs.variables() {
                let noise = p.randn_like() * 0.3;
                let value = if name.contains("norm") && name.ends_with("weight") { noise + 1.0 } else { noise };
                p.copy_(&value);
            }
        });
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn packed_logits_equal_logits_alone() {
        tch::manual_seed(0);
        let cfg = tiny_config();
        let vs = nn::VarStore::new(Device::Cpu);
        let model = D3pmLm::new(vs.root(), &cfg, 40);
        randomize(&vs);
        let lens = [3, 2, 1, 20, 5, 2, 9, 0, 1];
        let seqs: Vec<TokenSeq> = lens
            .iter()
            .enumerate()
            .map(|(i, &n)| TokenSeq {
                domain: Domain::ALL[i % 3],
                ids: Vec::<i64>::try_from(Tensor::randint_low(4, 40, [n], (Kind::Int64, Device::Cpu))).unwrap(),
            })
            .collect();
        let window = 12;
        let rows = pack(&seqs, window, 3);
        assert!(rows.iter().any(|r| r.seq_lens.len() > 2), "want a row of several sequences");
        assert!(rows.iter().any(|r| r.seq_lens.contains(&window)), "want a cropped sequence");
        let batch = PackedBatch::new(&rows, window);
        let schedule = Schedule::new(&cfg.diffusion);
        let t = schedule.sample_t(&batch);
        let x_t = schedule.q_sample(&batch.tokens, &t, &batch.real()).x_t;
        for attention in [Attention::Math(Default::default()), Attention::Sdpa(Default::default())] {
            let rt = Runtime::cpu(attention.clone());
            let packed = model.forward(&x_t, &t, &batch, &rt, false); // [B, L, V]
            for (b, row) in rows.iter().enumerate() {
                let mut at = 0;
                for &len in &row.seq_lens {
                    let alone_row = PackedRow {
                        tokens: row.tokens[at..at + len].to_vec(),
                        domains: row.domains[at..at + len].to_vec(),
                        seq_lens: vec![len],
                    };
                    let alone = PackedBatch::new(&[alone_row], len);
                    let slice = |x: &Tensor| x.get(b as i64).narrow(0, at as i64, len as i64).unsqueeze(0);
                    let logits = model.forward(&slice(&x_t), &slice(&t), &alone, &rt, false);
                    let diff = max_diff(&logits, &slice(&packed));
                    assert!(diff < 1e-5, "{attention:?}: row {b} offset {at} len {len}: max diff {diff}");
                    at += len;
                }
            }
        }
    }

    /// The packed path (real tokens only, attention by cu_seqlens) gives every real token
    /// the logits and gradients the padded path does.
    #[test]
    fn packed_path_equals_padded_path() {
        tch::manual_seed(5);
        let cfg = tiny_config();
        let vs = nn::VarStore::new(Device::Cpu);
        let model = D3pmLm::new(vs.root(), &cfg, 40);
        randomize(&vs);
        let (batch, t, x_t) = one_batch(&cfg);
        let real = batch.real().unsqueeze(-1);
        for attention in [Attention::Math(Default::default()), Attention::Sdpa(Default::default())] {
            let rt = Runtime::cpu(attention.clone());
            let mut grads = Vec::new();
            let mut logits = Vec::new();
            for packed in [false, true] {
                let out = if packed {
                    model.forward_packed(&x_t, &t, &batch, &rt, false)
                } else {
                    model.forward(&x_t, &t, &batch, &rt, false)
                }
                .masked_fill(&real.logical_not(), 0.0); // [B, L, V]
                for mut p in vs.variables().into_values() {
                    p.zero_grad();
                }
                out.square().sum(Kind::Float).backward();
                grads.push(vs.variables()["blocks.0.attn.qkv.weight"].grad().copy());
                logits.push(out.detach());
            }
            assert!(max_diff(&logits[0], &logits[1]) < 1e-5, "{attention:?}: logits");
            // Relative: the gradients reach ~10³, where one fp32 ulp is ~1e-4, and the CPU's
            // threaded reductions round differently from run to run.
            let scale = grads[0].abs().max().double_value(&[]);
            let diff = max_diff(&grads[0], &grads[1]);
            assert!(diff < 1e-6 * scale, "{attention:?}: gradients differ by {diff} at scale {scale}");
        }
    }

    #[test]
    fn parameter_names_and_count() {
        let cfg = tiny_config();
        let vs = nn::VarStore::new(Device::Cpu);
        let model = D3pmLm::new(vs.root(), &cfg, 40);
        let vars = vs.variables();
        let mut names: Vec<&str> = vars.keys().map(String::as_str).filter(|n| !n.starts_with("blocks.1.")).collect();
        names.sort();
        let expected = [
            "blocks.0.attn.out.bias",
            "blocks.0.attn.out.weight",
            "blocks.0.attn.qkv.bias",
            "blocks.0.attn.qkv.weight",
            "blocks.0.ffn.fc1.bias",
            "blocks.0.ffn.fc1.weight",
            "blocks.0.ffn.fc2.bias",
            "blocks.0.ffn.fc2.weight",
            "blocks.0.norm1.bias",
            "blocks.0.norm1.weight",
            "blocks.0.norm2.bias",
            "blocks.0.norm2.weight",
            "domain_emb.weight",
            "final_norm.bias",
            "final_norm.weight",
            "time_mlp.0.bias",
            "time_mlp.0.weight",
            "time_mlp.2.bias",
            "time_mlp.2.weight",
            "tok_emb.weight",
        ];
        assert_eq!(names, expected);
        // The AdamW contract: 1-d parameters are exactly norms and biases.
        for (name, p) in &vars {
            assert_eq!(p.dim() == 1, name.contains("norm") || name.ends_with("bias"), "{name}");
        }
        let total: i64 = vars.values().map(|p| p.numel() as i64).sum();
        assert_eq!(model.param_count(), total);
    }

    #[test]
    fn init_follows_gpt2() {
        let mut cfg = tiny_config();
        cfg.d_model = 64;
        cfg.n_layers = 8;
        let vs = nn::VarStore::new(Device::Cpu);
        D3pmLm::new(vs.root(), &cfg, 40);
        let vars = vs.variables();
        let std = |name: &str| vars[name].std(true).double_value(&[]);
        assert!((std("blocks.0.attn.qkv.weight") - 0.02).abs() < 0.002);
        assert!((std("blocks.0.ffn.fc2.weight") - 0.02 / 4.0).abs() < 0.0005);
        assert!((std("blocks.0.attn.out.weight") - 0.02 / 4.0).abs() < 0.0005);
        assert_eq!(vars["blocks.0.attn.qkv.bias"].abs().sum(Kind::Float).double_value(&[]), 0.0);
        assert_eq!(vars["final_norm.weight"].mean(Kind::Float).double_value(&[]), 1.0);
    }

    fn one_batch(cfg: &D3pmLmConfig) -> (PackedBatch, Tensor, Tensor) {
        let seqs: Vec<TokenSeq> = (0..6)
            .map(|i| TokenSeq { domain: Domain::Protein, ids: (0..(3 + i)).map(|j| 4 + (i * j) % 20).collect() })
            .collect();
        let batch = PackedBatch::new(&pack(&seqs, 16, 0), 16);
        let schedule = Schedule::new(&cfg.diffusion);
        let t = schedule.sample_t(&batch);
        let x_t = schedule.q_sample(&batch.tokens, &t, &batch.real()).x_t;
        (batch, t, x_t)
    }

    #[test]
    fn mask_embedding_dropout_touches_only_masks() {
        tch::manual_seed(2);
        let mut cfg = tiny_config();
        cfg.mask_embedding_dropout = 1.0;
        let vs = nn::VarStore::new(Device::Cpu);
        let model = D3pmLm::new(vs.root(), &cfg, 40);
        randomize(&vs);
        let (batch, t, x_t) = one_batch(&cfg);
        let rt = Runtime::cpu(Attention::Math(Default::default()));
        // Without MASK in the input, training and evaluation agree (dropout is 0).
        let clean = &batch.tokens;
        assert!(
            max_diff(&model.forward(clean, &t, &batch, &rt, true), &model.forward(clean, &t, &batch, &rt, false))
                < 1e-6
        );
        // With p = 1 every MASK embedding is dropped: as if MASK's embedding row were zero
        // (compared on the other tokens' logits, since the head is tied to that row).
        let others = Tensor::arange_start(MASK + 1, 40, (Kind::Int64, Device::Cpu));
        let trained = model.forward(&x_t, &t, &batch, &rt, true).index_select(2, &others);
        assert!(max_diff(&trained, &model.forward(&x_t, &t, &batch, &rt, false).index_select(2, &others)) > 1e-3);
        tch::no_grad(|| {
            let _ = vs.variables()["tok_emb.weight"].get(MASK).zero_();
        });
        assert!(max_diff(&trained, &model.forward(&x_t, &t, &batch, &rt, false).index_select(2, &others)) < 1e-5);
    }

    #[test]
    fn bf16_changes_only_the_kind() {
        tch::manual_seed(3);
        let cfg = tiny_config();
        let vs = nn::VarStore::new(Device::Cpu);
        let model = D3pmLm::new(vs.root(), &cfg, 40);
        randomize(&vs);
        let (batch, t, x_t) = one_batch(&cfg);
        for attention in [Attention::Math(Default::default()), Attention::Sdpa(Default::default())] {
            let fp32 = model.forward(&x_t, &t, &batch, &Runtime::cpu(attention.clone()), false);
            let rt = Runtime { kind: Kind::BFloat16, ..Runtime::cpu(attention) };
            let bf16 = model.forward(&x_t, &t, &batch, &rt, false);
            assert_eq!(bf16.kind(), Kind::BFloat16);
            let rel = max_diff(&bf16.to_kind(Kind::Float), &fp32) / fp32.abs().max().double_value(&[]);
            assert!(rel < 0.05, "bf16 relative error {rel}");
        }
    }
}
