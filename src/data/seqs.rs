//! The `sequences` data source: SMILES, protein and RNA sequences from FASTA, `.smi` or plain
//! text files (optionally gzipped), each file tagged with its domain.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which language a sequence is written in; the model embeds it (SMILES 0, protein 1, RNA 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    /// Small molecules as SMILES strings.
    Smiles,
    /// Proteins: the 20 standard amino acids and X.
    Protein,
    /// RNA: A, C, G, U and N.
    Rna,
}

impl Domain {
    pub const ALL: [Domain; 3] = [Domain::Smiles, Domain::Protein, Domain::Rna];

    /// The domain embedding index.
    pub fn index(self) -> i64 {
        match self {
            Domain::Smiles => 0,
            Domain::Protein => 1,
            Domain::Rna => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Domain::Smiles => "smiles",
            Domain::Protein => "protein",
            Domain::Rna => "rna",
        }
    }
}

/// Sequence files for the LM, packed into fixed windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SequencesConfig {
    /// The files to read, each with its domain.
    pub files: Vec<SequenceFile>,
    /// Tokens per packed window (sequences are cropped to fit one window).
    #[schemars(range(min = 4))]
    pub window: i64,
    /// Fraction of sequences held out for evaluation (chosen by a hash of the sequence, so
    /// the split does not depend on file order).
    #[schemars(range(min = 0.0, max = 0.5))]
    pub holdout_fraction: f64,
}

impl Default for SequencesConfig {
    fn default() -> Self {
        Self { files: Vec::new(), window: 2048, holdout_fraction: 0.02 }
    }
}

/// One input file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SequenceFile {
    /// Path relative to the working directory, or a Hugging Face reference
    /// (`hf://datasets/owner/name@revision/file`) read from the local hub cache:
    /// `.fasta`/`.fa`/`.faa`, `.smi` (SMILES in the first column) or `.txt` (one sequence per
    /// line), each optionally `.gz`.
    #[schemars(extend("x-nonsemantic" = true))]
    pub path: String,
    /// The domain of every sequence in the file.
    pub domain: Domain,
    /// Read at most this many sequences (0 reads all).
    #[serde(default)]
    pub limit: u64,
}

/// One sequence as read from a file, with where it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub domain: Domain,
    /// The sequence text (SMILES string, or residues in upper case).
    pub text: String,
    /// Its name in the file (FASTA header, second `.smi` column), or `line N`.
    pub name: String,
    pub file: std::path::PathBuf,
    /// 1-based line where the sequence starts.
    pub line: usize,
}

/// Why a sequence file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    /// The extension does not say how to read the file.
    #[error("{path}: unknown sequence file type; expected .fasta, .fa, .faa, .smi or .txt (optionally .gz)")]
    UnknownFormat { path: std::path::PathBuf },
    /// A FASTA file with sequence lines before the first `>` header.
    #[error("{path}:{line}: sequence data before the first FASTA header (`>name`)")]
    MissingHeader { path: std::path::PathBuf, line: usize },
    /// A FASTA record with a header but no residues.
    #[error("{path}:{line}: FASTA record `{name}` has no sequence")]
    EmptyRecord { path: std::path::PathBuf, line: usize, name: String },
    /// Not a single sequence in the file.
    #[error("{path}: no sequences found; the file is empty or only has comments")]
    Empty { path: std::path::PathBuf },
    /// An `hf://` path that is malformed or not in the local Hugging Face cache.
    #[error(transparent)]
    Hf(#[from] crate::track::error::TrackError),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Fasta,
    Smi,
    Text,
}

fn format_of(path: &std::path::Path) -> Option<Format> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let ext = name.rsplit_once('.')?.1;
    match ext {
        "fasta" | "fa" | "faa" | "fna" => Some(Format::Fasta),
        "smi" | "smiles" => Some(Format::Smi),
        "txt" => Some(Format::Text),
        _ => None,
    }
}

