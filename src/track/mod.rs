//! Trackers: what a run reports while it runs and after: `metrics.jsonl`, progress on the
//! terminal, and plots of the curves.

pub mod error;
pub mod metrics;
pub mod plot;
pub mod progress;
