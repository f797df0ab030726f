//! mmCIF or BinaryCIF as an inference input (re-predicting a deposited structure): the first
//! data block's entities and their chains, coordinates unused.
//!
//! Categories read: `_entity` (id, type) for the entity list; `_struct_asym` (id, entity_id)
//! for the chains, named by `label_asym_id`; `_entity_poly` (entity_id, type) for the
//! polymer kind; `_entity_poly_seq` (entity_id, num, mon_id) for the residues, first
//! `mon_id` of a position with several (microheterogeneity); `_pdbx_entity_nonpoly`
//! (entity_id, comp_id) for ligands; `_pdbx_entity_branch_list` (entity_id, comp_id, num)
//! for glycans and other branched entities. Water entities and entities without chains are
//! left out. A non-standard residue keeps its CCD code as a modification, with its parent's
//! letter in the sequence when a CCD names the parent (`MSE` → `M`), else the unknown
//! letter.
//!
//! Bonds: the covalent rows of `_struct_conn` (`conn_type_id` `covale`, `covale_base`,
//! `covale_phosphate`, `covale_sugar`), placed on atoms by the structure parser
//! (`structure/conn.rs`: first model, the kept altloc, no symmetry mates), each atom named as
//! AlphaFold 3's `bondedAtomPairs` name it: the chain's `label_asym_id`, the residue's 1-based
//! position in the chain's sequence (a polymer, by `_entity_poly_seq.num`) or among the chain's
//! residues (a ligand), and the atom name. Disulfides and metal coordination are not
//! `bondedAtomPairs` (AF3 takes only covalent bonds there) and are left out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::check::Builder;
use super::error::InputError;
use super::{AtomRef, Bond, InferenceInput, InputFormat, Ligand, Molecule, MsaInput, Polymer, PolymerKind};
use crate::data::Result as DataResult;
use crate::data::ccd::Ccd;
use crate::data::cif::{Block, CifFile};
use crate::data::structure::{BondKind, Options, Structure};

/// Standard residues by CCD code: protein three-letter codes, RNA and DNA nucleotides.
const STANDARD: [(&str, char); 29] = [
    ("ALA", 'A'),
    ("ARG", 'R'),
    ("ASN", 'N'),
    ("ASP", 'D'),
    ("CYS", 'C'),
    ("GLN", 'Q'),
    ("GLU", 'E'),
    ("GLY", 'G'),
    ("HIS", 'H'),
    ("ILE", 'I'),
    ("LEU", 'L'),
    ("LYS", 'K'),
    ("MET", 'M'),
    ("PHE", 'F'),
    ("PRO", 'P'),
    ("SER", 'S'),
    ("THR", 'T'),
    ("TRP", 'W'),
    ("TYR", 'Y'),
    ("VAL", 'V'),
    ("UNK", 'X'),
    ("A", 'A'),
    ("C", 'C'),
    ("G", 'G'),
    ("U", 'U'),
    ("DA", 'A'),
    ("DC", 'C'),
    ("DG", 'G'),
    ("DT", 'T'),
];

pub(crate) fn read(path: &Path, ccd: Option<&Ccd>) -> Result<InferenceInput, InputError> {
    let cif = CifFile::read(path)?;
    let file = path.display().to_string();
    let mut b = Builder::new(&file, path.parent().unwrap_or(Path::new(".")), ccd);
    let Some(block) = cif.blocks.first() else {
        b.problem(None, "", "no data block", "give an mmCIF with a data_ block");
        return b.finish(String::new(), InputFormat::Mmcif, Vec::new(), Vec::new(), None);
    };
    let name = block
        .category("entry")
        .map(|c| c.column("id").and_then(|col| col.as_str(0).map(|s| s.map(|s| s.into_owned()))))
        .transpose()?
        .flatten()
        .unwrap_or_else(|| block.name().to_owned());
    let entities = pairs(block, "entity", ["id", "type"])?;
    let chains = grouped(block, "struct_asym", "entity_id", "id")?;
    let poly_types: HashMap<String, String> = match block.category("entity_poly") {
        Some(_) => pairs(block, "entity_poly", ["entity_id", "type"])?.into_iter().map(|[e, t]| (e, t)).collect(),
        None => HashMap::new(),
    };
    let nonpoly: HashMap<String, String> = match block.category("pdbx_entity_nonpoly") {
        Some(_) => {
            pairs(block, "pdbx_entity_nonpoly", ["entity_id", "comp_id"])?.into_iter().map(|[e, c]| (e, c)).collect()
        }
        None => HashMap::new(),
    };
    // What each chain of the input holds, position by position, to name bonded atoms.
    let mut positions: HashMap<String, Positions> = HashMap::new();
    for [id, kind] in entities {
        let Some(entity_chains) = chains.get(&id).filter(|c| !c.is_empty()) else { continue };
        let field = format!("_entity {id} ({kind})");
        let molecule = match kind.as_str() {
            "water" => continue,
            "polymer" => polymer(&mut b, block, &id, poly_types.get(&id), &field)?,
            "non-polymer" => nonpoly.get(&id).map(|code| {
                let code = b.code(code, None, &field);
                (Molecule::Ligand(Ligand::Ccd(vec![code.clone()])), Positions { nums: None, codes: vec![code] })
            }),
            "branched" => branched(&mut b, block, &id, &field)?,
            other => {
                b.problem(None, &field, format!("entity type {other:?} is not read"), "");
                None
            }
        };
        match molecule {
            Some((molecule, held)) => {
                let ids = b.chain_ids(entity_chains.clone(), None, &format!("_struct_asym of entity {id}"));
                positions.extend(ids.iter().map(|c| (c.clone(), held.clone())));
                b.push_entity(ids, molecule);
            }
            None if kind == "non-polymer" => {
                b.problem(None, &field, "no _pdbx_entity_nonpoly row names its component", "");
            }
            None => {}
        }
    }
    let bonds = covalent_bonds(&mut b, &cif, block, &positions)?;
    b.finish(name, InputFormat::Mmcif, Vec::new(), bonds, None)
}

