//! The CCD loader against biotite's view of `components.bcif`, and text vs BinaryCIF CCD.

use helico::data::ccd::{BondOrder, Ccd, Component};
use serde_json::Value;

use crate::data_support::{ccd, ccd_bcif, oracle};

/// Amino acids, nucleotides, sugars, cofactors, ions, metal clusters, a component without atoms.
const SAMPLE: &[&str] = &[
    "ALA", "GLY", "CYS", "TRP", "HIS", "PHE", "SER", "MSE", "SEP", "TPO", "PTR", "DA", "DT", "U", "G", "A", "PSU",
    "ATP", "ADP", "AMP", "GTP", "GDP", "NAD", "NAP", "FAD", "COA", "SAM", "SAH", "HEM", "CLA", "BCL", "NAG", "MAN",
    "BMA", "GAL", "GLC", "FUC", "SIA", "PO4", "SO4", "EDO", "GOL", "PEG", "ACT", "DMS", "HOH", "DOD", "SF4", "FES",
    "NA", "CL", "MG", "ZN", "FE", "CA", "K", "CU", "UNL", "000",
];

fn order(text: &str) -> BondOrder {
    match text {
        "SING" => BondOrder::Single,
        "DOUB" => BondOrder::Double,
        "TRIP" => BondOrder::Triple,
        "QUAD" => BondOrder::Quadruple,
        "AROM" => BondOrder::Aromatic,
        other => panic!("the oracle reported bond order {other:?}"),
    }
}

fn assert_matches_oracle(got: &Component, want: &Value) {
    let id = &got.id;
    assert_eq!(got.name, want["name"].as_str().unwrap(), "{id} name");
    assert_eq!(got.comp_type, want["type"].as_str().unwrap(), "{id} type");
    assert_eq!(got.one_letter_code.as_deref(), want["one_letter_code"].as_str(), "{id} one-letter code");
    assert_eq!(got.parent.as_deref(), want["parent"].as_str(), "{id} parent");
    assert_eq!(got.formal_charge as i64, want["formal_charge"].as_i64().unwrap(), "{id} formal charge");
    let atoms = want["atoms"].as_array().unwrap();
    assert_eq!(got.atoms.len(), atoms.len(), "{id} atom count");
    for (a, w) in got.atoms.iter().zip(atoms) {
        assert_eq!(a.name, w[0].as_str().unwrap(), "{id} atom name");
        assert_eq!(a.element, w[1].as_str().unwrap(), "{id} {} element", a.name);
        assert_eq!(a.charge as i64, w[2].as_i64().unwrap(), "{id} {} charge", a.name);
        assert_eq!(a.leaving, w[3].as_bool().unwrap(), "{id} {} leaving", a.name);
        assert_eq!(a.aromatic, w[4].as_bool().unwrap(), "{id} {} aromatic", a.name);
        let want_pos = w[5].as_array().map(|p| [0, 1, 2].map(|k| p[k].as_f64().unwrap() as f32));
        assert_eq!(a.position, want_pos, "{id} {} position", a.name);
    }
    let bonds = want["bonds"].as_array().unwrap();
    assert_eq!(got.bonds.len(), bonds.len(), "{id} bond count");
    for (b, w) in got.bonds.iter().zip(bonds) {
        let want_atoms = [w[0].as_u64().unwrap() as usize, w[1].as_u64().unwrap() as usize];
        assert_eq!(b.atoms, want_atoms, "{id} bond atoms");
        assert_eq!(b.order, order(w[2].as_str().unwrap()), "{id} bond {want_atoms:?} order");
        assert_eq!(b.aromatic, w[3].as_bool().unwrap(), "{id} bond {want_atoms:?} aromatic");
    }
}

#[test]
fn binary_ccd_matches_biotite() {
    let ccd = ccd();
    assert_eq!(ccd.len(), 49_196, "components in biotite 1.6.0's components.bcif");
    let expected = oracle("ccd_biotite.py", &[&["dump", ccd_bcif().to_str().unwrap()], SAMPLE].concat());
    for id in SAMPLE {
        let got = ccd.get(id).unwrap_or_else(|| panic!("{id} is in the CCD"));
        assert_matches_oracle(got, &expected[*id]);
    }
    let atoms: usize = ccd.components().map(|c| c.atoms.len()).sum();
    let bonds: usize = ccd.components().map(|c| c.bonds.len()).sum();
    assert_eq!((atoms, bonds), (2_346_155, 2_440_394), "_chem_comp_atom and _chem_comp_bond row counts");
}

#[test]
fn text_and_binary_ccd_agree() {
    let ccd = ccd();
    // The sample plus every 200th component: ~300 components, in the block-per-component layout
    // of the wwPDB's components.cif (single-row categories become `_cat.item value` pairs).
    let mut ids: Vec<&str> = SAMPLE.to_vec();
    ids.extend(ccd.components().step_by(200).map(|c| c.id.as_str()));
    ids.sort();
    ids.dedup();
    let dir = tempfile::tempdir().unwrap();
    let text_path = dir.path().join("components.cif");
    let written = oracle(
        "ccd_biotite.py",
        &[&["text", ccd_bcif().to_str().unwrap(), text_path.to_str().unwrap()], &ids[..]].concat(),
    );
    assert_eq!(written.as_array().unwrap().len(), ids.len());

    let text = Ccd::read(&text_path).unwrap();
    assert_eq!(text.len(), ids.len());
    for (got, id) in text.components().zip(&ids) {
        assert_eq!(&got.id, id, "text CCD order");
        assert_eq!(got, ccd.get(id).unwrap(), "{id}: text and BinaryCIF disagree");
    }
}
