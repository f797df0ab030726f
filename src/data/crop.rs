//! Training crops (AF3 supplement §2.7): a subset of tokens, chosen contiguously along chains
//! (AF-Multimer Algorithm 1), spatially around a reference token (Algorithm 2), or spatially
//! around a token at an interface (AF3 §2.7.2). The method is drawn with AF3's weights
//! (Table 4 / Protenix `CropData`: 0.2, 0.4, 0.4). Follows Protenix `protenix/utils/cropping.py`
//! (bytedance/Protenix 3248f8e) without its options to keep ligands whole.
//!
//! A crop is a sorted list of token indices: the tokens ([`Tokens::select`]), their atoms and
//! the bonds between them (built by `Features::new` from the selected tokens) and the MSA
//! columns ([`Crop::columns`], one column per token) are all taken from it, so they cannot
//! disagree. Distances are between token centre atoms; unresolved tokens are never a reference
//! and sort last (Protenix masks them to infinity).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::data::packing::SplitMix64;
use crate::data::structure::Structure;
use crate::data::tokenize::Tokens;

/// AF3 supplement §2.7.2: a token is at an interface when a token of another chain lies within
/// 15 Å (centre atoms; Protenix `interface_minimal_distance`).
pub const INTERFACE_DISTANCE: f32 = 15.0;
/// Protenix `get_spatial_crop_index`: distance ties broken by adding token index × 1e-3 Å.
const TIE_BREAK: f32 = 1e-3;

/// How the tokens are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CropMethod {
    /// AF-Multimer Algorithm 1: a random contiguous window per chain, chains in random order.
    Contiguous,
    /// AF-Multimer Algorithm 2: the tokens nearest to a random resolved reference token.
    Spatial,
    /// As `Spatial`, with the reference drawn among interface tokens.
    SpatialInterface,
}

/// Probabilities of the three methods (AF3 supplement Table 4; Protenix `method_weights`),
/// relative to their sum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CropWeights {
    /// AF-Multimer Algorithm 1: a contiguous window per chain (AF3: 0.2).
    #[schemars(range(min = 0.0))]
    pub contiguous: f64,
    /// AF-Multimer Algorithm 2: the tokens nearest a random reference token (AF3: 0.4).
    #[schemars(range(min = 0.0))]
    pub spatial: f64,
    /// As spatial, the reference drawn among interface tokens (AF3: 0.4).
    #[schemars(range(min = 0.0))]
    pub spatial_interface: f64,
}

impl Default for CropWeights {
    fn default() -> CropWeights {
        CropWeights { contiguous: 0.2, spatial: 0.4, spatial_interface: 0.4 }
    }
}

impl CropWeights {
    /// Draws a method with these weights.
    pub fn choose(&self, rng: &mut SplitMix64) -> CropMethod {
        let total = self.contiguous + self.spatial + self.spatial_interface;
        let x = uniform(rng) * total;
        if x < self.contiguous {
            CropMethod::Contiguous
        } else if x < self.contiguous + self.spatial {
            CropMethod::Spatial
        } else {
            CropMethod::SpatialInterface
        }
    }
}

/// The chosen tokens, sorted, and the reference token of a spatial crop.
#[derive(Debug, Clone, PartialEq)]
pub struct Crop {
    pub method: CropMethod,
    /// Indices into the cropped [`Tokens`], ascending.
    pub tokens: Vec<usize>,
    /// The token the spatial crop centres on; `None` for contiguous crops and for spatial
    /// crops of structures without a resolved token (then the crop is the first tokens).
    pub reference: Option<usize>,
}

impl Crop {
    /// The columns of a row-major `[M, n_tokens]` matrix (an MSA, a deletion matrix) that
    /// belong to the crop: `[M, crop size]`.
    pub fn columns<T: Copy>(&self, matrix: &[T], n_tokens: usize) -> Vec<T> {
        assert!(
            n_tokens > 0 && matrix.len().is_multiple_of(n_tokens),
            "a [M, {n_tokens}] matrix, got {} values",
            matrix.len()
        );
        matrix.chunks(n_tokens).flat_map(|row| self.tokens.iter().map(move |&t| row[t])).collect()
    }
}

/// Crops `tokens` of `structure` to at most `size` tokens. `reference_chains` (indices into
/// `structure.chains`) restrict where a spatial crop may centre, as AF3 samples a chain or an
/// interface first; empty means anywhere.
pub fn crop(
    structure: &Structure,
    tokens: &Tokens,
    size: usize,
    method: CropMethod,
    reference_chains: &[usize],
    rng: &mut SplitMix64,
) -> Crop {
    if tokens.len() <= size {
        return Crop { method, tokens: (0..tokens.len()).collect(), reference: None };
    }
    let chain: Vec<usize> = tokens.residue.iter().map(|&r| structure.residues[r].chain).collect();
    match method {
        CropMethod::Contiguous => Crop { method, tokens: contiguous(&chain, size, rng), reference: None },
        CropMethod::Spatial | CropMethod::SpatialInterface => {
            let centres: Vec<Option<[f32; 3]>> = tokens
                .centre_atom
                .iter()
                .map(|&i| structure.atoms.resolved[i].then_some(structure.atoms.coords[i]))
                .collect();
            let in_reference = |t: usize| {
                centres[t].is_some() && (reference_chains.is_empty() || reference_chains.contains(&chain[t]))
            };
            let mut candidates: Vec<usize> = Vec::new();
            if method == CropMethod::SpatialInterface {
                candidates =
                    (0..tokens.len()).filter(|&t| in_reference(t) && at_interface(t, &chain, &centres)).collect();
            }
            if candidates.is_empty() {
                // Protenix: "If a chain does not contain any interfacial atoms, use all resolved tokens."
                candidates = (0..tokens.len()).filter(|&t| in_reference(t)).collect();
            }
            if candidates.is_empty() {
                return Crop { method, tokens: (0..size).collect(), reference: None };
            }
            let reference = candidates[below(rng, candidates.len())];
            Crop { method, tokens: nearest(&centres, reference, size), reference: Some(reference) }
        }
    }
}

