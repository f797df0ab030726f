//! `helico bench d3pm`: training throughput of the D3PM LM in non-padding tokens per second
//! and MFU, for each attention kernel, side by side in one process tree with the PyTorch
//! implementation in `bench/d3pm_torch.py` (eager and `torch.compile`d) on the same packed
//! micro-batches.
//!
//! helico's side times `train::trainer::train_step`, the trainer's own step (forward and
//! backward of `grad_accum` micro-batches, clip, finite check, fused AdamW), so what is
//! measured is what `helico run` does. FLOPs follow perf_anchors.md §3.2 and §5(d):
//! 6·P + 12·n_layers·D·S_eff per token, where P counts the matmul weights (the blocks and the
//! tied head) and S_eff = Σ len² / Σ len over the packed sequences, i.e. only the attention a
//! varlen kernel must do; every variant is scored against the same useful FLOPs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use super::{MEASURED_BF16_GEMM_FLOPS, PEAK_BF16_FLOPS, Timing};
use crate::data::lm::{Batches, LmData, Position};
use crate::data::packing::PackedBatch;
use crate::exit::BadInput;
use crate::nn::attention::unsupported;
use crate::registry::Experiment;
use crate::registry::attention::Attention;
use crate::registry::data::SEQUENCES_ONLY;
use crate::registry::model::Model;
use crate::registry::optimizer::Optimizer;
use crate::run::env::EnvInfo;
use crate::run::secrets::Redactor;
use crate::runtime::Runtime;
use crate::train::adamw::AdamW;
use crate::train::lm::LmTask;
use crate::train::trainer::train_step;

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// Timed optimiser steps per variant (after `warmup`).
    pub steps: usize,
    pub warmup: usize,
    /// helico's attention kernels to time, each in its own model.
    pub kernels: Vec<Attention>,
    /// The PyTorch side, unless left out.
    pub torch: Option<TorchOptions>,
    /// Micro-batches handed to PyTorch, which cycles them (helico reads its data stream).
    pub pool: usize,
    /// Profile one more step of each helico kernel (Kineto) and report where GPU time goes.
    pub profile: bool,
    /// The command line, for the report.
    pub command: String,
}

#[derive(Debug, Clone)]
pub struct TorchOptions {
    /// The Python interpreter with torch (the GPU machine's `python3`).
    pub python: PathBuf,
    /// `bench/d3pm_torch.py`.
    pub script: PathBuf,
    /// `mode-kernel` pairs: modes `eager`, `compile`; kernels `sdpa` (dense mask), `varlen`.
    pub variants: Vec<String>,
}

/// The benchmark's result, as written to `<stem>.json` (and rendered to `<stem>.md`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub command: String,
    pub date: String,
    pub machine: Machine,
    pub experiment: String,
    pub model: ModelShape,
    pub batch: BatchShape,
    /// Useful training FLOPs per real token (see the module doc).
    pub flops_per_token: f64,
    /// Real tokens/s at 100% of the measured 790 TFLOP/s bf16 GEMM rate: the FLOP floor.
    pub floor_tokens_per_s: f64,
    pub results: Vec<Measured>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub gpus: Vec<String>,
    pub driver: Option<String>,
    pub cuda_runtime: Option<i64>,
    pub cudnn: Option<i64>,
    pub libtorch: Option<String>,
    /// The Python side's `torch.__version__` and CUDA.
    pub torch_python: Option<String>,
    pub helico: String,
    /// Build profile of this binary (`release` for reported numbers).
    pub profile: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelShape {
    pub parameters: i64,
    /// Weights of the per-token matrix products: the blocks' linears and the tied head.
    pub matmul_parameters: i64,
    pub n_layers: i64,
    pub d_model: i64,
    pub n_heads: i64,
    pub vocab: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchShape {
    pub batch_size: i64,
    pub window: usize,
    pub grad_accum: i64,
    /// Mean real tokens per micro-batch, and the padded fraction of its B·L positions.
    pub real_tokens_per_micro_batch: f64,
    pub padding_fraction: f64,
    /// Σ len² / Σ len over the packed sequences (EOS included).
    pub attention_span: f64,
    pub sequences_per_micro_batch: f64,
}

/// One variant's measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// `helico` or `pytorch`.
    pub implementation: String,
    /// `eager` or `compile`.
    pub mode: String,
    pub kernel: String,
    pub steps: usize,
    /// Per optimiser step; `None` when the variant did not run.
    pub timing: Option<Timing>,
    pub tokens_per_s: Option<f64>,
    /// Useful FLOP/s over 989 TFLOP/s.
    pub mfu: Option<f64>,
    /// Useful FLOP/s over the measured 790 TFLOP/s.
    pub of_measured_gemm: Option<f64>,
    pub peak_allocated_bytes: Option<i64>,
    /// Where one profiled step's GPU time went (with `--profile`).
    pub profile: Option<Profile>,
    /// Why it did not run, or what else to know.
    pub note: Option<String>,
}

