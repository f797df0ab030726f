//! The one error type of `data/`: every failure of the CIF readers, the CCD loader, the SMILES
//! writer and the demo-corpus builder. Messages name the file, the place in it (line for text
//! CIF, byte offset for MessagePack, category/column for BinaryCIF) and expected vs got.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Result of every fallible function in `data/`.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Everything that can go wrong while reading structure data or building corpora from it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file or directory could not be read, written or renamed.
    #[error("{path}: {action}: {source}")]
    Io {
        path: PathBuf,
        /// What was being done ("read", "write", "rename to …").
        action: String,
        source: io::Error,
    },

    /// A file starts with the gzip magic bytes but does not decompress.
    #[error("{path}: not a valid gzip stream: {source}")]
    Gzip { path: PathBuf, source: io::Error },

    /// The text reader addresses values with 32-bit offsets.
    #[error("{path}: {size} bytes (after decompression) is too large; the text CIF reader takes at most 4 GiB")]
    FileTooLarge { path: PathBuf, size: usize },

    /// Text CIF grammar violation: a token appeared where another was expected.
    #[error("{path}:{line}: expected {expected}, got {got}")]
    CifSyntax { path: PathBuf, line: usize, expected: &'static str, got: String },

    /// A `'` or `"` quoted value whose closing quote (followed by whitespace) is not on its line.
    #[error(
        "{path}:{line}: unterminated {quote}-quoted value {got} (a closing {quote} followed by whitespace is expected on the same line)"
    )]
    UnterminatedQuote { path: PathBuf, line: usize, quote: char, got: String },

    /// A `;` text field whose closing `;` at the start of a line never comes.
    #[error("{path}:{line}: unterminated text field (expected a line starting with ';' before the end of the file)")]
    UnterminatedTextField { path: PathBuf, line: usize },

    /// A `loop_` whose value count is not a multiple of its column count.
    #[error("{path}:{line}: loop of _{category} has {values} values, expected a multiple of its {columns} columns")]
    LoopValueCount { path: PathBuf, line: usize, category: String, columns: usize, values: usize },

    /// The same category or item appears twice in one data block.
    #[error("{path}:{line}: _{category}.{column} appears twice in data block {block:?}")]
    DuplicateItem { path: PathBuf, line: usize, block: String, category: String, column: String },

    /// The MessagePack framing of a BinaryCIF file is broken (truncated, unknown marker, trailing bytes).
    #[error("{path}: MessagePack byte {offset}: expected {expected}, got {got}")]
    MsgPack { path: PathBuf, offset: usize, expected: &'static str, got: String },

    /// Valid MessagePack, but not the BinaryCIF layout (missing key, wrong type, bad encoding).
    #[error("{path}: BinaryCIF {place}: expected {expected}, got {got}")]
    BinaryCif { path: PathBuf, place: String, expected: String, got: String },

    /// A data block lacks a category the caller requires.
    #[error("{path}: data block {block:?} has no category _{category}")]
    MissingCategory { path: PathBuf, block: String, category: String },

    /// A category lacks a column the caller requires.
    #[error("{path}: _{category} has no column {column:?} (it has: {available})")]
    MissingColumn { path: PathBuf, category: String, column: String, available: String },

    /// A value cannot be read as the requested type.
    #[error("{path}: _{category}.{column} row {row}: expected {expected}, got {got}")]
    Value { path: PathBuf, category: String, column: String, row: usize, expected: &'static str, got: String },

    /// A Chemical Component Dictionary entry is inconsistent (e.g. a bond names an unknown atom).
    #[error("{path}: CCD component {comp_id:?}: expected {expected}, got {got}")]
    Ccd { path: PathBuf, comp_id: String, expected: String, got: String },

    /// A CCD component has no SMILES representation under helico's writer.
    #[error("component {comp_id:?}: no SMILES: {kind}")]
    Smiles { comp_id: String, kind: SmilesProblem },
}

/// Why a CCD component could not be written as SMILES.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SmilesProblem {
    /// The component has no atom other than hydrogen.
    NoHeavyAtoms,
    /// An element symbol that is not in the periodic table (the CCD uses `X` for unknown atoms).
    UnknownElement(String),
    /// A bond of order `AROM` or another order without a Kekulé form.
    NonKekuleBond(String),
    /// A bond from an atom to itself, or the same atom pair bonded twice.
    BadBond(String),
    /// A bracket atom needs a hydrogen count above 9 or a charge beyond ±15, which SMILES cannot hold.
    OutOfRange(String),
    /// More than 99 ring closures: ring-bond numbers would run out.
    TooManyRings(usize),
    /// purr refused the graph or could not read back the string it wrote.
    Purr(String),
}

impl fmt::Display for SmilesProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoHeavyAtoms => write!(f, "no heavy atoms"),
            Self::UnknownElement(e) => write!(f, "unknown element {e:?}"),
            Self::NonKekuleBond(b) => write!(f, "bond order without a Kekulé form: {b}"),
            Self::BadBond(b) => write!(f, "bad bond: {b}"),
            Self::OutOfRange(b) => write!(f, "out of SMILES range: {b}"),
            Self::TooManyRings(n) => write!(f, "{n} ring closures, expected at most 99"),
            Self::Purr(m) => write!(f, "purr: {m}"),
        }
    }
}

impl SmilesProblem {
    /// A short label without the per-component detail, for summaries ("unknown element").
    pub fn label(&self) -> &'static str {
        match self {
            Self::NoHeavyAtoms => "no heavy atoms",
            Self::UnknownElement(_) => "unknown element",
            Self::NonKekuleBond(_) => "non-Kekulé bond",
            Self::BadBond(_) => "bad bond",
            Self::OutOfRange(_) => "out of SMILES range",
            Self::TooManyRings(_) => "too many rings",
            Self::Purr(_) => "purr",
        }
    }
}
