//! The per-structure cache file (`.hsc`, "helico structure cache"): a completed [`Structure`],
//! its [`Tokens`], the CCD components it uses and its entities' alignments ([`EntityMsa`]),
//! stored so that loading is copying flat arrays out of a memory map: no text to parse, no CCD
//! to load.
//!
//! Layout, all little-endian ([`super::columns`] reads and writes it):
//!
//! ```text
//! magic "HELICOSC" (8 bytes) · format version u32 · column count u32
//! table of contents: per column, tag (16 bytes, NUL-padded ASCII) · offset u64 · length u64
//! columns: flat arrays, each starting on an 8-byte boundary
//! ```
//!
//! Each column is one field of one table (struct of arrays: `atom.xyz` holds 3·A f32,
//! `res.atoms` 2·R u32 ranges). A list of strings is two columns: the UTF-8 bytes and
//! `<tag>#`, the n + 1 u32 offsets into them. Optional values use sentinels (`NaN`,
//! `i32::MIN`) or a presence column (`<tag>?`). Readers look columns up by tag, so adding a
//! column does not move the others; changing what a column means bumps [`FORMAT_VERSION`].
//!
//! Reading validates every count and index range once (O(atoms)), so a damaged file is an error
//! naming it, never a panic later in tokenization, cropping or features.
//!
//! Alignments (format version 2) have their own columns ([`super::alignments`]).

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};

use super::PrepError;
use super::alignments::{get_msas, put_msas};
use super::columns::{Reader, Writer, index};
use super::components::{self, ComponentColumns};
use crate::data::ccd::{Ccd, Component};
use crate::data::msa::EntityMsa;
use crate::data::structure::{
    AssemblyGen, Atoms, Bond, BondKind, Chain, Element, Entity, EntityKind, Metadata, MoleculeType, Operator,
    PolymerType, ResName, Residue, Structure,
};
use crate::data::tokenize::Tokens;

/// The first bytes of every cache file.
pub const MAGIC: &[u8; 8] = b"HELICOSC";
/// Bump when a column changes meaning; preprocessing then rebuilds every entry.
pub const FORMAT_VERSION: u32 = 2;
/// The file name extension of cache files.
pub const EXTENSION: &str = "hsc";

const NO_DATE: i32 = i32::MIN;
const NO_SEQ: i32 = i32::MIN;
const NO_INS: u32 = u32::MAX;

/// What a cache file holds.
#[derive(Debug)]
pub struct CachedStructure {
    /// Completed against the CCD (unresolved residues and atoms added, leaving atoms removed).
    pub structure: Structure,
    /// AF3 §2.6 tokens of `structure`.
    pub tokens: Tokens,
    /// The CCD components of `structure`'s residues, all that `Features::new` asks for.
    pub ccd: Ccd,
    /// The alignments of the entities that have one, by entity index.
    pub msas: Vec<EntityMsa>,
}

impl CachedStructure {
    /// Gathers what the cache stores; `ccd` must know every residue of `structure` (it does
    /// after [`Structure::complete`] against it).
    pub fn new(structure: Structure, tokens: Tokens, ccd: &Ccd, msas: Vec<EntityMsa>) -> CachedStructure {
        let mut names: Vec<ResName> = structure.residues.iter().map(|r| r.name).collect();
        names.sort();
        names.dedup();
        let components: Vec<Component> = names.iter().filter_map(|n| ccd.get(n.as_str()).cloned()).collect();
        let ccd = Ccd::from_components(components).expect("component ids are unique in a CCD");
        CachedStructure { structure, tokens, ccd, msas }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        put_structure(&mut w, &self.structure);
        put_tokens(&mut w, &self.tokens);
        components::put(&mut w, &self.ccd.components().collect::<Vec<_>>());
        put_msas(&mut w, &self.msas);
        w.finish()
    }

