//! Slot `optimizer`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::train::adamw::AdamWConfig;

/// The optimiser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Optimizer {
    /// AdamW with decoupled weight decay and savable state.
    Adamw(AdamWConfig),
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::Adamw(AdamWConfig::default())
    }
}

impl Optimizer {
    /// The peak learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            Optimizer::Adamw(o) => o.lr,
        }
    }
}
