//! `helico bench loader`: AF3 loader throughput over a preprocessed directory. The loader runs
//! as training would run it ([`Af3Dataset::epoch`] with its worker threads, epochs one after
//! another until K batches), and each example's stages (read the cache file, crop, features,
//! collate) are timed where they run, so the report gives examples/s end to end and where a
//! worker's time goes. Opening the dataset is timed apart: for AF3 weighted sampling it reads
//! every cache file once to find chains and interfaces.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::data::prep::loader::{Af3DataConfig, Af3Dataset, PadMode, Sampler, StageTimes};
use crate::data::prep::sampling::{EntryUnits, UnitKind};
use crate::data::prep::{CachedStructure, journal};

/// What to measure.
pub struct LoaderBench {
    /// The `af3` data section: directory, crop, batch, workers, sampler, padding.
    pub data: Af3DataConfig,
    /// Batches to time (after the first, which includes starting the workers).
    pub batches: usize,
    pub seed: u64,
    /// The command line, for the report.
    pub command: String,
}

/// Opening the dataset.
#[derive(Debug, Clone, Serialize)]
pub struct Open {
    pub entries: usize,
    /// Reading the manifest.
    pub manifest_secs: f64,
    /// Opening for AF3 weighted sampling: the manifest again, then every cache file for chains
    /// and interfaces.
    pub units_secs: Option<f64>,
    pub chains: usize,
    pub interfaces: usize,
    pub clusters: usize,
    /// One thread, per entry: reading its cache file, and finding its chains, clusters and
    /// interfaces (mean, and the largest entry's).
    pub read_ms: f64,
    pub units_ms: f64,
    pub largest_entry: String,
    pub largest_read_ms: f64,
    pub largest_units_ms: f64,
}

/// Mean milliseconds per example of each stage, summed over the worker threads.
#[derive(Debug, Clone, Serialize)]
pub struct StageMs {
    pub read: f64,
    pub crop: f64,
    pub features: f64,
    /// MSA features of the crop's chains.
    pub msa: f64,
    /// Padding and stacking, per example (a batch's time over its examples).
    pub collate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub command: String,
    pub commit: String,
    pub date: String,
    pub dir: String,
    pub dataset_hash: String,
    pub crop_size: i64,
    pub batch_size: i64,
    pub workers: i64,
    pub prefetch: i64,
    pub sampler: Sampler,
    pub pad: PadMode,
    pub open: Open,
    /// Timed batches and their examples (the first batch is not among them).
    pub batches: usize,
    pub examples: usize,
    pub seconds: f64,
    pub examples_per_second: f64,
    /// From asking for the epoch to holding its first batch (threads start, pipeline fills).
    pub first_batch_secs: f64,
    pub stage_ms: StageMs,
    pub mean_tokens: f64,
    pub mean_atoms: f64,
    /// Fraction of token and atom positions of the padded tensors that are padding.
    pub token_padding: f64,
    pub atom_padding: f64,
    pub cpu: String,
    pub cores: usize,
    /// `release` unless the binary was built without optimisations (then the numbers mean little).
    pub build: String,
}

/// Runs the benchmark.
pub fn run(bench: &LoaderBench) -> anyhow::Result<Report> {
    let dir = PathBuf::from(&bench.data.dir);
    let summary = journal::read_summary(&dir)?;
    let started = Instant::now();
    if Af3Dataset::open(&dir)?.is_empty() {
        bail!("{}: the dataset has no entries", dir.display());
    }
    let manifest_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let dataset = Arc::new(Af3Dataset::open_with(&dir, bench.data.sampler)?);
    let units_secs = dataset.units().map(|_| started.elapsed().as_secs_f64());
    let (mut read, mut units, mut largest) = (0.0, 0.0, (0, String::new(), 0.0, 0.0));
    for e in dataset.entries() {
        let started = Instant::now();
        let cached = CachedStructure::read(&e.path)?;
        let read_ms = started.elapsed().as_secs_f64() * 1e3;
        let started = Instant::now();
        EntryUnits::of(&cached.structure, &cached.ccd);
        let units_ms = started.elapsed().as_secs_f64() * 1e3;
        (read, units) = (read + read_ms, units + units_ms);
        if cached.structure.atoms.len() > largest.0 {
            largest = (cached.structure.atoms.len(), e.key.clone(), read_ms, units_ms);
        }
    }
    let count = |kind: UnitKind| dataset.units().map_or(0, |u| u.units.iter().filter(|u| u.kind == kind).count());
    let open = Open {
        entries: dataset.len(),
        manifest_secs,
        units_secs,
        chains: count(UnitKind::Chain),
        interfaces: count(UnitKind::Interface),
        clusters: dataset.units().map_or(0, |u| u.clusters.len()),
        read_ms: read / dataset.len() as f64,
        units_ms: units / dataset.len() as f64,
        largest_entry: largest.1,
        largest_read_ms: largest.2,
        largest_units_ms: largest.3,
    };

    let config = bench.data.loader_config(bench.seed);
    let (mut times, mut examples, mut tokens, mut atoms, mut padded) = (StageTimes::default(), 0, 0, 0, (0, 0));
    let (mut timed, mut first_batch_secs, mut epoch) = (0, 0.0, 0);
    let mut clock = Instant::now();
    let mut start = None;
    'epochs: loop {
        for batch in dataset.epoch(&config, epoch) {
            let batch = batch?;
            if start.is_none() {
                first_batch_secs = clock.elapsed().as_secs_f64();
                clock = Instant::now();
                start = Some(());
                continue;
            }
            times += batch.times;
            examples += batch.len();
            tokens += batch.n_tokens.iter().sum::<usize>();
            atoms += batch.n_atoms.iter().sum::<usize>();
            let (n, a) = batch.padded_sizes();
            padded = (padded.0 + n * batch.len(), padded.1 + a * batch.len());
            timed += 1;
            if timed == bench.batches {
                break 'epochs;
            }
        }
        epoch += 1;
    }
    let seconds = clock.elapsed().as_secs_f64();
    let per = |secs: f64| secs * 1e3 / examples as f64;
    Ok(Report {
        command: bench.command.clone(),
        commit: commit(),
        date: chrono::Local::now().format("%Y%m%d-%H%M%S").to_string(),
        dir: bench.data.dir.clone(),
        dataset_hash: summary.dataset_hash,
        crop_size: bench.data.crop_size,
        batch_size: bench.data.batch_size,
        workers: bench.data.workers,
        prefetch: bench.data.prefetch,
        sampler: bench.data.sampler,
        pad: bench.data.pad,
        open,
        batches: timed,
        examples,
        seconds,
        examples_per_second: examples as f64 / seconds,
        first_batch_secs,
        stage_ms: StageMs {
            read: per(times.read),
            crop: per(times.crop),
            features: per(times.features),
            msa: per(times.msa),
            collate: per(times.collate),
        },
        mean_tokens: tokens as f64 / examples as f64,
        mean_atoms: atoms as f64 / examples as f64,
        token_padding: 1.0 - tokens as f64 / padded.0 as f64,
        atom_padding: 1.0 - atoms as f64 / padded.1 as f64,
        cpu: super::parse::cpu_model(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        build: if cfg!(debug_assertions) { "debug" } else { "release" }.to_owned(),
    })
}

