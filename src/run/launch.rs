//! `helico run`: from a resolved experiment to a finished run directory, and `--resume` of an
//! unfinished one. Input problems surface before the run directory exists; once it exists,
//! the run always ends with a status (done, failed or interrupted), never a stale "running".
//!
//! Under data parallelism (`train::ddp`, WORLD_SIZE > 1) rank 0 does all of this; the other
//! ranks only train in step with it (`follow`): no run directory, snapshot, metrics,
//! evaluation or checkpoints of their own.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};
use serde::Serialize;

use super::info::{Identity, RunInfo, Status, all_runs, now};
use super::snapshot::{self, Provenance};
use crate::config::Resolved;
use crate::data::lm::{LmData, Position};
use crate::data::manifest::DataManifest;
use crate::exit::BadInput;
use crate::registry::Experiment;
use crate::registry::data::SEQUENCES_ONLY;
use crate::runtime::Runtime;
use crate::track::metrics::MetricsLog;
use crate::track::progress::Progress;
use crate::track::{End, Trackers};
use crate::train::adamw::AdamW;
use crate::train::checkpoint::{LoopState, load_into};
use crate::train::ddp::{self, Ddp, World};
use crate::train::ema::Ema;
use crate::train::lm::LmTask;
use crate::train::trainer::{Outcome, Outputs, fit, train_step};

/// How a `helico run` ended.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Launched {
    /// Trained to the last step.
    Done { dir: PathBuf, summary: Summary },
    /// A run with the same run_key already completed; nothing was run.
    AlreadyDone { dir: PathBuf },
    /// Stopped by a signal; resumable.
    Interrupted { dir: PathBuf, step: u64 },
    /// A data-parallel rank other than 0 finished training in step with rank 0 (which
    /// reports the run).
    Follower { rank: usize },
}

/// `summary.json`: the headline numbers of a finished run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub steps: u64,
    pub final_train_loss: Option<f64>,
    pub final_eval_loss: Option<f64>,
    pub final_eval_masked_accuracy: Option<f64>,
    pub final_eval_perplexity_bound: Option<f64>,
    pub best_eval_loss: Option<f64>,
    pub best_eval_step: Option<u64>,
    pub parameters: i64,
    pub wall_secs: f64,
}

pub struct Options {
    /// Where run directories go (`runs/` by default).
    pub root: PathBuf,
    /// Run even if an identical run completed.
    pub force: bool,
    /// The command line, for the snapshot.
    pub argv: Vec<String>,
    /// Set when the run is a trial of an ablation.
    pub ablation: Option<super::info::AblationRef>,
}

/// Starts a new run of a resolved experiment.
pub fn start(resolved: &Resolved, opts: &Options, stop: &AtomicBool) -> anyhow::Result<Launched> {
    let exp = &resolved.experiment;
    let world = World::from_env()?;
    let rt = match &world {
        Some(w) => rank_runtime(exp, w)?,
        None => Runtime::resolve(&exp.runtime),
    };
    let data = load_data(exp)?;
    if let Some(w) = world.clone().filter(|w| w.rank != 0) {
        return follow(exp, data, rt, w, None, stop);
    }
    let dismiss = |w: &Option<World>| w.as_ref().map_or(Ok(()), ddp::dismiss);
    let manifest = manifest_of(exp, &data)?;
    let prov = Provenance::capture(Path::new("."), &opts.root)?;
    let identity = Identity::new(resolved.config_hash.clone(), prov.code_hash(), manifest.hash.clone());
    if !opts.force {
        for (dir, info) in all_runs(&opts.root).into_iter().filter(|(_, i)| i.identity.run_key == identity.run_key) {
            match info.status {
                Status::Done => {
                    dismiss(&world)?;
                    return Ok(Launched::AlreadyDone { dir });
                }
                Status::Running if !info.is_dead() => {
                    dismiss(&world)?;
                    bail!(BadInput(format!(
                        "an identical run is in progress in {} (pid {} on {}); wait for it, or pass --force",
                        dir.display(),
                        info.pid,
                        info.host
                    )))
                }
                _ => {}
            }
        }
    }
    let ddp = match world {
        Some(w) => Some(Ddp::connect(w, exp.runtime.overlap_grad_reduce)?.expect("rank 0 always connects")),
        None => None,
    };
    let dir = super::dir::create(&opts.root, &exp.name, &resolved.config_hash)?;
    let mut info = snapshot::write(&dir, resolved, &prov, &manifest, &identity, &opts.argv)?;
    if opts.ablation.is_some() {
        info.ablation = opts.ablation.clone();
        info.write(&dir)?;
    }
    let sequences = exp.data.sequences().expect(SEQUENCES_ONLY);
    crate::track::hf::write_records(&dir, sequences.files.iter().map(|f| f.path.as_str()))?;
    let mut task = LmTask::new(exp, data, rt, Position::default());
    if let Some(d) = &ddp {
        task.set_shard(d.world.rank, d.world.size);
    }
    write_data_files(&dir, &task)?;
    train(&dir, exp, task, info, None, stop, ddp.as_ref())
}

