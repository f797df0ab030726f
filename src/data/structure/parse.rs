//! Reading a structure from the first data block of an mmCIF or BinaryCIF file: what the file
//! observed, nothing added. AF3 supplement §2.1 (parsing) and §2.5.4 (filtering), as Protenix
//! implements them in `MMCIFParser.get_structure` (bytedance/Protenix 3248f8e):
//!
//! - first model only (the model number of the first `_atom_site` row);
//! - alternate locations: per residue, the altloc whose occupancies sum highest, ties to the
//!   alphabetically first, atoms without an altloc always kept. This is biotite's
//!   `filter_highest_occupancy_altloc` (sums include hydrogens); Protenix's default
//!   ("local_largest") averages over runs of consecutive altloc residues instead, and the Python
//!   reference kept only altlocs `.`, `A` and `?` (so a residue whose best altloc is B lost atoms);
//! - hydrogens (H, D) and waters (HOH, DOD, water entities) dropped unless asked for;
//! - `_struct_conn` covalent, disulfide and metal-coordination bonds between atoms that remain
//!   (`conn.rs`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use crate::data::DataError;
use crate::data::cif::{Block, Category, CifFile, Column};

use super::error::{Result, StructureError};
use super::{
    Atom, AtomName, Atoms, Chain, Element, Entity, EntityKind, Metadata, PolymerType, ResName, Residue, Structure,
    assembly, conn,
};

/// What [`Structure::from_cif`] keeps besides the defaults of AF3 §2.5.4.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Options {
    /// Keep hydrogen and deuterium atoms (AF3 drops them).
    pub keep_hydrogens: bool,
    /// Keep waters (AF3 drops them).
    pub keep_water: bool,
    /// Build this biological assembly (`_pdbx_struct_assembly.id`, e.g. "1") instead of
    /// returning the asymmetric unit.
    pub assembly: Option<String>,
}

impl Structure {
    /// Reads `path` (text or BinaryCIF, gzipped or not) and builds its structure.
    pub fn read(path: impl AsRef<Path>, options: &Options) -> Result<Structure> {
        Structure::from_cif(&CifFile::read(path)?, options)
    }

    /// Builds the structure of the file's first data block. Missing `_atom_site` or `_entity`,
    /// unreadable values and unknown elements are errors naming file, place and structure.
    pub fn from_cif(file: &CifFile, options: &Options) -> Result<Structure> {
        let path = file.path();
        let block = file.blocks.first().ok_or_else(|| StructureError::NoBlock { path: path.to_owned() })?;
        let id = match block.category("entry").map(|c| text(c, "id", 0)).transpose()?.flatten() {
            Some(id) => id.into_owned(),
            None => block.name().to_owned(),
        };
        build(path, block, &id, options).map_err(|e| locate(e, block, &id))
    }
}

fn build(path: &Path, block: &Block, id: &str, options: &Options) -> Result<Structure> {
    let cx = Context { path, id };
    let entities = read_entities(block)?;
    let metadata = read_metadata(block, &cx)?;
    let observed = read_atoms(block, &entities, options, &cx)?;
    let bonds = conn::read(block, &observed)?;
    let (assemblies, operators) = assembly::read(block)?;
    let structure = Structure {
        id: id.to_owned(),
        path: path.to_owned(),
        metadata,
        entities,
        chains: observed.chains,
        residues: observed.residues,
        atoms: observed.atoms,
        bonds,
        assemblies,
        operators,
    };
    match &options.assembly {
        Some(assembly) => structure.assembly(assembly),
        None => Ok(structure),
    }
}

/// A value the CIF reader could not convert becomes a record error that also names the
/// structure and, for text files, the line.
fn locate(err: StructureError, block: &Block, id: &str) -> StructureError {
    match err {
        StructureError::Cif(DataError::Value { path, category, column, row, expected, got }) => {
            let line = block.category(&category).and_then(|c| c.column(&column).ok()).and_then(|c| c.line(row));
            let record = format!("_{category}.{column} row {row}");
            StructureError::Record {
                path,
                structure: id.to_owned(),
                place: match line {
                    Some(line) => format!("line {line} ({record})"),
                    None => record,
                },
                expected: expected.to_owned(),
                got,
            }
        }
        other => other,
    }
}

/// File and structure names for error messages.
struct Context<'a> {
    path: &'a Path,
    id: &'a str,
}

