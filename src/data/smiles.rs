//! SMILES (OpenSMILES, <http://opensmiles.org/opensmiles.html>) for a CCD component's atom
//! graph, written with the `purr` crate: the graph is built as purr atoms and bonds, walked
//! depth-first by `purr::walk::walk`, and read back with `purr::read::read` as a check. The
//! string is assembled by our own walk follower, [`Writer`], which spells bracket atoms itself:
//! purr 0.9's `Display` prints caesium as "Ac" and charge +5 as " +5".
//!
//! Conventions: hydrogens are implicit wherever SMILES can say so. A heavy atom is written bare
//! only if it is in the organic subset, uncharged, and its default valence implies exactly the
//! number of hydrogens bonded to it in the CCD; otherwise it is a bracket atom with explicit
//! hydrogen count and charge. Bonds are Kekulé (single bonds elided; `=`, `#`, `$` written), since
//! the CCD gives SING/DOUB/TRIP with a separate aromatic flag. Hydrogens that cannot be implicit
//! (charged, deuterium `[2H]`, bonded to another hydrogen or to two atoms, or unbonded) are kept
//! as explicit bracket atoms. Fragments are joined with `.`. No stereo and no canonical order: atoms
//! appear in CCD order, so one component always gives the same string.

use std::collections::HashSet;

use std::fmt::Write as _;

use purr::feature::{Aliphatic, AtomKind, BondKind, BracketSymbol, Charge, Element, Number, Rnum, VirtualHydrogen};
use purr::graph::{Atom as GraphAtom, Bond as GraphBond, Builder};
use purr::walk::Follower;

use super::ccd::{BondOrder, Component};
use super::error::{DataError, Result, SmilesProblem};

/// purr numbers ring closures 1..=99 and panics past that; the walk never needs more open
/// closures than the graph has independent cycles.
const MAX_RING_CLOSURES: usize = 99;

/// Writes `component` as SMILES; errors carry a [`SmilesProblem`].
pub fn component_smiles(component: &Component) -> Result<String> {
    let fail = |kind: SmilesProblem| DataError::Smiles { comp_id: component.id.clone(), kind };
    let atoms = &component.atoms;
    let n = atoms.len();

    // Adjacency over all CCD atoms, with checked bonds.
    let mut neighbours: Vec<Vec<(usize, BondOrder)>> = vec![Vec::new(); n];
    let mut seen = HashSet::new();
    for bond in &component.bonds {
        let [a, b] = bond.atoms;
        let pair_names = || format!("{}-{}", atoms[a].name, atoms[b].name);
        if a == b || !seen.insert((a.min(b), a.max(b))) {
            return Err(fail(SmilesProblem::BadBond(pair_names())));
        }
        if bond.order == BondOrder::Aromatic {
            return Err(fail(SmilesProblem::NonKekuleBond(pair_names())));
        }
        neighbours[a].push((b, bond.order));
        neighbours[b].push((a, bond.order));
    }

    // A hydrogen folds into its neighbour's count when it is plain H, uncharged, and single-bonded
    // to exactly one heavy atom; every other hydrogen stays a graph atom.
    let is_heavy = |i: usize| !matches!(atoms[i].element.as_str(), "H" | "D");
    let implicit_h = |i: usize| {
        atoms[i].element == "H"
            && atoms[i].charge == 0
            && matches!(neighbours[i].as_slice(), [(j, BondOrder::Single)] if is_heavy(*j))
    };
    if !(0..n).any(is_heavy) {
        return Err(fail(SmilesProblem::NoHeavyAtoms));
    }
    let mut graph_index = vec![usize::MAX; n];
    let mut members = Vec::new();
    for i in (0..n).filter(|&i| !implicit_h(i)) {
        graph_index[i] = members.len();
        members.push(i);
    }

    let mut graph = Vec::with_capacity(members.len());
    let mut edges = 0;
    for &i in &members {
        let mut bonds = Vec::new();
        let (mut h_count, mut valence) = (0u8, 0u8);
        for &(j, order) in &neighbours[i] {
            if graph_index[j] == usize::MAX {
                h_count = h_count.saturating_add(1);
            } else {
                let bond = GraphBond::new(bond_kind(order), graph_index[j]);
                valence = valence.saturating_add(bond.order());
                bonds.push(bond);
            }
        }
        edges += bonds.len();
        let kind = atom_kind(&atoms[i].name, &atoms[i].element, atoms[i].charge, h_count, valence).map_err(fail)?;
        graph.push(GraphAtom { kind, bonds });
    }
    let rings = edges / 2 + fragments(&graph) - graph.len();
    if rings > MAX_RING_CLOSURES {
        return Err(fail(SmilesProblem::TooManyRings(rings)));
    }

    let expected_atoms = graph.len();
    let mut writer = Writer::default();
    purr::walk::walk(graph, &mut writer).map_err(|e| fail(SmilesProblem::Purr(format!("walk: {e:?}"))))?;
    let smiles = writer.stack.concat();

    let mut builder = Builder::new();
    purr::read::read(&smiles, &mut builder, None)
        .map_err(|e| fail(SmilesProblem::Purr(format!("cannot read back {smiles:?}: {e:?}"))))?;
    let read_back =
        builder.build().map_err(|e| fail(SmilesProblem::Purr(format!("cannot rebuild {smiles:?}: {e:?}"))))?;
    if read_back.len() != expected_atoms {
        let got = format!("{smiles:?} reads back as {} atoms, expected {expected_atoms}", read_back.len());
        return Err(fail(SmilesProblem::Purr(got)));
    }
    Ok(smiles)
}

