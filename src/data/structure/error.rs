//! The one error type of structures, tokens, features and crops. Every message names the file,
//! the structure and the place in the file (line for text mmCIF, category and row for
//! BinaryCIF) or in the structure (chain and residue), then what was expected and what was found.

use std::path::PathBuf;

use crate::data::DataError;

/// Result of every fallible function in `data::structure`, `tokenize`, `features` and `crop`.
pub type Result<T, E = StructureError> = std::result::Result<T, E>;

/// Everything that can go wrong between a structure file and model features.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StructureError {
    /// The file could not be read or is not valid CIF/BinaryCIF (truncated, corrupt, missing
    /// category or column): the reader's error, which names file and place.
    #[error("{0}")]
    Cif(#[from] DataError),

    /// The file holds no data block at all.
    #[error("{path}: no data block (expected one `data_` block per structure)")]
    NoBlock { path: PathBuf },

    /// A record of the file has a value the structure cannot be built from.
    #[error("{path}: structure {structure}: {place}: expected {expected}, got {got}")]
    Record { path: PathBuf, structure: String, place: String, expected: String, got: String },

    /// A residue or ligand names a chemical component the CCD does not have.
    #[error(
        "{path}: structure {structure}: {place}: component {comp_id:?} is not in the Chemical Component Dictionary (update data/ccd/components.bcif, or drop this residue)"
    )]
    UnknownComponent { path: PathBuf, structure: String, place: String, comp_id: String },

    /// A biological assembly was requested that the file does not define, or whose operators are broken.
    #[error("{path}: structure {structure}: assembly {assembly:?}: {problem}")]
    Assembly { path: PathBuf, structure: String, assembly: String, problem: String },

    /// Nothing is left to model after the first model, hydrogens and waters are taken out.
    #[error(
        "{path}: structure {structure}: no atoms left after keeping the first model and dropping hydrogens and waters"
    )]
    NoAtoms { path: PathBuf, structure: String },
}
