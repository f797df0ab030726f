//! helico: a declarative experiment engine for AlphaFold3-like models and sequence
//! diffusion models, on libtorch.

pub mod data;