/// AF-Multimer Algorithm 1 as Protenix writes it (`get_continues_crop_index`): chains in random
/// order, each contributing a random-length window at a random start, sized so that the chains
/// still to come can fill the crop.
fn contiguous(chain: &[usize], size: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (t, &c) in chain.iter().enumerate() {
        match runs.last_mut() {
            Some((start, len)) if chain[*start] == c => *len += 1,
            _ => runs.push((t, 1)),
        }
    }
    for i in (1..runs.len()).rev() {
        runs.swap(i, below(rng, i + 1));
    }
    let (mut selected, mut added, mut remaining) = (Vec::with_capacity(size), 0usize, chain.len());
    for (start, len) in runs {
        if added >= size {
            break;
        }
        remaining -= len;
        let min = len.min(size.saturating_sub(added + remaining));
        let max = (size - added).min(len);
        let take = min + below(rng, max - min + 1);
        let offset = below(rng, len - take + 1);
        selected.extend(start + offset..start + offset + take);
        added += take;
    }
    selected.sort_unstable();
    selected
}

fn at_interface(t: usize, chain: &[usize], centres: &[Option<[f32; 3]>]) -> bool {
    let Some(p) = centres[t] else { return false };
    let cutoff = INTERFACE_DISTANCE * INTERFACE_DISTANCE;
    centres.iter().zip(chain).any(|(q, &c)| c != chain[t] && q.is_some_and(|q| squared(p, q) < cutoff))
}

/// The `size` tokens nearest the reference, ties to the lower index, in token order.
fn nearest(centres: &[Option<[f32; 3]>], reference: usize, size: usize) -> Vec<usize> {
    let origin = centres[reference].expect("the reference token is resolved");
    let mut order: Vec<(f32, usize)> = centres
        .iter()
        .enumerate()
        .map(|(t, c)| (c.map_or(f32::INFINITY, |c| squared(c, origin).sqrt()) + t as f32 * TIE_BREAK, t))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut selected: Vec<usize> = order.into_iter().take(size).map(|(_, t)| t).collect();
    selected.sort_unstable();
    selected
}

fn squared(a: [f32; 3], b: [f32; 3]) -> f32 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

fn uniform(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A uniform integer in 0..n (n > 0), by rejection so that no value is favoured.
fn below(rng: &mut SplitMix64, n: usize) -> usize {
    let n = n as u64;
    let zone = u64::MAX - u64::MAX % n;
    loop {
        let x = rng.next_u64();
        if x < zone {
            return (x % n) as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_windows_fill_the_crop() {
        let chain: Vec<usize> = [vec![0; 50], vec![1; 30], vec![2; 5]].concat();
        for seed in 0..50 {
            let picked = contiguous(&chain, 40, &mut SplitMix64(seed));
            assert_eq!(picked.len(), 40, "seed {seed}");
            // One window per chain: within a chain the picked tokens are consecutive.
            for c in 0..3 {
                let mine: Vec<usize> = picked.iter().copied().filter(|&t| chain[t] == c).collect();
                assert!(mine.windows(2).all(|w| w[1] == w[0] + 1), "seed {seed} chain {c}: {mine:?}");
            }
        }
        assert_eq!(contiguous(&chain, 40, &mut SplitMix64(3)), contiguous(&chain, 40, &mut SplitMix64(3)));
    }

    #[test]
    fn columns_follow_the_tokens() {
        let crop = Crop { method: CropMethod::Spatial, tokens: vec![1, 3], reference: Some(1) };
        assert_eq!(crop.columns(&[0, 1, 2, 3, 10, 11, 12, 13], 4), [1, 3, 11, 13]);
    }

    #[test]
    fn weights_and_draws() {
        let mut rng = SplitMix64(1);
        let w = CropWeights { contiguous: 0.0, spatial: 1.0, spatial_interface: 0.0 };
        assert!((0..100).all(|_| w.choose(&mut rng) == CropMethod::Spatial));
        let mut counts = [0usize; 3];
        for _ in 0..10_000 {
            counts[below(&mut rng, 3)] += 1;
        }
        assert!(counts.iter().all(|&c| (3000..3700).contains(&c)), "{counts:?}");
    }
}
