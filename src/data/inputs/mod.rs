//! Inference inputs: what to predict, read from any of five formats and normalised to one
//! typed [`InferenceInput`] (entities, their chains, sequences, modifications, ligands as CCD
//! codes or SMILES, MSAs, templates and bonds) that the AF3 tokenizer consumes.
//!
//! Formats (each validated with every problem reported at once, see [`Problem`]):
//! - `--sequences "A:MKV…,B:ACGU"` ([`from_sequences`], grammar in `sequences.rs`);
//! - Boltz-style YAML (<https://github.com/jwohlwend/boltz/blob/main/docs/prediction.md>);
//! - AlphaFold 3 JSON, `dialect: alphafold3`, versions 1–4
//!   (<https://github.com/google-deepmind/alphafold3/blob/main/docs/input.md>);
//! - Protenix JSON, a list of jobs (`bytedance/Protenix` `docs/infer_json_format.md`), which
//!   also reads AlphaFold Server lists (`dialect: alphafoldserver`) that use only the fields
//!   Protenix shares;
//! - mmCIF or BinaryCIF (entities and chains of a deposited structure).
//!
//! Paths inside an input (MSAs, templates, a user CCD) are relative to the input file's
//! directory, as AlphaFold 3 resolves them. YAML and JSON go through one YAML 1.2 parser
//! (serde-saphyr; JSON is YAML 1.2), which gives every value's line and column, so semantic
//! problems point at the offending value; JSON syntax errors are reported by serde_json first.

mod af3;
mod boltz;
mod check;
mod document;
mod error;
mod mmcif;
mod protenix;
mod sequences;

use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use super::ccd::Ccd;
use super::msa::Alphabet;

pub use error::{InputError, Problem};
pub use sequences::from_sequences;

/// One prediction job: its entities and how they bond.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InferenceInput {
    /// The job name (AF3/Protenix `name`, the file stem for Boltz, the entry id for mmCIF).
    pub name: String,
    pub format: InputFormat,
    /// Model seeds the input asks for (AF3 `modelSeeds`, Protenix `modelSeeds`); empty when
    /// the input names none and the run's seed applies.
    pub seeds: Vec<u64>,
    pub entities: Vec<Entity>,
    /// Covalent bonds between atoms (AF3 `bondedAtomPairs`, Boltz `bond` constraints,
    /// Protenix `covalent_bonds` expanded over copies).
    pub bonds: Vec<Bond>,
    /// AF3 `userCCD`/`userCCDPath`: extra component definitions (mmCIF text).
    pub user_ccd: Option<TextSource>,
}

/// Which format an input was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    Sequences,
    BoltzYaml,
    Alphafold3Json,
    ProtenixJson,
    Mmcif,
}

impl InputFormat {
    /// The format's name for people ("AlphaFold 3 JSON").
    pub fn label(self) -> &'static str {
        match self {
            InputFormat::Sequences => "--sequences",
            InputFormat::BoltzYaml => "Boltz YAML",
            InputFormat::Alphafold3Json => "AlphaFold 3 JSON",
            InputFormat::ProtenixJson => "Protenix JSON",
            InputFormat::Mmcif => "mmCIF",
        }
    }
}

/// A molecule and its copies: one chain id per copy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    pub chains: Vec<String>,
    pub molecule: Molecule,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Molecule {
    Polymer(Polymer),
    Ligand(Ligand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolymerKind {
    Protein,
    Rna,
    Dna,
}

impl PolymerKind {
    pub fn name(self) -> &'static str {
        match self {
            PolymerKind::Protein => "protein",
            PolymerKind::Rna => "rna",
            PolymerKind::Dna => "dna",
        }
    }

    /// The letters a sequence may use: the standard residues plus the unknown one.
    pub fn letters(self) -> &'static str {
        match self {
            PolymerKind::Protein => "ACDEFGHIKLMNPQRSTVWYX",
            PolymerKind::Rna => "ACGUN",
            PolymerKind::Dna => "ACGTN",
        }
    }

    /// The MSA alphabet of this kind's alignments.
    pub fn alphabet(self) -> Alphabet {
        match self {
            PolymerKind::Protein => Alphabet::Protein,
            PolymerKind::Rna => Alphabet::Rna,
            PolymerKind::Dna => Alphabet::Dna,
        }
    }
}

