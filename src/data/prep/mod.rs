//! Preprocessing (`helico preprocess`): a directory of mmCIF/BinaryCIF files into one compact
//! cache file per structure ([`cache`]), a manifest with every entry's metadata and every
//! rejection's reason ([`journal`]), and the dataset hash a run snapshot names.
//!
//! Per source file: read → parse (first model, or one assembly) → complete against the CCD →
//! tokenize (AF3 §2.6) → filters (AF3 §2.5.4, every reason kept) → cache file, written
//! atomically and named by the file's stem. Files run in parallel on a rayon pool; the main
//! thread appends each outcome to the manifest as it arrives, so a run that is interrupted or
//! killed resumes where it stopped: a file is done again only when its size, modification time
//! or the parameters (format version, CCD, filters, tokenizer) changed, or its cache is gone.
//! A file that cannot be read or built is recorded with the error and the run goes on.
//!
//! With MSA sources (`--msa`), each kept entry's protein and RNA entities get their alignments
//! from the OpenFold layout ([`crate::data::msa::find_entity_msas`]), stored in the cache
//! file; what was used and every file left out (with its reason) go into the entry's manifest
//! line. The sources' identities (canonical path; a tar's size and mtime) are part of the
//! records' parameters, so another source redoes every entry, and every alignment file read
//! is stamped, so an edited file redoes its entry. The dataset hash covers the sources only
//! through the cache files' content: the same alignments elsewhere give the same dataset.

mod alignments;
pub mod cache;
pub(crate) mod ccd_cache;
pub mod collate;
mod columns;
mod components;
pub mod journal;
pub mod loader;
pub mod sampling;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::IsTerminal;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, UNIX_EPOCH};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};

use crate::data::DataError;
use crate::data::ccd::Ccd;
use crate::data::cif::CifFile;
use crate::data::msa::{AlignmentSource, MAX_STORED_ROWS, MsaError, find_entity_msas};
use crate::data::structure::{self, Filters, MoleculeType, Structure, StructureError};
use crate::data::tokenize::{TokenizeOptions, tokenize};
pub use cache::CachedStructure;
pub use ccd_cache::CcdCache;
pub use journal::{CacheFile, DatasetSummary, Info, Reason, Record, Status};

/// Source files are these, in any case; gzip is detected from the content.
const SUFFIXES: [&str; 4] = [".cif", ".cif.gz", ".bcif", ".bcif.gz"];
/// Cache files live in `structures/<shard>/`, the shard being characters 2–3 of the key
/// (`1abc` → `ab`), as PDB mirrors divide entries, so no directory holds more than a few
/// thousand files.
const STRUCTURES: &str = "structures";

