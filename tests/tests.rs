//! Integration tests: the real `helico` binary and library on real files.

mod config;
mod provenance;
mod support;
