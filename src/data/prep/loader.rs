//! The AF3 training loader over a preprocessed directory: per epoch a seeded list of draws,
//! grouped into batches of similar size, each example loaded from its cache file, cropped
//! (AF3 §2.7, [`crate::data::crop`]), turned into [`Features`] and collated ([`super::collate`]),
//! optionally on background threads that stay a few batches ahead.
//!
//! - **Sampling** ([`Sampler`]): `uniform` draws every entry once per epoch in a seeded random
//!   order, and crops anywhere. `af3_weighted` (AF3 §2.5.1, [`super::sampling`]) draws as many
//!   chains and interfaces as there are entries, with replacement, by their weights, and centres
//!   each spatial crop on the drawn unit's chains; its units come from every cache file, read
//!   once when the dataset opens.
//! - **Size bucketing** ("sortish"): the epoch's draws are cut into windows of
//!   `bucket_batches × batch_size`; each window is sorted by cropped token count and cut into
//!   batches; the batches are then shuffled. Examples in a batch have similar sizes, so padding
//!   them to a common N wastes little, and batch order stays random.
//! - **Determinism**: the draws are a function of (seed, epoch), and each example draws its crop
//!   and conformer augmentation from a generator seeded by (seed, epoch, batch, position), so
//!   the result does not depend on the number of threads or on timing. Batch b is made by
//!   worker b mod W and read from that worker's queue, so batches arrive in plan order.
//! - **MSA**: each example's [`MsaFeatures`] come from the alignments in its cache file
//!   (none: one query row), for the crop's chains, with rows drawn from the example's
//!   generator after the crop and the features, so adding them changed no other draw.

use std::ops::AddAssign;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;

use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::collate::{Af3Batch, MAX_ATOMS_PER_TOKEN, Padding, collate};
use super::sampling::{EntryUnits, WeightedUnits};
use super::{CachedStructure, PrepError, journal};
use crate::data::crop::{Crop, CropWeights, crop};
use crate::data::features::{FeatureOptions, Features};
use crate::data::msa::MsaFeatures;
use crate::data::packing::SplitMix64;

/// AF3 supplement §2.5 / Table 6: the initial training stage crops to 384 tokens.
pub const AF3_INITIAL_CROP: usize = 384;

/// The `af3` data source (`data = @af3`): a preprocessed directory and how batches are drawn
/// from it. No AF3 model trains yet; `helico bench loader` runs this loader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Af3DataConfig {
    /// A directory made by `helico preprocess --out DIR` (manifest.jsonl, prep.json, cache
    /// files). Its content, not its path, is the run's data identity.
    #[schemars(extend("x-nonsemantic" = true))]
    pub dir: String,
    /// Tokens per example at most (AF3 supplement Table 6: 384, then 640 and 768 in fine-tuning).
    #[schemars(range(min = 1))]
    pub crop_size: i64,
    /// Examples per batch.
    #[schemars(range(min = 1))]
    pub batch_size: i64,
    /// Size bucketing window, in batches: examples of similar size share a batch. 1 disables it.
    #[schemars(range(min = 1))]
    pub bucket_batches: i64,
    /// `uniform` (every entry once per epoch) or `af3_weighted` (chains and interfaces by AF3
    /// supplement §2.5.1's weights; the crop centres on the drawn unit).
    pub sampler: Sampler,
    /// Probabilities of the crop methods (AF3 supplement Table 4).
    pub crop_weights: CropWeights,
    /// `batch_max` (the batch's largest example) or `fixed` (`crop_size` tokens and
    /// `crop_size × atoms_per_token` atoms: one shape for every batch).
    #[schemars(extend("x-nonsemantic" = true))]
    pub pad: PadMode,
    /// Atoms per token of the fixed atom budget (24 fits any crop; an example over the budget
    /// is an error naming it).
    #[schemars(range(min = 1, max = 24), extend("x-nonsemantic" = true))]
    pub atoms_per_token: i64,
    /// Background threads making batches (0: the training thread makes them).
    #[schemars(range(min = 0), extend("x-nonsemantic" = true))]
    pub workers: i64,
    /// Batches each worker keeps ready.
    #[schemars(range(min = 1), extend("x-nonsemantic" = true))]
    pub prefetch: i64,
}

