//! The CCD cache: components.bcif parsed once (~3 s), then mapped by every later process in a
//! few milliseconds.
//!
//! ```text
//! <dir>/<blake3 of the CCD file>.hsc     every component as columns (super::components), plus
//!                                        ccd.blake3 (that hash) and ccd.by_id (ids sorted)
//! <dir>/by-path/<hash of the path>.json  the CCD file's path and stat fields with its BLAKE3
//! ```
//!
//! Loading maps the file and checks its columns; a component is decoded the first time
//! [`Ccd::get`] asks for it. The cache is keyed by content, so a copy of the same CCD
//! elsewhere shares it; hashing 63 MB costs ~25 ms, more than the rest of a load, so each path's
//! stat fields (device, inode, size, modification and change times, as git's index keeps them)
//! remember its hash, and the file is read again only when one of them changes.

use std::cmp::Ordering;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::PrepError;
use super::cache::EXTENSION;
use super::columns::{Reader, Writer, index};
use super::components::{self, ComponentColumns};
use crate::data::ccd::{Ccd, Component};

/// A whole CCD, and where it came from.
pub struct CcdCache {
    pub ccd: Ccd,
    /// BLAKE3 of the CCD file (hex): the dictionary's identity, e.g. in preprocessing params.
    pub blake3: String,
    /// Whether the cache file was mapped (false: the CCD was parsed, and the cache written).
    pub hit: bool,
    /// Whether the CCD file was read to hash it (false: its stat fields were known).
    pub hashed: bool,
}

impl CcdCache {
    /// Loads the CCD at `path` through the cache in `dir`: a missing, damaged or other-version
    /// cache file is rebuilt from `path`. Failing to write the cache is not an error: the
    /// parsed CCD is returned all the same.
    pub fn load(path: &Path, dir: &Path) -> Result<CcdCache, PrepError> {
        let source = Source::of(path)?;
        let index_file = dir.join("by-path").join(format!("{}.json", source.key()));
        let known = std::fs::read(&index_file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Indexed>(&bytes).ok())
            .filter(|entry| entry.source == source)
            .map(|entry| entry.blake3);
        let hashed = known.is_none();
        let blake3 = match known {
            Some(blake3) => blake3,
            None => super::file_blake3(path)?,
        };
        let remember = |blake3: &str| {
            if hashed && source.settled() {
                let entry = Indexed { source: source.clone(), blake3: blake3.to_owned() };
                let json = serde_json::to_vec(&entry).expect("plain data serialises");
                let _ = std::fs::create_dir_all(dir.join("by-path"))
                    .and_then(|()| crate::atomic::write(&index_file, &json));
            }
        };
        let cache = dir.join(format!("{blake3}.{EXTENSION}"));
        if let Ok(mapped) = MappedCcd::open(&cache, &blake3) {
            remember(&blake3);
            return Ok(CcdCache { ccd: Ccd::mapped(mapped), blake3, hit: true, hashed });
        }
        let ccd = Ccd::read(path)?;
        let written =
            std::fs::create_dir_all(dir).and_then(|()| crate::atomic::write(&cache, &to_bytes(&ccd, &blake3)));
        if written.is_ok() {
            remember(&blake3);
        }
        Ok(CcdCache { ccd, blake3, hit: false, hashed })
    }

    /// [`load`](Self::load) through [`default_dir`](Self::default_dir); with no cache
    /// directory (neither XDG_CACHE_HOME nor HOME set) the CCD is parsed.
    pub fn load_default(path: &Path) -> Result<CcdCache, PrepError> {
        match Self::default_dir() {
            Some(dir) => Self::load(path, &dir),
            None => Ok(CcdCache { ccd: Ccd::read(path)?, blake3: super::file_blake3(path)?, hit: false, hashed: true }),
        }
    }

    /// `$XDG_CACHE_HOME/helico/ccd`, else `~/.cache/helico/ccd`.
    pub fn default_dir() -> Option<PathBuf> {
        crate::data::manifest::default_cache_path().and_then(|p| p.parent().map(|d| d.join("ccd")))
    }
}

/// How long ago a CCD file must have been modified for its hash to be remembered.
const SETTLED: std::time::Duration = std::time::Duration::from_secs(2);

