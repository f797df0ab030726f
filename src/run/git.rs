//! Git provenance of a run (`code/git.json` and `code/dirty.patch`), read with git2.
//!
//! The patch holds every uncommitted change relative to HEAD (staged, unstaged and untracked
//! files, `.gitignore` respected) in the format `git diff HEAD` prints, so that `git apply` on a
//! clean checkout of HEAD reproduces the working tree. Two kinds of file are listed on a
//! `# helico: …` comment line (which `git apply` skips) with their BLAKE3 instead of their
//! content: binary files, and files larger than the patch cap. The patch passes through the
//! [`Redactor`] and is capped; `patch_hash` is the BLAKE3 of the whole redacted patch, so a
//! truncated `dirty.patch` still names exactly what ran.

use std::fs;
use std::path::{Path, PathBuf};

use git2::{Delta, DiffDelta, DiffFindOptions, DiffOptions, ErrorCode, Patch, Repository, Status, StatusOptions};
use serde::Serialize;

use super::error::RunError;
use super::secrets::Redactor;

/// Default cap on `dirty.patch`: large enough for any hand edit, small enough that a stray
/// data file in the repository cannot fill the run directory.
pub const DEFAULT_PATCH_CAP: usize = 8 << 20;

/// Excluded files larger than this are listed with their size only: reading a stray
/// multi-GB checkpoint at every run start would cost minutes, and such a file is data, not code.
pub const MAX_HASHED_BYTES: u64 = 256 << 20;

/// Where the directory stands with respect to git.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepoState {
    /// Inside a repository whose HEAD names a commit.
    Repo,
    /// Inside a repository with no commit yet; the patch is relative to the empty tree.
    UnbornBranch,
    /// Not inside any repository: nothing about the code is known.
    Unknown,
}

/// Why a changed file's content is not in the patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExcludeReason {
    /// git's binary detection (a NUL byte in the first 8 KB, or a `binary` attribute).
    Binary,
    /// Larger than the patch cap, so its diff could never be stored.
    TooLarge,
}

/// A changed file whose content the patch lists by hash only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExcludedFile {
    /// Path in the working tree (the new path of a rename), redacted.
    pub path: String,
    /// git's name for the change: `added`, `modified`, `deleted`, `renamed`, `untracked`, ….
    pub change: String,
    pub reason: ExcludeReason,
    /// Bytes in the working tree; `None` when the file was deleted.
    pub size: Option<u64>,
    /// BLAKE3 of the working-tree content (of the link target for a symlink); `None` when
    /// deleted or larger than [`MAX_HASHED_BYTES`].
    pub blake3: Option<String>,
}

/// Everything `code/git.json` records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GitInfo {
    pub state: RepoState,
    /// Top of the working tree; `None` outside a repository or in a bare one.
    pub workdir: Option<PathBuf>,
    /// HEAD commit; `None` on an unborn branch or outside a repository.
    pub sha: Option<String>,
    /// Tree of the HEAD commit: together with `patch_hash` it fixes the code that ran.
    pub tree: Option<String>,
    /// Checked-out branch; `None` when HEAD is detached or outside a repository.
    pub branch: Option<String>,
    /// URL of `origin`, else of the first remote, with any user:password removed and redacted.
    pub remote_url: Option<String>,
    /// Any staged, unstaged or untracked (not ignored) change.
    pub dirty: bool,
    /// Untracked, not ignored files (each file of an untracked directory counts).
    pub untracked: usize,
    /// BLAKE3 (hex) of the whole redacted patch, before any truncation; of the empty string
    /// when clean.
    pub patch_hash: String,
    /// Length of the whole redacted patch.
    pub patch_bytes: u64,
    /// Whether `dirty.patch` stops early; it then ends at a file boundary.
    pub patch_truncated: bool,
    /// Files whose diffs were left out of `dirty.patch` by the cap.
    pub omitted: Vec<String>,
    /// Changed files listed by hash instead of content.
    pub excluded: Vec<ExcludedFile>,
}

