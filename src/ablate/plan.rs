//! From a spec to a plan: every trial resolved through the config engine (all problems of all
//! trials reported at once, each tied to its axis), its run identity, deduplication by run_key,
//! what to do with it (run, skip, resume, wait) and its cost.
//!
//! Cost is in device-hours: wall-clock hours of the device a trial trains on, a GPU or, on a
//! machine without one, the CPU (so a "GPU-hour" budget on a CPU machine caps CPU time). It is
//! measured, never modelled: seconds per step of finished runs with the same semantic `model`
//! table, window, batch shape and device class, times the trial's steps; "unknown" otherwise.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use super::error::{AblateError, AxisProblem};
use super::spec::{Spec, TrialDef};
use crate::config::overrides;
use crate::config::{self, Inputs, Resolved};
use crate::run::info::{Identity, RunInfo, Status, all_runs};
use crate::run::snapshot::Provenance;

/// One trial: what it sets, who it is, and where it stands. `trials.json` holds the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// 0-based, stable across `--resume`.
    pub index: usize,
    pub axes: Vec<Setting>,
    /// The overrides applied to the base experiment, in axis order.
    pub overrides: Vec<String>,
    pub config_hash: String,
    pub run_key: String,
    pub steps: u64,
    pub state: State,
    /// The run standing for this trial (`<name>/<dir>`): trained here, or the identical run.
    pub run: Option<String>,
    /// The error lines of a failed trial.
    pub error: Option<String>,
    /// The earlier trial with the same run_key, for a duplicate.
    pub same_as: Option<usize>,
    /// Estimated device-seconds left for this trial; `None` when unknown.
    pub estimate_secs: Option<f64>,
}

/// A trial's value on one axis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub axis: String,
    pub value: String,
}

/// Where a trial stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// To run.
    Pending,
    /// Trained to the end by this ablation.
    Done,
    /// An identical run (same run_key) had already completed; it stands for the trial.
    Skipped,
    /// An identical run is in progress in another process.
    Elsewhere,
    /// Same run_key as an earlier trial of this ablation: shares its run.
    Duplicate,
    /// The run ended with an error.
    Failed,
    /// Stopped by a signal or by `--fail-fast`; `--resume` continues its run directory.
    Interrupted,
}

impl Trial {
    /// The plan column of the trial table.
    pub fn plan(&self) -> String {
        let run = self.run.as_deref().unwrap_or("?");
        match self.state {
            State::Pending => "run".into(),
            State::Interrupted => format!("resume {run}"),
            State::Done => format!("done: {run}"),
            State::Skipped => format!("skip: identical run completed {run}"),
            State::Elsewhere => format!("wait: running elsewhere {run}"),
            State::Duplicate => format!("same as trial {}", self.same_as.unwrap_or_default()),
            State::Failed => "failed".into(),
        }
    }

    /// Whether executing the ablation would train this trial.
    pub fn to_run(&self) -> bool {
        matches!(self.state, State::Pending | State::Interrupted)
    }

    /// Axis name → value, as run.json records it.
    pub fn axis_map(&self) -> BTreeMap<String, String> {
        self.axes.iter().map(|s| (s.axis.clone(), s.value.clone())).collect()
    }
}

/// A spec with every trial resolved and placed.
pub struct Planned {
    pub spec: Spec,
    pub trials: Vec<Trial>,
    /// The resolved experiment of each trial, by index.
    pub resolved: Vec<Resolved>,
    pub code_hash: String,
    /// The device class trials will train on (`cpu: <model>` or a GPU model).
    pub device: String,
}

/// Totals of a plan, for the dry-run footer and the budget check.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub trials: usize,
    pub to_run: usize,
    pub skipped: usize,
    pub elsewhere: usize,
    pub duplicates: usize,
    /// Estimated device-hours of the trials to run whose cost is known.
    pub device_hours: f64,
    /// Trials to run whose cost is unknown.
    pub unknown: Vec<usize>,
    pub device: String,
}

impl Planned {
    pub fn totals(&self) -> Totals {
        let count = |s: State| self.trials.iter().filter(|t| t.state == s).count();
        let run: Vec<&Trial> = self.trials.iter().filter(|t| t.to_run()).collect();
        Totals {
            trials: self.trials.len(),
            to_run: run.len(),
            skipped: count(State::Skipped) + count(State::Done),
            elsewhere: count(State::Elsewhere),
            duplicates: count(State::Duplicate),
            device_hours: run.iter().filter_map(|t| t.estimate_secs).sum::<f64>() / 3600.0,
            unknown: run.iter().filter(|t| t.estimate_secs.is_none()).map(|t| t.index).collect(),
            device: self.device.clone(),
        }
    }