/// Read up to `limit` sequences (0: all) of one file. Blank lines and `#` comments are
/// skipped; residues are upper-cased (SMILES keep their case: it marks aromaticity).
pub fn read_file(file: &SequenceFile) -> Result<Vec<Record>, ReadError> {
    use std::io::Read;
    let path = crate::track::hf::local_path(&file.path)?;
    let format = format_of(&path).ok_or_else(|| ReadError::UnknownFormat { path: path.clone() })?;
    let io = |source| ReadError::Io { path: path.clone(), source };
    let raw = std::fs::read(&path).map_err(io)?;
    let mut text = String::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_string(&mut text).map_err(io)?;
    } else {
        text = String::from_utf8(raw).map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    }
    let limit = if file.limit == 0 { usize::MAX } else { file.limit as usize };
    let record = |text: String, name: String, line: usize| {
        let text = if file.domain == Domain::Smiles { text } else { text.to_ascii_uppercase() };
        Record { domain: file.domain, text, name, file: path.clone(), line }
    };
    let mut out = Vec::new();
    match format {
        Format::Fasta => {
            let mut current: Option<(String, usize, String)> = None;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with(';') {
                    continue;
                }
                if let Some(header) = line.strip_prefix('>') {
                    if out.len() >= limit {
                        current = None;
                        break;
                    }
                    if let Some((name, at, seq)) = current.take() {
                        if seq.is_empty() {
                            return Err(ReadError::EmptyRecord { path, line: at, name });
                        }
                        out.push(record(seq, name, at));
                    }
                    let name = header.split_whitespace().next().unwrap_or("").to_owned();
                    current = Some((name, i + 1, String::new()));
                } else {
                    let Some((_, _, seq)) = current.as_mut() else {
                        return Err(ReadError::MissingHeader { path, line: i + 1 });
                    };
                    seq.extend(line.split_whitespace());
                }
            }
            if let Some((name, at, seq)) = current {
                if seq.is_empty() {
                    return Err(ReadError::EmptyRecord { path, line: at, name });
                }
                if out.len() < limit {
                    out.push(record(seq, name, at));
                }
            }
        }
        Format::Smi | Format::Text => {
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if out.len() >= limit {
                    break;
                }
                let mut cols = line.split_whitespace();
                let seq = cols.next().unwrap_or_default().to_owned();
                let name = match format {
                    Format::Smi => cols.next().map(str::to_owned),
                    _ => None,
                };
                out.push(record(seq, name.unwrap_or_else(|| format!("line {}", i + 1)), i + 1));
            }
        }
    }
    if out.is_empty() {
        return Err(ReadError::Empty { path });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &std::path::Path, name: &str, text: &str) -> SequenceFile {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        SequenceFile { path: path.display().to_string(), domain: Domain::Protein, limit: 0 }
    }

    #[test]
    fn fasta_records_span_lines_and_respect_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = write(dir.path(), "a.fasta", ">one desc\nMKV\nlle\n\n>two\nAC\n>three\nGG\n");
        let recs = read_file(&f).expect("reads");
        assert_eq!(
            recs.iter().map(|r| (r.name.as_str(), r.text.as_str(), r.line)).collect::<Vec<_>>(),
            [("one", "MKVLLE", 1), ("two", "AC", 5), ("three", "GG", 7)]
        );
        let two = read_file(&SequenceFile { limit: 2, ..f }).expect("reads");
        assert_eq!(two.len(), 2);
    }

    #[test]
    fn smi_keeps_case_and_names_and_gzip_is_transparent() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.smi.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).expect("create"),
            flate2::Compression::default(),
        );
        gz.write_all(b"# comment\nc1ccccc1\tBNZ\nCCO\n").expect("gz");
        gz.finish().expect("finish");
        let f = SequenceFile { path: path.display().to_string(), domain: Domain::Smiles, limit: 0 };
        let recs = read_file(&f).expect("reads");
        assert_eq!(
            recs.iter().map(|r| (r.text.as_str(), r.name.as_str())).collect::<Vec<_>>(),
            [("c1ccccc1", "BNZ"), ("CCO", "line 3")]
        );
    }

    #[test]
    fn malformed_files_name_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = read_file(&write(dir.path(), "b.fasta", "MKV\n>x\nA\n")).unwrap_err().to_string();
        assert!(e.ends_with("b.fasta:1: sequence data before the first FASTA header (`>name`)"), "{e}");
        let e = read_file(&write(dir.path(), "c.fasta", ">x\n>y\nA\n")).unwrap_err().to_string();
        assert!(e.contains("c.fasta:1: FASTA record `x` has no sequence"), "{e}");
        let e = read_file(&write(dir.path(), "d.txt", "\n# nothing\n")).unwrap_err().to_string();
        assert!(e.contains("no sequences found"), "{e}");
        let e = read_file(&write(dir.path(), "e.csv", "A\n")).unwrap_err().to_string();
        assert!(e.contains("unknown sequence file type"), "{e}");
        let e = read_file(&SequenceFile { path: "/nonexistent/x.fasta".into(), domain: Domain::Rna, limit: 0 })
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot read /nonexistent/x.fasta"), "{e}");
    }
}
