//! Macromolecular structures from mmCIF and BinaryCIF (PDBx/mmCIF dictionary,
//! <https://mmcif.wwpdb.org>): entities, chains (label and author ids), residues and atoms of
//! the first model, with metadata, `struct_conn` bonds and assembly operators.
//!
//! Two stages, following AF3 supplement §2.1 and §2.5.4 and Protenix's parser
//! (`protenix/data/core/parser.py`, bytedance/Protenix 3248f8e):
//! [`Structure::from_cif`] keeps what the file observed (first model, one alternate location per
//! residue, no hydrogens or waters), so it can be checked atom for atom against gemmi and
//! biotite; [`Structure::complete`] then makes the structure a model sees (CCD atom sets and
//! order, unresolved residues and atoms, leaving atoms, MSE → MET, polymer and CCD bonds).
//!
//! Atoms are stored as a struct of arrays with fixed-size names (no allocation per atom), and
//! every part is plain `Vec`s of plain values, so a compact cache can store it as is.

mod assembly;
mod complete;
mod conn;
mod element;
mod error;
mod filter;
mod parse;

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

pub use assembly::{AssemblyGen, Operator};
pub use complete::Completion;
pub use element::Element;
pub use error::{Result, StructureError};
pub use filter::{Filters, Rejection};
pub use parse::Options;

/// A structure: entities, then chains, residues and atoms nested by index ranges (chain `c`
/// owns `residues[chains[c].residues]`, residue `r` owns atoms `residues[r].atoms`).
#[derive(Debug, Clone, PartialEq)]
pub struct Structure {
    /// `_entry.id`, else the data block name ("1UBQ").
    pub id: String,
    /// The file it came from, for error messages.
    pub path: PathBuf,
    pub metadata: Metadata,
    pub entities: Vec<Entity>,
    pub chains: Vec<Chain>,
    pub residues: Vec<Residue>,
    pub atoms: Atoms,
    pub bonds: Vec<Bond>,
    /// `_pdbx_struct_assembly_gen` rows: which operators build which chains of each assembly.
    pub assemblies: Vec<AssemblyGen>,
    /// `_pdbx_struct_oper_list`: the rigid transforms the assemblies refer to.
    pub operators: Vec<Operator>,
}

/// Entry-level facts used by the training-set filters (AF3 supplement §2.5.4).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata {
    /// Å: the first of `_refine.ls_d_res_high`, `_em_3d_reconstruction.resolution`,
    /// `_reflns.d_resolution_high` that holds a positive number (Protenix's order; the Python
    /// reference took the minimum). `None` for NMR and other methods without one.
    pub resolution: Option<f32>,
    /// The date of the first `_pdbx_audit_revision_history` revision (initial release).
    pub release_date: Option<chrono::NaiveDate>,
    /// Every `_exptl.method` ("X-RAY DIFFRACTION"; a few entries have two).
    pub methods: Vec<String>,
}

/// One `_entity` row with its polymer sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// `_entity.id` ("1").
    pub id: String,
    pub kind: EntityKind,
    /// `_entity_poly_seq.mon_id` by `num`, 1-based position p at index p − 1; where a position
    /// lists several components (microheterogeneity) the first is kept. Empty for non-polymers.
    pub sequence: Vec<ResName>,
}

/// `_entity.type`, with `_entity_poly.type` for polymers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    Polymer(PolymerType),
    /// Oligosaccharides (`branched`): modelled as ligands, one token per atom.
    Branched,
    NonPolymer,
    Water,
}

/// `_entity_poly.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolymerType {
    PeptideL,
    PeptideD,
    Rna,
    Dna,
    DnaRnaHybrid,
    /// `peptide nucleic acid`, `cyclic-pseudo-peptide`, `other`: residues become ligand-like.
    Other,
}

/// What a residue is for tokenization and features (Protenix `mol_type`): polymer residues
/// take it from their CCD component's `_chem_comp.type`, everything else is a ligand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MoleculeType {
    Protein,
    Rna,
    Dna,
    Ligand,
}

/// One chain (`label_asym_id`), or one copy of it in an assembly.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub label_asym_id: String,
    pub auth_asym_id: String,
    /// Index into `Structure::entities`.
    pub entity: usize,
    pub residues: Range<usize>,
    /// The assembly operator expression that made this copy ("1", "2x5"); `None` in the
    /// asymmetric unit.
    pub operator: Option<String>,
}

