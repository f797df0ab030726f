//! The input features an AF3 model consumes (AF3 supplement §2.8, Table 5), for one structure
//! and a selection of its tokens (all of them, or a crop): a typed struct of CPU tensors named
//! as Protenix names them (`protenix/data/core/featurizer.py`, bytedance/Protenix 3248f8e), so
//! that a Protenix checkpoint reads them unchanged. Shapes use N tokens and A atoms; A is the
//! atoms of the selected tokens, in token order.
//!
//! Choices and deviations, each with its reason:
//! - `ref_pos` is the CCD ideal conformer (model coordinates where ideal ones are missing),
//!   centred per residue over the residue's atoms that have a position, then, in training,
//!   moved by a uniform ±1 Å translation and a uniform random rotation (Protenix
//!   `random_transform`). Protenix generates an RDKit ETKDG conformer first and falls back to the
//!   CCD coordinates; helico has no RDKit and always uses the CCD coordinates. Protenix centres
//!   after cropping over the residue's cropped atoms; helico centres over the whole residue so a
//!   residue's reference frame does not depend on the crop (`features/reference.rs`).
//! - `entity_id` is the entity's position in `_entity` (Protenix sorts the id strings, so "10"
//!   comes before "2"); `asym_id` is the chain's position in the structure; `sym_id` counts
//!   copies per entity in chain order; `ref_space_uid` is the residue's position in the structure.
//! - `restype` of an atomized polymer residue is its parent's class from the CCD one-letter code
//!   (MSE atoms are MET); ligands are UNK (20), never gap. The Python reference gave every
//!   atomized residue class 20.
//! - Element classes are atomic number − 1 (AF3 Table 5); an unknown element (`X`, only in
//!   structures not passed through [`Structure::complete`]) takes the last class, 127.

mod reference;

use std::collections::HashMap;

use tch::kind::Element as TensorElement;
use tch::{Device, Kind, Tensor};

use crate::data::ccd::{self, Ccd, Component};
use crate::data::packing::SplitMix64;
use crate::data::structure::{Element, MoleculeType, Result, Structure, StructureError};
use crate::data::tokenize::{
    N_RESTYPES, RESTYPE_DNA_UNK, RESTYPE_RNA_UNK, RESTYPE_UNK, RESTYPES, Tokens, is_standard, restype_index,
};

use reference::Reference;

/// AF3 supplement Table 5 `ref_element`: one-hot over atomic numbers up to 128.
pub const N_ELEMENT_CLASSES: usize = 128;
/// AF3 supplement Table 5 `ref_atom_name_chars`: 4 characters per atom name …
pub const ATOM_NAME_CHARS: usize = 4;
/// … each one-hot over `ord(c) − 32` clamped to 64 classes.
pub const ATOM_NAME_CHAR_CLASSES: usize = 64;
/// Protenix `random_transform(max_translation=1.0)`: Å of uniform translation before rotation.
pub const REF_POS_MAX_TRANSLATION: f64 = 1.0;
/// AF3 supplement §4.3.2: a ligand frame whose three atoms are within 25° of a line is invalid.
pub const FRAME_COLINEAR_DEGREES: f64 = 25.0;

/// Choices that differ between training and inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeatureOptions {
    /// Randomly rotate and translate each residue's reference conformer (training; Protenix
    /// `ref_pos_augment`). Off, `ref_pos` is only centred.
    pub augment_ref_pos: bool,
}

