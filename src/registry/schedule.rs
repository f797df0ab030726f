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

impl Schedule {
    /// The factor on the peak learning rate at update `step` (0-based) of `total`.
    pub fn factor(&self, step: u64, total: u64) -> f64 {
        match self {
            Schedule::Constant(_) => 1.0,
            Schedule::WarmupCosine(s) => s.factor(step, total),
            Schedule::WarmupLinear(s) => s.factor(step, total),
        }
    }

    pub fn warmup_steps(&self) -> u64 {
        match self {
            Schedule::Constant(_) => 0,
            Schedule::WarmupCosine(s) => s.warmup_steps,
            Schedule::WarmupLinear(s) => s.warmup_steps,
        }
    }
}
