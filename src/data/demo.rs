//! The demo corpus the first experiment trains on: SMILES for every CCD component that has one,
//! protein and RNA sequences from a directory of mmCIF files (their `_entity_poly`), and the
//! sequences of multiple sequence alignments (A3M or Stockholm), gaps removed: real protein
//! hits from openfold3's test MSAs and real RNAs from Rfam alignments.
//!
//! Outputs, each written to a temporary file and renamed into place, so a reader never sees a
//! half-written file:
//! - `smiles.smi`: `SMILES<TAB>COMP_ID` per line, sorted by component id;
//! - `protein.fasta`: `polypeptide(L)` entities over the 20 standard amino acids plus `X`;
//! - `rna.fasta`: `polyribonucleotide` entities over `ACGU` plus `N`.
//!
//! Sequences come from `pdbx_seq_one_letter_code_can` with whitespace removed; headers are
//! `>{pdbid}_{entity_id} mol:protein` (`mol:na` for RNA, as in the wwPDB's `pdb_seqres.txt`).
//! Alignment rows become `>{file stem}/{row name} mol:protein|na`, with gap characters (`-`,
//! `.`) removed and letters upper-cased (A3M and hmmer write insertions in lower case).
//! A sequence already written (from any entry or alignment) is not written again.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::ccd::Ccd;
use super::cif::CifFile;
use super::error::{DataError, Result};
use super::smiles::component_smiles;

/// The 20 standard amino acids; any other letter becomes `X`.
const PROTEIN_ALPHABET: &[u8] = b"ACDEFGHIKLMNPQRSTVWY";
/// RNA bases; any other letter becomes `N`.
const RNA_ALPHABET: &[u8] = b"ACGU";

/// Where the demo corpus comes from, besides the CCD.
#[derive(Debug, Clone)]
pub struct DemoSources {
    /// A directory of mmCIF files.
    pub mmcif_dir: PathBuf,
    /// Directories searched (recursively) for `.a3m` and `.sto` protein alignments.
    pub protein_alignments: Vec<PathBuf>,
    /// Directories searched (recursively) for `.a3m` and `.sto` RNA alignments.
    pub rna_alignments: Vec<PathBuf>,
}

/// What [`build_demo_corpus`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DemoCorpus {
    /// Lines in `smiles.smi`.
    pub smiles: usize,
    /// Components without SMILES, by reason ([`crate::data::SmilesProblem::label`]).
    pub smiles_skipped: BTreeMap<&'static str, usize>,
    /// Records in `protein.fasta`.
    pub protein: usize,
    /// Records in `rna.fasta`.
    pub rna: usize,
    /// mmCIF files read.
    pub mmcif_files: usize,
    /// Alignment files read.
    pub alignment_files: usize,
}

