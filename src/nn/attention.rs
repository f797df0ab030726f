//! Attention kernels. Every kernel computes the same function, softmax(q kᵀ · scale + mask) v,
//! and renames no parameter; they differ in speed and memory only (STYLE H5).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::registry::attention::Attention;

/// Reference kernel: explicit scores, mask and softmax in fp32.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MathAttentionConfig {}

/// libtorch's `scaled_dot_product_attention`, which picks a fused backend per call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SdpaAttentionConfig {}

/// Block-diagonal self-attention over packed sequences: a query attends only to keys of its
/// own segment. Padding (segment 0) attends among itself, so no row of scores is fully masked
/// and no NaN appears; padding outputs are never read.
///
/// q, k, v: [B, H, L, Dh], segments: [B, L] -> [B, H, L, Dh] in q's dtype.
pub fn attend(attention: &Attention, q: &Tensor, k: &Tensor, v: &Tensor, segments: &Tensor) -> Tensor {
    let (_, _, _, dh) = q.size4().expect("q: [B, H, L, Dh]");
    let scale = 1.0 / (dh as f64).sqrt();
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
        Attention::Sdpa(_) => Tensor::scaled_dot_product_attention(q, k, v, Some(&same), 0.0, false, scale, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::attention::Attention;
    use tch::Device;

    /// Random segment layouts: runs of 1..6 tokens numbered from 1, then some padding (0).
    fn random_segments(b: i64, l: i64, seed: i64) -> Tensor {
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

    #[test]
    fn math_and_sdpa_agree_with_gradients() {
        for seed in 0..4 {
            let segments = random_segments(3, 17, seed);
            let opts = (Kind::Float, Device::Cpu);
            let (q0, k0, v0) = (
                Tensor::randn([3, 2, 17, 8], opts),
                Tensor::randn([3, 2, 17, 8], opts),
                Tensor::randn([3, 2, 17, 8], opts),
            );
            let w = Tensor::randn([3, 2, 17, 8], opts);
            let mut outs = Vec::new();
            for attention in [Attention::Math(Default::default()), Attention::Sdpa(Default::default())] {
                let (q, k, v) = (
                    q0.copy().set_requires_grad(true),
                    k0.copy().set_requires_grad(true),
                    v0.copy().set_requires_grad(true),
                );
                let out = attend(&attention, &q, &k, &v, &segments);
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
        let q = Tensor::randn([1, 1, 6, 4], (Kind::Float, Device::Cpu));
        let k = Tensor::randn([1, 1, 6, 4], (Kind::Float, Device::Cpu));
        let v = Tensor::randn([1, 1, 6, 4], (Kind::Float, Device::Cpu));
        let full = attend(&Attention::Math(Default::default()), &q, &k, &v, &segments);
        // Changing segment 2's values leaves segment 1's outputs unchanged.
        let v2 = v.copy();
        let _ = v2.narrow(2, 2, 3).fill_(7.0);
        let moved = attend(&Attention::Math(Default::default()), &q, &k, &v2, &segments);
        assert!(full.narrow(2, 0, 2).allclose(&moved.narrow(2, 0, 2), 0.0, 0.0, false));
        assert!(!full.narrow(2, 2, 3).allclose(&moved.narrow(2, 2, 3), 1e-3, 1e-3, false));
    }
}
