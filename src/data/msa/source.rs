//! Where preprocessing finds a structure's alignments, and what it keeps of them: the OpenFold
//! layout, one directory per chain, `<source>/<key>_<chain>/<search>.{a3m,sto}[.gz]`, in a
//! directory or in a plain tar (found through [`TarIndex`] by the directory's last component,
//! so the archive's top-level folder does not matter).
//!
//! - **Chain ids are author ids** (`auth_asym_id`), as in OpenProteinSet and the openfold3
//!   test data: in `2q2k.cif` label chain A is the DNA and author chains A and B are the two
//!   protein copies, and `2q2k_A/` and `2q2k_B/` both hold protein alignments. openfold3 itself
//!   maps chains to alignment directories by sequence (`map_chains_to_representatives`); helico
//!   checks every file's query against the chain's sequence instead, so a directory named by
//!   the wrong convention is reported, never used.
//! - **One alignment per entity**: chains of an entity share it; the first of their directories
//!   (chains in structure order, sources in the order given) that gives a usable file serves it.
//!   Protein (`polypeptide(L)`) and RNA entities are looked up; DNA never is (AF3, openfold3 and
//!   Protenix use no DNA alignments).
//! - **Which files, in which order** is openfold3's `MSASettings` (`aln_order`,
//!   `msas_to_pair`, `max_seq_counts`; [`FILES`]): the main alignment stacks the searches in
//!   `aln_order` ([`Msa::stack`]), deduplicated ([`Msa::dedup`]); UniProt hits are kept apart
//!   for pairing by species, as AF3 does. `hmm_output` (hmmsearch against PDB sequences) and
//!   `pdb70_hits` are template hits, not alignments, and are skipped.
//! - **Caps**: each file is read up to its openfold3 row count and at most
//!   [`MAX_STORED_ROWS`] rows; each stored alignment is cut to [`MAX_STORED_ROWS`] rows, AF3's
//!   whole MSA budget, so the cache stays small whatever the searches returned.
//!
//! A file that cannot be read, or whose query is not the chain's sequence, is left out and
//! recorded as a problem naming it; unknown file names are recorded too. Nothing here stops
//! preprocessing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{MsaError, Result};
use super::{Alphabet, Msa, N_CLASSES, TarIndex, letter};
use crate::data::ccd::Ccd;
use crate::data::structure::{EntityKind, PolymerType, Structure};
use crate::data::tokenize::restype_index;

/// Rows stored per alignment: AF3's MSA budget (supplement §2.3: 16,384 rows in all), so no
/// example can use more of one chain's search.
pub const MAX_STORED_ROWS: usize = 16_384;

/// What a file in an alignment directory is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Stacked into the chain's main (unpaired) alignment.
    Main,
    /// Species-annotated hits for pairing the chains of a heteromer.
    Pairing,
    /// Template search output: skipped.
    Templates,
}

/// openfold3 `MSASettings` (0.5.0, `projects/of3_all_atom/config/dataset_config_components.py`):
/// file stems in `aln_order` with their `max_seq_counts`, then `msas_to_pair`, plus Protenix's
/// `non_pairing`/`pairing` names and the template outputs. The order is the stacking order.
const FILES: [(&str, Role, usize); 19] = [
    ("uniref90_hits", Role::Main, 10_000),
    ("bfd_uniclust_hits", Role::Main, 10_000_000),
    ("bfd_uniref_hits", Role::Main, 10_000_000),
    ("cfdb_uniref30", Role::Main, 10_000_000),
    ("cfdb_hits", Role::Main, 10_000_000),
    ("mgnify_hits", Role::Main, 5_000),
    ("rfam_hits", Role::Main, 10_000),
    ("rnacentral_hits", Role::Main, 10_000),
    ("nt_hits", Role::Main, 10_000),
    ("nucleotide_collection_hits", Role::Main, 10_000),
    ("concat_cfdb_uniref100_filtered", Role::Main, 10_000_000),
    ("mmseqs_colabfold", Role::Main, 10_000_000),
    ("colabfold_main", Role::Main, 16_384),
    ("non_pairing", Role::Main, 16_384),
    ("uniprot_hits", Role::Pairing, 50_000),
    ("uniprot", Role::Pairing, 50_000),
    ("pairing", Role::Pairing, 16_384),
    ("hmm_output", Role::Templates, 0),
    ("pdb70_hits", Role::Templates, 0),
];

