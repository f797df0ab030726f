//! helico's integration tests: one target (`autotests = false`), one module per area.

mod ccd;
mod cif;
mod data_support;
mod demo;
mod smiles;
