//! Tokens of a structure, AF3 supplement §2.6: a standard amino acid or nucleotide in a polymer
//! is one token; a modified residue, a ligand, an ion or a glycan is one token per atom. Each
//! token has a centre atom (Cα, C1′, or its only atom) and a representative atom for
//! distances (AF3 §4.4: Cβ, Cα for glycine, C4 for purines, C2 for pyrimidines).
//!
//! Follows Protenix `AtomArrayTokenizer` and `AddAtomArrayAnnot.add_centre_atom_mask` /
//! `add_distogram_rep_atom_mask` (bytedance/Protenix 3248f8e): "standard" means the residue
//! name is one of AF3's Table 13 (including UNK, N, DN) and its molecule type is not ligand.
//! Where a residue lacks its centre or representative atom, the first atom stands in (Protenix
//! does this for the representative atom and warns).
//!
//! OpenFold3 additionally tokenizes per atom every standard residue bonded to another residue
//! by anything but a peptide (N–C) or phosphodiester (P/O3′/O5′) bond: a cysteine bound to a
//! ligand or a zinc ion, residues next to a chromophore
//! (`openfold3/core/data/primitives/structure/tokenization.py`). That is
//! [`TokenizeOptions::atomize_bonded_standard_residues`], off by default.

use std::ops::Range;

use crate::data::structure::{MoleculeType, Structure};

/// AF3 supplement Table 13 and §2.8 `restype`: 20 amino acids (alphabetical by three-letter
/// code), unknown amino acid, RNA A G C U and unknown, DNA DA DG DC DT and unknown, then the MSA
/// gap. The index is the `restype` class (Protenix `STD_RESIDUES_WITH_GAP`).
pub const RESTYPES: [&str; 32] = [
    "ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE", "LEU", "LYS", "MET", "PHE", "PRO", "SER",
    "THR", "TRP", "TYR", "VAL", "UNK", "A", "G", "C", "U", "N", "DA", "DG", "DC", "DT", "DN", "-",
];
/// `restype` classes (AF3 supplement §2.8, Table 5).
pub const N_RESTYPES: usize = 32;
/// The unknown amino acid; ligands take this class too (AF3 Table 5: "ligands represented as
/// unknown amino acid").
pub const RESTYPE_UNK: usize = 20;
/// Unknown RNA and DNA nucleotides.
pub const RESTYPE_RNA_UNK: usize = 25;
pub const RESTYPE_DNA_UNK: usize = 30;
/// The number of residue names that are standard (all classes but the gap).
const N_STANDARD: usize = 31;

/// AF3 supplement §4.4: purines' representative atom is C4, pyrimidines' C2.
const PURINES: [&str; 4] = ["A", "G", "DA", "DG"];
const PYRIMIDINES: [&str; 4] = ["C", "U", "DC", "DT"];
/// OpenFold3 `PEPTIDE_BOND_ATOMS` and `PHOSPHODIESTER_BOND_ATOMS`.
const PEPTIDE_BOND_ATOMS: [&str; 2] = ["N", "C"];
const PHOSPHODIESTER_BOND_ATOMS: [&str; 3] = ["P", "O3'", "O5'"];

/// The `restype` class of a standard residue name.
pub fn restype_index(name: &str) -> Option<usize> {
    RESTYPES[..N_STANDARD].iter().position(|r| *r == name)
}

/// Choices that differ between AF3 implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenizeOptions {
    /// OpenFold3's rule: tokenize per atom every standard residue with a non-backbone bond to
    /// another residue. AF3 and Protenix keep such residues as one token (false).
    pub atomize_bonded_standard_residues: bool,
}

/// The tokens of a structure, in structure order, as parallel arrays of length N. A token's
/// atoms are a contiguous range of the structure's atoms; a selection of tokens ([`Tokens::select`],
/// a crop) keeps pointing into the same structure.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tokens {
    /// Atoms of each token: [N].
    pub atoms: Vec<Range<usize>>,
    /// Residue of each token: [N].
    pub residue: Vec<usize>,
    /// Token centre atom (Cα, C1′, or the token's only atom): [N].
    pub centre_atom: Vec<usize>,
    /// Representative atom for distances (Cβ, Cα for GLY, C4/C2/C1′, or the only atom): [N].
    pub rep_atom: Vec<usize>,
    /// One token per atom (ligand, modified or bonded residue) rather than per residue: [N].
    pub atomized: Vec<bool>,
}