impl Context<'_> {
    fn record(
        &self,
        col: &Column<'_>,
        row: usize,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> StructureError {
        StructureError::Record {
            path: self.path.to_owned(),
            structure: self.id.to_owned(),
            place: place(col, row),
            expected: expected.into(),
            got: got.into(),
        }
    }
}

/// "line 812 (_atom_site.Cartn_x row 17)" for text files, "_atom_site.Cartn_x row 17" for BinaryCIF.
fn place(col: &Column<'_>, row: usize) -> String {
    let record = format!("_{}.{} row {row}", col.category(), col.name());
    match col.line(row) {
        Some(line) => format!("line {line} ({record})"),
        None => record,
    }
}

fn text<'a>(cat: &'a Category, column: &str, row: usize) -> Result<Option<Cow<'a, str>>> {
    if !cat.has_column(column) || row >= cat.row_count() {
        return Ok(None);
    }
    Ok(cat.column(column)?.as_str(row)?)
}

pub(super) fn optional<'a>(cat: &'a Category, name: &str) -> Result<Option<Column<'a>>> {
    Ok(if cat.has_column(name) { Some(cat.column(name)?) } else { None })
}

fn read_entities(block: &Block) -> Result<Vec<Entity>> {
    let entity = block.require("entity")?;
    let (ids, types) = (entity.column("id")?, entity.column("type")?);
    let mut entities = Vec::with_capacity(entity.row_count());
    let mut index = HashMap::new();
    for row in 0..entity.row_count() {
        let id = ids.as_str(row)?.unwrap_or_default().into_owned();
        let kind = match types.as_str(row)?.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("polymer") => EntityKind::Polymer(PolymerType::Other),
            Some("branched") => EntityKind::Branched,
            Some("water") => EntityKind::Water,
            _ => EntityKind::NonPolymer,
        };
        index.insert(id.clone(), entities.len());
        entities.push(Entity { id, kind, sequence: Vec::new() });
    }
    if let Some(poly) = block.category("entity_poly") {
        let (ids, types) = (poly.column("entity_id")?, poly.column("type")?);
        for row in 0..poly.row_count() {
            let Some(&e) = ids.as_str(row)?.and_then(|id| index.get(id.as_ref())) else { continue };
            let kind = PolymerType::parse(&types.as_str(row)?.unwrap_or_default());
            entities[e].kind = EntityKind::Polymer(kind);
        }
    }
    if let Some(seq) = block.category("entity_poly_seq") {
        let (ids, nums, mons) = (seq.column("entity_id")?, seq.column("num")?, seq.column("mon_id")?);
        for row in 0..seq.row_count() {
            let Some(&e) = ids.as_str(row)?.and_then(|id| index.get(id.as_ref())) else { continue };
            let (Some(num), Some(mon)) = (nums.as_i64(row)?, mons.as_str(row)?) else { continue };
            let sequence = &mut entities[e].sequence;
            // Heterogeneous positions repeat `num`: the first component listed stays.
            if num as usize == sequence.len() + 1 {
                let name = ResName::new(&mon)
                    .ok_or_else(|| mons.value_error(row, "a component id of 1-5 characters", &mon))?;
                sequence.push(name);
            }
        }
    }
    Ok(entities)
}

fn read_metadata(block: &Block, cx: &Context<'_>) -> Result<Metadata> {
    const RESOLUTION: [(&str, &str); 3] =
        [("refine", "ls_d_res_high"), ("em_3d_reconstruction", "resolution"), ("reflns", "d_resolution_high")];
    let mut resolution = None;
    for (category, column) in RESOLUTION {
        let Some(cat) = block.category(category) else { continue };
        if !cat.has_column(column) || cat.row_count() == 0 {
            continue;
        }
        // `?`, `.` and unparsable text fall through to the next source, as in Protenix.
        if let Ok(Some(value)) = cat.column(column)?.as_f64(0)
            && value > 0.0
        {
            resolution = Some(value as f32);
            break;
        }
    }
    let mut release_date = None;
    if let Some(history) = block.category("pdbx_audit_revision_history")
        && history.has_column("revision_date")
        && history.row_count() > 0
    {
        let dates = history.column("revision_date")?;
        if let Some(date) = dates.as_str(0)? {
            let parsed = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d")
                .map_err(|_| cx.record(&dates, 0, "a date YYYY-MM-DD", format!("{date:?}")))?;
            release_date = Some(parsed);
        }
    }
    let mut methods = Vec::new();
    if let Some(exptl) = block.category("exptl")
        && exptl.has_column("method")
    {
        let col = exptl.column("method")?;
        for row in 0..exptl.row_count() {
            if let Some(m) = col.as_str(row)? {
                methods.push(m.into_owned());
            }
        }
    }
    Ok(Metadata { resolution, release_date, methods })
}