/// The runtime of a data-parallel rank: its own GPU, LOCAL_RANK.
fn rank_runtime(exp: &Experiment, world: &World) -> anyhow::Result<Runtime> {
    if exp.runtime.device == "cpu" {
        bail!(BadInput(format!(
            "WORLD_SIZE = {} asks for data parallelism, which runs one rank per GPU, but runtime.device = \"cpu\"",
            world.size
        )));
    }
    let visible = if tch::Cuda::is_available() { tch::Cuda::device_count() as usize } else { 0 };
    if world.local_rank >= visible {
        bail!(BadInput(format!(
            "rank {} wants GPU {} (LOCAL_RANK) but {visible} GPUs are usable on this host",
            world.rank, world.local_rank
        )));
    }
    if !(exp.train.grad_accum as usize).is_multiple_of(world.size) {
        bail!(BadInput(format!(
            "train.grad_accum = {} does not split over {} ranks: each step trains batch_size × grad_accum windows in all, \
             grad_accum / world on each rank; set train.grad_accum to a multiple of {}",
            exp.train.grad_accum, world.size, world.size
        )));
    }
    let cfg = crate::runtime::RuntimeConfig { device: format!("cuda:{}", world.local_rank), ..exp.runtime.clone() };
    Ok(Runtime::resolve(&cfg))
}

/// A rank other than 0: trains in step with rank 0 from `loaded` (or the start), writing
/// nothing. It stops when rank 0 finishes, or when any rank was signalled.
fn follow(
    exp: &Experiment,
    data: LmData,
    rt: Runtime,
    world: World,
    loaded: Option<crate::train::checkpoint::Loaded>,
    stop: &AtomicBool,
) -> anyhow::Result<Launched> {
    let rank = world.rank;
    let Some(ddp) = Ddp::connect(world, exp.runtime.overlap_grad_reduce)? else {
        return Ok(Launched::Follower { rank });
    };
    let position = loaded
        .as_ref()
        .map_or(Position::default(), |l| Position { epoch: l.state.epoch, batch_in_epoch: l.state.batch_in_epoch });
    let mut task = LmTask::new(exp, data, rt, position);
    task.set_shard(rank, ddp.world.size);
    let mut opt = AdamW::new(&task.vs, exp_adamw(exp));
    let mut step = 0;
    if let Some(l) = loaded {
        load_into(&task.vs, l.model, "the checkpoint")?;
        opt.load_state(l.optimizer, l.state.step).map_err(anyhow::Error::msg)?;
        step = l.state.step;
    }
    while step < exp.train.steps {
        let done = train_step(exp, &mut task, &mut opt, step, Some(&ddp), stop)?;
        step += 1;
        if done.stop {
            break;
        }
    }
    Ok(Launched::Follower { rank })
}

