//! Attention kernels. Every kernel computes the same function, softmax(q kᵀ · scale + mask) v
//! within each packed sequence, and renames no parameter; they differ in speed and memory only
//! (STYLE H5).
//!
//! Tokens come in one of two layouts ([`Layout`]): rows of a padded batch, where a segment
//! map says which positions share a sequence (the `math` and `sdpa` kernels build a dense
//! [B, 1, L, L] mask from it), or the real tokens end to end with `cu_seqlens`, which the
//! varlen kernels (FlashAttention-2, and the memory-efficient kernel of xformers' lineage)
//! take directly, doing no work on padding or across sequences. Which varlen kernel is faster
//! depends on the lengths: FlashAttention-2 works in 128-query tiles, the memory-efficient
//! kernel in 64-query tiles, so short sequences waste less of the latter's.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::registry::attention::Attention;
use crate::sys::{self, Varlen};

/// Reference kernel: explicit scores, mask and softmax in fp32.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MathAttentionConfig {}

/// libtorch's `scaled_dot_product_attention`, which picks a fused backend per call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SdpaAttentionConfig {}

/// Varlen FlashAttention-2 over the packed real tokens (`at::_flash_attention_forward` through
/// helico's shim): CUDA (sm80+), fp16/bf16, head width a multiple of 8 up to 256.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlashVarlenAttentionConfig {}

/// The memory-efficient attention kernel over the packed real tokens
/// (`at::_efficient_attention_forward` with `cu_seqlens` through helico's shim): CUDA, fp16,
/// bf16 or fp32.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EfficientVarlenAttentionConfig {}

/// Head widths varlen FlashAttention-2 takes: multiples of 8 up to 256 (FA2's kernels).
const FLASH_MAX_HEAD_DIM: i64 = 256;
const FLASH_HEAD_DIM_MULTIPLE: i64 = 8;

/// How a batch's tokens are laid out. A token tensor is [B, L, …] for `Padded` and [T, …] for
/// `Packed`.
#[derive(Debug, Clone, Copy)]
pub enum Layout<'a> {
    /// B rows of L positions; `segments` ([B, L] i64) numbers each row's packed sequences from
    /// 1, with 0 on padding.
    Padded { segments: &'a Tensor },
    /// The T real tokens of a batch end to end, split into sequences by `cu_seqlens`.
    Packed(Varlen<'a>),
}

/// Whether `attention` runs on the packed layout (the model then gathers the real tokens).
pub fn packs(attention: &Attention) -> bool {
    matches!(attention, Attention::FlashVarlen(_) | Attention::EfficientVarlen(_))
}

/// Why `attention` cannot run on this device, dtype and head width, if it cannot. Only the
/// varlen kernels have limits; each is probed with one tiny call, so a GPU that lacks the
/// kernel (FlashAttention-2 needs sm80) is found too.
pub fn unsupported(attention: &Attention, device: Device, kind: Kind, head_dim: i64) -> Option<String> {
    if !packs(attention) {
        return None;
    }
    if device == Device::Cpu {
        return Some("it needs a CUDA GPU and this run is on the CPU".into());
    }
    let flash = matches!(attention, Attention::FlashVarlen(_));
    if flash && !matches!(kind, Kind::BFloat16 | Kind::Half) {
        return Some(format!("it takes bf16 or fp16 and this run computes in {kind:?} (runtime.precision)"));
    }
    if head_dim > FLASH_MAX_HEAD_DIM || head_dim % FLASH_HEAD_DIM_MULTIPLE != 0 {
        return Some(format!("it takes head widths that are multiples of 8 up to 256, not {head_dim}"));
    }
    let q = Tensor::zeros([2, 1, head_dim], (kind, device));
    let cu = Tensor::from_slice(&[0i32, 2]).to_device(device);
    let seqs = Varlen { cu_seqlens: &cu, max_seqlen: 2 };
    let probe = if flash {
        sys::flash_varlen_fwd(&q, &q, &q, seqs, 1.0, false).map(drop)
    } else {
        let q = q.unsqueeze(0);
        sys::efficient_attention_fwd(&q, &q, &q, None, Some(seqs), 1.0, false).map(drop)
    };
    probe.err().map(|e| format!("this GPU refused it ({})", e.message))
}

/// The registry name of a kernel, as `runtime.attention = @name` selects it.
pub fn name(attention: &Attention) -> &'static str {
    match attention {
        Attention::Math(_) => "math",
        Attention::Sdpa(_) => "sdpa",
        Attention::FlashVarlen(_) => "flash_varlen",
        Attention::EfficientVarlen(_) => "efficient_varlen",
    }
}

