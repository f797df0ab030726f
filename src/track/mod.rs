//! Trackers: what a run reports while it runs.

pub mod metrics;
pub mod progress;
