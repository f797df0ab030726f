//! `helico ls`: the runs under a runs directory, oldest first, with status, age, key metrics
//! and the overrides each was started with, filtered on config keys, status and name.
//!
//! A filter is `key OP value` with OP one of `=` (or `==`), `!=`, `<`, `<=`, `>`, `>=`; the
//! value is a TOML value as in overrides, `slot=@variant` compares a slot's variant, and the
//! ordering operators need numbers. Several filters must all hold. Keys are checked against the
//! experiment schema before any run is read, so a typo is an error, not an empty listing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::compare::{lookup, read_layers, read_metrics, read_table};
use super::diff::render::table;
use super::info::{Status, all_runs};
use crate::config::error::did_you_mean;
use crate::config::overrides;
use crate::config::schema::Schema;
use crate::exit::BadInput;

/// The comparison of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// One `key OP value` condition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Filter {
    /// `status`, `name`, or a dotted config key (`schedule.type` for `schedule=@variant`).
    pub key: String,
    pub op: Op,
    pub value: toml::Value,
}

const STATUSES: [&str; 4] = ["running", "done", "failed", "interrupted"];

impl Filter {
    /// Parses and checks a filter against the schema.
    pub fn parse(text: &str, schema: &Schema) -> Result<Filter, BadInput> {
        let Some(at) = text.find(['=', '!', '<', '>']) else {
            return Err(BadInput(format!(
                "filter `{text}` has no comparison: write key=value, key!=value, key<value, key<=value, key>value or key>=value"
            )));
        };
        let (key, rest) = (text[..at].trim(), &text[at..]);
        let (op, rhs) = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find_map(|(sym, op)| rest.strip_prefix(sym).map(|r| (op, r.trim())))
        .ok_or_else(|| BadInput(format!("filter `{text}`: `{}` is not a comparison", &rest[..1])))?;
        let (key, value) = match rhs.strip_prefix('@') {
            Some(variant) => (format!("{key}.type"), toml::Value::String(variant.to_owned())),
            None => (key.to_owned(), overrides::value(rhs)),
        };
        check_key(&key, schema).map_err(|e| BadInput(format!("filter `{text}`: {e}")))?;
        if key == "status" && !value.as_str().is_some_and(|s| STATUSES.contains(&s)) {
            return Err(BadInput(format!("filter `{text}`: status is one of {}", STATUSES.join(", "))));
        }
        let ordered = matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge);
        if ordered && number(&value).is_none() {
            return Err(BadInput(format!(
                "filter `{text}`: `<`, `<=`, `>` and `>=` compare numbers, and `{rhs}` is not one"
            )));
        }
        Ok(Filter { key, op, value })
    }

    fn needs_config(&self) -> bool {
        !matches!(self.key.as_str(), "status" | "name")
    }

    fn holds(&self, got: Option<&toml::Value>) -> bool {
        let Some(got) = got else { return self.op == Op::Ne };
        let ord = match (number(got), number(&self.value)) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => (got == &self.value).then_some(std::cmp::Ordering::Equal),
        };
        use std::cmp::Ordering::*;
        match self.op {
            Op::Eq => ord == Some(Equal),
            Op::Ne => ord != Some(Equal),
            Op::Lt => ord == Some(Less),
            Op::Le => matches!(ord, Some(Less | Equal)),
            Op::Gt => ord == Some(Greater),
            Op::Ge => matches!(ord, Some(Greater | Equal)),
        }
    }
}

fn number(v: &toml::Value) -> Option<f64> {
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
}

/// A filter key is `status`, `name`, a schema key, or `<slot>.type`.
fn check_key(key: &str, schema: &Schema) -> Result<(), String> {
    let keys = schema.all_keys();
    let slot_type = key.strip_suffix(".type").is_some_and(|slot| keys.iter().any(|k| k == slot));
    if matches!(key, "status" | "name") || slot_type || keys.iter().any(|k| k == key) {
        return Ok(());
    }
    let hint = did_you_mean(key, keys.iter().map(String::as_str).chain(["status", "name"]))
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default();
    Err(format!("`{key}` is not a key of the experiment schema{hint} (`helico schema` lists every key)"))
}

/// One run as `ls` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub id: String,
    pub dir: PathBuf,
    pub status: Status,
    /// A `running` run whose process is gone or whose heartbeat is stale.
    pub dead: bool,
    pub created: String,
    pub age_secs: Option<i64>,
    pub step: u64,
    pub steps: u64,
    /// The last value of every logged metric (`split/name`).
    pub finals: BTreeMap<String, f64>,
    /// Lowest evaluation loss and its step.
    pub best_eval_loss: Option<(f64, u64)>,
    /// Command-line overrides, `HELICO__` variables and `--set-file`s, as given.
    pub overrides: Vec<String>,
}