/// A `purr::walk::Follower` that assembles the string as purr's own `write::Writer` does, but
/// spells atoms with [`atom_text`].
#[derive(Default)]
struct Writer {
    /// One string per open branch; `pop` folds the top `depth` into a parenthesised branch.
    stack: Vec<String>,
}

impl Follower for Writer {
    fn root(&mut self, root: AtomKind) {
        let dot = if self.stack.is_empty() { "" } else { "." };
        self.stack.push(format!("{dot}{}", atom_text(&root)));
    }

    fn extend(&mut self, bond_kind: BondKind, atom_kind: AtomKind) {
        self.stack.push(format!("{bond_kind}{}", atom_text(&atom_kind)));
    }

    fn join(&mut self, bond_kind: BondKind, rnum: Rnum) {
        let last = self.stack.last_mut().expect("walk joins only after a root");
        write!(last, "{bond_kind}{rnum}").expect("writing to a String cannot fail");
    }

    fn pop(&mut self, depth: usize) {
        let chain = self.stack.split_off(self.stack.len() - depth).concat();
        let last = self.stack.last_mut().expect("walk pops only below its root");
        write!(last, "({chain})").expect("writing to a String cannot fail");
    }
}

/// OpenSMILES text of an atom. Bracket atoms are spelled out here because purr 0.9's `Display`
/// prints caesium as "Ac" (`src/feature/element.rs`) and charge +5 as " +5" (`src/feature/charge.rs`);
/// element names come from `Element`'s derived `Debug`, which is the symbol.
fn atom_text(kind: &AtomKind) -> String {
    let AtomKind::Bracket { isotope, symbol, configuration, hcount, charge, map } = kind else {
        return kind.to_string();
    };
    let mut text = String::from("[");
    let mut put = |part: std::fmt::Arguments<'_>| text.write_fmt(part).expect("writing to a String cannot fail");
    if let Some(isotope) = isotope {
        put(format_args!("{isotope}"));
    }
    match symbol {
        BracketSymbol::Element(element) => put(format_args!("{element:?}")),
        other => put(format_args!("{other}")),
    }
    if let Some(configuration) = configuration {
        put(format_args!("{configuration}"));
    }
    match hcount.as_ref().map(|h| -> u8 { h.into() }) {
        None | Some(0) => {}
        Some(1) => put(format_args!("H")),
        Some(n) => put(format_args!("H{n}")),
    }
    match charge.as_ref().map(|c| -> i8 { c.into() }) {
        None | Some(0) => {}
        Some(1) => put(format_args!("+")),
        Some(-1) => put(format_args!("-")),
        Some(c) => put(format_args!("{c:+}")),
    }
    if let Some(map) = map {
        put(format_args!(":{map}"));
    }
    text.push(']');
    text
}