/// One residue, nucleotide or ligand molecule.
#[derive(Debug, Clone, PartialEq)]
pub struct Residue {
    /// `label_comp_id` ("ALA", "HEM").
    pub name: ResName,
    /// `label_seq_id`: the 1-based position in the entity sequence; `None` for non-polymers.
    pub label_seq_id: Option<i32>,
    /// `auth_seq_id`; `None` for residues added by [`Structure::complete`] (never observed).
    pub auth_seq_id: Option<i32>,
    /// `pdbx_PDB_ins_code`.
    pub ins_code: Option<char>,
    /// `group_PDB == HETATM`.
    pub hetero: bool,
    pub molecule: MoleculeType,
    /// Index into `Structure::chains`.
    pub chain: usize,
    pub atoms: Range<usize>,
}

/// Per-atom values as parallel arrays of length A.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Atoms {
    pub name: Vec<AtomName>,
    pub element: Vec<Element>,
    /// Å; zero where `resolved` is false.
    pub coords: Vec<[f32; 3]>,
    pub occupancy: Vec<f32>,
    pub b_factor: Vec<f32>,
    /// `pdbx_formal_charge` (0 when absent).
    pub charge: Vec<i8>,
    /// The file gives the atom a position. False only for atoms that [`Structure::complete`]
    /// added from the CCD; coordinates of such atoms are zero and must be masked.
    pub resolved: Vec<bool>,
}

/// One atom's values, to build or read [`Atoms`] a row at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Atom {
    pub name: AtomName,
    pub element: Element,
    pub coord: [f32; 3],
    pub occupancy: f32,
    pub b_factor: f32,
    pub charge: i8,
    pub resolved: bool,
}

/// A bond between two atoms (indices into `Structure::atoms`), lower index first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bond {
    pub atoms: [usize; 2],
    pub kind: BondKind,
}

/// Where a bond comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BondKind {
    /// `_struct_conn` `covale*`: covalent links between residues (glycosylation, ligands, crosslinks).
    Covalent,
    /// `_struct_conn` `disulf`.
    Disulfide,
    /// `_struct_conn` `metalc`.
    MetalCoordination,
    /// The backbone link between consecutive polymer residues (C–N, O3′–P), implied by the sequence.
    PolymerLink,
    /// A bond inside one residue, from its CCD component.
    Intra,
}

impl Atoms {
    pub fn len(&self) -> usize {
        self.name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.name.is_empty()
    }

    pub fn push(&mut self, atom: Atom) {
        self.name.push(atom.name);
        self.element.push(atom.element);
        self.coords.push(atom.coord);
        self.occupancy.push(atom.occupancy);
        self.b_factor.push(atom.b_factor);
        self.charge.push(atom.charge);
        self.resolved.push(atom.resolved);
    }

    pub fn get(&self, i: usize) -> Atom {
        Atom {
            name: self.name[i],
            element: self.element[i],
            coord: self.coords[i],
            occupancy: self.occupancy[i],
            b_factor: self.b_factor[i],
            charge: self.charge[i],
            resolved: self.resolved[i],
        }
    }
}

impl Structure {
    /// The residue index of every atom: [A].
    pub fn atom_residues(&self) -> Vec<usize> {
        let mut out = vec![0; self.atoms.len()];
        for (r, residue) in self.residues.iter().enumerate() {
            out[residue.atoms.clone()].fill(r);
        }
        out
    }

    /// The atom named `name` in residue `r`.
    pub fn find_atom(&self, r: usize, name: &str) -> Option<usize> {
        self.residues[r].atoms.clone().find(|&i| self.atoms.name[i].as_str() == name)
    }

    /// "chain B (author C) residue 12 (author 15A) LYS": a residue as people look it up.
    pub fn describe_residue(&self, r: usize) -> String {
        let res = &self.residues[r];
        let chain = &self.chains[res.chain];
        let mut out = format!("chain {}", chain.label_asym_id);
        if chain.auth_asym_id != chain.label_asym_id {
            out += &format!(" (author {})", chain.auth_asym_id);
        }
        match res.label_seq_id {
            Some(seq) => out += &format!(" residue {seq}"),
            None => out += " residue .",
        }
        if let Some(auth) = res.auth_seq_id {
            out += &format!(" (author {auth}{})", res.ins_code.map(String::from).unwrap_or_default());
        }
        out + " " + res.name.as_str()
    }

