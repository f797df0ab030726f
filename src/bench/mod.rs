//! Benchmarks whose results are committed under `bench/results/` with the command that made them.

pub mod parse;
