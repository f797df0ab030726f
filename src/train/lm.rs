//! How the D3PM LM trains: a packed batch is noised with one timestep per sequence
//! (`q_sample`), denoised by the model, and scored against the clean tokens; evaluation reports
//! held-out loss, masked-token accuracy and the perplexity bound.

use tch::{Tensor, nn};

use crate::data::lm::{Batches, LmData, Position, derive};
use crate::data::packing::{PackedBatch, PackedRow};
use crate::losses::d3pm::{D3pmCeConfig, LossOutput, d3pm_ce, perplexity_bound};
use crate::models::d3pm::diffusion::{Schedule, maskable};
use crate::models::d3pm::model::D3pmLm;
use crate::registry::Experiment;
use crate::registry::loss::Loss;
use crate::registry::model::Model;
use crate::runtime::Runtime;

/// One micro-batch's loss and its size.
pub struct Micro {
    pub loss: LossOutput,
    /// Real (non-padding) tokens in the batch.
    pub tokens: usize,
}

/// Held-out metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eval {
    pub loss: f64,
    pub masked_accuracy: f64,
    /// exp of the diffusion ELBO terms per token (see `losses::d3pm::perplexity_bound`).
    pub perplexity_bound: f64,
}

pub struct LmTask {
    pub vs: nn::VarStore,
    pub model: D3pmLm,
    pub data: LmData,
    pub schedule: Schedule,
    pub rt: Runtime,
    loss: D3pmCeConfig,
    batches: Batches,
    holdout: Vec<PackedRow>,
    batch_size: usize,
    eval_batches: usize,
    seed: u64,
    /// (rank, world): this process trains on micro-batch j of the stream when j mod world =
    /// rank (`train::ddp`); (0, 1) alone.
    shard: (usize, usize),
}

impl LmTask {
    /// Builds the model on the runtime's device (initialised from the run seed) and positions
    /// the data stream.
    pub fn new(exp: &Experiment, data: LmData, rt: Runtime, position: Position) -> LmTask {
        let (Model::D3pmLm(cfg), Loss::D3pmCe(loss)) = (&exp.model, &exp.loss);
        let seed = exp.seed;
        tch::manual_seed(derive(seed, &["init"], 0) as i64);
        let rt = rt.with_usable_attention(cfg.d_model / cfg.n_heads);
        let vs = nn::VarStore::new(rt.device);
        let model = D3pmLm::new(vs.root(), cfg, data.vocab.len());
        let batch_size = exp.train.batch_size as usize;
        let batches = Batches::new(&data, batch_size, seed, position);
        let holdout = data.holdout_rows(seed);
        let eval_batches = exp.train.eval_batches as usize;
        LmTask {
            vs,
            model,
            schedule: Schedule::new(&cfg.diffusion),
            data,
            rt,
            loss: loss.clone(),
            batches,
            holdout,
            batch_size,
            eval_batches,
            seed,
            shard: (0, 1),
        }
    }

    /// Trains on every `world`-th micro-batch of the stream, from the `rank`-th.
    pub fn set_shard(&mut self, rank: usize, world: usize) {
        assert!(rank < world, "rank {rank} of {world}");
        self.shard = (rank, world);
    }

    pub fn position(&self) -> Position {
        self.batches.position()
    }

    /// Forward and loss of the next training micro-batch (backward is the caller's).
    pub fn micro_step(&mut self) -> Micro {
        let (rank, world) = self.shard;
        let mut mine = None;
        for j in 0..world {
            let next = self.batches.next(&self.data);
            if j == rank {
                mine = Some(next);
            }
        }
        let (batch, tokens) = mine.expect("rank < world");
        let batch = batch.to_device(self.rt.device);
        Micro { loss: self.loss_of(&batch, true).0, tokens }
    }

    fn loss_of(&self, batch: &PackedBatch, train: bool) -> (LossOutput, Tensor, Tensor, Tensor, Tensor) {
        let real = batch.real(); // [B, L]
        let t = self.schedule.sample_t(batch); // [B, L]
        let noised = self.schedule.q_sample(&batch.tokens, &t, &real);
        let logits = self.model.forward(&noised.x_t, &t, batch, &self.rt, train); // [B, L, V]
        let out = d3pm_ce(&self.loss, &logits, &batch.tokens, &noised.masked, &real);
        (out, logits, t, noised.masked, real)
    }

    /// Held-out metrics over up to `eval_batches` batches, with noise fixed by the run seed so
    /// evaluations at different steps are comparable.
    pub fn evaluate(&self) -> Eval {
        let _guard = tch::no_grad_guard();
        tch::manual_seed(derive(self.seed, &["eval"], 0) as i64);
        let (mut loss_sum, mut scored, mut correct, mut nats, mut tokens) = (0.0, 0i64, 0i64, 0.0, 0i64);
        for rows in self.holdout.chunks(self.batch_size).take(self.eval_batches) {
            let batch = PackedBatch::new(rows, self.data.window).to_device(self.rt.device);
            let (out, logits, t, masked, real) = self.loss_of(&batch, false);
            let n = out.n_scored.int64_value(&[]);
            loss_sum += out.loss.double_value(&[]) * n as f64;
            scored += n;
            correct += out.n_correct.int64_value(&[]);
            let bound =
                perplexity_bound(&self.schedule, &logits, &batch.tokens, &t, &masked, &maskable(&batch.tokens, &real));
            nats += bound.nats.double_value(&[]);
            tokens += bound.n_tokens.int64_value(&[]);
        }
        let per = |a: f64, b: i64| if b > 0 { a / b as f64 } else { f64::NAN };
        Eval {
            loss: per(loss_sum, scored),
            masked_accuracy: per(correct as f64, scored),
            perplexity_bound: per(nats, tokens).exp(),
        }
    }

    /// Whether one training forward and backward of `rows` windows fits in the device's
    /// memory: tried on held-out rows (cycled), gradients discarded. For the out-of-memory
    /// message, which names a batch that fits rather than guessing one.
    pub fn fits(&self, rows: usize) -> bool {
        let rows: Vec<PackedRow> = self.holdout.iter().cycle().take(rows).cloned().collect();
        if rows.is_empty() {
            return false;
        }
        let batch = PackedBatch::new(&rows, self.data.window).to_device(self.rt.device);
        // libtorch reports an allocation failure as a panic of the op; the default hook would
        // print each probe's.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let ok =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.loss_of(&batch, true).0.loss.backward()))
                .is_ok();
        std::panic::set_hook(hook);
        for mut p in self.vs.trainable_variables() {
            p.zero_grad();
        }
        ok
    }

    /// Parameter counts per top-level module (`tok_emb`, `blocks.0`, …), for the run summary.
    pub fn param_counts(&self) -> std::collections::BTreeMap<String, i64> {
        let mut out = std::collections::BTreeMap::new();
        for (name, t) in self.vs.variables() {
            let parts: Vec<&str> = name.split('.').collect();
            let module = if parts.first() == Some(&"blocks") && parts.len() > 2 {
                format!("blocks.{}", parts[1])
            } else {
                parts[0].to_owned()
            };
            *out.entry(module).or_insert(0) += t.numel() as i64;
        }
        out
    }
}
