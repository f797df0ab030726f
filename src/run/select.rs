//! Naming runs on the command line: a run directory, its id (`<name>/<dir>`), a unique prefix of
//! either, or `<name>@latest` (the newest run of that experiment).

use std::path::{Path, PathBuf};

use super::info::{FILE, all_runs};
use crate::exit::BadInput;

/// The run directory `spec` names under `root`.
pub fn find(root: &Path, spec: &str) -> Result<PathBuf, BadInput> {
    for candidate in [PathBuf::from(spec), root.join(spec)] {
        if candidate.join(FILE).is_file() {
            return Ok(candidate);
        }
    }
    let runs = all_runs(root);
    if let Some(name) = spec.strip_suffix("@latest") {
        return runs
            .into_iter()
            .rev()
            .find(|(_, info)| info.name == name)
            .map(|(dir, _)| dir)
            .ok_or_else(|| BadInput(format!("no run of experiment `{name}` under {}{}", root.display(), known(root))));
    }
    let matches: Vec<&(PathBuf, _)> = runs
        .iter()
        .filter(|(dir, info)| {
            let leaf = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            info.id.starts_with(spec) || leaf.starts_with(spec)
        })
        .collect();
    match matches.as_slice() {
        [(dir, _)] => Ok(dir.clone()),
        [] => Err(BadInput(format!(
            "no run `{spec}` under {}: give a run directory, an id (<name>/<dir>) or a unique prefix of one, or <name>@latest{}",
            root.display(),
            known(root)
        ))),
        many => {
            let ids: Vec<&str> = many.iter().map(|(_, i)| i.id.as_str()).take(8).collect();
            Err(BadInput(format!("`{spec}` names {} runs: {}; give more of the id", many.len(), ids.join(", "))))
        }
    }
}

/// "; recent runs: …" for error messages.
fn known(root: &Path) -> String {
    let runs = all_runs(root);
    if runs.is_empty() {
        return String::new();
    }
    let ids: Vec<String> = runs.iter().rev().take(5).map(|(_, i)| i.id.clone()).collect();
    format!("; recent runs: {}", ids.join(", "))
}
