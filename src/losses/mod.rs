//! Training losses, one file per loss family.

pub mod d3pm;
