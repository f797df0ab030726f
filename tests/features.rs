//! AF3 features of real structures: shapes and dtypes, and properties that can be checked by
//! hand against the CCD and the structure (one-hot classes, reference conformers as rigid
//! copies of the CCD's, bonds, representative atoms, frames).

use std::collections::{HashMap, HashSet};

use helico::data::features::{FeatureOptions, Features};
use helico::data::packing::SplitMix64;
use helico::data::structure::{MoleculeType, Options, Structure};
use helico::data::tokenize::{RESTYPE_UNK, TokenizeOptions, Tokens, restype_index, tokenize};
use tch::{Kind, Tensor};

use crate::data_support::{ccd, repo_path};

pub fn model(file: &str) -> (Structure, Tokens) {
    let observed =
        Structure::read(repo_path(&format!("data/openfold3/mmcifs/{file}.cif")), &Options::default()).unwrap();
    let (s, _) = observed.complete(ccd()).unwrap();
    let tokens = tokenize(&s, &TokenizeOptions::default());
    (s, tokens)
}

pub fn features(s: &Structure, tokens: &Tokens, augment: bool, seed: u64) -> Features {
    Features::new(s, tokens, ccd(), &FeatureOptions { augment_ref_pos: augment }, &mut SplitMix64(seed)).unwrap()
}

pub fn longs(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(&t.flatten(0, -1)).unwrap()
}

pub fn floats(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.flatten(0, -1)).unwrap()
}

fn argmax_rows(t: &Tensor) -> Vec<i64> {
    longs(&t.flatten(1, -1).argmax(-1, false))
}

fn check_shapes(f: &Features, n: i64, a: i64) {
    let expect = |name: &str, t: &Tensor, shape: &[i64], kind: Kind| {
        assert_eq!((t.size(), t.kind()), (shape.to_vec(), kind), "{name}");
    };
    for (name, t) in [
        ("token_index", &f.token_index),
        ("residue_index", &f.residue_index),
        ("asym_id", &f.asym_id),
        ("entity_id", &f.entity_id),
        ("sym_id", &f.sym_id),
        ("has_frame", &f.has_frame),
    ] {
        expect(name, t, &[n], Kind::Int64);
    }
    expect("restype", &f.restype, &[n, 32], Kind::Float);
    expect("token_bonds", &f.token_bonds, &[n, n], Kind::Float);
    expect("frame_atom_index", &f.frame_atom_index, &[n, 3], Kind::Int64);
    expect("ref_pos", &f.ref_pos, &[a, 3], Kind::Float);
    expect("ref_element", &f.ref_element, &[a, 128], Kind::Float);
    expect("ref_charge", &f.ref_charge, &[a], Kind::Float);
    expect("ref_atom_name_chars", &f.ref_atom_name_chars, &[a, 4, 64], Kind::Float);
    expect("coordinate", &f.coordinate, &[a, 3], Kind::Float);
    expect("resolution", &f.resolution, &[1], Kind::Float);
    for (name, t) in [
        ("ref_mask", &f.ref_mask),
        ("ref_space_uid", &f.ref_space_uid),
        ("atom_to_token_idx", &f.atom_to_token_idx),
        ("atom_to_tokatom_idx", &f.atom_to_tokatom_idx),
        ("is_protein", &f.is_protein),
        ("is_rna", &f.is_rna),
        ("is_dna", &f.is_dna),
        ("is_ligand", &f.is_ligand),
        ("pae_rep_atom_mask", &f.pae_rep_atom_mask),
        ("distogram_rep_atom_mask", &f.distogram_rep_atom_mask),
        ("plddt_m_rep_atom_mask", &f.plddt_m_rep_atom_mask),
        ("coordinate_mask", &f.coordinate_mask),
    ] {
        expect(name, t, &[a], Kind::Int64);
    }
}

