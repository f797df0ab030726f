//! Runs: directories, snapshots, identity and lifecycle.

pub mod dir;
pub mod info;
