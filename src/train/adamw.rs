//! AdamW (Loshchilov & Hutter 2019) over a VarStore, with state that checkpoints can save:
//! tch's own optimizer cannot export its moments, so resumed runs would restart Adam.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// AdamW with decoupled weight decay; norms and biases form a group without decay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AdamWConfig {
    /// Peak learning rate (the schedule scales it).
    #[schemars(range(min = 0.0))]
    pub lr: f64,
    /// (β1, β2), the decay rates of the first and second moment estimates.
    pub betas: [f64; 2],
    /// ε added to the second-moment root.
    pub eps: f64,
    /// Decoupled weight decay λ.
    #[schemars(range(min = 0.0))]
    pub weight_decay: f64,
    /// Also decay norm gains and biases (usually off).
    pub decay_norms_and_biases: bool,
}

impl Default for AdamWConfig {
    /// AtomWell's optimiser: lr 1e-5, β (0.9, 0.95), weight decay 0.1.
    fn default() -> Self {
        Self { lr: 1e-5, betas: [0.9, 0.95], eps: 1e-8, weight_decay: 0.1, decay_norms_and_biases: false }
    }
}

impl AdamWConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, b) in self.betas.iter().enumerate() {
            if !(0.0..1.0).contains(b) {
                out.push(("betas".into(), format!("betas[{i}] = {b} must lie in [0, 1)")));
            }
        }
        if self.eps <= 0.0 {
            out.push(("eps".into(), format!("eps = {} must be positive", self.eps)));
        }
        out
    }
}