#[test]
fn features_of_real_structures() {
    let ccd = ccd();
    for file in ["1ubq", "2q2k", "1pzp", "5kc1", "7l39", "1y57"] {
        let (s, tokens) = model(file);
        let f = features(&s, &tokens, false, 0);
        let (n, a) = (tokens.len(), f.atoms.len());
        check_shapes(&f, n as i64, a as i64);
        assert_eq!(f.atoms, tokens.atom_indices());

        // restype: a standard residue's own class, ligands UNK, never gap.
        let restype = argmax_rows(&f.restype);
        assert!(floats(&f.restype.sum_dim_intlist(-1, false, Kind::Float)).iter().all(|&x| x == 1.0));
        for (t, &class) in restype.iter().enumerate() {
            let residue = &s.residues[tokens.residue[t]];
            let want = match residue.molecule {
                MoleculeType::Ligand => RESTYPE_UNK,
                _ => restype_index(residue.name.as_str()).unwrap_or(class as usize),
            };
            assert_eq!(class as usize, want, "{file} token {t} {}", residue.name);
            assert_ne!(class, 31, "{file}: no gap in restype");
        }

        // Elements and names decode back; one representative and one centre atom per token.
        let element = argmax_rows(&f.ref_element);
        let chars = longs(&f.ref_atom_name_chars.argmax(-1, false));
        for (k, &i) in f.atoms.iter().enumerate() {
            assert_eq!(element[k], i64::from(s.atoms.element[i].atomic_number()) - 1, "{file} atom {k}");
            let name: String = chars[k * 4..k * 4 + 4].iter().map(|&c| char::from((c + 32) as u8)).collect();
            assert_eq!(name.trim_end(), s.atoms.name[i].as_str());
        }
        let atom_token = longs(&f.atom_to_token_idx);
        for mask in [&f.pae_rep_atom_mask, &f.distogram_rep_atom_mask] {
            let mut per_token = vec![0; n];
            for (k, &m) in longs(mask).iter().enumerate() {
                per_token[atom_token[k] as usize] += m;
            }
            assert!(per_token.iter().all(|&c| c == 1), "{file}: one per token");
        }

        // ref_space_uid: one value per residue, shared by all its atoms.
        let uid = longs(&f.ref_space_uid);
        let residue_of = s.atom_residues();
        let mut uid_of_residue: HashMap<usize, i64> = HashMap::new();
        for (k, &i) in f.atoms.iter().enumerate() {
            assert_eq!(*uid_of_residue.entry(residue_of[i]).or_insert(uid[k]), uid[k], "{file}");
        }
        let distinct: HashSet<i64> = uid_of_residue.values().copied().collect();
        assert_eq!(distinct.len(), uid_of_residue.len(), "{file}: ref_space_uid is unique per residue");

        // ref_pos without augmentation: the CCD conformer, centred per residue.
        let (pos, mask) = (floats(&f.ref_pos), longs(&f.ref_mask));
        let mut sums: HashMap<i64, ([f64; 3], usize)> = HashMap::new();
        for k in 0..a {
            if mask[k] == 1 {
                let e = sums.entry(uid[k]).or_default();
                for d in 0..3 {
                    e.0[d] += f64::from(pos[k * 3 + d]);
                }
                e.1 += 1;
            }
        }
        for (sum, count) in sums.values() {
            assert!(sum.iter().all(|x| (x / *count as f64).abs() < 1e-3), "{file}: centred conformer");
        }

        // Token bonds: symmetric, empty diagonal, no bonds between standard polymer residues,
        // every intra-ligand CCD bond present.
        let bonds = floats(&f.token_bonds);
        for i in 0..n {
            assert_eq!(bonds[i * n + i], 0.0);
            for j in 0..n {
                assert_eq!(bonds[i * n + j], bonds[j * n + i]);
                if bonds[i * n + j] == 1.0 {
                    let (ri, rj) = (&s.residues[tokens.residue[i]], &s.residues[tokens.residue[j]]);
                    assert!(
                        ri.molecule == MoleculeType::Ligand
                            || rj.molecule == MoleculeType::Ligand
                            || tokens.atomized[i] && tokens.atomized[j],
                        "{file}: a token bond between standard polymer tokens {i} and {j}"
                    );
                }
            }
        }
        let token_of: HashMap<usize, usize> =
            (0..n).flat_map(|t| tokens.atoms[t].clone().map(move |i| (i, t))).collect();
        for (r, residue) in s.residues.iter().enumerate().filter(|(_, r)| r.molecule == MoleculeType::Ligand) {
            let component = ccd.get(residue.name.as_str()).unwrap();
            for bond in &component.bonds {
                let [x, y] = bond.atoms.map(|k| s.find_atom(r, &component.atoms[k].name));
                if let (Some(x), Some(y)) = (x, y) {
                    assert_eq!(
                        bonds[token_of[&x] * n + token_of[&y]],
                        1.0,
                        "{file} {}: CCD bond",
                        s.describe_residue(r)
                    );
                }
            }
        }

        // Frames: N-CA-C and C1'-C3'-C4' for standard residues; ligand atoms between neighbours.
        let (has_frame, frames) = (longs(&f.has_frame), longs(&f.frame_atom_index));
        for t in 0..n {
            let frame = &frames[t * 3..t * 3 + 3];
            let names: Vec<&str> =
                frame.iter().map(|&k| if k < 0 { "-" } else { s.atoms.name[f.atoms[k as usize]].as_str() }).collect();
            let residue = &s.residues[tokens.residue[t]];
            if !tokens.atomized[t] {
                let want =
                    if residue.molecule == MoleculeType::Protein { ["N", "CA", "C"] } else { ["C1'", "C3'", "C4'"] };
                assert_eq!((has_frame[t], names.as_slice()), (1, want.as_slice()), "{file} token {t}");
            } else if residue.atoms.len() < 3 {
                assert_eq!(has_frame[t], 0, "{file}: ions and two-atom ligands have no frame");
            } else {
                assert_eq!(f.atoms[frame[1] as usize], tokens.centre_atom[t], "{file}: b is the token atom");
                assert!(frame.iter().all(|&k| residue_of[f.atoms[k as usize]] == tokens.residue[t]));
            }
        }

        // Ground truth: zero and masked where unresolved.
        let (coords, coord_mask) = (floats(&f.coordinate), longs(&f.coordinate_mask));
        for (k, &i) in f.atoms.iter().enumerate() {
            assert_eq!(coord_mask[k] == 1, s.atoms.resolved[i]);
            assert_eq!(&coords[k * 3..k * 3 + 3], &s.atoms.coords[i]);
        }
        let one_of_four = [&f.is_protein, &f.is_rna, &f.is_dna, &f.is_ligand].map(longs);
        assert!(
            (0..a).all(|k| one_of_four.iter().map(|v| v[k]).sum::<i64>() == 1),
            "{file}: one molecule type per atom"
        );
        eprintln!("{file}: {n} tokens, {a} atoms");
    }
}

