//! The training loop (STYLE H15): resume, then per step batches → forward/backward with
//! accumulation → clip → finite check → optimiser, schedule, EMA → log / eval / checkpoint.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Steps, batch shape and the cadence of logging, evaluation and checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Optimiser steps.
    #[schemars(range(min = 1))]
    pub steps: u64,
    /// Packed windows per micro-batch.
    #[schemars(range(min = 1))]
    pub batch_size: i64,
    /// Micro-batches accumulated per optimiser step (global batch = batch_size × grad_accum).
    #[schemars(range(min = 1))]
    pub grad_accum: i64,
    /// Clip the global gradient norm to this value (0 disables clipping).
    #[schemars(range(min = 0.0))]
    pub clip_grad_norm: f64,
    /// Decay of the exponential moving average of the weights (0 disables the EMA).
    #[schemars(range(min = 0.0, max = 1.0))]
    pub ema_decay: f64,
    /// Held-out batches per evaluation.
    #[schemars(range(min = 1))]
    pub eval_batches: u64,
    /// Log training metrics every this many steps.
    #[schemars(extend("x-nonsemantic" = true), range(min = 1))]
    pub log_every: u64,
    /// Evaluate on the held-out split every this many steps (and at the end).
    #[schemars(extend("x-nonsemantic" = true), range(min = 1))]
    pub eval_every: u64,
    /// Write a checkpoint every this many steps (and at the end).
    #[schemars(extend("x-nonsemantic" = true), range(min = 1))]
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk besides the final one (older ones are deleted).
    #[schemars(extend("x-nonsemantic" = true))]
    pub keep_checkpoints: u64,
}

impl Default for TrainConfig {
    /// AtomWell's recipe: batch 16 × accumulation 16, clip 5.0.
    fn default() -> Self {
        Self {
            steps: 100_000,
            batch_size: 16,
            grad_accum: 16,
            clip_grad_norm: 5.0,
            ema_decay: 0.0,
            eval_batches: 8,
            log_every: 10,
            eval_every: 1000,
            checkpoint_every: 1000,
            keep_checkpoints: 2,
        }
    }
}
