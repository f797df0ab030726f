//! CCD components as cache-file columns: `cc.*` one value per component, `cca.*` per atom and
//! `ccb.*` per bond, atoms and bonds in component order. A structure cache stores the few
//! components its residues use ([`super::cache`]); the CCD cache stores all ~49k of them
//! ([`super::ccd_cache`]).
//!
//! [`ComponentColumns`] checks the columns' lengths and the components' counts when it is
//! made (O(components)), and each component's strings, bond atoms and codes when it decodes
//! that component: the CCD cache maps its file and decodes a component the first time someone
//! asks for it, and checking ~2.3M atoms up front would touch ~50 MB of the map (~20 ms,
//! against ~1 ms for the rest of opening).

use std::ops::Range;

use super::PrepError;
use super::columns::{Reader, Writer, index};
use crate::data::ccd::{Atom, Bond, BondOrder, Component};

/// Bond orders as one byte each, in this order.
const BOND_ORDERS: [BondOrder; 5] =
    [BondOrder::Single, BondOrder::Double, BondOrder::Triple, BondOrder::Quadruple, BondOrder::Aromatic];

/// Component atom flags: leaving, aromatic, has a position.
const LEAVING: u8 = 1;
const AROMATIC: u8 = 2;
const POSITIONED: u8 = 4;

/// Writes the columns of `components`, in the given order.
pub(super) fn put(w: &mut Writer, components: &[&Component]) {
    let c = components;
    w.strs("cc.id", "cc.id#", c.iter().map(|c| c.id.as_str()));
    w.strs("cc.name", "cc.name#", c.iter().map(|c| c.name.as_str()));
    w.strs("cc.type", "cc.type#", c.iter().map(|c| c.comp_type.as_str()));
    w.u8s("cc.one_letter?", c.iter().map(|c| u8::from(c.one_letter_code.is_some())));
    w.strs("cc.one_letter", "cc.one_letter#", c.iter().map(|c| c.one_letter_code.as_deref().unwrap_or("")));
    w.u8s("cc.parent?", c.iter().map(|c| u8::from(c.parent.is_some())));
    w.strs("cc.parent", "cc.parent#", c.iter().map(|c| c.parent.as_deref().unwrap_or("")));
    w.i32s("cc.charge", c.iter().map(|c| c.formal_charge));
    w.u32s("cc.n_atoms", c.iter().map(|c| index(c.atoms.len())));
    w.u32s("cc.n_bonds", c.iter().map(|c| index(c.bonds.len())));
    let atoms = || c.iter().flat_map(|c| &c.atoms);
    w.strs("cca.name", "cca.name#", atoms().map(|a| a.name.as_str()));
    w.strs("cca.element", "cca.element#", atoms().map(|a| a.element.as_str()));
    w.i32s("cca.charge", atoms().map(|a| a.charge));
    w.u8s(
        "cca.flags",
        atoms().map(|a| {
            (if a.leaving { LEAVING } else { 0 })
                | (if a.aromatic { AROMATIC } else { 0 })
                | (if a.position.is_some() { POSITIONED } else { 0 })
        }),
    );
    w.f32s("cca.xyz", atoms().flat_map(|a| a.position.unwrap_or([0.0; 3])));
    let bonds = || c.iter().flat_map(|c| &c.bonds);
    w.u32s("ccb.atoms", bonds().flat_map(|b| b.atoms.map(index)));
    let order = |o: BondOrder| BOND_ORDERS.iter().position(|&x| x == o).expect("every order has a code") as u8;
    w.u8s("ccb.order", bonds().map(|b| order(b.order)));
    w.u8s("ccb.aromatic", bonds().map(|b| u8::from(b.aromatic)));
}

/// The component columns of one file: where each column lies, and where each component's
/// atoms and bonds start. Decoding reads from the file's bytes, which the caller keeps and
/// passes in.
pub(super) struct ComponentColumns {
    id: Strings,
    name: Strings,
    comp_type: Strings,
    one_letter: Strings,
    parent: Strings,
    has_one_letter: Range<usize>,
    has_parent: Range<usize>,
    charge: Range<usize>,
    /// Component c owns atoms `atom_start[c]..atom_start[c + 1]` (n + 1 entries).
    atom_start: Vec<u32>,
    /// Component c owns bonds `bond_start[c]..bond_start[c + 1]` (n + 1 entries).
    bond_start: Vec<u32>,
    atom_name: Strings,
    element: Strings,
    atom_charge: Range<usize>,
    flags: Range<usize>,
    xyz: Range<usize>,
    bond_atoms: Range<usize>,
    order: Range<usize>,
    aromatic: Range<usize>,
}

