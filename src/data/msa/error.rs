//! The one error type of `data/msa/`: reading A3M and Stockholm alignments (plain or gzipped,
//! from files or tar members), combining them, and the tar offset index. Messages name the
//! file (or `archive:member`), the line and the record, and say what was expected.

use std::io;
use std::path::PathBuf;

/// Result of every fallible function in `data/msa/`.
pub type Result<T, E = MsaError> = std::result::Result<T, E>;

/// Everything that can go wrong with multiple sequence alignments and their archives.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MsaError {
    /// A file could not be read or written.
    #[error("{path}: {action}: {source}")]
    Io { path: PathBuf, action: &'static str, source: io::Error },

    /// The bytes start with the gzip magic but do not decompress.
    #[error("{origin}: not a valid gzip stream: {source}")]
    Gzip { origin: String, source: io::Error },

    /// A line of an A3M or Stockholm file breaks the format.
    #[error("{origin}:{line}: {record}expected {expected}, got {got}")]
    Syntax {
        /// The file, or `archive:member`.
        origin: String,
        line: usize,
        /// `record "NAME": ` when the problem belongs to one sequence, else empty.
        record: String,
        expected: String,
        got: String,
    },

    /// A row's aligned length differs from the query's (the first row's).
    #[error(
        "{origin}:{line}: record {name:?} has {got} aligned columns, the query (first record) has {expected}; \
         every row must align to every query position (A3M: upper case and '-'; insertions in lower case)"
    )]
    RaggedRow { origin: String, line: usize, name: String, expected: usize, got: usize },

    /// Alignments meant to describe one chain have different queries.
    #[error(
        "{what}: query {index} differs from the first query ({first:?}…{got:?}); alignments of one chain must share the query"
    )]
    QueryMismatch { what: String, index: usize, first: String, got: String },

    /// A column index outside the alignment (e.g. a crop computed for another chain).
    #[error("column {column} requested from an alignment of {width} columns")]
    ColumnOutOfRange { column: usize, width: usize },

    /// Alignments stacked side by side (paired chains) have different depths.
    #[error("alignment {index} has {got} rows, the first has {expected}; pair or pad them before joining columns")]
    DepthMismatch { index: usize, expected: usize, got: usize },

    /// The tar archive itself is unreadable or malformed.
    #[error("{archive}: not a readable tar archive: {source}")]
    Tar { archive: PathBuf, source: io::Error },

    /// An index file exists but is not a valid index (truncated, overwritten, wrong version).
    #[error("{index}: corrupt tar index ({problem}); delete it and it is rebuilt from {archive} on the next open")]
    CorruptIndex { index: PathBuf, archive: PathBuf, problem: String },

    /// A member name that the archive does not contain.
    #[error("{archive}: no member {name:?} ({members} members indexed)")]
    NoMember { archive: PathBuf, name: String, members: usize },
}
