//! Model families.

pub mod d3pm;