/// The role, stacking position and row cap of a file name (`uniref90_hits.sto.gz`); `None` for
/// names openfold3 does not use. Template outputs are recognised whatever their extension.
pub fn role_of(file_name: &str) -> Option<(Role, usize, usize)> {
    let name = file_name.strip_suffix(".gz").unwrap_or(file_name);
    let (stem, extension) = name.rsplit_once('.')?;
    let position = FILES.iter().position(|(s, ..)| *s == stem)?;
    let (_, role, cap) = FILES[position];
    (role == Role::Templates || matches!(extension, "a3m" | "sto")).then_some((role, position, cap))
}

/// An MSA source given to preprocessing: a directory or a plain tar of alignment directories.
#[derive(Debug)]
pub struct AlignmentSource {
    path: PathBuf,
    tar: Option<TarSource>,
}

#[derive(Debug)]
struct TarSource {
    index: TarIndex,
    /// Directory name (`2q2k_A`) → its members (file name, member name).
    dirs: HashMap<String, Vec<(String, String)>>,
}

/// One file of an alignment directory.
struct FileRef {
    name: String,
    /// How problems name it: the path, or `archive:member`.
    label: String,
    location: Location,
}

enum Location {
    Path(PathBuf),
    Member(String),
}

impl AlignmentSource {
    /// A directory, or a plain (not gzipped) tar whose offset index is built beside it on
    /// first use.
    pub fn open(path: &Path) -> Result<AlignmentSource> {
        let meta =
            std::fs::metadata(path).map_err(|source| MsaError::Io { path: path.into(), action: "open", source })?;
        if meta.is_dir() {
            // Absolute, so that the stamps of the files read stay valid from any directory.
            let path = std::fs::canonicalize(path).map_err(|source| MsaError::Io {
                path: path.into(),
                action: "open",
                source,
            })?;
            return Ok(AlignmentSource { path, tar: None });
        }
        let index = TarIndex::open(path)?;
        let mut dirs: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for member in index.names() {
            let mut parts = member.rsplit('/');
            if let (Some(file), Some(dir)) = (parts.next(), parts.next()) {
                dirs.entry(dir.to_owned()).or_default().push((file.to_owned(), member.to_owned()));
            }
        }
        Ok(AlignmentSource { path: path.to_owned(), tar: Some(TarSource { index, dirs }) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What tells two sources apart in the preprocessing records: the canonical path, and for
    /// a tar its size and modification time. Edits inside a directory are caught per file by
    /// the record's [`InputFile`] stamps instead.
    pub fn identity(&self) -> Value {
        let path = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        match &self.tar {
            None => json!({ "dir": path }),
            Some(_) => {
                let stamp = std::fs::metadata(&self.path).ok().map(|m| (m.len(), m.modified().map(unix_nanos).ok()));
                json!({ "tar": path, "stamp": stamp })
            }
        }
    }

    /// The files of directory `dir`, sorted by name; `None` when the source has no such
    /// directory.
    fn list(&self, dir: &str) -> Result<Option<Vec<FileRef>>> {
        let mut files = match &self.tar {
            Some(tar) => match tar.dirs.get(dir) {
                None => return Ok(None),
                Some(members) => members
                    .iter()
                    .map(|(name, member)| FileRef {
                        name: name.clone(),
                        label: format!("{}:{member}", self.path.display()),
                        location: Location::Member(member.clone()),
                    })
                    .collect::<Vec<_>>(),
            },
            None => {
                let path = self.path.join(dir);
                let entries = match std::fs::read_dir(&path) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(source) => return Err(MsaError::Io { path, action: "list", source }),
                };
                let mut files = Vec::new();
                for entry in entries {
                    let entry = entry.map_err(|source| MsaError::Io { path: path.clone(), action: "list", source })?;
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        continue;
                    }
                    let name = entry.file_name().to_string_lossy().into_owned();
                    files.push(FileRef {
                        label: entry.path().display().to_string(),
                        location: Location::Path(entry.path()),
                        name,
                    });
                }
                files
            }
        };
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(files))
    }