/// GPU time of one profiled optimiser step, by kind of kernel.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// Wall time of the step, in ms.
    pub step_ms: f64,
    /// Σ kernel, memcpy and memset durations over the step wall time: what is left is GPU
    /// idle, waiting for the host.
    pub busy: f64,
    /// (class, ms, launches), largest first: gemm, attention, layer_norm, elementwise, reduce,
    /// optimizer, copy, other.
    pub classes: Vec<(String, f64, usize)>,
    /// The costliest kernels (`PROFILE_TOP` of them): (name, ms, launches).
    pub top: Vec<(String, f64, usize)>,
}

/// Runs the benchmark of `exp` (its model, data, batch and optimiser as configured).
pub fn run(exp: &Experiment, experiment: &str, opts: &Options) -> anyhow::Result<Report> {
    let Model::D3pmLm(cfg) = &exp.model;
    let data_cfg = exp.data.sequences().expect(SEQUENCES_ONLY);
    let data = LmData::load(data_cfg).map_err(|e| BadInput(e.to_string()))?;
    data.check(exp.train.batch_size as usize).map_err(|e| BadInput(e.to_string()))?;
    let base = Runtime::resolve(&exp.runtime);
    if base.device == Device::Cpu {
        eprintln!("note: no GPU is in use: the CPU numbers measure nothing the issue targets");
    }
    // The micro-batches PyTorch cycles: the first of the stream helico's trainer reads.
    let mut stream = Batches::new(&data, exp.train.batch_size as usize, exp.seed, Position::default());
    let pool: Vec<PackedBatch> = (0..opts.pool.max(1)).map(|_| stream.next(&data).0).collect();
    let batch = batch_shape(exp, &pool, data.window);
    let head_dim = cfg.d_model / cfg.n_heads;
    let model = ModelShape {
        parameters: 0,
        // qkv 3D², out D², fc1 and fc2 ffn_mult·D² each, per block; the tied head V·D.
        matmul_parameters: cfg.n_layers * (4 + 2 * cfg.ffn_mult) * cfg.d_model * cfg.d_model
            + data.vocab.len() * cfg.d_model,
        n_layers: cfg.n_layers,
        d_model: cfg.d_model,
        n_heads: cfg.n_heads,
        vocab: data.vocab.len(),
    };
    let flops_per_token =
        6.0 * model.matmul_parameters as f64 + 12.0 * (cfg.n_layers * cfg.d_model) as f64 * batch.attention_span;
    let mut results = Vec::new();
    let mut parameters = 0;
    for kernel in &opts.kernels {
        let name = crate::nn::attention::name(kernel).to_owned();
        if let Some(why) = unsupported(kernel, base.device, base.kind, head_dim) {
            results.push(not_run("helico", "eager", &name, format!("not run: {why}")));
            continue;
        }
        let rt = Runtime { attention: kernel.clone(), ..base.clone() };
        let task =
            LmTask::new(exp, LmData::load(data_cfg).map_err(|e| BadInput(e.to_string()))?, rt, Position::default());
        parameters = task.model.param_count();
        eprintln!("helico {name}: {} warm-up + {} timed steps", opts.warmup, opts.steps);
        results.push(time_helico(exp, task, &name, opts)?);
    }
    let mut torch_version = None;
    if let Some(torch) = &opts.torch {
        let (version, measured) = run_torch(exp, torch, &pool, data.window, data.vocab.len(), opts)?;
        torch_version = Some(version);
        results.extend(measured);
    }
    for r in &mut results {
        if let (Some(t), Some(tps)) = (r.timing, r.tokens_per_s) {
            debug_assert!(t.mean_secs > 0.0);
            r.mfu = Some(tps * flops_per_token / PEAK_BF16_FLOPS);
            r.of_measured_gemm = Some(tps * flops_per_token / MEASURED_BF16_GEMM_FLOPS);
        }
    }
    let env = EnvInfo::collect(&Redactor::from_env());
    Ok(Report {
        command: opts.command.clone(),
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        machine: Machine {
            gpus: env.gpu.models.clone(),
            driver: env.gpu.driver_version.clone(),
            cuda_runtime: env.gpu.cudart_version,
            cudnn: env.gpu.cudnn_version,
            libtorch: env.libtorch.version.clone(),
            torch_python: torch_version,
            helico: format!("{} ({})", env.build.helico_version, env!("HELICO_BUILD_GIT")),
            profile: env.build.profile.clone(),
        },
        experiment: experiment.to_owned(),
        model: ModelShape { parameters, ..model },
        batch,
        flops_per_token,
        floor_tokens_per_s: MEASURED_BF16_GEMM_FLOPS / flops_per_token,
        results,
    })
}