/// AF3 input features for N tokens and A atoms (CPU tensors).
#[derive(Debug)]
pub struct Features {
    /// 0..N in token order (Protenix numbers the selected tokens): [N] i64.
    pub token_index: Tensor,
    /// `label_seq_id` for polymer residues, else the residue's 1-based position in its chain: [N] i64.
    pub residue_index: Tensor,
    /// Chain position in the structure: [N] i64.
    pub asym_id: Tensor,
    /// Entity position in `_entity`: [N] i64.
    pub entity_id: Tensor,
    /// Copy number of the chain among chains of its entity, from 0: [N] i64.
    pub sym_id: Tensor,
    /// One-hot `restype` (see [`RESTYPES`]): [N, 32] f32.
    pub restype: Tensor,
    /// 1 where any atom of token i bonds any atom of token j, for polymer–ligand and
    /// ligand–ligand bonds (Protenix `get_bond_features`), symmetric: [N, N] f32.
    pub token_bonds: Tensor,
    /// 1 where the token has a valid frame (AF3 §4.3.2): [N] i64.
    pub has_frame: Tensor,
    /// Atoms (a, b, c) of each token's frame, indices into the A atoms; −1 where absent: [N, 3] i64.
    pub frame_atom_index: Tensor,
    /// Reference conformer positions, Å: [A, 3] f32.
    pub ref_pos: Tensor,
    /// 1 where the reference conformer has the atom: [A] i64.
    pub ref_mask: Tensor,
    /// One-hot atomic number − 1: [A, 128] f32.
    pub ref_element: Tensor,
    /// CCD formal charge (the model applies arcsinh): [A] f32.
    pub ref_charge: Tensor,
    /// One-hot characters of the atom name: [A, 4, 64] f32.
    pub ref_atom_name_chars: Tensor,
    /// The residue (chain, residue) each atom's conformer belongs to: [A] i64.
    pub ref_space_uid: Tensor,
    /// Token of each atom: [A] i64.
    pub atom_to_token_idx: Tensor,
    /// Position of the atom in its standard residue's CCD heavy-atom list, 0 for atomized
    /// tokens (Protenix `RES_ATOMS_DICT`): [A] i64.
    pub atom_to_tokatom_idx: Tensor,
    /// Molecule type of the atom's chain, the most common over its atoms (Protenix
    /// `add_atom_mol_type_mask`): [A] i64 each.
    pub is_protein: Tensor,
    pub is_rna: Tensor,
    pub is_dna: Tensor,
    pub is_ligand: Tensor,
    /// Token centre atoms (pae and ptm representative): [A] i64.
    pub pae_rep_atom_mask: Tensor,
    /// Representative atoms for the distogram (AF3 §4.4): [A] i64.
    pub distogram_rep_atom_mask: Tensor,
    /// Cα and C1′ of standard residues, the pLDDT reference atoms (AF3 §4.3.1): [A] i64.
    pub plddt_m_rep_atom_mask: Tensor,
    /// Ground-truth positions, Å, zero where unresolved: [A, 3] f32.
    pub coordinate: Tensor,
    /// 1 where the file resolves the atom: [A] i64.
    pub coordinate_mask: Tensor,
    /// Å; −1 when the entry reports none: [1] f32.
    pub resolution: Tensor,
    /// The structure's atom behind each of the A atoms (not a model input).
    pub atoms: Vec<usize>,
}

