//! The registry: an experiment's typed configuration. Each swappable slot is an enum tagged by
//! `type` (one file per slot) whose variants carry their own config struct; the JSON schema,
//! `helico registry` and validation all derive from these types.

pub mod attention;
pub mod data;
pub mod describe;
pub mod loss;
pub mod model;
pub mod optimizer;
pub mod schedule;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::RuntimeConfig;
use crate::track::TrackConfig;
use crate::train::trainer::TrainConfig;

/// A helico experiment. Every file layer and override resolves into this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Experiment {
    /// Experiment files this one builds on, lowest first, relative to this file. Consumed
    /// while loading: the resolved config never contains it.
    #[serde(skip_serializing)]
    #[schemars(extend("x-nonsemantic" = true))]
    pub extends: Vec<String>,
    /// Name of the experiment: its runs go to `runs/<name>/`.
    #[schemars(extend("x-nonsemantic" = true), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"))]
    pub name: String,
    /// Seed of every random choice in the run (initialisation, data order, noise).
    pub seed: u64,
    /// The model family and its architecture.
    pub model: model::Model,
    /// The training objective.
    pub loss: loss::Loss,
    /// The optimiser.
    pub optimizer: optimizer::Optimizer,
    /// The learning-rate schedule.
    pub schedule: schedule::Schedule,
    /// Where training examples come from.
    pub data: data::Data,
    /// Steps, batch shape, and the cadence of logging, evaluation and checkpoints.
    pub train: TrainConfig,
    /// Device, precision and kernels: how, not what, the run computes.
    pub runtime: RuntimeConfig,
    /// Where the run reports besides metrics.jsonl: W&B offline run, plots.
    pub track: TrackConfig,
}

impl Default for Experiment {
    fn default() -> Self {
        Self {
            extends: Vec::new(),
            name: "experiment".into(),
            seed: 0,
            model: model::Model::default(),
            loss: loss::Loss::default(),
            optimizer: optimizer::Optimizer::default(),
            schedule: schedule::Schedule::default(),
            data: data::Data::default(),
            train: TrainConfig::default(),
            runtime: RuntimeConfig::default(),
            track: TrackConfig::default(),
        }
    }
}

impl Experiment {
    /// Cross-field problems the schema cannot express, as (dotted key, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut under = |prefix: &str, problems: Vec<(String, String)>| {
            out.extend(problems.into_iter().map(|(k, m)| (format!("{prefix}.{k}"), m)));
        };
        match &self.model {
            model::Model::D3pmLm(m) => under("model", m.problems()),
        }
        match &self.optimizer {
            optimizer::Optimizer::Adamw(o) => under("optimizer", o.problems()),
        }
        under("runtime", self.runtime.problems());
        under("track", self.track.problems());
        if let data::Data::Af3(d) = &self.data {
            under("data", d.problems());
        }
        let warmup = self.schedule.warmup_steps();
        if warmup > self.train.steps {
            out.push((
                "schedule.warmup_steps".into(),
                format!("warmup_steps = {warmup} exceeds train.steps = {}", self.train.steps),
            ));
        }
        match &self.data {
            data::Data::Sequences(d) if d.files.is_empty() => {
                out.push(("data.files".into(), "no sequence files: add at least one [[data.files]] entry".into()));
            }
            data::Data::Sequences(_) => {}
            data::Data::Af3(_) => {
                out.push((
                    "data".into(),
                    "data = @af3 feeds AF3 models, and helico trains none yet; model d3pm_lm reads \
                     data = @sequences (`helico registry show data.sequences`)"
                        .into(),
                ));
            }
        }
        out
    }
}