/// The `_atom_site` columns the reader uses; optional ones are `None` when the file lacks them.
struct AtomSite<'a> {
    element: Column<'a>,
    name: Column<'a>,
    comp: Column<'a>,
    asym: Column<'a>,
    xyz: [Column<'a>; 3],
    group: Option<Column<'a>>,
    alt: Option<Column<'a>>,
    entity: Option<Column<'a>>,
    seq: Option<Column<'a>>,
    auth_seq: Option<Column<'a>>,
    auth_asym: Option<Column<'a>>,
    ins: Option<Column<'a>>,
    occupancy: Option<Column<'a>>,
    b_factor: Option<Column<'a>>,
    charge: Option<Column<'a>>,
    model: Option<Column<'a>>,
}

impl<'a> AtomSite<'a> {
    fn new(cat: &'a Category) -> Result<AtomSite<'a>> {
        let name = if cat.has_column("label_atom_id") { "label_atom_id" } else { "auth_atom_id" };
        Ok(AtomSite {
            element: cat.column("type_symbol")?,
            name: cat.column(name)?,
            comp: cat.column("label_comp_id")?,
            asym: cat.column("label_asym_id")?,
            xyz: [cat.column("Cartn_x")?, cat.column("Cartn_y")?, cat.column("Cartn_z")?],
            group: optional(cat, "group_PDB")?,
            alt: optional(cat, "label_alt_id")?,
            entity: optional(cat, "label_entity_id")?,
            seq: optional(cat, "label_seq_id")?,
            auth_seq: optional(cat, "auth_seq_id")?,
            auth_asym: optional(cat, "auth_asym_id")?,
            ins: optional(cat, "pdbx_PDB_ins_code")?,
            occupancy: optional(cat, "occupancy")?,
            b_factor: optional(cat, "B_iso_or_equiv")?,
            charge: optional(cat, "pdbx_formal_charge")?,
            model: optional(cat, "pdbx_PDB_model_num")?,
        })
    }
}

pub(super) fn opt_i64(col: Option<&Column<'_>>, row: usize) -> Result<Option<i64>> {
    Ok(match col {
        Some(c) => c.as_i64(row)?,
        None => None,
    })
}

pub(super) fn opt_str<'a>(col: Option<&Column<'a>>, row: usize) -> Result<Option<Cow<'a, str>>> {
    Ok(match col {
        Some(c) => c.as_str(row)?,
        None => None,
    })
}

/// What identifies a residue among consecutive `_atom_site` rows: the component id is left
/// out so that microheterogeneity (one position, two components in two altlocs) is one residue.
#[derive(PartialEq, Clone)]
struct ResidueKey<'a> {
    asym: Cow<'a, str>,
    seq: Option<i64>,
    auth_seq: Option<i64>,
    ins: Option<Cow<'a, str>>,
}

/// The observed chains, residues and atoms, plus what `_struct_conn` lookups need.
pub(super) struct Observed {
    pub(super) chains: Vec<Chain>,
    pub(super) residues: Vec<Residue>,
    pub(super) atoms: Atoms,
    /// The altloc kept for each residue, if it had any.
    pub(super) altlocs: Vec<Option<String>>,
}

fn read_atoms(block: &Block, entities: &[Entity], options: &Options, cx: &Context<'_>) -> Result<Observed> {
    let cat = block.require("atom_site")?;
    let site = AtomSite::new(cat)?;
    let reader = AtomReader {
        entity_of_asym: struct_asym_entities(block)?,
        entity_index: entities.iter().enumerate().map(|(i, e)| (e.id.as_str(), i)).collect(),
        site,
        entities,
        options,
        cx,
    };
    let site = &reader.site;
    let first_model = if cat.row_count() > 0 { opt_i64(site.model.as_ref(), 0)? } else { None };

    let mut out = Observed { chains: Vec::new(), residues: Vec::new(), atoms: Atoms::default(), altlocs: Vec::new() };
    let mut group: Vec<usize> = Vec::new();
    let mut key: Option<ResidueKey<'_>> = None;
    for row in 0..=cat.row_count() {
        let next = if row < cat.row_count() {
            if opt_i64(site.model.as_ref(), row)? != first_model {
                continue;
            }
            Some(ResidueKey {
                asym: site.asym.as_str(row)?.ok_or_else(|| cx.record(&site.asym, row, "a label_asym_id", "null"))?,
                seq: opt_i64(site.seq.as_ref(), row)?,
                auth_seq: opt_i64(site.auth_seq.as_ref(), row)?,
                ins: opt_str(site.ins.as_ref(), row)?,
            })
        } else {
            None
        };
        if next != key && !group.is_empty() {
            reader.push_residue(&group, &mut out)?;
            group.clear();
        }
        if next.is_some() {
            group.push(row);
        }
        key = next;
    }
    if out.atoms.is_empty() {
        return Err(StructureError::NoAtoms { path: cx.path.to_owned(), structure: cx.id.to_owned() });
    }
    Ok(out)
}

