//! Trackers: what a run reports while it runs and after. `metrics.jsonl` is always written
//! (the trainer appends to it itself); [`Trackers`] adds what `[track]` turns on: a W&B
//! offline run, and plots of the curves when the run stops. The trainer only calls `log`,
//! `flush` and `finish`, and knows no tracker's format.

pub mod error;
pub mod hf;
pub mod metrics;
pub mod plot;
pub mod progress;
pub mod wandb;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::run::info::RunInfo;
pub use wandb::End;

/// `[track]`: where a run reports besides metrics.jsonl. Never part of the config hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(extend("x-nonsemantic" = true))]
pub struct TrackConfig {
    /// Draw `plots/<metric>.png` and `.svg` from metrics.jsonl when the run stops.
    pub plots: bool,
    /// The Weights & Biases offline run.
    pub wandb: wandb::WandbConfig,
}

impl Default for TrackConfig {
    fn default() -> Self {
        Self { plots: true, wandb: wandb::WandbConfig::default() }
    }
}

impl TrackConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        self.wandb.problems().into_iter().map(|(k, m)| (format!("wandb.{k}"), m)).collect()
    }
}

/// The trackers of one run process.
pub struct Trackers {
    dir: PathBuf,
    plots: bool,
    wandb: Option<wandb::WandbRun>,
}

impl Trackers {
    /// Opens the trackers `cfg` turns on for the run in `dir`, which continues from step
    /// `keep_through` (0 for a new run) and records their links in links.json.
    pub fn open(dir: &Path, cfg: &TrackConfig, info: &RunInfo, keep_through: u64) -> anyhow::Result<Trackers> {
        let wandb = if cfg.wandb.enabled {
            let (run, link) = wandb::WandbRun::open(dir, &cfg.wandb, info, keep_through)?;
            set_link(dir, "wandb", serde_json::to_value(link)?)?;
            Some(run)
        } else {
            None
        };
        Ok(Trackers { dir: dir.to_path_buf(), plots: cfg.plots, wandb })
    }

    /// Reports one record that was just appended to metrics.jsonl.
    pub fn log(&mut self, record: &metrics::Record) -> anyhow::Result<()> {
        if let Some(w) = &mut self.wandb {
            w.log(record)?;
        }
        Ok(())
    }

    /// Writes what is buffered; called before each checkpoint, so whatever the checkpoint
    /// covers is on disk when a resume starts from it.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        if let Some(w) = &mut self.wandb {
            w.flush()?;
        }
        Ok(())
    }

    /// Ends the trackers of this process: plots, then the W&B summary (with `summary`, the
    /// run's summary.json when it has one), files and exit.
    pub fn finish(&mut self, end: End, summary: Option<&Value>) -> anyhow::Result<()> {
        let mut files = vec![(self.dir.join("config/resolved.toml"), "helico/resolved.toml".to_owned())];
        if self.plots {
            for written in plot::run_plots(&self.dir)? {
                let name = written.png.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                files.push((written.png, format!("helico/plots/{name}")));
            }
        }
        if let Some(w) = &mut self.wandb {
            let extra: BTreeMap<String, Value> = summary
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| (format!("helico/{k}"), v.clone())).collect())
                .unwrap_or_default();
            w.finish(end, &extra, &files)?;
        }
        Ok(())
    }
}

/// Sets `key` in the run's links.json (tracker URLs and targets), keeping the other keys.
pub fn set_link(dir: &Path, key: &str, value: Value) -> anyhow::Result<()> {
    let path = dir.join("links.json");
    let mut links: serde_json::Map<String, Value> = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("{} is corrupt", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::Map::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    links.insert(key.to_owned(), value);
    crate::atomic::write(&path, serde_json::to_string_pretty(&links)?.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