impl Features {
    /// Features of `tokens` (all tokens of `structure`, or a crop of them). Every residue's
    /// component must be in `ccd`; `rng` draws the conformer augmentation.
    pub fn new(
        structure: &Structure,
        tokens: &Tokens,
        ccd: &Ccd,
        options: &FeatureOptions,
        rng: &mut SplitMix64,
    ) -> Result<Features> {
        let atoms = tokens.atom_indices();
        let (n, a) = (tokens.len(), atoms.len());
        let residue_of = structure.atom_residues();
        let components = components(structure, tokens, ccd)?;
        let selection = Selection::new(structure, tokens);

        let chain_sym = sym_ids(structure);
        let (mut residue_index, mut asym, mut entity, mut sym, mut restype) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (&r, component) in tokens.residue.iter().zip(&components) {
            let residue = &structure.residues[r];
            let chain = &structure.chains[residue.chain];
            residue_index.push(match residue.label_seq_id {
                Some(seq) => i64::from(seq),
                None => (r - chain.residues.start + 1) as i64,
            });
            asym.push(residue.chain as i64);
            entity.push(chain.entity as i64);
            sym.push(chain_sym[residue.chain]);
            restype.push(token_restype(structure, r, component));
        }

        let reference = Reference::new(structure, tokens, a, &components, options, rng);
        let (has_frame, frames) = frames(structure, tokens, &selection, &reference);
        let chain_types = chain_molecule_types(structure);

        let mut atom_to_token = Vec::with_capacity(a);
        let mut tokatom = vec![0i64; a];
        let (mut pae, mut disto, mut plddt) = (vec![0i64; a], vec![0i64; a], vec![0i64; a]);
        let mut k = 0;
        for t in 0..n {
            let r = tokens.residue[t];
            let standard = !tokens.atomized[t] && is_standard(structure, r);
            for i in tokens.atoms[t].clone() {
                atom_to_token.push(t as i64);
                if standard {
                    let heavy = reference.ccd_atom[k].and_then(|j| heavy_index(components[t], j));
                    tokatom[k] = heavy.unwrap_or(0) as i64;
                    plddt[k] = i64::from(matches!(structure.atoms.name[i].as_str(), "CA" | "C1'"));
                }
                k += 1;
            }
            pae[selection.local(tokens.centre_atom[t]).expect("a token's centre atom is one of its atoms")] = 1;
            disto[selection.local(tokens.rep_atom[t]).expect("a token's representative atom is one of its atoms")] = 1;
        }

        let mut element = Vec::with_capacity(a);
        let mut name_chars = Vec::with_capacity(a * ATOM_NAME_CHARS);
        let mut types = [vec![0i64; a], vec![0i64; a], vec![0i64; a], vec![0i64; a]];
        let (mut coordinate, mut coordinate_mask) = (Vec::with_capacity(a * 3), Vec::with_capacity(a));
        for (k, &i) in atoms.iter().enumerate() {
            element.push(element_class(structure.atoms.element[i]));
            let name = structure.atoms.name[i].bytes();
            for c in 0..ATOM_NAME_CHARS {
                let ch = match name.get(c) {
                    Some(&b) if b != 0 => b,
                    _ => b' ',
                };
                name_chars.push(usize::from(ch).saturating_sub(32).min(ATOM_NAME_CHAR_CLASSES - 1));
            }
            let chain = structure.residues[residue_of[i]].chain;
            types[chain_types[chain] as usize][k] = 1;
            coordinate.extend(structure.atoms.coords[i]);
            coordinate_mask.push(i64::from(structure.atoms.resolved[i]));
        }

        let [is_protein, is_rna, is_dna, is_ligand] = types.map(|v| tensor(&v, &[a]));
        Ok(Features {
            token_index: Tensor::arange(n as i64, (Kind::Int64, Device::Cpu)),
            residue_index: tensor(&residue_index, &[n]),
            asym_id: tensor(&asym, &[n]),
            entity_id: tensor(&entity, &[n]),
            sym_id: tensor(&sym, &[n]),
            restype: one_hot(&restype, N_RESTYPES, &[n, N_RESTYPES]),
            token_bonds: token_bonds(structure, tokens, &selection, &residue_of),
            has_frame: tensor(&has_frame, &[n]),
            frame_atom_index: tensor(&frames, &[n, 3]),
            ref_pos: tensor(&reference.pos, &[a, 3]),
            ref_mask: tensor(&reference.mask, &[a]),
            ref_element: one_hot(&element, N_ELEMENT_CLASSES, &[a, N_ELEMENT_CLASSES]),
            ref_charge: tensor(&reference.charge, &[a]),
            ref_atom_name_chars: one_hot(
                &name_chars,
                ATOM_NAME_CHAR_CLASSES,
                &[a, ATOM_NAME_CHARS, ATOM_NAME_CHAR_CLASSES],
            ),
            ref_space_uid: tensor(&atoms.iter().map(|&i| residue_of[i] as i64).collect::<Vec<_>>(), &[a]),
            atom_to_token_idx: tensor(&atom_to_token, &[a]),
            atom_to_tokatom_idx: tensor(&tokatom, &[a]),
            is_protein,
            is_rna,
            is_dna,
            is_ligand,
            pae_rep_atom_mask: tensor(&pae, &[a]),
            distogram_rep_atom_mask: tensor(&disto, &[a]),
            plddt_m_rep_atom_mask: tensor(&plddt, &[a]),
            coordinate: tensor(&coordinate, &[a, 3]),
            coordinate_mask: tensor(&coordinate_mask, &[a]),
            resolution: tensor(&[structure.metadata.resolution.unwrap_or(-1.0)], &[1]),
            atoms,
        })
    }
}

/// A new CPU tensor of `shape` whose elements, zeroed, `write` fills in.
///
/// `Tensor::from_slice` zero-fills a new tensor and then copies into it; past 32k elements
/// that fill is a parallel ATen kernel, and on a machine whose cores are busy a parallel
/// region waits for a scheduler slice: it made `Features::new` take 5–30 ms where its work is
/// ~1 ms (docs/notes.md). Writing once into an unfilled tensor runs on the calling thread only.
fn cpu_tensor<T: TensorElement + Copy>(shape: &[usize], write: impl FnOnce(&mut [T])) -> Tensor {
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    let tensor = Tensor::empty(dims.as_slice(), (T::KIND, Device::Cpu));
    let numel = tensor.numel();
    if numel > 0 {
        let data = tensor.data_ptr().cast::<T>();
        // SAFETY: `tensor` was just allocated by libtorch's CPU allocator (64-byte aligned,
        // contiguous, `numel` elements of kind T::KIND, whose layout is T's) and nothing else
        // refers to it. Zeroing through the raw pointer first makes every element a valid T
        // (all-zero bits are 0 for the f32 and i64 used here) before a slice refers to them.
        let slice = unsafe {
            std::ptr::write_bytes(data, 0, numel);
            std::slice::from_raw_parts_mut(data, numel)
        };
        write(slice);
    }
    tensor
}

