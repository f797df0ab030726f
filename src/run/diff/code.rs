//! The code part of `helico diff`: each run's commit and dirty state, and with `--code` the
//! patch from the baseline's code to each other run's: the commit diff (read with git2 from
//! the repository the run was recorded in), then the uncommitted changes: one run's
//! `code/dirty.patch`, or, when both runs were dirty, the diff of one patch to the other
//! (a "patch of patches", config_engine_anchors.md §4.6).

use std::path::{Path, PathBuf};

use git2::{DiffOptions, Oid, Patch, Repository};
use serde::Serialize;

use crate::run::compare::{GitView, PATCH, RunView};
use crate::run::error::RunError;

#[derive(Debug, Clone, Serialize)]
pub struct CodeDiff {
    /// Whether every run's code hash (commit tree, dirty patch, helico and libtorch version)
    /// equals the baseline's.
    pub same: bool,
    pub runs: Vec<GitView>,
    /// With `--code`: per run, the patch from the baseline's code (`None` for the baseline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patches: Option<Vec<Option<String>>>,
}

/// The code side of the comparison; `with_patch` also builds the patches.
pub fn code_diff(views: &[RunView], with_patch: bool) -> Result<CodeDiff, RunError> {
    let patches = if with_patch {
        let mut out = vec![None];
        for (i, v) in views.iter().enumerate().skip(1) {
            out.push(Some(patch_between(&views[0], v, &super::label(0), &super::label(i))?));
        }
        Some(out)
    } else {
        None
    };
    Ok(CodeDiff {
        same: views.iter().all(|v| v.info.identity.code_hash == views[0].info.identity.code_hash),
        runs: views.iter().map(|v| v.git.clone()).collect(),
        patches,
    })
}

/// From `a`'s code to `b`'s: commits first, then uncommitted changes. Lines starting with `#`
/// say what each part is; what follows them is a patch `git apply` reads.
fn patch_between(a: &RunView, b: &RunView, la: &str, lb: &str) -> Result<String, RunError> {
    let mut out = String::new();
    match (&a.git.sha, &b.git.sha) {
        (Some(x), Some(y)) if x == y => out.push_str(&format!("# {la} and {lb}: same commit {}\n", short(x))),
        (Some(x), Some(y)) => {
            out.push_str(&format!("# commits: git diff {} {}\n", short(x), short(y)));
            out.push_str(&commit_diff(repo_dirs(a, b), x, y));
        }
        _ => {
            let which = if a.git.sha.is_none() { la } else { lb };
            out.push_str(&format!(
                "# no commit was recorded for {which} (git state `{}`): only uncommitted changes compare\n",
                if a.git.sha.is_none() { &a.git.state } else { &b.git.state }
            ));
        }
    }
    let pa = dirty_patch(a)?;
    let pb = dirty_patch(b)?;
    match (pa, pb) {
        (None, None) => out.push_str(&format!("# no uncommitted changes in {la} or {lb}\n")),
        (None, Some(p)) => {
            out.push_str(&format!("# uncommitted changes of {lb} ({}):\n", b.dir.join(PATCH).display()));
            out.push_str(&String::from_utf8_lossy(&p));
        }
        (Some(p), None) => {
            out.push_str(&format!(
                "# uncommitted changes of {la}, which {lb} does not have ({}):\n",
                a.dir.join(PATCH).display()
            ));
            out.push_str(&String::from_utf8_lossy(&p));
        }
        (Some(_), Some(_)) if a.git.patch_hash == b.git.patch_hash => {
            out.push_str(&format!("# {la} and {lb} have the same uncommitted changes\n"));
        }
        (Some(x), Some(y)) => {
            out.push_str(&format!("# both have uncommitted changes: the diff from {la}'s dirty.patch to {lb}'s\n"));
            let (pa, pb) = (a.dir.join(PATCH), b.dir.join(PATCH));
            let text = Patch::from_buffers(&x, Some(pa.as_path()), &y, Some(pb.as_path()), None)
                .and_then(|mut p| p.to_buf())
                .map(|buf| String::from_utf8_lossy(&buf).into_owned())
                .unwrap_or_else(|e| format!("# the two patches could not be compared: {}\n", e.message()));
            out.push_str(&text);
        }
    }
    Ok(out)
}

/// A run's `code/dirty.patch`, or `None` when the run was clean.
fn dirty_patch(v: &RunView) -> Result<Option<Vec<u8>>, RunError> {
    if !v.git.dirty {
        return Ok(None);
    }
    let path = v.dir.join(PATCH);
    std::fs::read(&path).map(Some).map_err(|e| RunError::Snapshot {
        path,
        problem: format!("cannot be read ({e}), though code/git.json says the run was dirty"),
    })
}

/// Where the commits may be: the runs' recorded working trees, then the current directory.
fn repo_dirs(a: &RunView, b: &RunView) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = [&b.git.workdir, &a.git.workdir].into_iter().flatten().cloned().collect();
    dirs.push(PathBuf::from("."));
    dirs
}

/// `git diff x y` of two commits, from the first repository that has both; a `#` line when
/// none has them.
fn commit_diff(dirs: Vec<PathBuf>, x: &str, y: &str) -> String {
    for dir in &dirs {
        let Ok(repo) = Repository::discover(dir) else { continue };
        if let Ok(text) = tree_diff(&repo, x, y) {
            return text;
        }
    }
    let tried: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    format!(
        "# commits {} and {} are not both in a repository at {}: fetch them to see the commit diff\n",
        short(x),
        short(y),
        tried.join(", ")
    )
}

fn tree_diff(repo: &Repository, x: &str, y: &str) -> Result<String, git2::Error> {
    let tree = |sha: &str| repo.find_commit(Oid::from_str(sha)?)?.tree();
    let (tx, ty) = (tree(x)?, tree(y)?);
    let diff = repo.diff_tree_to_tree(Some(&tx), Some(&ty), Some(DiffOptions::new().context_lines(3)))?;
    let mut out = String::new();
    for i in 0..diff.deltas().len() {
        match Patch::from_diff(&diff, i)? {
            Some(mut p) if !p.delta().flags().is_binary() => out.push_str(&String::from_utf8_lossy(&p.to_buf()?)),
            _ => {
                let path = diff.get_delta(i).and_then(|d| d.new_file().path().map(Path::to_path_buf));
                out.push_str(&format!(
                    "# binary file changed: {}\n",
                    path.map(|p| p.display().to_string()).unwrap_or_default()
                ));
            }
        }
    }
    Ok(out)
}

/// A commit as the output shows it.
pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}