/// Builds the demo corpus from the CCD, the `.cif`/`.cif.gz`/`.bcif` files of the mmCIF
/// directory (read in name order) and the alignments, writing into `out_dir` (created if
/// missing).
pub fn build_demo_corpus(ccd: &Ccd, sources: &DemoSources, out_dir: &Path) -> Result<DemoCorpus> {
    let mmcif_paths = structure_files(&sources.mmcif_dir)?;
    std::fs::create_dir_all(out_dir).map_err(|e| io_error(out_dir, "create directory", e))?;

    let mut components: Vec<_> = ccd.components().collect();
    components.sort_by(|a, b| a.id.cmp(&b.id));
    let mut smi = String::new();
    let mut corpus = DemoCorpus {
        smiles: 0,
        smiles_skipped: BTreeMap::new(),
        protein: 0,
        rna: 0,
        mmcif_files: mmcif_paths.len(),
        alignment_files: 0,
    };
    for component in components {
        match component_smiles(component) {
            Ok(smiles) => {
                writeln!(smi, "{smiles}\t{}", component.id).expect("writing to a String cannot fail");
                corpus.smiles += 1;
            }
            Err(DataError::Smiles { kind, .. }) => *corpus.smiles_skipped.entry(kind.label()).or_default() += 1,
            Err(other) => return Err(other),
        }
    }

    let (mut protein, mut rna) = (String::new(), String::new());
    let mut seen = HashSet::new();
    for path in &mmcif_paths {
        for entity in polymer_entities(path)? {
            let (out, count, mol) = match entity.kind {
                PolymerKind::Protein => (&mut protein, &mut corpus.protein, "protein"),
                PolymerKind::Rna => (&mut rna, &mut corpus.rna, "na"),
            };
            if seen.insert((entity.kind, entity.sequence.clone())) {
                writeln!(out, ">{}_{} mol:{mol}\n{}", entity.pdb_id, entity.entity_id, entity.sequence)
                    .expect("writing to a String cannot fail");
                *count += 1;
            }
        }
    }

    for (kind, dirs) in
        [(PolymerKind::Protein, &sources.protein_alignments), (PolymerKind::Rna, &sources.rna_alignments)]
    {
        for path in alignment_files(dirs)? {
            corpus.alignment_files += 1;
            let stem = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let stem = stem.split('.').next().unwrap_or_default().to_owned();
            let (out, count, mol) = match kind {
                PolymerKind::Protein => (&mut protein, &mut corpus.protein, "protein"),
                PolymerKind::Rna => (&mut rna, &mut corpus.rna, "na"),
            };
            for (name, raw) in alignment_rows(&path)? {
                let sequence = to_alphabet(kind, &raw.replace(['-', '.', '~'], "").to_ascii_uppercase());
                if !sequence.is_empty() && seen.insert((kind, sequence.clone())) {
                    writeln!(out, ">{stem}/{name} mol:{mol}\n{sequence}").expect("writing to a String cannot fail");
                    *count += 1;
                }
            }
        }
    }

    for (name, text) in [("smiles.smi", &smi), ("protein.fasta", &protein), ("rna.fasta", &rna)] {
        let path = out_dir.join(name);
        crate::atomic::write(&path, text.as_bytes()).map_err(|e| io_error(&path, "write", e))?;
    }
    Ok(corpus)
}

/// The corpus alphabet of a polymer kind: other letters become `X` (protein) or `N` (RNA).
fn to_alphabet(kind: PolymerKind, raw: &str) -> String {
    let (alphabet, unknown) = match kind {
        PolymerKind::Protein => (PROTEIN_ALPHABET, 'X'),
        PolymerKind::Rna => (RNA_ALPHABET, 'N'),
    };
    raw.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| if c.is_ascii() && alphabet.contains(&(c as u8)) { c } else { unknown })
        .collect()
}

/// `.a3m` and `.sto` files under `dirs` (recursively), sorted; a missing directory is an error.
fn alignment_files(dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, "list directory", e))? {
            let path = entry.map_err(|e| io_error(dir, "list directory", e))?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
            if path.is_dir() {
                walk(&path, out)?;
            } else if name.ends_with(".a3m") || name.ends_with(".sto") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for d in dirs {
        walk(d, &mut out)?;
    }
    out.sort();
    Ok(out)
}

/// The rows of an alignment, in order, each row's segments joined: A3M is FASTA; Stockholm is
/// `name aligned-text` lines in blocks, with `#` annotation lines and a `//` terminator.
fn alignment_rows(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, "read", e))?;
    let mut rows: Vec<(String, String)> = Vec::new();
    let stockholm = text.starts_with("# STOCKHOLM");
    let mut index = std::collections::HashMap::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') || line == "//" {
            continue;
        }
        if stockholm {
            let Some((name, seq)) = line.split_once(char::is_whitespace) else { continue };
            let i = *index.entry(name.to_owned()).or_insert_with(|| {
                rows.push((name.to_owned(), String::new()));
                rows.len() - 1
            });
            rows[i].1.push_str(seq.trim());
        } else if let Some(header) = line.strip_prefix('>') {
            rows.push((header.split_whitespace().next().unwrap_or_default().to_owned(), String::new()));
        } else if let Some(last) = rows.last_mut() {
            last.1.push_str(line.trim());
        }
    }
    Ok(rows)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PolymerKind {
    Protein,
    Rna,
}

