//! Crops of real structures: the features of a crop are the crop of the features (tokens,
//! atoms, bonds and MSA columns agree), spatial crops are spatially local, interface crops
//! centre on an interface token, contiguous crops take one window per chain.

use helico::data::crop::{Crop, CropMethod, CropWeights, INTERFACE_DISTANCE, crop};
use helico::data::packing::SplitMix64;
use helico::data::structure::Structure;
use helico::data::tokenize::Tokens;
use tch::Tensor;

use crate::features::{features, longs, model};

const SIZE: usize = 96;

fn centre(s: &Structure, tokens: &Tokens, t: usize) -> Option<[f32; 3]> {
    let i = tokens.centre_atom[t];
    s.atoms.resolved[i].then_some(s.atoms.coords[i])
}

fn distance(a: [f32; 3], b: [f32; 3]) -> f32 {
    ((0..3).map(|d| (a[d] - b[d]).powi(2)).sum::<f32>()).sqrt()
}

fn index(t: &Tensor, dim: i64, idx: &[usize]) -> Tensor {
    let idx: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    t.index_select(dim, &Tensor::from_slice(&idx))
}

fn check_consistent(s: &Structure, tokens: &Tokens, c: &Crop) {
    let full = features(s, tokens, false, 0);
    let cropped_tokens = tokens.select(&c.tokens);
    let part = features(s, &cropped_tokens, false, 0);
    assert!(c.tokens.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    assert_eq!(c.tokens.len(), SIZE.min(tokens.len()));
    // The crop's atoms are exactly the atoms of its tokens.
    let atoms: Vec<usize> = c.tokens.iter().flat_map(|&t| tokens.atoms[t].clone()).collect();
    assert_eq!(part.atoms, atoms);
    let atom_rows: Vec<usize> = atoms.iter().map(|i| full.atoms.iter().position(|x| x == i).unwrap()).collect();
    for (name, a, b) in [
        ("residue_index", &part.residue_index, index(&full.residue_index, 0, &c.tokens)),
        ("asym_id", &part.asym_id, index(&full.asym_id, 0, &c.tokens)),
        ("sym_id", &part.sym_id, index(&full.sym_id, 0, &c.tokens)),
        ("restype", &part.restype, index(&full.restype, 0, &c.tokens)),
        ("token_bonds", &part.token_bonds, index(&index(&full.token_bonds, 0, &c.tokens), 1, &c.tokens)),
        ("ref_pos", &part.ref_pos, index(&full.ref_pos, 0, &atom_rows)),
        ("ref_element", &part.ref_element, index(&full.ref_element, 0, &atom_rows)),
        ("ref_space_uid", &part.ref_space_uid, index(&full.ref_space_uid, 0, &atom_rows)),
        ("coordinate", &part.coordinate, index(&full.coordinate, 0, &atom_rows)),
        ("coordinate_mask", &part.coordinate_mask, index(&full.coordinate_mask, 0, &atom_rows)),
    ] {
        assert!(a.equal(&b), "{name}: the crop's features are the crop of the features");
    }
    // Atom → token and frame indices stay inside the crop.
    let n = c.tokens.len() as i64;
    assert!(longs(&part.atom_to_token_idx).iter().all(|&t| (0..n).contains(&t)));
    assert!(longs(&part.frame_atom_index).iter().all(|&k| (-1..atoms.len() as i64).contains(&k)));
    // An MSA has one column per token: its crop is the crop's columns. A single-sequence MSA
    // of restype classes stands in for the real one here.
    let msa = longs(&full.restype.argmax(-1, false));
    assert_eq!(c.columns(&msa, tokens.len()), longs(&part.restype.argmax(-1, false)));
    let two_rows: Vec<i64> = msa.iter().chain(msa.iter()).copied().collect();
    assert_eq!(c.columns(&two_rows, tokens.len()).len(), 2 * c.tokens.len());
}

#[test]
fn spatial_crops_are_local_and_consistent() {
    let (s, tokens) = model("5kc1");
    assert!(tokens.len() > SIZE * 4, "a structure larger than the crop");
    for seed in 0..4 {
        let c = crop(&s, &tokens, SIZE, CropMethod::Spatial, &[], &mut SplitMix64(seed));
        let reference = centre(&s, &tokens, c.reference.unwrap()).unwrap();
        let chosen: std::collections::HashSet<usize> = c.tokens.iter().copied().collect();
        let farthest_in =
            c.tokens.iter().filter_map(|&t| centre(&s, &tokens, t)).map(|p| distance(p, reference)).fold(0.0, f32::max);
        let nearest_out = (0..tokens.len())
            .filter(|t| !chosen.contains(t))
            .filter_map(|t| centre(&s, &tokens, t))
            .map(|p| distance(p, reference))
            .fold(f32::INFINITY, f32::min);
        let tie_slack = tokens.len() as f32 * 1e-3;
        assert!(farthest_in <= nearest_out + tie_slack, "seed {seed}: {farthest_in} Å in, {nearest_out} Å out");
        check_consistent(&s, &tokens, &c);
        assert_eq!(c, crop(&s, &tokens, SIZE, CropMethod::Spatial, &[], &mut SplitMix64(seed)), "seeded");
    }
}

#[test]
fn interface_crops_centre_on_an_interface_token() {
    let (s, tokens) = model("5kc1");
    let chain = |t: usize| s.residues[tokens.residue[t]].chain;
    for seed in 0..4 {
        let c = crop(&s, &tokens, SIZE, CropMethod::SpatialInterface, &[0], &mut SplitMix64(seed));
        let r = c.reference.unwrap();
        assert_eq!(chain(r), 0, "the reference lies in the requested chain");
        let p = centre(&s, &tokens, r).unwrap();
        let partner = (0..tokens.len())
            .filter(|&t| chain(t) != chain(r))
            .filter_map(|t| centre(&s, &tokens, t))
            .any(|q| distance(p, q) < INTERFACE_DISTANCE);
        assert!(partner, "seed {seed}: token {r} has a token of another chain within 15 Å");
        check_consistent(&s, &tokens, &c);
    }
}

#[test]
fn contiguous_crops_take_one_window_per_chain() {
    let (s, tokens) = model("5kc1");
    let chain = |t: usize| s.residues[tokens.residue[t]].chain;
    for seed in 0..4 {
        let c = crop(&s, &tokens, SIZE, CropMethod::Contiguous, &[], &mut SplitMix64(seed));
        assert_eq!(c.reference, None);
        for ch in 0..s.chains.len() {
            let mine: Vec<usize> = c.tokens.iter().copied().filter(|&t| chain(t) == ch).collect();
            assert!(mine.windows(2).all(|w| w[1] == w[0] + 1), "seed {seed} chain {ch}: {mine:?}");
        }
        check_consistent(&s, &tokens, &c);
    }
    // A structure smaller than the crop is kept whole, whatever the method.
    let (small, small_tokens) = model("1ubq");
    let whole =
        crop(&small, &small_tokens, 1000, CropWeights::default().choose(&mut SplitMix64(0)), &[], &mut SplitMix64(0));
    assert_eq!(whole.tokens, (0..small_tokens.len()).collect::<Vec<_>>());
}