/// Continues an unfinished run in its own directory, from its latest checkpoint.
pub fn resume(dir: &Path, argv: &[String], stop: &AtomicBool) -> anyhow::Result<Launched> {
    let world = World::from_env()?;
    if let Some(w) = world.clone().filter(|w| w.rank != 0) {
        // Rank 0 checks the run and reports; the others load the same checkpoint.
        let exp = read_experiment(dir)?;
        let rt = rank_runtime(&exp, &w)?;
        let data = load_data(&exp)?;
        let loaded = latest_checkpoint(dir, rt.device)?;
        return follow(&exp, data, rt, w, loaded, stop);
    }
    let dismiss = || world.as_ref().map_or(Ok(()), ddp::dismiss);
    let mut info = RunInfo::read(dir)?;
    match info.status {
        Status::Done => {
            dismiss()?;
            return Ok(Launched::AlreadyDone { dir: dir.to_path_buf() });
        }
        Status::Running if !info.is_dead() => {
            dismiss()?;
            bail!(BadInput(format!(
                "run {} is still running (pid {} on {}, heartbeat {})",
                dir.display(),
                info.pid,
                info.host,
                info.heartbeat
            )))
        }
        _ => {}
    }
    let exp = read_experiment(dir)?;
    let rt = match &world {
        Some(w) => rank_runtime(&exp, w)?,
        None => Runtime::resolve(&exp.runtime),
    };
    let data = load_data(&exp)?;
    let manifest = manifest_of(&exp, &data)?;
    if manifest.hash != info.identity.data_hash {
        dismiss()?;
        bail!(BadInput(format!(
            "the data changed since run {} started (data hash {} → {}): resuming would train on other data; start a new run instead",
            info.id,
            &info.identity.data_hash[..12],
            &manifest.hash[..12]
        )));
    }
    // Run directories are <root>/<name>/<id>.
    let root = dir.parent().and_then(Path::parent).unwrap_or(dir);
    let code = Provenance::capture(Path::new("."), root)?.code_hash();
    if code != info.identity.code_hash {
        eprintln!("warning: the code changed since run {} started: the resumed steps run different code", info.id);
    }
    let loaded = latest_checkpoint(dir, rt.device)?;
    let position = loaded
        .as_ref()
        .map_or(Position::default(), |l| Position { epoch: l.state.epoch, batch_in_epoch: l.state.batch_in_epoch });
    let ddp = match world {
        Some(w) => Some(Ddp::connect(w, exp.runtime.overlap_grad_reduce)?.expect("rank 0 always connects")),
        None => None,
    };
    let mut task = LmTask::new(&exp, data, rt, position);
    if let Some(d) = &ddp {
        task.set_shard(d.world.rank, d.world.size);
    }
    info.status = Status::Running;
    info.pid = std::process::id();
    info.host = super::info::hostname();
    info.heartbeat = now();
    info.error = None;
    info.commands.push(argv.to_vec());
    info.write(dir)?;
    train(dir, &exp, task, info, loaded, stop, ddp.as_ref())
}

fn latest_checkpoint(dir: &Path, device: tch::Device) -> anyhow::Result<Option<crate::train::checkpoint::Loaded>> {
    let checkpoints = crate::train::checkpoint::Checkpoints::new(dir.join("checkpoints"));
    match checkpoints.latest()? {
        Some(entry) => Ok(Some(
            checkpoints.load(&entry, device).with_context(|| format!("cannot load checkpoint {}", entry.path))?,
        )),
        None => Ok(None),
    }
}

/// What `helico check` measured.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub parameters: i64,
    /// Loss of one window through forward and backward.
    pub loss: f64,
    pub window: i64,
    pub seconds: f64,
}

/// Builds the experiment's model on the CPU at full size and runs one forward/backward step on
/// one short window of its real data, so shape and data errors surface before a long run.
pub fn check(exp: &Experiment) -> anyhow::Result<CheckReport> {
    let started = std::time::Instant::now();
    let mut exp = exp.clone();
    let cfg = exp.data.sequences_mut().expect(SEQUENCES_ONLY);
    cfg.window = cfg.window.min(64);
    let window = cfg.window;
    exp.train.batch_size = 1;
    let data = load_data(&exp)?;
    let rt = Runtime::cpu(exp.runtime.attention.clone());
    let mut task = LmTask::new(&exp, data, rt, Position::default());
    let micro = task.micro_step();
    micro.loss.loss.backward();
    let loss = micro.loss.loss.double_value(&[]);
    let mut bad: Vec<String> = task
        .vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.grad().defined() && !bool::try_from(t.grad().isfinite().all()).unwrap_or(false))
        .map(|(name, _)| name)
        .collect();
    bad.sort();
    if !loss.is_finite() || !bad.is_empty() {
        bail!("one step on the CPU gave loss {loss} and non-finite gradients in {bad:?}");
    }
    Ok(CheckReport { parameters: task.model.param_count(), loss, window, seconds: started.elapsed().as_secs_f64() })
}

