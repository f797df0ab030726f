//! Protenix JSON inputs (`bytedance/Protenix` `docs/infer_json_format.md`): a list of jobs,
//! each `name`, `sequences` of `proteinChain`, `dnaSequence`, `rnaSequence` (each `sequence`,
//! `count`, optional `id` list, `modifications`), `ligand` (`"CCD_ATP"`, `"CCD_NAG_BMA"` or a
//! SMILES) and `ion` (a CCD code without prefix); `covalent_bonds` between
//! `entity/copy/position/atom` pairs; optional `modelSeeds`.
//!
//! Chains without an `id` are named in AlphaFold Server order (A, B, …, Z, AA, BA, …),
//! skipping ids other entities name. MSAs: `msa.precomputed_msa_dir` holds `pairing.a3m` and
//! `non_pairing.a3m`; or `pairedMsaPath`/`unpairedMsaPath`. A bond without copies joins copy
//! i to copy i for every i (the counts must match), as Protenix does. Not read yet, and
//! reported as such: `FILE_` ligands, `templatesPath`, `constraint`.
//!
//! AlphaFold Server files share this layout and add `dialect: "alphafoldserver"` and
//! `version: 1`, which are accepted (and checked); their other fields (`glycans`,
//! `useStructureTemplate`, `maxTemplateDate`) are unknown fields here.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::Spanned;

use super::check::Builder;
use super::document::{Ids, Loc, Text, deserialize, loc};
use super::error::InputError;
use super::{Bond, InferenceInput, InputFormat, Ligand, Molecule, MsaInput, Polymer, PolymerKind, TextSource};
use crate::data::ccd::Ccd;

