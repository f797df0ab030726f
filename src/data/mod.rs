//! Data: from files on disk to batches. CIF readers (text and BinaryCIF), the Chemical
//! Component Dictionary and SMILES for its components, the demo corpus, sequence files and
//! the LM dataset, and the data manifest behind a run's data hash.

pub mod ccd;
pub mod cif;
pub mod demo;
mod error;
pub mod lm;
pub mod manifest;
pub mod seqs;
pub mod smiles;

pub use error::{DataError, Result, SmilesProblem};
