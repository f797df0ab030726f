//! The reference conformer features of AF3 supplement §2.8 (Table 5 `ref_pos`, `ref_mask`,
//! `ref_charge`): per selected atom, its CCD component's ideal coordinates (model coordinates
//! where ideal ones are missing), centred per residue over the whole residue and, in training,
//! moved by Protenix's `random_transform` (`protenix/data/core/featurizer.py`,
//! bytedance/Protenix 3248f8e): a uniform ±1 Å translation, then a uniform random rotation.

use std::collections::HashMap;

use super::{FeatureOptions, REF_POS_MAX_TRANSLATION};
use crate::data::ccd::Component;
use crate::data::packing::SplitMix64;
use crate::data::structure::Structure;
use crate::data::tokenize::Tokens;

/// Reference conformer values per selected atom.
pub(super) struct Reference {
    pub(super) pos: Vec<f32>,
    pub(super) mask: Vec<i64>,
    pub(super) charge: Vec<f32>,
    /// The atom's index among its component's atoms, found by name.
    pub(super) ccd_atom: Vec<Option<usize>>,
}

impl Reference {
    pub(super) fn new(
        structure: &Structure,
        tokens: &Tokens,
        a: usize,
        components: &[&Component],
        options: &FeatureOptions,
        rng: &mut SplitMix64,
    ) -> Reference {
        let mut out =
            Reference { pos: vec![0.0; a * 3], mask: vec![0; a], charge: vec![0.0; a], ccd_atom: vec![None; a] };
        // Per residue: the CCD atom of each of its atoms, and the conformer's motion (centred
        // over the whole residue, then the random move).
        let mut residues: HashMap<usize, (Vec<Option<usize>>, RigidMove)> = HashMap::new();
        let mut k = 0;
        for (t, range) in tokens.atoms.iter().enumerate() {
            let (r, component) = (tokens.residue[t], components[t]);
            let first = structure.residues[r].atoms.start;
            let (ccd_atoms, motion) = residues.entry(r).or_insert_with(|| {
                let names = structure.residues[r].atoms.clone().map(|i| structure.atoms.name[i].as_str());
                let ccd_atoms = match_names(component, names);
                let present: Vec<[f32; 3]> =
                    ccd_atoms.iter().filter_map(|j| j.and_then(|j| component.atoms[j].position)).collect();
                let mut centre = [0f64; 3];
                for p in &present {
                    for (c, x) in centre.iter_mut().zip(p) {
                        *c += f64::from(*x) / present.len() as f64;
                    }
                }
                let motion = if options.augment_ref_pos {
                    let translation = [0; 3].map(|_| (2.0 * uniform(rng) - 1.0) * REF_POS_MAX_TRANSLATION);
                    RigidMove { centre, rotation: random_rotation(rng), translation }
                } else {
                    RigidMove { centre, rotation: IDENTITY, translation: [0.0; 3] }
                };
                (ccd_atoms, motion)
            });
            for i in range.clone() {
                let j = ccd_atoms[i - first];
                let ccd_atom = j.map(|j| &component.atoms[j]);
                out.ccd_atom[k] = j;
                out.charge[k] = ccd_atom.map_or(0.0, |a| a.charge as f32);
                if let Some(p) = ccd_atom.and_then(|a| a.position) {
                    out.pos[k * 3..k * 3 + 3].copy_from_slice(&motion.apply(p));
                    out.mask[k] = 1;
                }
                k += 1;
            }
        }
        debug_assert_eq!(k, a);
        out
    }

    pub(super) fn point(&self, k: usize) -> [f64; 3] {
        [0, 1, 2].map(|d| f64::from(self.pos[k * 3 + d]))
    }
}

/// The component atom named like each of `names`, or `None`. A completed residue lists its
/// atoms in the component's order, so each search starts after the previous match: linear in
/// the residue's size where searching from the start was quadratic (a ligand has hundreds).
fn match_names<'n>(component: &Component, names: impl Iterator<Item = &'n str>) -> Vec<Option<usize>> {
    let atoms = &component.atoms;
    let mut next = 0;
    names
        .map(|name| {
            let found = (0..atoms.len()).map(|step| (next + step) % atoms.len()).find(|&j| atoms[j].name == name);
            if let Some(j) = found {
                next = j + 1;
            }
            found
        })
        .collect()
}

const IDENTITY: [[f64; 3]; 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// Centre, then translate, then rotate: x' = R·(x − centre + t) (Protenix `random_transform`).
#[derive(Clone, Copy)]
struct RigidMove {
    centre: [f64; 3],
    rotation: [[f64; 3]; 3],
    translation: [f64; 3],
}

impl RigidMove {
    fn apply(&self, p: [f32; 3]) -> [f32; 3] {
        let x: [f64; 3] = [0, 1, 2].map(|d| f64::from(p[d]) - self.centre[d] + self.translation[d]);
        self.rotation.map(|row| (row[0] * x[0] + row[1] * x[1] + row[2] * x[2]) as f32)
    }
}

/// A uniform draw from [0, 1) with 53 random bits.
fn uniform(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A uniformly random rotation (Shoemake, "Uniform random rotations", Graphics Gems III, 1992).
fn random_rotation(rng: &mut SplitMix64) -> [[f64; 3]; 3] {
    use std::f64::consts::TAU;
    let (u1, u2, u3) = (uniform(rng), uniform(rng), uniform(rng));
    let (a, b) = ((1.0 - u1).sqrt(), u1.sqrt());
    let (x, y, z, w) = (a * (TAU * u2).sin(), a * (TAU * u2).cos(), b * (TAU * u3).sin(), b * (TAU * u3).cos());
    [
        [1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - z * w), 2.0 * (x * z + y * w)],
        [2.0 * (x * y + z * w), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - x * w)],
        [2.0 * (x * z - y * w), 2.0 * (y * z + x * w), 1.0 - 2.0 * (x * x + y * y)],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotations_are_orthonormal_and_seeded() {
        let mut rng = SplitMix64(7);
        let r = random_rotation(&mut rng);
        for i in 0..3 {
            for j in 0..3 {
                let dot: f64 = (0..3).map(|k| r[i][k] * r[j][k]).sum();
                assert!((dot - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1]) - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
            + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
        assert!((det - 1.0).abs() < 1e-12, "a proper rotation, det {det}");
        assert_eq!(random_rotation(&mut SplitMix64(7)), r);
    }
}