fn not_run(implementation: &str, mode: &str, kernel: &str, note: String) -> Measured {
    Measured {
        implementation: implementation.into(),
        mode: mode.into(),
        kernel: kernel.into(),
        steps: 0,
        timing: None,
        tokens_per_s: None,
        mfu: None,
        of_measured_gemm: None,
        peak_allocated_bytes: None,
        profile: None,
        note: Some(note),
    }
}

fn batch_shape(exp: &Experiment, pool: &[PackedBatch], window: usize) -> BatchShape {
    let (mut real, mut squares, mut seqs) = (0.0, 0.0, 0.0);
    for b in pool {
        let cu = Vec::<i64>::try_from(b.cu_seqlens.to_kind(tch::Kind::Int64)).expect("cu_seqlens on the host");
        for w in cu.windows(2) {
            let len = (w[1] - w[0]) as f64;
            real += len;
            squares += len * len;
            seqs += 1.0;
        }
    }
    let n = pool.len() as f64;
    let positions = (exp.train.batch_size as usize * window) as f64;
    BatchShape {
        batch_size: exp.train.batch_size,
        window,
        grad_accum: exp.train.grad_accum,
        real_tokens_per_micro_batch: real / n,
        padding_fraction: 1.0 - real / n / positions,
        attention_span: squares / real.max(1.0),
        sequences_per_micro_batch: seqs / n,
    }
}

/// Times `train_step` on the task's data stream: warm-up steps, then each timed step between
/// device synchronisations.
fn time_helico(exp: &Experiment, mut task: LmTask, kernel: &str, opts: &Options) -> anyhow::Result<Measured> {
    let Optimizer::Adamw(adamw) = &exp.optimizer;
    let mut opt = AdamW::new(&task.vs, adamw);
    let device = task.rt.device;
    let never = std::sync::atomic::AtomicBool::new(false);
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    for s in 0..opts.warmup {
        train_step(exp, &mut task, &mut opt, s as u64, None, &never)?;
    }
    sync();
    if let Device::Cuda(i) = device {
        crate::sys::reset_peak_memory(i)?;
    }
    let (mut secs, mut tokens) = (Vec::new(), 0usize);
    for s in opts.warmup..opts.warmup + opts.steps {
        let started = Instant::now();
        let step = train_step(exp, &mut task, &mut opt, s as u64, None, &never)?;
        sync();
        secs.push(started.elapsed().as_secs_f64());
        tokens += step.tokens;
    }
    let peak = match device {
        Device::Cuda(i) => Some(crate::sys::memory_stats(i)?.peak_allocated),
        _ => None,
    };
    let profile = match (opts.profile, device) {
        (true, Device::Cuda(_)) => {
            let trace = std::env::temp_dir().join(format!("helico-profile-{}.json", std::process::id()));
            crate::sys::profiler_start()?;
            let started = Instant::now();
            train_step(exp, &mut task, &mut opt, (opts.warmup + opts.steps) as u64, None, &never)?;
            sync();
            let step_ms = started.elapsed().as_secs_f64() * 1e3;
            crate::sys::profiler_stop(&trace)?;
            let summary = summarize(&trace, step_ms);
            let _ = std::fs::remove_file(&trace);
            Some(summary?)
        }
        _ => None,
    };
    let mut m = not_run("helico", "eager", kernel, String::new());
    m.note = None;
    m.profile = profile;
    m.steps = opts.steps;
    m.timing = Some(Timing::of(&secs));
    m.tokens_per_s = Some(tokens as f64 / secs.iter().sum::<f64>());
    m.peak_allocated_bytes = peak;
    Ok(m)
}

