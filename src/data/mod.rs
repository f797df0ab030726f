//! Data: from files on disk to batches. CIF readers (text and BinaryCIF), the Chemical
//! Component Dictionary and SMILES for its components, the demo corpus, sequence files, the
//! LM vocabulary, packing and dataset, the data manifest behind a run's data hash, and the AF3
//! path: structures, tokens, features and crops.

pub mod ccd;
pub mod cif;
pub mod crop;
pub mod demo;
mod error;
pub mod features;
pub mod lm;
pub mod manifest;
pub mod packing;
pub mod seqs;
pub mod smiles;
pub mod structure;
pub mod tokenize;
pub mod vocab;

pub use error::{DataError, Result, SmilesProblem};
