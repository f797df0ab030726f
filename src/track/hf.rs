//! Hugging Face references, `hf://owner/name@revision/path` (models) and
//! `hf://datasets/owner/name@revision/path`, resolved offline from the cache that Python's
//! `huggingface_hub` shares (`huggingface_hub/file_download.py`: `try_to_load_from_cache`,
//! `hf_hub_download`), so a file fetched by either is found by both.
//!
//! ```text
//! <cache>/models--owner--name/refs/<revision>            the commit a branch or tag pointed to
//!                            /snapshots/<commit>/<path>  a relative symlink to the blob
//!                            /blobs/<etag>               the content (etag = sha256 for LFS files)
//!                            /.no_exist/<commit>/<path>  the hub said: no such file
//! <cache> = $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub,
//!           else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub
//! ```
//!
//! helico never downloads: a reference missing from the cache is an error that says how to
//! fetch it. Not the hf-hub crate: 1.0 pulls an HTTP and TLS stack (reqwest, rustls, aws-lc,
//! hf-xet) for downloads helico does not make, and 0.4's offline `Cache` reads `$HF_HOME`
//! as the hub directory itself, ignores `$HF_HUB_CACHE`, and cannot resolve a commit-id
//! revision; the layout above is all there is to it.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::TrackError;

const SCHEME: &str = "hf://";

/// The kind of hub repository, which prefixes its cache folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepoType {
    Model,
    Dataset,
}

/// A parsed `hf://` reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HfRef {
    pub repo_type: RepoType,
    /// `owner/name`.
    pub repo_id: String,
    /// A branch, tag or commit id (`main` when the reference has no `@`).
    pub revision: String,
    /// The file inside the repository.
    pub path: String,
}

impl fmt::Display for HfRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.repo_type == RepoType::Dataset { "datasets/" } else { "" };
        let revision = self.revision.replace('/', "%2F");
        write!(f, "{SCHEME}{kind}{}@{revision}/{}", self.repo_id, self.path)
    }
}

impl HfRef {
    /// Whether `text` is meant as a hub reference rather than a local path.
    pub fn is_reference(text: &str) -> bool {
        text.starts_with(SCHEME)
    }

    /// Parses `hf://[datasets/|models/]owner/name[@revision]/path`; a revision containing `/`
    /// (`refs/pr/1`) is written `refs%2Fpr%2F1`, as the hub's own URLs do.
    pub fn parse(text: &str) -> Result<HfRef, TrackError> {
        let bad = |problem: &str| TrackError::HfReference { reference: text.to_owned(), problem: problem.to_owned() };
        let rest = text.strip_prefix(SCHEME).ok_or_else(|| bad("it does not start with hf://"))?;
        let (repo_type, rest) = match rest.split_once('/') {
            Some(("datasets", r)) => (RepoType::Dataset, r),
            Some(("models", r)) => (RepoType::Model, r),
            Some(("spaces", _)) => return Err(bad("Spaces are not supported, only models and datasets")),
            _ => (RepoType::Model, rest),
        };
        let mut parts = rest.splitn(3, '/');
        let owner = parts.next().unwrap_or_default();
        let name_rev = parts.next().ok_or_else(|| bad("it names no repository (owner/name)"))?;
        let path = parts.next().filter(|p| !p.is_empty()).ok_or_else(|| bad("it names no file in the repository"))?;
        let (name, revision) = match name_rev.split_once('@') {
            Some((_, "")) => return Err(bad("the revision after `@` is empty")),
            Some((name, rev)) => (name, rev.replace("%2F", "/").replace("%2f", "/")),
            None => (name_rev, "main".to_owned()),
        };
        for (what, part) in [("owner", owner), ("repository name", name)] {
            let ok = !part.is_empty()
                && part.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                && !part.contains("--")
                && !part.contains("..");
            if !ok {
                return Err(bad(&format!(
                    "the {what} `{part}` is not a hub name (letters, digits, `.`, `_`, `-`; no `--` or `..`)"
                )));
            }
        }
        if path.split('/').any(|s| s.is_empty() || s == "." || s == "..") || revision.split('/').any(|s| s == "..") {
            return Err(bad("the file path must be relative and without empty, `.` or `..` segments"));
        }
        Ok(HfRef { repo_type, repo_id: format!("{owner}/{name}"), revision, path: path.to_owned() })
    }

    /// The repository's folder in the cache: `models--owner--name`, `datasets--owner--name`.
    pub fn folder(&self) -> String {
        let kind = if self.repo_type == RepoType::Dataset { "datasets" } else { "models" };
        format!("{kind}--{}", self.repo_id.replace('/', "--"))
    }

    /// The command that fetches this file into the cache (huggingface_hub's `hf` CLI).
    pub fn fetch_command(&self) -> String {
        let kind = if self.repo_type == RepoType::Dataset { " --repo-type dataset" } else { "" };
        format!("hf download {} {} --revision {}{kind}", self.repo_id, self.path, self.revision)
    }
}