/// Single bonds are elided: every atom is written aliphatic (Kekulé), where elided means single.
fn bond_kind(order: BondOrder) -> BondKind {
    match order {
        BondOrder::Single | BondOrder::Aromatic => BondKind::Elided,
        BondOrder::Double => BondKind::Double,
        BondOrder::Triple => BondKind::Triple,
        BondOrder::Quadruple => BondKind::Quadruple,
    }
}

/// A bare organic-subset atom when its default valence implies exactly `h_count` hydrogens and
/// it is uncharged; otherwise a bracket atom stating both.
fn atom_kind(name: &str, element: &str, charge: i32, h_count: u8, valence: u8) -> Result<AtomKind, SmilesProblem> {
    if let Some(organic) = organic(element)
        && charge == 0
    {
        // OpenSMILES §3.5: implicit hydrogens fill up to the lowest normal valence >= the bond sum.
        let implied = organic.targets().iter().find(|&&t| t >= valence).map_or(0, |&t| t - valence);
        if implied == h_count {
            return Ok(AtomKind::Aliphatic(organic));
        }
    }
    let (symbol, isotope) = match element {
        "D" => (BracketSymbol::Element(Element::H), Some(Number::try_from(2u16).expect("2 is below 1000"))),
        _ => match periodic(element) {
            Some(e) => (BracketSymbol::Element(e), None),
            None => return Err(SmilesProblem::UnknownElement(element.to_owned())),
        },
    };
    let hcount = match h_count {
        0 => None,
        1 => Some(VirtualHydrogen::H1),
        2 => Some(VirtualHydrogen::H2),
        3 => Some(VirtualHydrogen::H3),
        4 => Some(VirtualHydrogen::H4),
        5 => Some(VirtualHydrogen::H5),
        6 => Some(VirtualHydrogen::H6),
        7 => Some(VirtualHydrogen::H7),
        8 => Some(VirtualHydrogen::H8),
        9 => Some(VirtualHydrogen::H9),
        _ => {
            return Err(SmilesProblem::OutOfRange(format!("{name} has {h_count} hydrogens")));
        }
    };
    let charge = match charge {
        0 => None,
        c => match i8::try_from(c).ok().and_then(|c| Charge::try_from(c).ok()) {
            Some(c) => Some(c),
            None => return Err(SmilesProblem::OutOfRange(format!("{name} has charge {c}"))),
        },
    };
    Ok(AtomKind::Bracket { isotope, symbol, configuration: None, hcount, charge, map: None })
}

/// The OpenSMILES organic subset (B, C, N, O, P, S, F, Cl, Br, I).
fn organic(element: &str) -> Option<Aliphatic> {
    Some(match element {
        "B" => Aliphatic::B,
        "C" => Aliphatic::C,
        "N" => Aliphatic::N,
        "O" => Aliphatic::O,
        "P" => Aliphatic::P,
        "S" => Aliphatic::S,
        "F" => Aliphatic::F,
        "Cl" => Aliphatic::Cl,
        "Br" => Aliphatic::Br,
        "I" => Aliphatic::I,
        _ => return None,
    })
}

macro_rules! periodic_table {
    ($($symbol:ident)*) => {
        /// purr's element for a periodic-table-case symbol.
        fn periodic(symbol: &str) -> Option<Element> {
            match symbol {
                $(stringify!($symbol) => Some(Element::$symbol),)*
                _ => None,
            }
        }
    };
}

periodic_table!(
    H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr
    Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm
    Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No
    Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og
);

