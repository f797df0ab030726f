//! The config engine: experiment files, their `extends` chains, `--set-file` files,
//! `HELICO__A__B` variables and command-line overrides resolve, in that order, into one typed
//! [`Experiment`], with the source of every value and every problem reported at once.
//!
//! Layers, lowest first: registry defaults < `extends` chain < the experiment file <
//! `--set-file` files < environment < command-line overrides in order.

pub mod error;
pub mod layers;
pub mod overrides;
pub mod resolve;
pub mod schema;
pub mod source;
pub mod tree;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value as Json;

use crate::registry::Experiment;
use error::{Invalid, Problem, ProblemKind};
use layers::{Action, Assignment, LayerRecord, Layers};
use overrides::{Key, Override};
use schema::{Node, Schema, Shape};
use source::Source;
use tree::{Event, Op, Tree};

/// What a user gave: the experiment, then every layer above it.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub experiment: PathBuf,
    pub set_files: Vec<PathBuf>,
    /// Environment variables; only `HELICO__*` ones are read.
    pub env: Vec<(String, String)>,
    /// Command-line overrides with their raw text, in order.
    pub overrides: Vec<(String, Override)>,
}

impl Inputs {
    /// Inputs for `experiment` with the process environment and the given overrides.
    pub fn new(experiment: &Path, set_files: &[PathBuf], overrides: &[Override], raw: &[String]) -> Inputs {
        Inputs {
            experiment: experiment.to_path_buf(),
            set_files: set_files.to_vec(),
            env: std::env::vars().filter(|(k, _)| k.starts_with(layers::ENV_PREFIX)).collect(),
            overrides: raw.iter().cloned().zip(overrides.iter().cloned()).collect(),
        }
    }
}

/// A fully resolved experiment and everything needed to explain and reproduce it.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub experiment: Experiment,
    /// Every key with its value, defaults included, in schema order.
    pub table: toml::Table,
    /// The final source of every leaf key.
    pub provenance: BTreeMap<String, Source>,
    /// Every change the layers made, in order.
    pub events: Vec<Event>,
    /// The inputs verbatim.
    pub layers: Vec<LayerRecord>,
    /// blake3 of the canonical JSON of the semantic keys.
    pub config_hash: String,
}

/// Resolve an experiment, or report every problem with it.
pub fn resolve(inputs: &Inputs) -> Result<Resolved, Invalid> {
    let schema = Schema::experiment();
    let mut layers = Layers::default();
    if let Some(stem) = inputs.experiment.file_stem().and_then(|s| s.to_str()) {
        let reason = "the experiment file's name".to_owned();
        let action = Action::Set(Key(vec!["name".into()]), toml::Value::String(stem.to_owned()));
        layers.assignments.push(Assignment { action, source: Source::Implied { reason } });
    }
    layers.push_experiment(&inputs.experiment);
    for f in &inputs.set_files {
        layers.push_set_file(f);
    }
    layers.push_env(&inputs.env);
    layers.push_cli(&inputs.overrides);

    let mut tree = Tree::new(&schema);
    for a in layers.assignments {
        tree.apply(a);
    }
    let mut walk = resolve::Walk::new(&schema);
    let table = walk.resolve(&tree.root);

    let mut problems = layers.problems;
    problems.extend(tree.problems);
    problems.extend(walk.problems);
    let provenance = walk.provenance;
    let fail = |mut problems: Vec<Problem>| {
        problems.sort_by_key(|p| p.source.as_ref().map(Source::order));
        Invalid { problems: problems.into_iter().map(|p| layers.snippets.attach(p)).collect() }
    };
    if !problems.is_empty() {
        return Err(fail(problems));
    }

    let experiment: Experiment = match serde_path_to_error::deserialize(toml::Value::Table(table.clone())) {
        Ok(e) => e,
        Err(e) => {
            let key = e.path().to_string();
            let message = format!("`{key}`: {}", e.inner());
            return Err(fail(vec![Problem::new(
                ProblemKind::Type,
                Some(key.clone()),
                provenance.get(&key).cloned(),
                message,
            )]));
        }
    };
    let problems: Vec<Problem> = experiment
        .problems()
        .into_iter()
        .map(|(key, message)| {
            let source = source_of(&provenance, &key);
            Problem::new(ProblemKind::Constraint, Some(key.clone()), Some(source), format!("`{key}`: {message}"))
        })
        .collect();
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    let config_hash = crate::hash::of_json(&semantic_view(&schema, &table));
    Ok(Resolved { experiment, table, provenance, events: tree.events, layers: layers.records, config_hash })
}

/// The source of a key, or of its nearest ancestor that has one.
fn source_of(provenance: &BTreeMap<String, Source>, key: &str) -> Source {
    let mut k = key;
    loop {
        if let Some(s) = provenance.get(k) {
            return s.clone();
        }
        let prefix = format!("{k}.");
        if let Some((_, s)) = provenance.range(prefix.clone()..).next().filter(|(p, _)| p.starts_with(&prefix)) {
            return s.clone();
        }
        match k.rsplit_once('.') {
            Some((parent, _)) => k = parent,
            None => return Source::Default,
        }
    }
}

/// How one key got its value: for `helico explain`.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub key: String,
    pub value: toml::Value,
    pub source: Source,
    /// The registry default, when the key has one.
    pub default: Option<toml::Value>,
    pub doc: Option<String>,
    /// Every layer that touched the key (or a key under it), lowest first.
    pub history: Vec<Event>,
}