    /// Refuses a plan whose estimate exceeds `max` device-hours, or cannot be estimated.
    pub fn check_budget(&self, max: f64) -> Result<(), AblateError> {
        let t = self.totals();
        if !t.unknown.is_empty() {
            return Err(AblateError::BudgetUnknown { trials: t.unknown, device: t.device });
        }
        if t.device_hours > max {
            return Err(AblateError::OverBudget { estimate: t.device_hours, max });
        }
        Ok(())
    }
}

impl Planned {
    /// The dry-run table: one line per trial with its axis values, config hash, plan and
    /// estimated device time, then the totals.
    pub fn table(&self) -> String {
        let axes: Vec<&str> = self.spec.axes.iter().chain(&self.spec.seeds).map(|a| a.name.as_str()).collect();
        let mut header = vec!["trial".to_owned()];
        header.extend(axes.iter().map(|a| (*a).to_owned()));
        header.extend(["config".into(), "plan".into(), "device time".into()]);
        let mut rows = vec![header];
        for t in &self.trials {
            let mut row = vec![t.index.to_string()];
            row.extend(
                axes.iter().map(|a| t.axes.iter().find(|s| s.axis == *a).map_or("·".into(), |s| s.value.clone())),
            );
            let time = match (t.to_run(), t.estimate_secs) {
                (false, _) => "-".to_owned(),
                (true, Some(secs)) => duration(secs),
                (true, None) => "unknown".to_owned(),
            };
            row.extend([t.config_hash[..8].to_owned(), t.plan(), time]);
            rows.push(row);
        }
        let widths: Vec<usize> =
            (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for row in &rows {
            let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        let t = self.totals();
        let estimate = if t.to_run == 0 {
            "nothing to run".to_owned()
        } else if t.unknown.len() == t.to_run {
            format!("device time unknown: no finished run on {} has the same model, window and batch", t.device)
        } else {
            let unknown = if t.unknown.is_empty() {
                String::new()
            } else {
                format!(" plus {} trial(s) of unknown cost", t.unknown.len())
            };
            format!("estimated {:.3} device-hours on {}{unknown} (measured from past runs)", t.device_hours, t.device)
        };
        out.push_str(&format!(
            "\n{} trials: {} to run, {} skipped (identical run completed), {} running elsewhere, {} duplicates; {estimate}\n",
            t.trials, t.to_run, t.skipped, t.elsewhere, t.duplicates
        ));
        out
    }
}

/// Seconds as a person reads them.
fn duration(secs: f64) -> String {
    if secs < 90.0 {
        format!("{secs:.0} s")
    } else if secs < 5400.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

/// Resolves and places every trial of `spec`. `previous` is the trial list of the ablation being
/// resumed: its finished trials stay finished and its interrupted runs are continued.
pub fn plan(spec: Spec, root: &Path, previous: Option<(&str, &[Trial])>) -> anyhow::Result<Planned> {
    let defs = spec.trials();
    let resolved = resolve_all(&spec, &defs)?;
    let prov = Provenance::capture(Path::new(".")).context("cannot capture the code state for the trials' run keys")?;
    let code_hash = prov.code_hash();
    let data_hashes = data_hashes(&defs, &resolved)?;
    let runs = all_runs(root);
    let speeds = Throughput::measure(&runs);

    let mut trials: Vec<Trial> = Vec::with_capacity(defs.len());
    let mut first_of: HashMap<String, usize> = HashMap::new();
    for (index, (def, r)) in defs.iter().zip(&resolved).enumerate() {
        let identity = Identity::new(r.config_hash.clone(), code_hash.clone(), data_hashes[index].clone());
        let mut trial = Trial {
            index,
            axes: def.axes.iter().map(|(axis, value)| Setting { axis: axis.clone(), value: value.clone() }).collect(),
            overrides: def.overrides.clone(),
            config_hash: r.config_hash.clone(),
            run_key: identity.run_key.clone(),
            steps: r.experiment.train.steps,
            state: State::Pending,
            run: None,
            error: None,
            same_as: None,
            estimate_secs: None,
        };
        if let Some(&first) = first_of.get(&trial.run_key) {
            trial.state = State::Duplicate;
            trial.same_as = Some(first);
        } else {
            first_of.insert(trial.run_key.clone(), index);
            let before = previous.and_then(|(_, p)| p.get(index));
            place(&mut trial, before, &runs);
        }
        if trial.to_run() {
            let device = device_class(&prov.env, &r.experiment.runtime.device);
            let done =
                trial.run.as_ref().and_then(|id| runs.iter().find(|(_, i)| &i.id == id)).map_or(0, |(_, i)| i.step);
            trial.estimate_secs =
                speeds.secs_per_step(&r.table, &device).map(|s| s * trial.steps.saturating_sub(done) as f64);
        }
        trials.push(trial);
    }
    if let Some((id, before)) = previous {
        check_unchanged(id, before, &trials)?;
    }
    let device = device_class(&prov.env, &resolved[0].experiment.runtime.device);
    Ok(Planned { spec, trials, resolved, code_hash, device })
}

/// Where a (non-duplicate) trial stands, from its previous state and the runs under the root.
fn place(trial: &mut Trial, before: Option<&Trial>, runs: &[(PathBuf, RunInfo)]) {
    let info_of = |id: &str| runs.iter().find(|(_, i)| i.id == id).map(|(_, i)| i);
    if let Some(b) = before
        && let Some(info) = b.run.as_deref().and_then(info_of)
    {
        let state = match info.status {
            Status::Done if b.state == State::Done => Some(State::Done),
            Status::Interrupted => Some(State::Interrupted),
            Status::Running if info.is_dead() => Some(State::Interrupted),
            _ => None,
        };
        if let Some(state) = state {
            trial.state = state;
            trial.run = Some(info.id.clone());
            return;
        }
    }
    for (_, info) in runs.iter().filter(|(_, i)| i.identity.run_key == trial.run_key) {
        match info.status {
            Status::Done => {
                trial.state = State::Skipped;
                trial.run = Some(info.id.clone());
                return;
            }
            Status::Running if !info.is_dead() => {
                trial.state = State::Elsewhere;
                trial.run = Some(info.id.clone());
            }
            _ => {}
        }
    }
}

/// On `--resume`, every trial must resolve to the config it had when the ablation started.
fn check_unchanged(id: &str, before: &[Trial], now: &[Trial]) -> Result<(), AblateError> {
    let changes: Vec<String> = before
        .iter()
        .zip(now)
        .filter(|(b, n)| b.config_hash != n.config_hash)
        .map(|(b, n)| format!("trial {}: config {} → {}", b.index, &b.config_hash[..8], &n.config_hash[..8]))
        .take(5)
        .collect();
    if changes.is_empty() && before.len() == now.len() {
        return Ok(());
    }
    let mut changes = changes;
    if before.len() != now.len() {
        changes.push(format!("{} trials → {}", before.len(), now.len()));
    }
    Err(AblateError::TrialsChanged { id: id.to_owned(), changes })
}

/// Resolves every trial; the problems of all trials, deduplicated, tied to axes.
fn resolve_all(spec: &Spec, defs: &[TrialDef]) -> Result<Vec<Resolved>, AblateError> {
    let mut problems: Vec<AxisProblem> = Vec::new();
    let mut resolved = Vec::with_capacity(defs.len());
    for def in defs {
        let parsed: Vec<(String, overrides::Override)> = def
            .overrides
            .iter()
            .map(|o| (o.clone(), overrides::parse(o).expect("axis values were parsed as overrides when expanded")))
            .collect();
        let inputs = Inputs {
            experiment: spec.experiment.clone(),
            set_files: Vec::new(),
            env: spec.env.clone(),
            overrides: parsed,
        };
        match config::resolve(&inputs) {
            Ok(r) => resolved.push(r),
            Err(invalid) => {
                for p in &invalid.problems {
                    let origin = match &p.source {
                        Some(config::source::Source::Cli { index, .. }) => def.origins.get(index - 1).map(|axis| {
                            let value =
                                def.axes.iter().find(|(a, _)| a == axis).map(|(_, v)| v.clone()).unwrap_or_default();
                            (axis.clone(), value)
                        }),
                        _ => None,
                    };
                    merge(&mut problems, AxisProblem::from_config(p, origin));
                }
            }
        }
    }
    if problems.is_empty() { Ok(resolved) } else { Err(AblateError::Invalid { problems }) }
}

/// Adds a problem, or counts one more trial for a problem already seen: the base experiment's
/// problems recur in every trial, and an axis's problem that does not depend on its value (an
/// unknown key) is reported once for the axis rather than once per value.
fn merge(problems: &mut Vec<AxisProblem>, p: AxisProblem) {
    match problems.iter_mut().find(|q| q.message == p.message && q.axis == p.axis) {
        Some(q) => {
            q.trials += p.trials;
            if q.value != p.value {
                q.value = None;
            }
        }
        None => problems.push(p),
    }
}

/// The data hash of each trial, loading each distinct data configuration once. Data a trial
/// cannot read is an input problem of the axis that points it there (or of the base).
fn data_hashes(defs: &[TrialDef], resolved: &[Resolved]) -> anyhow::Result<Vec<String>> {
    let mut by_config: HashMap<String, Result<String, String>> = HashMap::new();
    let mut problems: Vec<AxisProblem> = Vec::new();
    let mut out = Vec::with_capacity(resolved.len());
    for (def, r) in defs.iter().zip(resolved) {
        let exp = &r.experiment;
        let key = serde_json::to_string(&json!([exp.data, exp.train.batch_size]))?;
        let hash = by_config.entry(key).or_insert_with(|| {
            let data = crate::run::launch::load_data(exp).map_err(|e| format!("{e:#}"))?;
            crate::run::launch::manifest_of(exp, &data).map(|m| m.hash).map_err(|e| format!("{e:#}"))
        });
        match hash {
            Ok(h) => out.push(h.clone()),
            Err(message) => {
                let origin = def
                    .axes
                    .iter()
                    .zip(&def.origins)
                    .find(|(_, o)| o.starts_with("data") || o.starts_with("train.batch_size"))
                    .map(|((a, v), _)| (a.clone(), v.clone()));
                let (axis, value) = origin.unzip();
                let mut p =
                    AxisProblem::plain(axis, message.clone(), "the data of every trial is read before any trial runs");
                p.value = value;
                p.trials = 1;
                merge(&mut problems, p);
            }
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(AblateError::Invalid { problems }.into()) }
}

/// The device class a run on this machine with `runtime.device` trains on.
pub fn device_class(env: &crate::run::env::EnvInfo, runtime_device: &str) -> String {
    class_of(runtime_device, env.gpu.cuda_available, |i| env.gpu.models.get(i).cloned(), env.host.cpu_model.as_deref())
}

/// `cpu: <model>` or the GPU's model: throughput is only comparable within a class.
fn class_of(
    runtime_device: &str,
    cuda: bool,
    gpu_model: impl Fn(usize) -> Option<String>,
    cpu_model: Option<&str>,
) -> String {
    let gpu_index = match runtime_device {
        "cpu" => None,
        "auto" | "cuda" => Some(0),
        d => d.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()),
    };
    match gpu_index.filter(|_| cuda) {
        Some(i) => gpu_model(i).unwrap_or_else(|| "cuda".into()),
        None => format!("cpu: {}", cpu_model.unwrap_or("unknown")),
    }
}

/// Seconds per optimiser step of finished runs, by what determines them.
struct Throughput {
    by_key: HashMap<String, Vec<f64>>,
}

impl Throughput {
    fn measure(runs: &[(PathBuf, RunInfo)]) -> Throughput {
        let mut by_key: HashMap<String, Vec<f64>> = HashMap::new();
        for (dir, _) in runs.iter().filter(|(_, i)| i.status == Status::Done) {
            let Some((table, device, secs)) = past_run(dir) else { continue };
            by_key.entry(speed_key(&table, &device)).or_default().push(secs);
        }
        Throughput { by_key }
    }

    /// The median over matching runs.
    fn secs_per_step(&self, table: &toml::Table, device: &str) -> Option<f64> {
        let mut v = self.by_key.get(&speed_key(table, device))?.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    }
}

/// (resolved table, device class, seconds per step) of a finished run, if its files say so.
fn past_run(dir: &Path) -> Option<(toml::Table, String, f64)> {
    let read_json = |f: &str| serde_json::from_slice::<Json>(&std::fs::read(dir.join(f)).ok()?).ok();
    let summary = read_json("summary.json")?;
    let steps = summary.get("steps")?.as_f64().filter(|s| *s > 0.0)?;
    let secs = summary.get("wall_secs")?.as_f64()?;
    let table: toml::Table = std::fs::read_to_string(dir.join("config/resolved.toml")).ok()?.parse().ok()?;
    let env = read_json("env.json")?;
    let runtime_device =
        table.get("runtime").and_then(|r| r.get("device")).and_then(toml::Value::as_str).unwrap_or("auto");
    let class = class_of(
        runtime_device,
        env.pointer("/gpu/cuda_available").and_then(Json::as_bool).unwrap_or(false),
        |i| env.pointer(&format!("/gpu/models/{i}")).and_then(Json::as_str).map(str::to_owned),
        env.pointer("/host/cpu_model").and_then(Json::as_str),
    );
    Some((table, class, secs / steps))
}

/// What throughput depends on: the model, tokens per step, and the device class.
fn speed_key(table: &toml::Table, device: &str) -> String {
    let get = |a: &str, b: &str| table.get(a).and_then(|t| t.get(b)).cloned();
    let key = json!({
        "model": table.get("model"),
        "window": get("data", "window"),
        "batch_size": get("train", "batch_size"),
        "grad_accum": get("train", "grad_accum"),
        "device": device,
    });
    crate::hash::canonical(&key).to_string()
}
