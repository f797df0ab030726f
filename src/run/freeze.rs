//! `helico freeze RUN`: an experiment file that reproduces a run, turning an ad-hoc command
//! line into a file that can be reviewed (config_engine_anchors.md §4.10, idea 10).
//!
//! The file `extends` the run's original experiment (its path relative to the new file) and
//! sets the fewest keys that make it resolve to the run's resolved config: first the slots
//! whose variant differs, then every leaf that still differs after those switches (arrays are
//! set whole, as a file layer sets them). `name` is always written, since a file's name would
//! otherwise come from its own file name. When the original experiment is gone or no longer
//! resolves, the file holds the whole resolved config instead. Either way the text is
//! resolved again before it is put in place, and must give exactly the run's resolved table.

use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::compare::{ENV, lookup, read_layers, read_table};
use super::diff::slot_keys;
use super::error::RunError;
use super::info::{FILE as RUN_JSON, RunInfo};
use crate::config::overrides::{Key, Override};
use crate::config::schema::Schema;
use crate::config::{Inputs, resolve};
use crate::exit::BadInput;

/// What `freeze` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Frozen {
    pub run: String,
    pub path: PathBuf,
    /// The experiment the file extends, as written in it; `None` for a full config.
    pub extends: Option<String>,
    /// Keys the file sets besides `extends` (all of them for a full config).
    pub keys: Vec<String>,
    /// Why the file holds the full config, when it does.
    pub note: Option<String>,
}

/// Writes `out` reproducing the run in `dir`; an existing `out` is kept unless `force`.
pub fn freeze(dir: &Path, out: &Path, force: bool) -> anyhow::Result<Frozen> {
    let info =
        RunInfo::read(dir).map_err(|e| RunError::Snapshot { path: dir.join(RUN_JSON), problem: format!("{e:#}") })?;
    let target = read_table(dir)?;
    let (_, layers) = read_layers(dir)?;
    if out.exists() && !force {
        return Err(BadInput(format!(
            "{} exists: pass --force to replace it, or choose another --output",
            out.display()
        ))
        .into());
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;

    let original = layers.iter().find(|l| l.role == "experiment").and_then(|l| l.path.clone());
    let located = original.as_deref().map(|p| locate(p, dir));
    let (text, extends, keys, note) = match located.as_ref().map(|p| (p, resolve_file(p))) {
        Some((path, Ok(base))) => {
            let rel = relative(parent, path)?;
            let (table, keys) = overrides(&base, &target, path)?;
            let mut doc = toml::Table::new();
            doc.insert("extends".into(), toml::Value::Array(vec![toml::Value::String(rel.clone())]));
            doc.extend(table);
            (toml::to_string(&doc)?, Some(rel), keys, None)
        }
        failed => {
            let why = match failed {
                Some((p, _)) if !p.is_file() => format!("the original experiment {} is gone", p.display()),
                Some((p, Err(e))) => format!("the original experiment {} no longer resolves ({e})", p.display()),
                _ => "the run records no experiment file".to_owned(),
            };
            let keys = super::diff::leaves(&target).into_iter().map(|l| l.0).collect();
            (toml::to_string(&target)?, None, keys, Some(why))
        }
    };
    let header = format!(
        "# Frozen from run {} by `helico freeze`: resolving this file gives exactly that run's\n# resolved config.{}\n",
        info.id,
        note.as_ref().map(|n| format!(" It holds the whole config: {n}.")).unwrap_or_default()
    );
    write_checked(out, &format!("{header}{text}"), &target)?;
    Ok(Frozen { run: info.id, path: out.to_path_buf(), extends, keys, note })
}

/// The experiment path as recorded (relative to the run's working directory): there, if it
/// still exists, else relative to this process's directory.
fn locate(recorded: &Path, dir: &Path) -> PathBuf {
    if recorded.is_absolute() {
        return recorded.to_path_buf();
    }
    let env: Option<serde_json::Value> =
        std::fs::read(dir.join(ENV)).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let workdir =
        env.as_ref().and_then(|e| e.pointer("/process/working_dir")).and_then(|w| w.as_str()).map(PathBuf::from);
    match workdir.map(|w| w.join(recorded)).filter(|p| p.is_file()) {
        Some(p) => p,
        None => recorded.to_path_buf(),
    }
}

/// Resolves an experiment file alone: no `--set-file`, no environment, no overrides.
fn resolve_file(path: &Path) -> Result<toml::Table, String> {
    if !path.is_file() {
        return Err("does not exist".into());
    }
    let inputs = Inputs { experiment: path.to_path_buf(), ..Inputs::default() };
    resolve(&inputs).map(|r| r.table).map_err(|e| e.problems.first().map_or_else(String::new, |p| p.message.clone()))
}

/// The minimal overrides from `base` to `target`, as nested tables, and their dotted keys.
fn overrides(base: &toml::Table, target: &toml::Table, path: &Path) -> anyhow::Result<(toml::Table, Vec<String>)> {
    let schema = Schema::experiment();
    let want = settable(target);
    let mut set: Vec<(String, toml::Value)> = Vec::new();
    // Switches first: a switch resets the slot's parameters to the new variant's defaults.
    for slot in slot_keys(&schema, target) {
        let key = format!("{slot}.type");
        let (a, b) = (lookup(base, &key), lookup(target, &key));
        if let Some(b) = b.filter(|b| Some(*b) != a) {
            set.push((key, b.clone()));
        }
    }
    let switched = if set.is_empty() {
        base.clone()
    } else {
        let overrides: Vec<(String, Override)> = set
            .iter()
            .map(|(k, v)| {
                let key = Key::parse(k).map_err(anyhow::Error::msg)?;
                Ok((format!("{k}={v}"), Override::Set { key, value: v.clone() }))
            })
            .collect::<anyhow::Result<_>>()?;
        let inputs = Inputs { experiment: path.to_path_buf(), overrides, ..Inputs::default() };
        resolve(&inputs).map_err(|e| anyhow::anyhow!("{e}")).context("switching the original experiment's slots")?.table
    };
    let have = settable(&switched);
    for (k, v) in &want {
        if k != "name"
            && have.iter().find(|(hk, _)| hk == k).map(|(_, hv)| hv) != Some(v)
            && !set.iter().any(|(s, _)| s == k)
        {
            set.push((k.clone(), v.clone()));
        }
    }
    let mut table = toml::Table::new();
    let name = target.get("name").cloned().unwrap_or_else(|| toml::Value::String("experiment".into()));
    table.insert("name".into(), name);
    for (k, v) in &set {
        insert(&mut table, k, v.clone());
    }
    Ok((table, set.into_iter().map(|(k, _)| k).collect()))
}

/// Leaves as a file layer sets them: tables recurse, arrays are set whole.
fn settable(t: &toml::Table) -> Vec<(String, toml::Value)> {
    fn walk(t: &toml::Table, prefix: &str, out: &mut Vec<(String, toml::Value)>) {
        for (k, v) in t {
            let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                toml::Value::Table(sub) => walk(sub, &key, out),
                leaf => out.push((key, leaf.clone())),
            }
        }
    }
    let mut out = Vec::new();
    walk(t, "", &mut out);
    out
}

