//! Data: from files on disk to batches.

pub mod manifest;
pub mod seqs;