/// Prefix of CCD codes in `ligand` and `ptmType`/`modificationType` values.
const CCD_PREFIX: &str = "CCD_";
const FILE_PREFIX: &str = "FILE_";
/// The only `msa.pairing_db` Protenix documents ("you should not change it").
const PAIRING_DB: &str = "uniref100";
/// AlphaFold Server's `dialect` and `version` (its `docs/input.md` "AlphaFold Server JSON").
const SERVER_DIALECT: &str = "alphafoldserver";
const SERVER_VERSION: i64 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Job {
    name: Spanned<String>,
    sequences: Vec<Entry>,
    #[serde(default)]
    covalent_bonds: Vec<Spanned<BondSpec>>,
    #[serde(default, rename = "modelSeeds")]
    model_seeds: Option<Spanned<Vec<i64>>>,
    #[serde(default)]
    constraint: Option<Spanned<IgnoredAny>>,
    #[serde(default)]
    dialect: Option<Spanned<String>>,
    #[serde(default)]
    version: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
enum Entry {
    #[serde(rename = "proteinChain")]
    Protein(Chain),
    #[serde(rename = "dnaSequence")]
    Dna(Chain),
    #[serde(rename = "rnaSequence")]
    Rna(Chain),
    #[serde(rename = "ligand")]
    Ligand(LigandSpec),
    #[serde(rename = "ion")]
    Ion(IonSpec),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Chain {
    sequence: Spanned<String>,
    count: Spanned<i64>,
    #[serde(default)]
    id: Option<Spanned<Ids>>,
    #[serde(default)]
    modifications: Vec<Mod>,
    #[serde(default)]
    msa: Option<Spanned<MsaDir>>,
    #[serde(default)]
    paired_msa_path: Option<Spanned<String>>,
    #[serde(default)]
    unpaired_msa_path: Option<Spanned<String>>,
    #[serde(default)]
    templates_path: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Mod {
    #[serde(alias = "modificationType")]
    ptm_type: Spanned<String>,
    #[serde(alias = "basePosition")]
    ptm_position: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MsaDir {
    precomputed_msa_dir: Spanned<String>,
    #[serde(default)]
    pairing_db: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LigandSpec {
    ligand: Spanned<String>,
    count: Spanned<i64>,
    #[serde(default)]
    id: Option<Spanned<Ids>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IonSpec {
    ion: Spanned<String>,
    count: Spanned<i64>,
    #[serde(default)]
    id: Option<Spanned<Ids>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BondSpec {
    entity1: Spanned<Text>,
    #[serde(default)]
    copy1: Option<Spanned<i64>>,
    position1: Spanned<Text>,
    atom1: Spanned<Text>,
    entity2: Spanned<Text>,
    #[serde(default)]
    copy2: Option<Spanned<i64>>,
    position2: Spanned<Text>,
    atom2: Spanned<Text>,
}

pub(crate) fn parse(text: &str, file: &str, base: &Path, ccd: Option<&Ccd>) -> Result<Vec<InferenceInput>, InputError> {
    let jobs: Vec<Job> = deserialize(text, file)?;
    let mut inputs = Vec::with_capacity(jobs.len());
    let mut problems = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        match convert(job, &format!("[{i}]"), file, base, ccd) {
            Ok(input) => inputs.push(input),
            Err(InputError::Invalid(p)) => problems.extend(p),
            Err(e) => return Err(e),
        }
    }
    if jobs.is_empty() {
        return Err(Builder::fail(super::Problem {
            file: file.to_owned(),
            line: Some(1),
            column: Some(1),
            field: String::new(),
            message: "no jobs in the list".into(),
            fix: "add a job: {\"name\": …, \"sequences\": […]}".into(),
        }));
    }
    if problems.is_empty() { Ok(inputs) } else { Err(InputError::Invalid(problems)) }
}

fn convert(job: &Job, at: &str, file: &str, base: &Path, ccd: Option<&Ccd>) -> Result<InferenceInput, InputError> {
    let mut b = Builder::new(file, base, ccd);
    if job.sequences.is_empty() {
        b.problem(loc(&job.name), &format!("{at}.sequences"), "no entities", "list at least one chain or ligand");
    }
    if let Some(d) = job.dialect.as_ref().filter(|d| d.value != SERVER_DIALECT) {
        let message = format!("dialect {:?}: a list of jobs is Protenix or {SERVER_DIALECT:?}", d.value);
        b.problem(loc(d), &format!("{at}.dialect"), message, "AlphaFold 3 files are one job, not a list");
    }
    if let Some(v) = job.version.as_ref().filter(|v| v.value != SERVER_VERSION) {
        let message = format!("version {}: AlphaFold Server files are version {SERVER_VERSION}", v.value);
        b.problem(loc(v), &format!("{at}.version"), message, "");
    }
    if let Some(c) = &job.constraint {
        b.problem(loc(c), &format!("{at}.constraint"), "constraints are not supported yet", "remove the section");
    }
    let reserved: HashSet<String> = job.sequences.iter().filter_map(ids).flat_map(|i| i.value.0.clone()).collect();
    // Chain ids per entity, in file order; None where the entity could not be read.
    let mut entity_chains: Vec<Option<Vec<String>>> = Vec::new();
    for (i, entry) in job.sequences.iter().enumerate() {
        let field = format!("{at}.sequences[{i}]");
        let chains = match entry {
            Entry::Protein(c) => chain(&mut b, PolymerKind::Protein, c, &format!("{field}.proteinChain"), &reserved),
            Entry::Dna(c) => chain(&mut b, PolymerKind::Dna, c, &format!("{field}.dnaSequence"), &reserved),
            Entry::Rna(c) => chain(&mut b, PolymerKind::Rna, c, &format!("{field}.rnaSequence"), &reserved),
            Entry::Ligand(l) => ligand(&mut b, l, &format!("{field}.ligand"), &reserved),
            Entry::Ion(l) => ion(&mut b, l, &format!("{field}.ion"), &reserved),
        };
        entity_chains.push(chains);
    }
    let mut bonds = Vec::new();
    for (i, bond) in job.covalent_bonds.iter().enumerate() {
        bonds.extend(covalent_bond(
            &mut b,
            &bond.value,
            loc(bond),
            &format!("{at}.covalent_bonds[{i}]"),
            &entity_chains,
        ));
    }
    let seeds = match &job.model_seeds {
        Some(s) if s.value.iter().any(|&x| x < 0) => {
            b.problem(loc(s), &format!("{at}.modelSeeds"), "negative seed", "");
            Vec::new()
        }
        Some(s) => s.value.iter().map(|&x| x as u64).collect(),
        None => Vec::new(),
    };
    b.finish(job.name.value.clone(), InputFormat::ProtenixJson, seeds, bonds, None)
}

fn ids(entry: &Entry) -> Option<&Spanned<Ids>> {
    match entry {
        Entry::Protein(c) | Entry::Dna(c) | Entry::Rna(c) => c.id.as_ref(),
        Entry::Ligand(l) => l.id.as_ref(),
        Entry::Ion(l) => l.id.as_ref(),
    }
}

/// The chains of `count` copies: the given ids (one per copy) or fresh ones.
fn copies(
    b: &mut Builder,
    count: &Spanned<i64>,
    id: &Option<Spanned<Ids>>,
    field: &str,
    reserved: &HashSet<String>,
) -> Vec<String> {
    let n = b.count(count.value, loc(count), &format!("{field}.count"));
    if n == 0 {
        return Vec::new();
    }
    match id {
        Some(ids) => {
            if ids.value.0.len() != n {
                let message = format!("{} ids for {n} copies", ids.value.0.len());
                b.problem(loc(ids), &format!("{field}.id"), message, "give one id per copy");
            }
            b.chain_ids(ids.value.0.clone(), loc(ids), &format!("{field}.id"))
        }
        None => b.auto_chain_ids(n, reserved, loc(count), &format!("{field}.count")),
    }
}

fn chain(
    b: &mut Builder,
    kind: PolymerKind,
    c: &Chain,
    field: &str,
    reserved: &HashSet<String>,
) -> Option<Vec<String>> {
    let chains = copies(b, &c.count, &c.id, field, reserved);
    let sequence = b.sequence(kind, &c.sequence.value, loc(&c.sequence), &format!("{field}.sequence"));
    let mut seen = HashSet::new();
    let mut modifications = Vec::new();
    for (j, m) in c.modifications.iter().enumerate() {
        let mfield = format!("{field}.modifications[{j}]");
        let Some(code) = m.ptm_type.value.strip_prefix(CCD_PREFIX) else {
            let message = format!("{:?} lacks the CCD_ prefix", m.ptm_type.value);
            b.problem(loc(&m.ptm_type), &mfield, message, "write CCD_<code>, e.g. CCD_HY3");
            continue;
        };
        let position = (m.ptm_position.value, loc(&m.ptm_position));
        modifications.extend(b.modification(sequence.len(), position, (code, loc(&m.ptm_type)), &mfield, &mut seen));
    }
    modifications.sort_by_key(|m| m.position);
    if let Some(t) = &c.templates_path {
        b.problem(loc(t), &format!("{field}.templatesPath"), "templates are not supported yet", "remove it");
    }
    let msa = msa(b, kind, c, &sequence, field);
    let polymer = Polymer { kind, sequence, modifications, cyclic: false, msa, templates: Vec::new() };
    b.push_entity(chains.clone(), Molecule::Polymer(polymer));
    Some(chains)
}

fn msa(b: &mut Builder, kind: PolymerKind, c: &Chain, sequence: &str, field: &str) -> MsaInput {
    let file = |b: &Builder, s: &Spanned<String>| (TextSource::File(b.resolve(&s.value)), loc(s));
    let mut paired = c.paired_msa_path.as_ref().map(|p| file(b, p));
    let mut unpaired = c.unpaired_msa_path.as_ref().map(|p| file(b, p));
    if let Some(dir) = &c.msa {
        let at = loc(dir);
        if let Some(db) = dir.value.pairing_db.as_ref().filter(|db| db.as_str() != PAIRING_DB) {
            let message = format!("pairing_db {db:?}: the precomputed pairing.a3m is read as {PAIRING_DB}");
            b.problem(at, &format!("{field}.msa.pairing_db"), message, format!("remove it or write {PAIRING_DB:?}"));
        }
        if paired.is_some() || unpaired.is_some() {
            b.problem(at, &format!("{field}.msa"), "msa and pairedMsaPath/unpairedMsaPath are both set", "keep one");
        }
        let dir = b.resolve(&dir.value.precomputed_msa_dir.value);
        paired = Some((TextSource::File(dir.join("pairing.a3m")), at));
        unpaired = Some((TextSource::File(dir.join("non_pairing.a3m")), at));
    }
    let allowed = match kind {
        PolymerKind::Protein => (true, true),
        PolymerKind::Rna => (false, true),
        PolymerKind::Dna => (false, false),
    };
    for (name, value, ok) in [("pairedMsaPath", &mut paired, allowed.0), ("unpairedMsaPath", &mut unpaired, allowed.1)]
    {
        if let Some((source, at)) = value.as_ref() {
            if ok {
                b.msa(source, kind, sequence, *at, &format!("{field}.{name}"));
            } else {
                b.problem(
                    *at,
                    &format!("{field}.{name}"),
                    format!("{} chains take no {name}", kind.name()),
                    "remove it",
                );
                *value = None;
            }
        }
    }
    MsaInput { unpaired: unpaired.map(|(s, _)| s), paired: paired.map(|(s, _)| s) }
}

fn ligand(b: &mut Builder, l: &LigandSpec, field: &str, reserved: &HashSet<String>) -> Option<Vec<String>> {
    let chains = copies(b, &l.count, &l.id, field, reserved);
    let (value, at, lfield) = (&l.ligand.value, loc(&l.ligand), format!("{field}.ligand"));
    let ligand = if let Some(codes) = value.strip_prefix(CCD_PREFIX) {
        Ligand::Ccd(codes.split('_').map(|c| b.code(c, at, &lfield)).collect())
    } else if value.starts_with(FILE_PREFIX) {
        b.problem(at, &lfield, "FILE_ ligands are not supported yet", "give the ligand as CCD_<code> or a SMILES");
        return None;
    } else {
        Ligand::Smiles(b.smiles(value, at, &lfield))
    };
    b.push_entity(chains.clone(), Molecule::Ligand(ligand));
    Some(chains)
}

fn ion(b: &mut Builder, l: &IonSpec, field: &str, reserved: &HashSet<String>) -> Option<Vec<String>> {
    let chains = copies(b, &l.count, &l.id, field, reserved);
    let (at, ifield) = (loc(&l.ion), format!("{field}.ion"));
    if l.ion.value.starts_with(CCD_PREFIX) {
        b.problem(at, &ifield, format!("{:?}: ion codes take no CCD_ prefix", l.ion.value), "write e.g. \"MG\"");
    }
    let code = b.code(l.ion.value.trim_start_matches(CCD_PREFIX), at, &ifield);
    b.push_entity(chains.clone(), Molecule::Ligand(Ligand::Ccd(vec![code])));
    Some(chains)
}

/// One `covalent_bonds` entry, expanded over copies when it names none.
fn covalent_bond(
    b: &mut Builder,
    spec: &BondSpec,
    at: Loc,
    field: &str,
    entities: &[Option<Vec<String>>],
) -> Vec<Bond> {
    let sides = [
        (&spec.entity1, &spec.copy1, &spec.position1, &spec.atom1),
        (&spec.entity2, &spec.copy2, &spec.position2, &spec.atom2),
    ];
    let mut resolved = Vec::new();
    for (k, (entity, copy, position, atom)) in sides.into_iter().enumerate() {
        let number = entity.value.0.parse::<usize>().ok().filter(|&n| n >= 1 && n <= entities.len());
        let Some(n) = number else {
            let message = format!("entity {:?} is not one of 1 to {}", entity.value.0, entities.len());
            b.problem(
                loc(entity),
                &format!("{field}.entity{}", k + 1),
                message,
                "entities count from 1 in sequences order",
            );
            return Vec::new();
        };
        let Some(chains) = &entities[n - 1] else { return Vec::new() };
        let Ok(residue) = position.value.0.parse::<i64>() else {
            b.problem(
                loc(position),
                &format!("{field}.position{}", k + 1),
                format!("{:?} is not a number", position.value.0),
                "",
            );
            return Vec::new();
        };
        resolved.push((
            chains.clone(),
            copy.as_ref().map(|c| (c.value, loc(c))),
            residue,
            atom.value.0.clone(),
            loc(atom),
        ));
    }
    let (a, z) = (&resolved[0], &resolved[1]);
    let pairs: Vec<(usize, usize)> = match (a.1, z.1) {
        (Some((ca, la)), Some((cz, _))) => {
            let valid = |c: i64, n: usize| c >= 1 && c as u64 <= n as u64;
            if !valid(ca, a.0.len()) || !valid(cz, z.0.len()) {
                b.problem(
                    la,
                    field,
                    format!("copies {ca} and {cz}: out of range (1 to {} and 1 to {})", a.0.len(), z.0.len()),
                    "",
                );
                return Vec::new();
            }
            vec![(ca as usize - 1, cz as usize - 1)]
        }
        (None, None) if a.0.len() == z.0.len() => (0..a.0.len()).map(|i| (i, i)).collect(),
        (None, None) => {
            let message = format!("no copy1/copy2 but the entities have {} and {} copies", a.0.len(), z.0.len());
            b.problem(at, field, message, "give copy1 and copy2");
            return Vec::new();
        }
        _ => {
            b.problem(at, field, "copy1 and copy2 must be given together", "");
            return Vec::new();
        }
    };
    let mut bonds = Vec::new();
    for (i, j) in pairs {
        let left = b.bond_atom(&a.0[i], a.2, &a.3, a.4, &format!("{field}.atom1"), true);
        let right = b.bond_atom(&z.0[j], z.2, &z.3, z.4, &format!("{field}.atom2"), true);
        if let (Some(l), Some(r)) = (left, right) {
            bonds.push(Bond { atoms: [l, r] });
        }
    }
    bonds
}