impl Resolved {
    /// The value and history of `key`, or the nearest known keys when it does not exist.
    pub fn explain(&self, key: &str) -> Result<Explanation, Vec<String>> {
        let value = key.split('.').try_fold(None::<&toml::Value>, |v, seg| match v {
            None => Some(self.table.get(seg)),
            Some(toml::Value::Table(t)) => Some(t.get(seg)),
            Some(_) => Some(None),
        });
        let Some(Some(value)) = value else {
            let known: Vec<String> = flatten_keys(&self.table);
            let near = error::did_you_mean(key, known.iter().map(String::as_str)).map(str::to_owned);
            return Err(near.into_iter().collect());
        };
        let schema = Schema::experiment();
        let node = node_at(&schema, &self.table, key);
        let prefix = format!("{key}.");
        let history = self.events.iter().filter(|e| e.key == key || e.key.starts_with(&prefix)).cloned().collect();
        Ok(Explanation {
            key: key.to_owned(),
            value: value.clone(),
            source: source_of(&self.provenance, key),
            default: node.and_then(|n| n.default()).and_then(|d| toml::Value::try_from(d).ok()),
            doc: node.and_then(|n| n.doc()).map(str::to_owned),
            history,
        })
    }

    /// Keys dropped because their slot switched variant, with where each was set.
    pub fn dropped(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| matches!(e.op, Op::Dropped { .. }))
    }

    /// The resolved config as TOML text, defaults included.
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.table).expect("a resolved table is serialisable TOML")
    }

    /// The resolved config as TOML with each value's source as a trailing comment.
    pub fn to_annotated_toml(&self) -> String {
        let mut out = String::new();
        let mut table = String::new();
        for line in self.to_toml().lines() {
            let trimmed = line.trim();
            let source = if let Some(header) = trimmed.strip_prefix("[[").and_then(|h| h.strip_suffix("]]")) {
                table = header.to_owned();
                self.provenance.get(header)
            } else if let Some(header) = trimmed.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                table = header.to_owned();
                None
            } else if let Some((key, _)) = trimmed.split_once(" = ") {
                let full = if table.is_empty() { key.to_owned() } else { format!("{table}.{key}") };
                self.provenance.get(&full)
            } else {
                None
            };
            match source {
                Some(s) if *s != Source::Default => out.push_str(&format!("{line:<40} # {s}\n")),
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// The semantic keys only, as canonical JSON: what the config hash covers.
    pub fn semantic_json(&self) -> Json {
        semantic_view(&Schema::experiment(), &self.table)
    }
}

/// The schema node of a resolved key, following slots by their resolved `type`.
fn node_at<'s>(schema: &'s Schema, table: &toml::Table, key: &str) -> Option<Node<'s>> {
    let mut node = schema.root();
    let mut value = Some(table);
    for seg in key.split('.') {
        node = match schema.shape(node) {
            Shape::Struct(props) => schema.property(node, props, seg)?,
            Shape::Slot(variants) => {
                let name = value.and_then(|t| t.get("type")).and_then(toml::Value::as_str)?;
                let v = variants.into_iter().find(|v| v.name == name)?;
                let Shape::Struct(props) = schema.shape(v.node) else { return None };
                schema.property(v.node, props, seg)?
            }
            _ => return None,
        };
        value = value.and_then(|t| t.get(seg)).and_then(toml::Value::as_table);
    }
    Some(node)
}

/// The resolved table without non-semantic keys, as canonical JSON (keys sorted): what the
/// config hash covers, and what `helico diff` compares by default.
pub fn semantic_view(schema: &Schema, table: &toml::Table) -> Json {
    fn view(schema: &Schema, node: Node<'_>, value: &toml::Value) -> Option<Json> {
        if node.nonsemantic() {
            return None;
        }
        match (schema.shape(node), value) {
            (Shape::Struct(props), toml::Value::Table(t)) => {
                let mut out = serde_json::Map::new();
                for (k, v) in t {
                    let child = schema.property(node, props, k)?;
                    if let Some(j) = view(schema, child, v) {
                        out.insert(k.clone(), j);
                    }
                }
                Some(Json::Object(out))
            }
            (Shape::Slot(variants), toml::Value::Table(t)) => {
                let name = t.get("type").and_then(toml::Value::as_str)?;
                let variant = variants.into_iter().find(|v| v.name == name)?;
                let Json::Object(mut params) = view(schema, variant.node, value)? else { return None };
                params.insert("type".into(), Json::String(name.to_owned()));
                Some(Json::Object(params))
            }
            (Shape::Array(Some(items)), toml::Value::Array(a)) => {
                Some(Json::Array(a.iter().filter_map(|e| view(schema, items, e)).collect()))
            }
            (_, v) => Some(to_json(v)),
        }
    }
    let view = view(schema, schema.root(), &toml::Value::Table(table.clone())).unwrap_or(Json::Null);
    crate::hash::canonical(&view)
}

fn to_json(v: &toml::Value) -> Json {
    match v {
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(i) => Json::from(*i),
        toml::Value::Float(x) => serde_json::Number::from_f64(*x).map_or(Json::Null, Json::Number),
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        toml::Value::Table(t) => Json::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

fn flatten_keys(t: &toml::Table) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in t {
        out.push(k.clone());
        if let toml::Value::Table(sub) = v {
            out.extend(flatten_keys(sub).into_iter().map(|s| format!("{k}.{s}")));
        }
    }
    out
}