/// `_atom_site` with what is needed to place its residues in entities.
struct AtomReader<'a> {
    site: AtomSite<'a>,
    entities: &'a [Entity],
    entity_index: HashMap<&'a str, usize>,
    entity_of_asym: HashMap<String, String>,
    options: &'a Options,
    cx: &'a Context<'a>,
}

/// `_struct_asym.id → entity_id`, for files whose `_atom_site` lacks `label_entity_id`.
fn struct_asym_entities(block: &Block) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    if let Some(cat) = block.category("struct_asym")
        && cat.has_column("entity_id")
    {
        let (ids, entity) = (cat.column("id")?, cat.column("entity_id")?);
        for row in 0..cat.row_count() {
            if let (Some(id), Some(e)) = (ids.as_str(row)?, entity.as_str(row)?) {
                out.insert(id.into_owned(), e.into_owned());
            }
        }
    }
    Ok(out)
}

/// The altloc of one residue's rows to keep: highest summed occupancy, ties to the first in
/// alphabetical order (biotite `filter_highest_occupancy_altloc`).
fn choose_altloc(site: &AtomSite<'_>, rows: &[usize]) -> Result<Option<String>> {
    let Some(alt) = &site.alt else { return Ok(None) };
    let mut sums: Vec<(String, f64)> = Vec::new();
    for &row in rows {
        let Some(id) = alt.as_str(row)? else { continue };
        let occupancy = opt_f64(site.occupancy.as_ref(), row)?.unwrap_or(1.0);
        match sums.iter_mut().find(|(a, _)| *a == id) {
            Some((_, sum)) => *sum += occupancy,
            None => sums.push((id.into_owned(), occupancy)),
        }
    }
    sums.sort_by(|a, b| a.0.cmp(&b.0));
    let mut best: Option<(String, f64)> = None;
    for (id, sum) in sums {
        if best.as_ref().is_none_or(|(_, b)| sum > *b) {
            best = Some((id, sum));
        }
    }
    Ok(best.map(|(id, _)| id))
}

fn opt_f64(col: Option<&Column<'_>>, row: usize) -> Result<Option<f64>> {
    Ok(match col {
        Some(c) => c.as_f64(row)?,
        None => None,
    })
}