/// Everything that stops preprocessing or reading its output (per-file problems are recorded
/// in the manifest instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrepError {
    /// `--src` is missing, not a directory, or holds no structure files.
    #[error("source {path}: {problem}")]
    Source { path: PathBuf, problem: String },

    /// A file of the output directory could not be read or written.
    #[error("{path}: cannot {action}: {source}")]
    Io { path: PathBuf, action: &'static str, source: std::io::Error },

    /// A cache file is not one this helico can read (magic, version, truncation, bad ranges).
    #[error("{path}: {problem}")]
    Cache { path: PathBuf, problem: String },

    /// `manifest.jsonl` or `prep.json` holds something unexpected.
    #[error("{path}: {problem}; run `helico preprocess` again to rebuild it")]
    Manifest { path: PathBuf, problem: String },

    /// The last preprocessing run into the directory was interrupted: some sources have no
    /// record, so the dataset is not the one the sources define.
    #[error("preprocessing into {dir} was interrupted; run the same `helico preprocess` command again to finish it")]
    Incomplete { dir: PathBuf },

    /// A directory without `prep.json` was given as a preprocessed dataset.
    #[error(
        "{dir} is not a preprocessed dataset (no prep.json); make it with `helico preprocess --src DIR --out {dir}`"
    )]
    NotPrepared { dir: PathBuf },

    /// Features could not be made from a cache file (a component its CCD subset lacks).
    #[error("{path}: cannot make features: {source}")]
    Features { path: PathBuf, source: Box<StructureError> },

    /// An example does not fit the fixed padding of its batch.
    #[error(
        "entry {key}: its crop has {tokens} tokens and {atoms} atoms, more than the fixed padding's {} tokens and {} atoms; raise data.atoms_per_token or set data.pad = \"batch_max\"",
        max.0,
        max.1
    )]
    TooLarge { key: String, tokens: usize, atoms: usize, max: (usize, usize) },

    /// AF3 weighted sampling found no chain with a resolved atom in any entry.
    #[error(
        "{dir}: no entry has a chain with resolved atoms to sample; use sampler = \"uniform\" or preprocess other structures"
    )]
    NoUnits { dir: PathBuf },

    /// A loader thread died (a panic, whose message was printed) before making its batch.
    #[error("loader worker {worker} stopped before making batch {batch}; its panic message is above")]
    LoaderWorker { worker: usize, batch: usize },

    /// The CCD could not be loaded.
    #[error("loading the CCD: {0}")]
    Ccd(#[from] DataError),

    /// An `--msa` source is neither a directory nor a plain tar.
    #[error("MSA source {path}: {source}")]
    Alignments { path: PathBuf, source: Box<MsaError> },
}

/// What decides the content of the cache; all of it enters [`Params::to_json`] and so the
/// dataset hash.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Params {
    pub filters: Filters,
    pub tokenize: TokenizeOptions,
    /// Build this biological assembly instead of the asymmetric unit.
    pub assembly: Option<String>,
    /// MSA sources (directories or plain tars in the OpenFold layout), searched in order.
    pub msa: Vec<PathBuf>,
}

impl Params {
    /// The parameters with the cache format version and the CCD's content hash.
    pub fn to_json(&self, ccd_blake3: &str) -> Value {
        let f = &self.filters;
        crate::hash::canonical(&json!({
            "format_version": cache::FORMAT_VERSION,
            "ccd_blake3": ccd_blake3,
            "assembly": self.assembly,
            "filters": {
                "max_resolution": f.max_resolution,
                "released_by": f.released_by.map(|d| d.to_string()),
                "released_from": f.released_from.map(|d| d.to_string()),
                "max_tokens": f.max_tokens,
                "require_polymer": f.require_polymer,
            },
            "tokenize": { "atomize_bonded_standard_residues": self.tokenize.atomize_bonded_standard_residues },
            // Whether alignments are stored and how; not where from (see the module doc).
            "msa": (!self.msa.is_empty()).then(|| json!({ "layout": "openfold3", "max_stored_rows": MAX_STORED_ROWS })),
        }))
    }
}

/// The hash records are made with: the parameters and the MSA sources' identities.
fn record_params_hash(params: &Value, alignments: &[AlignmentSource]) -> String {
    let sources: Vec<Value> = alignments.iter().map(AlignmentSource::identity).collect();
    crate::hash::of_json(&crate::hash::canonical(&json!({ "params": params, "msa_sources": sources })))
}

/// One preprocessing run.
pub struct Job<'a> {
    pub src: &'a Path,
    pub out: &'a Path,
    pub ccd: &'a Ccd,
    /// BLAKE3 of the CCD file, hex (see [`Params::to_json`]).
    pub ccd_blake3: &'a str,
    pub params: &'a Params,
    /// Worker threads; 0 means one per core.
    pub jobs: usize,
    /// Draw a progress bar on a terminal.
    pub progress: bool,
    /// Set by a signal handler: finish the files in flight, record them, stop.
    pub stop: &'a AtomicBool,
}

