//! The ablation spec: axes from the command line (`key=VALUES`, `--zip`) or an `ablations/*.toml`
//! file, expanded by the value generators into one normalised [`Spec`] whose hash identifies the
//! sweep (`--resume` refuses a spec whose hash changed).
//!
//! Grammar (config_engine_anchors.md §4.3): values `a,b,c` (TOML values, split at top-level
//! commas), ranges `0..4` / `0..=4` / `a..b:step`, `linspace(a,b,n)`, `logspace(a,b,n)`,
//! `pow2(5..=8)`, registry variants `@a,@b` and all variants `@*`. Axes multiply; a zip group is
//! one named axis whose members vary together; the `seed` axis (or `repeat` in the file form)
//! replicates every trial and is what the report averages over.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{AblateError, AxisProblem};
use crate::config::error::did_you_mean;
use crate::config::overrides;
use crate::registry::describe::SlotInfo;

/// A typo like `0..100000000` should be refused, not planned.
pub const MAX_VALUES: usize = 10_000;
/// At most this many trials in one ablation.
pub const MAX_TRIALS: usize = 10_000;

/// Relative floating-point noise below this is rounded away from generated values, so
/// `0..1:0.1` yields 0.3 and not 0.30000000000000004.
const SIGNIFICANT_DIGITS: usize = 12;

/// How axes combine into trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every combination of axis values (the Cartesian product).
    Grid,
    /// One axis at a time around the base experiment; the base trial is shared.
    Oat,
}

/// One value an axis takes: the label shown in tables, and the overrides it makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AxisValue {
    pub label: String,
    /// `key=value` overrides, one per key of the axis.
    pub overrides: Vec<String>,
}

/// A dimension of the sweep: one key, or a named zip group of keys varying together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    pub name: String,
    pub keys: Vec<String>,
    pub values: Vec<AxisValue>,
}

/// The normalised sweep: what `--resume` compares and the ablation id's hash covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// The base experiment, as a path from the working directory.
    pub experiment: PathBuf,
    pub mode: Mode,
    /// The varied axes, in the order given (the seed axis apart).
    pub axes: Vec<Axis>,
    /// Replicas of every trial, innermost in the trial order.
    pub seeds: Option<Axis>,
    /// `HELICO__*` variables in force: they are config layers of every trial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
}

/// One trial before resolution: its place on each axis and the overrides that put it there.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialDef {
    /// (axis name, value label) for each axis the trial sets; empty for the oat base.
    pub axes: Vec<(String, String)>,
    pub overrides: Vec<String>,
    /// The axis each override comes from, for error messages.
    pub origins: Vec<String>,
}

/// What the user asked for on the command line.
pub struct Request<'a> {
    /// An experiment, or an ablation file (a TOML file with `base`).
    pub path: &'a Path,
    pub axes: &'a [String],
    pub zips: &'a [String],
    pub mode: Option<Mode>,
    pub env: Vec<(String, String)>,
}

/// `ablations/*.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AblationFile {
    /// The base experiment, relative to the ablation file.
    base: String,
    mode: Option<Mode>,
    /// Seeds 0..repeat for every trial.
    repeat: Option<u64>,
    /// Explicit seeds: an array or a value generator string.
    seeds: Option<toml::Value>,
    #[serde(default)]
    axis: Vec<toml::Table>,
}

impl Spec {
    /// blake3 of the spec's canonical JSON.
    pub fn hash(&self) -> String {
        crate::hash::of_json(&serde_json::to_value(self).expect("a spec serialises to JSON"))
    }

    /// Every trial, in order: grid axes with the first varying slowest, or the oat base then each
    /// axis value alone; seeds innermost.
    pub fn trials(&self) -> Vec<TrialDef> {
        let empty = TrialDef { axes: Vec::new(), overrides: Vec::new(), origins: Vec::new() };
        let mut trials = vec![empty.clone()];
        match self.mode {
            Mode::Grid => {
                for axis in &self.axes {
                    trials = trials.iter().flat_map(|t| axis.values.iter().map(|v| t.with(axis, v))).collect();
                }
            }
            Mode::Oat => {
                trials.extend(self.axes.iter().flat_map(|a| a.values.iter().map(|v| empty.with(a, v))));
            }
        }
        if let Some(seeds) = &self.seeds {
            trials = trials.iter().flat_map(|t| seeds.values.iter().map(|v| t.with(seeds, v))).collect();
        }
        trials
    }

    /// The number of trials, without building them.
    pub fn n_trials(&self) -> usize {
        let sizes = self.axes.iter().map(|a| a.values.len());
        let n = match self.mode {
            Mode::Grid => sizes.fold(1usize, |n, s| n.saturating_mul(s)),
            Mode::Oat => 1 + sizes.sum::<usize>(),
        };
        n.saturating_mul(self.seeds.as_ref().map_or(1, |s| s.values.len()))
    }

