//! `helico ablate report ID`: the axis × metric table of an ablation. One row per combination
//! of non-seed axis values (the oat base row first), each metric as mean ± sd over the seed
//! replicas that finished, with links to their runs; written as report.md and report.csv into
//! the ablation directory. [`Report`] is the table as data, for plots.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value as Json;

use super::plan::{Setting, State, Trial};
use super::spec::Mode;
use super::store;
use crate::run::info::{RunInfo, Status, all_runs};

/// The metrics tabulated: a key of a run's summary.json and its column title.
pub const METRICS: [(&str, &str); 4] = [
    ("final_eval_loss", "eval loss"),
    ("final_eval_masked_accuracy", "masked accuracy"),
    ("final_eval_perplexity_bound", "perplexity bound"),
    ("final_train_loss", "train loss"),
];

/// An ablation's results as a table.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub id: String,
    pub experiment: PathBuf,
    pub mode: Mode,
    /// The axes that label rows, in spec order (the seed axis is averaged over, not shown).
    pub axes: Vec<String>,
    /// summary.json keys, one per metric column.
    pub metrics: Vec<String>,
    pub rows: Vec<Row>,
    /// Trials that have no result, with why.
    pub missing: Vec<Missing>,
}

/// One combination of axis values.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Axis → value; empty for the oat base row.
    pub settings: Vec<Setting>,
    /// An oat value that resolves to the base experiment itself: the base trials stand for it.
    pub is_base: bool,
    pub trials: Vec<usize>,
    /// Run ids of the trials with results (`<name>/<dir>`).
    pub runs: Vec<String>,
    /// One per metric.
    pub stats: Vec<Stat>,
}

/// Mean and sample standard deviation over the replicas that have the metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    pub mean: Option<f64>,
    /// `None` below two values.
    pub sd: Option<f64>,
    pub n: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Missing {
    pub trial: usize,
    pub axes: Vec<Setting>,
    pub state: State,
    pub error: Option<String>,
}