    /// Memory-maps `path` and decodes it.
    pub fn read(path: &Path) -> Result<CachedStructure, PrepError> {
        let io = |source| PrepError::Io { path: path.to_owned(), action: "read the cache file", source };
        let file = File::open(path).map_err(io)?;
        // SAFETY: cache files are only ever replaced by renaming a new file over them
        // (`atomic::write`), never written in place, so the mapped bytes cannot change under us.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        CachedStructure::from_bytes(&map, path)
    }

    /// Decodes a cache file's bytes; `path` labels errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<CachedStructure, PrepError> {
        let r = Reader::new(bytes, path)?;
        let structure = get_structure(&r)?;
        let tokens = get_tokens(&r, &structure)?;
        let columns = ComponentColumns::new(&r)?;
        let components = (0..columns.len()).map(|c| columns.component(bytes, c).map_err(|problem| r.problem(problem)));
        let ccd = Ccd::from_components(components.collect::<Result<_, _>>()?)
            .map_err(|id| r.problem(format!("component {id:?} stored twice")))?;
        let msas = get_msas(&r, &structure)?;
        Ok(CachedStructure { structure, tokens, ccd, msas })
    }
}

/// Entity kinds as one byte: 0–5 polymers (in [`PolymerType`] order), then the rest.
const ENTITY_KINDS: [EntityKind; 9] = [
    EntityKind::Polymer(PolymerType::PeptideL),
    EntityKind::Polymer(PolymerType::PeptideD),
    EntityKind::Polymer(PolymerType::Rna),
    EntityKind::Polymer(PolymerType::Dna),
    EntityKind::Polymer(PolymerType::DnaRnaHybrid),
    EntityKind::Polymer(PolymerType::Other),
    EntityKind::Branched,
    EntityKind::NonPolymer,
    EntityKind::Water,
];
const MOLECULES: [MoleculeType; 4] =
    [MoleculeType::Protein, MoleculeType::Rna, MoleculeType::Dna, MoleculeType::Ligand];
const BOND_KINDS: [BondKind; 5] =
    [BondKind::Covalent, BondKind::Disulfide, BondKind::MetalCoordination, BondKind::PolymerLink, BondKind::Intra];

fn code<T: PartialEq>(table: &[T], value: &T) -> u8 {
    table.iter().position(|v| v == value).expect("every variant is in its code table") as u8
}

fn decode<T: Copy>(r: &Reader<'_>, tag: &str, table: &[T], codes: &[u8]) -> Result<Vec<T>, PrepError> {
    codes
        .iter()
        .map(|&c| table.get(usize::from(c)).copied().ok_or_else(|| r.problem(format!("column {tag}: code {c}"))))
        .collect()
}

