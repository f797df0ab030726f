//! What can go wrong while tracking a run: one error type for `track/`, each variant naming
//! the file or reference involved and what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrackError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// plotters could not draw or encode a figure.
    #[error("cannot draw {path}: {message}")]
    Plot { path: PathBuf, message: String },
}