/// `values` as a tensor of `shape` (one copy, see [`cpu_tensor`]).
fn tensor<T: TensorElement + Copy>(values: &[T], shape: &[usize]) -> Tensor {
    cpu_tensor(shape, |data: &mut [T]| data.copy_from_slice(values))
}

/// One-hot rows of `width` classes, reshaped to `shape`: f32.
fn one_hot(classes: &[usize], width: usize, shape: &[usize]) -> Tensor {
    cpu_tensor(shape, |data: &mut [f32]| {
        for (row, &class) in classes.iter().enumerate() {
            data[row * width + class] = 1.0;
        }
    })
}

/// Where each structure atom went: its position among the A selected atoms and its token, as
/// arrays over all of the structure's atoms. Hash maps here cost more than the features
/// themselves: `token_bonds` looks up both atoms of every bond of the whole structure.
struct Selection {
    local: Vec<u32>,
    token: Vec<u32>,
}

/// An atom outside the selected tokens, in [`Selection`].
const NOT_SELECTED: u32 = u32::MAX;

impl Selection {
    fn new(structure: &Structure, tokens: &Tokens) -> Selection {
        let mut local = vec![NOT_SELECTED; structure.atoms.len()];
        let mut token = vec![NOT_SELECTED; structure.atoms.len()];
        let mut k = 0u32;
        for (t, range) in tokens.atoms.iter().enumerate() {
            for i in range.clone() {
                local[i] = k;
                token[i] = t as u32;
                k += 1;
            }
        }
        Selection { local, token }
    }

    fn local(&self, atom: usize) -> Option<usize> {
        Some(self.local[atom]).filter(|&k| k != NOT_SELECTED).map(|k| k as usize)
    }

    fn token(&self, atom: usize) -> Option<usize> {
        Some(self.token[atom]).filter(|&t| t != NOT_SELECTED).map(|t| t as usize)
    }
}

/// The CCD component of each token's residue.
fn components<'c>(structure: &Structure, tokens: &Tokens, ccd: &'c Ccd) -> Result<Vec<&'c Component>> {
    let mut out: Vec<&Component> = Vec::with_capacity(tokens.len());
    for (t, &r) in tokens.residue.iter().enumerate() {
        // An atomized residue's tokens are consecutive: look its component up once.
        if t > 0 && tokens.residue[t - 1] == r {
            out.push(out[t - 1]);
            continue;
        }
        let name = structure.residues[r].name;
        let component = ccd.get(name.as_str()).ok_or_else(|| StructureError::UnknownComponent {
            path: structure.path.clone(),
            structure: structure.id.clone(),
            place: structure.describe_residue(r),
            comp_id: name.to_string(),
        })?;
        out.push(component);
    }
    Ok(out)
}

/// Copy number per chain among chains of the same entity, in chain order.
fn sym_ids(structure: &Structure) -> Vec<i64> {
    let mut seen: HashMap<usize, i64> = HashMap::new();
    structure
        .chains
        .iter()
        .map(|c| {
            let count = seen.entry(c.entity).or_default();
            *count += 1;
            *count - 1
        })
        .collect()
}

/// Protenix `cano_seq_resname` then `STD_RESIDUES_WITH_GAP`: a residue's own class when
/// standard, its parent's by one-letter code when a modified polymer residue, else unknown.
fn token_restype(structure: &Structure, r: usize, component: &Component) -> usize {
    let residue = &structure.residues[r];
    if residue.molecule == MoleculeType::Ligand {
        return RESTYPE_UNK;
    }
    if let Some(class) = restype_index(residue.name.as_str()) {
        return class;
    }
    let code = component.one_letter_code.as_deref().filter(|c| c.len() == 1).unwrap_or("");
    let parent = match residue.molecule {
        MoleculeType::Protein => RESTYPES[..RESTYPE_UNK].iter().position(|r| one_letter(r) == Some(code)),
        MoleculeType::Rna => {
            RESTYPES[RESTYPE_UNK + 1..RESTYPE_RNA_UNK].iter().position(|r| *r == code).map(|i| i + RESTYPE_UNK + 1)
        }
        MoleculeType::Dna => RESTYPES[RESTYPE_RNA_UNK + 1..RESTYPE_DNA_UNK]
            .iter()
            .position(|r| r.strip_prefix('D') == Some(code))
            .map(|i| i + RESTYPE_RNA_UNK + 1),
        MoleculeType::Ligand => None,
    };
    parent.unwrap_or(match residue.molecule {
        MoleculeType::Rna => RESTYPE_RNA_UNK,
        MoleculeType::Dna => RESTYPE_DNA_UNK,
        _ => RESTYPE_UNK,
    })
}