/// Number of connected components of a purr graph (union-find).
fn fragments(graph: &[GraphAtom]) -> usize {
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut parent: Vec<usize> = (0..graph.len()).collect();
    let mut count = graph.len();
    for (i, atom) in graph.iter().enumerate() {
        for bond in &atom.bonds {
            let (a, b) = (root(&mut parent, i), root(&mut parent, bond.tid));
            if a != b {
                parent[a] = b;
                count -= 1;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ccd::{Atom, Bond};

    fn component(atoms: &[(&str, &str, i32)], bonds: &[(usize, usize, BondOrder)]) -> Component {
        Component {
            id: "T".into(),
            name: String::new(),
            comp_type: String::new(),
            one_letter_code: None,
            parent: None,
            formal_charge: 0,
            atoms: atoms
                .iter()
                .map(|&(name, element, charge)| Atom {
                    name: name.into(),
                    element: element.into(),
                    charge,
                    leaving: false,
                    aromatic: false,
                    position: None,
                })
                .collect(),
            bonds: bonds.iter().map(|&(a, b, order)| Bond { atoms: [a, b], order, aromatic: false }).collect(),
        }
    }

    use BondOrder::{Double, Single};

    #[test]
    fn bare_and_bracket_atoms() {
        // Acetate: C(H3)-C(=O)-O(-)
        let acetate = component(
            &[
                ("C1", "C", 0),
                ("C2", "C", 0),
                ("O1", "O", 0),
                ("O2", "O", -1),
                ("H1", "H", 0),
                ("H2", "H", 0),
                ("H3", "H", 0),
            ],
            &[(0, 1, Single), (1, 2, Double), (1, 3, Single), (0, 4, Single), (0, 5, Single), (0, 6, Single)],
        );
        assert_eq!(component_smiles(&acetate).unwrap(), "CC(=O)[O-]");
        // A carbon with fewer hydrogens than its valence implies needs a bracket: methyl radical.
        let methyl = component(&[("C", "C", 0), ("H1", "H", 0), ("H2", "H", 0)], &[(0, 1, Single), (0, 2, Single)]);
        assert_eq!(component_smiles(&methyl).unwrap(), "[CH2]");
        // Ions and heavy metals.
        assert_eq!(component_smiles(&component(&[("FE", "Fe", 2)], &[])).unwrap(), "[Fe+2]");
        let nacl = component(&[("NA", "Na", 1), ("CL", "Cl", -1)], &[]);
        assert_eq!(component_smiles(&nacl).unwrap(), "[Na+].[Cl-]");
        // purr 0.9's Display would write "[Ac+]" and "[N +5]".
        assert_eq!(component_smiles(&component(&[("CS", "Cs", 1)], &[])).unwrap(), "[Cs+]");
        assert_eq!(component_smiles(&component(&[("N", "N", 5)], &[])).unwrap(), "[N+5]");
    }

    #[test]
    fn explicit_hydrogens_and_problems() {
        let hdo = component(&[("O", "O", 0), ("H", "H", 0), ("D", "D", 0)], &[(0, 1, Single), (0, 2, Single)]);
        // Deuterium is an explicit neighbour, so the oxygen's default valence still implies one H.
        assert_eq!(component_smiles(&hdo).unwrap(), "O[2H]");
        let kinds = |c: &Component| match component_smiles(c) {
            Err(DataError::Smiles { kind, .. }) => kind,
            other => panic!("expected a SMILES problem, got {other:?}"),
        };
        assert_eq!(
            kinds(&component(&[("H1", "H", 0), ("H2", "H", 0)], &[(0, 1, Single)])),
            SmilesProblem::NoHeavyAtoms
        );
        assert_eq!(kinds(&component(&[("X", "X", 0)], &[])), SmilesProblem::UnknownElement("X".into()));
        let twice = component(&[("C1", "C", 0), ("C2", "C", 0)], &[(0, 1, Single), (1, 0, Single)]);
        assert_eq!(kinds(&twice), SmilesProblem::BadBond("C2-C1".into()));
        let arom = component(&[("C1", "C", 0), ("C2", "C", 0)], &[(0, 1, BondOrder::Aromatic)]);
        assert_eq!(kinds(&arom), SmilesProblem::NonKekuleBond("C1-C2".into()));
    }
}
