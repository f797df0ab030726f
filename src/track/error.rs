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

    /// A `.wandb` file that is not W&B's transaction log, or holds a record we cannot decode.
    #[error("{path} is not a W&B offline run log: {problem}; move it aside to start the offline run afresh")]
    WandbFormat { path: PathBuf, problem: String },

    /// An `hf://` reference that does not parse.
    #[error(
        "`{reference}` is not a usable Hugging Face reference: {problem}; write hf://owner/name@revision/path, or hf://datasets/owner/name@revision/path for a dataset"
    )]
    HfReference { reference: String, problem: String },

    /// The reference is not in the local cache, and helico does not download.
    #[error(
        "{reference} is not in the Hugging Face cache {cache} ({detail}); helico does not download: fetch it with `{fetch}` where there is network and bring that cache here, or point HF_HUB_CACHE at a cache that has it"
    )]
    HfNotCached { reference: String, cache: PathBuf, detail: String, fetch: String },

    /// The cache records that the hub has no such file at that commit.
    #[error(
        "{reference}: the hub has no such file at commit {commit} (the cache holds a .no_exist marker); check the path and revision"
    )]
    HfNoSuchFile { reference: String, commit: String },

    /// A cached blob whose content does not match the sha256 it is named by.
    #[error(
        "{reference}: the cached blob {blob} has sha256 {got}, not the one it is named by; delete it and fetch the file again"
    )]
    HfCorrupt { reference: String, blob: PathBuf, got: String },
}
