//! The ablation directory, `<runs root>/_ablations/<id>/`: `spec.json` (the normalised spec, its
//! hash, the commands that ran it), `trials.json` (rewritten atomically as trials change
//! state), `summary.json` after each execution, `logs/` of child processes, and the report.
//! A leading `_` keeps it apart from experiment names, which start with a letter or digit.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::error::AblateError;
use super::plan::Trial;
use super::spec::Spec;

/// The directory under the runs root that holds ablations.
pub const DIR: &str = "_ablations";

/// `spec.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// `<experiment name>-<YYYYMMDD-HHMMSS>-<spec hash 8>`.
    pub id: String,
    /// RFC 3339.
    pub created: String,
    pub spec_hash: String,
    pub spec: Spec,
    /// The command lines that started and resumed it.
    pub commands: Vec<Vec<String>>,
}

/// Creates the directory of a new ablation with its spec and trial list.
pub fn create(root: &Path, name: &str, record: &mut Record, trials: &[Trial]) -> anyhow::Result<PathBuf> {
    let parent = root.join(DIR);
    std::fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let base = format!("{name}-{}-{}", chrono::Local::now().format("%Y%m%d-%H%M%S"), &record.spec_hash[..8]);
    let mut n = 1;
    let dir = loop {
        let id = if n == 1 { base.clone() } else { format!("{base}-{n}") };
        let dir = parent.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                record.id = id;
                break dir;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    };
    write_record(&dir, record)?;
    write_trials(&dir, trials)?;
    Ok(dir)
}

pub fn write_record(dir: &Path, record: &Record) -> anyhow::Result<()> {
    write_json(&dir.join("spec.json"), record)
}

pub fn read_record(dir: &Path) -> anyhow::Result<Record> {
    read_json(&dir.join("spec.json"))
}

pub fn write_trials(dir: &Path, trials: &[Trial]) -> anyhow::Result<()> {
    write_json(&dir.join("trials.json"), &trials)
}

pub fn read_trials(dir: &Path) -> anyhow::Result<Vec<Trial>> {
    read_json(&dir.join("trials.json"))
}

pub fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    crate::atomic::write(path, serde_json::to_string_pretty(value)?.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is corrupt", path.display()))
}

/// The ablation `spec` names: an id, a unique prefix of one, a directory, or `latest` /
/// `<name>@latest` (the newest).
pub fn find(root: &Path, spec: &str) -> Result<PathBuf, AblateError> {
    let direct = PathBuf::from(spec);
    if direct.join("spec.json").is_file() {
        return Ok(direct);
    }
    let ids = list(root);
    let matches: Vec<&String> = if spec == "latest" {
        ids.last().into_iter().collect()
    } else if let Some(name) = spec.strip_suffix("@latest") {
        ids.iter().rev().filter(|id| id.strip_prefix(name).is_some_and(|r| r.starts_with('-'))).take(1).collect()
    } else {
        let exact: Vec<&String> = ids.iter().filter(|id| *id == spec).collect();
        if exact.is_empty() { ids.iter().filter(|id| id.starts_with(spec)).collect() } else { exact }
    };
    match matches.as_slice() {
        [id] => Ok(root.join(DIR).join(id)),
        [] => Err(AblateError::UnknownAblation {
            id: spec.to_owned(),
            root: root.to_path_buf(),
            known: ids.iter().rev().take(5).cloned().collect(),
        }),
        many => Err(AblateError::AmbiguousAblation {
            id: spec.to_owned(),
            matches: many.iter().take(8).map(|s| s.to_string()).collect(),
        }),
    }
}

/// Ablation ids under `root`, oldest first (ids start with the name, so order by creation).
pub fn list(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root.join(DIR)) else { return Vec::new() };
    let mut found: Vec<(String, String)> = entries
        .flatten()
        .filter_map(|e| {
            let record = read_record(&e.path()).ok()?;
            Some((record.created, record.id))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, id)| id).collect()
}
