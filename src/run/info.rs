//! `run.json`: a run's identity and lifecycle (running → done / failed / interrupted), with a
//! heartbeat so a run whose process died can be told from one still going.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Done,
    Failed,
    /// Stopped by a signal after saving a checkpoint; resumable.
    Interrupted,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        })
    }
}

/// The hashes that make up a run's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// hash(config_hash, code_hash, data_hash): equal keys compute the same thing.
    pub run_key: String,
    pub config_hash: String,
    pub code_hash: String,
    pub data_hash: String,
}

impl Identity {
    pub fn new(config_hash: String, code_hash: String, data_hash: String) -> Identity {
        let run_key = blake3::hash(format!("{config_hash}\n{code_hash}\n{data_hash}").as_bytes()).to_hex().to_string();
        Identity { run_key, config_hash, code_hash, data_hash }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// `<name>/<directory>`, unique under the runs root.
    pub id: String,
    pub name: String,
    pub status: Status,
    pub identity: Identity,
    /// RFC 3339 times.
    pub created: String,
    pub heartbeat: String,
    pub finished: Option<String>,
    pub host: String,
    pub pid: u32,
    /// Optimiser steps completed, of `steps`.
    pub step: u64,
    pub steps: u64,
    /// The error that ended a failed run.
    pub error: Option<String>,
    /// The command line that started the run (and each resume after it).
    pub commands: Vec<Vec<String>>,
    /// The ablation this run is a trial of, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ablation: Option<AblationRef>,
}

/// A run's place in an ablation: which sweep, which trial, and the axis values it takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AblationRef {
    pub id: String,
    /// 0-based index of the trial in the ablation's trial list.
    pub trial: usize,
    /// Axis name → the value this trial takes (as written in the override).
    pub axes: std::collections::BTreeMap<String, String>,
}

pub const FILE: &str = "run.json";

/// A heartbeat older than this, from a process that no longer exists, marks a dead run.
pub const STALE_AFTER_SECS: i64 = 120;

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl RunInfo {
    pub fn read(dir: &Path) -> anyhow::Result<RunInfo> {
        let path = dir.join(FILE);
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("{} is corrupt", path.display()))
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(FILE);
        crate::atomic::write(&path, serde_json::to_string_pretty(self)?.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// A `running` run whose process is gone on this host, or whose heartbeat went stale.
    pub fn is_dead(&self) -> bool {
        if self.status != Status::Running {
            return false;
        }
        let same_host = self.host == hostname();
        if same_host && self.pid != std::process::id() && !Path::new(&format!("/proc/{}", self.pid)).exists() {
            return true;
        }
        chrono::DateTime::parse_from_rfc3339(&self.heartbeat)
            .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds() > STALE_AFTER_SECS)
            .unwrap_or(true)
    }
}

pub fn hostname() -> String {
    super::env::hostname().unwrap_or_else(|| "unknown".into())
}

/// Every run directory under the runs root (`<root>/<name>/<dir>/run.json`), unreadable ones
/// skipped.
pub fn all_runs(root: &Path) -> Vec<(PathBuf, RunInfo)> {
    let mut out = Vec::new();
    let Ok(names) = std::fs::read_dir(root) else { return out };
    for name in names.flatten() {
        let Ok(runs) = std::fs::read_dir(name.path()) else { continue };
        for run in runs.flatten() {
            if let Ok(info) = RunInfo::read(&run.path()) {
                out.push((run.path(), info));
            }
        }
    }
    out.sort_by(|a, b| a.1.created.cmp(&b.1.created));
    out
}
