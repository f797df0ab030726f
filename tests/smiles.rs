//! SMILES for the whole CCD: every string helico writes reads back with purr, and the atoms
//! purr sees (heavy-atom elements; hydrogens implicit, bracket or explicit) are the CCD's.

use std::collections::BTreeMap;

use helico::data::DataError;
use helico::data::smiles::component_smiles;
use purr::feature::{AtomKind, BracketSymbol, Element};
use purr::graph::Builder;

use crate::data_support::ccd;

/// Element counts of a parsed SMILES graph; all hydrogens (implicit, bracket counts, explicit
/// `[H]` atoms) are counted under "H", deuterium (`[2H]`) under "D". Elements are named by their
/// `Debug` variant names: purr 0.9's `Display` prints caesium as "Ac".
fn smiles_composition(smiles: &str) -> BTreeMap<String, usize> {
    let mut builder = Builder::new();
    purr::read::read(smiles, &mut builder, None).unwrap_or_else(|e| panic!("purr cannot read {smiles:?}: {e:?}"));
    let mut counts = BTreeMap::new();
    for atom in builder.build().unwrap_or_else(|e| panic!("purr cannot build {smiles:?}: {e:?}")) {
        let symbol = match &atom.kind {
            AtomKind::Aliphatic(a) => format!("{a:?}"),
            AtomKind::Bracket { symbol: BracketSymbol::Element(Element::H), isotope: Some(n), .. }
                if n.to_string() == "2" =>
            {
                "D".to_owned()
            }
            AtomKind::Bracket { symbol: BracketSymbol::Element(e), .. } => format!("{e:?}"),
            other => panic!("{smiles:?}: helico writes no {other:?} atoms"),
        };
        *counts.entry(symbol).or_default() += 1;
        let implicit = atom.suppressed_hydrogens() as usize;
        if implicit > 0 {
            *counts.entry("H".to_owned()).or_default() += implicit;
        }
    }
    counts
}

#[test]
fn every_written_smiles_reads_back_with_the_ccd_atoms() {
    let ccd = ccd();
    let mut skipped: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut first_message: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut written = 0;
    for component in ccd.components() {
        match component_smiles(component) {
            Ok(smiles) => {
                written += 1;
                let mut want = BTreeMap::new();
                for atom in &component.atoms {
                    *want.entry(atom.element.clone()).or_default() += 1;
                }
                assert_eq!(smiles_composition(&smiles), want, "{}: {smiles}", component.id);
            }
            Err(e) => {
                let DataError::Smiles { kind, .. } = &e else { panic!("{}: {e}", component.id) };
                first_message.entry(kind.label()).or_insert_with(|| e.to_string());
                skipped.entry(kind.label()).or_default().push(component.id.clone());
            }
        }
    }
    let total = ccd.len();
    let n_skipped: usize = skipped.values().map(Vec::len).sum();
    eprintln!("SMILES: {written} of {total} components written, {n_skipped} skipped:");
    for (reason, ids) in &skipped {
        eprintln!(
            "  {reason}: {} ({}; first: {})",
            ids.len(),
            ids.iter().take(8).cloned().collect::<Vec<_>>().join(", "),
            first_message[reason]
        );
    }
    assert!(n_skipped * 100 < total, "more than 1% of the CCD has no SMILES: {n_skipped} of {total}");
    // Single-atom components have one spelling whatever the atom order.
    for (id, smiles) in [("HOH", "O"), ("NA", "[Na+]"), ("CL", "[Cl-]"), ("MG", "[Mg+2]"), ("NH4", "[NH4+]")] {
        assert_eq!(component_smiles(ccd.get(id).unwrap()).unwrap(), smiles, "{id}");
    }
}