impl Default for Af3DataConfig {
    fn default() -> Self {
        Self {
            dir: String::new(),
            crop_size: AF3_INITIAL_CROP as i64,
            batch_size: 1,
            bucket_batches: 32,
            sampler: Sampler::Af3Weighted,
            crop_weights: CropWeights::default(),
            pad: PadMode::BatchMax,
            atoms_per_token: MAX_ATOMS_PER_TOKEN as i64,
            workers: 2,
            prefetch: 2,
        }
    }
}

/// How examples are drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sampler {
    /// Every entry once per epoch, in a seeded random order; crops centre anywhere.
    Uniform,
    /// AF3 supplement §2.5.1: chains and interfaces drawn by cluster-normalised weights.
    #[default]
    Af3Weighted,
}

/// The sizes batches are padded to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PadMode {
    /// The largest example of each batch.
    #[default]
    BatchMax,
    /// `crop_size` tokens and `crop_size × atoms_per_token` atoms, in every batch.
    Fixed,
}

impl Af3DataConfig {
    /// Cross-field problems, as (key under `data`, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let w = &self.crop_weights;
        let mut out = Vec::new();
        if w.contiguous + w.spatial + w.spatial_interface <= 0.0 {
            out.push(("crop_weights".into(), "the crop weights sum to 0: give at least one method a weight".into()));
        }
        if self.dir.is_empty() {
            out.push(("dir".into(), "no directory: set it to the --out of `helico preprocess`".into()));
        }
        out
    }

    /// The loader settings, with the experiment's seed.
    pub fn loader_config(&self, seed: u64) -> LoaderConfig {
        let crop_size = self.crop_size as usize;
        LoaderConfig {
            crop_size,
            batch_size: self.batch_size as usize,
            bucket_batches: self.bucket_batches as usize,
            workers: self.workers as usize,
            prefetch: self.prefetch as usize,
            seed,
            crop_weights: self.crop_weights,
            features: FeatureOptions { augment_ref_pos: true },
            padding: match self.pad {
                PadMode::BatchMax => Padding::BatchMax,
                PadMode::Fixed => {
                    Padding::Fixed { tokens: crop_size, atoms: crop_size * self.atoms_per_token as usize }
                }
            },
        }
    }
}

/// How the loader crops, batches, pads and prefetches.
#[derive(Debug, Clone, PartialEq)]
pub struct LoaderConfig {
    /// Tokens per example at most (AF3: 384, then 640 and 768 in fine-tuning).
    pub crop_size: usize,
    pub batch_size: usize,
    /// Size bucketing window, in batches; 1 disables bucketing.
    pub bucket_batches: usize,
    /// Background threads making batches; 0 makes them in the calling thread.
    pub workers: usize,
    /// Batches each worker may hold ready.
    pub prefetch: usize,
    pub seed: u64,
    pub crop_weights: CropWeights,
    pub features: FeatureOptions,
    pub padding: Padding,
}

impl Default for LoaderConfig {
    fn default() -> LoaderConfig {
        Af3DataConfig::default().loader_config(0)
    }
}

/// One kept entry of a preprocessed directory.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetEntry {
    pub key: String,
    /// The cache file.
    pub path: PathBuf,
    /// Tokens before cropping.
    pub tokens: usize,
}

/// The kept entries of a preprocessed directory, sorted by key, and what the sampler draws.
#[derive(Debug)]
pub struct Af3Dataset {
    entries: Vec<DatasetEntry>,
    /// The chains and interfaces of every entry, with their weights (`af3_weighted` only).
    units: Option<WeightedUnits>,
}

/// What one example is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Draw {
    /// Index into the dataset's entries.
    pub entry: usize,
    /// Index into [`WeightedUnits::units`]: the chain or interface the crop centres on.
    pub unit: Option<usize>,
}

/// Seconds spent in each stage of making examples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageTimes {
    /// Memory-mapping and decoding the cache file.
    pub read: f64,
    pub crop: f64,
    /// `Features::new` on the cropped tokens.
    pub features: f64,
    /// `MsaFeatures::new` for the crop's chains.
    pub msa: f64,
    /// Padding and stacking (a batch's, not an example's).
    pub collate: f64,
}

impl AddAssign for StageTimes {
    fn add_assign(&mut self, o: StageTimes) {
        self.read += o.read;
        self.crop += o.crop;
        self.features += o.features;
        self.msa += o.msa;
        self.collate += o.collate;
    }
}