impl Report {
    /// Writes `<date>-<time>-loader.json` and `.md` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let base = dir.join(format!("{}-loader", self.date));
        let (json, md) = (base.with_extension("json"), base.with_extension("md"));
        crate::atomic::write(&json, (serde_json::to_string_pretty(self)? + "\n").as_bytes())?;
        crate::atomic::write(&md, self.markdown().as_bytes())?;
        Ok((json, md))
    }

    pub fn markdown(&self) -> String {
        let o = &self.open;
        let units = match o.units_secs {
            Some(s) => format!(
                "; reading every cache file for sampling units {:.3} s on all cores: {} chains, {} interfaces, \
                 {} clusters",
                s, o.chains, o.interfaces, o.clusters
            ),
            None => String::new(),
        };
        let per_entry = format!(
            "Per entry on one thread: reading the cache file {:.2} ms, finding chains, clusters and interfaces \
             {:.2} ms (the largest entry, {}: {:.2} and {:.2} ms).",
            o.read_ms, o.units_ms, o.largest_entry, o.largest_read_ms, o.largest_units_ms
        );
        let s = &self.stage_ms;
        let total = s.read + s.crop + s.features + s.msa + s.collate;
        let share = |x: f64| 100.0 * x / total;
        format!(
            "# AF3 loader throughput ({})\n\n\
             `{}` at commit `{}` ({} build).\n\n\
             Dataset `{}` (hash `{}`), {} entries. CPU: {} ({} cores, shared machine).\n\n\
             Crop {} tokens, batch {}, {} workers × prefetch {}, sampler `{}`, padding `{}`.\n\n\
             Opening: manifest {:.3} s{}. {}\n\n\
             ## Throughput\n\n\
             {} batches, {} examples in {:.2} s: **{:.1} examples/s**; the first batch took {:.2} s. \
             Examples average {:.0} tokens and {:.0} atoms; padding is {:.1}% of token positions and \
             {:.1}% of atom positions.\n\n\
             ## Stages (ms per example, summed over workers)\n\n\
             | stage | ms | share |\n|---|---:|---:|\n\
             | read the cache file | {:.3} | {:.1}% |\n\
             | crop | {:.3} | {:.1}% |\n\
             | features | {:.3} | {:.1}% |\n\
             | MSA features | {:.3} | {:.1}% |\n\
             | collate | {:.3} | {:.1}% |\n",
            self.date,
            self.command,
            self.commit,
            self.build,
            self.dir,
            self.dataset_hash,
            o.entries,
            self.cpu,
            self.cores,
            self.crop_size,
            self.batch_size,
            self.workers,
            self.prefetch,
            label(self.sampler),
            label(self.pad),
            o.manifest_secs,
            units,
            per_entry,
            self.batches,
            self.examples,
            self.seconds,
            self.examples_per_second,
            self.first_batch_secs,
            self.mean_tokens,
            self.mean_atoms,
            100.0 * self.token_padding,
            100.0 * self.atom_padding,
            s.read,
            share(s.read),
            s.crop,
            share(s.crop),
            s.features,
            share(s.features),
            s.msa,
            share(s.msa),
            s.collate,
            share(s.collate),
        )
    }
}

/// `git describe --always --dirty` of the working directory, or "unknown".
fn commit() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(|| "unknown".to_owned(), |o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

/// A config enum as its TOML spelling (`af3_weighted`).
fn label(value: impl Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}
