//! helico: a declarative experiment engine for AlphaFold3-like models and sequence
//! diffusion models, on libtorch.

pub mod ablate;
pub mod atomic;
pub mod bench;
pub mod config;
pub mod data;
pub mod exit;
pub mod hash;
pub mod losses;
pub mod models;
pub mod nn;
pub mod registry;
pub mod run;
pub mod runtime;
pub mod sys;
pub mod track;
pub mod train;
