//! Integration tests: the real `helico` binary and library on real files.

mod ccd;
mod cif;
mod config;
mod d3pm;
mod data_support;
mod demo;
mod inputs;
mod msa;
mod provenance;
mod runs;
mod smiles;
mod support;
