//! Data: parsing, tokenizing, featurising and batching.

pub mod seqs;
pub mod vocab;
