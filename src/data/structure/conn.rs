//! `_struct_conn`: bonds between residues the file records (covalent links, disulfides, metal
//! coordination), mapped onto the atoms that survived parsing. Hydrogen bonds, salt bridges and
//! mismatches are not bonds a model should be told about; bonds to symmetry mates (any
//! `ptnr*_symmetry` other than 1_555) leave the asymmetric unit and are dropped.

use std::collections::HashMap;

use crate::data::cif::{Block, Category, Column};

use super::error::Result;
use super::parse::{Observed, opt_i64, opt_str, optional};
use super::{Bond, BondKind};

/// `_struct_conn.conn_type_id` values that are bonds a model should know about; hydrogen bonds,
/// salt bridges and mismatches are not.
const BOND_TYPES: [(&str, BondKind); 6] = [
    ("covale", BondKind::Covalent),
    ("covale_base", BondKind::Covalent),
    ("covale_phosphate", BondKind::Covalent),
    ("covale_sugar", BondKind::Covalent),
    ("disulf", BondKind::Disulfide),
    ("metalc", BondKind::MetalCoordination),
];

/// The symmetry operator of the asymmetric unit itself in `_struct_conn.ptnr*_symmetry`.
const IDENTITY_SYMMETRY: &str = "1_555";

/// `_struct_conn` bonds between atoms that survived the filters. A partner that was dropped
/// (hydrogen, water, another altloc or model) or lies in a symmetry mate drops its bond.
pub(super) fn read(block: &Block, observed: &Observed) -> Result<Vec<Bond>> {
    let Some(conn) = block.category("struct_conn") else { return Ok(Vec::new()) };
    let polymer: HashMap<(&str, i32), usize> = observed
        .residues
        .iter()
        .enumerate()
        .filter_map(|(r, res)| Some(((observed.chains[res.chain].label_asym_id.as_str(), res.label_seq_id?), r)))
        .collect();
    let other: HashMap<(&str, Option<i32>, Option<char>), usize> = observed
        .residues
        .iter()
        .enumerate()
        .filter(|(_, res)| res.label_seq_id.is_none())
        .map(|(r, res)| ((observed.chains[res.chain].label_asym_id.as_str(), res.auth_seq_id, res.ins_code), r))
        .collect();
    let kind_col = conn.column("conn_type_id")?;
    let partners = [Partner::new(conn, "1")?, Partner::new(conn, "2")?];
    let mut bonds = Vec::new();
    for row in 0..conn.row_count() {
        let Some(kind) = kind_col.as_str(row)? else { continue };
        let Some(&(_, kind)) = BOND_TYPES.iter().find(|(name, _)| kind.eq_ignore_ascii_case(name)) else { continue };
        let mut atoms = [0usize; 2];
        let mut found = true;
        for (p, partner) in partners.iter().enumerate() {
            match partner.atom(row, observed, &polymer, &other)? {
                Some(atom) => atoms[p] = atom,
                None => found = false,
            }
        }
        if found && atoms[0] != atoms[1] {
            atoms.sort_unstable();
            bonds.push(Bond { atoms, kind });
        }
    }
    bonds.sort_unstable();
    bonds.dedup_by_key(|b| b.atoms);
    Ok(bonds)
}

/// The columns of one side (`ptnr1` or `ptnr2`) of `_struct_conn`.
struct Partner<'a> {
    asym: Column<'a>,
    comp: Column<'a>,
    atom: Column<'a>,
    seq: Option<Column<'a>>,
    auth_seq: Option<Column<'a>>,
    ins: Option<Column<'a>>,
    alt: Option<Column<'a>>,
    symmetry: Option<Column<'a>>,
}

impl<'a> Partner<'a> {
    fn new(cat: &'a Category, n: &str) -> Result<Partner<'a>> {
        Ok(Partner {
            asym: cat.column(&format!("ptnr{n}_label_asym_id"))?,
            comp: cat.column(&format!("ptnr{n}_label_comp_id"))?,
            atom: cat.column(&format!("ptnr{n}_label_atom_id"))?,
            seq: optional(cat, &format!("ptnr{n}_label_seq_id"))?,
            auth_seq: optional(cat, &format!("ptnr{n}_auth_seq_id"))?,
            ins: optional(cat, &format!("pdbx_ptnr{n}_PDB_ins_code"))?,
            alt: optional(cat, &format!("pdbx_ptnr{n}_label_alt_id"))?,
            symmetry: optional(cat, &format!("ptnr{n}_symmetry"))?,
        })
    }

    fn atom(
        &self,
        row: usize,
        observed: &Observed,
        polymer: &HashMap<(&str, i32), usize>,
        other: &HashMap<(&str, Option<i32>, Option<char>), usize>,
    ) -> Result<Option<usize>> {
        if opt_str(self.symmetry.as_ref(), row)?.is_some_and(|s| s != IDENTITY_SYMMETRY) {
            return Ok(None);
        }
        let Some(asym) = self.asym.as_str(row)? else { return Ok(None) };
        let residue = match opt_i64(self.seq.as_ref(), row)? {
            Some(seq) => i32::try_from(seq).ok().and_then(|seq| polymer.get(&(asym.as_ref(), seq))),
            None => {
                let auth = opt_i64(self.auth_seq.as_ref(), row)?.and_then(|v| i32::try_from(v).ok());
                let ins = opt_str(self.ins.as_ref(), row)?.and_then(|s| s.chars().next());
                other.get(&(asym.as_ref(), auth, ins))
            }
        };
        let Some(&r) = residue else { return Ok(None) };
        let res = &observed.residues[r];
        if self.comp.as_str(row)?.is_none_or(|c| c != res.name.as_str()) {
            return Ok(None);
        }
        if let (Some(alt), Some(kept)) = (opt_str(self.alt.as_ref(), row)?, &observed.altlocs[r])
            && alt != kept.as_str()
        {
            return Ok(None);
        }
        let Some(name) = self.atom.as_str(row)? else { return Ok(None) };
        Ok(res.atoms.clone().find(|&i| observed.atoms.name[i].as_str() == name))
    }
}
