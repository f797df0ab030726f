//! AlphaFold 3 JSON inputs (`dialect: alphafold3`, versions 1–4), as documented in
//! `google-deepmind/alphafold3` `docs/input.md`: one job per file; `sequences` of `protein`,
//! `rna`, `dna` and `ligand` entities, each with `id` (one id or a list, one per copy);
//! `modelSeeds`; `bondedAtomPairs`; `userCCD`/`userCCDPath`.
//!
//! Rules beyond the field types, all from that document: `unpairedMsa` and `unpairedMsaPath`
//! (likewise `pairedMsa*`, `mmcif*`, `userCCD*`) are mutually exclusive; a protein sets both
//! MSAs or neither (`""` is "none"); a ligand has `ccdCodes` or `smiles`, not both; bonds to
//! SMILES ligands are refused (their atoms have no names); fields arrive with versions
//! (`*Path` and `mmcifPath` in 2, `userCCDPath` in 3, `description` in 4).

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::check::Builder;
use super::document::{Ids, Loc, deserialize, loc};
use super::error::InputError;
use super::{
    Bond, InferenceInput, InputFormat, Ligand, Molecule, MsaInput, Polymer, PolymerKind, Template, TextSource,
};
use crate::data::ccd::Ccd;

const DIALECT: &str = "alphafold3";
const VERSIONS: std::ops::RangeInclusive<i64> = 1..=4;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Job {
    name: Spanned<String>,
    model_seeds: Spanned<Vec<i64>>,
    sequences: Vec<Entry>,
    #[serde(default)]
    bonded_atom_pairs: Vec<(AtomSpec, AtomSpec)>,
    #[serde(default, rename = "userCCD")]
    user_ccd: Option<Spanned<String>>,
    #[serde(default, rename = "userCCDPath")]
    user_ccd_path: Option<Spanned<String>>,
    dialect: Spanned<String>,
    version: Spanned<i64>,
}

/// `[chain, residue, atom]`.
type AtomSpec = (Spanned<String>, Spanned<i64>, Spanned<String>);

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Entry {
    Protein(Chain),
    Rna(Chain),
    Dna(Chain),
    Ligand(LigandSpec),
}

/// The fields of the three polymer kinds; which kind may use which is checked after reading.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Chain {
    id: Spanned<Ids>,
    sequence: Spanned<String>,
    #[serde(default)]
    modifications: Vec<Spanned<Mod>>,
    #[serde(default)]
    description: Option<Spanned<String>>,
    #[serde(default)]
    unpaired_msa: Option<Spanned<String>>,
    #[serde(default)]
    unpaired_msa_path: Option<Spanned<String>>,
    #[serde(default)]
    paired_msa: Option<Spanned<String>>,
    #[serde(default)]
    paired_msa_path: Option<Spanned<String>>,
    #[serde(default)]
    templates: Option<Vec<Spanned<TemplateSpec>>>,
}

