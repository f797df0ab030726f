//! Data: from files on disk to batches. CIF readers (text and BinaryCIF), the Chemical
//! Component Dictionary and SMILES for its components, the demo corpus, sequence files, the
//! LM vocabulary, packing and dataset, the data manifest behind a run's data hash, multiple
//! sequence alignments, and inference inputs.

pub mod ccd;
pub mod cif;
pub mod demo;
mod error;
pub mod inputs;
pub mod lm;
pub mod manifest;
pub mod msa;
pub mod packing;
pub mod seqs;
pub mod smiles;
pub mod vocab;

pub use error::{DataError, Result, SmilesProblem};
