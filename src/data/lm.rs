//! The D3PM LM's dataset: sequence files read and tokenized with one vocabulary, split into
//! train and held-out sets by a hash of each sequence, and served as packed batches in an
//! order that depends only on the run seed and the epoch (so a resumed run sees exactly the
//! batches the uninterrupted one would have).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::json;

use super::packing::{PackedBatch, PackedRow, SplitMix64, TokenSeq, pack};
use super::seqs::{Domain, ReadError, Record, SequencesConfig, read_file};
use super::vocab::Vocab;

/// Why the dataset could not be built; every variant names the file (and line) to fix.
#[derive(Debug, thiserror::Error)]
pub enum LmDataError {
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A sequence with a character outside its domain's alphabet.
    #[error("{file}:{line}: sequence `{name}` is not valid {domain}: {problem}")]
    Encode { file: PathBuf, line: usize, name: String, domain: &'static str, problem: String },
    /// Too little data for one training batch.
    #[error(
        "the training split packs into {rows} window(s) of {window} tokens, fewer than train.batch_size = {batch_size}: add data, or lower train.batch_size or data.window"
    )]
    TooSmall { rows: usize, window: usize, batch_size: usize },
    /// Nothing left for evaluation.
    #[error(
        "the held-out split is empty (data.holdout_fraction = {fraction} of {n} sequences): raise data.holdout_fraction or add data"
    )]
    NoHoldout { fraction: f64, n: usize },
}

/// Counts per domain, for the run snapshot and for drawing sample lengths.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DomainStats {
    pub train: usize,
    pub holdout: usize,
    pub tokens: usize,
    /// Token lengths of the training sequences (EOS excluded), sorted.
    #[serde(skip)]
    pub lengths: Vec<usize>,
}

pub struct LmData {
    pub vocab: Vocab,
    pub train: Vec<TokenSeq>,
    pub holdout: Vec<TokenSeq>,
    pub window: usize,
    pub files: Vec<PathBuf>,
    pub stats: BTreeMap<&'static str, DomainStats>,
    holdout_fraction: f64,
}

impl LmData {
    /// Reads every file, builds the vocabulary and splits the sequences.
    pub fn load(cfg: &SequencesConfig) -> Result<LmData, LmDataError> {
        let mut records: Vec<Record> = Vec::new();
        for f in &cfg.files {
            records.extend(read_file(f)?);
        }
        let vocab = Vocab::build(&records);
        let mut data = LmData {
            vocab,
            train: Vec::new(),
            holdout: Vec::new(),
            window: cfg.window as usize,
            files: cfg
                .files
                .iter()
                .map(|f| crate::track::hf::local_path(&f.path))
                .collect::<Result<_, _>>()
                .map_err(ReadError::from)?,
            stats: BTreeMap::new(),
            holdout_fraction: cfg.holdout_fraction,
        };
        for r in &records {
            let ids = data.vocab.encode(r.domain, &r.text).map_err(|e| LmDataError::Encode {
                file: r.file.clone(),
                line: r.line,
                name: r.name.clone(),
                domain: r.domain.name(),
                problem: e.to_string(),
            })?;
            let stats = data.stats.entry(r.domain.name()).or_default();
            stats.tokens += ids.len();
            let seq = TokenSeq { domain: r.domain, ids };
            if held_out(r, cfg.holdout_fraction) {
                stats.holdout += 1;
                data.holdout.push(seq);
            } else {
                stats.train += 1;
                stats.lengths.push(seq.ids.len());
                data.train.push(seq);
            }
        }
        data.stats.values_mut().for_each(|s| s.lengths.sort_unstable());
        Ok(data)
    }

    /// Checks the splits are large enough for the batch shape.
    pub fn check(&self, batch_size: usize) -> Result<(), LmDataError> {
        let rows = pack(&self.train, self.window, 0).len();
        if rows < batch_size {
            return Err(LmDataError::TooSmall { rows, window: self.window, batch_size });
        }
        if self.holdout.is_empty() && self.holdout_fraction > 0.0 {
            return Err(LmDataError::NoHoldout { fraction: self.holdout_fraction, n: self.train.len() });
        }
        Ok(())
    }

    /// The packed rows of one epoch: the training sequences shuffled and cropped with seeds
    /// derived from the run seed and the epoch.
    pub fn epoch_rows(&self, seed: u64, epoch: u64) -> Vec<PackedRow> {
        let mut order: Vec<&TokenSeq> = self.train.iter().collect();
        shuffle(&mut order, derive(seed, &["shuffle"], epoch));
        let seqs: Vec<TokenSeq> = order.into_iter().cloned().collect();
        pack(&seqs, self.window, derive(seed, &["crop"], epoch))
    }

    /// The held-out rows in an order fixed by the run seed and shuffled across files, so the
    /// first evaluation batches mix the domains as the data does.
    pub fn holdout_rows(&self, seed: u64) -> Vec<PackedRow> {
        let mut order: Vec<&TokenSeq> = self.holdout.iter().collect();
        shuffle(&mut order, derive(seed, &["holdout-order"], 0));
        let seqs: Vec<TokenSeq> = order.into_iter().cloned().collect();
        pack(&seqs, self.window, derive(seed, &["holdout"], 0))
    }

    /// What the data hash covers besides file contents: everything that changes the effective
    /// dataset.
    pub fn manifest_params(&self, cfg: &SequencesConfig) -> serde_json::Value {
        let files: Vec<_> = cfg.files.iter().map(|f| json!({ "domain": f.domain.name(), "limit": f.limit })).collect();
        json!({ "source": "sequences", "files": files, "window": cfg.window, "holdout_fraction": cfg.holdout_fraction })
    }

