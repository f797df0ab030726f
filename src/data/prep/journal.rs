//! The preprocessing manifest, `manifest.jsonl`: one JSON line per source file saying what
//! became of it (cached with its metadata, rejected with every filter's reason, or failed with
//! the error naming file, line and structure), and `prep.json`: the parameters, the counts and
//! the dataset hash.
//!
//! While preprocessing runs, each finished file appends its line and flushes, so a killed run
//! loses at most the files in flight: a re-run keeps every line whose source file still has
//! the recorded size and modification time and whose parameters are the current ones. A torn
//! last line (the kill came mid-write) is ignored. At the end the journal is rewritten
//! atomically, one line per current source, sorted by source path.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::PrepError;
use crate::data::manifest::{DataManifest, FileEntry, combined_hash};
use crate::data::msa::MsaReport;

/// The manifest's file name in the output directory.
pub const MANIFEST: &str = "manifest.jsonl";
/// The summary's file name in the output directory.
pub const SUMMARY: &str = "prep.json";

/// What became of one source file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The source file, relative to `--src`.
    pub source: String,
    /// Size and modification time (ns since the epoch) of the source when it was read.
    pub size: u64,
    pub mtime_ns: i64,
    /// BLAKE3 of the source file's bytes, hex; empty when it could not be read.
    pub blake3: String,
    /// Hash of the preprocessing parameters and MSA sources the record was made with.
    pub params: String,
    /// The entry's name: the file name without `.cif`, `.bcif` and `.gz`, lower case (a PDB id
    /// for PDB mirrors). Cache files are named by it.
    pub key: String,
    pub status: Status,
    /// What the structure holds; absent when it could not be built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Info>,
    /// The cache file of a kept entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheFile>,
    /// Every filter that rejected the structure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
    /// Why the file could not be turned into a structure: file, line or record, structure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The alignments stored for a kept entry and the files left out (with `--msa` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msa: Option<MsaReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Cached, and part of the dataset.
    Ok,
    /// Read and tokenized, but left out by a filter (data, not an error).
    Rejected,
    /// Unreadable, corrupt, or referring to components the CCD lacks.
    Failed,
}

/// Entry metadata, for filtering and size bucketing without opening the cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// `_entry.id`.
    pub id: String,
    pub methods: Vec<String>,
    /// Å.
    pub resolution: Option<f32>,
    /// YYYY-MM-DD.
    pub release_date: Option<String>,
    pub chains: usize,
    /// Molecule types present, in the order protein, rna, dna, ligand.
    pub molecule_types: Vec<String>,
    pub residues: usize,
    pub tokens: usize,
    pub atoms: usize,
    /// Atoms the file does not place (added from the sequence and the CCD).
    pub unresolved_atoms: usize,
}

/// A cache file as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheFile {
    /// Relative to the output directory.
    pub path: String,
    pub bytes: u64,
    /// BLAKE3 of the file, hex: what the dataset hash covers.
    pub blake3: String,
}

/// One filter's rejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Short and stable, for counting ("resolution", "no polymer").
    pub label: String,
    /// With the values ("resolution 9.5 Å is worse than 9 Å").
    pub message: String,
}

/// `prep.json`: how the output directory was made, and the dataset's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSummary {
    /// The preprocessing parameters (format version, CCD hash, filters, tokenizer options).
    pub params: Value,
    pub params_hash: String,
    /// The source directory of the last run.
    pub src: PathBuf,
    pub sources: usize,
    pub ok: usize,
    pub rejected: usize,
    pub failed: usize,
    /// Rejections per filter label.
    pub rejected_by: BTreeMap<String, usize>,
    /// [`dataset_hash`] of the kept entries.
    pub dataset_hash: String,
    /// False when the last run was interrupted: some sources have no record yet.
    pub complete: bool,
    /// The MSA sources of the last run, in search order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub msa: Vec<PathBuf>,
}

/// The records of `dir/manifest.jsonl`, the last one per source; missing means none. A line
/// that does not parse is dropped (its file is then processed again): a killed run can leave
/// a torn last line.
pub fn read(dir: &Path) -> Result<BTreeMap<String, Record>, PrepError> {
    let path = dir.join(MANIFEST);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => return Err(PrepError::Io { path, action: "read the manifest", source }),
    };
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Ok(record) = serde_json::from_str::<Record>(line) {
            out.insert(record.source.clone(), record);
        }
    }
    Ok(out)
}

/// The kept entries of a preprocessed directory, sorted by key: what a loader reads. A
/// directory whose last run was interrupted is an error, not a smaller dataset.
pub fn entries(dir: &Path) -> Result<Vec<Record>, PrepError> {
    if !read_summary(dir)?.complete {
        return Err(PrepError::Incomplete { dir: dir.to_owned() });
    }
    let mut out: Vec<Record> =
        read(dir)?.into_values().filter(|r| r.status == Status::Ok && r.cache.is_some()).collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// Appends records to the journal as files finish.
pub struct Journal {
    file: fs::File,
    path: PathBuf,
}

impl Journal {
    pub fn open(dir: &Path) -> Result<Journal, PrepError> {
        let path = dir.join(MANIFEST);
        let file = fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|source| PrepError::Io {
            path: path.clone(),
            action: "open the manifest",
            source,
        })?;
        Ok(Journal { file, path })
    }

    /// One line, written with one `write` call and flushed, so a kill leaves whole lines
    /// behind it (and at most one torn line).
    pub fn append(&mut self, record: &Record) -> Result<(), PrepError> {
        let mut line = serde_json::to_vec(record).expect("records serialize");
        line.push(b'\n');
        self.file.write_all(&line).and_then(|()| self.file.flush()).map_err(|source| PrepError::Io {
            path: self.path.clone(),
            action: "append to the manifest",
            source,
        })
    }
}