/// One cropped training example.
#[derive(Debug)]
pub struct Example {
    pub key: String,
    pub draw: Draw,
    /// The crop, as indices into the entry's tokens.
    pub crop: Crop,
    pub features: Features,
    /// The crop's MSA features; row 0 equals `features.restype`.
    pub msa: MsaFeatures,
    pub times: StageTimes,
}

impl Af3Dataset {
    /// Reads the manifest of `dir` (made by `helico preprocess`), for uniform sampling.
    pub fn open(dir: &Path) -> Result<Af3Dataset, PrepError> {
        let entries = journal::entries(dir)?
            .into_iter()
            .map(|r| DatasetEntry {
                path: dir.join(&r.cache.as_ref().expect("kept entries have a cache file").path),
                tokens: r.info.as_ref().map_or(0, |i| i.tokens),
                key: r.key,
            })
            .collect();
        Ok(Af3Dataset { entries, units: None })
    }

    /// Reads the manifest of `dir`, and for `af3_weighted` every cache file (in parallel on
    /// rayon's pool) for the chains and interfaces sampling draws from.
    pub fn open_with(dir: &Path, sampler: Sampler) -> Result<Af3Dataset, PrepError> {
        let mut dataset = Af3Dataset::open(dir)?;
        if sampler == Sampler::Af3Weighted {
            let per_entry: Vec<EntryUnits> = dataset
                .entries
                .par_iter()
                .map(|e| CachedStructure::read(&e.path).map(|c| EntryUnits::of(&c.structure, &c.ccd)))
                .collect::<Result<_, _>>()?;
            let units = WeightedUnits::new(&per_entry);
            if units.is_empty() && !dataset.entries.is_empty() {
                return Err(PrepError::NoUnits { dir: dir.to_owned() });
            }
            dataset.units = Some(units);
        }
        Ok(dataset)
    }

    pub fn entries(&self) -> &[DatasetEntry] {
        &self.entries
    }

