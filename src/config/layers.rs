//! Reading the inputs into layers of assignments, lowest first: the `extends` chain, the
//! experiment file, `--set-file` files, `HELICO__A__B` variables, command-line overrides.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use toml::de::{DeTable, DeValue};

use super::error::{Problem, ProblemKind, Snippets};
use super::overrides::{Key, Override};
use super::source::{FileRole, Source, line_col};

/// Prefix of environment variables that override keys: `HELICO__TRAIN__STEPS=5`.
pub const ENV_PREFIX: &str = "HELICO__";

/// One change to the configuration tree.
#[derive(Debug, Clone)]
pub enum Action {
    /// Set a leaf (a scalar or an array). Setting `<slot>.type` switches the slot.
    Set(Key, toml::Value),
    Append(Key, toml::Value),
    Reset(Key),
}

#[derive(Debug, Clone)]
pub struct Assignment {
    pub action: Action,
    pub source: Source,
}

/// An input exactly as given, kept verbatim in the run snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct LayerRecord {
    pub role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    pub text: String,
}

/// A parsed TOML file: its leaves with byte offsets of their keys, and its `extends` entries.
struct ParsedFile {
    leaves: Vec<(Key, toml::Value, usize)>,
    /// Entries with their offsets, or the offset of a malformed `extends`.
    extends: Result<Vec<(String, usize)>, usize>,
    extends_key: Option<usize>,
    text: String,
}

/// Everything the resolver consumes.
#[derive(Default)]
pub struct Layers {
    pub assignments: Vec<Assignment>,
    pub records: Vec<LayerRecord>,
    pub problems: Vec<Problem>,
    pub snippets: Snippets,
}

impl Layers {
    /// Loads `path` and, first, every file its `extends` chain names (depth-first, left to right).
    pub fn push_experiment(&mut self, path: &Path) {
        let mut stack = Vec::new();
        self.push_file_chain(path, FileRole::Experiment, &mut stack);
    }

    /// `stack` holds the files being loaded, canonical (to detect cycles) and as named.
    fn push_file_chain(&mut self, path: &Path, role: FileRole, stack: &mut Vec<(PathBuf, PathBuf)>) {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if let Some(start) = stack.iter().position(|(c, _)| *c == canonical) {
            let chain: Vec<String> = stack[start..]
                .iter()
                .map(|(_, shown)| shown.display().to_string())
                .chain([path.display().to_string()])
                .collect();
            let message = format!("experiment files extend each other in a cycle: {}", chain.join(" -> "));
            self.problems.push(Problem::new(ProblemKind::Extends, Some("extends".into()), None, message));
            return;
        }
        let Some(file) = self.read_toml(path, role) else { return };
        let at = |offset: usize| {
            let (line, col) = line_col(&file.text, offset);
            Source::File { path: path.to_path_buf(), line, col, role }
        };
        match &file.extends {
            Ok(list) => {
                stack.push((canonical, path.to_path_buf()));
                for (name, offset) in list {
                    let target = path.parent().unwrap_or(Path::new("")).join(name);
                    if target.is_file() {
                        self.push_file_chain(&target, FileRole::Extends, stack);
                        continue;
                    }
                    let message = format!("`extends` names `{name}`, but {} does not exist", target.display());
                    let p = Problem::new(ProblemKind::Extends, Some("extends".into()), Some(at(*offset)), message)
                        .help("paths in `extends` are relative to the file that names them");
                    self.problems.push(self.snippets.attach(p));
                }
                stack.pop();
            }
            Err(offset) => {
                let p = Problem::new(
                    ProblemKind::Type,
                    Some("extends".into()),
                    Some(at(*offset)),
                    "`extends` must be an array of file paths",
                );
                self.problems.push(self.snippets.attach(p));
            }
        }
        self.push_file(path, file, role);
    }

    /// A `--set-file` layer: like an experiment file, but it may not extend others.
    pub fn push_set_file(&mut self, path: &Path) {
        let role = FileRole::SetFile;
        let Some(file) = self.read_toml(path, role) else { return };
        if let Some(offset) = file.extends_key {
            let (line, col) = line_col(&file.text, offset);
            let source = Source::File { path: path.to_path_buf(), line, col, role };
            let message = "`extends` is only allowed in experiment files, not in --set-file files";
            let p = Problem::new(ProblemKind::Extends, Some("extends".into()), Some(source), message);
            self.problems.push(self.snippets.attach(p));
        }
        self.push_file(path, file, role);
    }

