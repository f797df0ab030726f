//! Runs: what ran, recorded so it can be reproduced and compared (DESIGN.md, "Run identity and
//! snapshot"). Provenance capture: git state and dirty patch, environment, secret redaction.

pub mod env;
pub mod error;
pub mod git;
pub mod secrets;