/// A CCD file as the index knows it: what changes whenever its content can have changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    /// Canonical (symbolic links resolved).
    path: PathBuf,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Source {
    fn of(path: &Path) -> Result<Source, PrepError> {
        let io = |source| PrepError::Io { path: path.to_owned(), action: "read", source };
        let canonical = std::fs::canonicalize(path).map_err(io)?;
        let m = std::fs::metadata(&canonical).map_err(io)?;
        Ok(Source {
            path: canonical,
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    /// Whether the file was last modified long enough ago that a write within the same clock
    /// tick as our stat is ruled out: one would leave size, mtime and ctime as we saw them with
    /// other content (git's "racy clean"). A file modified since is hashed on every load.
    fn settled(&self) -> bool {
        let modified = std::time::UNIX_EPOCH + std::time::Duration::new(self.mtime.0.max(0) as u64, 0);
        modified.elapsed().is_ok_and(|age| age >= SETTLED)
    }

    /// The index file's name: a hash of the path.
    fn key(&self) -> String {
        blake3::hash(self.path.as_os_str().as_encoded_bytes()).to_hex()[..32].to_owned()
    }
}

/// One `by-path` file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Indexed {
    source: Source,
    blake3: String,
}

/// The cache file's bytes: `ccd`'s components, the source's hash, and the components sorted by
/// id (a permutation) so that a lookup is a binary search with nothing built at load time.
fn to_bytes(ccd: &Ccd, blake3: &str) -> Vec<u8> {
    let all: Vec<_> = ccd.components().collect();
    let mut by_id: Vec<usize> = (0..all.len()).collect();
    by_id.sort_by(|&a, &b| all[a].id.cmp(&all[b].id));
    let mut w = Writer::default();
    components::put(&mut w, &all);
    w.bytes("ccd.blake3", blake3.as_bytes().to_vec());
    w.u32s("ccd.by_id", by_id.into_iter().map(index));
    w.finish()
}

/// A mapped CCD cache file, checked; [`Ccd`] decodes its components on first use.
pub(crate) struct MappedCcd {
    path: PathBuf,
    map: memmap2::Mmap,
    columns: ComponentColumns,
    /// `ccd.by_id`: component indices in id order, u32 each.
    by_id: Range<usize>,
}

impl MappedCcd {
    /// Maps and checks `path`, which must be the cache of the CCD whose hash is `blake3`.
    fn open(path: &Path, blake3: &str) -> Result<MappedCcd, PrepError> {
        let io = |source| PrepError::Io { path: path.to_owned(), action: "read the CCD cache", source };
        let file = File::open(path).map_err(io)?;
        // SAFETY: cache files are only ever replaced by renaming a new file over them
        // (`atomic::write`), never written in place, so the mapped bytes cannot change under us.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let r = Reader::new(&map, path)?;
        let columns = ComponentColumns::new(&r)?;
        if r.column("ccd.blake3", 1, None)? != blake3.as_bytes() {
            return Err(r.problem(format!("made from a CCD other than {blake3}")));
        }
        let by_id = r.span("ccd.by_id", 4, Some(columns.len()))?;
        // Strictly increasing ids in by_id order: sorted, and (n distinct indices below n) a
        // permutation, which is all the binary search in `find` needs.
        let mut previous = None;
        for k in 0..columns.len() {
            let c = sorted(&map, &by_id, k);
            if c >= columns.len() {
                return Err(r.problem(format!("column ccd.by_id: entry {k} is {c}, past the components")));
            }
            let id = Some(columns.id(&map, c).map_err(|problem| r.problem(problem))?);
            if previous >= id {
                return Err(r.problem(format!("column ccd.by_id: entry {k} is out of order")));
            }
            previous = id;
        }
        Ok(MappedCcd { path: path.to_owned(), map, columns, by_id })
    }

    pub(crate) fn len(&self) -> usize {
        self.columns.len()
    }

    /// The index of the component with this id.
    pub(crate) fn find(&self, id: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let c = sorted(&self.map, &self.by_id, mid);
            match self.columns.id(&self.map, c).expect("ids are checked when the cache is opened").cmp(id) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(c),
            }
        }
        None
    }

    /// Decodes component `c`; an error names the file and what is damaged.
    pub(crate) fn component(&self, c: usize) -> Result<Component, PrepError> {
        let problem = |problem| PrepError::Cache { path: self.path.clone(), problem };
        self.columns.component(&self.map, c).map_err(problem)
    }
}