/// IUPAC one-letter codes of the 20 standard amino acids.
fn one_letter(three: &str) -> Option<&'static str> {
    const CODES: [(&str, &str); 20] = [
        ("ALA", "A"),
        ("ARG", "R"),
        ("ASN", "N"),
        ("ASP", "D"),
        ("CYS", "C"),
        ("GLN", "Q"),
        ("GLU", "E"),
        ("GLY", "G"),
        ("HIS", "H"),
        ("ILE", "I"),
        ("LEU", "L"),
        ("LYS", "K"),
        ("MET", "M"),
        ("PHE", "F"),
        ("PRO", "P"),
        ("SER", "S"),
        ("THR", "T"),
        ("TRP", "W"),
        ("TYR", "Y"),
        ("VAL", "V"),
    ];
    CODES.iter().find(|(t, _)| *t == three).map(|(_, o)| *o)
}

/// The position of the component's atom `j` among its non-hydrogen atoms (leaving atoms
/// included); `None` for a hydrogen.
fn heavy_index(component: &Component, j: usize) -> Option<usize> {
    let heavy = |a: &ccd::Atom| Element::from_symbol(&a.element).is_none_or(|e| !e.is_hydrogen());
    heavy(&component.atoms[j]).then(|| component.atoms[..j].iter().filter(|a| heavy(a)).count())
}

fn element_class(element: Element) -> usize {
    match element.atomic_number() {
        0 => N_ELEMENT_CLASSES - 1,
        z => usize::from(z) - 1,
    }
}

/// The most common molecule type over each chain's atoms; ties go to the alphabetically last
/// of "dna", "ligand", "protein", "rna" (Protenix sorts names, then counts, and takes the last).
/// Returned as 0 protein, 1 rna, 2 dna, 3 ligand, the order of `Features::is_*`.
fn chain_molecule_types(structure: &Structure) -> Vec<u8> {
    const BY_NAME: [(MoleculeType, u8); 4] =
        [(MoleculeType::Dna, 2), (MoleculeType::Ligand, 3), (MoleculeType::Protein, 0), (MoleculeType::Rna, 1)];
    structure
        .chains
        .iter()
        .map(|chain| {
            let count = |m: MoleculeType| -> usize {
                structure.residues[chain.residues.clone()]
                    .iter()
                    .filter(|r| r.molecule == m)
                    .map(|r| r.atoms.len())
                    .sum()
            };
            let mut best = (0, 3);
            for (m, code) in BY_NAME {
                let c = count(m);
                if c >= best.0 {
                    best = (c, code);
                }
            }
            best.1
        })
        .collect()
}

/// Protenix `get_bond_features`: bonds between selected atoms, except polymer–polymer bonds
/// between standard residues, between a standard and a modified residue, or between two
/// modified residues.
fn token_bonds(structure: &Structure, tokens: &Tokens, selection: &Selection, residue_of: &[usize]) -> Tensor {
    let n = tokens.len();
    let polymer = |r: usize| structure.residues[r].molecule != MoleculeType::Ligand;
    let standard = |r: usize| polymer(r) && restype_index(structure.residues[r].name.as_str()).is_some();
    cpu_tensor(&[n, n], |bonds: &mut [f32]| {
        for bond in &structure.bonds {
            let [a, b] = bond.atoms;
            let (Some(ti), Some(tj)) = (selection.token(a), selection.token(b)) else { continue };
            let (ra, rb) = (residue_of[a], residue_of[b]);
            let both_polymer = polymer(ra) && polymer(rb);
            let excluded = both_polymer && (standard(ra) || standard(rb) || ra != rb);
            if !excluded && ti != tj {
                bonds[ti * n + tj] = 1.0;
                bonds[tj * n + ti] = 1.0;
            }
        }
    })
}