/// `GitInfo` plus the (redacted, capped) patch it describes, taken from one status and one diff.
#[derive(Debug, Clone)]
pub struct GitSnapshot {
    pub info: GitInfo,
    /// Content for `code/dirty.patch`: bytes, since changed files need not be UTF-8.
    pub patch: Vec<u8>,
}

/// Reads the git provenance of `dir` (any directory inside the working tree).
///
/// Outside a repository this returns state [`RepoState::Unknown`], not an error; errors are
/// failures inside a repository. `cap` bounds `patch` (use [`DEFAULT_PATCH_CAP`]); a file
/// larger than `cap` is listed by hash instead of diffed. `outputs` are directories helico
/// writes (the runs directory): inside the working tree they count as ignored even when no
/// .gitignore says so, or every run would change the code the next one sees.
pub fn capture(dir: &Path, outputs: &[&Path], redactor: &Redactor, cap: usize) -> Result<GitSnapshot, RunError> {
    fs::metadata(dir).map_err(|source| RunError::Io { path: dir.to_path_buf(), source })?;
    let git_err = |source: git2::Error| RunError::Git { dir: dir.to_path_buf(), source };
    let repo = match Repository::discover(dir) {
        Ok(repo) => repo,
        Err(e) if e.code() == ErrorCode::NotFound => {
            return Ok(GitSnapshot { info: GitInfo::empty(RepoState::Unknown), patch: Vec::new() });
        }
        Err(e) => return Err(git_err(e)),
    };

    let (state, commit) = match repo.head() {
        Ok(head) => (RepoState::Repo, Some(head.peel_to_commit().map_err(git_err)?)),
        Err(e) if e.code() == ErrorCode::UnbornBranch || e.code() == ErrorCode::NotFound => {
            (RepoState::UnbornBranch, None)
        }
        Err(e) => return Err(git_err(e)),
    };
    let tree = commit.as_ref().map(|c| c.tree()).transpose().map_err(git_err)?;

    let mut info = GitInfo {
        workdir: repo.workdir().map(Path::to_path_buf),
        sha: commit.as_ref().map(|c| c.id().to_string()),
        tree: tree.as_ref().map(|t| t.id().to_string()),
        branch: branch_name(&repo),
        remote_url: remote_url(&repo).map(|url| redactor.redact(&strip_credentials(&url)).into_owned()),
        ..GitInfo::empty(state)
    };
    let Some(workdir) = repo.workdir().map(Path::to_path_buf) else {
        return Ok(GitSnapshot { info, patch: Vec::new() });
    };
    for rule in output_rules(&workdir, outputs) {
        // In memory, for this handle only: nothing is written to the repository.
        repo.add_ignore_rule(&rule).map_err(git_err)?;
    }

    let mut status_opts = StatusOptions::new();
    status_opts.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false);
    let statuses = repo.statuses(Some(&mut status_opts)).map_err(git_err)?;
    info.dirty = statuses.iter().any(|s| s.status() != Status::CURRENT && !s.status().is_ignored());
    info.untracked = statuses.iter().filter(|s| s.status().is_wt_new()).count();

    let max_size = i64::try_from(cap).unwrap_or(i64::MAX);
    let mut diff_opts = DiffOptions::new();
    diff_opts.include_untracked(true).recurse_untracked_dirs(true).show_untracked_content(true).max_size(max_size);
    let mut diff = repo.diff_tree_to_workdir_with_index(tree.as_ref(), Some(&mut diff_opts)).map_err(git_err)?;
    // Renames make the patch readable and `git apply` handles them. Not `for_untracked`: it
    // reads every untracked file to compare it with deleted ones, a minute for one stray
    // checkpoint; an unstaged `mv` shows as a deletion plus an addition, which applies as well.
    diff.find_similar(Some(DiffFindOptions::new().renames(true))).map_err(git_err)?;

    let patch = render_patch(&diff, &workdir, redactor, cap, &mut info)?;
    Ok(GitSnapshot { info, patch })
}