fn put_structure(w: &mut Writer, s: &Structure) {
    w.strs("id", "id#", [s.id.as_str(), s.path.to_string_lossy().as_ref()]);
    w.f32s("meta.resolution", [s.metadata.resolution.unwrap_or(f32::NAN)]);
    w.i32s("meta.released", [s.metadata.release_date.map_or(NO_DATE, |d| d.num_days_from_ce())]);
    w.strs("meta.methods", "meta.methods#", s.metadata.methods.iter().map(String::as_str));

    w.strs("ent.id", "ent.id#", s.entities.iter().map(|e| e.id.as_str()));
    w.u8s("ent.kind", s.entities.iter().map(|e| code(&ENTITY_KINDS, &e.kind)));
    let mut seq_end = 0;
    w.u32s(
        "ent.seq#",
        std::iter::once(0).chain(s.entities.iter().map(|e| {
            seq_end += e.sequence.len();
            index(seq_end)
        })),
    );
    w.bytes("ent.seq", s.entities.iter().flat_map(|e| e.sequence.iter().flat_map(|n| *n.bytes())).collect());

    w.strs("ch.label", "ch.label#", s.chains.iter().map(|c| c.label_asym_id.as_str()));
    w.strs("ch.auth", "ch.auth#", s.chains.iter().map(|c| c.auth_asym_id.as_str()));
    w.u32s("ch.entity", s.chains.iter().map(|c| index(c.entity)));
    w.ranges("ch.residues", s.chains.iter().map(|c| c.residues.clone()));
    w.u8s("ch.op?", s.chains.iter().map(|c| u8::from(c.operator.is_some())));
    w.strs("ch.op", "ch.op#", s.chains.iter().map(|c| c.operator.as_deref().unwrap_or("")));

    let res = &s.residues;
    w.bytes("res.name", res.iter().flat_map(|r| *r.name.bytes()).collect());
    w.i32s("res.label_seq", res.iter().map(|r| r.label_seq_id.unwrap_or(NO_SEQ)));
    w.i32s("res.auth_seq", res.iter().map(|r| r.auth_seq_id.unwrap_or(NO_SEQ)));
    w.u32s("res.ins", res.iter().map(|r| r.ins_code.map_or(NO_INS, u32::from)));
    w.u8s("res.hetero", res.iter().map(|r| u8::from(r.hetero)));
    w.u8s("res.molecule", res.iter().map(|r| code(&MOLECULES, &r.molecule)));
    w.u32s("res.chain", res.iter().map(|r| index(r.chain)));
    w.ranges("res.atoms", res.iter().map(|r| r.atoms.clone()));

    let a = &s.atoms;
    w.bytes("atom.name", a.name.iter().flat_map(|n| *n.bytes()).collect());
    w.u8s("atom.element", a.element.iter().map(|e| e.atomic_number()));
    w.f32s("atom.xyz", a.coords.iter().flatten().copied());
    w.f32s("atom.occupancy", a.occupancy.iter().copied());
    w.f32s("atom.b_factor", a.b_factor.iter().copied());
    w.u8s("atom.charge", a.charge.iter().map(|&c| c as u8));
    w.u8s("atom.resolved", a.resolved.iter().map(|&r| u8::from(r)));

    w.u32s("bond.atoms", s.bonds.iter().flat_map(|b| b.atoms.map(index)));
    w.u8s("bond.kind", s.bonds.iter().map(|b| code(&BOND_KINDS, &b.kind)));

    w.strs("asm.id", "asm.id#", s.assemblies.iter().map(|g| g.assembly_id.as_str()));
    w.strs("asm.expr", "asm.expr#", s.assemblies.iter().map(|g| g.oper_expression.as_str()));
    w.u32s("asm.n_asym", s.assemblies.iter().map(|g| index(g.asym_ids.len())));
    w.strs("asm.asym", "asm.asym#", s.assemblies.iter().flat_map(|g| g.asym_ids.iter().map(String::as_str)));
    w.strs("op.id", "op.id#", s.operators.iter().map(|o| o.id.as_str()));
    w.f64s("op.rt", s.operators.iter().flat_map(|o| o.rotation.iter().flatten().chain(&o.translation).copied()));
}

