//! D3PM cross-entropy: the denoiser's prediction of x0 scored against x0 (Austin et al. 2021,
//! the x0-parameterised auxiliary loss; for the absorbing process it is the ELBO's per-step
//! term up to a step-dependent weight).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Cross-entropy against the clean tokens x0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct D3pmCeConfig {
    /// Score only masked positions (the unmasked ones are copied through by construction).
    pub masked_only: bool,
    /// Label smoothing ε of the cross-entropy.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub label_smoothing: f64,
}

impl Default for D3pmCeConfig {
    fn default() -> Self {
        Self { masked_only: true, label_smoothing: 0.0 }
    }
}