/// Self-attention within packed sequences, on either layout.
///
/// q, k, v: [B, L, H, Dh] (`Padded`) or [T, H, Dh] (`Packed`), last dimension contiguous ->
/// the same shape as q, in q's dtype. On the padded layout padding (segment 0) attends among
/// itself, so no row of scores is fully masked and no NaN appears; padding outputs are never
/// read. The varlen kernels on a padded layout compute as `sdpa` (they need sequence boundaries);
/// `math` and `sdpa` on a packed layout attend over one row of T tokens with the segments
/// rebuilt from `cu_seqlens` (dense, for tests and fallbacks).
pub fn attend(attention: &Attention, q: &Tensor, k: &Tensor, v: &Tensor, layout: &Layout<'_>) -> Tensor {
    let dh = *q.size().last().expect("q: [..., H, Dh]");
    let scale = 1.0 / (dh as f64).sqrt();
    match (attention, layout) {
        (Attention::FlashVarlen(_), Layout::Packed(seqs)) => {
            sys::flash_varlen_fwd(q, k, v, *seqs, scale, false)
                .expect("flash_varlen was checked usable on this device and dtype when the runtime was resolved")
                .out
        }
        (Attention::EfficientVarlen(_), Layout::Packed(seqs)) => {
            let batch = |x: &Tensor| x.unsqueeze(0); // [1, T, H, Dh]
            // The log-sum-exp is what the backward needs; without gradients it is not made.
            let grad = q.requires_grad() || k.requires_grad() || v.requires_grad();
            sys::efficient_attention_fwd(&batch(q), &batch(k), &batch(v), None, Some(*seqs), scale, grad)
                .expect("efficient_varlen was checked usable on this device when the runtime was resolved")
                .out
                .squeeze_dim(0)
        }
        (_, Layout::Padded { segments }) => {
            let heads_first = |x: &Tensor| x.transpose(1, 2); // [B, H, L, Dh]
            dense(attention, &heads_first(q), &heads_first(k), &heads_first(v), segments, scale).transpose(1, 2)
        }
        (_, Layout::Packed(seqs)) => {
            let t = q.size()[0];
            let positions = Tensor::arange(t, (Kind::Int, q.device()));
            let ends = seqs.cu_seqlens.narrow(0, 1, seqs.cu_seqlens.size()[0] - 1);
            let segments = (positions.searchsorted(&ends, false, true, "right", None::<Tensor>) + 1).unsqueeze(0); // [1, T]
            let row = |x: &Tensor| x.unsqueeze(0).transpose(1, 2); // [1, H, T, Dh]
            dense(attention, &row(q), &row(k), &row(v), &segments, scale).transpose(1, 2).squeeze_dim(0)
        }
    }
}

