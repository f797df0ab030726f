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
//!   residue's reference frame does not depend on the crop.
//! - `entity_id` is the entity's position in `_entity` (Protenix sorts the id strings, so "10"
//!   comes before "2"); `asym_id` is the chain's position in the structure; `sym_id` counts
//!   copies per entity in chain order; `ref_space_uid` is the residue's position in the structure.
//! - `restype` of an atomized polymer residue is its parent's class from the CCD one-letter code
//!   (MSE atoms are MET); ligands are UNK (20), never gap. The Python reference gave every
//!   atomized residue class 20.
//! - Element classes are atomic number − 1 (AF3 Table 5); an unknown element (`X`, only in
//!   structures not passed through [`Structure::complete`]) takes the last class, 127.

use std::collections::HashMap;

use tch::{Kind, Tensor};

use crate::data::ccd::{Ccd, Component};
use crate::data::packing::SplitMix64;
use crate::data::structure::{Element, MoleculeType, Result, Structure, StructureError};
use crate::data::tokenize::{
    N_RESTYPES, RESTYPE_DNA_UNK, RESTYPE_RNA_UNK, RESTYPE_UNK, RESTYPES, Tokens, is_standard, restype_index,
};

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
        let local: HashMap<usize, usize> = atoms.iter().enumerate().map(|(k, &i)| (i, k)).collect();

        let chain_sym = sym_ids(structure);
        let mut residue_index = Vec::with_capacity(n);
        let (mut asym, mut entity, mut sym, mut restype) =
            (Vec::new(), Vec::new(), Vec::new(), vec![0f32; n * N_RESTYPES]);
        for t in 0..n {
            let r = tokens.residue[t];
            let residue = &structure.residues[r];
            let chain = &structure.chains[residue.chain];
            residue_index.push(match residue.label_seq_id {
                Some(seq) => i64::from(seq),
                None => (r - chain.residues.start + 1) as i64,
            });
            asym.push(residue.chain as i64);
            entity.push(chain.entity as i64);
            sym.push(chain_sym[residue.chain]);
            restype[t * N_RESTYPES + token_restype(structure, r, components[&r])] = 1.0;
        }

        let reference = Reference::new(structure, tokens, &atoms, &components, options, rng);
        let (has_frame, frames) = frames(structure, tokens, &atoms, &local, &residue_of, &reference);
        let chain_types = chain_molecule_types(structure);

        let mut atom_to_token = Vec::with_capacity(a);
        let mut tokatom = vec![0i64; a];
        let (mut pae, mut disto, mut plddt) = (vec![0i64; a], vec![0i64; a], vec![0i64; a]);
        for t in 0..n {
            let r = tokens.residue[t];
            let standard = !tokens.atomized[t] && is_standard(structure, r);
            for i in tokens.atoms[t].clone() {
                let k = local[&i];
                atom_to_token.push(t as i64);
                if standard {
                    tokatom[k] = heavy_index(components[&r], structure.atoms.name[i].as_str()).unwrap_or(0) as i64;
                    plddt[k] = i64::from(matches!(structure.atoms.name[i].as_str(), "CA" | "C1'"));
                }
            }
            pae[local[&tokens.centre_atom[t]]] = 1;
            disto[local[&tokens.rep_atom[t]]] = 1;
        }

        let mut element = vec![0f32; a * N_ELEMENT_CLASSES];
        let mut name_chars = vec![0f32; a * ATOM_NAME_CHARS * ATOM_NAME_CHAR_CLASSES];
        let mut types = [vec![0i64; a], vec![0i64; a], vec![0i64; a], vec![0i64; a]];
        let (mut coordinate, mut coordinate_mask) = (Vec::with_capacity(a * 3), Vec::with_capacity(a));
        for (k, &i) in atoms.iter().enumerate() {
            element[k * N_ELEMENT_CLASSES + element_class(structure.atoms.element[i])] = 1.0;
            let name = structure.atoms.name[i].bytes();
            for (c, slot) in name.iter().take(ATOM_NAME_CHARS).enumerate() {
                let ch = if *slot == 0 { b' ' } else { *slot };
                let class = (i64::from(ch) - 32).clamp(0, ATOM_NAME_CHAR_CLASSES as i64 - 1) as usize;
                name_chars[(k * ATOM_NAME_CHARS + c) * ATOM_NAME_CHAR_CLASSES + class] = 1.0;
            }
            let chain = structure.residues[residue_of[i]].chain;
            types[chain_types[chain] as usize][k] = 1;
            coordinate.extend(structure.atoms.coords[i]);
            coordinate_mask.push(i64::from(structure.atoms.resolved[i]));
        }

        let long = |v: &[i64]| Tensor::from_slice(v);
        let [is_protein, is_rna, is_dna, is_ligand] = types.map(|v| long(&v));
        Ok(Features {
            token_index: Tensor::arange(n as i64, (Kind::Int64, tch::Device::Cpu)),
            residue_index: long(&residue_index),
            asym_id: long(&asym),
            entity_id: long(&entity),
            sym_id: long(&sym),
            restype: Tensor::from_slice(&restype).view([n as i64, N_RESTYPES as i64]),
            token_bonds: token_bonds(structure, tokens, &local, &residue_of),
            has_frame: long(&has_frame),
            frame_atom_index: long(&frames).view([n as i64, 3]),
            ref_pos: Tensor::from_slice(&reference.pos).view([a as i64, 3]),
            ref_mask: long(&reference.mask),
            ref_element: Tensor::from_slice(&element).view([a as i64, N_ELEMENT_CLASSES as i64]),
            ref_charge: Tensor::from_slice(&reference.charge),
            ref_atom_name_chars: Tensor::from_slice(&name_chars).view([
                a as i64,
                ATOM_NAME_CHARS as i64,
                ATOM_NAME_CHAR_CLASSES as i64,
            ]),
            ref_space_uid: long(&atoms.iter().map(|&i| residue_of[i] as i64).collect::<Vec<_>>()),
            atom_to_token_idx: long(&atom_to_token),
            atom_to_tokatom_idx: long(&tokatom),
            is_protein,
            is_rna,
            is_dna,
            is_ligand,
            pae_rep_atom_mask: long(&pae),
            distogram_rep_atom_mask: long(&disto),
            plddt_m_rep_atom_mask: long(&plddt),
            coordinate: Tensor::from_slice(&coordinate).view([a as i64, 3]),
            coordinate_mask: long(&coordinate_mask),
            resolution: Tensor::from_slice(&[structure.metadata.resolution.unwrap_or(-1.0)]),
            atoms,
        })
    }
}