    /// The weighted sampling units; `None` when the dataset samples uniformly.
    pub fn units(&self) -> Option<&WeightedUnits> {
        self.units.as_ref()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Epoch `epoch`'s batches, as draws (see the module doc).
    pub fn plan(&self, config: &LoaderConfig, epoch: u64) -> Vec<Vec<Draw>> {
        let mut rng = SplitMix64(seed_of(config.seed, &[epoch]));
        let mut draws: Vec<Draw> = match &self.units {
            None => {
                let mut order: Vec<usize> = (0..self.entries.len()).collect();
                shuffle(&mut order, &mut rng);
                order.into_iter().map(|entry| Draw { entry, unit: None }).collect()
            }
            Some(units) => (0..self.entries.len())
                .map(|_| {
                    let u = units.draw(&mut rng);
                    Draw { entry: units.units[u].entry, unit: Some(u) }
                })
                .collect(),
        };
        let batch = config.batch_size.max(1);
        let window = batch * config.bucket_batches.max(1);
        let mut batches = Vec::with_capacity(draws.len().div_ceil(batch));
        for chunk in draws.chunks_mut(window) {
            chunk.sort_by_key(|d| (self.entries[d.entry].tokens.min(config.crop_size), d.entry));
            batches.extend(chunk.chunks(batch).map(<[Draw]>::to_vec));
        }
        shuffle(&mut batches, &mut rng);
        batches
    }

    /// The example of entry `entry` drawn with `seed`, cropped anywhere: load, crop, features.
    pub fn example(&self, config: &LoaderConfig, entry: usize, seed: u64) -> Result<Example, PrepError> {
        self.example_for(config, Draw { entry, unit: None }, seed)
    }

    /// The example of `draw` made with `seed`, its spatial crop centred on the drawn unit's chains.
    pub fn example_for(&self, config: &LoaderConfig, draw: Draw, seed: u64) -> Result<Example, PrepError> {
        let e = &self.entries[draw.entry];
        let mut times = StageTimes::default();
        let started = Instant::now();
        let cached = CachedStructure::read(&e.path)?;
        times.read = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let chains: &[usize] = match (draw.unit, &self.units) {
            (Some(u), Some(units)) => &units.units[u].chains,
            _ => &[],
        };
        let mut rng = SplitMix64(seed);
        let method = config.crop_weights.choose(&mut rng);
        let c = crop(&cached.structure, &cached.tokens, config.crop_size, method, chains, &mut rng);
        let tokens = cached.tokens.select(&c.tokens);
        times.crop = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let features = Features::new(&cached.structure, &tokens, &cached.ccd, &config.features, &mut rng)
            .map_err(|source| PrepError::Features { path: e.path.clone(), source: Box::new(source) })?;
        times.features = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let query = restype_classes(&features.restype);
        let msa = MsaFeatures::new(&cached.structure, &tokens, &query, &cached.msas, rng.next_u64());
        times.msa = started.elapsed().as_secs_f64();
        Ok(Example { key: e.key.clone(), draw, crop: c, features, msa, times })
    }

    /// Batch `b` of `plan`: its examples, collated.
    pub fn batch(
        &self,
        config: &LoaderConfig,
        epoch: u64,
        plan: &[Vec<Draw>],
        b: usize,
    ) -> Result<Af3Batch, PrepError> {
        let examples = plan[b]
            .iter()
            .enumerate()
            .map(|(k, &draw)| self.example_for(config, draw, seed_of(config.seed, &[epoch, b as u64, k as u64])))
            .collect::<Result<Vec<_>, _>>()?;
        collate(examples, config.padding)
    }

    /// The batches of epoch `epoch`, made in the background by `config.workers` threads.
    pub fn epoch(self: &Arc<Self>, config: &LoaderConfig, epoch: u64) -> Batches {
        let plan = Arc::new(self.plan(config, epoch));
        let total = plan.len();
        if config.workers == 0 {
            let (dataset, config) = (Arc::clone(self), config.clone());
            let make = Box::new(move |b: usize| dataset.batch(&config, epoch, &plan, b));
            return Batches { source: Source::Inline(make), next: 0, total };
        }
        let (mut receivers, mut threads) = (Vec::with_capacity(config.workers), Vec::with_capacity(config.workers));
        for w in 0..config.workers {
            let (tx, rx) = sync_channel(config.prefetch.max(1));
            let (dataset, config, plan) = (Arc::clone(self), config.clone(), Arc::clone(&plan));
            let thread = std::thread::Builder::new()
                .name(format!("helico-loader-{w}"))
                .spawn(move || worker(&dataset, &config, epoch, &plan, w, &tx))
                .expect("the OS starts a loader thread");
            receivers.push(rx);
            threads.push(thread);
        }
        Batches { source: Source::Threads { receivers, threads }, next: 0, total }
    }
}

/// Makes batches w, w + W, … in order until the plan ends or the reader goes away.
fn worker(
    dataset: &Af3Dataset,
    config: &LoaderConfig,
    epoch: u64,
    plan: &[Vec<Draw>],
    w: usize,
    tx: &SyncSender<Result<Af3Batch, PrepError>>,
) {
    single_threaded_ops();
    for b in (w..plan.len()).step_by(config.workers) {
        if tx.send(dataset.batch(config, epoch, plan, b)).is_err() {
            return;
        }
    }
}

/// An epoch's batches, in plan order.
pub struct Batches {
    source: Source,
    next: usize,
    total: usize,
}

type MakeBatch = Box<dyn FnMut(usize) -> Result<Af3Batch, PrepError> + Send>;

enum Source {
    Inline(MakeBatch),
    /// One queue per worker; batch b comes from queue b mod W.
    Threads {
        receivers: Vec<Receiver<Result<Af3Batch, PrepError>>>,
        threads: Vec<JoinHandle<()>>,
    },
}

/// Stops the workers and waits for them: a worker still inside libtorch when the process exits
/// meets libtorch's static destructors (an internal assertion about unregistered operators).
impl Drop for Batches {
    fn drop(&mut self) {
        if let Source::Threads { receivers, threads } = &mut self.source {
            // With its queue gone, a worker's next send fails and it returns.
            receivers.clear();
            for thread in threads.drain(..) {
                let _ = thread.join();
            }
        }
    }
}

impl Batches {
    /// Batches in the epoch.
    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

impl Iterator for Batches {
    type Item = Result<Af3Batch, PrepError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.total {
            return None;
        }
        let b = self.next;
        self.next += 1;
        Some(match &mut self.source {
            Source::Inline(make) => make(b),
            Source::Threads { receivers, .. } => {
                let n = receivers.len();
                // A worker only hangs up early by panicking, which has printed its message.
                receivers[b % n].recv().unwrap_or(Err(PrepError::LoaderWorker { worker: b % n, batch: b }))
            }
        })
    }
}

/// The class of each one-hot `restype` row ([N, 32] → [N]).
pub fn restype_classes(restype: &tch::Tensor) -> Vec<u8> {
    let classes = Vec::<i64>::try_from(restype.argmax(-1, false)).expect("restype is a [N, 32] CPU tensor");
    classes.into_iter().map(|c| c as u8).collect()
}

/// Makes libtorch run this thread's operations on the thread itself. The loader is parallel
/// across its workers already; an OpenMP team of its own per worker (libtorch's default, one
/// thread per core) oversubscribes the cores, and on a loaded machine a fill or copy then waits
/// for a descheduled team member: collating one example took 10 ms instead of 0.3 ms. OpenMP's
/// thread count is a per-thread setting, so the training thread keeps its own; libtorch reads
/// it on first use per thread, which `get_num_threads` triggers before it is changed.
fn single_threaded_ops() {
    tch::get_num_threads();
    // SAFETY: dlsym with a NUL-terminated name; RTLD_DEFAULT searches the libraries loaded at
    // start-up, among them the OpenMP runtime libtorch links.
    let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"omp_set_num_threads".as_ptr()) };
    if !f.is_null() {
        // SAFETY: `omp_set_num_threads` is `void (int)` in every OpenMP runtime.
        let set = unsafe { std::mem::transmute::<*mut libc::c_void, extern "C" fn(libc::c_int)>(f) };
        set(1);
    }
}

