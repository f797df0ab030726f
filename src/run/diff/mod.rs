//! `helico diff`: two or more runs compared key by key (never line by line), in the order of
//! config_engine_anchors.md §4.6: runs, identity, config (each differing value with its
//! source), variant switches, model, code, data, environment, metrics.
//!
//! The first run is the baseline: deltas are `other − baseline`. Seed noise, when either side
//! has seed replicas (finished runs whose semantic config differs only in `seed`): a delta
//! exceeds it when |mean_other − mean_baseline| > 2 × the pooled sd of the two replica groups,
//! which needs at least one group of two or more; with one run per side there is no estimate.

pub mod code;
pub mod metrics;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value as Json;

use super::compare::RunView;
use crate::config::schema::{Node, Schema, Shape};
use crate::data::manifest::DataManifest;
use crate::exit::BadInput;

/// What to compare and where to look for seed replicas.
#[derive(Debug, Clone)]
pub struct Options {
    /// Every key and metric, equal ones and non-semantic ones included.
    pub all: bool,
    /// The patch between the runs' code.
    pub code: bool,
    /// The file-by-file difference of the data manifests.
    pub data: bool,
    /// The runs directory searched for seed replicas.
    pub root: PathBuf,
}

/// The whole comparison; `render` prints it, `--json` serialises it.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub runs: Vec<RunHead>,
    pub identity: Identity,
    pub config: ConfigDiff,
    pub model: ModelDiff,
    pub code: code::CodeDiff,
    pub data: DataDiff,
    /// Environment leaves (`env.json` less the process) that differ between runs.
    pub env: Vec<Row<Json>>,
    pub metrics: metrics::MetricsDiff,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunHead {
    /// A, B, C, …: the column each run gets.
    pub label: String,
    pub id: String,
    pub dir: PathBuf,
    pub status: String,
    pub step: u64,
    pub steps: u64,
    pub seed: u64,
    pub created: String,
}

/// Which parts of the run key are equal across all runs.
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    pub same_config: bool,
    pub same_code: bool,
    pub same_data: bool,
}