/// Kernels listed by name in a profile.
const PROFILE_TOP: usize = 30;

/// GPU time by kernel class from a Kineto Chrome trace.
fn summarize(trace: &Path, step_ms: f64) -> anyhow::Result<Profile> {
    let text = std::fs::read(trace).with_context(|| format!("the profiler wrote no {}", trace.display()))?;
    let v: serde_json::Value = serde_json::from_slice(&text).context("the profiler's trace is not JSON")?;
    let mut by_name: std::collections::HashMap<String, (f64, usize)> = Default::default();
    for e in v["traceEvents"].as_array().into_iter().flatten() {
        let cat = e["cat"].as_str().unwrap_or_default();
        if !matches!(cat, "kernel" | "gpu_memcpy" | "gpu_memset") {
            continue;
        }
        let name = if cat == "kernel" { e["name"].as_str().unwrap_or("?").to_owned() } else { cat.to_owned() };
        let entry = by_name.entry(name).or_default();
        entry.0 += e["dur"].as_f64().unwrap_or(0.0) / 1e3;
        entry.1 += 1;
    }
    let class = |name: &str| {
        let n = name.to_lowercase();
        let has = |keys: &[&str]| keys.iter().any(|k| n.contains(k));
        // Attention first: FlashAttention's kernel names mention cutlass too.
        if has(&["flash", "fmha", "attention", "sdpa"]) {
            "attention"
        } else if has(&["gemm", "xmma", "cutlass", "nvjet", "cublas"]) {
            "gemm"
        } else if has(&["layer_norm", "layernorm", "gammabeta"]) {
            "layer_norm"
        } else if has(&["adam", "foreach", "multi_tensor"]) {
            "optimizer"
        } else if has(&["reduce"]) {
            "reduce"
        } else if has(&["elementwise", "vectorized", "unrolled"]) {
            "elementwise"
        } else if has(&["memcpy", "memset", "copy"]) {
            "copy"
        } else {
            "other"
        }
    };
    let mut classes: std::collections::BTreeMap<&str, (f64, usize)> = Default::default();
    for (name, (ms, n)) in &by_name {
        let c = classes.entry(class(name)).or_default();
        c.0 += ms;
        c.1 += n;
    }
    let busy = by_name.values().map(|x| x.0).sum::<f64>() / step_ms;
    let mut classes: Vec<(String, f64, usize)> =
        classes.into_iter().map(|(c, (ms, n))| (c.to_owned(), ms, n)).collect();
    classes.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut top: Vec<(String, f64, usize)> =
        by_name.into_iter().map(|(name, (ms, n))| (name.chars().take(140).collect(), ms, n)).collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top.truncate(PROFILE_TOP);
    Ok(Profile { step_ms, busy, classes, top })
}

/// What `d3pm_torch.py bench` writes.
#[derive(Deserialize)]
struct TorchOutput {
    torch: String,
    cuda: Option<String>,
    results: Vec<TorchResult>,
}

#[derive(Deserialize)]
struct TorchResult {
    mode: String,
    kernel: String,
    step_secs: Vec<f64>,
    tokens: Vec<usize>,
    peak_allocated_bytes: Option<i64>,
    warmup_secs: f64,
}