    /// A length drawn from the training sequences of `domain` (for sampling canvases).
    pub fn draw_length(&self, domain: Domain, rng: &mut SplitMix64) -> Option<usize> {
        let lengths = &self.stats.get(domain.name())?.lengths;
        (!lengths.is_empty()).then(|| lengths[(rng.next_u64() % lengths.len() as u64) as usize].min(self.window - 1))
    }
}

/// Where a run is in its data: the epoch and the batches already taken from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub epoch: u64,
    pub batch_in_epoch: u64,
}

/// Serves training batches in order; restartable at any [`Position`].
pub struct Batches {
    position: Position,
    rows: Vec<PackedRow>,
    batch_size: usize,
    seed: u64,
}

impl Batches {
    pub fn new(data: &LmData, batch_size: usize, seed: u64, position: Position) -> Batches {
        Batches { rows: data.epoch_rows(seed, position.epoch), position, batch_size, seed }
    }

    pub fn position(&self) -> Position {
        self.position
    }

    /// The next batch (on the CPU) and the number of real tokens in it. An epoch's last
    /// partial batch is skipped so every step sees the same shape.
    pub fn next(&mut self, data: &LmData) -> (PackedBatch, usize) {
        let per_epoch = (self.rows.len() / self.batch_size).max(1);
        if self.position.batch_in_epoch as usize >= per_epoch {
            self.position = Position { epoch: self.position.epoch + 1, batch_in_epoch: 0 };
            self.rows = data.epoch_rows(self.seed, self.position.epoch);
        }
        let start = self.position.batch_in_epoch as usize * self.batch_size;
        let rows = &self.rows[start..(start + self.batch_size).min(self.rows.len())];
        self.position.batch_in_epoch += 1;
        let tokens = rows.iter().map(|r| r.tokens.len()).sum();
        (PackedBatch::new(rows, data.window), tokens)
    }
}

/// Whether a sequence belongs to the held-out split: by a hash of its domain and text, so the
/// split does not depend on file order and a sequence never sits on both sides.
fn held_out(r: &Record, fraction: f64) -> bool {
    let h = blake3::hash(format!("{}\0{}", r.domain.name(), r.text).as_bytes());
    let x = u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes")) as f64 / u64::MAX as f64;
    x < fraction
}

/// A seed for one purpose and index, derived from the run seed (blake3, so streams for
/// different purposes are independent).
pub fn derive(seed: u64, purpose: &[&str], index: u64) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    for p in purpose {
        h.update(p.as_bytes());
        h.update(&[0]);
    }
    h.update(&index.to_le_bytes());
    u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
}

/// Fisher–Yates shuffle driven by SplitMix64.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut rng = SplitMix64(seed);
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::seqs::SequenceFile;

    fn corpus(dir: &std::path::Path) -> SequencesConfig {
        let protein = dir.join("p.fasta");
        let text: String = (0..60).map(|i| format!(">p{i}\n{}\n", "MKVLAGHE".repeat(1 + i % 5))).collect();
        std::fs::write(&protein, text).expect("write");
        let smiles = dir.join("s.smi");
        std::fs::write(&smiles, "CCO\tethanol\nc1ccccc1\tbenzene\nCC(=O)O\tacetic\n").expect("write");
        SequencesConfig {
            files: vec![
                SequenceFile { path: protein.display().to_string(), domain: Domain::Protein, limit: 0 },
                SequenceFile { path: smiles.display().to_string(), domain: Domain::Smiles, limit: 0 },
            ],
            window: 32,
            holdout_fraction: 0.2,
        }
    }

    #[test]
    fn batches_restart_exactly_at_any_position() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = LmData::load(&corpus(dir.path())).expect("loads");
        data.check(2).expect("enough data");
        let mut a = Batches::new(&data, 2, 7, Position::default());
        let mut seen = Vec::new();
        for _ in 0..40 {
            seen.push((a.position(), a.next(&data).0.tokens));
        }
        assert!(seen.last().expect("some").0.epoch >= 1, "crosses an epoch boundary");
        for (pos, tokens) in seen.iter().step_by(7) {
            let mut b = Batches::new(&data, 2, 7, *pos);
            assert!(b.next(&data).0.tokens.equal(tokens), "batch at {pos:?} reproduced");
        }
        let other = Batches::new(&data, 2, 8, Position::default()).next(&data).0.tokens;
        assert!(!other.equal(&seen[0].1), "another seed gives another order");
    }

    #[test]
    fn the_split_depends_on_content_not_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = corpus(dir.path());
        let a = LmData::load(&cfg).expect("loads");
        cfg.files.reverse();
        let b = LmData::load(&cfg).expect("loads");
        let key = |d: &LmData| {
            let mut v: Vec<Vec<i64>> = d.holdout.iter().map(|s| s.ids.clone()).collect();
            v.sort();
            v
        };
        assert!(!a.holdout.is_empty());
        assert_eq!(key(&a), key(&b));
    }

    #[test]
    fn bad_input_names_file_line_and_character() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("bad.fasta");
        std::fs::write(&f, ">ok\nMKV\n>bad\nMK1V\n").expect("write");
        let cfg = SequencesConfig {
            files: vec![SequenceFile { path: f.display().to_string(), domain: Domain::Protein, limit: 0 }],
            window: 16,
            holdout_fraction: 0.0,
        };
        let err = LmData::load(&cfg).err().expect("rejected").to_string();
        assert!(err.contains("bad.fasta:3: sequence `bad` is not valid protein"), "{err}");
        let ok = SequencesConfig {
            files: vec![SequenceFile { path: f.display().to_string(), domain: Domain::Protein, limit: 1 }],
            ..cfg
        };
        let data = LmData::load(&ok).expect("the first record alone is fine");
        assert!(data.check(4).unwrap_err().to_string().contains("fewer than train.batch_size = 4"));
    }
}
