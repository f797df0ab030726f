//! Runs: what ran, recorded so it can be reproduced and compared (DESIGN.md, "Run identity and
//! snapshot"): directories, lifecycle, git state and dirty patch, environment, secret redaction;
//! and reading runs back to compare (`diff`), list (`ls`) and freeze them.

pub mod compare;
pub mod diff;
pub mod dir;
pub mod env;
pub mod error;
pub mod freeze;
pub mod git;
pub mod info;
pub mod launch;
pub mod ls;
pub mod publish;
pub mod sample;
pub mod secrets;
pub mod select;
pub mod snapshot;
pub mod spawn;