/// The component `k`-th in id order.
fn sorted(bytes: &[u8], by_id: &Range<usize>, k: usize) -> usize {
    let at = by_id.start + 4 * k;
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize
}

impl std::fmt::Debug for MappedCcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedCcd").field("path", &self.path).field("components", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text CCD of single-atom components, in the given (unsorted) order.
    fn ccd_text(ids: &[&str]) -> String {
        ids.iter()
            .map(|id| {
                format!(
                    "data_{id}\n_chem_comp.id {id}\n_chem_comp.name {id}\n_chem_comp.type NON-POLYMER\n\
                     loop_\n_chem_comp_atom.comp_id\n_chem_comp_atom.atom_id\n_chem_comp_atom.type_symbol\n\
                     _chem_comp_atom.charge\n_chem_comp_atom.pdbx_leaving_atom_flag\n_chem_comp_atom.pdbx_aromatic_flag\n\
                     {id} X1 C 0 N N\n"
                )
            })
            .collect()
    }

    /// Writes `text` to `path`, modified `age_secs` ago (0: now).
    fn write_aged(path: &Path, text: &str, age_secs: u64) {
        std::fs::write(path, text).unwrap();
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(age_secs);
        std::fs::File::options().write(true).open(path).unwrap().set_modified(when).unwrap();
    }

    #[test]
    fn the_hash_is_kept_by_stat_and_recomputed_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (path, cache) = (dir.path().join("components.cif"), dir.path().join("cache"));
        write_aged(&path, &ccd_text(&["ZN", "ATP", "HOH"]), 0);
        let cold = CcdCache::load(&path, &cache).unwrap();
        assert!(!cold.hit && cold.hashed);
        assert_eq!(cold.blake3, super::super::file_blake3(&path).unwrap());
        let fresh = CcdCache::load(&path, &cache).unwrap();
        assert!(fresh.hit && fresh.hashed, "a file modified within 2 s is hashed on every load");

        write_aged(&path, &ccd_text(&["ZN", "ATP", "HOH"]), 60);
        assert!(CcdCache::load(&path, &cache).unwrap().hashed, "new stat");
        let warm = CcdCache::load(&path, &cache).unwrap();
        assert!(warm.hit && !warm.hashed, "stat unchanged: the stored hash is used");
        assert_eq!(warm.blake3, cold.blake3);
        let ids: Vec<&str> = warm.ccd.components().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["ZN", "ATP", "HOH"], "file order");
        assert_eq!(warm.ccd.get("ATP").map(|c| c.atoms[0].name.as_str()), Some("X1"));
        assert!(warm.ccd.get("ADP").is_none());

        // New content of the same size, its modification time set back: still hashed (the
        // change time moved), and a new cache.
        write_aged(&path, &ccd_text(&["ZN", "ATP", "HOG"]), 60);
        let changed = CcdCache::load(&path, &cache).unwrap();
        assert!(!changed.hit && changed.hashed && changed.blake3 != cold.blake3);
        assert!(changed.ccd.get("HOG").is_some() && changed.ccd.get("HOH").is_none());
    }

    #[test]
    fn a_cache_of_another_ccd_or_out_of_order_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ccd = Ccd::read(&{
            let path = dir.path().join("c.cif");
            std::fs::write(&path, ccd_text(&["B", "A"])).unwrap();
            path
        })
        .unwrap();
        let path = dir.path().join("x.hsc");
        std::fs::write(&path, to_bytes(&ccd, "abc")).unwrap();
        assert!(MappedCcd::open(&path, "abc").is_ok());
        let err = MappedCcd::open(&path, "abd").err().unwrap().to_string();
        assert!(err.contains("made from a CCD other than abd"), "{err}");

        let mut bytes = to_bytes(&ccd, "abc");
        let by_id = bytes.len() - 8;
        assert_eq!(bytes[by_id..], [1, 0, 0, 0, 0, 0, 0, 0], "A (1) sorts before B (0), last column");
        bytes[by_id] = 0;
        std::fs::write(&path, &bytes).unwrap();
        let err = MappedCcd::open(&path, "abc").err().unwrap().to_string();
        assert!(err.contains("column ccd.by_id: entry 1 is out of order"), "{err}");
    }
}