/// `{ptmType, ptmPosition}` on proteins, `{modificationType, basePosition}` on nucleic acids.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Mod {
    #[serde(alias = "modificationType")]
    ptm_type: Spanned<String>,
    #[serde(alias = "basePosition")]
    ptm_position: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LigandSpec {
    id: Spanned<Ids>,
    #[serde(default)]
    ccd_codes: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    smiles: Option<Spanned<String>>,
    #[serde(default)]
    description: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TemplateSpec {
    #[serde(default)]
    mmcif: Option<Spanned<String>>,
    #[serde(default)]
    mmcif_path: Option<Spanned<String>>,
    query_indices: Vec<i64>,
    template_indices: Vec<i64>,
}

pub(crate) fn parse(text: &str, file: &str, base: &Path, ccd: Option<&Ccd>) -> Result<InferenceInput, InputError> {
    let job: Job = deserialize(text, file)?;
    let mut b = Builder::new(file, base, ccd);
    if job.dialect.value != DIALECT {
        let message = format!("dialect {:?}: this reader takes {DIALECT:?}", job.dialect.value);
        b.problem(loc(&job.dialect), "dialect", message, "AlphaFold Server files are lists: put the job in [ ]");
    }
    let version = job.version.value;
    if !VERSIONS.contains(&version) {
        let message = format!("version {version} is not one of {}–{}", VERSIONS.start(), VERSIONS.end());
        b.problem(loc(&job.version), "version", message, "");
    }
    let seeds = seeds(&mut b, &job.model_seeds);
    let user_ccd = exclusive(&mut b, &job.user_ccd, &job.user_ccd_path, "userCCD", version);
    if let Some((source, at)) = &user_ccd {
        b.user_ccd(source, *at, "userCCD");
    }
    for (i, entry) in job.sequences.iter().enumerate() {
        match entry {
            Entry::Protein(c) => chain(&mut b, PolymerKind::Protein, c, &format!("sequences[{i}].protein"), version),
            Entry::Rna(c) => chain(&mut b, PolymerKind::Rna, c, &format!("sequences[{i}].rna"), version),
            Entry::Dna(c) => chain(&mut b, PolymerKind::Dna, c, &format!("sequences[{i}].dna"), version),
            Entry::Ligand(l) => ligand(&mut b, l, &format!("sequences[{i}].ligand"), version),
        }
    }
    let mut bonds = Vec::new();
    for (i, (a, z)) in job.bonded_atom_pairs.iter().enumerate() {
        let field = format!("bondedAtomPairs[{i}]");
        let atoms = [a, z].map(|(c, r, n)| b.bond_atom(&c.value, r.value, &n.value, loc(c), &field, false));
        if let [Some(a), Some(z)] = atoms {
            bonds.push(Bond { atoms: [a, z] });
        }
    }
    b.finish(job.name.value, InputFormat::Alphafold3Json, seeds, bonds, user_ccd.map(|(s, _)| s))
}

fn seeds(b: &mut Builder, seeds: &Spanned<Vec<i64>>) -> Vec<u64> {
    if seeds.value.is_empty() {
        b.problem(loc(seeds), "modelSeeds", "no seeds", "give at least one, e.g. [1]");
    }
    if let Some(bad) = seeds.value.iter().find(|&&s| s < 0) {
        b.problem(loc(seeds), "modelSeeds", format!("seed {bad} is negative"), "");
    }
    seeds.value.iter().map(|&s| s.max(0) as u64).collect()
}

/// An inline text or a path (the `…Path` sibling), not both; paths need version 2.
fn exclusive(
    b: &mut Builder,
    inline: &Option<Spanned<String>>,
    path: &Option<Spanned<String>>,
    field: &str,
    version: i64,
) -> Option<(TextSource, Loc)> {
    match (inline, path) {
        (Some(_), Some(p)) => {
            let name = field.rsplit('.').next().unwrap_or(field);
            b.problem(loc(p), &format!("{field}Path"), format!("{name} and {name}Path are both set"), "keep one");
            None
        }
        (Some(t), None) => Some((TextSource::Inline(t.value.clone()), loc(t))),
        (None, Some(p)) => {
            let needed = if field.ends_with("userCCD") { 3 } else { 2 };
            gate(b, version, needed, loc(p), &format!("{field}Path"));
            Some((TextSource::File(b.resolve(&p.value)), loc(p)))
        }
        (None, None) => None,
    }
}

/// A field that arrived with input version `needed`.
fn gate(b: &mut Builder, version: i64, needed: i64, at: Loc, field: &str) {
    if version < needed {
        b.problem(
            at,
            field,
            format!("needs \"version\": {needed} or later (the file says {version})"),
            "raise the version",
        );
    }
}

fn chain(b: &mut Builder, kind: PolymerKind, c: &Chain, field: &str, version: i64) {
    let chains = b.chain_ids(c.id.value.0.clone(), loc(&c.id), &format!("{field}.id"));
    let sequence = b.sequence(kind, &c.sequence.value, loc(&c.sequence), &format!("{field}.sequence"));
    if let Some(d) = &c.description {
        gate(b, version, 4, loc(d), &format!("{field}.description"));
    }
    let mut seen = HashSet::new();
    let mut modifications = Vec::new();
    for (j, m) in c.modifications.iter().enumerate() {
        let position = (m.value.ptm_position.value, loc(&m.value.ptm_position));
        let code = (m.value.ptm_type.value.as_str(), loc(&m.value.ptm_type));
        let mfield = format!("{field}.modifications[{j}]");
        modifications.extend(b.modification(sequence.len(), position, code, &mfield, &mut seen));
    }
    modifications.sort_by_key(|m| m.position);
    let unpaired = exclusive(b, &c.unpaired_msa, &c.unpaired_msa_path, &format!("{field}.unpairedMsa"), version);
    let paired = exclusive(b, &c.paired_msa, &c.paired_msa_path, &format!("{field}.pairedMsa"), version);
    let refuse = |b: &mut Builder, what: &str, at: Loc| {
        b.problem(at, &format!("{field}.{what}"), format!("{} chains take no {what}", kind.name()), "remove it");
    };
    match kind {
        PolymerKind::Protein => match (&unpaired, &paired) {
            (Some((_, at)), None) | (None, Some((_, at))) => {
                let message = "unpairedMsa and pairedMsa must be set together (or both left out)";
                b.problem(*at, field, message, "set the other to \"\" for none");
            }
            _ => {}
        },
        PolymerKind::Rna | PolymerKind::Dna => {
            if let Some((_, at)) = &paired {
                refuse(b, "pairedMsa", *at);
            }
            if let (PolymerKind::Dna, Some((_, at))) = (kind, &unpaired) {
                refuse(b, "unpairedMsa", *at);
            }
        }
    }
    for (which, msa) in [("unpairedMsa", &unpaired), ("pairedMsa", &paired)] {
        if let Some((source, at)) = msa {
            b.msa(source, kind, &sequence, *at, &format!("{field}.{which}"));
        }
    }
    let mut templates = Vec::new();
    for (j, t) in c.templates.iter().flatten().enumerate() {
        let tfield = format!("{field}.templates[{j}]");
        if kind != PolymerKind::Protein {
            refuse(b, "templates", loc(t));
        } else if let Some(t) = template(b, &t.value, loc(t), &tfield, sequence.len(), version) {
            templates.push(t);
        }
    }
    let msa = MsaInput { unpaired: unpaired.map(|(s, _)| s), paired: paired.map(|(s, _)| s) };
    let polymer = Polymer { kind, sequence, modifications, cyclic: false, msa, templates };
    b.push_entity(chains, Molecule::Polymer(polymer));
}

fn template(b: &mut Builder, t: &TemplateSpec, at: Loc, field: &str, len: usize, version: i64) -> Option<Template> {
    let Some((mmcif, _)) = exclusive(b, &t.mmcif, &t.mmcif_path, &format!("{field}.mmcif"), version) else {
        b.problem(at, field, "no mmcif or mmcifPath", "give the template structure");
        return None;
    };
    if let TextSource::File(path) = &mmcif {
        b.read_file(path, at, &format!("{field}.mmcifPath"))?;
    }
    if t.query_indices.len() != t.template_indices.len() {
        let message =
            format!("{} queryIndices but {} templateIndices", t.query_indices.len(), t.template_indices.len());
        b.problem(at, field, message, "the two lists pair element-wise");
    }
    let bad = t.query_indices.iter().chain(&t.template_indices).find(|&&i| i < 0);
    let outside = t.query_indices.iter().find(|&&i| i >= len as i64);
    match (bad, outside) {
        (Some(i), _) => b.problem(at, field, format!("index {i} is negative"), "indices count from 0"),
        (None, Some(i)) => {
            b.problem(at, field, format!("query index {i} is outside the sequence (0 to {})", len - 1), "")
        }
        _ => {}
    }
    let indices = |v: &[i64]| v.iter().map(|&i| i.max(0) as usize).collect();
    Some(Template { mmcif, query_indices: indices(&t.query_indices), template_indices: indices(&t.template_indices) })
}

fn ligand(b: &mut Builder, l: &LigandSpec, field: &str, version: i64) {
    let chains = b.chain_ids(l.id.value.0.clone(), loc(&l.id), &format!("{field}.id"));
    if let Some(d) = &l.description {
        gate(b, version, 4, loc(d), &format!("{field}.description"));
    }
    let ligand = match (&l.ccd_codes, &l.smiles) {
        (Some(codes), None) => {
            if codes.value.is_empty() {
                b.problem(loc(codes), &format!("{field}.ccdCodes"), "empty list", "give at least one CCD code");
            }
            let cfield = format!("{field}.ccdCodes");
            Ligand::Ccd(codes.value.iter().map(|c| b.code(&c.value, loc(c), &cfield)).collect())
        }
        (None, Some(s)) => Ligand::Smiles(b.smiles(&s.value, loc(s), &format!("{field}.smiles"))),
        (Some(_), Some(s)) => {
            b.problem(loc(s), field, "ccdCodes and smiles are both set", "keep one");
            return;
        }
        (None, None) => {
            b.problem(loc(&l.id), field, "neither ccdCodes nor smiles", "give one");
            return;
        }
    };
    b.push_entity(chains, Molecule::Ligand(ligand));
}