/// One key (or module, or environment leaf) across the runs; `None` where a run lacks it.
#[derive(Debug, Clone, Serialize)]
pub struct Row<T> {
    pub key: String,
    pub values: Vec<Option<T>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigDiff {
    /// Whether every key is shown (`--all`) or only the differing semantic ones.
    pub all: bool,
    /// Keys compared: the semantic ones, or every key with `--all`; `differing` counts among them.
    pub compared: usize,
    pub differing: usize,
    /// Non-semantic keys that differ but are not shown (without `--all`).
    pub hidden_nonsemantic: usize,
    pub rows: Vec<ConfigRow>,
    pub switches: Vec<Switch>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigRow {
    /// Dotted key; elements of arrays of tables are `key[i].sub`.
    pub key: String,
    pub values: Vec<Option<toml::Value>>,
    /// Where each run's value came from (`file:line`, `cli …`, `env …`, `default`).
    pub sources: Vec<Option<String>>,
    pub semantic: bool,
    pub differs: bool,
}

/// A slot whose variant differs: one line, plus the parameters only some runs have.
#[derive(Debug, Clone, Serialize)]
pub struct Switch {
    pub slot: String,
    pub variants: Vec<String>,
    pub sources: Vec<Option<String>>,
    /// Per run: its parameters (relative keys) that not every run has.
    pub only_in: Vec<Vec<(String, toml::Value)>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelDiff {
    pub same: bool,
    pub totals: Vec<Option<i64>>,
    /// Parameters per module group; numbered modules (`blocks.3`) are summed per group and
    /// counted in `instances`.
    pub rows: Vec<ModelRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelRow {
    pub module: String,
    pub instances: Vec<Option<usize>>,
    pub params: Vec<Option<i64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DataDiff {
    pub same: bool,
    pub hashes: Vec<String>,
    /// With `--data`: each run's manifest against the baseline's (`None` for the baseline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifests: Option<Vec<Option<ManifestDiff>>>,
}

/// How a manifest differs from the baseline's, file by file (files are matched by path).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ManifestDiff {
    pub added: Vec<PathBuf>,
    pub removed: Vec<PathBuf>,
    /// (path, baseline size, this size) of files whose content hash differs.
    pub changed: Vec<(PathBuf, u64, u64)>,
    /// Filter parameters that differ: (dotted key, baseline, this).
    pub params: Vec<(String, Option<Json>, Option<Json>)>,
}

/// The column label of the i-th run.
pub fn label(i: usize) -> String {
    match u8::try_from(i) {
        Ok(n) if n < 26 => char::from(b'A' + n).to_string(),
        _ => format!("R{}", i + 1),
    }
}

/// Compares `views` (at least two; the first is the baseline).
pub fn diff(views: &[RunView], opts: &Options, schema: &Schema) -> anyhow::Result<Diff> {
    if views.len() < 2 {
        return Err(BadInput("helico diff compares two or more runs: name at least two".into()).into());
    }
    let families: BTreeSet<&str> = views.iter().map(|v| v.family().unwrap_or("?")).collect();
    if families.len() > 1 {
        let each: Vec<String> =
            views.iter().map(|v| format!("{} is @{}", v.info.id, v.family().unwrap_or("?"))).collect();
        return Err(BadInput(format!(
            "runs of different model families cannot be compared key by key ({}): diff runs of one family",
            each.join(", ")
        ))
        .into());
    }
    let same = |f: fn(&RunView) -> &str| views.iter().all(|v| f(v) == f(&views[0]));
    let heads = views
        .iter()
        .enumerate()
        .map(|(i, v)| RunHead {
            label: label(i),
            id: v.info.id.clone(),
            dir: v.dir.clone(),
            status: v.info.status.to_string(),
            step: v.info.step,
            steps: v.info.steps,
            seed: v.seed(),
            created: v.info.created.clone(),
        })
        .collect();
    Ok(Diff {
        runs: heads,
        identity: Identity {
            same_config: same(|v| &v.info.identity.config_hash),
            same_code: same(|v| &v.info.identity.code_hash),
            same_data: same(|v| &v.info.identity.data_hash),
        },
        config: config_diff(views, schema, opts.all),
        model: model_diff(views, opts.all),
        code: code::code_diff(views, opts.code)?,
        data: DataDiff {
            same: same(|v| &v.info.identity.data_hash),
            hashes: views.iter().map(|v| v.manifest.hash.clone()).collect(),
            manifests: opts.data.then(|| {
                views
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i > 0).then(|| manifest_diff(&views[0].manifest, &v.manifest)))
                    .collect()
            }),
        },
        env: differing_rows(views.iter().map(|v| &v.env).collect()),
        metrics: metrics::metrics_diff(views, opts, schema),
    })
}

/// Leaves of a resolved table: tables recurse, arrays of tables expand to `key[i]`, other
/// arrays and scalars are leaves.
pub fn leaves(table: &toml::Table) -> Vec<(String, toml::Value)> {
    fn walk(v: &toml::Value, key: String, out: &mut Vec<(String, toml::Value)>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    walk(v, if key.is_empty() { k.clone() } else { format!("{key}.{k}") }, out);
                }
            }
            toml::Value::Array(items) if !items.is_empty() && items.iter().all(toml::Value::is_table) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, format!("{key}[{i}]"), out);
                }
            }
            leaf => out.push((key, leaf.clone())),
        }
    }
    let mut out = Vec::new();
    walk(&toml::Value::Table(table.clone()), String::new(), &mut out);
    out
}

/// The dotted keys of a JSON view, flattened as [`leaves`] flattens a table.
fn json_keys(v: &Json, key: String, out: &mut BTreeSet<String>) {
    match v {
        Json::Object(m) => {
            for (k, v) in m {
                json_keys(v, if key.is_empty() { k.clone() } else { format!("{key}.{k}") }, out);
            }
        }
        Json::Array(items) if !items.is_empty() && items.iter().all(Json::is_object) => {
            for (i, item) in items.iter().enumerate() {
                json_keys(item, format!("{key}[{i}]"), out);
            }
        }
        _ => {
            out.insert(key);
        }
    }
}