impl GitInfo {
    /// Nothing known yet: state `state`, clean, empty patch.
    fn empty(state: RepoState) -> GitInfo {
        GitInfo {
            state,
            workdir: None,
            sha: None,
            tree: None,
            branch: None,
            remote_url: None,
            dirty: false,
            untracked: 0,
            patch_hash: blake3::hash(b"").to_hex().to_string(),
            patch_bytes: 0,
            patch_truncated: false,
            omitted: Vec::new(),
            excluded: Vec::new(),
        }
    }
}

/// Ignore rules (`/path/`, anchored at the working tree) for the `outputs` that lie strictly
/// inside `workdir`; outputs elsewhere, or the working tree itself, give none.
fn output_rules(workdir: &Path, outputs: &[&Path]) -> Vec<String> {
    let Ok(workdir) = workdir.canonicalize() else { return Vec::new() };
    outputs
        .iter()
        .filter_map(|out| out.canonicalize().ok())
        .filter_map(|out| out.strip_prefix(&workdir).ok().map(Path::to_path_buf))
        .filter(|rel| !rel.as_os_str().is_empty())
        .filter_map(|rel| rel.to_str().map(|r| format!("/{}/", r.replace('\\', "/"))))
        .collect()
}

/// Renders `diff` file by file into the capped patch, filling the patch fields of `info`.
fn render_patch(
    diff: &git2::Diff<'_>,
    workdir: &Path,
    redactor: &Redactor,
    cap: usize,
    info: &mut GitInfo,
) -> Result<Vec<u8>, RunError> {
    let git_err = |source: git2::Error| RunError::Git { dir: workdir.to_path_buf(), source };
    let mut full = blake3::Hasher::new();
    let mut patch = Vec::new();
    for idx in 0..diff.deltas().len() {
        let rendered = Patch::from_diff(diff, idx).map_err(git_err)?;
        let chunk = match rendered {
            Some(mut p) if !p.delta().flags().is_binary() => p.to_buf().map_err(git_err)?.to_vec(),
            _ => {
                let delta = diff.get_delta(idx).expect("idx < deltas().len()");
                let file = excluded_file(&delta, workdir, cap, redactor)?;
                let line = exclusion_comment(&file);
                info.excluded.push(file);
                line.into_bytes()
            }
        };
        let chunk = redactor.redact_bytes(&chunk);
        full.update(&chunk);
        info.patch_bytes += chunk.len() as u64;
        // Whole files only, and none after the first that does not fit: the stored patch is a
        // prefix of the hashed one and still applies.
        if !info.patch_truncated && patch.len() + chunk.len() <= cap {
            patch.extend_from_slice(&chunk);
        } else {
            info.patch_truncated = true;
            let delta = diff.get_delta(idx).expect("idx < deltas().len()");
            info.omitted.push(redactor.redact(&delta_path(&delta)).into_owned());
        }
    }
    info.patch_hash = full.finalize().to_hex().to_string();
    if info.patch_truncated {
        let note = format!(
            "# helico: patch truncated at {} of {} bytes ({} files omitted, listed in git.json); \
             blake3 of the full patch: {}\n",
            patch.len(),
            info.patch_bytes,
            info.omitted.len(),
            info.patch_hash
        );
        patch.extend_from_slice(note.as_bytes());
    }
    Ok(patch)
}

/// The branch HEAD points at, also on an unborn branch (where `repo.head()` fails).
fn branch_name(repo: &Repository) -> Option<String> {
    let head = repo.find_reference("HEAD").ok()?;
    let target = String::from_utf8_lossy(head.symbolic_target_bytes()?).into_owned();
    Some(target.strip_prefix("refs/heads/").map_or_else(|| target.clone(), str::to_owned))
}

fn remote_url(repo: &Repository) -> Option<String> {
    let remote = match repo.find_remote("origin") {
        Ok(remote) => remote,
        Err(_) => {
            let names = repo.remotes().ok()?;
            let first = names.iter().flatten().flatten().next()?;
            repo.find_remote(first).ok()?
        }
    };
    Some(String::from_utf8_lossy(remote.url_bytes()).into_owned())
}

