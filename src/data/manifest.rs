//! Data manifest (`data/manifest.json`): the data hash of a run's identity
//! (`run_key = hash(config_hash, code_hash, data_hash)`, DESIGN.md "Run identity and snapshot").
//!
//! The hash covers the files' contents in the order given and the filter parameters that
//! change the effective dataset, never the paths: a dataset moved or mounted elsewhere keeps
//! its identity. Per-file BLAKE3s are cached on disk by canonical path + size + mtime, so a
//! second run over a PDB mirror stats files instead of reading them.
//!
//! Errors live in [`ManifestError`] here rather than in a shared `data/` enum, so that this
//! module does not collide with `data/error.rs`, written separately.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

/// Domain prefix of the manifest hash; bump the version if its layout changes.
const HASH_DOMAIN: &[u8] = b"helico data manifest v1\n";

/// Version of the cache file format; a file with another version is discarded.
const CACHE_VERSION: u32 = 1;

/// Files modified less than this before they were hashed are not cached: filesystem
/// timestamps are coarse (ext4 ticks in milliseconds, some NFS in seconds), so a write right
/// after hashing could keep size and mtime and the stale hash would be served forever. Git
/// guards its index against the same "racy clean" case.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// One data file as hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// As given by the caller (not canonicalized); not part of the hash.
    pub path: PathBuf,
    pub size: u64,
    /// Modification time, RFC 3339 UTC with nanoseconds.
    pub mtime: String,
    /// BLAKE3 of the content, hex.
    pub blake3: String,
}

/// The files and filter parameters a run reads, and their combined hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataManifest {
    pub files: Vec<FileEntry>,
    /// Filter parameters that change the effective dataset (release-date cutoff, resolution
    /// cutoff, max tokens), with object keys sorted.
    pub params: Value,
    /// BLAKE3 (hex) over the file content hashes in order, then the canonical JSON of `params`.
    pub hash: String,
}

/// What a build cost: how the file-hash cache served it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashStats {
    /// Files whose hash came from the cache.
    pub cache_hits: usize,
    /// Files read and hashed.
    pub hashed: usize,
    pub bytes_hashed: u64,
    /// The cache file existed but was unreadable or corrupt, and was started afresh.
    pub cache_discarded: bool,
}

/// What went wrong while building a manifest.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// A data file could not be opened, stat'ed or read.
    #[error("reading data file {path}: {source}; check the path in the dataset config")]
    Read { path: PathBuf, source: std::io::Error },

    /// A path is a directory or another non-regular file.
    #[error("data path {path} is not a regular file; list the files of a directory one by one")]
    NotAFile { path: PathBuf },

    /// Size or mtime differed before and after hashing: something is still writing it.
    #[error("data file {path} changed while it was being hashed; let whatever writes it finish, then run again")]
    ChangedWhileHashing { path: PathBuf },

    /// No cache path was given and none can be derived from the environment.
    #[error(
        "no directory for the file-hash cache: neither XDG_CACHE_HOME nor HOME is set; set one or pass a cache path"
    )]
    NoCacheDir,

    /// The cache could not be written (its directory, temp file or rename).
    #[error(
        "writing the file-hash cache {path}: {source}; make the directory writable or point XDG_CACHE_HOME elsewhere"
    )]
    CacheWrite { path: PathBuf, source: std::io::Error },
}

impl DataManifest {
    /// Hashes `files` (in this order: the order is part of the hash) with `params`.
    ///
    /// `cache` is the file-hash cache to use, `None` for [`default_cache_path`]. A corrupt
    /// cache is discarded and rewritten (reported in [`HashStats::cache_discarded`]).
    pub fn build<P: AsRef<Path>>(
        files: &[P],
        params: Value,
        cache: Option<&Path>,
    ) -> Result<(DataManifest, HashStats), ManifestError> {
        let cache_path = match cache {
            Some(path) => path.to_path_buf(),
            None => default_cache_path().ok_or(ManifestError::NoCacheDir)?,
        };
        let mut stats = HashStats::default();
        let mut cache = HashCache::load(cache_path, &mut stats);

        let mut entries = Vec::with_capacity(files.len());
        let mut hashes = Vec::with_capacity(files.len());
        for path in files {
            let (entry, hash) = cache.file_hash(path.as_ref(), &mut stats)?;
            hashes.push(hash);
            entries.push(entry);
        }
        let params = crate::hash::canonical(&params);
        let hash = combined_hash(&hashes, &params);
        cache.save()?;
        Ok((DataManifest { files: entries, params, hash }, stats))
    }
}

/// The manifest hash of files with these content hashes, in this order, and `params`: what
/// [`DataManifest::build`] computes, for callers that already know the content hashes (a
/// preprocessed dataset records the hash of every cache file it writes).
pub fn combined_hash(hashes: &[blake3::Hash], params: &Value) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(HASH_DOMAIN);
    hasher.update(&(hashes.len() as u64).to_le_bytes());
    for hash in hashes {
        hasher.update(hash.as_bytes());
    }
    hasher.update(crate::hash::canonical(params).to_string().as_bytes());
    hasher.finalize().to_hex().to_string()
}

