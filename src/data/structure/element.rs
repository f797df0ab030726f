//! Chemical elements as atomic numbers: one byte per atom instead of a symbol string, and the
//! index behind AF3's `ref_element` one-hot (AF3 supplement §2.8, Table 5: atomic number − 1).
//!
//! mmCIF and the CCD write `type_symbol` in upper case (`FE`, `CL`); symbols are matched without
//! regard to case, which the Python reference did not do (its title-case tables sent every
//! two-letter element to "unknown", helico_inventory.md §3.1).

use std::fmt;

/// Symbols by atomic number; index 0 is the unknown element (`X` in the CCD and the PDB).
const SYMBOLS: [&str; 119] = [
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar", "K", "Ca",
    "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y",
    "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce",
    "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir",
    "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm",
    "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc",
    "Lv", "Ts", "Og",
];

/// An element by atomic number; 0 is unknown (`X`). Deuterium and tritium are hydrogen.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Element(u8);

impl Element {
    pub const UNKNOWN: Element = Element(0);
    pub const H: Element = Element(1);
    pub const C: Element = Element(6);
    pub const N: Element = Element(7);
    pub const O: Element = Element(8);
    pub const S: Element = Element(16);
    pub const SE: Element = Element(34);

    /// Parses a symbol in any case (`FE`, `fe`, `Fe`); `D` and `T` are hydrogen isotopes, `X` is
    /// [`Element::UNKNOWN`]. `None` for anything else.
    pub fn from_symbol(symbol: &str) -> Option<Element> {
        let symbol = symbol.trim();
        if symbol.eq_ignore_ascii_case("D") || symbol.eq_ignore_ascii_case("T") {
            return Some(Element::H);
        }
        SYMBOLS.iter().position(|s| s.eq_ignore_ascii_case(symbol)).map(|z| Element(z as u8))
    }

    /// The element with atomic number `z`, if `z <= 118`.
    pub fn from_atomic_number(z: u8) -> Option<Element> {
        (usize::from(z) < SYMBOLS.len()).then_some(Element(z))
    }

    pub fn atomic_number(self) -> u8 {
        self.0
    }

    /// Periodic-table case ("Fe"); "X" for unknown.
    pub fn symbol(self) -> &'static str {
        SYMBOLS[usize::from(self.0)]
    }

    pub fn is_hydrogen(self) -> bool {
        self == Element::H
    }
}

impl fmt::Debug for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_in_any_case() {
        assert_eq!(Element::from_symbol("FE").map(Element::atomic_number), Some(26));
        assert_eq!(Element::from_symbol("cl").map(Element::symbol), Some("Cl"));
        assert_eq!(Element::from_symbol("D"), Some(Element::H));
        assert_eq!(Element::from_symbol("X"), Some(Element::UNKNOWN));
        assert_eq!(Element::from_symbol("Og").map(Element::atomic_number), Some(118));
        assert_eq!(Element::from_symbol("Qq"), None);
        assert_eq!(Element::from_atomic_number(119), None);
    }
}
