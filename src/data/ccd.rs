//! Chemical Component Dictionary (CCD, <https://www.wwpdb.org/data/ccd>) from BinaryCIF
//! (`components.bcif`, one block holding every component, as shipped by biotite) or text
//! (`components.cif`, one `data_` block per component, or any mix): per component the
//! `_chem_comp` header, its `_chem_comp_atom` rows and its `_chem_comp_bond` rows.
//!
//! Atom and bond rows are grouped by `comp_id`; the loader finds each group's row range in one
//! pass instead of filtering per component, so all ~49k components load in seconds. Processes
//! after the first map the CCD cache instead (`prep::CcdCache`, milliseconds), and decode a
//! component only when it is asked for.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use super::cif::{Block, Category, CifFile, Column};
use super::error::{DataError, Result};
use super::prep::ccd_cache::MappedCcd;

/// Every component of a dictionary, in file order, found by id. `Send + Sync`: preprocessing
/// shares one across its worker threads.
#[derive(Default)]
pub struct Ccd {
    store: Store,
}

enum Store {
    /// Parsed, or given (a structure cache's few components): all decoded up front.
    Decoded { components: Vec<Component>, index: HashMap<String, usize> },
    /// A CCD cache file: component i is decoded the first time it is asked for, then kept.
    /// Boxed, so that the ~49k empty cells cost 16 bytes each to make, not a `Component`'s size.
    Mapped { table: Box<MappedCcd>, decoded: Box<[OnceLock<Box<Component>>]> },
}

impl Default for Store {
    fn default() -> Store {
        Store::Decoded { components: Vec::new(), index: HashMap::new() }
    }
}

impl fmt::Debug for Ccd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.store {
            Store::Decoded { components, .. } => f.debug_struct("Ccd").field("components", &components.len()).finish(),
            Store::Mapped { table, .. } => f.debug_struct("Ccd").field("mapped", table).finish(),
        }
    }
}

/// One chemical component (`_chem_comp` row) with its atoms and bonds.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// `_chem_comp.id` ("ATP").
    pub id: String,
    /// `_chem_comp.name`.
    pub name: String,
    /// `_chem_comp.type` as written ("L-PEPTIDE LINKING", "non-polymer"; the CCD mixes cases).
    pub comp_type: String,
    /// `_chem_comp.one_letter_code`; `None` for `?`.
    pub one_letter_code: Option<String>,
    /// `_chem_comp.mon_nstd_parent_comp_id` (the standard residue a modified one derives from).
    pub parent: Option<String>,
    /// `_chem_comp.pdbx_formal_charge`; 0 when unknown.
    pub formal_charge: i32,
    pub atoms: Vec<Atom>,
    pub bonds: Vec<Bond>,
}

/// One `_chem_comp_atom` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Atom {
    /// `atom_id` ("C1'", "OP1").
    pub name: String,
    /// `type_symbol` in periodic-table case ("Fe", "Cl"); the CCD writes upper case. `D` and
    /// `X` (deuterium, unknown) are kept as they are.
    pub element: String,
    /// `charge`, the formal charge; 0 when unknown.
    pub charge: i32,
    /// `pdbx_leaving_atom_flag == 'Y'`: the atom leaves when the component forms a polymer bond.
    pub leaving: bool,
    /// `pdbx_aromatic_flag == 'Y'`.
    pub aromatic: bool,
    /// `pdbx_model_Cartn_{x,y,z}_ideal`, else `model_Cartn_{x,y,z}` when the ideal ones are
    /// missing, else `None`.
    pub position: Option<[f32; 3]>,
}

/// One `_chem_comp_bond` row; `atoms` index the component's `atoms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bond {
    pub atoms: [usize; 2],
    pub order: BondOrder,
    /// `pdbx_aromatic_flag == 'Y'` (independent of `order`: aromatic rings are Kekulé in the CCD).
    pub aromatic: bool,
}

/// `_chem_comp_bond.value_order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BondOrder {
    Single,
    Double,
    Triple,
    Quadruple,
    Aromatic,
}