/// The components of a chain of the input by 1-based position, and for a polymer the
/// `_entity_poly_seq.num` of each position (the `label_seq_id` its atoms carry).
#[derive(Clone)]
struct Positions {
    nums: Option<Vec<i64>>,
    codes: Vec<String>,
}

/// `_struct_conn` types that are covalent bonds (as `structure/conn.rs` reads them).
fn is_covalent(conn_type: &str) -> bool {
    conn_type.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("covale"))
}

/// The covalent `_struct_conn` bonds between chains of the input (see the module doc). The
/// structure is parsed only when the category has a covalent row.
fn covalent_bonds(
    b: &mut Builder,
    cif: &CifFile,
    block: &Block,
    positions: &HashMap<String, Positions>,
) -> Result<Vec<Bond>, InputError> {
    let Some(conn) = block.category("struct_conn") else { return Ok(Vec::new()) };
    let types = conn.column("conn_type_id")?;
    if !(0..conn.row_count()).any(|r| types.as_str(r).ok().flatten().is_some_and(|t| is_covalent(&t))) {
        return Ok(Vec::new());
    }
    let structure = match Structure::from_cif(cif, &Options::default()) {
        Ok(s) => s,
        Err(e) => {
            let fix = "keep the _atom_site rows, or drop the covalent _struct_conn rows";
            b.problem(None, "_struct_conn", format!("its covalent bonds cannot be placed on atoms: {e}"), fix);
            return Ok(Vec::new());
        }
    };
    let residue_of = structure.atom_residues();
    let mut bonds = Vec::new();
    for bond in structure.bonds.iter().filter(|bond| bond.kind == BondKind::Covalent) {
        // (chain, position, atom, residue name) of each end.
        let ends = bond.atoms.map(|i| {
            let r = residue_of[i];
            let (residue, chain) = (&structure.residues[r], &structure.chains[structure.residues[r].chain]);
            let held = positions.get(&chain.label_asym_id)?;
            let position = match (&held.nums, residue.label_seq_id) {
                (Some(nums), Some(seq)) => nums.binary_search(&i64::from(seq)).ok()? + 1,
                _ => r - chain.residues.start + 1,
            };
            Some((
                chain.label_asym_id.as_str(),
                position,
                structure.atoms.name[i].as_str(),
                residue.name.as_str(),
                held,
            ))
        });
        // A chain the input does not hold already has its problem (an entity not read).
        let [Some(one), Some(two)] = ends else { continue };
        let field = format!(
            "_struct_conn covalent bond {} {} {} {} – {} {} {} {}",
            one.0, one.3, one.1, one.2, two.0, two.3, two.1, two.2
        );
        let mut atoms = Vec::with_capacity(2);
        for (chain, position, atom, name, held) in [one, two] {
            if held.codes.get(position - 1).is_none_or(|code| code != name) {
                let what = held.codes.get(position - 1).map_or("nothing".to_owned(), |c| format!("{c:?}"));
                let message =
                    format!("chain {chain} holds {what} at position {position}, the bond's atom is in {name:?}");
                b.problem(None, &field, message, "");
                continue;
            }
            atoms.extend(b.bond_atom(chain, position as i64, atom, None, &field, false));
        }
        if let Ok(atoms) = <[AtomRef; 2]>::try_from(atoms) {
            bonds.push(Bond { atoms });
        }
    }
    Ok(bonds)
}

