//! Slot `loss`: the training objective.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::losses::d3pm::D3pmCeConfig;

/// The training objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Loss {
    /// Cross-entropy of the predicted x0 against the clean tokens.
    D3pmCe(D3pmCeConfig),
}

impl Default for Loss {
    fn default() -> Self {
        Loss::D3pmCe(D3pmCeConfig::default())
    }
}