impl BondOrder {
    fn parse(text: &str) -> Option<BondOrder> {
        const NAMES: [(&str, BondOrder); 5] = [
            ("SING", BondOrder::Single),
            ("DOUB", BondOrder::Double),
            ("TRIP", BondOrder::Triple),
            ("QUAD", BondOrder::Quadruple),
            ("AROM", BondOrder::Aromatic),
        ];
        NAMES.iter().find(|(name, _)| name.eq_ignore_ascii_case(text)).map(|&(_, order)| order)
    }
}

impl Ccd {
    /// Reads `components.bcif` or `components.cif` (gzipped or not).
    pub fn read(path: impl AsRef<Path>) -> Result<Ccd> {
        Self::from_cif(&CifFile::read(path.as_ref())?)
    }

    /// Collects the components of every block of `file`.
    pub fn from_cif(file: &CifFile) -> Result<Ccd> {
        let path = file.path();
        let mut components = Vec::new();
        for block in &file.blocks {
            read_block(block, path, &mut components)?;
        }
        Ccd::from_components(components).map_err(|id| ccd_error(path, &id, "one _chem_comp row per id", "a second one"))
    }

    /// A dictionary of the given components, such as the few a preprocessed structure stores
    /// beside it so that features need no full CCD. Fails with the id of a repeated component.
    pub fn from_components(components: Vec<Component>) -> std::result::Result<Ccd, String> {
        let mut index = HashMap::with_capacity(components.len());
        for (i, c) in components.iter().enumerate() {
            if index.insert(c.id.clone(), i).is_some() {
                return Err(c.id.clone());
            }
        }
        Ok(Ccd { store: Store::Decoded { components, index } })
    }

    /// The components of a mapped CCD cache file, decoded on first use.
    pub(crate) fn mapped(table: MappedCcd) -> Ccd {
        let decoded = (0..table.len()).map(|_| OnceLock::new()).collect();
        Ccd { store: Store::Mapped { table: Box::new(table), decoded } }
    }

    pub fn get(&self, id: &str) -> Option<&Component> {
        let i = match &self.store {
            Store::Decoded { index, .. } => *index.get(id)?,
            Store::Mapped { table, .. } => table.find(id)?,
        };
        Some(self.at(i))
    }

