//! The AF3 training loader over a preprocessed directory: per epoch a seeded order of the kept
//! entries, grouped into batches of similar size, each example loaded from its cache file,
//! cropped (AF3 §2.7, [`crate::data::crop`]) and turned into [`Features`], optionally on
//! background threads that stay a few batches ahead.
//!
//! - **Sampling** is uniform: every entry once per epoch, in a seeded random order. AF3 §2.5.1
//!   samples chains and interfaces with weights that need sequence clusters (40% identity),
//!   which preprocessing does not compute yet.
//! - **Size bucketing** ("sortish"): the epoch order is cut into windows of
//!   `bucket_batches × batch_size` entries; each window is sorted by cropped token count and
//!   cut into batches; the batches are then shuffled. Examples in a batch have similar sizes,
//!   so padding them to a common N wastes little, and batch order stays random.
//! - **Determinism**: the order is a function of (seed, epoch), and each example draws its crop
//!   and conformer augmentation from a generator seeded by (seed, epoch, batch, position), so
//!   the result does not depend on the number of threads or on timing. Batch b is made by
//!   worker b mod W and read from that worker's queue, so batches arrive in plan order.
//!
//! - **MSA**: each example's [`MsaFeatures`] come from the alignments in its cache file
//!   (none: one query row), for the crop's chains, with rows drawn from the example's
//!   generator after the crop and the features, so adding them changed no other draw.
//!
//! A batch is a list of per-example [`Features`] and [`MsaFeatures`] of different sizes;
//! padding them into one tensor per feature is left to the model's collate step.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::{CachedStructure, PrepError, journal};
use crate::data::crop::{Crop, CropWeights, crop};
use crate::data::features::{FeatureOptions, Features};
use crate::data::msa::MsaFeatures;
use crate::data::packing::SplitMix64;

/// AF3 supplement §2.5 / Table 6: the initial training stage crops to 384 tokens.
pub const AF3_INITIAL_CROP: usize = 384;

/// How the loader samples, crops and prefetches.
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
}