#[test]
fn reference_conformers_are_rigid_copies_of_the_ccd() {
    let (s, tokens) = model("1pzp");
    let plain = features(&s, &tokens, false, 0);
    let a = features(&s, &tokens, true, 11);
    let b = features(&s, &tokens, true, 11);
    let c = features(&s, &tokens, true, 12);
    assert_eq!(floats(&a.ref_pos), floats(&b.ref_pos), "same seed, same conformers");
    assert_ne!(floats(&a.ref_pos), floats(&c.ref_pos), "another seed, other rotations");
    let uid = longs(&plain.ref_space_uid);
    let mask = longs(&plain.ref_mask);
    let (p, q) = (floats(&plain.ref_pos), floats(&a.ref_pos));
    let dist =
        |v: &[f32], i: usize, j: usize| ((0..3).map(|d| (v[i * 3 + d] - v[j * 3 + d]).powi(2)).sum::<f32>()).sqrt();
    let mut moved = 0;
    for i in 0..uid.len() {
        for j in i + 1..uid.len().min(i + 40) {
            if uid[i] == uid[j] && mask[i] == 1 && mask[j] == 1 {
                assert!((dist(&p, i, j) - dist(&q, i, j)).abs() < 1e-3, "distances within a residue are kept");
            }
        }
        moved += usize::from((0..3).any(|d| (p[i * 3 + d] - q[i * 3 + d]).abs() > 1e-3));
    }
    assert!(moved > uid.len() / 2, "augmentation moves the conformers");
    // Protenix RES_ATOMS_DICT["ALA"]: N 0, CA 1, C 2, O 3, CB 4.
    let tokatom = longs(&plain.atom_to_tokatom_idx);
    let ala = (0..tokens.len()).find(|&t| s.residues[tokens.residue[t]].name.as_str() == "ALA").unwrap();
    let names: Vec<(&str, i64)> = tokens.atoms[ala]
        .clone()
        .map(|i| (s.atoms.name[i].as_str(), tokatom[plain.atoms.iter().position(|&x| x == i).unwrap()]))
        .collect();
    assert_eq!(names, [("N", 0), ("CA", 1), ("C", 2), ("O", 3), ("CB", 4)]);
}