/// Reads and checks an experiment's data; problems are input errors.
pub fn load_data(exp: &Experiment) -> anyhow::Result<LmData> {
    let cfg = exp.data.sequences().expect(SEQUENCES_ONLY);
    let data = LmData::load(cfg).map_err(|e| BadInput(e.to_string()))?;
    data.check(exp.train.batch_size as usize).map_err(|e| BadInput(e.to_string()))?;
    Ok(data)
}

/// The data manifest, whose hash is the data part of a run's identity.
pub fn manifest_of(exp: &Experiment, data: &LmData) -> anyhow::Result<DataManifest> {
    let cfg = exp.data.sequences().expect(SEQUENCES_ONLY);
    let (manifest, _) =
        DataManifest::build(&data.files, data.manifest_params(cfg), None).context("cannot hash the data files")?;
    Ok(manifest)
}

/// The experiment a run resolved to, from its snapshot.
pub fn read_experiment(dir: &Path) -> anyhow::Result<Experiment> {
    let path = dir.join("config/resolved.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text)
        .with_context(|| format!("{} does not parse as an experiment of this helico version", path.display()))
}

fn write_data_files(dir: &Path, task: &LmTask) -> anyhow::Result<()> {
    task.data.vocab.save(&dir.join("data/vocab.json"))?;
    let lengths: std::collections::BTreeMap<&str, &Vec<usize>> =
        task.data.stats.iter().map(|(d, s)| (*d, &s.lengths)).collect();
    crate::atomic::write(&dir.join("data/stats.json"), serde_json::to_string_pretty(&task.data.stats)?.as_bytes())?;
    crate::atomic::write(&dir.join("data/lengths.json"), serde_json::to_string(&lengths)?.as_bytes())?;
    let params = serde_json::json!({ "total": task.model.param_count(), "modules": task.param_counts() });
    crate::atomic::write(&dir.join("model.json"), serde_json::to_string_pretty(&params)?.as_bytes())?;
    Ok(())
}

/// Trains (from a checkpoint when resuming) and records how the run ended.
fn train(
    dir: &Path,
    exp: &Experiment,
    mut task: LmTask,
    info: RunInfo,
    loaded: Option<crate::train::checkpoint::Loaded>,
    stop: &AtomicBool,
    ddp: Option<&Ddp>,
) -> anyhow::Result<Launched> {
    let mut opt = AdamW::new(&task.vs, exp_adamw(exp));
    let mut ema = (exp.train.ema_decay > 0.0).then(|| Ema::new(&task.vs, exp.train.ema_decay));
    let mut state = LoopState { step: 0, epoch: 0, batch_in_epoch: 0, seed: exp.seed, elapsed_secs: 0.0 };
    if let Some(l) = loaded {
        load_into(&task.vs, l.model, "the checkpoint")?;
        opt.load_state(l.optimizer, l.state.step).map_err(anyhow::Error::msg)?;
        if let (Some(e), Some(saved)) = (ema.as_mut(), l.ema) {
            e.load_state(saved).map_err(anyhow::Error::msg)?;
        }
        state = l.state;
    }
    let metrics = MetricsLog::open(dir, state.step)?;
    let track = Trackers::open(dir, &exp.track, &info, state.step)?;
    let progress = Progress::new(exp.train.steps, state.step, "training");
    let mut out = Outputs::new(dir, info, metrics, track, stop, exp.train.keep_checkpoints, progress);
    let result = quiet_out_of_memory(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            fit(exp, &mut task, &mut opt, ema.as_mut(), state, &mut out, ddp)
        }))
    });
    out.progress.finish();
    let result = match result {
        Ok(r) => r,
        Err(payload) => {
            let text = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or_default();
            if !text.contains("out of memory") {
                std::panic::resume_unwind(payload);
            }
            opt.zero_grad();
            Err(out_of_memory(exp, &task))
        }
    };
    match result {
        Ok(Outcome::Done(last)) => {
            let summary = Summary {
                steps: exp.train.steps,
                final_train_loss: out.last_train_loss,
                final_eval_loss: out.last_eval.map(|e| e.loss),
                final_eval_masked_accuracy: out.last_eval.map(|e| e.masked_accuracy),
                final_eval_perplexity_bound: out.last_eval.map(|e| e.perplexity_bound),
                best_eval_loss: out.best_eval.map(|b| b.0),
                best_eval_step: out.best_eval.map(|b| b.1),
                parameters: task.model.param_count(),
                wall_secs: last.elapsed_secs,
            };
            crate::atomic::write(&dir.join("summary.json"), serde_json::to_string_pretty(&summary)?.as_bytes())?;
            finish_trackers(&mut out.track, End::Done, Some(&serde_json::to_value(&summary)?));
            finish(&mut out.info, dir, Status::Done, None)?;
            Ok(Launched::Done { dir: dir.to_path_buf(), summary })
        }
        Ok(Outcome::Interrupted(step)) => {
            finish_trackers(&mut out.track, End::Interrupted, None);
            finish(&mut out.info, dir, Status::Interrupted, None)?;
            Ok(Launched::Interrupted { dir: dir.to_path_buf(), step })
        }
        Err(e) => {
            finish_trackers(&mut out.track, End::Failed, None);
            finish(&mut out.info, dir, Status::Failed, Some(format!("{e:#}")))?;
            Err(e)
        }
    }
}

