//! The training loop (STYLE H15): resume, then per step batches → forward/backward with
//! accumulation → clip → finite check → optimiser, schedule, EMA → log / eval / checkpoint.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Steps, batch shape and the cadence of logging, evaluation and checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Optimiser steps.
    #[schemars(range(min = 1))]
    pub steps: u64,
    /// Packed windows per micro-batch.
    #[schemars(range(min = 1))]
    pub batch_size: i64,
    /// Micro-batches accumulated per optimiser step (global batch = batch_size × grad_accum).
    #[schemars(range(min = 1))]
    pub grad_accum: i64,
    /// Clip the global gradient norm to this value (0 disables clipping).
    #[schemars(range(min = 0.0))]
    pub clip_grad_norm: f64,
    /// Decay of the exponential moving average of the weights (0 disables the EMA).
    #[schemars(range(min = 0.0, max = 1.0))]
    pub ema_decay: f64,
    /// Held-out batches per evaluation.
    #[schemars(range(min = 1))]
    pub eval_batches: u64,
    /// Log training metrics every this many steps.
    #[schemars(extend("x-nonsemantic" = true), range(min = 1))]
    pub log_every: u64,
    /// Evaluate on the held-out split every this many steps (and at the end).
    #[schemars(extend("x-nonsemantic" = true), range(min = 1))]
    pub eval_every: u64,
    /// Write a checkpoint every this many steps (and at the end).
    #[schemars(extend("x-nonsemantic" = true), range(min = 1))]
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk besides the final one (older ones are deleted).
    #[schemars(extend("x-nonsemantic" = true))]
    pub keep_checkpoints: u64,
}

impl Default for TrainConfig {
    /// AtomWell's recipe: batch 16 × accumulation 16, clip 5.0.
    fn default() -> Self {
        Self {
            steps: 100_000,
            batch_size: 16,
            grad_accum: 16,
            clip_grad_norm: 5.0,
            ema_decay: 0.0,
            eval_batches: 8,
            log_every: 10,
            eval_every: 1000,
            checkpoint_every: 1000,
            keep_checkpoints: 2,
        }
    }
}

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::ensure;
use tch::{Kind, Tensor};

use super::adamw::AdamW;
use super::checkpoint::{Checkpoints, LoopState, Snapshot};
use super::ddp::Ddp;
use super::ema::Ema;
use super::lm::{Eval, LmTask};
use crate::data::lm::derive;
use crate::registry::Experiment;
use crate::run::info::{RunInfo, now};
use crate::track::Trackers;
use crate::track::metrics::{MetricsLog, Record};
use crate::track::progress::Progress;

/// How `fit` ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Trained to the last step; the final loop state.
    Done(LoopState),
    /// Stopped by a signal at this step, after writing a checkpoint.
    Interrupted(u64),
}

/// Trains until `train.steps`, starting from `state` (0 for a new run, a checkpoint's for a
/// resumed one).
pub fn fit(
    exp: &Experiment,
    task: &mut LmTask,
    opt: &mut AdamW,
    mut ema: Option<&mut Ema>,
    mut state: LoopState,
    out: &mut Outputs<'_>,
    ddp: Option<&Ddp>,
) -> anyhow::Result<Outcome> {
    let cfg = &exp.train;
    let started = Instant::now() - Duration::from_secs_f64(state.elapsed_secs);
    while state.step < cfg.steps {
        // Under data parallelism the ranks stop together, after a step (`Step::stop`).
        if ddp.is_none() && out.stop.load(Ordering::Relaxed) {
            out.checkpoint(task, opt, ema.as_deref(), &state)?;
            return Ok(Outcome::Interrupted(state.step));
        }
        let step = train_step(exp, task, opt, state.step, ddp, out.stop)?;
        if let Some(e) = ema.as_deref_mut() {
            e.update();
        }
        let position = task.position();
        state = LoopState {
            step: state.step + 1,
            epoch: position.epoch,
            batch_in_epoch: position.batch_in_epoch,
            elapsed_secs: started.elapsed().as_secs_f64(),
            ..state
        };
        let last = state.step == cfg.steps;
        out.tokens += step.tokens as u64;
        if state.step.is_multiple_of(cfg.log_every) || last {
            out.log_train(&state, &step)?;
        }
        if state.step.is_multiple_of(cfg.eval_every) || last {
            out.log_eval(&state, task.evaluate())?;
        }
        let saved = state.step.is_multiple_of(cfg.checkpoint_every) || last;
        if saved {
            out.checkpoint(task, opt, ema.as_deref(), &state)?;
        }
        if step.stop && !last {
            if !saved {
                out.checkpoint(task, opt, ema.as_deref(), &state)?;
            }
            return Ok(Outcome::Interrupted(state.step));
        }
    }
    Ok(Outcome::Done(state))
}

