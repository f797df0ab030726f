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

/// Linear warm-up over `warmup` updates: the factor of update `step` (0-based), or None after.
fn warmup(step: u64, warmup: u64) -> Option<f64> {
    (step < warmup).then(|| (step + 1) as f64 / warmup as f64)
}

/// Fraction of the decay phase done at update `step` of `total`.
fn progress(step: u64, warmup: u64, total: u64) -> f64 {
    let span = total.saturating_sub(warmup).saturating_sub(1).max(1);
    (step.saturating_sub(warmup) as f64 / span as f64).min(1.0)
}

impl WarmupCosineConfig {
    pub fn factor(&self, step: u64, total: u64) -> f64 {
        warmup(step, self.warmup_steps).unwrap_or_else(|| {
            let p = progress(step, self.warmup_steps, total);
            self.min_lr_ratio + (1.0 - self.min_lr_ratio) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
        })
    }
}

impl WarmupLinearConfig {
    pub fn factor(&self, step: u64, total: u64) -> f64 {
        warmup(step, self.warmup_steps)
            .unwrap_or_else(|| 1.0 - (1.0 - self.min_lr_ratio) * progress(step, self.warmup_steps, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_decay_to_the_floor() {
        let cos = WarmupCosineConfig { warmup_steps: 10, min_lr_ratio: 0.1 };
        assert_eq!(cos.factor(0, 100), 0.1);
        assert_eq!(cos.factor(9, 100), 1.0);
        assert_eq!(cos.factor(10, 100), 1.0);
        assert!((cos.factor(99, 100) - 0.1).abs() < 1e-12);
        let mid = cos.factor(10 + 89 / 2, 100);
        assert!(mid > 0.1 && mid < 1.0);
        let lin = WarmupLinearConfig { warmup_steps: 0, min_lr_ratio: 0.0 };
        assert_eq!(lin.factor(0, 11), 1.0);
        assert!((lin.factor(5, 11) - 0.5).abs() < 1e-12);
        assert_eq!(lin.factor(10, 11), 0.0);
    }
}