/// Block-diagonal attention on the padded layout with a dense mask.
/// q, k, v: [B, H, L, Dh], segments: [B, L] -> [B, H, L, Dh].
fn dense(attention: &Attention, q: &Tensor, k: &Tensor, v: &Tensor, segments: &Tensor, scale: f64) -> Tensor {
    let same = segments.unsqueeze(2).eq_tensor(&segments.unsqueeze(1)).unsqueeze(1); // [B, 1, L, L]
    match attention {
        Attention::Math(_) => {
            // fp32 scores and softmax: bf16 logits lose the small differences softmax amplifies.
            let (q, k) = (q.to_kind(Kind::Float), k.to_kind(Kind::Float));
            let scores = q.matmul(&k.transpose(-2, -1)) * scale; // [B, H, L, L]
            let probs = scores.masked_fill(&same.logical_not(), f64::NEG_INFINITY).softmax(-1, Kind::Float);
            probs.to_kind(v.kind()).matmul(v) // [B, H, L, Dh]
        }
        // A boolean mask marks the pairs that take part.
        Attention::Sdpa(_) | Attention::FlashVarlen(_) | Attention::EfficientVarlen(_) => {
            Tensor::scaled_dot_product_attention(q, k, v, Some(&same), 0.0, false, scale, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::attention::Attention;

    /// Random segment layouts: runs of 1..6 tokens numbered from 1, then some padding (0).
    pub(crate) fn random_segments(b: i64, l: i64, seed: i64) -> Tensor {
        tch::manual_seed(seed);
        let lens = Vec::<i64>::try_from(Tensor::randint_low(1, 7, [b * l], (Kind::Int64, Device::Cpu))).unwrap();
        let pads = Vec::<i64>::try_from(Tensor::randint_low(0, l / 3, [b], (Kind::Int64, Device::Cpu))).unwrap();
        let mut out = Vec::new();
        let mut lens = lens.into_iter();
        for pad in pads {
            let mut row = Vec::new();
            let mut segment = 1;
            while (row.len() as i64) < l - pad {
                let len = lens.next().unwrap().min(l - pad - row.len() as i64);
                row.extend(std::iter::repeat_n(segment, len as usize));
                segment += 1;
            }
            row.resize(l as usize, 0);
            out.extend(row);
        }
        Tensor::from_slice(&out).view([b, l])
    }

    fn kernels() -> [Attention; 2] {
        [Attention::Math(Default::default()), Attention::Sdpa(Default::default())]
    }

    #[test]
    fn math_and_sdpa_agree_with_gradients() {
        for seed in 0..4 {
            let segments = random_segments(3, 17, seed);
            let layout = Layout::Padded { segments: &segments };
            let opts = (Kind::Float, Device::Cpu);
            let shape = [3, 17, 2, 8];
            let (q0, k0, v0) = (Tensor::randn(shape, opts), Tensor::randn(shape, opts), Tensor::randn(shape, opts));
            let w = Tensor::randn(shape, opts);
            let mut outs = Vec::new();
            for attention in kernels() {
                let (q, k, v) = (
                    q0.copy().set_requires_grad(true),
                    k0.copy().set_requires_grad(true),
                    v0.copy().set_requires_grad(true),
                );
                let out = attend(&attention, &q, &k, &v, &layout);
                assert_eq!(out.size(), shape);
                assert_eq!(out.isnan().any().int64_value(&[]), 0);
                (&out * &w).sum(Kind::Float).backward();
                outs.push((out.detach(), q.grad(), k.grad(), v.grad()));
            }
            let (a, b) = (&outs[0], &outs[1]);
            for (x, y, name) in [(&a.0, &b.0, "out"), (&a.1, &b.1, "dq"), (&a.2, &b.2, "dk"), (&a.3, &b.3, "dv")] {
                let diff = (x - y).abs().max().double_value(&[]);
                assert!(diff < 1e-5, "seed {seed}: {name} differs by {diff}");
            }
        }
    }

    #[test]
    fn a_query_sees_only_its_segment() {
        let segments = Tensor::from_slice(&[1i64, 1, 2, 2, 2, 0]).view([1, 6]);
        let layout = Layout::Padded { segments: &segments };
        let q = Tensor::randn([1, 6, 1, 4], (Kind::Float, Device::Cpu));
        let k = Tensor::randn([1, 6, 1, 4], (Kind::Float, Device::Cpu));
        let v = Tensor::randn([1, 6, 1, 4], (Kind::Float, Device::Cpu));
        let math = Attention::Math(Default::default());
        let full = attend(&math, &q, &k, &v, &layout);
        // Changing segment 2's values leaves segment 1's outputs unchanged.
        let v2 = v.copy();
        let _ = v2.narrow(1, 2, 3).fill_(7.0);
        let moved = attend(&math, &q, &k, &v2, &layout);
        assert!(full.narrow(1, 0, 2).allclose(&moved.narrow(1, 0, 2), 0.0, 0.0, false));
        assert!(!full.narrow(1, 2, 3).allclose(&moved.narrow(1, 2, 3), 1e-3, 1e-3, false));
    }

    /// The packed layout (real tokens end to end) gives each real token what the padded one
    /// does.
    #[test]
    fn packed_layout_equals_padded_layout() {
        let segments = random_segments(2, 13, 7);
        let real = segments.gt(0).flatten(0, 1);
        let index = real.nonzero().squeeze_dim(1); // [T]
        let mut cu = vec![0i32];
        for row in Vec::<Vec<i64>>::try_from(&segments).unwrap() {
            let n = row.iter().copied().max().unwrap_or(0);
            for s in 1..=n {
                cu.push(cu.last().unwrap() + row.iter().filter(|&&x| x == s).count() as i32);
            }
        }
        let cu = Tensor::from_slice(&cu);
        let layout = Layout::Packed(Varlen { cu_seqlens: &cu, max_seqlen: 13 });
        let opts = (Kind::Float, Device::Cpu);
        let (q, k, v) = (
            Tensor::randn([2, 13, 3, 8], opts),
            Tensor::randn([2, 13, 3, 8], opts),
            Tensor::randn([2, 13, 3, 8], opts),
        );
        let take = |x: &Tensor| x.flatten(0, 1).index_select(0, &index); // [T, H, Dh]
        for attention in kernels() {
            let padded = attend(&attention, &q, &k, &v, &Layout::Padded { segments: &segments });
            let packed = attend(&attention, &take(&q), &take(&k), &take(&v), &layout);
            let diff = (take(&padded) - packed).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "{attention:?}: {diff}");
        }
    }

    #[test]
    fn varlen_kernels_are_unsupported_on_the_cpu_and_flash_in_fp32() {
        let flash = Attention::FlashVarlen(Default::default());
        assert!(unsupported(&flash, Device::Cpu, Kind::BFloat16, 64).unwrap().contains("CUDA GPU"));
        assert!(unsupported(&flash, Device::Cuda(0), Kind::Float, 64).unwrap().contains("bf16"));
        assert!(unsupported(&flash, Device::Cuda(0), Kind::BFloat16, 12).unwrap().contains("multiples of 8"));
        assert_eq!(unsupported(&Attention::Sdpa(Default::default()), Device::Cpu, Kind::Float, 12), None);
        let efficient = Attention::EfficientVarlen(Default::default());
        assert!(unsupported(&efficient, Device::Cpu, Kind::Float, 64).unwrap().contains("CUDA GPU"));
    }
}
