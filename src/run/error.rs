//! Errors of the run layer (`run/`): provenance capture, and reading a run's snapshot back.

use std::path::PathBuf;

use thiserror::Error;

/// What went wrong while recording a run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunError {
    /// libgit2 failed inside a repository (corrupt object, unreadable index, permissions).
    /// A directory outside any repository is not an error: it is recorded as state `unknown`.
    #[error("reading the git state of {dir}: {source}; run `git status` there to see what git reports")]
    Git { dir: PathBuf, source: git2::Error },

    /// A file or directory needed for the snapshot could not be read.
    #[error("reading {path}: {source}; check that it exists and is readable")]
    Io { path: PathBuf, source: std::io::Error },

    /// A file of a run's snapshot is missing or does not parse, so the run cannot be compared
    /// or frozen. This is bad input (exit code 2): the run directory, not the work, is at fault.
    #[error("{path} {problem}; the run directory is incomplete or was edited: restore the file or name another run")]
    Snapshot { path: PathBuf, problem: String },
}
