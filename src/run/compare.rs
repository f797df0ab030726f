//! A run read back for comparison: what `helico diff`, `ls` and `freeze` need from a run
//! directory (resolved config and its sources, code, data, environment, model summary and
//! metrics). Every snapshot file is checked as it is read, so a missing or corrupt file is
//! reported by name ([`RunError::Snapshot`], exit code 2) instead of compared as if empty.
//!
//! Seed replicas (DESIGN.md "helico diff"; config_engine_anchors.md §4.6) are found here too:
//! finished runs whose semantic config equals a run's in everything but `seed`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::error::RunError;
use super::info::{FILE as RUN_JSON, RunInfo, Status, all_runs};
use crate::config::schema::Schema;
use crate::config::semantic_view;
use crate::config::source::Source;
use crate::data::manifest::DataManifest;
use crate::track::metrics::{self, Record};

pub const RESOLVED: &str = "config/resolved.toml";
pub const PROVENANCE: &str = "config/provenance.json";
pub const LAYERS: &str = "config/inputs/layers.json";
pub const GIT: &str = "code/git.json";
pub const PATCH: &str = "code/dirty.patch";
pub const ENV: &str = "env.json";
pub const MANIFEST: &str = "data/manifest.json";
pub const MODEL: &str = "model.json";

/// The parts of `code/git.json` a comparison shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GitView {
    /// `repo`, `unborn_branch` or `unknown` (not in a repository).
    pub state: String,
    pub workdir: Option<PathBuf>,
    pub sha: Option<String>,
    pub branch: Option<String>,
    pub dirty: bool,
    pub untracked: usize,
    /// BLAKE3 of the whole dirty patch: equal hashes, equal uncommitted changes.
    pub patch_hash: String,
}

/// `model.json`: parameter counts, total and per top-level module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    pub total: i64,
    pub modules: BTreeMap<String, i64>,
}

/// One input layer as `config/inputs/layers.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerView {
    /// `extends`, `experiment`, `set_file`, `env` or `cli`.
    pub role: String,
    #[serde(default)]
    pub path: Option<PathBuf>,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
struct LayersFile {
    argv: Vec<String>,
    layers: Vec<LayerView>,
}

#[derive(Debug, Clone, Deserialize)]
struct ProvenanceFile {
    #[serde(rename = "final")]
    last: BTreeMap<String, Source>,
}

/// Everything comparable about one run.
#[derive(Debug, Clone)]
pub struct RunView {
    pub dir: PathBuf,
    pub info: RunInfo,
    /// `config/resolved.toml`: every key, defaults included, in schema order.
    pub table: toml::Table,
    /// The semantic keys of `table` (canonical JSON): what the config hash covers.
    pub semantic: Json,
    /// The final source of every leaf key.
    pub provenance: BTreeMap<String, Source>,
    /// The command line and the input layers, lowest first.
    pub argv: Vec<String>,
    pub layers: Vec<LayerView>,
    pub git: GitView,
    /// `env.json` without the per-process part, flattened to dotted keys.
    pub env: BTreeMap<String, Json>,
    pub manifest: DataManifest,
    /// `None` when the run stopped before building its model.
    pub model: Option<ModelSummary>,
    /// `metrics.jsonl`; empty when nothing was logged yet.
    pub metrics: Vec<Record>,
}

impl RunView {
    /// Reads every snapshot file of the run in `dir`.
    pub fn load(dir: &Path, schema: &Schema) -> Result<RunView, RunError> {
        let info: RunInfo = read_json(dir, RUN_JSON)?;
        let table = read_table(dir)?;
        let semantic = semantic_view(schema, &table);
        let provenance = read_json::<ProvenanceFile>(dir, PROVENANCE)?.last;
        let layers: LayersFile = read_json(dir, LAYERS)?;
        let git = read_json(dir, GIT)?;
        let env = flatten_env(&read_json(dir, ENV)?);
        let manifest = read_json(dir, MANIFEST)?;
        let model = if dir.join(MODEL).exists() { Some(read_json(dir, MODEL)?) } else { None };
        Ok(RunView {
            dir: dir.to_path_buf(),
            info,
            table,
            semantic,
            provenance,
            argv: layers.argv,
            layers: layers.layers,
            git,
            env,
            manifest,
            model,
            metrics: read_metrics(dir)?,
        })
    }