fn insert(t: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        None => {
            t.insert(key.to_owned(), value);
        }
        Some((first, rest)) => {
            let sub = t.entry(first).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(sub) = sub {
                insert(sub, rest, value);
            }
        }
    }
}

/// `to` relative to the directory `from`, both made absolute first: what an `extends` entry
/// in a file in `from` must say.
fn relative(from: &Path, to: &Path) -> anyhow::Result<String> {
    let from = from.canonicalize().with_context(|| format!("cannot resolve {}", from.display()))?;
    let to = to.canonicalize().with_context(|| format!("cannot resolve {}", to.display()))?;
    let (a, b): (Vec<Component>, Vec<Component>) = (from.components().collect(), to.components().collect());
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut rel = PathBuf::new();
    for _ in common..a.len() {
        rel.push("..");
    }
    for c in &b[common..] {
        rel.push(c);
    }
    Ok(rel.to_string_lossy().into_owned())
}

/// Writes `text` beside `out`, resolves it, and moves it into place only if it resolves to
/// exactly `target`.
fn write_checked(out: &Path, text: &str, target: &toml::Table) -> anyhow::Result<()> {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = out.with_file_name(format!(".{name}.freeze-{}.toml", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    let check = resolve(&Inputs { experiment: tmp.clone(), ..Inputs::default() });
    let verdict = match check {
        Ok(r) if r.table == *target => Ok(()),
        Ok(r) => {
            let (got, want) = (settable(&r.table), settable(target));
            let differ: Vec<String> = want
                .iter()
                .filter(|w| !got.contains(w))
                .map(|(k, _)| k.clone())
                .chain(got.iter().filter(|g| !want.contains(g)).map(|(k, _)| k.clone()))
                .collect();
            Err(anyhow::anyhow!("the frozen file resolves differently from the run at {}", differ.join(", ")))
        }
        Err(e) => Err(anyhow::anyhow!("the frozen file does not resolve: {e}")),
    };
    let result =
        verdict.and_then(|()| std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display())));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_then_descend() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("experiments/frozen")).expect("mkdir");
        std::fs::write(root.path().join("experiments/tiny.toml"), "").expect("write");
        let rel = relative(&root.path().join("experiments/frozen"), &root.path().join("experiments/tiny.toml"));
        assert_eq!(rel.expect("relative"), "../tiny.toml");
        let rel = relative(&root.path().join("experiments"), &root.path().join("experiments/tiny.toml"));
        assert_eq!(rel.expect("relative"), "tiny.toml");
    }

    #[test]
    fn dotted_keys_become_nested_tables() {
        let mut t = toml::Table::new();
        insert(&mut t, "schedule.type", "constant".into());
        insert(&mut t, "train.steps", 4.into());
        insert(&mut t, "seed", 1.into());
        assert_eq!(
            toml::to_string(&t).expect("toml"),
            "seed = 1\n\n[schedule]\ntype = \"constant\"\n\n[train]\nsteps = 4\n"
        );
    }
}