impl AtomReader<'_> {
    /// Appends one residue group of rows (one altloc chosen, hydrogens and waters dropped).
    fn push_residue(&self, rows: &[usize], out: &mut Observed) -> Result<()> {
        let (site, entities, options, cx) = (&self.site, self.entities, self.options, self.cx);
        let (entity_of_asym, entity_index) = (&self.entity_of_asym, &self.entity_index);
        let altloc = choose_altloc(&self.site, rows)?;
        let first = rows[0];
        let asym = site.asym.as_str(first)?.unwrap_or_default();
        let entity_id = match opt_str(site.entity.as_ref(), first)? {
            Some(e) => e.into_owned(),
            None => entity_of_asym.get(asym.as_ref()).cloned().ok_or_else(|| {
                cx.record(
                    &site.asym,
                    first,
                    "a label_entity_id (in _atom_site or _struct_asym)",
                    format!("none for chain {asym}"),
                )
            })?,
        };
        let entity = *entity_index.get(entity_id.as_str()).ok_or_else(|| {
            let col = site.entity.as_ref().unwrap_or(&site.asym);
            cx.record(col, first, "an entity id listed in _entity", format!("{entity_id:?}"))
        })?;

        let start = out.atoms.len();
        let mut name = None;
        let mut hetero = false;
        for &row in rows {
            if let (Some(alt), Some(keep)) = (&site.alt, &altloc)
                && alt.as_str(row)?.is_some_and(|a| a != keep.as_str())
            {
                continue;
            }
            let comp = site.comp.as_str(row)?.ok_or_else(|| cx.record(&site.comp, row, "a label_comp_id", "null"))?;
            let is_water = entities[entity].kind == EntityKind::Water || comp == "HOH" || comp == "DOD";
            if is_water && !options.keep_water {
                continue;
            }
            let symbol = site.element.as_str(row)?.unwrap_or(Cow::Borrowed("X"));
            let element = Element::from_symbol(&symbol)
                .ok_or_else(|| cx.record(&site.element, row, "an element symbol", format!("{symbol:?}")))?;
            if element.is_hydrogen() && !options.keep_hydrogens {
                continue;
            }
            if name.is_none() {
                name = Some(ResName::new(&comp).ok_or_else(|| {
                    cx.record(&site.comp, row, "a component id of 1-5 printable characters", format!("{comp:?}"))
                })?);
                hetero = opt_str(site.group.as_ref(), row)?.is_some_and(|g| g == "HETATM");
            }
            let atom_name = site.name.as_str(row)?.unwrap_or_default();
            let coord = read_xyz(site, row, cx)?;
            let charge = opt_i64(site.charge.as_ref(), row)?.unwrap_or(0);
            out.atoms.push(Atom {
                name: AtomName::new(&atom_name).ok_or_else(|| {
                    cx.record(&site.name, row, "an atom name of 1-4 printable characters", format!("{atom_name:?}"))
                })?,
                element,
                coord,
                occupancy: opt_f64(site.occupancy.as_ref(), row)?.unwrap_or(1.0) as f32,
                b_factor: opt_f64(site.b_factor.as_ref(), row)?.unwrap_or(0.0) as f32,
                charge: i8::try_from(charge).map_err(|_| {
                    cx.record(site.charge.as_ref().unwrap_or(&site.name), row, "a formal charge", charge.to_string())
                })?,
                resolved: true,
            });
        }
        let Some(name) = name else { return Ok(()) };

        let auth_asym = opt_str(site.auth_asym.as_ref(), first)?.unwrap_or_else(|| asym.clone());
        let new_chain = match out.chains.last() {
            Some(chain) => chain.label_asym_id != asym || chain.entity != entity,
            None => true,
        };
        if new_chain {
            let at = out.residues.len();
            out.chains.push(Chain {
                label_asym_id: asym.into_owned(),
                auth_asym_id: auth_asym.into_owned(),
                entity,
                residues: at..at,
                operator: None,
            });
        }
        let chain = out.chains.len() - 1;
        out.chains[chain].residues.end += 1;
        let to_i32 = |v: Option<i64>, col: Option<&Column<'_>>| -> Result<Option<i32>> {
            v.map(|v| {
                i32::try_from(v)
                    .map_err(|_| cx.record(col.unwrap_or(&site.asym), first, "a 32-bit sequence number", v.to_string()))
            })
            .transpose()
        };
        out.residues.push(Residue {
            name,
            label_seq_id: to_i32(opt_i64(site.seq.as_ref(), first)?, site.seq.as_ref())?,
            auth_seq_id: to_i32(opt_i64(site.auth_seq.as_ref(), first)?, site.auth_seq.as_ref())?,
            ins_code: opt_str(site.ins.as_ref(), first)?.and_then(|s| s.chars().next()),
            hetero,
            molecule: entities[entity].kind.molecule_type(name.as_str()),
            chain,
            atoms: start..out.atoms.len(),
        });
        out.altlocs.push(altloc);
        Ok(())
    }
}

