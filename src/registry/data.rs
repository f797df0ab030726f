//! Slot `data`: where training examples come from.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::data::seqs::SequencesConfig;

/// The data source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Data {
    /// SMILES, protein and RNA sequence files, packed into fixed windows.
    Sequences(SequencesConfig),
}

impl Default for Data {
    fn default() -> Self {
        Data::Sequences(SequencesConfig::default())
    }
}