    /// Human-readable differences from `other`, for refusing a changed spec on `--resume`.
    pub fn differences(&self, other: &Spec) -> Vec<String> {
        let mut out = Vec::new();
        if self.experiment != other.experiment {
            out.push(format!("experiment {} → {}", self.experiment.display(), other.experiment.display()));
        }
        if self.mode != other.mode {
            out.push(format!("mode {:?} → {:?}", self.mode, other.mode).to_lowercase());
        }
        let show = |a: &Axis| {
            format!("{} = {}", a.name, a.values.iter().map(|v| v.label.as_str()).collect::<Vec<_>>().join(","))
        };
        let mine: Vec<String> = self.axes.iter().chain(&self.seeds).map(show).collect();
        let theirs: Vec<String> = other.axes.iter().chain(&other.seeds).map(show).collect();
        out.extend(mine.iter().filter(|a| !theirs.contains(a)).map(|a| format!("axis {a} is gone")));
        out.extend(theirs.iter().filter(|a| !mine.contains(a)).map(|a| format!("axis {a} is new")));
        if out.is_empty() && mine != theirs {
            out.push("the axes are in another order".into());
        }
        if self.env != other.env {
            out.push("the HELICO__* environment variables differ".into());
        }
        out
    }
}

impl TrialDef {
    fn with(&self, axis: &Axis, value: &AxisValue) -> TrialDef {
        let mut t = self.clone();
        t.axes.push((axis.name.clone(), value.label.clone()));
        t.overrides.extend(value.overrides.iter().cloned());
        t.origins.extend(std::iter::repeat_n(axis.name.clone(), value.overrides.len()));
        t
    }
}

/// Builds the spec from the command line (and the ablation file it may name), reporting every
/// problem at once.
pub fn build(req: &Request, slots: &[SlotInfo]) -> Result<Spec, AblateError> {
    let mut problems = Vec::new();
    let mut axes = Vec::new();
    let mut seeds = None;
    let mut mode = None;
    let file = read_file(req.path)?;
    let experiment = match &file {
        Some(f) => {
            let base = normalise(&req.path.parent().unwrap_or(Path::new("")).join(&f.base));
            if !base.is_file() {
                problems.push(AxisProblem::plain(
                    None,
                    format!("base = \"{}\" in {}: no such file", f.base, req.path.display()),
                    "paths in an ablation file are relative to that file",
                ));
            }
            mode = f.mode;
            seeds = file_seeds(f, req.path, &mut problems);
            for (i, table) in f.axis.iter().enumerate() {
                match file_axis(table, slots) {
                    Ok(a) => axes.push(a),
                    Err(p) => problems
                        .extend(p.into_iter().map(|p| p.at(format!("{} [[axis]] {}", req.path.display(), i + 1)))),
                }
            }
            base
        }
        None => normalise(req.path),
    };
    for text in req.axes {
        match cli_axis(text, slots) {
            Ok(a) => axes.push(a),
            Err(p) => problems.extend(p),
        }
    }
    for text in req.zips {
        match zip_axis(text, slots) {
            Ok(a) => axes.push(a),
            Err(p) => problems.extend(p),
        }
    }
    // The seed axis replicates trials instead of being varied, in either mode.
    if let Some(i) = axes.iter().position(|a| a.keys == ["seed"]) {
        let axis = axes.remove(i);
        if seeds.is_some() {
            problems.push(AxisProblem::plain(
                Some("seed".into()),
                "seeds are given twice: by `repeat`/`seeds` in the ablation file and by a seed axis".into(),
                "keep one of them",
            ));
        }
        seeds = Some(axis);
    }
    check_distinct(axes.iter().chain(&seeds), &mut problems);
    if !problems.is_empty() {
        return Err(AblateError::Invalid { problems });
    }
    let spec = Spec { experiment, mode: req.mode.or(mode).unwrap_or(Mode::Grid), axes, seeds, env: req.env.clone() };
    let n = spec.n_trials();
    if n > MAX_TRIALS {
        return Err(AblateError::TooManyTrials { n, max: MAX_TRIALS });
    }
    Ok(spec)
}

/// The ablation file at `path`, or `None` when it is an experiment (no `base` key).
fn read_file(path: &Path) -> Result<Option<AblationFile>, AblateError> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(None) };
    let Ok(table) = text.parse::<toml::Table>() else { return Ok(None) };
    if !table.contains_key("base") {
        return Ok(None);
    }
    toml::from_str(&text).map(Some).map_err(|e| AblateError::File { path: path.to_path_buf(), message: e.to_string() })
}