impl ComponentColumns {
    /// Finds the component columns of `r` and checks their lengths against the counts.
    pub(super) fn new(r: &Reader<'_>) -> Result<ComponentColumns, PrepError> {
        let id = Strings::new(r, "cc.id", "cc.id#", None)?;
        let n = id.len;
        let starts = |tag: &str| -> Result<Vec<u32>, PrepError> {
            let mut out = Vec::with_capacity(n + 1);
            let mut total = 0u64;
            out.push(0);
            for count in r.column(tag, 4, Some(n))?.chunks_exact(4) {
                total += u64::from(u32::from_le_bytes(count.try_into().expect("4 bytes")));
                out.push(u32::try_from(total).map_err(|_| r.problem(format!("column {tag}: {total} in all")))?);
            }
            Ok(out)
        };
        let (atom_start, bond_start) = (starts("cc.n_atoms")?, starts("cc.n_bonds")?);
        let (n_atoms, n_bonds) = (atom_start[n] as usize, bond_start[n] as usize);
        Ok(ComponentColumns {
            name: Strings::new(r, "cc.name", "cc.name#", Some(n))?,
            comp_type: Strings::new(r, "cc.type", "cc.type#", Some(n))?,
            one_letter: Strings::new(r, "cc.one_letter", "cc.one_letter#", Some(n))?,
            parent: Strings::new(r, "cc.parent", "cc.parent#", Some(n))?,
            has_one_letter: r.span("cc.one_letter?", 1, Some(n))?,
            has_parent: r.span("cc.parent?", 1, Some(n))?,
            charge: r.span("cc.charge", 4, Some(n))?,
            atom_name: Strings::new(r, "cca.name", "cca.name#", Some(n_atoms))?,
            element: Strings::new(r, "cca.element", "cca.element#", Some(n_atoms))?,
            atom_charge: r.span("cca.charge", 4, Some(n_atoms))?,
            flags: r.span("cca.flags", 1, Some(n_atoms))?,
            xyz: r.span("cca.xyz", 4, Some(3 * n_atoms))?,
            bond_atoms: r.span("ccb.atoms", 4, Some(2 * n_bonds))?,
            order: r.span("ccb.order", 1, Some(n_bonds))?,
            aromatic: r.span("ccb.aromatic", 1, Some(n_bonds))?,
            id,
            atom_start,
            bond_start,
        })
    }

    /// How many components the columns hold.
    pub(super) fn len(&self) -> usize {
        self.id.len
    }