/// Drops the `user:password@` part of a URL (`https://user:ghp_…@github.com/o/r`); an
/// scp-like `git@host:path` carries no password and is kept.
pub fn strip_credentials(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..].find('/').map_or(url.len(), |i| authority_start + i);
    match url[authority_start..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..authority_start], &url[authority_start + at + 1..]),
        None => url.to_owned(),
    }
}

/// The path of a change: the new one, the old one for a deletion.
fn delta_path(delta: &DiffDelta<'_>) -> String {
    delta_fs_path(delta).to_string_lossy().into_owned()
}

fn delta_fs_path<'a>(delta: &DiffDelta<'a>) -> &'a Path {
    delta.new_file().path().or_else(|| delta.old_file().path()).expect("libgit2 gives every delta a path")
}

fn excluded_file(
    delta: &DiffDelta<'_>,
    workdir: &Path,
    cap: usize,
    redactor: &Redactor,
) -> Result<ExcludedFile, RunError> {
    let too_large = [delta.old_file().size(), delta.new_file().size()].iter().any(|&s| s > cap as u64);
    let (size, blake3) = if delta.status() == Delta::Deleted {
        (None, None)
    } else {
        let (size, hash) = hash_worktree_file(&workdir.join(delta_fs_path(delta)))?;
        (Some(size), hash)
    };
    Ok(ExcludedFile {
        path: redactor.redact(&delta_path(delta)).into_owned(),
        change: format!("{:?}", delta.status()).to_lowercase(),
        reason: if too_large { ExcludeReason::TooLarge } else { ExcludeReason::Binary },
        size,
        blake3,
    })
}

/// Size and BLAKE3 of a working-tree file, streamed (no hash above [`MAX_HASHED_BYTES`]); a
/// symlink is hashed as its target path, which is what git stores for it.
fn hash_worktree_file(path: &Path) -> Result<(u64, Option<String>), RunError> {
    let io_err = |source| RunError::Io { path: path.to_path_buf(), source };
    let meta = fs::symlink_metadata(path).map_err(io_err)?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path).map_err(io_err)?;
        let bytes = target.as_os_str().as_encoded_bytes();
        return Ok((bytes.len() as u64, Some(blake3::hash(bytes).to_hex().to_string())));
    }
    if meta.len() > MAX_HASHED_BYTES {
        return Ok((meta.len(), None));
    }
    let file = fs::File::open(path).map_err(io_err)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(file).map_err(io_err)?;
    Ok((meta.len(), Some(hasher.finalize().to_hex().to_string())))
}

fn exclusion_comment(file: &ExcludedFile) -> String {
    let what = match file.reason {
        ExcludeReason::Binary => "binary file",
        ExcludeReason::TooLarge => "file over the patch cap",
    };
    let (path, change) = (&file.path, &file.change);
    match (&file.size, &file.blake3) {
        (Some(size), Some(hash)) => {
            format!("# helico: {what} {path} ({change}, {size} bytes, blake3 {hash}) not included\n")
        }
        (Some(size), None) => format!(
            "# helico: {what} {path} ({change}, {size} bytes, not hashed: over {MAX_HASHED_BYTES} bytes) not included\n"
        ),
        (None, _) => format!("# helico: {what} {path} ({change}) not included\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_stripped_from_urls() {
        assert_eq!(strip_credentials("https://user:ghp_x@github.com/o/r.git"), "https://github.com/o/r.git");
        assert_eq!(strip_credentials("https://tok@host:8443/a@b"), "https://host:8443/a@b");
        assert_eq!(strip_credentials("https://github.com/o/r"), "https://github.com/o/r");
        assert_eq!(strip_credentials("git@github.com:o/r.git"), "git@github.com:o/r.git");
    }

    #[test]
    fn exclusion_comment_is_one_line() {
        let file = ExcludedFile {
            path: "img.bin".into(),
            change: "untracked".into(),
            reason: ExcludeReason::Binary,
            size: Some(3),
            blake3: Some("ab".into()),
        };
        assert_eq!(
            exclusion_comment(&file),
            "# helico: binary file img.bin (untracked, 3 bytes, blake3 ab) not included\n"
        );
    }
}