impl Default for LoaderConfig {
    fn default() -> LoaderConfig {
        LoaderConfig {
            crop_size: AF3_INITIAL_CROP,
            batch_size: 1,
            bucket_batches: 32,
            workers: 2,
            prefetch: 2,
            seed: 0,
            crop_weights: CropWeights::default(),
            features: FeatureOptions { augment_ref_pos: true },
        }
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

/// The kept entries of a preprocessed directory, sorted by key.
#[derive(Debug)]
pub struct Af3Dataset {
    entries: Vec<DatasetEntry>,
}

/// One cropped training example.
#[derive(Debug)]
pub struct Example {
    pub key: String,
    /// The crop, as indices into the entry's tokens.
    pub crop: Crop,
    pub features: Features,
    /// The crop's MSA features; row 0 equals `features.restype`.
    pub msa: MsaFeatures,
}

pub type Batch = Vec<Example>;

impl Af3Dataset {
    /// Reads the manifest of `dir` (made by `helico preprocess`).
    pub fn open(dir: &Path) -> Result<Af3Dataset, PrepError> {
        let entries = journal::entries(dir)?
            .into_iter()
            .map(|r| DatasetEntry {
                path: dir.join(&r.cache.as_ref().expect("kept entries have a cache file").path),
                tokens: r.info.as_ref().map_or(0, |i| i.tokens),
                key: r.key,
            })
            .collect();
        Ok(Af3Dataset { entries })
    }

    pub fn entries(&self) -> &[DatasetEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Epoch `epoch`'s batches, as entry indices (see the module doc).
    pub fn plan(&self, config: &LoaderConfig, epoch: u64) -> Vec<Vec<usize>> {
        let mut rng = SplitMix64(seed_of(config.seed, &[epoch]));
        let mut order: Vec<usize> = (0..self.entries.len()).collect();
        shuffle(&mut order, &mut rng);
        let batch = config.batch_size.max(1);
        let window = batch * config.bucket_batches.max(1);
        let mut batches = Vec::with_capacity(order.len().div_ceil(batch));
        for chunk in order.chunks_mut(window) {
            chunk.sort_by_key(|&i| (self.entries[i].tokens.min(config.crop_size), i));
            batches.extend(chunk.chunks(batch).map(<[usize]>::to_vec));
        }
        shuffle(&mut batches, &mut rng);
        batches
    }

    /// The example of entry `entry` drawn with `seed`: load, crop, features.
    pub fn example(&self, config: &LoaderConfig, entry: usize, seed: u64) -> Result<Example, PrepError> {
        let e = &self.entries[entry];
        let cached = CachedStructure::read(&e.path)?;
        let mut rng = SplitMix64(seed);
        let method = config.crop_weights.choose(&mut rng);
        let c = crop(&cached.structure, &cached.tokens, config.crop_size, method, &[], &mut rng);
        let tokens = cached.tokens.select(&c.tokens);
        let features = Features::new(&cached.structure, &tokens, &cached.ccd, &config.features, &mut rng)
            .map_err(|source| PrepError::Features { path: e.path.clone(), source: Box::new(source) })?;
        let query = restype_classes(&features.restype);
        let msa = MsaFeatures::new(&cached.structure, &tokens, &query, &cached.msas, rng.next_u64());
        Ok(Example { key: e.key.clone(), crop: c, features, msa })
    }

    /// The batches of epoch `epoch`, made in the background by `config.workers` threads.
    pub fn epoch(self: &Arc<Self>, config: &LoaderConfig, epoch: u64) -> Batches {
        let plan = Arc::new(self.plan(config, epoch));
        let total = plan.len();
        if config.workers == 0 {
            let (dataset, config) = (Arc::clone(self), config.clone());
            let make = Box::new(move |b: usize| make_batch(&dataset, &config, epoch, &plan, b));
            return Batches { source: Source::Inline(make), next: 0, total };
        }
        let mut receivers = Vec::with_capacity(config.workers);
        for w in 0..config.workers {
            let (tx, rx) = sync_channel(config.prefetch.max(1));
            let (dataset, config, plan) = (Arc::clone(self), config.clone(), Arc::clone(&plan));
            std::thread::Builder::new()
                .name(format!("helico-loader-{w}"))
                .spawn(move || worker(&dataset, &config, epoch, &plan, w, &tx))
                .expect("the OS starts a loader thread");
            receivers.push(rx);
        }
        Batches { source: Source::Threads(receivers), next: 0, total }
    }
}

/// Makes batches w, w + W, … in order until the plan ends or the reader goes away.
fn worker(
    dataset: &Af3Dataset,
    config: &LoaderConfig,
    epoch: u64,
    plan: &[Vec<usize>],
    w: usize,
    tx: &SyncSender<Result<Batch, PrepError>>,
) {
    for b in (w..plan.len()).step_by(config.workers) {
        if tx.send(make_batch(dataset, config, epoch, plan, b)).is_err() {
            return;
        }
    }
}

fn make_batch(
    dataset: &Af3Dataset,
    config: &LoaderConfig,
    epoch: u64,
    plan: &[Vec<usize>],
    b: usize,
) -> Result<Batch, PrepError> {
    plan[b]
        .iter()
        .enumerate()
        .map(|(k, &entry)| dataset.example(config, entry, seed_of(config.seed, &[epoch, b as u64, k as u64])))
        .collect()
}

/// An epoch's batches, in plan order.
pub struct Batches {
    source: Source,
    next: usize,
    total: usize,
}

type MakeBatch = Box<dyn FnMut(usize) -> Result<Batch, PrepError> + Send>;

enum Source {
    Inline(MakeBatch),
    /// One queue per worker; batch b comes from queue b mod W.
    Threads(Vec<Receiver<Result<Batch, PrepError>>>),
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
    type Item = Result<Batch, PrepError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.total {
            return None;
        }
        let b = self.next;
        self.next += 1;
        Some(match &mut self.source {
            Source::Inline(make) => make(b),
            Source::Threads(receivers) => {
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
        Af3Dataset { entries }
    }

    #[test]
    fn plans_cover_every_entry_once_in_size_buckets() {
        let d = dataset(&[10, 500, 30, 700, 20, 400, 15, 600]);
        let config = LoaderConfig { batch_size: 2, bucket_batches: 4, ..LoaderConfig::default() };
        let plan = d.plan(&config, 0);
        let mut all: Vec<usize> = plan.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..8).collect::<Vec<_>>());
        // One window holds everything: sorted by cropped size, then paired.
        let small = |i: usize| d.entries[i].tokens < 384;
        assert!(plan.iter().all(|b| small(b[0]) == small(b[1])), "{plan:?}");
        assert_eq!(plan, d.plan(&config, 0));
        assert_ne!(plan, d.plan(&config, 1));
    }
}