/// The CCD component of every residue behind a token.
fn components<'c>(structure: &Structure, tokens: &Tokens, ccd: &'c Ccd) -> Result<HashMap<usize, &'c Component>> {
    let mut out = HashMap::new();
    for &r in &tokens.residue {
        if out.contains_key(&r) {
            continue;
        }
        let name = structure.residues[r].name;
        let component = ccd.get(name.as_str()).ok_or_else(|| StructureError::UnknownComponent {
            path: structure.path.clone(),
            structure: structure.id.clone(),
            place: structure.describe_residue(r),
            comp_id: name.to_string(),
        })?;
        out.insert(r, component);
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

/// The atom's position among the component's non-hydrogen atoms (leaving atoms included).
fn heavy_index(component: &Component, name: &str) -> Option<usize> {
    component
        .atoms
        .iter()
        .filter(|a| Element::from_symbol(&a.element).is_none_or(|e| !e.is_hydrogen()))
        .position(|a| a.name == name)
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
fn token_bonds(structure: &Structure, tokens: &Tokens, local: &HashMap<usize, usize>, residue_of: &[usize]) -> Tensor {
    let n = tokens.len();
    let mut token_of: HashMap<usize, usize> = HashMap::with_capacity(local.len());
    for (t, atoms) in tokens.atoms.iter().enumerate() {
        for i in atoms.clone() {
            token_of.insert(i, t);
        }
    }
    let polymer = |r: usize| structure.residues[r].molecule != MoleculeType::Ligand;
    let standard = |r: usize| polymer(r) && restype_index(structure.residues[r].name.as_str()).is_some();
    let mut bonds = vec![0f32; n * n];
    for bond in &structure.bonds {
        let [a, b] = bond.atoms;
        let (Some(&ti), Some(&tj)) = (token_of.get(&a), token_of.get(&b)) else { continue };
        let (ra, rb) = (residue_of[a], residue_of[b]);
        let both_polymer = polymer(ra) && polymer(rb);
        let excluded = both_polymer && (standard(ra) || standard(rb) || ra != rb);
        if !excluded && ti != tj {
            bonds[ti * n + tj] = 1.0;
            bonds[tj * n + ti] = 1.0;
        }
    }
    Tensor::from_slice(&bonds).view([n as i64, n as i64])
}

/// Reference conformer values per selected atom.
struct Reference {
    pos: Vec<f32>,
    mask: Vec<i64>,
    charge: Vec<f32>,
}

impl Reference {
    fn new(
        structure: &Structure,
        tokens: &Tokens,
        atoms: &[usize],
        components: &HashMap<usize, &Component>,
        options: &FeatureOptions,
        rng: &mut SplitMix64,
    ) -> Reference {
        let mut out =
            Reference { pos: vec![0.0; atoms.len() * 3], mask: vec![0; atoms.len()], charge: vec![0.0; atoms.len()] };
        // Per residue: the conformer's centre over the whole residue, and the random motion.
        let mut moves: HashMap<usize, RigidMove> = HashMap::new();
        let position = |r: usize, i: usize| -> Option<[f32; 3]> {
            let name = structure.atoms.name[i].as_str();
            components[&r].atoms.iter().find(|a| a.name == name).and_then(|a| a.position)
        };
        let mut k = 0;
        for (t, range) in tokens.atoms.iter().enumerate() {
            let r = tokens.residue[t];
            let motion = *moves.entry(r).or_insert_with(|| {
                let present: Vec<[f32; 3]> =
                    structure.residues[r].atoms.clone().filter_map(|i| position(r, i)).collect();
                let mut centre = [0f64; 3];
                for p in &present {
                    for (c, x) in centre.iter_mut().zip(p) {
                        *c += f64::from(*x) / present.len() as f64;
                    }
                }
                if options.augment_ref_pos {
                    let translation = [0; 3].map(|_| (2.0 * uniform(rng) - 1.0) * REF_POS_MAX_TRANSLATION);
                    RigidMove { centre, rotation: random_rotation(rng), translation }
                } else {
                    RigidMove { centre, rotation: IDENTITY, translation: [0.0; 3] }
                }
            });
            for i in range.clone() {
                let name = structure.atoms.name[i].as_str();
                let ccd_atom = components[&r].atoms.iter().find(|a| a.name == name);
                out.charge[k] = ccd_atom.map_or(0.0, |a| a.charge as f32);
                if let Some(p) = ccd_atom.and_then(|a| a.position) {
                    out.pos[k * 3..k * 3 + 3].copy_from_slice(&motion.apply(p));
                    out.mask[k] = 1;
                }
                k += 1;
            }
        }
        debug_assert_eq!(k, atoms.len());
        out
    }

    fn point(&self, k: usize) -> [f64; 3] {
        [0, 1, 2].map(|d| f64::from(self.pos[k * 3 + d]))
    }
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

/// AF3 supplement §4.3.2 frames (Protenix `get_token_frame`): backbone atoms for standard
/// residues; for other tokens the atom itself between its two nearest neighbours in the
/// reference conformer of its residue, invalid when fewer than three atoms, a missing
/// conformer position, or nearly colinear.
fn frames(
    structure: &Structure,
    tokens: &Tokens,
    atoms: &[usize],
    local: &HashMap<usize, usize>,
    residue_of: &[usize],
    reference: &Reference,
) -> (Vec<i64>, Vec<i64>) {
    let mut by_residue: HashMap<usize, Vec<usize>> = HashMap::new();
    for (k, &i) in atoms.iter().enumerate() {
        by_residue.entry(residue_of[i]).or_default().push(k);
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
                .map(|n| structure.find_atom(r, n).and_then(|i| local.get(&i)).map(|&k| k as i64))
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
        let b = local[&tokens.centre_atom[t]];
        let group = &by_residue[&r];
        if group.len() < 3 {
            has.push(0);
            frames.extend([-1, b as i64, -1]);
            continue;
        }
        let pb = reference.point(b);
        let mut nearest: Vec<(f64, usize)> =
            group.iter().filter(|&&k| k != b).map(|&k| (squared_distance(reference.point(k), pb), k)).collect();
        nearest.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        let (a, c) = (nearest[0].1, nearest[1].1);
        let valid =
            [a, b, c].iter().all(|&k| reference.mask[k] == 1) && !colinear(reference.point(a), pb, reference.point(c));
        has.push(i64::from(valid));
        frames.extend([a as i64, b as i64, c as i64]);
    }
    (has, frames)
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

    #[test]
    fn colinear_frames_are_invalid() {
        assert!(colinear([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.1, 0.0]));
        assert!(!colinear([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.5, 1.0, 0.0]));
        assert!(colinear([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]));
        assert_eq!(element_class(Element::H), 0);
        assert_eq!(element_class(Element::UNKNOWN), 127);
    }
}