/// The dotted keys of the registry slots present in a resolved table.
pub fn slot_keys(schema: &Schema, table: &toml::Table) -> BTreeSet<String> {
    fn walk(schema: &Schema, node: Node<'_>, value: &toml::Value, key: &str, out: &mut BTreeSet<String>) {
        let toml::Value::Table(t) = value else { return };
        let props = match schema.shape(node) {
            Shape::Struct(props) => props,
            Shape::Slot(variants) => {
                out.insert(key.to_owned());
                let name = t.get("type").and_then(toml::Value::as_str);
                let Some(v) = variants.into_iter().find(|v| Some(v.name) == name) else { return };
                let Shape::Struct(props) = schema.shape(v.node) else { return };
                props
            }
            _ => return,
        };
        for (k, v) in t {
            if let Some(child) = schema.property(node, props, k) {
                walk(schema, child, v, &if key.is_empty() { k.clone() } else { format!("{key}.{k}") }, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(schema, schema.root(), &toml::Value::Table(table.clone()), "", &mut out);
    out
}

fn config_diff(views: &[RunView], schema: &Schema, all: bool) -> ConfigDiff {
    let per_run: Vec<BTreeMap<String, toml::Value>> =
        views.iter().map(|v| leaves(&v.table).into_iter().collect()).collect();
    // Keys in schema order, as the first run lists them, then keys only later runs have.
    let mut order: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for v in views {
        for (k, _) in leaves(&v.table) {
            if seen.insert(k.clone()) {
                order.push(k);
            }
        }
    }
    let mut semantic = BTreeSet::new();
    for v in views {
        json_keys(&v.semantic, String::new(), &mut semantic);
    }
    // Slots present in every run whose variant differs.
    let slots: Vec<BTreeSet<String>> = views.iter().map(|v| slot_keys(schema, &v.table)).collect();
    let switched: Vec<String> = slots[0]
        .iter()
        .filter(|s| slots.iter().all(|set| set.contains(*s)))
        .filter(|s| {
            let t = format!("{s}.type");
            per_run.iter().any(|r| r.get(&t) != per_run[0].get(&t))
        })
        .cloned()
        .collect();
    let switch_of = |key: &str| -> Option<&String> {
        switched.iter().filter(|s| key.starts_with(&format!("{s}."))).max_by_key(|s| s.len())
    };

    let mut out =
        ConfigDiff { all, compared: 0, differing: 0, hidden_nonsemantic: 0, rows: Vec::new(), switches: Vec::new() };
    let mut switches: BTreeMap<&String, Switch> = BTreeMap::new();
    for key in &order {
        let values: Vec<Option<toml::Value>> = per_run.iter().map(|r| r.get(key).cloned()).collect();
        let is_semantic = semantic.contains(key);
        let differs = values.iter().any(|v| *v != values[0]);
        if is_semantic || all {
            out.compared += 1;
        }
        if differs && (is_semantic || all) {
            out.differing += 1;
        }
        if differs && !is_semantic && !all {
            out.hidden_nonsemantic += 1;
            continue;
        }
        if !differs && !all {
            continue;
        }
        let switch = switch_of(key);
        let is_type = switch.is_some_and(|s| *key == format!("{s}.type"));
        if let Some(slot) = switch.filter(|_| is_type || values.iter().any(Option::is_none)) {
            let entry = switches.entry(slot).or_insert_with(|| Switch {
                slot: slot.clone(),
                variants: Vec::new(),
                sources: Vec::new(),
                only_in: vec![Vec::new(); views.len()],
            });
            if is_type {
                entry.variants =
                    values.iter().map(|v| v.as_ref().and_then(toml::Value::as_str).unwrap_or("?").to_owned()).collect();
                entry.sources = views.iter().map(|v| v.source_of(key)).collect();
            } else {
                let rel = key[slot.len() + 1..].to_owned();
                for (i, v) in values.iter().enumerate() {
                    if let Some(v) = v {
                        entry.only_in[i].push((rel.clone(), v.clone()));
                    }
                }
            }
            continue;
        }
        let sources = views.iter().zip(&values).map(|(v, val)| val.as_ref().and_then(|_| v.source_of(key))).collect();
        out.rows.push(ConfigRow { key: key.clone(), values, sources, semantic: is_semantic, differs });
    }
    out.switches = switches.into_values().collect();
    out
}

/// Module groups: `blocks.3` counts as one instance of `blocks`.
fn model_diff(views: &[RunView], all: bool) -> ModelDiff {
    let groups: Vec<Option<BTreeMap<String, (usize, i64)>>> = views
        .iter()
        .map(|v| {
            v.model.as_ref().map(|m| {
                let mut g: BTreeMap<String, (usize, i64)> = BTreeMap::new();
                for (name, n) in &m.modules {
                    let group = match name.rsplit_once('.') {
                        Some((head, tail)) if tail.chars().all(|c| c.is_ascii_digit()) => head,
                        _ => name.as_str(),
                    };
                    let e = g.entry(group.to_owned()).or_default();
                    e.0 += 1;
                    e.1 += n;
                }
                g
            })
        })
        .collect();
    let names: BTreeSet<&String> = groups.iter().flatten().flat_map(|g| g.keys()).collect();
    let mut rows = Vec::new();
    for name in names {
        let cells: Vec<Option<(usize, i64)>> =
            groups.iter().map(|g| g.as_ref().and_then(|g| g.get(name)).copied()).collect();
        if all || cells.iter().any(|c| *c != cells[0]) {
            rows.push(ModelRow {
                module: name.clone(),
                instances: cells.iter().map(|c| c.map(|c| c.0)).collect(),
                params: cells.iter().map(|c| c.map(|c| c.1)).collect(),
            });
        }
    }
    let totals: Vec<Option<i64>> = views.iter().map(|v| v.model.as_ref().map(|m| m.total)).collect();
    let same = totals.iter().all(|t| *t == totals[0]) && groups.iter().all(|g| *g == groups[0]);
    ModelDiff { same, totals, rows }
}

/// Rows of the keys whose values are not all equal, in key order.
fn differing_rows<T: Clone + PartialEq>(maps: Vec<&BTreeMap<String, T>>) -> Vec<Row<T>> {
    let keys: BTreeSet<&String> = maps.iter().flat_map(|m| m.keys()).collect();
    keys.into_iter()
        .map(|k| Row { key: k.clone(), values: maps.iter().map(|m| m.get(k).cloned()).collect() })
        .filter(|r| r.values.iter().any(|v| *v != r.values[0]))
        .collect()
}

fn manifest_diff(base: &DataManifest, other: &DataManifest) -> ManifestDiff {
    let by_path = |m: &DataManifest| -> BTreeMap<PathBuf, (u64, String)> {
        m.files.iter().map(|f| (f.path.clone(), (f.size, f.blake3.clone()))).collect()
    };
    let (a, b) = (by_path(base), by_path(other));
    let mut out = ManifestDiff::default();
    for (path, (size, hash)) in &b {
        match a.get(path) {
            None => out.added.push(path.clone()),
            Some((old_size, old_hash)) if old_hash != hash => out.changed.push((path.clone(), *old_size, *size)),
            Some(_) => {}
        }
    }
    out.removed = a.keys().filter(|p| !b.contains_key(*p)).cloned().collect();
    let flat = |v: &Json| -> BTreeMap<String, Json> {
        let mut keys = BTreeSet::new();
        json_keys(v, String::new(), &mut keys);
        keys.into_iter().filter_map(|k| json_at(v, &k).map(|x| (k, x.clone()))).collect()
    };
    out.params = differing_rows(vec![&flat(&base.params), &flat(&other.params)])
        .into_iter()
        .map(|r| (r.key, r.values[0].clone(), r.values[1].clone()))
        .collect();
    out
}

/// The value at a key produced by `json_keys`.
fn json_at<'a>(v: &'a Json, key: &str) -> Option<&'a Json> {
    let mut cur = v;
    for seg in key.split('.') {
        let (name, index) = match seg.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        if let Some(i) = index {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_of_tables_are_diffed_element_by_element() {
        let t: toml::Table = "a = 1\nb = [0.9, 0.95]\n[[f]]\npath = \"x\"\n[[f]]\npath = \"y\"\n[s]\ntype = \"k\"\n"
            .parse()
            .expect("toml");
        let keys: Vec<String> = leaves(&t).into_iter().map(|l| l.0).collect();
        assert_eq!(keys, ["a", "b", "f[0].path", "f[1].path", "s.type"]);
        let mut js = BTreeSet::new();
        json_keys(&serde_json::to_value(&t).expect("json"), String::new(), &mut js);
        assert_eq!(js.into_iter().collect::<Vec<_>>(), ["a", "b", "f[0].path", "f[1].path", "s.type"]);
        let j = serde_json::to_value(&t).expect("json");
        assert_eq!(json_at(&j, "f[1].path"), Some(&Json::from("y")));
    }

    #[test]
    fn labels_run_past_z() {
        assert_eq!((label(0), label(25), label(26)), ("A".into(), "Z".into(), "R27".into()));
    }
}
