//! Learning-rate schedules: the factor applied to the optimiser's peak rate at each step.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The peak rate at every step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConstantConfig {}

/// Linear warm-up from 0 to the peak, then cosine decay to `min_lr_ratio` × peak at the last
/// step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WarmupCosineConfig {
    /// Steps of linear warm-up.
    pub warmup_steps: u64,
    /// Final rate as a fraction of the peak.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_lr_ratio: f64,
}

impl Default for WarmupCosineConfig {
    fn default() -> Self {
        Self { warmup_steps: 1000, min_lr_ratio: 0.1 }
    }
}

/// Linear warm-up from 0 to the peak, then linear decay to `min_lr_ratio` × peak at the last
/// step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WarmupLinearConfig {
    /// Steps of linear warm-up.
    pub warmup_steps: u64,
    /// Final rate as a fraction of the peak.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_lr_ratio: f64,
}

impl Default for WarmupLinearConfig {
    fn default() -> Self {
        Self { warmup_steps: 1000, min_lr_ratio: 0.0 }
    }
}
