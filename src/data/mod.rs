//! Structure data: CIF readers (text and BinaryCIF), the Chemical Component Dictionary, SMILES
//! for CCD components, and the demo corpus built from them.

pub mod ccd;
pub mod cif;
pub mod demo;
mod error;
pub mod smiles;

pub use error::{DataError, Result, SmilesProblem};