/// Runs `f` with libtorch's out-of-memory panics kept quiet (they become the
/// [`out_of_memory`] error, which says what to do); any other panic is reported as before.
fn quiet_out_of_memory<T>(f: impl FnOnce() -> T) -> T {
    type Hook = dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync;
    let previous: std::sync::Arc<Hook> = std::panic::take_hook().into();
    let outer = std::sync::Arc::clone(&previous);
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text =
            payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied());
        if !text.is_some_and(|t| t.contains("out of memory")) {
            outer(info);
        }
    }));
    let result = f();
    std::panic::set_hook(Box::new(move |info| previous(info)));
    result
}

/// The out-of-memory error, naming the largest micro-batch that fits (tried, halving the
/// batch) and the accumulation that keeps the global batch.
fn out_of_memory(exp: &Experiment, task: &LmTask) -> anyhow::Error {
    let (b, a) = (exp.train.batch_size as usize, exp.train.grad_accum as usize);
    let window = task.data.window;
    let what = format!(
        "out of memory on {:?} training train.batch_size = {b} windows of data.window = {window} tokens ({} tokens per micro-batch)",
        task.rt.device,
        b * window
    );
    let fitting =
        std::iter::successors(Some(b / 2), |&n| (n > 1).then_some(n / 2)).filter(|&n| n > 0).find(|&n| task.fits(n));
    match fitting {
        Some(n) => BadInput(format!(
            "{what}: train.batch_size = {n} fits (one forward and backward tried); set train.batch_size = {n} train.grad_accum = {} to keep the global batch of {} windows",
            a * b / n,
            a * b
        ))
        .into(),
        None => BadInput(format!("{what}: not even one window fits; lower data.window (e.g. {})", window / 2)).into(),
    }
}

fn exp_adamw(exp: &Experiment) -> &crate::train::adamw::AdamWConfig {
    match &exp.optimizer {
        crate::registry::optimizer::Optimizer::Adamw(cfg) => cfg,
    }
}

/// Plots and the end of the W&B run. The run's own outcome stands whatever happens here: a
/// finished training is not failed, nor a failure hidden, by a tracker, so a tracker's error
/// is reported and the run goes on to record its status.
fn finish_trackers(track: &mut Trackers, end: End, summary: Option<&serde_json::Value>) {
    if let Err(e) = track.finish(end, summary) {
        eprintln!("warning: the trackers could not finish: {e:#}");
    }
}

fn finish(info: &mut RunInfo, dir: &Path, status: Status, error: Option<String>) -> anyhow::Result<()> {
    info.status = status;
    info.error = error;
    info.heartbeat = now();
    info.finished = (status != Status::Interrupted).then(now);
    info.write(dir)
}
