//! Exit codes, stable across releases (documented in the README and `helico --help`).

use crate::config::error::Invalid;

/// The command did what was asked (including "an identical run already completed").
pub const OK: u8 = 0;
/// The work itself failed: training diverged, a file could not be written, a run crashed.
pub const FAILURE: u8 = 1;
/// The input is wrong: arguments, experiment files, overrides, data files, unknown runs.
pub const INVALID_INPUT: u8 = 2;
/// Interrupted by SIGINT/SIGTERM; the run is resumable with `helico run --resume`.
pub const INTERRUPTED: u8 = 130;

/// The help text listing the codes.
pub const HELP: &str = "Exit codes: 0 success · 1 the work failed · 2 invalid input (arguments, experiment, data, unknown run) · 130 interrupted (resumable)";

/// An error caused by what the user gave rather than by the work: exits with `INVALID_INPUT`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Interruption by a signal, after the run state was saved.
#[derive(Debug, thiserror::Error)]
#[error("interrupted at step {step}; continue with `helico run --resume {run}`")]
pub struct Interrupted {
    pub step: u64,
    pub run: String,
}

/// The exit code for an error chain.
pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<Interrupted>() {
            return INTERRUPTED;
        }
        let bad_snapshot = matches!(cause.downcast_ref(), Some(crate::run::error::RunError::Snapshot { .. }));
        if cause.is::<Invalid>() || cause.is::<BadInput>() || bad_snapshot {
            return INVALID_INPUT;
        }
    }
    FAILURE
}