/// What one optimiser step did, on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Mean loss over the step's micro-batches.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate of the update.
    pub lr: f64,
    /// Real (non-padding) tokens trained on.
    pub tokens: usize,
    /// Positions scored by the loss, and those predicted correctly.
    pub scored: i64,
    pub correct: i64,
    /// A stop was asked for (SIGINT/SIGTERM) here or, under data parallelism, on any rank:
    /// every rank sees the same answer after the same step.
    pub stop: bool,
}

/// One optimiser step, number `step` from 0: `train.grad_accum` micro-batches forward and
/// backward (this rank's share of them with `ddp`, whose gradients are then summed over the
/// ranks), clip, finite check, AdamW update. `fit` calls it, and `helico bench d3pm` times
/// it, so the benchmark measures the trainer's own code path.
///
/// Losses and counts stay on the device until the end of the step and are read there with
/// the gradient norm in one transfer: reading a GPU scalar per micro-batch would stall the
/// host each time and let the GPU idle while the next batch is prepared.
pub fn train_step(
    exp: &Experiment,
    task: &mut LmTask,
    opt: &mut AdamW,
    step: u64,
    ddp: Option<&Ddp>,
    stop: &AtomicBool,
) -> anyhow::Result<Step> {
    let cfg = &exp.train;
    let (rank, world) = ddp.map_or((0, 1), |d| (d.world.rank as u64, d.world.size as u64));
    let accum = cfg.grad_accum as u64;
    opt.zero_grad();
    let (mut sums, mut tokens) = (Vec::new(), 0);
    for i in 0..accum / world {
        // Noise, masks and dropout of a micro-batch come from a seed of its own, its index in
        // the run's stream: a resumed run draws exactly what the uninterrupted one did, and a
        // micro-batch draws the same whichever rank trains it.
        tch::manual_seed(derive(exp.seed, &["micro"], step * accum + i * world + rank) as i64);
        let micro = task.micro_step();
        if let Some(d) = ddp.filter(|_| i + 1 == accum / world) {
            d.before_last_backward(&task.vs)?;
        }
        // Scaled by the global count: the ranks' sums add up to the mean over the step.
        (&micro.loss.loss / cfg.grad_accum as f64).backward();
        let loss = micro.loss.loss.detach().to_kind(Kind::Double).view([1]);
        let counts = Tensor::stack(&[&micro.loss.n_scored, &micro.loss.n_correct], 0).to_kind(Kind::Double);
        sums.push(Tensor::cat(&[loss, counts], 0)); // [3]
        tokens += micro.tokens;
    }
    let sum = Tensor::stack(&sums, 0).sum_dim_intlist(0, false, Kind::Double); // [3]
    // Host values join by a fill, not a copy (a copy from the host synchronises).
    let host_values = [tokens as f64, f64::from(u8::from(stop.load(Ordering::Relaxed)))];
    let fill = |x: f64| Tensor::full([1], x, (Kind::Double, sum.device()));
    let sum = Tensor::cat(&[sum.shallow_clone(), fill(host_values[0]), fill(host_values[1])], 0); // [5]
    if let Some(d) = ddp {
        d.reduce_grads(&task.vs)?;
        d.all_reduce_stats(&sum)?;
    }
    let grad_norm = opt.clip_grad_norm(cfg.clip_grad_norm).to_kind(Kind::Double).view([1]);
    // The step's one host synchronisation: loss, counts and norm before the update.
    let host =
        Vec::<f64>::try_from(Tensor::cat(&[sum, grad_norm], 0).to_device(tch::Device::Cpu)).expect("six f64 values");
    if let Some(d) = ddp {
        d.step_done();
    }
    let (loss, grad_norm) = (host[0] / cfg.grad_accum as f64, host[5]);
    ensure!(
        loss.is_finite() && grad_norm.is_finite(),
        "step {}: loss {loss}, gradient norm {grad_norm}: training diverged, stopped before the update; resume from the last checkpoint with a lower optimizer.lr",
        step + 1
    );
    let lr = exp.optimizer.lr() * exp.schedule.factor(step, cfg.steps);
    opt.step(lr);
    Ok(Step {
        loss,
        grad_norm,
        lr,
        tokens: host[3] as usize,
        scored: host[1] as i64,
        correct: host[2] as i64,
        stop: host[4] > 0.0,
    })
}