    /// The bytes of a file, with its stamp when it lies in a directory.
    fn read(&self, file: &FileRef) -> Result<(Vec<u8>, Option<InputFile>)> {
        match (&file.location, &self.tar) {
            (Location::Member(member), Some(tar)) => Ok((tar.index.read(member)?, None)),
            (Location::Path(path), _) => {
                let io = |source| MsaError::Io { path: path.clone(), action: "read", source };
                let meta = std::fs::metadata(path).map_err(io)?;
                let bytes = std::fs::read(path).map_err(io)?;
                Ok((bytes, Some(InputFile::new(path.clone(), &meta))))
            }
            (Location::Member(member), None) => {
                Err(MsaError::NoMember { archive: self.path.clone(), name: member.clone(), members: 0 })
            }
        }
    }
}

/// An alignment file read from a directory source, as it was when read: preprocessing redoes
/// the entry when it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
}

impl InputFile {
    fn new(path: PathBuf, meta: &std::fs::Metadata) -> InputFile {
        InputFile { path, size: meta.len(), mtime_ns: meta.modified().map_or(0, unix_nanos) }
    }

    /// Whether the file still has the recorded size and modification time.
    pub fn unchanged(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| *self == InputFile::new(self.path.clone(), &m))
    }
}

fn unix_nanos(t: std::time::SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The alignments of one polymer entity as the structure cache stores them.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityMsa {
    /// Index into `Structure::entities`.
    pub entity: usize,
    /// The searches stacked, deduplicated and capped at [`MAX_STORED_ROWS`], without row
    /// names; row 0 is the query (the entity's sequence): [M, N].
    pub main: Msa,
    /// UniProt hits for pairing (row 0 the query), capped at [`MAX_STORED_ROWS`]; `None` when
    /// the entry has fewer than two protein sequences (nothing to pair) or no pairing file.
    pub pairing: Option<Msa>,
    /// Class frequencies of `main` per column, gaps included (AF3 Table 13): [N, 32].
    pub profile: Vec<[f32; N_CLASSES]>,
    /// Mean raw deletion count of `main` per column: [N].
    pub deletion_mean: Vec<f32>,
}

impl EntityMsa {
    /// Computes the profile and deletion mean of `main`.
    pub fn new(entity: usize, main: Msa, pairing: Option<Msa>) -> EntityMsa {
        EntityMsa { entity, profile: main.profile(), deletion_mean: main.deletion_mean(), main, pairing }
    }
}

/// What preprocessing found for an entry's alignments (a line of the manifest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MsaReport {
    /// The entities that got an alignment.
    pub entities: Vec<EntityReport>,
    /// Files left out or not recognised, each with its reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Every file read from a directory source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputFile>,
}

/// One entity's stored alignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityReport {
    /// `_entity.id`.
    pub entity: String,
    /// The directory used (`2q2k_A`).
    pub directory: String,
    /// The files used, in stacking order, with the rows each gave.
    pub files: Vec<FileUse>,
    /// Rows stored: the main alignment after deduplication and the cap, and the pairing rows.
    pub rows: usize,
    pub pairing_rows: usize,
}

/// A file an alignment was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileUse {
    pub file: String,
    pub role: Role,
    /// Rows read (the query included), after the file's cap.
    pub rows: usize,
}

/// The residue classes of entity `entity`'s sequence in the MSA alphabet: standard residues
/// their own class, modified ones their parent's through the CCD one-letter code (as
/// `pdbx_seq_one_letter_code_can`, which searches are run on), anything else unknown.
pub fn sequence_classes(structure: &Structure, entity: usize, ccd: &Ccd, alphabet: Alphabet) -> Vec<u8> {
    let parent = |name: &str| {
        let code = ccd.get(name)?.one_letter_code.as_deref().filter(|c| c.len() == 1)?;
        alphabet.encode(code.as_bytes()[0].to_ascii_uppercase())
    };
    structure.entities[entity]
        .sequence
        .iter()
        .map(|n| {
            restype_index(n.as_str()).map(|c| c as u8).or_else(|| parent(n.as_str())).unwrap_or(alphabet.unknown())
        })
        .collect()
}