/// A reference found in the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub reference: HfRef,
    /// The commit the revision resolved to.
    pub commit: String,
    /// The file in the cache's snapshot (a symlink into `blobs/`).
    pub local_path: PathBuf,
}

/// A hub cache directory.
#[derive(Debug, Clone, PartialEq)]
pub struct HfCache {
    pub root: PathBuf,
}

impl HfCache {
    pub fn at(root: impl Into<PathBuf>) -> HfCache {
        HfCache { root: root.into() }
    }

    /// The cache `huggingface_hub` uses in this environment (module docs); `None` when no
    /// variable and no home directory says where.
    pub fn from_env() -> Option<HfCache> {
        cache_root(|k| std::env::var_os(k).filter(|v| !v.is_empty())).map(HfCache::at)
    }

    /// The cached file of `r`, as `try_to_load_from_cache` finds it.
    pub fn resolve(&self, r: &HfRef) -> Result<Resolved, TrackError> {
        let repo = self.root.join(r.folder());
        let missing = |detail: String| TrackError::HfNotCached {
            reference: r.to_string(),
            cache: self.root.clone(),
            detail,
            fetch: r.fetch_command(),
        };
        if !repo.is_dir() {
            return Err(missing(format!("no {} folder", r.folder())));
        }
        let commit = match std::fs::read_to_string(repo.join("refs").join(&r.revision)) {
            Ok(text) => text.trim().to_owned(),
            Err(_) => r.revision.clone(),
        };
        if repo.join(".no_exist").join(&commit).join(&r.path).is_file() {
            return Err(TrackError::HfNoSuchFile { reference: r.to_string(), commit });
        }
        let local_path = repo.join("snapshots").join(&commit).join(&r.path);
        if !local_path.is_file() {
            let what = if commit == r.revision { "revision" } else { "commit" };
            return Err(missing(format!("no snapshots/{commit}/{} (the {what} of `{}`)", r.path, r.revision)));
        }
        Ok(Resolved { reference: r.clone(), commit, local_path })
    }

    /// Puts `source` into the cache as file `r.path` of `commit` (a full commit id), laid out
    /// as `hf_hub_download` lays out an LFS file (blob named by its sha256, relative symlink,
    /// `refs/<revision>` when the revision is a branch or tag). Returns the snapshot path.
    pub fn store(&self, r: &HfRef, commit: &str, source: &Path) -> Result<PathBuf, TrackError> {
        if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TrackError::HfReference {
                reference: r.to_string(),
                problem: format!("`{commit}` is not a full 40-character commit id"),
            });
        }
        let repo = self.root.join(r.folder());
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TrackError::Io { path, source }
        };
        let sha = sha256_file(source)?;
        let blob = repo.join("blobs").join(&sha);
        std::fs::create_dir_all(repo.join("blobs")).map_err(io(&repo))?;
        if !blob.is_file() {
            let partial = blob.with_extension("incomplete");
            std::fs::copy(source, &partial).map_err(io(source))?;
            std::fs::rename(&partial, &blob).map_err(io(&blob))?;
        }
        let pointer = repo.join("snapshots").join(commit).join(&r.path);
        let parent = pointer.parent().expect("a snapshot path has a parent");
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        // From snapshots/<commit>/<dirs…>/ back up to the repository folder.
        let up = 1 + r.path.split('/').count();
        let target: PathBuf = std::iter::repeat_n("..", up).collect::<PathBuf>().join("blobs").join(&sha);
        let _ = std::fs::remove_file(&pointer);
        std::os::unix::fs::symlink(&target, &pointer).map_err(io(&pointer))?;
        if r.revision != commit {
            let reference = repo.join("refs").join(&r.revision);
            let parent = reference.parent().expect("a ref path has a parent");
            std::fs::create_dir_all(parent).map_err(io(parent))?;
            crate::atomic::write(&reference, commit.as_bytes()).map_err(io(&reference))?;
        }
        Ok(pointer)
    }
}

/// What the run snapshot records of a resolved reference (`data/hf.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recorded {
    /// The reference as the config wrote it.
    pub reference: String,
    pub repo: HfRef,
    /// The commit the revision resolved to: the reference pinned.
    pub commit: String,
    pub local_path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// The cache the file came from.
    pub cache: PathBuf,
}

/// The local file a data path names: the path itself, or an `hf://` reference resolved in
/// the environment's cache.
pub fn local_path(path: &str) -> Result<PathBuf, TrackError> {
    if !HfRef::is_reference(path) {
        return Ok(PathBuf::from(path));
    }
    Ok(resolve_in_env(path)?.local_path)
}