fn file_seeds(f: &AblationFile, path: &Path, problems: &mut Vec<AxisProblem>) -> Option<Axis> {
    let values = match (&f.repeat, &f.seeds) {
        (Some(_), Some(_)) => {
            problems.push(AxisProblem::plain(
                Some("seed".into()),
                format!("{}: `repeat` and `seeds` both set", path.display()),
                "`repeat = N` means seeds 0..N; keep one",
            ));
            return None;
        }
        (Some(0), None) => {
            problems.push(AxisProblem::plain(
                Some("seed".into()),
                format!("{}: repeat = 0 gives no trials", path.display()),
                "use repeat = 1 or more",
            ));
            return None;
        }
        (Some(n), None) => Ok((0..*n).map(|s| s.to_string()).collect()),
        (None, Some(v)) => file_values("seed", v, &[]),
        (None, None) => return None,
    };
    match values {
        Ok(values) => Some(simple_axis("seed", values)),
        Err(e) => {
            problems.push(AxisProblem::plain(Some("seed".into()), format!("{}: seeds: {e}", path.display()), ""));
            None
        }
    }
}

/// `key=VALUES` from the command line.
fn cli_axis(text: &str, slots: &[SlotInfo]) -> Result<Axis, Vec<AxisProblem>> {
    let (key, rhs) = split_axis(text).map_err(|e| vec![AxisProblem::plain(None, e, AXIS_HELP)])?;
    let values = expand(&key, rhs, slots).map_err(|e| vec![AxisProblem::plain(Some(key.clone()), e, "")])?;
    Ok(simple_axis(&key, values))
}

const AXIS_HELP: &str = "an axis is key=VALUES: a,b,c · 0..4 · 0..=4 · a..b:step · linspace(a,b,n) · logspace(a,b,n) · pow2(5..=8) · @v1,@v2 · @*";

fn split_axis(text: &str) -> Result<(String, &str), String> {
    let Some((lhs, rhs)) = text.split_once('=') else {
        return Err(format!("`{text}` is not an axis: expected key=VALUES"));
    };
    if lhs.ends_with('+') || lhs.starts_with('~') {
        return Err(format!(
            "`{text}`: ablate axes set values (key=VALUES); `+=` and `~key` belong in the experiment file"
        ));
    }
    let key = overrides::Key::parse(lhs.trim())?;
    Ok((key.to_string(), rhs.trim()))
}

/// `--zip 'name: k1=a,b; k2=c,d'`: members vary together, as one axis named `name`.
fn zip_axis(text: &str, slots: &[SlotInfo]) -> Result<Axis, Vec<AxisProblem>> {
    let (name, body) = match text.split_once(':') {
        Some((name, body)) if !name.contains('=') => (Some(name.trim().to_owned()), body),
        _ => (None, text),
    };
    let mut members = Vec::new();
    let mut problems = Vec::new();
    for member in split_top(body, ';').into_iter().map(str::trim).filter(|m| !m.is_empty()) {
        match split_axis(member).and_then(|(k, rhs)| expand(&k, rhs, slots).map(|v| (k, v))) {
            Ok(m) => members.push(m),
            Err(e) => problems.push(AxisProblem::plain(name.clone(), format!("in --zip `{text}`: {e}"), "")),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    zip(name, members).map_err(|e| vec![AxisProblem::plain(None, format!("--zip `{text}`: {e}"), ZIP_HELP)])
}

const ZIP_HELP: &str = "a zip group is 'name: k1=a,b; k2=c,d': members of equal length, separated by `;`";

/// Members of equal length into one axis.
fn zip(name: Option<String>, members: Vec<(String, Vec<String>)>) -> Result<Axis, String> {
    let Some(first) = members.first() else { return Err("no members".into()) };
    let n = first.1.len();
    if members.iter().any(|(_, v)| v.len() != n) {
        let lengths: Vec<String> = members.iter().map(|(k, v)| format!("{k} has {}", v.len())).collect();
        return Err(format!("members must have equal length: {}", lengths.join(", ")));
    }
    let name = name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| members.iter().map(|m| m.0.as_str()).collect::<Vec<_>>().join("+"));
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c)) {
        return Err(format!("axis name `{name}`: use letters, digits, `.`, `_`, `+` and `-`"));
    }
    let values = (0..n)
        .map(|i| AxisValue {
            label: members.iter().map(|(_, v)| v[i].as_str()).collect::<Vec<_>>().join(", "),
            overrides: members.iter().map(|(k, v)| format!("{k}={}", v[i])).collect(),
        })
        .collect();
    Ok(Axis { name, keys: members.into_iter().map(|m| m.0).collect(), values })
}