/// The alphabet of an entity whose alignments are looked up.
fn alphabet_of(kind: EntityKind) -> Option<Alphabet> {
    match kind {
        EntityKind::Polymer(PolymerType::PeptideL) => Some(Alphabet::Protein),
        EntityKind::Polymer(PolymerType::Rna) => Some(Alphabet::Rna),
        _ => None,
    }
}

/// Finds, reads, checks and combines the alignments of every protein and RNA entity of
/// `structure` (entry `key`) in `sources` (see the module documentation). Never fails: what
/// cannot be used is in the report's problems.
pub fn find_entity_msas(
    structure: &Structure,
    ccd: &Ccd,
    key: &str,
    sources: &[AlignmentSource],
) -> (Vec<EntityMsa>, MsaReport) {
    let mut report = MsaReport::default();
    let mut out = Vec::new();
    let protein_sequences: std::collections::HashSet<&[_]> = structure
        .entities
        .iter()
        .filter(|e| e.kind == EntityKind::Polymer(PolymerType::PeptideL))
        .map(|e| e.sequence.as_slice())
        .collect();
    let heteromer = protein_sequences.len() > 1;
    for (e, entity) in structure.entities.iter().enumerate() {
        let Some(alphabet) = alphabet_of(entity.kind) else { continue };
        let query = sequence_classes(structure, e, ccd, alphabet);
        let mut authors: Vec<&str> = Vec::new();
        for chain in structure.chains.iter().filter(|c| c.entity == e) {
            if !authors.contains(&chain.auth_asym_id.as_str()) {
                authors.push(&chain.auth_asym_id);
            }
        }
        'search: for author in authors {
            let directory = format!("{key}_{author}");
            for source in sources {
                let files = match source.list(&directory) {
                    Ok(Some(files)) => files,
                    Ok(None) => continue,
                    Err(e) => {
                        report.problems.push(e.to_string());
                        continue;
                    }
                };
                let what = format!("chain {author} (entity {})", entity.id);
                // Pairing needs a second protein sequence in the entry: without one, pairing
                // files are not even read.
                let pair = heteromer && alphabet == Alphabet::Protein;
                let found = read_directory(source, &files, &query, alphabet, pair, &what, &mut report);
                let Some(Found { main, pairing, used }) = found else { continue };
                let main = main.dedup().truncate(MAX_STORED_ROWS);
                report.entities.push(EntityReport {
                    entity: entity.id.clone(),
                    directory: directory.clone(),
                    files: used,
                    rows: main.depth(),
                    pairing_rows: pairing.as_ref().map_or(0, Msa::depth),
                });
                out.push(EntityMsa::new(e, main, pairing));
                break 'search;
            }
        }
    }
    (out, report)
}

/// What one directory gave.
struct Found {
    /// The main alignment; the query alone when only pairing files were usable.
    main: Msa,
    pairing: Option<Msa>,
    used: Vec<FileUse>,
}