/// The runs that match every filter, and a warning for each run that could not be read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Listing {
    pub runs: Vec<Listed>,
    pub warnings: Vec<String>,
}

/// Lists the runs under `root` matching `filters`.
pub fn list(root: &Path, filters: &[Filter]) -> Listing {
    let mut out = Listing::default();
    let now = chrono::Utc::now();
    for (dir, info) in all_runs(root) {
        let status = info.status.to_string();
        let mut keep = true;
        for f in filters.iter().filter(|f| !f.needs_config()) {
            let got = if f.key == "status" { status.clone() } else { info.name.clone() };
            keep &= f.holds(Some(&toml::Value::String(got)));
        }
        if keep && filters.iter().any(Filter::needs_config) {
            match read_table(&dir) {
                Ok(t) => keep = filters.iter().filter(|f| f.needs_config()).all(|f| f.holds(lookup(&t, &f.key))),
                Err(e) => {
                    out.warnings.push(format!("skipped {}: {e}", info.id));
                    continue;
                }
            }
        }
        if !keep {
            continue;
        }
        let overrides = match read_layers(&dir) {
            Ok((_, layers)) => super::compare::overrides(&layers),
            Err(e) => {
                out.warnings.push(format!("{}: {e}", info.id));
                Vec::new()
            }
        };
        let records = read_metrics(&dir).unwrap_or_else(|e| {
            out.warnings.push(format!("{}: {e}", info.id));
            Vec::new()
        });
        let curves = super::compare::series(&records);
        let best_eval_loss = curves.get("eval/loss").and_then(|pts| {
            pts.iter().filter(|p| p.1.is_finite()).min_by(|a, b| a.1.total_cmp(&b.1)).map(|p| (p.1, p.0))
        });
        let age_secs =
            chrono::DateTime::parse_from_rfc3339(&info.created).ok().map(|t| (now - t.to_utc()).num_seconds());
        out.runs.push(Listed {
            id: info.id.clone(),
            dir,
            status: info.status,
            dead: info.is_dead(),
            created: info.created.clone(),
            age_secs,
            step: info.step,
            steps: info.steps,
            finals: super::compare::finals(&records),
            best_eval_loss,
            overrides,
        });
    }
    out
}

/// The listing as an aligned table.
pub fn render(listing: &Listing) -> String {
    if listing.runs.is_empty() {
        return "no runs match\n".to_owned();
    }
    let header: Vec<String> =
        ["run", "status", "age", "steps", "train loss", "eval loss", "best eval loss", "overrides"]
            .map(String::from)
            .to_vec();
    let rows: Vec<Vec<String>> = listing
        .runs
        .iter()
        .map(|r| {
            let metric = |k: &str| r.finals.get(k).map_or("—".to_owned(), |v| format!("{v:.4}"));
            let status = if r.dead { format!("{} (dead)", r.status) } else { r.status.to_string() };
            vec![
                r.id.clone(),
                status,
                r.age_secs.map_or("?".into(), age),
                format!("{}/{}", r.step, r.steps),
                metric("train/loss"),
                metric("eval/loss"),
                r.best_eval_loss.map_or("—".into(), |(v, s)| format!("{v:.4} @{s}")),
                r.overrides.join(" "),
            ]
        })
        .collect();
    table(&header, &rows)
}

/// Seconds as the largest whole unit: 45s, 12m, 5h, 3d.
pub fn age(secs: i64) -> String {
    match secs.max(0) {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_check_and_compare() {
        let schema = Schema::experiment();
        let f = Filter::parse("model.n_layers>=2", &schema).expect("filter");
        assert_eq!((f.key.as_str(), f.op, &f.value), ("model.n_layers", Op::Ge, &toml::Value::Integer(2)));
        assert!(f.holds(Some(&toml::Value::Integer(3))) && f.holds(Some(&toml::Value::Float(2.0))));
        assert!(!f.holds(Some(&toml::Value::Integer(1))) && !f.holds(None));
        let f = Filter::parse("schedule=@constant", &schema).expect("variant");
        assert_eq!(f.key, "schedule.type");
        assert!(f.holds(Some(&toml::Value::String("constant".into()))));
        assert!(Filter::parse("status!=done", &schema).expect("status").holds(Some(&"failed".into())));
        let e = Filter::parse("model.n_layer=2", &schema).expect_err("typo");
        assert!(e.0.contains("did you mean `model.n_layers`"), "{e}");
        assert!(Filter::parse("status=finished", &schema).is_err());
        assert!(Filter::parse("name>tiny", &schema).expect_err("order").0.contains("compare numbers"));
        assert!(Filter::parse("seed", &schema).expect_err("no op").0.contains("no comparison"));
    }

    #[test]
    fn ages_use_the_largest_unit() {
        assert_eq!([age(5), age(125), age(7300), age(200_000)], ["5s", "2m", "2h", "2d"]);
    }
}