/// Replaces the journal with `records` (sorted by source), atomically.
pub fn rewrite(dir: &Path, records: &BTreeMap<String, Record>) -> Result<(), PrepError> {
    let path = dir.join(MANIFEST);
    let mut text = Vec::new();
    for record in records.values() {
        serde_json::to_writer(&mut text, record).expect("records serialize");
        text.push(b'\n');
    }
    crate::atomic::write(&path, &text).map_err(|source| PrepError::Io { path, action: "write the manifest", source })
}

/// The dataset hash: [`combined_hash`] over the kept entries' cache-file hashes in key order,
/// then the parameters. Cache files hold the completed structures, their tokens and the CCD
/// components they use, so the hash changes with the data, the CCD and the parameters, and not
/// with paths, timestamps, or files that were left out.
pub fn dataset_hash(kept: &[&Record], params: &Value) -> Result<String, PrepError> {
    let mut sorted: Vec<&&Record> = kept.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut hashes = Vec::with_capacity(sorted.len());
    for record in sorted {
        let cache = record.cache.as_ref().ok_or_else(|| PrepError::Manifest {
            path: PathBuf::from(MANIFEST),
            problem: format!("entry {} is kept but has no cache file", record.key),
        })?;
        let hash = blake3::Hash::from_hex(&cache.blake3).map_err(|_| PrepError::Manifest {
            path: PathBuf::from(MANIFEST),
            problem: format!("entry {}: cache hash {:?} is not hex BLAKE3", record.key, cache.blake3),
        })?;
        hashes.push(hash);
    }
    Ok(combined_hash(&hashes, params))
}

/// The preprocessed dataset in `dir` as a run's [`DataManifest`]: its cache files (key order),
/// the preprocessing parameters and the dataset hash, which equals
/// `DataManifest::build(cache files, params)`. The files are stat'ed, not read.
pub fn data_manifest(dir: &Path) -> Result<DataManifest, PrepError> {
    let summary = read_summary(dir)?;
    let kept = entries(dir)?;
    let mut files = Vec::with_capacity(kept.len());
    for record in &kept {
        let cache = record.cache.as_ref().expect("entries() keeps records with a cache file");
        let path = dir.join(&cache.path);
        let meta =
            fs::metadata(&path).map_err(|source| PrepError::Io { path: path.clone(), action: "stat", source })?;
        let mtime = meta.modified().map_err(|source| PrepError::Io { path: path.clone(), action: "stat", source })?;
        files.push(FileEntry {
            path,
            size: meta.len(),
            mtime: chrono::DateTime::<chrono::Utc>::from(mtime).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            blake3: cache.blake3.clone(),
        });
    }
    let refs: Vec<&Record> = kept.iter().collect();
    let hash = dataset_hash(&refs, &summary.params)?;
    Ok(DataManifest { files, params: crate::hash::canonical(&summary.params), hash })
}

/// `dir/prep.json`.
pub fn read_summary(dir: &Path) -> Result<DatasetSummary, PrepError> {
    let path = dir.join(SUMMARY);
    let bytes = fs::read(&path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => PrepError::NotPrepared { dir: dir.to_owned() },
        _ => PrepError::Io { path: path.clone(), action: "read", source },
    })?;
    serde_json::from_slice(&bytes).map_err(|e| PrepError::Manifest { path, problem: e.to_string() })
}

pub fn write_summary(dir: &Path, summary: &DatasetSummary) -> Result<(), PrepError> {
    let path = dir.join(SUMMARY);
    let text = serde_json::to_vec_pretty(summary).expect("the summary serializes");
    crate::atomic::write(&path, &text).map_err(|source| PrepError::Io { path, action: "write", source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(source: &str, status: Status) -> Record {
        Record {
            source: source.into(),
            size: 1,
            mtime_ns: 2,
            blake3: String::new(),
            params: "p".into(),
            key: source.trim_end_matches(".cif").into(),
            status,
            info: None,
            cache: None,
            reasons: Vec::new(),
            error: Some("x.cif:3: broken".into()),
            msa: None,
        }
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_later_lines_win() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path()).unwrap();
        journal.append(&record("a.cif", Status::Failed)).unwrap();
        journal.append(&record("b.cif", Status::Failed)).unwrap();
        journal.append(&record("a.cif", Status::Rejected)).unwrap();
        let mut text = fs::read_to_string(dir.path().join(MANIFEST)).unwrap();
        text.push_str("{\"source\":\"c.cif\",\"si");
        fs::write(dir.path().join(MANIFEST), text).unwrap();
        let records = read(dir.path()).unwrap();
        assert_eq!(records.keys().collect::<Vec<_>>(), ["a.cif", "b.cif"]);
        assert_eq!(records["a.cif"].status, Status::Rejected);
    }
}
