//! Slot `schedule`: the learning-rate schedule.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::train::schedule::{ConstantConfig, WarmupCosineConfig, WarmupLinearConfig};

/// The learning-rate schedule over `train.steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Schedule {
    /// The peak rate throughout.
    Constant(ConstantConfig),
    /// Linear warm-up, then cosine decay.
    WarmupCosine(WarmupCosineConfig),
    /// Linear warm-up, then linear decay.
    WarmupLinear(WarmupLinearConfig),
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::WarmupCosine(WarmupCosineConfig::default())
    }
}
