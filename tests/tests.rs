//! Integration tests: the real `helico` binary and library on real files.

mod bench;
mod ccd;
mod cif;
mod config;
mod d3pm;
mod data_support;
mod demo;
mod gpu;
mod provenance;
mod runs;
mod smiles;
mod support;
