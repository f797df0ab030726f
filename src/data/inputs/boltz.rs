//! Boltz-style YAML inputs (`jwohlwend/boltz` `docs/prediction.md`): `version`, `sequences`
//! of `protein`, `dna`, `rna` (each `id`, `sequence`, `modifications: [{position, ccd}]`,
//! `cyclic`; proteins also `msa`, a path or `empty`) and `ligand` (`id`, `ccd` or `smiles`),
//! and `constraints` of which `bond` (`atom1`/`atom2`: `[chain, residue, atom]`) is read.
//!
//! Not read yet, and reported as such rather than ignored: `pocket` and `contact`
//! constraints, `templates`, `properties` (affinity), and CSV MSAs. The job's name is the
//! file name without its extensions.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::Spanned;

use super::check::Builder;
use super::document::{Ids, deserialize, loc};
use super::error::InputError;
use super::{Bond, InferenceInput, InputFormat, Ligand, Molecule, MsaInput, Polymer, PolymerKind, TextSource};
use crate::data::ccd::Ccd;

/// The `msa` value that asks for single-sequence mode.
const EMPTY_MSA: &str = "empty";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    #[serde(default)]
    version: Option<Spanned<i64>>,
    sequences: Vec<Entry>,
    #[serde(default)]
    constraints: Vec<Constraint>,
    #[serde(default)]
    templates: Option<Spanned<IgnoredAny>>,
    #[serde(default)]
    properties: Option<Spanned<IgnoredAny>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Entry {
    Protein(Chain),
    Dna(Chain),
    Rna(Chain),
    Ligand(LigandSpec),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Chain {
    id: Spanned<Ids>,
    sequence: Spanned<String>,
    #[serde(default)]
    msa: Option<Spanned<String>>,
    #[serde(default)]
    modifications: Vec<Mod>,
    #[serde(default)]
    cyclic: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Mod {
    position: Spanned<i64>,
    ccd: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LigandSpec {
    id: Spanned<Ids>,
    #[serde(default)]
    ccd: Option<Spanned<String>>,
    #[serde(default)]
    smiles: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Constraint {
    /// Boxed: its six spanned values dwarf the ignored variants.
    Bond(Box<BondSpec>),
    Pocket(Spanned<IgnoredAny>),
    Contact(Spanned<IgnoredAny>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BondSpec {
    atom1: (Spanned<String>, Spanned<i64>, Spanned<String>),
    atom2: (Spanned<String>, Spanned<i64>, Spanned<String>),
}

pub(crate) fn parse(
    text: &str,
    file: &str,
    name: &str,
    base: &Path,
    ccd: Option<&Ccd>,
) -> Result<InferenceInput, InputError> {
    let doc: Doc = deserialize(text, file)?;
    let mut b = Builder::new(file, base, ccd);
    if let Some(v) = &doc.version.as_ref().filter(|v| v.value != 1) {
        b.problem(loc(v), "version", format!("version {}: this reader takes version 1", v.value), "");
    }
    for (what, value) in [("templates", &doc.templates), ("properties", &doc.properties)] {
        if let Some(v) = value {
            b.problem(loc(v), what, format!("{what} are not supported yet"), "remove the section");
        }
    }
    for (i, entry) in doc.sequences.iter().enumerate() {
        match entry {
            Entry::Protein(c) => chain(&mut b, PolymerKind::Protein, c, &format!("sequences[{i}].protein")),
            Entry::Dna(c) => chain(&mut b, PolymerKind::Dna, c, &format!("sequences[{i}].dna")),
            Entry::Rna(c) => chain(&mut b, PolymerKind::Rna, c, &format!("sequences[{i}].rna")),
            Entry::Ligand(l) => ligand(&mut b, l, &format!("sequences[{i}].ligand")),
        }
    }
    let mut bonds = Vec::new();
    for (i, constraint) in doc.constraints.iter().enumerate() {
        let field = format!("constraints[{i}]");
        match constraint {
            Constraint::Bond(spec) => {
                let atoms = [&spec.atom1, &spec.atom2]
                    .map(|(c, r, a)| b.bond_atom(&c.value, r.value, &a.value, loc(c), &format!("{field}.bond"), false));
                if let [Some(a), Some(z)] = atoms {
                    bonds.push(Bond { atoms: [a, z] });
                }
            }
            Constraint::Pocket(v) | Constraint::Contact(v) => {
                b.problem(loc(v), &field, "pocket and contact constraints are not supported yet", "remove it");
            }
        }
    }
    b.finish(name.to_owned(), InputFormat::BoltzYaml, Vec::new(), bonds, None)
}

fn chain(b: &mut Builder, kind: PolymerKind, c: &Chain, field: &str) {
    let chains = b.chain_ids(c.id.value.0.clone(), loc(&c.id), &format!("{field}.id"));
    let sequence = b.sequence(kind, &c.sequence.value, loc(&c.sequence), &format!("{field}.sequence"));
    let mut seen = HashSet::new();
    let mut modifications = Vec::new();
    for (j, m) in c.modifications.iter().enumerate() {
        let position = (m.position.value, loc(&m.position));
        let code = (m.ccd.value.as_str(), loc(&m.ccd));
        modifications.extend(b.modification(
            sequence.len(),
            position,
            code,
            &format!("{field}.modifications[{j}]"),
            &mut seen,
        ));
    }
    modifications.sort_by_key(|m| m.position);
    let mut msa = MsaInput::default();
    if let Some(path) = &c.msa {
        let mfield = format!("{field}.msa");
        if kind != PolymerKind::Protein {
            b.problem(
                loc(path),
                &mfield,
                format!("Boltz reads MSAs for proteins only, not {}", kind.name()),
                "remove it",
            );
        } else if path.value == EMPTY_MSA {
            msa = MsaInput {
                unpaired: Some(TextSource::Inline(String::new())),
                paired: Some(TextSource::Inline(String::new())),
            };
        } else {
            // Boltz pairs only CSV MSAs: an A3M comes with "no paired MSA", not "search for one".
            let source = TextSource::File(b.resolve(&path.value));
            b.msa(&source, kind, &sequence, loc(path), &mfield);
            msa = MsaInput { unpaired: Some(source), paired: Some(TextSource::Inline(String::new())) };
        }
    }
    let polymer = Polymer { kind, sequence, modifications, cyclic: c.cyclic, msa, templates: Vec::new() };
    b.push_entity(chains, Molecule::Polymer(polymer));
}

fn ligand(b: &mut Builder, l: &LigandSpec, field: &str) {
    let chains = b.chain_ids(l.id.value.0.clone(), loc(&l.id), &format!("{field}.id"));
    let ligand = match (&l.ccd, &l.smiles) {
        (Some(code), None) => Ligand::Ccd(vec![b.code(&code.value, loc(code), &format!("{field}.ccd"))]),
        (None, Some(s)) => Ligand::Smiles(b.smiles(&s.value, loc(s), &format!("{field}.smiles"))),
        (Some(_), Some(s)) => {
            b.problem(loc(s), field, "ccd and smiles are both set", "keep one");
            return;
        }
        (None, None) => {
            b.problem(loc(&l.id), field, "neither ccd nor smiles", "give one");
            return;
        }
    };
    b.push_entity(chains, Molecule::Ligand(ligand));
}