    /// The run's `seed` (0 when the resolved config has none, as in the registry default).
    pub fn seed(&self) -> u64 {
        self.table.get("seed").and_then(toml::Value::as_integer).map_or(0, |s| s as u64)
    }

    /// The model family: the variant of the `model` slot.
    pub fn family(&self) -> Option<&str> {
        self.table.get("model").and_then(|m| m.get("type")).and_then(toml::Value::as_str)
    }

    /// The source of `key` (or of its nearest ancestor: an array element's source is the
    /// array's), shown briefly: `file:line`, `cli <arg>`, `env <VAR>`, `default`.
    pub fn source_of(&self, key: &str) -> Option<String> {
        let mut k = key.split('[').next().unwrap_or(key);
        loop {
            if let Some(s) = self.provenance.get(k) {
                return Some(brief(s));
            }
            k = k.rsplit_once('.')?.0;
        }
    }
}

/// The command-line overrides, `HELICO__` variables and `--set-file`s of a run, as given: what
/// distinguishes it from its experiment file.
pub fn overrides(layers: &[LayerView]) -> Vec<String> {
    let mut out = Vec::new();
    for l in layers {
        match (l.role.as_str(), &l.path) {
            ("cli" | "env", _) => out.push(l.text.clone()),
            ("set_file", Some(p)) => out.push(format!("--set-file {}", p.display())),
            _ => {}
        }
    }
    out
}

/// A source as a diff cell shows it.
pub fn brief(s: &Source) -> String {
    match s {
        Source::Default => "default".into(),
        Source::Implied { reason } => format!("implied by {reason}"),
        Source::File { path, line, role, .. } => {
            let prefix = if *role == crate::config::source::FileRole::SetFile { "--set-file " } else { "" };
            format!("{prefix}{}:{line}", path.display())
        }
        Source::Env { var } => format!("env {var}"),
        Source::Cli { arg, .. } => format!("cli {arg}"),
    }
}

/// The value at a dotted key of a resolved table.
pub fn lookup<'t>(table: &'t toml::Table, key: &str) -> Option<&'t toml::Value> {
    let (first, rest) = key.split_once('.').map_or((key, None), |(a, b)| (a, Some(b)));
    let v = table.get(first)?;
    match rest {
        None => Some(v),
        Some(rest) => lookup(v.as_table()?, rest),
    }
}

/// `config/resolved.toml` of a run.
pub fn read_table(dir: &Path) -> Result<toml::Table, RunError> {
    let path = dir.join(RESOLVED);
    let text = read_text(&path)?;
    text.parse().map_err(|e: toml::de::Error| RunError::Snapshot {
        path,
        problem: format!("is not valid TOML: {}", e.message()),
    })
}

