//! Data: parsing, tokenizing, featurising and batching.

pub mod packing;
pub mod seqs;
pub mod vocab;
