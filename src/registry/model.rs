//! Slot `model`: the model family.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::models::d3pm::D3pmLmConfig;

/// The model family and its architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Model {
    /// D3PM masked discrete-diffusion transformer over SMILES, protein and RNA sequences.
    D3pmLm(D3pmLmConfig),
}

impl Default for Model {
    fn default() -> Self {
        Model::D3pmLm(D3pmLmConfig::default())
    }
}