/// One `[[axis]]` table: `name` (optional) and one or more keys with their values.
fn file_axis(table: &toml::Table, slots: &[SlotInfo]) -> Result<Axis, Vec<AxisProblem>> {
    let name = match table.get("name") {
        None => None,
        Some(toml::Value::String(s)) => Some(s.clone()),
        Some(v) => {
            return Err(vec![AxisProblem::plain(None, format!("`name` must be a string, got {v}"), "")]);
        }
    };
    let mut members = Vec::new();
    let mut problems = Vec::new();
    for (key, value) in table.iter().filter(|(k, _)| *k != "name") {
        match overrides::Key::parse(key).and_then(|_| file_values(key, value, slots)) {
            Ok(v) => members.push((key.clone(), v)),
            Err(e) => problems.push(AxisProblem::plain(Some(key.clone()), e, "")),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if members.len() == 1 && name.is_none() {
        let (key, values) = members.remove(0);
        return Ok(simple_axis(&key, values));
    }
    zip(name, members).map_err(|e| vec![AxisProblem::plain(None, e, ZIP_HELP)])
}

/// An axis's values in the file form: an array of TOML values (`"@v"` strings switch a slot),
/// a generator string as on the command line, or one scalar.
fn file_values(key: &str, value: &toml::Value, slots: &[SlotInfo]) -> Result<Vec<String>, String> {
    let rhs = |v: &toml::Value| match v {
        toml::Value::String(s) if s.starts_with('@') => s.clone(),
        other => other.to_string(),
    };
    match value {
        toml::Value::String(s) => expand(key, s, slots),
        toml::Value::Array(items) if items.is_empty() => Err(format!("`{key}` has no values")),
        toml::Value::Array(items) => Ok(items.iter().map(rhs).collect()),
        other => Ok(vec![rhs(other)]),
    }
}

fn simple_axis(key: &str, values: Vec<String>) -> Axis {
    let values = values.into_iter().map(|v| AxisValue { overrides: vec![format!("{key}={v}")], label: v }).collect();
    Axis { name: key.to_owned(), keys: vec![key.to_owned()], values }
}

/// Axis names and keys must not repeat: a key set by two axes has no single value per trial.
fn check_distinct<'a>(axes: impl Iterator<Item = &'a Axis>, problems: &mut Vec<AxisProblem>) {
    let mut names: Vec<&str> = Vec::new();
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for a in axes {
        if names.contains(&a.name.as_str()) {
            problems.push(AxisProblem::plain(Some(a.name.clone()), format!("axis `{}` is given twice", a.name), ""));
        }
        names.push(&a.name);
        for k in &a.keys {
            if let Some((_, other)) = keys.iter().find(|(key, _)| key == k) {
                problems.push(AxisProblem::plain(
                    Some(a.name.clone()),
                    format!("key `{k}` is varied by axis `{other}` and by axis `{}`", a.name),
                    "a key can be on one axis only; zip them (--zip) to vary them together",
                ));
            }
            keys.push((k, &a.name));
        }
    }
}

/// The right-hand sides an axis takes, in order: each top-level comma-separated element is a
/// generator or one TOML value.
pub fn expand(key: &str, text: &str, slots: &[SlotInfo]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for element in split_top(text, ',') {
        let element = element.trim();
        if element.is_empty() {
            return Err(format!("`{key}={text}` has an empty value: separate values with single commas"));
        }
        out.extend(generate(key, element, slots)?);
        if out.len() > MAX_VALUES {
            return Err(format!("`{key}={text}` gives more than {MAX_VALUES} values"));
        }
    }
    if out.is_empty() {
        return Err(format!("`{key}` has no values"));
    }
    Ok(out)
}

fn generate(key: &str, element: &str, slots: &[SlotInfo]) -> Result<Vec<String>, String> {
    if element == "@*" {
        return all_variants(key, slots);
    }
    if let Some(args) = call(element, "linspace") {
        let (a, b, n) = three_args(element, args)?;
        return linspace(a, b, n).map_err(|e| format!("`{element}`: {e}"));
    }
    if let Some(args) = call(element, "logspace") {
        let (a, b, n) = three_args(element, args)?;
        return logspace(a, b, n).map_err(|e| format!("`{element}`: {e}"));
    }
    if let Some(args) = call(element, "pow2") {
        let exponents = expand(key, args, slots)?;
        return exponents
            .iter()
            .map(|e| match e.parse::<u32>() {
                Ok(k) if k <= 62 => Ok((1i64 << k).to_string()),
                _ => Err(format!("`{element}`: exponent {e} is not an integer in 0..=62")),
            })
            .collect();
    }
    if let Some(values) = range(element)? {
        return Ok(values);
    }
    overrides::parse(&format!("{key}={element}")).map_err(|e| format!("`{element}`: {e}"))?;
    Ok(vec![element.to_owned()])
}

fn all_variants(key: &str, slots: &[SlotInfo]) -> Result<Vec<String>, String> {
    match slots.iter().find(|s| s.key == key) {
        Some(slot) => Ok(slot.variants.iter().map(|v| format!("@{}", v.name)).collect()),
        None => {
            let keys: Vec<&str> = slots.iter().map(|s| s.key.as_str()).collect();
            let hint =
                did_you_mean(key, keys.iter().copied()).map(|k| format!(" (did you mean `{k}`?)")).unwrap_or_default();
            Err(format!(
                "`{key}=@*` takes every variant of a registry slot, and `{key}` is not a slot{hint}; slots: {}",
                keys.join(", ")
            ))
        }
    }
}

/// `name(args)` → `args`.
fn call<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    text.strip_prefix(name)?.trim_start().strip_prefix('(')?.strip_suffix(')')
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn parse(s: &str) -> Option<Num> {
        let s = s.trim();
        if let Ok(i) = s.parse::<i64>() {
            return Some(Num::Int(i));
        }
        // Only digits, signs, points and exponents: Rust also parses `inf` and `NaN`.
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) {
            return None;
        }
        s.parse::<f64>().ok().filter(|x| x.is_finite()).map(Num::Float)
    }

    fn f(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(x) => x,
        }
    }
}

