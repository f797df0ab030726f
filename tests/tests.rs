//! Integration tests: the real `helico` binary and library on real files.

mod ablate;
mod bench;
mod ccd;
mod cif;
mod config;
mod crop;
mod d3pm;
mod data_support;
mod demo;
mod diff;
mod features;
mod gpu;
mod inputs;
mod loader;
mod msa;
mod msa_features;
mod preprocess;
mod provenance;
mod runs;
mod smiles;
mod structure;
mod support;
mod tokenize;
mod track;
