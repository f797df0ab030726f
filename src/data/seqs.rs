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
    /// Path relative to the working directory: `.fasta`/`.fa`/`.faa`, `.smi` (SMILES in the
    /// first column) or `.txt` (one sequence per line), each optionally `.gz`.
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