/// A generator seed from the loader seed and a path of indices (epoch, batch, position).
fn seed_of(seed: u64, path: &[u64]) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"helico af3 loader\n");
    hasher.update(&seed.to_le_bytes());
    for p in path {
        hasher.update(&p.to_le_bytes());
    }
    u64::from_le_bytes(hasher.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
}

/// Fisher–Yates with SplitMix64 (unbiased enough for data order: 64-bit draws modulo n).
fn shuffle<T>(items: &mut [T], rng: &mut SplitMix64) {
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(tokens: &[usize]) -> Af3Dataset {
        let entries = tokens
            .iter()
            .enumerate()
            .map(|(i, &t)| DatasetEntry { key: format!("e{i}"), path: PathBuf::from("unused"), tokens: t })
            .collect();
        Af3Dataset { entries, units: None }
    }

    #[test]
    fn plans_cover_every_entry_once_in_size_buckets() {
        let d = dataset(&[10, 500, 30, 700, 20, 400, 15, 600]);
        let config = LoaderConfig { batch_size: 2, bucket_batches: 4, ..LoaderConfig::default() };
        let plan = d.plan(&config, 0);
        let mut all: Vec<usize> = plan.iter().flatten().map(|d| d.entry).collect();
        all.sort();
        assert_eq!(all, (0..8).collect::<Vec<_>>());
        // One window holds everything: sorted by cropped size, then paired.
        let small = |d: &Draw| d.entry.is_multiple_of(2);
        assert!(plan.iter().all(|b| small(&b[0]) == small(&b[1])), "{plan:?}");
        assert!(plan.iter().flatten().all(|d| d.unit.is_none()));
        assert_eq!(plan, d.plan(&config, 0));
        assert_ne!(plan, d.plan(&config, 1));
    }

    #[test]
    fn the_config_section_becomes_loader_settings() {
        let section = Af3DataConfig { crop_size: 256, pad: PadMode::Fixed, atoms_per_token: 10, ..Default::default() };
        let config = section.loader_config(9);
        assert_eq!(config.padding, Padding::Fixed { tokens: 256, atoms: 2560 });
        assert_eq!((config.crop_size, config.seed, config.workers), (256, 9, 2));
        assert_eq!(Af3DataConfig::default().loader_config(0).padding, Padding::BatchMax);
        let none = CropWeights { contiguous: 0.0, spatial: 0.0, spatial_interface: 0.0 };
        let problems = Af3DataConfig { crop_weights: none, ..Default::default() }.problems();
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["crop_weights", "dir"]);
    }
}