impl Stat {
    pub fn of(values: &[f64]) -> Stat {
        let n = values.len();
        if n == 0 {
            return Stat { mean: None, sd: None, n };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = (n > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
        Stat { mean: Some(mean), sd, n }
    }

    fn show(&self) -> String {
        match (self.mean, self.sd) {
            (Some(m), Some(sd)) => format!("{m:.4} ± {sd:.4}"),
            (Some(m), None) => format!("{m:.4}"),
            _ => "—".into(),
        }
    }
}

/// Builds the report of the ablation in `dir` from its trial list and its runs' summaries.
pub fn build(root: &Path, dir: &Path) -> anyhow::Result<Report> {
    let record = store::read_record(dir)?;
    let trials = store::read_trials(dir)?;
    let runs = all_runs(root);
    let seed_axis = record.spec.seeds.as_ref().map(|s| s.name.clone());
    let shown = |t: &Trial| -> Vec<Setting> {
        t.axes.iter().filter(|s| Some(&s.axis) != seed_axis.as_ref()).cloned().collect()
    };
    let base_key =
        trials.iter().find(|t| record.spec.mode == Mode::Oat && shown(t).is_empty()).map(|t| t.run_key.clone());

    let mut rows: Vec<Row> = Vec::new();
    let mut values: Vec<Vec<Vec<f64>>> = Vec::new();
    let mut missing = Vec::new();
    for t in &trials {
        let settings = shown(t);
        let i = match rows.iter().position(|r| r.settings == settings) {
            Some(i) => i,
            None => {
                let is_base = !settings.is_empty() && base_key.as_ref() == Some(&result_trial(&trials, t).run_key);
                rows.push(Row { settings, is_base, trials: Vec::new(), runs: Vec::new(), stats: Vec::new() });
                values.push(vec![Vec::new(); METRICS.len()]);
                rows.len() - 1
            }
        };
        rows[i].trials.push(t.index);
        match finished_run(&runs, result_trial(&trials, t)) {
            Some((run_dir, info)) => {
                let summary: Option<Json> =
                    std::fs::read(run_dir.join("summary.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
                for (m, (key, _)) in METRICS.iter().enumerate() {
                    if let Some(v) = summary.as_ref().and_then(|s| s[key].as_f64()) {
                        values[i][m].push(v);
                    }
                }
                rows[i].runs.push(info.id.clone());
            }
            None => {
                missing.push(Missing { trial: t.index, axes: t.axes.clone(), state: t.state, error: t.error.clone() })
            }
        }
    }
    for (row, vals) in rows.iter_mut().zip(&values) {
        row.stats = vals.iter().map(|v| Stat::of(v)).collect();
    }
    Ok(Report {
        id: record.id,
        experiment: record.spec.experiment.clone(),
        mode: record.spec.mode,
        axes: record.spec.axes.iter().map(|a| a.name.clone()).collect(),
        metrics: METRICS.iter().map(|(k, _)| (*k).to_owned()).collect(),
        rows,
        missing,
    })
}

/// The trial whose run holds a trial's result: itself, or the earlier twin of a duplicate.
fn result_trial<'a>(trials: &'a [Trial], t: &'a Trial) -> &'a Trial {
    t.same_as.and_then(|i| trials.get(i)).unwrap_or(t)
}

/// The completed run of a trial: the one recorded, else any completed run with its run_key
/// (a trial that was running elsewhere when the ablation ran).
fn finished_run<'a>(runs: &'a [(PathBuf, RunInfo)], t: &Trial) -> Option<&'a (PathBuf, RunInfo)> {
    let done = |r: &&(PathBuf, RunInfo)| r.1.status == Status::Done;
    t.run
        .as_ref()
        .and_then(|id| runs.iter().filter(done).find(|(_, i)| &i.id == id))
        .or_else(|| runs.iter().filter(done).find(|(_, i)| i.identity.run_key == t.run_key))
}

impl Report {
    /// The rows' first column when it is not one column per axis: oat rows name their axis.
    fn label_columns(&self) -> Vec<String> {
        match self.mode {
            Mode::Oat => vec!["axis".into(), "value".into()],
            Mode::Grid => self.axes.clone(),
        }
    }

    fn labels(&self, row: &Row) -> Vec<String> {
        match self.mode {
            Mode::Oat => match row.settings.first() {
                None => vec!["(base)".into(), String::new()],
                Some(s) => vec![s.axis.clone(), format!("{}{}", s.value, if row.is_base { " (= base)" } else { "" })],
            },
            Mode::Grid => self
                .axes
                .iter()
                .map(|a| row.settings.iter().find(|s| &s.axis == a).map(|s| s.value.clone()).unwrap_or_default())
                .collect(),
        }
    }

    /// The table as markdown; links are relative to the ablation directory.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Ablation {}\n\nBase experiment `{}`, mode {}; each cell is the mean ± sd over seed replicas; n = replicas with results.\n\n",
            self.id,
            self.experiment.display(),
            if self.mode == Mode::Oat { "one-at-a-time" } else { "grid" },
        );
        let mut header = self.label_columns();
        header.extend(METRICS.iter().map(|(_, title)| (*title).to_owned()));
        header.extend(["n".to_owned(), "runs".to_owned()]);
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(out, "|{}|", header.iter().map(|_| "---").collect::<Vec<_>>().join("|"));
        for row in &self.rows {
            let mut cells: Vec<String> = self.labels(row).iter().map(|c| escape_md(c)).collect();
            cells.extend(row.stats.iter().map(Stat::show));
            cells.push(format!("{}/{}", row.runs.len(), row.trials.len()));
            let links: Vec<String> =
                row.runs.iter().map(|id| format!("[{}](../../{id}/)", id.rsplit('/').next().unwrap_or(id))).collect();
            cells.push(links.join(" "));
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        if !self.missing.is_empty() {
            out.push_str("\nTrials without results:\n\n");
            for m in &self.missing {
                let axes = super::execute::describe(&m.axes);
                let error =
                    m.error.as_deref().and_then(|e| e.lines().next()).map(|e| format!(": {e}")).unwrap_or_default();
                let _ = writeln!(out, "- trial {} ({axes}): {}{error}", m.trial, state_name(m.state));
            }
        }
        out
    }

    /// The table as CSV: label columns, then `<metric>_mean`, `<metric>_sd` per metric, n,
    /// trials and run ids (space-separated).
    pub fn csv(&self) -> String {
        let mut header = self.label_columns();
        for (key, _) in METRICS {
            header.push(format!("{key}_mean"));
            header.push(format!("{key}_sd"));
        }
        header.extend(["n".into(), "trials".into(), "runs".into()]);
        let mut out = header.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(",") + "\n";
        for row in &self.rows {
            let mut cells = self.labels(row);
            for s in &row.stats {
                cells.push(s.mean.map(|m| m.to_string()).unwrap_or_default());
                cells.push(s.sd.map(|m| m.to_string()).unwrap_or_default());
            }
            cells.push(row.runs.len().to_string());
            cells.push(row.trials.len().to_string());
            cells.push(row.runs.join(" "));
            out.push_str(&cells.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
            out.push('\n');
        }
        out
    }

    /// Writes report.md and report.csv into the ablation directory.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        for (name, text) in [("report.md", self.markdown()), ("report.csv", self.csv())] {
            let path = dir.join(name);
            crate::atomic::write(&path, text.as_bytes())
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Pending => "not run",
        State::Failed => "failed",
        State::Interrupted => "interrupted",
        State::Elsewhere => "running elsewhere",
        State::Done | State::Skipped | State::Duplicate => "its run has no results",
    }
}

fn escape_md(text: &str) -> String {
    text.replace('|', "\\|")
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_sd() {
        let s = Stat::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.mean, Some(2.5));
        assert!((s.sd.expect("sd") - 1.290_994_448_735_805_6).abs() < 1e-12, "sqrt(5/3)");
        assert_eq!(Stat::of(&[7.0]), Stat { mean: Some(7.0), sd: None, n: 1 });
        assert_eq!(Stat::of(&[]).show(), "—");
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("0.001"), "0.001");
    }
}