/// `$XDG_CACHE_HOME/helico/file-hashes.json`, else `~/.cache/helico/file-hashes.json`.
pub fn default_cache_path() -> Option<PathBuf> {
    cache_path_from(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
}

fn cache_path_from(xdg_cache_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    // The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    let base = match xdg_cache_home.map(PathBuf::from) {
        Some(xdg) if xdg.is_absolute() => xdg,
        _ => PathBuf::from(home.filter(|h| !h.is_empty())?).join(".cache"),
    };
    Some(base.join("helico").join("file-hashes.json"))
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    /// Canonical path -> what it held when hashed.
    entries: BTreeMap<String, CacheEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CacheEntry {
    size: u64,
    mtime_ns: i64,
    blake3: String,
}

struct HashCache {
    path: PathBuf,
    entries: BTreeMap<String, CacheEntry>,
    changed: bool,
}

impl HashCache {
    /// The cache at `path`; missing means empty, unreadable or corrupt means empty and
    /// rewritten on save.
    fn load(path: PathBuf, stats: &mut HashStats) -> HashCache {
        let entries = match fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(BTreeMap::new()),
            Err(_) => None,
            Ok(bytes) => serde_json::from_slice::<CacheFile>(&bytes)
                .ok()
                .filter(|f| f.version == CACHE_VERSION)
                .map(|f| f.entries),
        };
        stats.cache_discarded = entries.is_none();
        HashCache { path, changed: entries.is_none(), entries: entries.unwrap_or_default() }
    }

    /// Entry and content hash of the file at `path`, from the cache when size and mtime match.
    fn file_hash(&mut self, path: &Path, stats: &mut HashStats) -> Result<(FileEntry, blake3::Hash), ManifestError> {
        let read_err = |source| ManifestError::Read { path: path.to_path_buf(), source };
        let canonical = fs::canonicalize(path).map_err(read_err)?;
        let key = canonical.to_string_lossy().into_owned();
        let before = fs::metadata(&canonical).map_err(read_err)?;
        if !before.is_file() {
            return Err(ManifestError::NotAFile { path: path.to_path_buf() });
        }
        let mtime = before.modified().map_err(read_err)?;
        let mtime_ns = unix_nanos(mtime);

        let cached = self
            .entries
            .get(&key)
            .filter(|e| e.size == before.len() && e.mtime_ns == mtime_ns)
            .and_then(|e| blake3::Hash::from_hex(&e.blake3).ok());
        let hash = match cached {
            Some(hash) => {
                stats.cache_hits += 1;
                hash
            }
            None => {
                let started = SystemTime::now();
                let hash = hash_file(&canonical).map_err(read_err)?;
                let after = fs::metadata(&canonical).map_err(read_err)?;
                if !same_file_state(&before, &after) {
                    return Err(ManifestError::ChangedWhileHashing { path: path.to_path_buf() });
                }
                stats.hashed += 1;
                stats.bytes_hashed += before.len();
                let racy = started.duration_since(mtime).map_or(true, |age| age < RACY_WINDOW);
                let fresh = CacheEntry { size: before.len(), mtime_ns, blake3: hash.to_hex().to_string() };
                if racy {
                    self.changed |= self.entries.remove(&key).is_some();
                } else if self.entries.get(&key) != Some(&fresh) {
                    self.entries.insert(key, fresh);
                    self.changed = true;
                }
                hash
            }
        };
        let entry = FileEntry {
            path: path.to_path_buf(),
            size: before.len(),
            mtime: chrono::DateTime::<chrono::Utc>::from(mtime).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            blake3: hash.to_hex().to_string(),
        };
        Ok((entry, hash))
    }

    /// Writes the cache if anything changed: to a temp file beside it, then renamed over it,
    /// so a reader (another rank) never sees half a file. Concurrent writers: the last wins.
    fn save(&self) -> Result<(), ManifestError> {
        if !self.changed {
            return Ok(());
        }
        let write_err = |source| ManifestError::CacheWrite { path: self.path.clone(), source };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(write_err)?;
        let body = CacheFile { version: CACHE_VERSION, entries: self.entries.clone() };
        let json = serde_json::to_vec(&body).expect("a map of strings and integers serializes");
        crate::atomic::write(&self.path, &json).map_err(write_err)
    }
}

/// BLAKE3 of a file, streamed in blocks so memory stays flat for multi-GB files.
fn hash_file(path: &Path) -> std::io::Result<blake3::Hash> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(File::open(path)?)?;
    Ok(hasher.finalize())
}

fn same_file_state(a: &Metadata, b: &Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}

/// Nanoseconds since the Unix epoch, negative before it (i64 covers 1678–2262).
fn unix_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cache_path_follows_xdg() {
        let p = |x: Option<&str>, h: Option<&str>| cache_path_from(x.map(Into::into), h.map(Into::into));
        assert_eq!(p(Some("/xdg"), Some("/home/u")), Some(PathBuf::from("/xdg/helico/file-hashes.json")));
        assert_eq!(p(Some("rel"), Some("/home/u")), Some(PathBuf::from("/home/u/.cache/helico/file-hashes.json")));
        assert_eq!(p(None, None), None);
    }

    #[test]
    fn freshly_written_files_are_not_cached() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("a.cif");
        fs::write(&data, b"data_a\n").expect("write");
        let cache = dir.path().join("cache.json");
        let (_, stats) = DataManifest::build(&[&data], json!({}), Some(&cache)).expect("build");
        assert_eq!((stats.hashed, stats.cache_hits), (1, 0));
        let (_, stats) = DataManifest::build(&[&data], json!({}), Some(&cache)).expect("build");
        assert_eq!((stats.hashed, stats.cache_hits), (1, 0), "a racy file must be rehashed");
    }

    #[test]
    fn mtime_before_epoch() {
        assert_eq!(unix_nanos(UNIX_EPOCH - Duration::from_nanos(5)), -5);
        assert_eq!(unix_nanos(UNIX_EPOCH + Duration::from_secs(1)), 1_000_000_000);
    }
}
