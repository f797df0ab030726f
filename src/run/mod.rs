//! Runs: what ran, recorded so it can be reproduced and compared (DESIGN.md, "Run identity and
//! snapshot"): directories, lifecycle, git state and dirty patch, environment, secret redaction.

pub mod dir;
pub mod env;
pub mod error;
pub mod git;
pub mod info;
pub mod launch;
pub mod sample;
pub mod secrets;
pub mod select;
pub mod snapshot;
pub mod spawn;