    /// All components in file order (a mapped CCD decodes each one it has not yet).
    pub fn components(&self) -> impl ExactSizeIterator<Item = &Component> + '_ {
        (0..self.len()).map(|i| self.at(i))
    }

    pub fn len(&self) -> usize {
        match &self.store {
            Store::Decoded { components, .. } => components.len(),
            Store::Mapped { table, .. } => table.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Component `i`. A mapped CCD checks a component's atoms, bonds and strings when it first
    /// decodes it (checking all 49k when the file is opened would cost ~20 ms); finding one
    /// damaged means the file changed in place after it was written, which cache files never
    /// do (they are replaced by renaming), so it panics with the fix.
    fn at(&self, i: usize) -> &Component {
        match &self.store {
            Store::Decoded { components, .. } => &components[i],
            Store::Mapped { table, decoded } => decoded[i].get_or_init(|| match table.component(i) {
                Ok(component) => Box::new(component),
                Err(e) => panic!("{e}; delete the file and run again: helico rebuilds it"),
            }),
        }
    }
}

fn ccd_error(path: &Path, comp_id: &str, expected: impl Into<String>, got: impl Into<String>) -> DataError {
    DataError::Ccd { path: path.to_owned(), comp_id: comp_id.to_owned(), expected: expected.into(), got: got.into() }
}

/// The columns of `_chem_comp_atom` the loader reads; optional ones are `None` when absent.
struct AtomColumns<'a> {
    name: Column<'a>,
    element: Column<'a>,
    charge: Column<'a>,
    leaving: Column<'a>,
    aromatic: Column<'a>,
    ideal: Option<[Column<'a>; 3]>,
    model: Option<[Column<'a>; 3]>,
}

struct BondColumns<'a> {
    atom_1: Column<'a>,
    atom_2: Column<'a>,
    order: Column<'a>,
    aromatic: Column<'a>,
}

fn read_block(block: &Block, path: &Path, out: &mut Vec<Component>) -> Result<()> {
    let chem_comp = block.require("chem_comp")?;
    let ids = chem_comp.column("id")?;
    let names = chem_comp.column("name")?;
    let types = chem_comp.column("type")?;
    let one_letter = optional(chem_comp, "one_letter_code")?;
    let parents = optional(chem_comp, "mon_nstd_parent_comp_id")?;
    let charges = optional(chem_comp, "pdbx_formal_charge")?;

    let atom_cat = block.category("chem_comp_atom");
    let (mut atom_runs, atom_cols) = match atom_cat {
        Some(cat) => (runs(cat, path)?, Some(atom_columns(cat)?)),
        None => (HashMap::new(), None),
    };
    let bond_cat = block.category("chem_comp_bond");
    let (mut bond_runs, bond_cols) = match bond_cat {
        Some(cat) => (runs(cat, path)?, Some(bond_columns(cat)?)),
        None => (HashMap::new(), None),
    };

    // Atom name -> index within the component, refilled per component (names borrow the file).
    let mut by_name: HashMap<Cow<'_, str>, usize> = HashMap::new();
    for row in 0..chem_comp.row_count() {
        let id = required(&ids, row, path, "")?;
        let mut component = Component {
            id: id.to_string(),
            name: string_or_empty(&names, row)?,
            comp_type: string_or_empty(&types, row)?,
            one_letter_code: opt_string(one_letter.as_ref(), row)?,
            parent: opt_string(parents.as_ref(), row)?,
            formal_charge: opt_int(charges.as_ref(), row)?,
            atoms: Vec::new(),
            bonds: Vec::new(),
        };
        by_name.clear();
        if let (Some(rows), Some(cols)) = (atom_runs.remove(id.as_ref()), &atom_cols) {
            for (i, row) in rows.clone().enumerate() {
                let name = required(&cols.name, row, path, &component.id)?;
                if by_name.insert(name.clone(), i).is_some() {
                    return Err(ccd_error(path, &component.id, "unique atom names", format!("{name:?} twice")));
                }
            }
            component.atoms = read_atoms(cols, rows, path, &component.id)?;
        }
        if let (Some(rows), Some(cols)) = (bond_runs.remove(id.as_ref()), &bond_cols) {
            component.bonds = read_bonds(cols, rows, &by_name, path, &component.id)?;
        }
        out.push(component);
    }
    let orphan = atom_runs.keys().chain(bond_runs.keys()).min();
    if let Some(comp_id) = orphan {
        return Err(ccd_error(path, comp_id, "a _chem_comp row for every comp_id of its atoms and bonds", "none"));
    }
    Ok(())
}

/// Row ranges of each `comp_id` in a category whose rows are grouped by component.
fn runs<'a>(cat: &'a Category, path: &Path) -> Result<HashMap<Cow<'a, str>, Range<usize>>> {
    let comp_ids = cat.column("comp_id")?;
    let mut runs: HashMap<Cow<'a, str>, Range<usize>> = HashMap::new();
    let mut start = 0;
    let mut current: Option<Cow<'a, str>> = None;
    for row in 0..=cat.row_count() {
        let id = if row < cat.row_count() { Some(required(&comp_ids, row, path, "")?) } else { None };
        if id != current {
            if let Some(prev) = current.take()
                && runs.insert(prev.clone(), start..row).is_some()
            {
                let expected = format!("the _{} rows of a component to be consecutive", cat.name());
                return Err(ccd_error(path, &prev, expected, format!("a second group ending at row {row}")));
            }
            start = row;
            current = id;
        }
    }
    Ok(runs)
}