/// A protein, RNA or DNA chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Polymer {
    pub kind: PolymerKind,
    /// One-letter codes over [`PolymerKind::letters`]; a modified residue keeps its parent's
    /// letter here and its CCD code in `modifications`.
    pub sequence: String,
    /// Sorted by position, at most one per position.
    pub modifications: Vec<Modification>,
    /// Boltz `cyclic`: the last residue bonds to the first.
    pub cyclic: bool,
    pub msa: MsaInput,
    /// AF3 structural templates (protein only).
    pub templates: Vec<Template>,
}

/// A residue replaced by a CCD component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Modification {
    /// 1-based residue position.
    pub position: usize,
    pub ccd: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ligand {
    /// One or more CCD components (several: a glycan or another multi-component ligand, in
    /// order; bonds between them come from `InferenceInput::bonds`).
    Ccd(Vec<String>),
    Smiles(String),
}

/// The alignments an input gives for a chain. `None` means none was given (search for one);
/// an empty inline text means "explicitly none" (run MSA-free), as in AF3.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MsaInput {
    pub unpaired: Option<TextSource>,
    pub paired: Option<TextSource>,
}

/// Text given inline or as a file (resolved against the input's directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextSource {
    File(PathBuf),
    Inline(String),
}

/// Serialised as a description (`{"file": …}` or `{"inline_bytes": n}`), never the text: an
/// inline MSA can be megabytes.
impl Serialize for TextSource {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1))?;
        match self {
            TextSource::File(p) => map.serialize_entry("file", p)?,
            TextSource::Inline(t) => map.serialize_entry("inline_bytes", &t.len())?,
        }
        map.end()
    }
}

/// An AF3 structural template: a single-chain mmCIF and a residue mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Template {
    pub mmcif: TextSource,
    /// 0-based query residues, paired element-wise with `template_indices`.
    pub query_indices: Vec<usize>,
    pub template_indices: Vec<usize>,
}

/// A covalent bond between two atoms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bond {
    pub atoms: [AtomRef; 2],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtomRef {
    pub chain: String,
    /// 1-based residue within the chain (the component's position for a multi-CCD ligand).
    pub residue: usize,
    /// The CCD atom name; for a Protenix SMILES ligand, an atom index or element+ordinal.
    pub atom: String,
}

/// Reads an input file: Boltz YAML, AF3 JSON (one job), Protenix JSON (one or more jobs) or
/// mmCIF. With `ccd`, every CCD code (ligands, modifications) must exist in it (or in the
/// input's own user CCD), and bonded atom names must exist in their components.
pub fn read(path: &Path, ccd: Option<&Ccd>) -> Result<Vec<InferenceInput>, InputError> {
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let (name, gzipped) = name.strip_suffix(".gz").map_or((name.as_str(), false), |n| (n, true));
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    if matches!(ext, "cif" | "mmcif" | "bcif") {
        return mmcif::read(path, ccd).map(|input| vec![input]);
    }
    if gzipped || !matches!(ext, "yaml" | "yml" | "json") {
        return Err(InputError::UnknownFormat { path: path.to_owned() });
    }
    let text = std::fs::read_to_string(path).map_err(|source| InputError::Io { path: path.to_owned(), source })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let file = path.display().to_string();
    if ext == "json" {
        document::check_json_syntax(&text, &file)?;
        if text.trim_start().starts_with('[') {
            protenix::parse(&text, &file, base, ccd)
        } else {
            af3::parse(&text, &file, base, ccd).map(|input| vec![input])
        }
    } else {
        let stem = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let stem = stem.split('.').next().unwrap_or_default().to_owned();
        boltz::parse(&text, &file, &stem, base, ccd).map(|input| vec![input])
    }
}