/// Where a run's progress goes: metrics, checkpoints, the heartbeat in run.json, the terminal.
pub struct Outputs<'a> {
    pub dir: &'a Path,
    pub info: RunInfo,
    pub metrics: MetricsLog,
    pub checkpoints: Checkpoints,
    pub progress: Progress,
    /// W&B and plots: told of every record appended to `metrics`.
    pub track: Trackers,
    /// Set by SIGINT/SIGTERM: checkpoint and stop.
    pub stop: &'a AtomicBool,
    /// Metadata stored in every checkpoint file (run id, config hash).
    pub metadata: BTreeMap<String, String>,
    /// Real tokens trained on in this process.
    pub tokens: u64,
    /// Best held-out loss so far, with its step.
    pub best_eval: Option<(f64, u64)>,
    pub last_eval: Option<Eval>,
    pub last_train_loss: Option<f64>,
    pub keep_checkpoints: u64,
    since: Instant,
}

impl<'a> Outputs<'a> {
    pub fn new(
        dir: &'a Path,
        info: RunInfo,
        metrics: MetricsLog,
        track: Trackers,
        stop: &'a AtomicBool,
        keep_checkpoints: u64,
        progress: Progress,
    ) -> Outputs<'a> {
        let metadata = BTreeMap::from([
            ("run".to_owned(), info.id.clone()),
            ("config_hash".to_owned(), info.identity.config_hash.clone()),
        ]);
        let checkpoints = Checkpoints::new(dir.join("checkpoints"));
        Outputs {
            dir,
            info,
            metrics,
            checkpoints,
            progress,
            track,
            stop,
            metadata,
            tokens: 0,
            best_eval: None,
            last_eval: None,
            last_train_loss: None,
            keep_checkpoints,
            since: Instant::now(),
        }
    }

    fn log_train(&mut self, state: &LoopState, step: &Step) -> anyhow::Result<()> {
        let Step { loss, lr, grad_norm, .. } = *step;
        let tokens_per_s = self.tokens as f64 / self.since.elapsed().as_secs_f64().max(1e-9);
        let accuracy = if step.scored > 0 { step.correct as f64 / step.scored as f64 } else { f64::NAN };
        let values = BTreeMap::from([
            ("loss".to_owned(), loss),
            ("lr".to_owned(), lr),
            ("grad_norm".to_owned(), grad_norm),
            ("masked_accuracy".to_owned(), accuracy),
            ("tokens".to_owned(), step.tokens as f64),
            ("tokens_per_s".to_owned(), tokens_per_s),
        ]);
        let record = Record { step: state.step, split: "train".into(), time: state.elapsed_secs, values };
        self.metrics.append(&record)?;
        self.track.log(&record)?;
        self.progress.update(state.step, &format!("loss {loss:.4} · {:.0} tok/s", tokens_per_s));
        self.last_train_loss = Some(loss);
        self.heartbeat(state.step)
    }

    fn log_eval(&mut self, state: &LoopState, e: Eval) -> anyhow::Result<()> {
        let values = BTreeMap::from([
            ("loss".to_owned(), e.loss),
            ("masked_accuracy".to_owned(), e.masked_accuracy),
            ("perplexity_bound".to_owned(), e.perplexity_bound),
        ]);
        let record = Record { step: state.step, split: "eval".into(), time: state.elapsed_secs, values };
        self.metrics.append(&record)?;
        self.track.log(&record)?;
        self.progress.note(&format!(
            "step {}: eval loss {:.4}, masked accuracy {:.3}, perplexity bound {:.2}",
            state.step, e.loss, e.masked_accuracy, e.perplexity_bound
        ));
        if e.loss.is_finite() && self.best_eval.is_none_or(|(best, _)| e.loss < best) {
            self.best_eval = Some((e.loss, state.step));
        }
        self.last_eval = Some(e);
        Ok(())
    }

    fn checkpoint(&mut self, task: &LmTask, opt: &AdamW, ema: Option<&Ema>, state: &LoopState) -> anyhow::Result<()> {
        self.track.flush()?;
        let snap = Snapshot { model: &task.vs, optimizer: opt.state(), ema: ema.map(Ema::state), state };
        self.checkpoints.save(snap, self.keep_checkpoints.max(1), &self.metadata)?;
        self.heartbeat(state.step)
    }

    /// Records progress in run.json (so a dead run can be told from a running one).
    pub fn heartbeat(&mut self, step: u64) -> anyhow::Result<()> {
        self.info.step = step;
        self.info.heartbeat = now();
        self.info.write(self.dir)
    }
}