/// A protein or RNA `_entity_poly` row, its sequence already mapped to the corpus alphabet.
struct PolymerEntity {
    pdb_id: String,
    entity_id: String,
    kind: PolymerKind,
    sequence: String,
}

fn polymer_entities(path: &Path) -> Result<Vec<PolymerEntity>> {
    let file = CifFile::read(path)?;
    let mut out = Vec::new();
    for block in &file.blocks {
        let entry = block.require("entry")?.column("id")?;
        let pdb_id = if entry.is_empty() { None } else { entry.as_str(0)? };
        let pdb_id = pdb_id.ok_or_else(|| entry.value_error(0, "an entry id", "none"))?.to_lowercase();
        let Some(poly) = block.category("entity_poly") else {
            continue;
        };
        let (ids, types, seqs) =
            (poly.column("entity_id")?, poly.column("type")?, poly.column("pdbx_seq_one_letter_code_can")?);
        for row in 0..poly.row_count() {
            let kind = match types.as_str(row)?.as_deref() {
                Some("polypeptide(L)") => PolymerKind::Protein,
                Some("polyribonucleotide") => PolymerKind::Rna,
                _ => continue,
            };
            let Some(raw) = seqs.as_str(row)? else {
                continue;
            };
            let sequence = to_alphabet(kind, &raw);
            if sequence.is_empty() {
                continue;
            }
            let entity_id = ids.as_str(row)?.unwrap_or_default().into_owned();
            out.push(PolymerEntity { pdb_id: pdb_id.clone(), entity_id, kind, sequence });
        }
    }
    Ok(out)
}

/// The structure files of `dir`, sorted by name; an empty directory is an error.
fn structure_files(dir: &Path) -> Result<Vec<PathBuf>> {
    const SUFFIXES: [&str; 4] = [".cif", ".cif.gz", ".bcif", ".bcif.gz"];
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, "list directory", e))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_error(dir, "list directory", e))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
        if SUFFIXES.iter().any(|s| name.ends_with(s)) {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(io_error(
            dir,
            "find mmCIF files",
            std::io::Error::new(std::io::ErrorKind::NotFound, "no .cif, .cif.gz, .bcif or .bcif.gz files"),
        ));
    }
    Ok(paths)
}

fn io_error(path: &Path, action: &str, source: std::io::Error) -> DataError {
    DataError::Io { path: path.to_owned(), action: action.to_owned(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_are_mapped_to_the_corpus_alphabets() {
        let dir = tempfile::tempdir().unwrap();
        let cif = "data_9XYZ\n_entry.id 9XYZ\nloop_\n_entity_poly.entity_id\n_entity_poly.type\n\
            _entity_poly.pdbx_seq_one_letter_code_can\n\
            1 'polypeptide(L)'\n;MKU\nBZA\n;\n2 polyribonucleotide 'ACGUTI'\n3 polydeoxyribonucleotide ACGT\n\
            4 'polypeptide(L)' ?\n";
        std::fs::write(dir.path().join("9xyz.cif"), cif).unwrap();
        let entities = polymer_entities(&dir.path().join("9xyz.cif")).unwrap();
        let got: Vec<_> =
            entities.iter().map(|e| (e.pdb_id.as_str(), e.entity_id.as_str(), e.kind, e.sequence.as_str())).collect();
        assert_eq!(got, [("9xyz", "1", PolymerKind::Protein, "MKXXXA"), ("9xyz", "2", PolymerKind::Rna, "ACGUNN")]);
    }
}