fn polymer(
    b: &mut Builder,
    block: &Block,
    id: &str,
    poly_type: Option<&String>,
    field: &str,
) -> Result<Option<(Molecule, Positions)>, InputError> {
    let kind = match poly_type.map(String::as_str) {
        Some("polypeptide(L)") => PolymerKind::Protein,
        Some("polyribonucleotide") => PolymerKind::Rna,
        Some("polydeoxyribonucleotide") => PolymerKind::Dna,
        other => {
            let what = other.map_or("no _entity_poly row".to_owned(), |t| format!("polymer type {t:?}"));
            let fix = "helico reads polypeptide(L), polyribonucleotide and polydeoxyribonucleotide";
            b.problem(None, field, format!("{what} is not read"), fix);
            return Ok(None);
        }
    };
    let residues = numbered(block, "entity_poly_seq", id, "mon_id")?;
    let unknown = kind.letters().chars().last().expect("every kind has an unknown letter");
    let (mut sequence, mut modifications, mut seen) = (String::new(), Vec::new(), HashSet::new());
    for (i, code) in residues.values().enumerate() {
        match standard_letter(kind, code) {
            Some(letter) => sequence.push(letter),
            None => {
                let parent = b.ccd_parent(code);
                sequence.push(parent.and_then(|p| standard_letter(kind, &p)).unwrap_or(unknown));
                modifications.extend(b.modification(
                    residues.len(),
                    (i as i64 + 1, None),
                    (code, None),
                    field,
                    &mut seen,
                ));
            }
        }
    }
    let sequence = b.sequence(kind, &sequence, None, field);
    let polymer =
        Polymer { kind, sequence, modifications, cyclic: false, msa: MsaInput::default(), templates: Vec::new() };
    let held = Positions { nums: Some(residues.keys().copied().collect()), codes: residues.into_values().collect() };
    Ok(Some((Molecule::Polymer(polymer), held)))
}

fn branched(
    b: &mut Builder,
    block: &Block,
    id: &str,
    field: &str,
) -> Result<Option<(Molecule, Positions)>, InputError> {
    if block.category("pdbx_entity_branch_list").is_none() {
        b.problem(None, field, "branched entity without _pdbx_entity_branch_list", "");
        return Ok(None);
    }
    let components = numbered(block, "pdbx_entity_branch_list", id, "comp_id")?;
    let codes: Vec<String> = components.values().map(|c| b.code(c, None, field)).collect();
    Ok(Some((Molecule::Ligand(Ligand::Ccd(codes.clone())), Positions { nums: None, codes })))
}

/// The one-letter code of a standard residue of `kind`.
fn standard_letter(kind: PolymerKind, code: &str) -> Option<char> {
    let range = match kind {
        PolymerKind::Protein => 0..21,
        PolymerKind::Rna => 21..25,
        PolymerKind::Dna => 25..29,
    };
    STANDARD[range].iter().find(|(c, _)| *c == code).map(|&(_, l)| l)
}

/// Two text columns of every row of a required category.
fn pairs(block: &Block, category: &str, columns: [&str; 2]) -> DataResult<Vec<[String; 2]>> {
    let cat = block.require(category)?;
    let (a, z) = (cat.column(columns[0])?, cat.column(columns[1])?);
    (0..cat.row_count()).map(|r| Ok([text(&a, r)?, text(&z, r)?])).collect()
}

/// `value` per `key` of a required category, in row order.
fn grouped(block: &Block, category: &str, key: &str, value: &str) -> DataResult<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for [k, v] in pairs(block, category, [key, value])? {
        out.entry(k).or_default().push(v);
    }
    Ok(out)
}

/// `value` by `num` for the rows of `entity_id` (first value of a repeated `num`).
fn numbered(block: &Block, category: &str, entity: &str, value: &str) -> DataResult<BTreeMap<i64, String>> {
    let cat = block.require(category)?;
    let (e, n, v) = (cat.column("entity_id")?, cat.column("num")?, cat.column(value)?);
    let mut out = BTreeMap::new();
    for r in 0..cat.row_count() {
        if text(&e, r)? == entity {
            let num = n.as_i64(r)?.ok_or_else(|| n.value_error(r, "a residue number", "a null value"))?;
            out.entry(num).or_insert(text(&v, r)?);
        }
    }
    Ok(out)
}

fn text(column: &crate::data::cif::Column, row: usize) -> DataResult<String> {
    Ok(column.as_str(row)?.map(|s| s.into_owned()).unwrap_or_default())
}