/// AF3 supplement §4.3.2 frames (Protenix `get_token_frame`): backbone atoms for standard
/// residues; for other tokens the atom itself between its two nearest neighbours in the
/// reference conformer of its residue, invalid when fewer than three atoms, a missing
/// conformer position, or nearly colinear.
fn frames(
    structure: &Structure,
    tokens: &Tokens,
    selection: &Selection,
    reference: &Reference,
) -> (Vec<i64>, Vec<i64>) {
    // The selected atoms of each residue, as indices among the A atoms.
    let mut by_residue: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut k = 0;
    for (t, range) in tokens.atoms.iter().enumerate() {
        by_residue.entry(tokens.residue[t]).or_default().extend(k..k + range.len());
        k += range.len();
    }
    let (mut has, mut frames) = (Vec::with_capacity(tokens.len()), Vec::with_capacity(tokens.len() * 3));
    for t in 0..tokens.len() {
        let r = tokens.residue[t];
        if !tokens.atomized[t] && is_standard(structure, r) && tokens.atoms[t].len() > 1 {
            let names = if structure.residues[r].molecule == MoleculeType::Protein {
                ["N", "CA", "C"]
            } else {
                ["C1'", "C3'", "C4'"]
            };
            let found: Option<Vec<i64>> = names
                .iter()
                .map(|n| structure.find_atom(r, n).and_then(|i| selection.local(i)).map(|k| k as i64))
                .collect();
            match found {
                Some(f) => {
                    has.push(1);
                    frames.extend(f);
                }
                None => {
                    has.push(0);
                    frames.extend([-1, -1, -1]);
                }
            }
            continue;
        }
        let b = selection.local(tokens.centre_atom[t]).expect("a token's centre atom is one of its atoms");
        let group = &by_residue[&r];
        if group.len() < 3 {
            has.push(0);
            frames.extend([-1, b as i64, -1]);
            continue;
        }
        let pb = reference.point(b);
        let [a, c] =
            two_nearest(group.iter().filter(|&&k| k != b).map(|&k| (squared_distance(reference.point(k), pb), k)));
        let valid =
            [a, b, c].iter().all(|&k| reference.mask[k] == 1) && !colinear(reference.point(a), pb, reference.point(c));
        has.push(i64::from(valid));
        frames.extend([a as i64, b as i64, c as i64]);
    }
    (has, frames)
}

/// The atoms of the two smallest (squared distance, atom) pairs, ties to the lower atom: what
/// sorting the whole group and taking the first two gives, in one pass instead of a sort per
/// token (quadratic in a ligand's size).
fn two_nearest(candidates: impl Iterator<Item = (f64, usize)>) -> [usize; 2] {
    let before = |x: &(f64, usize), y: &(f64, usize)| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).is_lt();
    let (mut first, mut second) = (None, None);
    for c in candidates {
        if first.is_none_or(|f| before(&c, &f)) {
            second = first;
            first = Some(c);
        } else if second.is_none_or(|s| before(&c, &s)) {
            second = Some(c);
        }
    }
    let pick = |p: Option<(f64, usize)>| p.expect("a group of three atoms has two besides the centre").1;
    [pick(first), pick(second)]
}

fn squared_distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|d| (a[d] - b[d]).powi(2)).sum()
}

/// Protenix `angle_3p` on (a, b, c): the angle between a→b and b→c, with its 1e-4 guard; zero
/// vectors count as colinear.
fn colinear(a: [f64; 3], b: [f64; 3], c: [f64; 3]) -> bool {
    let ab = [0, 1, 2].map(|d| b[d] - a[d]);
    let bc = [0, 1, 2].map(|d| c[d] - b[d]);
    let (nab, nbc) = (squared_distance(a, b).sqrt(), squared_distance(b, c).sqrt());
    if nab < 1e-8 || nbc < 1e-8 {
        return true;
    }
    let cos = ((ab[0] * bc[0] + ab[1] * bc[1] + ab[2] * bc[2]) / (nab * nbc + 1e-4)).clamp(-1.0, 1.0);
    let degrees = cos.acos().to_degrees();
    degrees <= FRAME_COLINEAR_DEGREES || degrees >= 180.0 - FRAME_COLINEAR_DEGREES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colinear_frames_are_invalid() {
        assert!(colinear([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.1, 0.0]));
        assert!(!colinear([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.5, 1.0, 0.0]));
        assert!(colinear([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]));
        assert_eq!(element_class(Element::H), 0);
        assert_eq!(element_class(Element::UNKNOWN), 127);
    }
}