/// The metrics a run logged; a missing file means none yet.
pub fn read_metrics(dir: &Path) -> Result<Vec<Record>, RunError> {
    let path = dir.join(metrics::FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    metrics::read(&path).map_err(|e| RunError::Snapshot { path, problem: format!("is corrupt: {e:#}") })
}

/// The layers a run was resolved from (`config/inputs/layers.json`).
pub fn read_layers(dir: &Path) -> Result<(Vec<String>, Vec<LayerView>), RunError> {
    let f: LayersFile = read_json(dir, LAYERS)?;
    Ok((f.argv, f.layers))
}

fn read_text(path: &Path) -> Result<String, RunError> {
    std::fs::read_to_string(path).map_err(|e| RunError::Snapshot {
        path: path.to_path_buf(),
        problem: if e.kind() == std::io::ErrorKind::NotFound {
            "is missing".to_owned()
        } else {
            format!("cannot be read: {e}")
        },
    })
}

fn read_json<T: DeserializeOwned>(dir: &Path, rel: &str) -> Result<T, RunError> {
    let path = dir.join(rel);
    let text = read_text(&path)?;
    serde_json::from_str(&text).map_err(|e| RunError::Snapshot { path, problem: format!("is corrupt: {e}") })
}

/// Dotted leaves of `env.json`, leaving out `process` (pid, argv and working directory differ
/// between any two runs and say nothing about the environment).
fn flatten_env(env: &Json) -> BTreeMap<String, Json> {
    fn walk(v: &Json, prefix: &str, out: &mut BTreeMap<String, Json>) {
        match v {
            Json::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    if key != "process" {
                        walk(v, &key, out);
                    }
                }
            }
            leaf => {
                out.insert(prefix.to_owned(), leaf.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(env, "", &mut out);
    out
}

/// A run's seed replicas: finished runs under `root` whose semantic config equals `run`'s in
/// everything but `seed`, one per seed (`run` itself for its own seed, else the newest).
#[derive(Debug, Clone, Serialize)]
pub struct Replicas {
    /// Run ids, one per seed, `run` first.
    pub runs: Vec<String>,
    pub seeds: Vec<u64>,
    /// The final value of every metric series (`split/name`) of each replica, in `runs` order.
    #[serde(skip)]
    pub finals: Vec<BTreeMap<String, f64>>,
}

/// Finds the seed replicas of `run` among the runs under `root` (`run` included).
pub fn replicas(root: &Path, run: &RunView, schema: &Schema) -> Replicas {
    let target = without_seed(&run.semantic);
    let mut by_seed: BTreeMap<u64, (String, BTreeMap<String, f64>)> = BTreeMap::new();
    by_seed.insert(run.seed(), (run.info.id.clone(), finals(&run.metrics)));
    // all_runs is oldest first: later inserts (newer runs) win for a seed.
    for (dir, info) in all_runs(root) {
        if info.status != Status::Done || info.id == run.info.id {
            continue;
        }
        let Ok(table) = read_table(&dir) else { continue };
        let seed = table.get("seed").and_then(toml::Value::as_integer).map_or(0, |s| s as u64);
        if seed == run.seed() || without_seed(&semantic_view(schema, &table)) != target {
            continue;
        }
        let Ok(records) = read_metrics(&dir) else { continue };
        by_seed.insert(seed, (info.id, finals(&records)));
    }
    let own = by_seed.remove(&run.seed()).expect("the run itself was inserted");
    let mut out = Replicas { runs: vec![own.0], seeds: vec![run.seed()], finals: vec![own.1] };
    for (seed, (id, f)) in by_seed {
        out.runs.push(id);
        out.seeds.push(seed);
        out.finals.push(f);
    }
    out
}

fn without_seed(semantic: &Json) -> Json {
    let mut v = semantic.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("seed");
    }
    v
}

/// Every metric series of a run: `split/name` → (step, value) points in step order. A step
/// logged twice (an evaluation repeated at the last step, a resume) keeps its last value.
pub fn series(records: &[Record]) -> BTreeMap<String, Vec<(u64, f64)>> {
    let mut out: BTreeMap<String, BTreeMap<u64, f64>> = BTreeMap::new();
    for r in records {
        for (name, v) in &r.values {
            out.entry(format!("{}/{name}", r.split)).or_default().insert(r.step, *v);
        }
    }
    out.into_iter().map(|(k, pts)| (k, pts.into_iter().collect())).collect()
}

/// The last value of every metric series.
pub fn finals(records: &[Record]) -> BTreeMap<String, f64> {
    series(records).into_iter().filter_map(|(k, pts)| pts.last().map(|p| (k, p.1))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: u64, split: &str, loss: f64) -> Record {
        Record { step, split: split.into(), time: 0.0, values: BTreeMap::from([("loss".to_owned(), loss)]) }
    }

    #[test]
    fn series_keep_the_last_value_of_a_repeated_step() {
        let records =
            [record(1, "train", 3.0), record(2, "train", 2.0), record(2, "eval", 2.5), record(2, "eval", 2.4)];
        let s = series(&records);
        assert_eq!(s["train/loss"], [(1, 3.0), (2, 2.0)]);
        assert_eq!(s["eval/loss"], [(2, 2.4)]);
        assert_eq!(finals(&records)["eval/loss"], 2.4);
    }

    #[test]
    fn sources_are_brief_and_round_trip_through_json() {
        let file = Source::File {
            path: "experiments/a.toml".into(),
            line: 7,
            col: 1,
            role: crate::config::source::FileRole::Experiment,
        };
        assert_eq!(brief(&file), "experiments/a.toml:7");
        assert_eq!(brief(&Source::Cli { index: 2, arg: "train.steps=4".into() }), "cli train.steps=4");
        let json = serde_json::to_string(&file).expect("json");
        assert_eq!(serde_json::from_str::<Source>(&json).expect("round trip"), file);
    }

    #[test]
    fn the_environment_leaves_out_the_process() {
        let env = serde_json::json!({"host": {"os": "x", "cores": 2}, "process": {"pid": 3}, "env": {"A": "1"}});
        let flat = flatten_env(&env);
        assert_eq!(flat.keys().collect::<Vec<_>>(), ["env.A", "host.cores", "host.os"]);
    }
}