/// A scratch directory removed on drop (the `tempfile` crate is a test-only dependency).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<TempDir> {
        let dir = std::env::temp_dir().join(format!("helico-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(TempDir(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the pool and the model/optimiser description, runs the PyTorch side, reads back.
fn run_torch(
    exp: &Experiment,
    torch: &TorchOptions,
    pool: &[PackedBatch],
    window: usize,
    vocab: i64,
    opts: &Options,
) -> anyhow::Result<(String, Vec<Measured>)> {
    let dir = TempDir::new()?;
    let mut named = Vec::new();
    for (i, b) in pool.iter().enumerate() {
        for (key, t) in
            [("tokens", &b.tokens), ("positions", &b.positions), ("domains", &b.domains), ("segments", &b.segments)]
        {
            named.push((format!("{key}.{i}"), t.to_kind(tch::Kind::Int)));
        }
        named.push((format!("cu_seqlens.{i}"), b.cu_seqlens.shallow_clone()));
    }
    let pool_path = dir.path().join("pool.safetensors");
    Tensor::write_safetensors(&named, &pool_path).context("cannot write the batch pool")?;
    let Model::D3pmLm(model) = &exp.model;
    let Optimizer::Adamw(adamw) = &exp.optimizer;
    let meta = serde_json::json!({
        "model": model, "vocab_size": vocab, "window": window, "pool": pool.len(),
        "grad_accum": exp.train.grad_accum, "clip_grad_norm": exp.train.clip_grad_norm,
        "optimizer": { "lr": exp.optimizer.lr(), "betas": adamw.betas, "eps": adamw.eps, "weight_decay": adamw.weight_decay },
    });
    let meta_path = dir.path().join("meta.json");
    std::fs::write(&meta_path, serde_json::to_vec(&meta)?)?;
    let out_path = dir.path().join("torch.json");
    eprintln!("pytorch: {} ({} warm-up + {} timed steps each)", torch.variants.join(", "), opts.warmup, opts.steps);
    let status = Command::new(&torch.python)
        .arg(&torch.script)
        .arg("bench")
        .args(["--meta".as_ref(), meta_path.as_os_str(), "--pool".as_ref(), pool_path.as_os_str()])
        .args(["--steps", &opts.steps.to_string(), "--warmup", &opts.warmup.to_string()])
        .args(["--variants", &torch.variants.join(",")])
        .arg("--out")
        .arg(&out_path)
        .env("PYTHONUNBUFFERED", "1")
        .status()
        .with_context(|| format!("cannot start {} (pass --python, or --no-torch)", torch.python.display()))?;
    if !status.success() {
        bail!("the PyTorch side ({} {}) failed with {status}", torch.python.display(), torch.script.display());
    }
    let out: TorchOutput = serde_json::from_slice(&std::fs::read(&out_path)?)
        .with_context(|| format!("{} wrote results this helico does not read", torch.script.display()))?;
    let measured = out
        .results
        .into_iter()
        .map(|r| {
            ensure!(!r.step_secs.is_empty(), "the PyTorch side timed no step of {}-{}", r.mode, r.kernel);
            let mut m =
                not_run("pytorch", &r.mode, &r.kernel, format!("warm-up (incl. compilation) {:.0} s", r.warmup_secs));
            m.steps = r.step_secs.len();
            m.timing = Some(Timing::of(&r.step_secs));
            m.tokens_per_s = Some(r.tokens.iter().sum::<usize>() as f64 / r.step_secs.iter().sum::<f64>());
            m.peak_allocated_bytes = r.peak_allocated_bytes;
            Ok(m)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((format!("torch {} (CUDA {})", out.torch, out.cuda.as_deref().unwrap_or("none")), measured))
}

impl Report {
    /// `<date>-d3pm-<gpu>`: the file stem under `bench/results/`.
    pub fn stem(&self) -> String {
        let gpu = self.machine.gpus.first().map_or("cpu".to_owned(), |g| {
            g.trim_start_matches("NVIDIA ").split_whitespace().next().unwrap_or("gpu").to_lowercase()
        });
        format!("{}-d3pm-{gpu}", chrono::Utc::now().format("%Y%m%d-%H%M"))
    }

    /// Writes `<stem>.json` and `<stem>.md` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let stem = self.stem();
        let (json, md) = (dir.join(format!("{stem}.json")), dir.join(format!("{stem}.md")));
        crate::atomic::write(&json, serde_json::to_string_pretty(self)?.as_bytes())?;
        crate::atomic::write(&md, self.markdown().as_bytes())?;
        Ok((json, md))
    }

    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let b = &self.batch;
        let mut s = format!(
            "# D3PM training throughput, {}\n\n\
             Command: `{}`\n\n\
             - Machine: {} · driver {} · CUDA runtime {} · cuDNN {} · libtorch {} · {}\n\
             - helico {} ({} build)\n\
             - Experiment `{}`: {} parameters, {} layers, d {}, {} heads, vocabulary {}\n\
             - Batch: {} windows of {} tokens × accumulation {}; {:.0} real tokens per micro-batch \
               ({:.1}% padding), {:.1} sequences, attention span Σlen²/Σlen = {:.0}\n\
             - FLOPs per real token (6·P + 12·n_layers·D·S_eff, P = {} matmul weights): {:.3} GF; \
               FLOP floor at 790 TFLOP/s: {:.0} tokens/s\n\n\
             | implementation | mode | kernel | tokens/s | step mean (s) | step p90 (s) | MFU (989) | of 790 | peak alloc (GiB) | note |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
            self.date,
            self.command,
            if m.gpus.is_empty() { "no GPU".to_owned() } else { m.gpus.join(", ") },
            m.driver.as_deref().unwrap_or("-"),
            m.cuda_runtime.map_or("-".into(), |v| v.to_string()),
            m.cudnn.map_or("-".into(), |v| v.to_string()),
            m.libtorch.as_deref().unwrap_or("-"),
            m.torch_python.as_deref().unwrap_or("PyTorch side not run"),
            m.helico,
            m.profile,
            self.experiment,
            self.model.parameters,
            self.model.n_layers,
            self.model.d_model,
            self.model.n_heads,
            self.model.vocab,
            b.batch_size,
            b.window,
            b.grad_accum,
            b.real_tokens_per_micro_batch,
            100.0 * b.padding_fraction,
            b.sequences_per_micro_batch,
            b.attention_span,
            self.model.matmul_parameters,
            self.flops_per_token / 1e9,
            self.floor_tokens_per_s,
        );
        let num = |x: Option<f64>, f: &dyn Fn(f64) -> String| x.map_or("-".to_owned(), f);
        for r in &self.results {
            s += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.implementation,
                r.mode,
                r.kernel,
                num(r.tokens_per_s, &|x| format!("{x:.0}")),
                num(r.timing.map(|t| t.mean_secs), &|x| format!("{x:.4}")),
                num(r.timing.map(|t| t.p90_secs), &|x| format!("{x:.4}")),
                num(r.mfu, &|x| format!("{:.1}%", 100.0 * x)),
                num(r.of_measured_gemm, &|x| format!("{:.1}%", 100.0 * x)),
                num(r.peak_allocated_bytes.map(|x| x as f64 / (1u64 << 30) as f64), &|x| format!("{x:.1}")),
                r.note.as_deref().unwrap_or(""),
            );
        }
        for r in &self.results {
            let Some(p) = &r.profile else { continue };
            s += &format!(
                "\n### Profile: {} {} (one step, {:.1} ms, GPU busy {:.1}%)\n\n| class | ms | launches |\n|---|---|---|\n",
                r.implementation,
                r.kernel,
                p.step_ms,
                100.0 * p.busy
            );
            for (c, ms, n) in &p.classes {
                s += &format!("| {c} | {ms:.2} | {n} |\n");
            }
            s += "\n| kernel | ms | launches |\n|---|---|---|\n";
            for (name, ms, n) in &p.top {
                s += &format!("| `{}` | {ms:.2} | {n} |\n", name.replace('|', "/"));
            }
        }
        s
    }
}