fn three_args(element: &str, args: &str) -> Result<(Num, Num, Num), String> {
    let parts: Vec<Option<Num>> = split_top(args, ',').into_iter().map(Num::parse).collect();
    match parts.as_slice() {
        [Some(a), Some(b), Some(n)] => Ok((*a, *b, *n)),
        _ => Err(format!("`{element}` takes three numbers: (start, end, count)")),
    }
}

fn count(n: Num) -> Result<usize, String> {
    match n {
        Num::Int(0) => Err("count 0 gives no values (empty)".into()),
        Num::Int(1) => Err("count 1: both ends are included, so give at least 2".into()),
        Num::Int(n) if n > 1 && n as usize <= MAX_VALUES => Ok(n as usize),
        _ => Err(format!("the count must be an integer from 2 to {MAX_VALUES}")),
    }
}

/// n evenly spaced points from a to b inclusive; integers when a, b and every point are.
fn linspace(a: Num, b: Num, n: Num) -> Result<Vec<String>, String> {
    let n = count(n)?;
    if let (Num::Int(a), Num::Int(b)) = (a, b)
        && (b - a) % (n as i64 - 1) == 0
    {
        let step = (b - a) / (n as i64 - 1);
        return Ok((0..n as i64).map(|i| (a + i * step).to_string()).collect());
    }
    let (a, b) = (a.f(), b.f());
    Ok((0..n).map(|i| if i == n - 1 { b } else { a + (b - a) * i as f64 / (n - 1) as f64 }).map(float).collect())
}

/// n geometrically spaced points from a to b inclusive. Unlike numpy's `logspace`, the ends are
/// values, not exponents: `logspace(1e-4,1e-2,3)` is 1e-4, 1e-3, 1e-2.
fn logspace(a: Num, b: Num, n: Num) -> Result<Vec<String>, String> {
    let n = count(n)?;
    let (x, y) = (a.f(), b.f());
    if x <= 0.0 || y <= 0.0 {
        return Err("both ends must be positive (the points are spaced evenly in log scale)".into());
    }
    let points: Vec<f64> =
        (0..n).map(|i| if i == n - 1 { y } else { tidy(x * (y / x).powf(i as f64 / (n - 1) as f64)) }).collect();
    let ints = matches!((a, b), (Num::Int(_), Num::Int(_))) && points.iter().all(|p| p.fract() == 0.0);
    Ok(points.into_iter().map(|p| if ints { (p as i64).to_string() } else { float(p) }).collect())
}