    /// The same entry with no chains, residues, atoms or bonds, to build a variant into.
    fn empty_like(&self) -> Structure {
        Structure {
            id: self.id.clone(),
            path: self.path.clone(),
            metadata: self.metadata.clone(),
            entities: self.entities.clone(),
            chains: Vec::new(),
            residues: Vec::new(),
            atoms: Atoms::default(),
            bonds: Vec::new(),
            assemblies: self.assemblies.clone(),
            operators: self.operators.clone(),
        }
    }

    /// Chains of polymer entities that have at least one resolved atom.
    pub fn resolved_polymer_chains(&self) -> usize {
        self.chains
            .iter()
            .filter(|c| matches!(self.entities[c.entity].kind, EntityKind::Polymer(_)))
            .filter(|c| {
                self.residues[c.residues.clone()].iter().any(|r| self.atoms.resolved[r.atoms.clone()].contains(&true))
            })
            .count()
    }
}

impl EntityKind {
    /// The molecule type of this entity's residues before the CCD refines polymer residues.
    pub fn molecule_type(self, residue: &str) -> MoleculeType {
        match self {
            EntityKind::Polymer(PolymerType::PeptideL | PolymerType::PeptideD) => MoleculeType::Protein,
            EntityKind::Polymer(PolymerType::Rna) => MoleculeType::Rna,
            EntityKind::Polymer(PolymerType::Dna) => MoleculeType::Dna,
            EntityKind::Polymer(PolymerType::DnaRnaHybrid) if residue.len() == 2 && residue.starts_with('D') => {
                MoleculeType::Dna
            }
            EntityKind::Polymer(PolymerType::DnaRnaHybrid) => MoleculeType::Rna,
            EntityKind::Polymer(PolymerType::Other)
            | EntityKind::Branched
            | EntityKind::NonPolymer
            | EntityKind::Water => MoleculeType::Ligand,
        }
    }
}

impl PolymerType {
    /// Parses `_entity_poly.type` (case-insensitive).
    pub fn parse(text: &str) -> PolymerType {
        match text.to_ascii_lowercase().as_str() {
            "polypeptide(l)" => PolymerType::PeptideL,
            "polypeptide(d)" => PolymerType::PeptideD,
            "polyribonucleotide" => PolymerType::Rna,
            "polydeoxyribonucleotide" => PolymerType::Dna,
            "polydeoxyribonucleotide/polyribonucleotide hybrid" => PolymerType::DnaRnaHybrid,
            _ => PolymerType::Other,
        }
    }
}

/// An ASCII name of at most `N` bytes stored inline (NUL-padded): atom names fit in 4 bytes
/// and CCD component ids in 5, so an atom costs no heap allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name<const N: usize>([u8; N]);

/// An atom name (`CA`, `C1'`, `OP1`): at most 4 characters, as in the CCD.
pub type AtomName = Name<4>;
/// A chemical component id (`ALA`, `HEM`, `A1AAA`): at most 5 characters, as in the CCD.
pub type ResName = Name<5>;

impl<const N: usize> Name<N> {
    /// `None` when `text` is empty, longer than `N` bytes, or not printable ASCII.
    pub fn new(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.is_empty() || bytes.len() > N || !bytes.iter().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let mut out = [0u8; N];
        out[..bytes.len()].copy_from_slice(bytes);
        Some(Name(out))
    }

    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(N);
        // Only printable ASCII is ever stored (checked in `new`).
        std::str::from_utf8(&self.0[..len]).expect("a Name holds ASCII")
    }

    /// The bytes, NUL-padded to `N`.
    pub fn bytes(&self) -> &[u8; N] {
        &self.0
    }
}

/// The empty name, which [`Name::new`] never returns: it matches no real atom or residue.
impl<const N: usize> Default for Name<N> {
    fn default() -> Self {
        Name([0; N])
    }
}

impl<const N: usize> fmt::Debug for Name<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl<const N: usize> fmt::Display for Name<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_inline_ascii() {
        let name = AtomName::new("C1'").unwrap();
        assert_eq!(name.as_str(), "C1'");
        assert_eq!(format!("{name:?}"), "\"C1'\"");
        assert_eq!(AtomName::new("CA12X"), None);
        assert_eq!(AtomName::new(""), None);
        assert_eq!(ResName::new("A1AAA").unwrap().as_str(), "A1AAA");
        assert!(ResName::new("ALA").unwrap() < ResName::new("ARG").unwrap());
    }
}