fn atom_columns(cat: &Category) -> Result<AtomColumns<'_>> {
    let xyz = |prefix: &str, suffix: &str| -> Result<Option<[Column<'_>; 3]>> {
        let names = ["x", "y", "z"].map(|axis| format!("{prefix}{axis}{suffix}"));
        if !names.iter().all(|n| cat.has_column(n)) {
            return Ok(None);
        }
        Ok(Some([cat.column(&names[0])?, cat.column(&names[1])?, cat.column(&names[2])?]))
    };
    Ok(AtomColumns {
        name: cat.column("atom_id")?,
        element: cat.column("type_symbol")?,
        charge: cat.column("charge")?,
        leaving: cat.column("pdbx_leaving_atom_flag")?,
        aromatic: cat.column("pdbx_aromatic_flag")?,
        ideal: xyz("pdbx_model_Cartn_", "_ideal")?,
        model: xyz("model_Cartn_", "")?,
    })
}

fn bond_columns(cat: &Category) -> Result<BondColumns<'_>> {
    Ok(BondColumns {
        atom_1: cat.column("atom_id_1")?,
        atom_2: cat.column("atom_id_2")?,
        order: cat.column("value_order")?,
        aromatic: cat.column("pdbx_aromatic_flag")?,
    })
}

fn read_atoms(cols: &AtomColumns<'_>, rows: Range<usize>, path: &Path, comp_id: &str) -> Result<Vec<Atom>> {
    let mut atoms = Vec::with_capacity(rows.len());
    for row in rows {
        let element = required(&cols.element, row, path, comp_id)?;
        let position = match xyz(cols.ideal.as_ref(), row)? {
            Some(p) => Some(p),
            None => xyz(cols.model.as_ref(), row)?,
        };
        atoms.push(Atom {
            name: required(&cols.name, row, path, comp_id)?.into_owned(),
            element: normalise_element(&element),
            charge: opt_int(Some(&cols.charge), row)?,
            leaving: flag(&cols.leaving, row)?,
            aromatic: flag(&cols.aromatic, row)?,
            position,
        });
    }
    Ok(atoms)
}

fn read_bonds(
    cols: &BondColumns<'_>,
    rows: Range<usize>,
    by_name: &HashMap<Cow<'_, str>, usize>,
    path: &Path,
    comp_id: &str,
) -> Result<Vec<Bond>> {
    let mut bonds = Vec::with_capacity(rows.len());
    let atom = |col: &Column<'_>, row: usize| -> Result<usize> {
        let name = required(col, row, path, comp_id)?;
        by_name.get(name.as_ref()).copied().ok_or_else(|| {
            ccd_error(path, comp_id, format!("bond atom {name:?} among the component's atoms"), "no such atom")
        })
    };
    for row in rows {
        let order_text = required(&cols.order, row, path, comp_id)?;
        let order = BondOrder::parse(&order_text).ok_or_else(|| {
            ccd_error(path, comp_id, "value_order SING, DOUB, TRIP, QUAD or AROM", format!("{order_text:?}"))
        })?;
        bonds.push(Bond {
            atoms: [atom(&cols.atom_1, row)?, atom(&cols.atom_2, row)?],
            order,
            aromatic: flag(&cols.aromatic, row)?,
        });
    }
    Ok(bonds)
}

fn optional<'a>(cat: &'a Category, name: &str) -> Result<Option<Column<'a>>> {
    if cat.has_column(name) { cat.column(name).map(Some) } else { Ok(None) }
}

fn required<'a>(col: &Column<'a>, row: usize, path: &Path, comp_id: &str) -> Result<Cow<'a, str>> {
    col.as_str(row)?.ok_or_else(|| ccd_error(path, comp_id, format!("a value in {} row {row}", col.name()), "null"))
}

fn string_or_empty(col: &Column<'_>, row: usize) -> Result<String> {
    Ok(col.as_str(row)?.map(Cow::into_owned).unwrap_or_default())
}

fn opt_string(col: Option<&Column<'_>>, row: usize) -> Result<Option<String>> {
    Ok(match col {
        Some(c) => c.as_str(row)?.map(Cow::into_owned),
        None => None,
    })
}

fn opt_int(col: Option<&Column<'_>>, row: usize) -> Result<i32> {
    let Some(col) = col else { return Ok(0) };
    let value = col.as_i64(row)?.unwrap_or(0);
    i32::try_from(value).map_err(|_| col.value_error(row, "a 32-bit integer", &value.to_string()))
}