    fn read_toml(&mut self, path: &Path, role: FileRole) -> Option<ParsedFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                let what = if e.kind() == std::io::ErrorKind::NotFound {
                    "does not exist".to_owned()
                } else {
                    format!("cannot be read: {e}")
                };
                self.problems.push(Problem::new(
                    ProblemKind::Io,
                    None,
                    None,
                    format!("experiment file {} {what}", path.display()),
                ));
                return None;
            }
        };
        self.snippets.add(path.to_path_buf(), text.clone());
        let (table, errors) = DeTable::parse_recoverable(&text);
        if !errors.is_empty() {
            for e in errors {
                let (line, col) = e.span().map_or((1, 1), |s| line_col(&text, s.start));
                let source = Source::File { path: path.to_path_buf(), line, col, role };
                let message = format!("{} is not valid TOML: {}", path.display(), e.message());
                let p = Problem::new(ProblemKind::Syntax, None, Some(source), message);
                self.problems.push(self.snippets.attach(p));
            }
            return None;
        }
        let values: toml::Table = match text.parse() {
            Ok(v) => v,
            Err(e) => {
                let message = format!("{} is not valid TOML: {}", path.display(), e.message());
                self.problems.push(Problem::new(ProblemKind::Syntax, None, None, message));
                return None;
            }
        };
        let mut offsets = HashMap::new();
        key_offsets(table.get_ref(), &Key(Vec::new()), &mut offsets);
        let mut flat = Vec::new();
        flatten_value(&values, &Key(Vec::new()), &mut flat);
        let leaves = flat.into_iter().map(|(k, v)| {
            let offset = offsets.get(&k).copied().unwrap_or(0);
            (k, v, offset)
        });
        let leaves = leaves.collect();
        let extends = extends_of(table.get_ref());
        let extends_key = table.get_ref().get_key_value("extends").map(|(k, _)| k.span().start);
        Some(ParsedFile { leaves, extends, extends_key, text })
    }

    fn push_file(&mut self, path: &Path, file: ParsedFile, role: FileRole) {
        for (key, value, offset) in file.leaves {
            if key.0 == ["extends"] {
                continue;
            }
            let (line, col) = line_col(&file.text, offset);
            let source = Source::File { path: path.to_path_buf(), line, col, role };
            self.assignments.push(Assignment { action: Action::Set(key, value), source });
        }
        self.records.push(LayerRecord { role: role_name(role), path: Some(path.to_path_buf()), text: file.text });
    }

    /// `HELICO__A__B=value` variables, sorted by name so their order is reproducible.
    pub fn push_env(&mut self, vars: &[(String, String)]) {
        let mut vars: Vec<&(String, String)> = vars.iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
        vars.sort();
        for (var, raw) in vars {
            let dotted = var[ENV_PREFIX.len()..].to_ascii_lowercase().replace("__", ".");
            let source = Source::Env { var: var.clone() };
            self.records.push(LayerRecord { role: "env", path: None, text: format!("{var}={raw}") });
            match Key::parse(&dotted) {
                Ok(key) => self.push_override(Override::Set { key, value: super::overrides::value(raw) }, source),
                Err(e) => self.problems.push(Problem::new(
                    ProblemKind::Override,
                    None,
                    Some(source),
                    format!("environment variable {var}: {e}"),
                )),
            }
        }
    }

    /// Command-line overrides, in order; `args` pairs each raw argument with its parse.
    pub fn push_cli(&mut self, args: &[(String, Override)]) {
        for (i, (raw, o)) in args.iter().enumerate() {
            self.records.push(LayerRecord { role: "cli", path: None, text: raw.clone() });
            self.push_override(o.clone(), Source::Cli { index: i + 1, arg: raw.clone() });
        }
    }

    fn push_override(&mut self, o: Override, source: Source) {
        let mut push = |action| self.assignments.push(Assignment { action, source: source.clone() });
        match o {
            Override::Set { key, value: toml::Value::Table(t) } => {
                let mut out = Vec::new();
                flatten_value(&t, &key, &mut out);
                out.into_iter().for_each(|(k, v)| push(Action::Set(k, v)));
            }
            Override::Set { key, value } => push(Action::Set(key, value)),
            Override::Switch { key, variant, params } => {
                push(Action::Set(key.child("type"), toml::Value::String(variant)));
                let mut out = Vec::new();
                flatten_value(&params, &key, &mut out);
                out.into_iter().for_each(|(k, v)| push(Action::Set(k, v)));
            }
            Override::Append { key, value } => push(Action::Append(key, value)),
            Override::Reset { key } => push(Action::Reset(key)),
        }
    }
}

fn role_name(role: FileRole) -> &'static str {
    match role {
        FileRole::Extends => "extends",
        FileRole::Experiment => "experiment",
        FileRole::SetFile => "set_file",
    }
}

/// The `extends` entries with their spans, or the span of a malformed `extends`.
fn extends_of(table: &DeTable<'_>) -> Result<Vec<(String, usize)>, usize> {
    let Some(v) = table.get("extends") else { return Ok(Vec::new()) };
    match v.get_ref() {
        DeValue::String(s) => Ok(vec![(s.to_string(), v.span().start)]),
        DeValue::Array(items) => items
            .iter()
            .map(|i| match i.get_ref() {
                DeValue::String(s) => Ok((s.to_string(), i.span().start)),
                _ => Err(i.span().start),
            })
            .collect(),
        _ => Err(v.span().start),
    }
}

/// Byte offset of every key in a spanned table, for file:line:col provenance.
fn key_offsets(table: &DeTable<'_>, prefix: &Key, out: &mut HashMap<Key, usize>) {
    for (k, v) in table.iter() {
        let key = prefix.child(k.get_ref());
        out.insert(key.clone(), k.span().start);
        if let DeValue::Table(t) = v.get_ref() {
            key_offsets(t, &key, out);
        }
    }
}

/// Leaves of a TOML table, `type` first within each table so a slot switches before its
/// parameters are set. Arrays (of tables too) are leaves.
fn flatten_value(table: &toml::Table, prefix: &Key, out: &mut Vec<(Key, toml::Value)>) {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.as_str() != "type");
    for (k, v) in entries {
        let key = prefix.child(k);
        match v {
            toml::Value::Table(t) => flatten_value(t, &key, out),
            _ => out.push((key, v.clone())),
        }
    }
}