impl Tokens {
    pub fn len(&self) -> usize {
        self.atoms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.atoms.is_empty()
    }

    /// The atoms of all tokens, in token order: [A].
    pub fn atom_indices(&self) -> Vec<usize> {
        self.atoms.iter().flat_map(|r| r.clone()).collect()
    }

    /// The tokens at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Tokens {
        Tokens {
            atoms: indices.iter().map(|&t| self.atoms[t].clone()).collect(),
            residue: indices.iter().map(|&t| self.residue[t]).collect(),
            centre_atom: indices.iter().map(|&t| self.centre_atom[t]).collect(),
            rep_atom: indices.iter().map(|&t| self.rep_atom[t]).collect(),
            atomized: indices.iter().map(|&t| self.atomized[t]).collect(),
        }
    }

    fn push(&mut self, atoms: Range<usize>, residue: usize, centre: usize, rep: usize, atomized: bool) {
        self.atoms.push(atoms);
        self.residue.push(residue);
        self.centre_atom.push(centre);
        self.rep_atom.push(rep);
        self.atomized.push(atomized);
    }
}

/// Whether residue `r` is one token: a standard name in a non-ligand residue.
pub fn is_standard(structure: &Structure, r: usize) -> bool {
    let residue = &structure.residues[r];
    residue.molecule != MoleculeType::Ligand && restype_index(residue.name.as_str()).is_some()
}

/// AF3 supplement §2.6 tokenization of `structure` (see the module doc for the rules).
pub fn tokenize(structure: &Structure, options: &TokenizeOptions) -> Tokens {
    let bonded = if options.atomize_bonded_standard_residues { bonded_residues(structure) } else { Vec::new() };
    let mut tokens = Tokens::default();
    for (r, residue) in structure.residues.iter().enumerate() {
        let atoms = residue.atoms.clone();
        if atoms.is_empty() {
            continue;
        }
        if is_standard(structure, r) && !bonded.get(r).copied().unwrap_or(false) {
            let name = residue.name.as_str();
            let find = |atom: &str| structure.find_atom(r, atom).unwrap_or(atoms.start);
            let centre = find(if residue.molecule == MoleculeType::Protein { "CA" } else { "C1'" });
            let rep = match name {
                "GLY" => find("CA"),
                _ if residue.molecule == MoleculeType::Protein => find("CB"),
                _ if PURINES.contains(&name) => find("C4"),
                _ if PYRIMIDINES.contains(&name) => find("C2"),
                _ => find("C1'"),
            };
            tokens.push(atoms, r, centre, rep, false);
        } else {
            for i in atoms {
                tokens.push(i..i + 1, r, i, i, true);
            }
        }
    }
    tokens
}

/// Residues with a bond to another residue that is neither peptide nor phosphodiester
/// (OpenFold3 `find_modified_residue_atom_ids`): [R].
fn bonded_residues(structure: &Structure) -> Vec<bool> {
    let residue_of = structure.atom_residues();
    let mut out = vec![false; structure.residues.len()];
    for bond in &structure.bonds {
        let [a, b] = bond.atoms;
        if residue_of[a] == residue_of[b] {
            continue;
        }
        let names = [structure.atoms.name[a].as_str(), structure.atoms.name[b].as_str()];
        let peptide = names.iter().all(|n| PEPTIDE_BOND_ATOMS.contains(n));
        let phosphodiester = names.iter().all(|n| PHOSPHODIESTER_BOND_ATOMS.contains(n));
        if !peptide && !phosphodiester {
            out[residue_of[a]] = true;
            out[residue_of[b]] = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restype_table() {
        assert_eq!(restype_index("ALA"), Some(0));
        assert_eq!(restype_index("VAL"), Some(19));
        assert_eq!(restype_index("UNK"), Some(RESTYPE_UNK));
        assert_eq!(restype_index("N"), Some(RESTYPE_RNA_UNK));
        assert_eq!(restype_index("DN"), Some(RESTYPE_DNA_UNK));
        assert_eq!(restype_index("-"), None);
        assert_eq!(restype_index("MSE"), None);
        assert_eq!(RESTYPES.len(), N_RESTYPES);
    }
}