/// What a run did, printed at the end (and as JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub sources: usize,
    /// Files (re)processed by this run.
    pub processed: usize,
    /// Files whose record was still valid and were skipped.
    pub up_to_date: usize,
    pub ok: usize,
    pub rejected: usize,
    pub failed: usize,
    pub rejected_by: BTreeMap<String, usize>,
    /// The first few failures, with their errors.
    pub failures: Vec<String>,
    /// Kept entries' entities with a stored alignment, and alignment files left out.
    pub msa_entities: usize,
    pub msa_problems: usize,
    /// The first few alignment problems (the manifest has them all).
    pub msa_problem_examples: Vec<String>,
    pub dataset_hash: String,
    pub seconds: f64,
    /// Processed files per second of this run.
    pub structures_per_second: f64,
    pub interrupted: bool,
    pub out: PathBuf,
}

/// Failures listed in the summary; the manifest has them all.
const SHOWN_FAILURES: usize = 10;

/// Runs preprocessing (see the module doc).
pub fn run(job: &Job<'_>) -> Result<Summary, PrepError> {
    let started = Instant::now();
    let sources = find_sources(job.src)?;
    let alignments = job
        .params
        .msa
        .iter()
        .map(|path| {
            AlignmentSource::open(path)
                .map_err(|source| PrepError::Alignments { path: path.clone(), source: Box::new(source) })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let params = job.params.to_json(job.ccd_blake3);
    let params_hash = record_params_hash(&params, &alignments);
    fs::create_dir_all(job.out.join(STRUCTURES)).map_err(|source| PrepError::Io {
        path: job.out.to_owned(),
        action: "create the output directory",
        source,
    })?;
    remove_stale_temporaries(&job.out.join(STRUCTURES));

    let previous = journal::read(job.out)?;
    let mut records: BTreeMap<String, Record> = BTreeMap::new();
    let mut todo: Vec<Todo> = Vec::new();
    let mut keys: HashMap<String, String> = HashMap::new();
    let mut up_to_date = 0;
    for rel in &sources {
        let path = job.src.join(rel);
        let meta =
            fs::metadata(&path).map_err(|source| PrepError::Io { path: path.clone(), action: "stat", source })?;
        let (size, mtime_ns) = (meta.len(), meta.modified().map(unix_nanos).unwrap_or(0));
        let key = key_of(rel);
        if let Some(first) = keys.insert(key.clone(), rel.clone()) {
            let error = format!("{rel}: entry {key} is already taken by {first}; cache files are named by file stem");
            let record = failed(rel, size, mtime_ns, &params_hash, &key, error);
            records.insert(rel.clone(), record);
            continue;
        }
        match previous.get(rel) {
            Some(r)
                if r.size == size
                    && r.mtime_ns == mtime_ns
                    && r.params == params_hash
                    && cache_ok(job.out, r)
                    && r.msa.as_ref().is_none_or(|m| m.inputs.iter().all(|f| f.unchanged())) =>
            {
                records.insert(rel.clone(), r.clone());
                up_to_date += 1;
            }
            _ => todo.push(Todo { rel: rel.clone(), path, size, mtime_ns, key }),
        }
    }
    // Largest first: the long files start early, so the last worker does not finish alone.
    todo.sort_by(|a, b| b.size.cmp(&a.size).then(a.rel.cmp(&b.rel)));

    let processed = process_all(job, &alignments, &todo, &params_hash, &mut records)?;
    let interrupted = processed < todo.len();
    // Cache files of entries that are gone, rejected now, or renamed.
    let live: HashSet<&str> = records.values().filter_map(|r| r.cache.as_ref()).map(|c| c.path.as_str()).collect();
    for cache in previous.values().filter_map(|r| r.cache.as_ref()) {
        if !live.contains(cache.path.as_str()) {
            let _ = fs::remove_file(job.out.join(&cache.path));
        }
    }
    journal::rewrite(job.out, &records)?;

    let mut rejected_by = BTreeMap::new();
    for reason in records.values().flat_map(|r| &r.reasons) {
        *rejected_by.entry(reason.label.clone()).or_insert(0) += 1;
    }
    let count = |s: Status| records.values().filter(|r| r.status == s).count();
    let kept: Vec<&Record> = records.values().filter(|r| r.status == Status::Ok).collect();
    let dataset_hash = journal::dataset_hash(&kept, &params)?;
    let summary = DatasetSummary {
        params,
        params_hash,
        src: job.src.to_owned(),
        sources: sources.len(),
        ok: count(Status::Ok),
        rejected: count(Status::Rejected),
        failed: count(Status::Failed),
        rejected_by: rejected_by.clone(),
        dataset_hash: dataset_hash.clone(),
        complete: !interrupted,
        msa: job.params.msa.clone(),
    };
    journal::write_summary(job.out, &summary)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Summary {
        sources: sources.len(),
        processed,
        up_to_date,
        ok: summary.ok,
        rejected: summary.rejected,
        failed: summary.failed,
        rejected_by,
        failures: records.values().filter_map(|r| r.error.clone()).take(SHOWN_FAILURES).collect(),
        msa_entities: kept.iter().filter_map(|r| r.msa.as_ref()).map(|m| m.entities.len()).sum(),
        msa_problems: records.values().filter_map(|r| r.msa.as_ref()).map(|m| m.problems.len()).sum(),
        msa_problem_examples: records
            .values()
            .filter_map(|r| r.msa.as_ref())
            .flat_map(|m| m.problems.iter().cloned())
            .take(SHOWN_FAILURES)
            .collect(),
        dataset_hash,
        seconds,
        structures_per_second: processed as f64 / seconds.max(1e-9),
        interrupted,
        out: job.out.to_owned(),
    })
}

/// A source file to process.
struct Todo {
    rel: String,
    path: PathBuf,
    size: u64,
    mtime_ns: i64,
    key: String,
}

/// Processes `todo` on a pool of `job.jobs` threads, appending each record to the journal as
/// it arrives; returns how many were processed (fewer than all when stopped).
fn process_all(
    job: &Job<'_>,
    alignments: &[AlignmentSource],
    todo: &[Todo],
    params_hash: &str,
    records: &mut BTreeMap<String, Record>,
) -> Result<usize, PrepError> {
    let mut journal = journal::Journal::open(job.out)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(job.jobs)
        .thread_name(|i| format!("helico-prep-{i}"))
        .build()
        .map_err(|e| PrepError::Source { path: job.src.to_owned(), problem: format!("cannot start workers: {e}") })?;
    let bar = progress_bar(job.progress, todo.len());
    let (tx, rx) = std::sync::mpsc::channel::<Record>();
    let mut done = 0;
    std::thread::scope(|scope| -> Result<(), PrepError> {
        scope.spawn(move || {
            pool.install(|| {
                todo.par_iter().for_each_with(tx, |tx, item| {
                    if !job.stop.load(Ordering::Relaxed) {
                        // The receiver outlives the senders; a send error cannot happen.
                        let _ = tx.send(process_one(job, alignments, item, params_hash));
                    }
                });
            });
        });
        for record in rx {
            journal.append(&record)?;
            if let Some(bar) = &bar {
                bar.inc(1);
            }
            records.insert(record.source.clone(), record);
            done += 1;
        }
        Ok(())
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(done)
}

fn progress_bar(show: bool, total: usize) -> Option<indicatif::ProgressBar> {
    if !show || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    let style = indicatif::ProgressStyle::with_template(
        "preprocess {bar:30} {pos}/{len} structures, {per_sec} [{elapsed_precise}, ETA {eta}]",
    )
    .expect("a valid progress template");
    bar.set_style(style);
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    Some(bar)
}

/// One source file to its record; never fails (a panic in the pipeline is a recorded failure
/// naming the file, so one bad entry cannot end a run over the PDB).
fn process_one(job: &Job<'_>, alignments: &[AlignmentSource], item: &Todo, params_hash: &str) -> Record {
    let fail = |error: String| failed(&item.rel, item.size, item.mtime_ns, params_hash, &item.key, error);
    let bytes = match fs::read(&item.path) {
        Ok(bytes) => bytes,
        Err(e) => return fail(format!("{}: cannot read: {e}", item.path.display())),
    };
    let blake3 = blake3::hash(&bytes).to_hex().to_string();
    let built = std::panic::catch_unwind(AssertUnwindSafe(|| build(job, alignments, item, bytes)));
    let mut record = match built {
        Ok(Ok(record)) => record,
        Ok(Err(error)) => fail(error),
        Err(_) => {
            fail(format!("{}: internal error while preprocessing (a bug; please report it)", item.path.display()))
        }
    };
    record.blake3 = blake3;
    record.params = params_hash.to_owned();
    record
}

/// Parse, complete, tokenize, filter, find the alignments and write the cache file of a kept
/// structure; the error is the message to record (it names the file, and the line and
/// structure where known).
fn build(job: &Job<'_>, alignments: &[AlignmentSource], item: &Todo, bytes: Vec<u8>) -> Result<Record, String> {
    let file = CifFile::from_bytes(bytes, &item.path).map_err(|e| e.to_string())?;
    let options = structure::Options { assembly: job.params.assembly.clone(), ..Default::default() };
    let observed = Structure::from_cif(&file, &options).map_err(|e| e.to_string())?;
    drop(file);
    let (s, _) = observed.complete(job.ccd).map_err(|e| e.to_string())?;
    let tokens = tokenize(&s, &job.params.tokenize);
    let reasons: Vec<Reason> = job
        .params
        .filters
        .check(&s, tokens.len())
        .iter()
        .map(|r| Reason { label: r.label().to_owned(), message: r.to_string() })
        .collect();
    let mut record = Record {
        source: item.rel.clone(),
        size: item.size,
        mtime_ns: item.mtime_ns,
        blake3: String::new(),
        params: String::new(),
        key: item.key.clone(),
        status: if reasons.is_empty() { Status::Ok } else { Status::Rejected },
        info: Some(info(&s, tokens.len())),
        cache: None,
        reasons,
        error: None,
        msa: None,
    };
    if record.status == Status::Ok {
        let (msas, report) = find_entity_msas(&s, job.ccd, &item.key, alignments);
        record.msa = (!alignments.is_empty()).then_some(report);
        let rel = cache_path(&item.key);
        let path = job.out.join(&rel);
        let bytes = CachedStructure::new(s, tokens, job.ccd, msas).to_bytes();
        let write = |source| format!("{}: cannot write the cache file: {source}", path.display());
        fs::create_dir_all(path.parent().expect("cache paths have a shard directory")).map_err(write)?;
        crate::atomic::write(&path, &bytes).map_err(write)?;
        record.cache = Some(CacheFile {
            path: rel.to_string_lossy().into_owned(),
            bytes: bytes.len() as u64,
            blake3: blake3::hash(&bytes).to_hex().to_string(),
        });
    }
    Ok(record)
}

fn info(s: &Structure, tokens: usize) -> Info {
    let mut types: Vec<MoleculeType> = s.residues.iter().map(|r| r.molecule).collect();
    types.sort();
    types.dedup();
    Info {
        id: s.id.clone(),
        methods: s.metadata.methods.clone(),
        resolution: s.metadata.resolution,
        release_date: s.metadata.release_date.map(|d| d.to_string()),
        chains: s.chains.len(),
        molecule_types: types.iter().map(|t| format!("{t:?}").to_lowercase()).collect(),
        residues: s.residues.len(),
        tokens,
        atoms: s.atoms.len(),
        unresolved_atoms: s.atoms.resolved.iter().filter(|r| !**r).count(),
    }
}

fn failed(rel: &str, size: u64, mtime_ns: i64, params: &str, key: &str, error: String) -> Record {
    Record {
        source: rel.to_owned(),
        size,
        mtime_ns,
        blake3: String::new(),
        params: params.to_owned(),
        key: key.to_owned(),
        status: Status::Failed,
        info: None,
        cache: None,
        reasons: Vec::new(),
        error: Some(error),
        msa: None,
    }
}

/// The entry name of a source path: its file name without the structure suffixes, lower case.
pub fn key_of(rel: &str) -> String {
    let name = rel.rsplit('/').next().unwrap_or(rel).to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let name = name.strip_suffix(".cif").or_else(|| name.strip_suffix(".bcif")).unwrap_or(name);
    name.to_owned()
}

/// `structures/ab/1abc.hsc`.
pub fn cache_path(key: &str) -> PathBuf {
    let shard: String = if key.len() >= 3 { key.chars().skip(1).take(2).collect() } else { key.to_owned() };
    Path::new(STRUCTURES).join(shard).join(format!("{key}.{}", cache::EXTENSION))
}

/// Whether a kept record's cache file is still there with the size it was written with.
fn cache_ok(out: &Path, record: &Record) -> bool {
    match &record.cache {
        Some(c) => fs::metadata(out.join(&c.path)).is_ok_and(|m| m.len() == c.bytes),
        None => record.status != Status::Ok,
    }
}

/// Structure files under `src`, relative to it with `/` separators, sorted.
pub fn find_sources(src: &Path) -> Result<Vec<String>, PrepError> {
    let problem = |problem: &str| PrepError::Source { path: src.to_owned(), problem: problem.to_owned() };
    if !src.is_dir() {
        return Err(problem(if src.exists() { "is not a directory" } else { "does not exist" }));
    }
    let mut out = Vec::new();
    let mut stack = vec![src.to_owned()];
    let mut seen = HashSet::new();
    while let Some(dir) = stack.pop() {
        let entries =
            fs::read_dir(&dir).map_err(|source| PrepError::Io { path: dir.clone(), action: "list", source })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                // Symlinked directories can loop; each real directory is walked once.
                if fs::canonicalize(&path).is_ok_and(|real| seen.insert(real)) {
                    stack.push(path);
                }
                continue;
            }
            let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
            if !name.starts_with('.') && SUFFIXES.iter().any(|s| name.ends_with(s)) {
                let rel = path.strip_prefix(src).expect("walked from src");
                out.push(rel.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/"));
            }
        }
    }
    if out.is_empty() {
        return Err(problem("holds no structure files (.cif, .cif.gz, .bcif, .bcif.gz)"));
    }
    out.sort();
    Ok(out)
}

/// Temporary files of atomic writes that a killed run left behind (`.<name>.tmp-<pid>-<n>`).
fn remove_stale_temporaries(structures: &Path) {
    let Ok(shards) = fs::read_dir(structures) else { return };
    for shard in shards.flatten() {
        let Ok(files) = fs::read_dir(shard.path()) else { continue };
        for file in files.flatten() {
            let name = file.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.contains(".tmp-") {
                let _ = fs::remove_file(file.path());
            }
        }
    }
}

fn unix_nanos(t: std::time::SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// BLAKE3 of a file (the CCD), hex.
pub fn file_blake3(path: &Path) -> Result<String, PrepError> {
    let mut hasher = blake3::Hasher::new();
    let file =
        fs::File::open(path).map_err(|source| PrepError::Io { path: path.to_owned(), action: "read", source })?;
    hasher.update_reader(file).map_err(|source| PrepError::Io { path: path.to_owned(), action: "read", source })?;
    Ok(hasher.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_cache_paths() {
        assert_eq!(key_of("ab/1ABC.cif.gz"), "1abc");
        assert_eq!(key_of("7l39.bcif"), "7l39");
        assert_eq!(key_of("x.cif"), "x");
        assert_eq!(cache_path("1abc"), Path::new("structures/ab/1abc.hsc"));
        assert_eq!(cache_path("x"), Path::new("structures/x/x.hsc"));
    }
}