    /// Component `c`'s id, from the file's `bytes`; an error describes a damaged string.
    pub(super) fn id<'b>(&self, bytes: &'b [u8], c: usize) -> Result<&'b str, String> {
        self.id.get(bytes, c)
    }

    /// Decodes component `c` from the file's `bytes` (those the columns were found in); an
    /// error describes what is damaged.
    pub(super) fn component(&self, bytes: &[u8], c: usize) -> Result<Component, String> {
        self.decode(bytes, c).map_err(|problem| match self.id.get(bytes, c) {
            Ok(id) => format!("component {c} ({id}): {problem}"),
            Err(_) => format!("component {c}: {problem}"),
        })
    }

    fn decode(&self, bytes: &[u8], c: usize) -> Result<Component, String> {
        let n_atoms = (self.atom_start[c + 1] - self.atom_start[c]) as usize;
        let atoms = (self.atom_start[c] as usize..self.atom_start[c + 1] as usize)
            .map(|k| {
                let flags = bytes[self.flags.start + k];
                let xyz = |d: usize| f32::from_le_bytes(word(bytes, self.xyz.start + 4 * (3 * k + d)));
                Ok(Atom {
                    name: self.atom_name.get(bytes, k)?.to_owned(),
                    element: self.element.get(bytes, k)?.to_owned(),
                    charge: i32::from_le_bytes(word(bytes, self.atom_charge.start + 4 * k)),
                    leaving: flags & LEAVING != 0,
                    aromatic: flags & AROMATIC != 0,
                    position: (flags & POSITIONED != 0).then(|| [xyz(0), xyz(1), xyz(2)]),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let bonds = (self.bond_start[c] as usize..self.bond_start[c + 1] as usize)
            .map(|b| {
                let atom =
                    |end: usize| u32::from_le_bytes(word(bytes, self.bond_atoms.start + 4 * (2 * b + end))) as usize;
                let code = bytes[self.order.start + b];
                let order = BOND_ORDERS.get(usize::from(code)).ok_or(format!("bond order code {code}"))?;
                let pair = [atom(0), atom(1)];
                if pair.iter().any(|&a| a >= n_atoms) {
                    return Err(format!("a bond between atoms {pair:?} of {n_atoms}"));
                }
                Ok(Bond { atoms: pair, order: *order, aromatic: bytes[self.aromatic.start + b] != 0 })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let present = |flags: &Range<usize>| bytes[flags.start + c] != 0;
        let optional = |flag: &Range<usize>, strings: &Strings| -> Result<Option<String>, String> {
            Ok(if present(flag) { Some(strings.get(bytes, c)?.to_owned()) } else { None })
        };
        Ok(Component {
            id: self.id.get(bytes, c)?.to_owned(),
            name: self.name.get(bytes, c)?.to_owned(),
            comp_type: self.comp_type.get(bytes, c)?.to_owned(),
            one_letter_code: optional(&self.has_one_letter, &self.one_letter)?,
            parent: optional(&self.has_parent, &self.parent)?,
            formal_charge: i32::from_le_bytes(word(bytes, self.charge.start + 4 * c)),
            atoms,
            bonds,
        })
    }
}

/// Four bytes of a column.
fn word(bytes: &[u8], at: usize) -> [u8; 4] {
    bytes[at..at + 4].try_into().expect("4 bytes")
}

/// A list of strings: UTF-8 bytes and `len + 1` offsets into them. The offsets' count is
/// checked when the list is found, each string's offsets and text when it is read.
struct Strings {
    tag: &'static str,
    blob: Range<usize>,
    ends: Range<usize>,
    len: usize,
}

impl Strings {
    fn new(r: &Reader<'_>, tag: &'static str, offsets: &str, count: Option<usize>) -> Result<Strings, PrepError> {
        let blob = r.span(tag, 1, None)?;
        let ends = r.span(offsets, 4, count.map(|c| c + 1))?;
        let len = (ends.len() / 4).checked_sub(1).ok_or_else(|| r.problem(format!("column {offsets}: empty")))?;
        Ok(Strings { tag, blob, ends, len })
    }

    fn get<'b>(&self, bytes: &'b [u8], i: usize) -> Result<&'b str, String> {
        let end = |j: usize| u32::from_le_bytes(word(bytes, self.ends.start + 4 * j)) as usize;
        let (a, b) = (end(i), end(i + 1));
        let blob = &bytes[self.blob.clone()];
        let text = blob.get(a..b).and_then(|t| std::str::from_utf8(t).ok());
        text.ok_or_else(|| format!("column {}: string {a}..{b} is not UTF-8 within its {} bytes", self.tag, blob.len()))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn water() -> Component {
        let atom = |name: &str, element: &str, position| Atom {
            name: name.into(),
            element: element.into(),
            charge: 0,
            leaving: name == "H2",
            aromatic: false,
            position,
        };
        Component {
            id: "HOH".into(),
            name: "WATER".into(),
            comp_type: "NON-POLYMER".into(),
            one_letter_code: None,
            parent: Some("é".into()),
            formal_charge: -1,
            atoms: vec![atom("O", "O", Some([0.0, 0.5, -1.0])), atom("H1", "H", None), atom("H2", "H", Some([1.0; 3]))],
            bonds: vec![
                Bond { atoms: [0, 1], order: BondOrder::Single, aromatic: false },
                Bond { atoms: [0, 2], order: BondOrder::Aromatic, aromatic: true },
            ],
        }
    }

    fn written(components: &[&Component]) -> Vec<u8> {
        let mut w = Writer::default();
        put(&mut w, components);
        w.finish()
    }

    #[test]
    fn components_read_back_one_at_a_time() {
        let (hoh, empty) = (water(), Component { id: "UNL".into(), atoms: vec![], bonds: vec![], ..water() });
        let bytes = written(&[&empty, &hoh]);
        let columns = ComponentColumns::new(&Reader::new(&bytes, Path::new("t")).unwrap()).unwrap();
        assert_eq!(columns.len(), 2);
        assert_eq!(columns.id(&bytes, 1), Ok("HOH"));
        assert_eq!(columns.component(&bytes, 1), Ok(hoh));
        assert_eq!(columns.component(&bytes, 0), Ok(empty));
    }

    #[test]
    fn damaged_components_are_errors_naming_the_problem() {
        let mut hoh = water();
        hoh.bonds[1].atoms = [0, 3];
        let bytes = written(&[&water(), &hoh]);
        let columns = ComponentColumns::new(&Reader::new(&bytes, Path::new("t")).unwrap()).unwrap();
        assert!(columns.component(&bytes, 0).is_ok(), "damage elsewhere does not stop a component");
        assert_eq!(columns.component(&bytes, 1).unwrap_err(), "component 1 (HOH): a bond between atoms [0, 3] of 3");

        // The parent "é" with its second byte damaged is not UTF-8.
        let mut bytes = written(&[&water()]);
        let at = bytes.windows(2).position(|w| w == "é".as_bytes()).unwrap();
        bytes[at + 1] = b'x';
        let columns = ComponentColumns::new(&Reader::new(&bytes, Path::new("t")).unwrap()).unwrap();
        let err = columns.component(&bytes, 0).unwrap_err();
        assert_eq!(err, "component 0 (HOH): column cc.parent: string 0..2 is not UTF-8 within its 2 bytes");
    }
}