fn read_xyz(site: &AtomSite<'_>, row: usize, cx: &Context<'_>) -> Result<[f32; 3]> {
    let mut out = [0f32; 3];
    for (axis, col) in site.xyz.iter().enumerate() {
        let v = col.as_f64(row)?.ok_or_else(|| cx.record(col, row, "a coordinate", "null"))?;
        if !v.is_finite() {
            return Err(cx.record(col, row, "a finite coordinate", v.to_string()));
        }
        out[axis] = v as f32;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = "data_TINY\n_entry.id TINY\n\
        loop_\n_entity.id\n_entity.type\n1 polymer\n2 non-polymer\n3 water\n\
        _entity_poly.entity_id 1\n_entity_poly.type 'polypeptide(L)'\n\
        loop_\n_entity_poly_seq.entity_id\n_entity_poly_seq.num\n_entity_poly_seq.mon_id\n1 1 GLY\n1 2 SER\n1 2 ALA\n1 3 GLY\n\
        _refine.ls_d_res_high ?\n_reflns.d_resolution_high 2.10\n\
        loop_\n_pdbx_audit_revision_history.ordinal\n_pdbx_audit_revision_history.revision_date\n1 2001-02-03\n2 2010-01-01\n\
        loop_\n_atom_site.group_PDB\n_atom_site.id\n_atom_site.type_symbol\n_atom_site.label_atom_id\n\
        _atom_site.label_alt_id\n_atom_site.label_comp_id\n_atom_site.label_asym_id\n_atom_site.label_entity_id\n\
        _atom_site.label_seq_id\n_atom_site.Cartn_x\n_atom_site.Cartn_y\n_atom_site.Cartn_z\n_atom_site.occupancy\n\
        _atom_site.auth_seq_id\n_atom_site.auth_asym_id\n_atom_site.pdbx_PDB_model_num\n\
        ATOM 1 N N . GLY A 1 1 0 0 1 1.0 10 X 1\n\
        ATOM 2 H H . GLY A 1 1 0 1 1 1.0 10 X 1\n\
        ATOM 3 N N A SER A 1 2 1 0 0 0.4 11 X 1\n\
        ATOM 4 C CB A SER A 1 2 1 1 0 0.4 11 X 1\n\
        ATOM 5 N N B ALA A 1 2 2 0 0 0.6 11 X 1\n\
        ATOM 6 C CB B ALA A 1 2 2 1 0 0.6 11 X 1\n\
        HETATM 7 ZN ZN . ZN B 2 . 5 5 5 1.0 101 X 1\n\
        HETATM 8 O O . HOH C 3 . 9 9 9 1.0 201 X 1\n\
        ATOM 9 N N . GLY A 1 1 7 7 7 1.0 10 X 2\n";

    fn tiny(options: &Options) -> Result<Structure> {
        Structure::from_cif(&CifFile::from_bytes(TINY.as_bytes().to_vec(), Path::new("tiny.cif"))?, options)
    }

    #[test]
    fn first_model_best_altloc_no_hydrogens_or_water() {
        let s = tiny(&Options::default()).unwrap();
        assert_eq!(s.id, "TINY");
        let names: Vec<(&str, &str)> = s
            .residues
            .iter()
            .flat_map(|r| r.atoms.clone().map(move |i| (r.name.as_str(), i)))
            .map(|(r, i)| (r, s.atoms.name[i].as_str()))
            .collect();
        // Altloc B (ALA) sums 1.2 against A (SER) 0.8: microheterogeneity resolved to ALA.
        assert_eq!(names, [("GLY", "N"), ("ALA", "N"), ("ALA", "CB"), ("ZN", "ZN")]);
        assert_eq!(s.chains.len(), 2);
        assert_eq!(s.entities[0].sequence.iter().map(|n| n.as_str()).collect::<Vec<_>>(), ["GLY", "SER", "GLY"]);
        assert_eq!(s.metadata.resolution, Some(2.1));
        assert_eq!(s.metadata.release_date, chrono::NaiveDate::from_ymd_opt(2001, 2, 3));
        assert_eq!(s.atoms.element[3], Element::from_symbol("Zn").unwrap());

        let all = tiny(&Options { keep_hydrogens: true, keep_water: true, assembly: None }).unwrap();
        assert_eq!(all.atoms.len(), 6);
        assert_eq!(all.chains.len(), 3);
    }

    #[test]
    fn bad_records_name_file_line_and_structure() {
        let bad = TINY.replace("HETATM 7 ZN ZN", "HETATM 7 QQ ZN");
        let err = Structure::from_cif(
            &CifFile::from_bytes(bad.into_bytes(), Path::new("t.cif")).unwrap(),
            &Options::default(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "t.cif: structure TINY: line 49 (_atom_site.type_symbol row 6): expected an element symbol, got \"QQ\""
        );
        let bad = TINY.replace("5 5 5 1.0 101", "5 five 5 1.0 101");
        let err = Structure::from_cif(
            &CifFile::from_bytes(bad.into_bytes(), Path::new("t.cif")).unwrap(),
            &Options::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("(_atom_site.Cartn_y row 6): expected a number, got \"five\""), "{err}");
    }
}