/// Resolves `reference` in the environment's cache and hashes the file, checking it against
/// its blob name when that is a sha256 (the hub's etag of an LFS file).
pub fn record(reference: &str) -> Result<Recorded, TrackError> {
    let resolved = resolve_in_env(reference)?;
    let blob = std::fs::canonicalize(&resolved.local_path)
        .map_err(|source| TrackError::Io { path: resolved.local_path.clone(), source })?;
    let sha256 = sha256_file(&blob)?;
    let etag = blob.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if etag.len() == 64 && etag.bytes().all(|b| b.is_ascii_hexdigit()) && etag != sha256 {
        return Err(TrackError::HfCorrupt { reference: reference.to_owned(), blob, got: sha256 });
    }
    let size = std::fs::metadata(&blob).map_err(|source| TrackError::Io { path: blob.clone(), source })?.len();
    let cache = HfCache::from_env().map(|c| c.root).unwrap_or_default();
    let Resolved { reference: repo, commit, local_path } = resolved;
    Ok(Recorded { reference: reference.to_owned(), repo, commit, local_path, size, sha256, cache })
}

/// Records every `hf://` reference among `paths` in `<run>/data/hf.json` (nothing when there
/// is none): the commit each revision resolved to and the file's sha256.
pub fn write_records<'a>(run_dir: &Path, paths: impl IntoIterator<Item = &'a str>) -> anyhow::Result<()> {
    let records: Vec<Recorded> =
        paths.into_iter().filter(|p| HfRef::is_reference(p)).map(record).collect::<Result<_, _>>()?;
    if records.is_empty() {
        return Ok(());
    }
    let path = run_dir.join("data/hf.json");
    crate::atomic::write(&path, serde_json::to_string_pretty(&records)?.as_bytes())
        .map_err(|source| TrackError::Io { path, source })?;
    Ok(())
}

fn resolve_in_env(reference: &str) -> Result<Resolved, TrackError> {
    let r = HfRef::parse(reference)?;
    let cache = HfCache::from_env().ok_or_else(|| TrackError::HfNotCached {
        reference: reference.to_owned(),
        cache: PathBuf::from("(none)"),
        detail: "no cache directory: none of HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME or HOME is set".into(),
        fetch: r.fetch_command(),
    })?;
    cache.resolve(&r)
}

/// The cache directory huggingface_hub's `constants.py` picks, from an environment lookup.
fn cache_root(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let expand = |v: OsString| -> PathBuf {
        let p = PathBuf::from(&v);
        match (p.strip_prefix("~"), var("HOME")) {
            (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
            _ => p,
        }
    };
    if let Some(v) = var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")) {
        return Some(expand(v));
    }
    let home = match var("HF_HOME") {
        Some(v) => expand(v),
        None => match var("XDG_CACHE_HOME") {
            Some(xdg) => expand(xdg).join("huggingface"),
            None => PathBuf::from(var("HOME")?).join(".cache").join("huggingface"),
        },
    };
    Some(home.join("hub"))
}

/// Hex SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, TrackError> {
    let io = |source| TrackError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_print_back() {
        let r = HfRef::parse("hf://datasets/lab/seqs@refs%2Fpr%2F3/dir/p.fasta").expect("parses");
        assert_eq!(
            (r.repo_type, r.repo_id.as_str(), r.revision.as_str(), r.path.as_str()),
            (RepoType::Dataset, "lab/seqs", "refs/pr/3", "dir/p.fasta")
        );
        assert_eq!(r.folder(), "datasets--lab--seqs");
        assert_eq!(r.to_string(), "hf://datasets/lab/seqs@refs%2Fpr%2F3/dir/p.fasta");
        let m = HfRef::parse("hf://lab/model/model.safetensors").expect("parses");
        assert_eq!(
            (m.repo_type, m.revision.as_str(), m.folder().as_str()),
            (RepoType::Model, "main", "models--lab--model")
        );
        assert_eq!(m.fetch_command(), "hf download lab/model model.safetensors --revision main");
    }

    #[test]
    fn malformed_references_say_what_is_wrong() {
        for (text, problem) in [
            ("hf://lab", "no repository"),
            ("hf://lab/model", "no file"),
            ("hf://lab/model@/x", "revision after `@` is empty"),
            ("hf://lab/mo--del/x", "not a hub name"),
            ("hf://lab/model/../x", "relative"),
            ("hf://spaces/lab/app/x", "Spaces"),
        ] {
            let e = HfRef::parse(text).expect_err(text).to_string();
            assert!(e.contains(problem) && e.contains(text), "{text}: {e}");
        }
    }

    #[test]
    fn the_cache_directory_follows_huggingface_hub() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| OsString::from(v))
        };
        assert_eq!(cache_root(env(&[("HOME", "/h")])), Some(PathBuf::from("/h/.cache/huggingface/hub")));
        assert_eq!(cache_root(env(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")])), Some("/x/huggingface/hub".into()));
        assert_eq!(cache_root(env(&[("HOME", "/h"), ("HF_HOME", "~/hf")])), Some("/h/hf/hub".into()));
        let all = env(&[("HF_HOME", "/hf"), ("HUGGINGFACE_HUB_CACHE", "/old"), ("HF_HUB_CACHE", "/new")]);
        assert_eq!(cache_root(all), Some("/new".into()));
        assert_eq!(cache_root(env(&[])), None);
    }
}
