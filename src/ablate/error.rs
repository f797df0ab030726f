//! Errors of `helico ablate`: every one is a problem with what the user gave (exit code 2), and
//! each names the axis, file or ablation concerned and what to do. I/O failures travel as
//! `anyhow` errors with context instead (exit code 1).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use thiserror::Error;

use crate::config::error::{Problem, ProblemKind};
use crate::config::source::Source;

/// One problem with the sweep, tied to the axis (and value) that causes it when one does.
#[derive(Debug, Clone, Serialize)]
pub struct AxisProblem {
    /// The axis concerned; `None` for the base experiment or the command line as a whole.
    pub axis: Option<String>,
    /// The axis value that causes it, when only some values do.
    pub value: Option<String>,
    /// Where the axis was written, when not on the command line (`ablations/x.toml [[axis]] 2`).
    pub at: Option<String>,
    /// The config engine's kind of problem, when it found it.
    pub kind: Option<ProblemKind>,
    /// The experiment key concerned.
    pub key: Option<String>,
    pub message: String,
    pub help: Vec<String>,
    /// How many trials have this problem.
    pub trials: usize,
}

impl AxisProblem {
    pub fn plain(axis: Option<String>, message: String, help: &str) -> AxisProblem {
        let help = if help.is_empty() { Vec::new() } else { vec![help.to_owned()] };
        AxisProblem { axis, value: None, at: None, kind: None, key: None, message, help, trials: 0 }
    }

    pub fn at(mut self, at: String) -> AxisProblem {
        self.at = Some(at);
        self
    }

    /// A config engine problem of one trial: `origin` is the axis whose override caused it
    /// (`None` when it comes from the base experiment), `value` that axis's value.
    pub fn from_config(p: &Problem, origin: Option<(String, String)>) -> AxisProblem {
        let (axis, value) = origin.unzip();
        let mut help = p.help.clone();
        // A problem set by the experiment file or the environment is not the axis's doing.
        if let Some(s @ (Source::File { .. } | Source::Env { .. })) = &p.source {
            help.insert(0, format!("set at {s}"));
        }
        AxisProblem {
            axis,
            value,
            at: None,
            kind: Some(p.kind),
            key: p.key.clone(),
            message: p.message.clone(),
            help,
            trials: 1,
        }
    }
}

impl fmt::Display for AxisProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        match (&self.axis, &self.value) {
            (Some(a), Some(v)) => writeln!(f, "  --> axis `{a}` = {v}")?,
            (Some(a), None) => writeln!(f, "  --> axis `{a}`")?,
            (None, _) if self.kind.is_some() => writeln!(f, "  --> the base experiment")?,
            (None, _) => {}
        }
        if let Some(at) = &self.at {
            writeln!(f, "  --> {at}")?;
        }
        if self.trials > 1 {
            writeln!(f, "   = in {} trials", self.trials)?;
        }
        for h in &self.help {
            writeln!(f, "   = help: {h}")?;
        }
        Ok(())
    }
}

/// What is wrong with an ablation request.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AblateError {
    /// Axes that do not parse, generators that give nothing, zip groups of unequal length, keys
    /// or values the config engine rejects in some trial, data a trial cannot read.
    #[error("{}the ablation is invalid: {} problem{}", render(problems), problems.len(), plural(problems.len()))]
    Invalid { problems: Vec<AxisProblem> },

    /// An `ablations/*.toml` file that does not parse into the file form.
    #[error(
        "{path} is not an ablation file: {message}\n   = help: keys are base, mode, repeat, seeds and [[axis]] tables"
    )]
    File { path: PathBuf, message: String },

    /// More trials than anyone should launch by accident.
    #[error("the ablation has {n} trials, more than {max}: split it, or use --mode oat")]
    TooManyTrials { n: usize, max: usize },

    /// `--max-gpu-hours` below the estimate.
    #[error(
        "the trials to run are estimated at {estimate:.2} device-hours, over --max-gpu-hours {max}; drop axes or values, or raise the budget (--dry-run shows the estimate per trial)"
    )]
    OverBudget { estimate: f64, max: f64 },

    /// `--max-gpu-hours` with trials whose cost cannot be estimated.
    #[error(
        "cannot check --max-gpu-hours: no finished run on {device} has the model, window and batch of trial{} {}, so their cost is unknown; run one of them first (helico run), or drop --max-gpu-hours",
        plural(trials.len()), list(trials)
    )]
    BudgetUnknown { trials: Vec<usize>, device: String },

    /// `--resume` or `report` with an id that names no ablation.
    #[error("no ablation `{id}` under {}{}", root.display(), recent(known))]
    UnknownAblation { id: String, root: PathBuf, known: Vec<String> },

    /// An id prefix that names several ablations.
    #[error("`{id}` names several ablations: {}; give more of the id", matches.join(", "))]
    AmbiguousAblation { id: String, matches: Vec<String> },

    /// `--resume` with a spec whose hash differs from the one the ablation started with.
    #[error(
        "ablation {id} was started with another spec: {}; start a new ablation (without --resume) for the new spec",
        differences.join("; ")
    )]
    SpecChanged { id: String, differences: Vec<String> },

    /// `--resume` after the base experiment (or a file it extends) changed.
    #[error(
        "the trials of ablation {id} resolve to other configs than when it started ({}): the experiment or a file it extends changed; restore it, or start a new ablation",
        changes.join("; ")
    )]
    TrialsChanged { id: String, changes: Vec<String> },
}

fn render(problems: &[AxisProblem]) -> String {
    problems.iter().map(|p| format!("{p}\n")).collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn list(trials: &[usize]) -> String {
    let shown: Vec<String> = trials.iter().take(10).map(|t| t.to_string()).collect();
    let more = if trials.len() > 10 { format!(" and {} more", trials.len() - 10) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

fn recent(known: &[String]) -> String {
    if known.is_empty() {
        "; there are no ablations there yet".into()
    } else {
        format!("; recent ablations: {}", known.join(", "))
    }
}
