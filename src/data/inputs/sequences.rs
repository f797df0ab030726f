//! The `--sequences` grammar, for quick predictions without an input file:
//!
//! ```text
//! spec  := entry ("," entry)*            e.g.  A:MKVLAAGIV,B:ACGUACGU,C:ccd:ATP,D:smiles:CCO
//! entry := ID ":" SEQUENCE               the kind inferred from the letters (below)
//!        | ID ":" KIND ":" VALUE          KIND = protein | rna | dna | ccd | smiles
//! ```
//!
//! Whitespace around entries and parts is ignored; a SMILES keeps any `:` it contains
//! (`D:smiles:[CH3:1]O`). A bare sequence made only of `ACGUN` with a `U` is RNA, only of
//! `ACGTN` with a `T` is DNA, only of `ACGN` is ambiguous (an error asking for the kind), and
//! anything else is protein; so a short peptide like `ACT` must be written `A:protein:ACT`.
//! Entries with the same molecule form one entity with several chains (`A:MKV,B:MKV` is a
//! homodimer).

use std::collections::HashSet;
use std::path::Path;

use super::check::Builder;
use super::error::InputError;
use super::{InferenceInput, InputFormat, Ligand, Molecule, MsaInput, Polymer, PolymerKind};
use crate::data::ccd::Ccd;

/// Parses a `--sequences` value (grammar in the module documentation).
pub fn from_sequences(spec: &str, ccd: Option<&Ccd>) -> Result<InferenceInput, InputError> {
    let mut b = Builder::new("--sequences", Path::new("."), ccd);
    for (i, entry) in spec.split(',').enumerate() {
        let field = format!("entry {} ({:?})", i + 1, shorten(entry.trim()));
        let Some((id, body)) = entry.split_once(':') else {
            b.problem(None, &field, "expected ID:SEQUENCE or ID:KIND:VALUE", "e.g. A:MKVL or C:ccd:ATP");
            continue;
        };
        let (id, body) = (id.trim(), body.trim());
        let molecule = match body.split_once(':') {
            Some((kind, value)) => typed(&mut b, kind.trim(), value.trim(), &field),
            None => inferred(&mut b, body, &field),
        };
        let Some(molecule) = molecule else { continue };
        match b.find_entity(&molecule) {
            Some(entity) => b.join_entity(entity, id.to_owned(), None, &field),
            None => {
                let chains = b.chain_ids(vec![id.to_owned()], None, &field);
                b.push_entity(chains, molecule);
            }
        }
    }
    b.finish("sequences".into(), InputFormat::Sequences, Vec::new(), Vec::new(), None)
}

fn typed(b: &mut Builder, kind: &str, value: &str, field: &str) -> Option<Molecule> {
    let kind = match kind {
        "protein" => PolymerKind::Protein,
        "rna" => PolymerKind::Rna,
        "dna" => PolymerKind::Dna,
        "ccd" => return Some(Molecule::Ligand(Ligand::Ccd(vec![b.code(value, None, field)]))),
        "smiles" => return Some(Molecule::Ligand(Ligand::Smiles(b.smiles(value, None, field)))),
        other => {
            b.problem(None, field, format!("unknown kind {other:?}"), "use protein, rna, dna, ccd or smiles");
            return None;
        }
    };
    Some(polymer(b, kind, value, field))
}

fn inferred(b: &mut Builder, sequence: &str, field: &str) -> Option<Molecule> {
    let letters: HashSet<char> = sequence.chars().collect();
    let nucleic = letters.iter().all(|c| "ACGTUN".contains(*c));
    let kind = match (nucleic, letters.contains(&'U'), letters.contains(&'T')) {
        (true, true, false) => PolymerKind::Rna,
        (true, false, true) => PolymerKind::Dna,
        (true, false, false) if !sequence.is_empty() => {
            let fix = "say which: ID:rna:SEQ, ID:dna:SEQ or ID:protein:SEQ";
            b.problem(None, field, "the letters fit RNA, DNA and protein alike", fix);
            return None;
        }
        _ => PolymerKind::Protein,
    };
    Some(polymer(b, kind, sequence, field))
}

fn polymer(b: &mut Builder, kind: PolymerKind, sequence: &str, field: &str) -> Molecule {
    Molecule::Polymer(Polymer {
        kind,
        sequence: b.sequence(kind, sequence, None, field),
        modifications: Vec::new(),
        cyclic: false,
        msa: MsaInput::default(),
        templates: Vec::new(),
    })
}

/// An entry for a message: at most 24 characters.
fn shorten(entry: &str) -> String {
    match entry.char_indices().nth(24) {
        Some((cut, _)) => format!("{}…", &entry[..cut]),
        None => entry.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(spec: &str) -> Vec<(Vec<String>, String)> {
        from_sequences(spec, None)
            .unwrap()
            .entities
            .into_iter()
            .map(|e| {
                let what = match e.molecule {
                    Molecule::Polymer(p) => format!("{}:{}", p.kind.name(), p.sequence),
                    Molecule::Ligand(Ligand::Ccd(c)) => format!("ccd:{}", c.join("+")),
                    Molecule::Ligand(Ligand::Smiles(s)) => format!("smiles:{s}"),
                };
                (e.chains, what)
            })
            .collect()
    }

    #[test]
    fn grammar_and_kind_inference() {
        let got = kinds(" A:MKVL , B:ACGU,C:ACGT,D:protein:ACT,E:ccd:ATP,F:smiles:[CH3:1]O,G:MKVL,H:rna:ACGN");
        let want = [
            (vec!["A", "G"], "protein:MKVL"),
            (vec!["B"], "rna:ACGU"),
            (vec!["C"], "dna:ACGT"),
            (vec!["D"], "protein:ACT"),
            (vec!["E"], "ccd:ATP"),
            (vec!["F"], "smiles:[CH3:1]O"),
            (vec!["H"], "rna:ACGN"),
        ];
        let want: Vec<(Vec<String>, String)> =
            want.iter().map(|(c, w)| (c.iter().map(|s| s.to_string()).collect(), w.to_string())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn every_bad_entry_is_reported() {
        let err =
            from_sequences("A:ACGA,B,A:MKV,C:lipid:X,D:MKV1,E:ccd:atp,F:smiles:C(C", None).unwrap_err().to_string();
        let expected = [
            "6 problems:",
            "--sequences: entry 1 (\"A:ACGA\"): the letters fit RNA, DNA and protein alike; say which: ID:rna:SEQ, ID:dna:SEQ or ID:protein:SEQ",
            "--sequences: entry 2 (\"B\"): expected ID:SEQUENCE or ID:KIND:VALUE; e.g. A:MKVL or C:ccd:ATP",
            "--sequences: entry 4 (\"C:lipid:X\"): unknown kind \"lipid\"; use protein, rna, dna, ccd or smiles",
            "--sequences: entry 5 (\"D:MKV1\"): not a protein sequence: '1' at position 4; use ACDEFGHIKLMNPQRSTVWYX (modified residues go in modifications)",
            "--sequences: entry 6 (\"E:ccd:atp\"): \"atp\" is not a CCD code; CCD codes are upper case: write \"ATP\"",
            "--sequences: entry 7 (\"F:smiles:C(C\"): SMILES \"C(C\" ends early",
        ];
        assert_eq!(err, expected.join("\n"));
    }
}