fn flag(col: &Column<'_>, row: usize) -> Result<bool> {
    Ok(matches!(col.as_str(row)?.as_deref(), Some("Y" | "y")))
}

fn xyz(cols: Option<&[Column<'_>; 3]>, row: usize) -> Result<Option<[f32; 3]>> {
    let Some([x, y, z]) = cols else {
        return Ok(None);
    };
    Ok(match (x.as_f64(row)?, y.as_f64(row)?, z.as_f64(row)?) {
        (Some(x), Some(y), Some(z)) => Some([x as f32, y as f32, z as f32]),
        _ => None,
    })
}

/// "CL" → "Cl", "c" → "C".
fn normalise_element(symbol: &str) -> String {
    let mut out = String::with_capacity(symbol.len());
    for (i, ch) in symbol.chars().enumerate() {
        if i == 0 {
            out.push(ch.to_ascii_uppercase());
        } else {
            out.push(ch.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const WATER: &str = "data_HOH\n_chem_comp.id HOH\n_chem_comp.name WATER\n_chem_comp.type NON-POLYMER\n\
        _chem_comp.one_letter_code ?\n_chem_comp.mon_nstd_parent_comp_id ?\n_chem_comp.pdbx_formal_charge 0\n\
        loop_\n_chem_comp_atom.comp_id\n_chem_comp_atom.atom_id\n_chem_comp_atom.type_symbol\n_chem_comp_atom.charge\n\
        _chem_comp_atom.pdbx_leaving_atom_flag\n_chem_comp_atom.pdbx_aromatic_flag\n_chem_comp_atom.model_Cartn_x\n\
        _chem_comp_atom.model_Cartn_y\n_chem_comp_atom.model_Cartn_z\n_chem_comp_atom.pdbx_model_Cartn_x_ideal\n\
        _chem_comp_atom.pdbx_model_Cartn_y_ideal\n_chem_comp_atom.pdbx_model_Cartn_z_ideal\n\
        HOH O O 0 N N 1 2 3 0.0 0.1 0.2\nHOH H1 H 0 N N 4 5 6 ? ? ?\nHOH H2 H 0 N N ? ? ? ? ? ?\n\
        loop_\n_chem_comp_bond.comp_id\n_chem_comp_bond.atom_id_1\n_chem_comp_bond.atom_id_2\n\
        _chem_comp_bond.value_order\n_chem_comp_bond.pdbx_aromatic_flag\nHOH O H1 SING N\nHOH O H2 SING N\n";

    fn load(text: &str) -> Result<Ccd> {
        Ccd::from_cif(&CifFile::from_bytes(text.as_bytes().to_vec(), Path::new("c.cif"))?)
    }

    #[test]
    fn positions_fall_back_to_model_coordinates() {
        let ccd = load(WATER).unwrap();
        let hoh = ccd.get("HOH").unwrap();
        assert_eq!(hoh.one_letter_code, None);
        let positions: Vec<_> = hoh.atoms.iter().map(|a| a.position).collect();
        assert_eq!(positions, [Some([0.0, 0.1, 0.2]), Some([4.0, 5.0, 6.0]), None]);
        assert_eq!(hoh.bonds[1], Bond { atoms: [0, 2], order: BondOrder::Single, aromatic: false });
    }

    #[test]
    fn a_ccd_is_shared_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Ccd>();
    }

    #[test]
    fn inconsistent_components_are_errors() {
        let err = load(&WATER.replace("HOH O H2 SING", "HOH O H9 SING")).unwrap_err().to_string();
        assert!(err.contains("CCD component \"HOH\": expected bond atom \"H9\" among the component's atoms"), "{err}");
        let err = load(&WATER.replace("O H1 SING N", "O H1 ONE N")).unwrap_err().to_string();
        assert!(err.contains("expected value_order SING, DOUB, TRIP, QUAD or AROM, got \"ONE\""), "{err}");
        let err = load(&WATER.replace("HOH H1 H", "HOX H1 H")).unwrap_err().to_string();
        assert!(err.contains("consecutive"), "{err}");
        assert_eq!(normalise_element("CL"), "Cl");
    }
}