/// `a..b` (b excluded), `a..=b`, optionally `:step`; `None` when the text is not a range.
fn range(text: &str) -> Result<Option<Vec<String>>, String> {
    let Some((lhs, rest)) = text.split_once("..") else { return Ok(None) };
    let Some(a) = Num::parse(lhs) else { return Ok(None) };
    let (inclusive, rest) = match rest.strip_prefix('=') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let (end, step) = match rest.split_once(':') {
        Some((e, s)) => (e, Some(s)),
        None => (rest, None),
    };
    let bad = || format!("`{text}` is not a range: expected a..b, a..=b or a..b:step with numbers");
    let b = Num::parse(end).ok_or_else(bad)?;
    let step = match step {
        Some(s) => Num::parse(s).ok_or_else(bad)?,
        None => Num::Int(1),
    };
    if step.f() <= 0.0 {
        return Err(format!("`{text}`: the step must be positive"));
    }
    let values: Vec<String> = match (a, b, step) {
        (Num::Int(a), Num::Int(b), Num::Int(s)) => {
            let end = if inclusive { b.saturating_add(1) } else { b };
            let n = if end > a { ((end - a) as u64).div_ceil(s as u64) } else { 0 };
            if n as usize > MAX_VALUES {
                return Err(format!("`{text}` gives {n} values, more than {MAX_VALUES}"));
            }
            (0..n as i64).map(|i| (a + i * s).to_string()).collect()
        }
        _ => {
            let (a, b, s) = (a.f(), b.f(), step.f());
            let slack = s * 1e-9;
            let n = if inclusive { ((b - a + slack) / s).floor() + 1.0 } else { ((b - a - slack) / s).ceil() };
            if n > MAX_VALUES as f64 {
                return Err(format!("`{text}` gives {n} values, more than {MAX_VALUES}"));
            }
            (0..n.max(0.0) as usize).map(|i| float(a + s * i as f64)).collect()
        }
    };
    if values.is_empty() {
        let hint = if inclusive {
            "`a..=b` needs a ≤ b"
        } else {
            "`a..b` excludes b, so it needs a < b; `a..=b` includes b"
        };
        return Err(format!("`{text}` is an empty range: {hint}"));
    }
    Ok(Some(values))
}

/// `x` without the last bits of floating-point noise.
fn tidy(x: f64) -> f64 {
    format!("{x:.prec$e}", prec = SIGNIFICANT_DIGITS - 1).parse().unwrap_or(x)
}

/// A generated float as TOML writes it (always with a decimal point or exponent).
fn float(x: f64) -> String {
    toml::Value::Float(tidy(x)).to_string()
}