fn get_structure(r: &Reader<'_>) -> Result<Structure, PrepError> {
    let [id, path] = <[String; 2]>::try_from(r.strs("id", "id#", Some(2))?).expect("two strings were asked for");
    let resolution = r.f32s("meta.resolution", 1)?[0];
    let released = r.i32s("meta.released", 1)?[0];
    let release_date = match released {
        NO_DATE => None,
        days => Some(NaiveDate::from_num_days_from_ce_opt(days).ok_or_else(|| r.problem(format!("day {days}")))?),
    };
    let metadata = Metadata {
        resolution: (!resolution.is_nan()).then_some(resolution),
        release_date,
        methods: r.strs("meta.methods", "meta.methods#", None)?,
    };

    let ids = r.strs("ent.id", "ent.id#", None)?;
    let kinds = decode(r, "ent.kind", &ENTITY_KINDS, r.u8s("ent.kind", ids.len())?)?;
    let seq_ends = r.u32s("ent.seq#", Some(ids.len() + 1))?;
    let seq_names: Vec<ResName> = r.names("ent.seq", *seq_ends.last().expect("n + 1 offsets") as usize)?;
    let mut entities = Vec::with_capacity(ids.len());
    for (e, (id, kind)) in ids.into_iter().zip(kinds).enumerate() {
        let (a, b) = (seq_ends[e] as usize, seq_ends[e + 1] as usize);
        let sequence = seq_names.get(a..b).ok_or_else(|| r.problem(format!("entity {id}: sequence {a}..{b}")))?;
        entities.push(Entity { id, kind, sequence: sequence.to_vec() });
    }

    let labels = r.strs("ch.label", "ch.label#", None)?;
    let n_chains = labels.len();
    let auths = r.strs("ch.auth", "ch.auth#", Some(n_chains))?;
    let chain_entities = r.indices("ch.entity", n_chains, entities.len())?;
    let has_op = r.u8s("ch.op?", n_chains)?;
    let ops = r.strs("ch.op", "ch.op#", Some(n_chains))?;

    let res_names: Vec<ResName> = r.names("res.name", r.column("res.name", 5, None)?.len() / 5)?;
    let n_res = res_names.len();
    let chain_residues = r.ranges("ch.residues", n_chains, n_res)?;
    let chains = (0..n_chains)
        .zip(labels.into_iter().zip(auths).zip(ops))
        .map(|(c, ((label_asym_id, auth_asym_id), op))| Chain {
            label_asym_id,
            auth_asym_id,
            entity: chain_entities[c],
            residues: chain_residues[c].clone(),
            operator: (has_op[c] != 0).then_some(op),
        })
        .collect();

    let atom_names = r.names::<4>("atom.name", r.column("atom.name", 4, None)?.len() / 4)?;
    let n_atoms = atom_names.len();
    let label_seq = r.i32s("res.label_seq", n_res)?;
    let auth_seq = r.i32s("res.auth_seq", n_res)?;
    let ins = r.u32s("res.ins", Some(n_res))?;
    let hetero = r.u8s("res.hetero", n_res)?;
    let molecules = decode(r, "res.molecule", &MOLECULES, r.u8s("res.molecule", n_res)?)?;
    let res_chain = r.indices("res.chain", n_res, n_chains)?;
    let res_atoms = r.ranges("res.atoms", n_res, n_atoms)?;
    let mut residues = Vec::with_capacity(n_res);
    for (i, name) in res_names.into_iter().enumerate() {
        let ins_code = match ins[i] {
            NO_INS => None,
            c => Some(char::from_u32(c).ok_or_else(|| r.problem(format!("residue {i}: insertion code {c}")))?),
        };
        residues.push(Residue {
            name,
            label_seq_id: (label_seq[i] != NO_SEQ).then_some(label_seq[i]),
            auth_seq_id: (auth_seq[i] != NO_SEQ).then_some(auth_seq[i]),
            ins_code,
            hetero: hetero[i] != 0,
            molecule: molecules[i],
            chain: res_chain[i],
            atoms: res_atoms[i].clone(),
        });
    }

    let element = r
        .u8s("atom.element", n_atoms)?
        .iter()
        .map(|&z| Element::from_atomic_number(z).ok_or_else(|| r.problem(format!("atomic number {z}"))))
        .collect::<Result<_, _>>()?;
    let xyz = r.f32s("atom.xyz", 3 * n_atoms)?;
    let atoms = Atoms {
        name: atom_names,
        element,
        coords: xyz.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect(),
        occupancy: r.f32s("atom.occupancy", n_atoms)?,
        b_factor: r.f32s("atom.b_factor", n_atoms)?,
        charge: r.u8s("atom.charge", n_atoms)?.iter().map(|&c| c as i8).collect(),
        resolved: r.u8s("atom.resolved", n_atoms)?.iter().map(|&b| b != 0).collect(),
    };

    let bond_kinds = r.column("bond.kind", 1, None)?;
    let bond_atoms = r.indices("bond.atoms", 2 * bond_kinds.len(), n_atoms)?;
    let bonds = bond_atoms
        .chunks_exact(2)
        .zip(decode(r, "bond.kind", &BOND_KINDS, bond_kinds)?)
        .map(|(a, kind)| Bond { atoms: [a[0], a[1]], kind })
        .collect();

    let asm_ids = r.strs("asm.id", "asm.id#", None)?;
    let exprs = r.strs("asm.expr", "asm.expr#", Some(asm_ids.len()))?;
    let n_asym = r.u32s("asm.n_asym", Some(asm_ids.len()))?;
    let total: usize = n_asym.iter().map(|&n| n as usize).sum();
    let mut asyms = r.strs("asm.asym", "asm.asym#", Some(total))?.into_iter();
    let assemblies = asm_ids
        .into_iter()
        .zip(exprs)
        .zip(&n_asym)
        .map(|((assembly_id, oper_expression), &n)| AssemblyGen {
            assembly_id,
            oper_expression,
            asym_ids: asyms.by_ref().take(n as usize).collect(),
        })
        .collect();
    let op_ids = r.strs("op.id", "op.id#", None)?;
    let rt = r.f64s("op.rt", 12 * op_ids.len())?;
    let operators = op_ids
        .into_iter()
        .zip(rt.chunks_exact(12))
        .map(|(id, m)| Operator {
            id,
            rotation: [[m[0], m[1], m[2]], [m[3], m[4], m[5]], [m[6], m[7], m[8]]],
            translation: [m[9], m[10], m[11]],
        })
        .collect();

    Ok(Structure {
        id,
        path: PathBuf::from(path),
        metadata,
        entities,
        chains,
        residues,
        atoms,
        bonds,
        assemblies,
        operators,
    })
}