/// Reads a directory's files in stacking order (pairing files only when `pair`); `None` when
/// no file could be used.
fn read_directory(
    source: &AlignmentSource,
    files: &[FileRef],
    query: &[u8],
    alphabet: Alphabet,
    pair: bool,
    what: &str,
    report: &mut MsaReport,
) -> Option<Found> {
    let mut known: Vec<(usize, Role, usize, &FileRef)> = Vec::new();
    for file in files {
        match role_of(&file.name) {
            Some((Role::Templates, ..)) => {}
            Some((Role::Pairing, ..)) if !pair => {}
            Some((role, position, cap)) => known.push((position, role, cap, file)),
            None => report.problems.push(format!(
                "{}: not an alignment file openfold3 reads (uniref90_hits.sto, bfd_uniclust_hits.a3m, \
                 mgnify_hits.sto, uniprot_hits.sto, …, optionally .gz); ignored",
                file.label
            )),
        }
    }
    known.sort_by_key(|k| (k.0, k.3.name.clone()));
    let (mut main, mut pairing, mut used) = (Vec::new(), Vec::new(), Vec::new());
    for (_, role, cap, file) in known {
        let parsed = source.read(file).and_then(|(bytes, stamp)| {
            report.inputs.extend(stamp);
            Msa::parse_limited(&bytes, &file.label, alphabet, cap.min(MAX_STORED_ROWS))
        });
        let msa = match parsed {
            Ok(msa) => msa,
            Err(e) => {
                report.problems.push(format!("{e}; file left out"));
                continue;
            }
        };
        if let Some(problem) = query_problem(&msa, query) {
            report.problems.push(format!("{}: {problem} of {what}; file left out", file.label));
            continue;
        }
        used.push(FileUse { file: file.name.clone(), role, rows: msa.depth() });
        match role {
            Role::Pairing => pairing.push(msa.without_names()),
            _ => main.push(msa.without_names()),
        }
    }
    if used.is_empty() {
        return None;
    }
    let stack = |parts: Vec<Msa>| Msa::stack(&parts).expect("every part's query was checked against the same sequence");
    let main = if main.is_empty() {
        Msa::from_parts(query.len(), query.to_vec(), vec![0; query.len()], vec![None])
    } else {
        stack(main)
    };
    let pairing = (!pairing.is_empty()).then(|| stack(pairing).truncate(MAX_STORED_ROWS));
    Some(Found { main, pairing, used })
}

/// Why an alignment's query is not `sequence`, if it is not.
fn query_problem(msa: &Msa, sequence: &[u8]) -> Option<String> {
    let text = |classes: &[u8]| classes.iter().map(|&c| letter(c)).collect::<String>();
    if msa.width() != sequence.len() {
        return Some(format!(
            "the query has {} columns ({}), not the {} residues of the sequence ({})",
            msa.width(),
            short(&msa.letters(0)),
            sequence.len(),
            short(&text(sequence))
        ));
    }
    let column = msa.row(0).iter().zip(sequence).position(|(a, b)| a != b)?;
    Some(format!(
        "the query differs from the sequence at column {} ({} instead of {}; query {}, sequence {})",
        column + 1,
        letter(msa.row(0)[column]),
        letter(sequence[column]),
        short(&msa.letters(0)),
        short(&text(sequence))
    ))
}

/// A sequence for a message: cut after 30 letters.
fn short(letters: &str) -> String {
    match letters.char_indices().nth(30) {
        Some((cut, _)) => format!("{}…", &letters[..cut]),
        None => letters.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_roles_follow_openfold3() {
        assert_eq!(role_of("uniref90_hits.sto").map(|r| r.0), Some(Role::Main));
        assert_eq!(role_of("bfd_uniclust_hits.a3m.gz").map(|r| r.0), Some(Role::Main));
        assert_eq!(role_of("uniprot_hits.a3m").map(|r| r.0), Some(Role::Pairing));
        assert_eq!(role_of("hmm_output.sto").map(|r| r.0), Some(Role::Templates));
        assert_eq!(role_of("pdb70_hits.hhr").map(|r| r.0), Some(Role::Templates));
        assert_eq!(role_of("uniref90_hits.fasta"), None);
        assert_eq!(role_of("notes.txt"), None);
        let order = |name| role_of(name).unwrap().1;
        assert!(order("uniref90_hits.a3m") < order("bfd_uniclust_hits.a3m"));
        assert!(order("bfd_uniclust_hits.a3m") < order("mgnify_hits.sto"));
        assert_eq!(role_of("mgnify_hits.sto").unwrap().2, 5_000);
    }

    #[test]
    fn query_problems_say_where() {
        let msa = Msa::parse_a3m(b">q\nMKV\n", "x", Alphabet::Protein).unwrap();
        assert_eq!(query_problem(&msa, msa.row(0)), None);
        let other = Msa::parse_a3m(b">q\nMRV\n", "x", Alphabet::Protein).unwrap();
        let p = query_problem(&msa, other.row(0)).unwrap();
        assert_eq!(p, "the query differs from the sequence at column 2 (K instead of R; query MKV, sequence MRV)");
        let p = query_problem(&msa, &other.row(0)[..2]).unwrap();
        assert_eq!(p, "the query has 3 columns (MKV), not the 2 residues of the sequence (MR)");
    }
}