/// Splits at `sep` outside brackets, braces, parentheses and quotes.
fn split_top(text: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0);
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{' | '(') => depth += 1,
            (None, ']' | '}' | ')') => depth -= 1,
            (None, c) if c == sep && depth == 0 => {
                out.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// `a/b/../c` → `a/c`, without touching the filesystem (the path need not exist yet).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::Schema;
    use crate::registry::describe::slots;

    fn ex(key: &str, text: &str) -> Vec<String> {
        expand(key, text, &slots(&Schema::experiment())).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(key: &str, text: &str) -> String {
        expand(key, text, &slots(&Schema::experiment())).expect_err(text)
    }

    #[test]
    fn lists_split_at_top_level_commas_only() {
        assert_eq!(ex("a", "24,48"), ["24", "48"]);
        assert_eq!(ex("a", " 1 , 2 "), ["1", "2"]);
        assert_eq!(ex("a", "[1,2],[3,4]"), ["[1,2]", "[3,4]"]);
        assert_eq!(ex("a", "\"x,y\",z"), ["\"x,y\"", "z"]);
        assert_eq!(
            ex("model", "@d3pm_lm{n_layers=2,d_model=32},@d3pm_lm"),
            ["@d3pm_lm{n_layers=2,d_model=32}", "@d3pm_lm"]
        );
        assert_eq!(ex("a", "7"), ["7"]);
        assert!(err("a", "1,,2").contains("empty value"));
        assert!(err("a", "1,").contains("empty value"));
        assert!(err("model", "@").contains("not a variant name"));
    }

    #[test]
    fn ranges_follow_rust_syntax() {
        assert_eq!(ex("seed", "0..4"), ["0", "1", "2", "3"]);
        assert_eq!(ex("seed", "0..=4"), ["0", "1", "2", "3", "4"]);
        assert_eq!(ex("seed", "-2..1"), ["-2", "-1", "0"]);
        assert_eq!(ex("a", "0..10:3"), ["0", "3", "6", "9"]);
        assert_eq!(ex("a", "0..1:0.25"), ["0.0", "0.25", "0.5", "0.75"]);
        assert_eq!(ex("a", "0..=1:0.25"), ["0.0", "0.25", "0.5", "0.75", "1.0"]);
        assert_eq!(ex("a", "0.5..2.5"), ["0.5", "1.5"]);
        assert_eq!(ex("a", "0..0.35:0.1"), ["0.0", "0.1", "0.2", "0.3"], "no 0.30000000000000004");
        assert_eq!(ex("a", "1e-4..=3e-4:1e-4"), ["0.0001", "0.0002", "0.0003"]);
        for empty in ["4..4", "5..2", "3..=2", "0..0:0.5"] {
            assert!(err("a", empty).contains("is an empty range"), "{empty}");
        }
        assert!(err("a", "0..4:0").contains("step must be positive"));
        assert!(err("a", "0..4:-1").contains("step must be positive"));
        assert!(err("a", "0..x").contains("is not a range"));
        assert!(err("a", "0..100000").contains("more than"));
        assert_eq!(ex("name", "a..b"), ["a..b"], "not numbers: a literal");
    }

    #[test]
    fn linspace_logspace_pow2() {
        assert_eq!(ex("a", "linspace(16,64,4)"), ["16", "32", "48", "64"]);
        assert_eq!(ex("a", "linspace(0,1,5)"), ["0.0", "0.25", "0.5", "0.75", "1.0"]);
        assert_eq!(ex("a", "linspace(0, 1, 3)"), ["0.0", "0.5", "1.0"]);
        assert_eq!(ex("a", "linspace(1,2,4)"), ["1.0", "1.33333333333", "1.66666666667", "2.0"]);
        assert_eq!(ex("a", "logspace(1e-4,1e-2,3)"), ["0.0001", "0.001", "0.01"]);
        assert_eq!(ex("a", "logspace(1,1000,4)"), ["1", "10", "100", "1000"]);
        assert_eq!(ex("a", "logspace(1,2,2)"), ["1", "2"]);
        assert_eq!(ex("a", "pow2(5..=8)"), ["32", "64", "128", "256"]);
        assert_eq!(ex("a", "pow2(3,5)"), ["8", "32"]);
        assert_eq!(ex("a", "1,pow2(2..4),100"), ["1", "4", "8", "100"]);
        assert!(err("a", "linspace(0,1,0)").contains("empty"));
        assert!(err("a", "linspace(0,1,1)").contains("at least 2"));
        assert!(err("a", "linspace(0,1)").contains("three numbers"));
        assert!(err("a", "logspace(0,1,3)").contains("positive"));
        assert!(err("a", "pow2(70)").contains("0..=62"));
        assert!(err("a", "pow2(1..1)").contains("empty range"));
    }

    #[test]
    fn all_variants_of_a_slot() {
        let schedules = ex("schedule", "@*");
        assert!(schedules.len() >= 2 && schedules.iter().all(|s| s.starts_with('@')), "{schedules:?}");
        assert!(schedules.contains(&"@warmup_cosine".to_owned()));
        let e = err("train.steps", "@*");
        assert!(e.contains("`train.steps` is not a slot") && e.contains("slots: model"), "{e}");
        assert!(err("schedul", "@*").contains("did you mean `schedule`?"));
    }

    fn request<'a>(path: &'a Path, axes: &'a [String], zips: &'a [String], mode: Option<Mode>) -> Request<'a> {
        Request { path, axes, zips, mode, env: Vec::new() }
    }

    fn spec(axes: &[&str], zips: &[&str], mode: Option<Mode>) -> Result<Spec, AblateError> {
        let axes: Vec<String> = axes.iter().map(|s| (*s).to_owned()).collect();
        let zips: Vec<String> = zips.iter().map(|s| (*s).to_owned()).collect();
        build(&request(Path::new("experiments/demo.toml"), &axes, &zips, mode), &slots(&Schema::experiment()))
    }

    fn problems(e: AblateError) -> Vec<String> {
        match e {
            AblateError::Invalid { problems } => problems.iter().map(|p| p.to_string()).collect(),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn grid_multiplies_zip_varies_together_oat_shares_the_base() {
        let grid = spec(&["model.n_layers=1,2", "optimizer.lr=1e-3,2e-3,3e-3", "seed=0..2"], &[], None).expect("spec");
        assert_eq!((grid.n_trials(), grid.trials().len()), (12, 12));
        let t = grid.trials();
        assert_eq!(t[0].overrides, ["model.n_layers=1", "optimizer.lr=1e-3", "seed=0"]);
        assert_eq!(t[1].overrides, ["model.n_layers=1", "optimizer.lr=1e-3", "seed=1"], "seeds innermost");
        assert_eq!(t[2].overrides, ["model.n_layers=1", "optimizer.lr=2e-3", "seed=0"], "first axis slowest");

        let zip = spec(&["seed=0..2"], &["shape: model.n_layers=1,2; model.d_model=16,32"], None).expect("spec");
        assert_eq!(zip.trials().len(), 4);
        assert_eq!(zip.axes[0].name, "shape");
        assert_eq!(zip.trials()[2].axes, [("shape".into(), "2, 32".into()), ("seed".into(), "0".into())]);
        assert_eq!(zip.trials()[2].overrides, ["model.n_layers=2", "model.d_model=32", "seed=0"]);

        let oat = spec(&["model.n_layers=1,2", "optimizer.lr=1e-3,2e-3,3e-3", "seed=0..2"], &[], Some(Mode::Oat));
        let oat = oat.expect("spec");
        let t = oat.trials();
        assert_eq!(t.len(), (1 + 2 + 3) * 2);
        assert!(t[0].axes == [("seed".into(), "0".into())] && t[0].overrides == ["seed=0"], "the base first");
        assert_eq!(t[4].overrides, ["model.n_layers=2", "seed=0"], "one axis at a time");
    }

    #[test]
    fn bad_axes_are_all_reported() {
        let all = problems(
            spec(
                &["model.d_model=4..4", "train.steps", "model.n_layers=1,2"],
                &["g: model.n_layers=1,2; model.d_model=8"],
                None,
            )
            .expect_err("invalid"),
        );
        let text = all.join("\n");
        assert!(text.contains("`4..4` is an empty range"), "{text}");
        assert!(text.contains("`train.steps` is not an axis"), "{text}");
        assert!(text.contains("members must have equal length") && text.contains("model.d_model has 1"), "{text}");
        let twice = spec(&["model.n_layers=1,2"], &["g: model.n_layers=1,2; model.d_model=8,16"], None);
        let twice = problems(twice.expect_err("a key on two axes")).join("");
        assert!(twice.contains("key `model.n_layers` is varied by axis `model.n_layers` and by axis `g`"), "{twice}");
        assert!(problems(spec(&["a+=1"], &[], None).expect_err("+=")).join("").contains("`+=` and `~key`"));
        assert!(matches!(
            spec(&["a=0..100", "b=0..100", "c=0..100"], &[], None),
            Err(AblateError::TooManyTrials { n: 1_000_000, .. })
        ));
    }

    #[test]
    fn the_spec_hash_covers_values_not_spelling() {
        let a = spec(&["seed=0..2", "model.n_layers=pow2(0..2)"], &[], None).expect("spec");
        let b = spec(&["model.n_layers=1,2", "seed=0,1"], &[], None).expect("spec");
        assert_eq!(a.hash(), b.hash());
        let c = spec(&["model.n_layers=1,2", "seed=0..3"], &[], None).expect("spec");
        assert_ne!(a.hash(), c.hash());
        assert_eq!(a.differences(&c), ["axis seed = 0,1 is gone", "axis seed = 0,1,2 is new"]);
    }

    #[test]
    fn the_file_form_is_the_command_line_form() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("ablations")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("experiments")).expect("mkdir");
        std::fs::write(dir.path().join("experiments/x.toml"), "").expect("write");
        let file = dir.path().join("ablations/x.toml");
        std::fs::write(
            &file,
            r#"base = "../experiments/x.toml"
mode = "oat"
repeat = 2

[[axis]]
"model.n_layers" = [1, 2]

[[axis]]
name = "shape"
"model.d_model" = "pow2(4..=5)"
"model.n_heads" = [2, 4]

[[axis]]
schedule = ["@warmup_cosine", "@constant"]
"#,
        )
        .expect("write");
        let from_file = build(&request(&file, &[], &[], None), &slots(&Schema::experiment())).expect("file");
        assert_eq!(from_file.experiment, dir.path().join("experiments/x.toml"));
        let axes: Vec<String> =
            ["model.n_layers=1,2", "schedule=@warmup_cosine,@constant", "seed=0..2"].map(str::to_owned).to_vec();
        let zips = vec!["shape: model.d_model=16,32; model.n_heads=2,4".to_owned()];
        let base = dir.path().join("experiments/x.toml");
        let mut from_cli =
            build(&request(&base, &axes, &zips, Some(Mode::Oat)), &slots(&Schema::experiment())).expect("cli");
        // The zip comes last on the command line; the file lists it second.
        from_cli.axes.swap(1, 2);
        assert_eq!(from_file, from_cli);
        assert_eq!(from_file.n_trials(), (1 + 2 + 2 + 2) * 2);

        std::fs::write(&file, "base = \"../experiments/x.toml\"\nrepeat = 2\nseeds = [1]\nmodes = \"oat\"\n")
            .expect("write");
        let e = build(&request(&file, &[], &[], None), &[]).expect_err("unknown key");
        assert!(e.to_string().contains("unknown field `modes`"), "{e}");
        std::fs::write(&file, "base = \"../experiments/nope.toml\"\nrepeat = 2\nseeds = [1]\n").expect("write");
        let text = problems(build(&request(&file, &[], &[], None), &[]).expect_err("invalid")).join("\n");
        assert!(text.contains("no such file") && text.contains("relative to that file"), "{text}");
        assert!(text.contains("`repeat` and `seeds` both set"), "{text}");
    }

    #[test]
    fn paths_normalise_lexically() {
        assert_eq!(normalise(Path::new("ablations/../experiments/./x.toml")), Path::new("experiments/x.toml"));
        assert_eq!(normalise(Path::new("../x.toml")), Path::new("../x.toml"));
    }
}