fn put_tokens(w: &mut Writer, t: &Tokens) {
    w.ranges("tok.atoms", t.atoms.iter().cloned());
    w.u32s("tok.residue", t.residue.iter().map(|&r| index(r)));
    w.u32s("tok.centre", t.centre_atom.iter().map(|&a| index(a)));
    w.u32s("tok.rep", t.rep_atom.iter().map(|&a| index(a)));
    w.u8s("tok.atomized", t.atomized.iter().map(|&b| u8::from(b)));
}

fn get_tokens(r: &Reader<'_>, s: &Structure) -> Result<Tokens, PrepError> {
    let atomized = r.column("tok.atomized", 1, None)?;
    let n = atomized.len();
    let a = s.atoms.len();
    Ok(Tokens {
        atoms: r.ranges("tok.atoms", n, a)?,
        residue: r.indices("tok.residue", n, s.residues.len())?,
        centre_atom: r.indices("tok.centre", n, a)?,
        rep_atom: r.indices("tok.rep", n, a)?,
        atomized: atomized.iter().map(|&b| b != 0).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_files_are_errors_naming_the_problem() {
        let path = Path::new("x.hsc");
        let err = |bytes: &[u8]| CachedStructure::from_bytes(bytes, path).unwrap_err().to_string();
        assert!(err(b"not a cache").contains("not a helico structure cache"), "{}", err(b"not a cache"));
        let mut future = MAGIC.to_vec();
        future.extend_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        future.extend_from_slice(&0u32.to_le_bytes());
        assert!(err(&future).contains("run `helico preprocess` again"), "{}", err(&future));

        let mut w = Writer::default();
        w.u32s("a", [1, 2, 3]);
        let bytes = w.finish();
        assert!(err(&bytes[..bytes.len() - 4]).contains("truncated: column a ends past"), "{}", err(&bytes));
        assert!(err(&bytes).contains("no column id"), "{}", err(&bytes));
    }
}
