//! Configuration problems: each names the key, where it was set, what is wrong and what to do.
//! Resolution collects all of them before failing.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::source::Source;

/// What kind of problem; stable names for `--json` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// A file could not be read.
    Io,
    /// A TOML file does not parse.
    Syntax,
    /// A command-line or environment override does not parse.
    Override,
    /// `extends` names a missing file, or files extend each other in a cycle.
    Extends,
    /// A key the schema does not have.
    UnknownKey,
    /// A slot set to a variant the registry does not have.
    UnknownVariant,
    /// A value of the wrong type.
    Type,
    /// A value outside its allowed range or pattern.
    Range,
    /// Values that are fine alone but not together.
    Constraint,
    /// `+=` on a key that is not an array, or `~` on an unknown key.
    Operation,
}

/// One problem with the configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The dotted key concerned, when there is one.
    pub key: Option<String>,
    /// Where the offending value came from.
    pub source: Option<Source>,
    pub message: String,
    /// Suggestions, most useful first ("did you mean …", the command that shows more).
    pub help: Vec<String>,
    /// The source line, for file sources.
    #[serde(skip)]
    pub snippet: Option<String>,
}

impl Problem {
    pub fn new(kind: ProblemKind, key: Option<String>, source: Option<Source>, message: impl Into<String>) -> Problem {
        Problem { kind, key, source, message: message.into(), help: Vec::new(), snippet: None }
    }

    pub fn help(mut self, help: impl Into<String>) -> Problem {
        self.help.push(help.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        if let Some(source) = &self.source {
            writeln!(f, "  --> {source}")?;
            if let (Some(line), Source::File { line: n, col, .. }) = (&self.snippet, source) {
                let width = n.to_string().len();
                writeln!(f, "{:width$} |", "")?;
                writeln!(f, "{n} | {line}")?;
                writeln!(f, "{:width$} | {:>col$}", "", "^", col = col)?;
            }
        }
        for h in &self.help {
            writeln!(f, "   = help: {h}")?;
        }
        Ok(())
    }
}

/// Every problem found while resolving an experiment.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Invalid {
    pub problems: Vec<Problem>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        let n = self.problems.len();
        write!(f, "the experiment is invalid: {n} problem{}", if n == 1 { "" } else { "s" })
    }
}

/// Attaches source lines to problems from file sources.
#[derive(Default)]
pub struct Snippets {
    texts: HashMap<PathBuf, String>,
}

impl Snippets {
    pub fn add(&mut self, path: PathBuf, text: String) {
        self.texts.insert(path, text);
    }

    pub fn attach(&self, mut p: Problem) -> Problem {
        if let Some(Source::File { path, line, .. }) = &p.source {
            p.snippet = self.texts.get(path).and_then(|t| t.lines().nth(line - 1)).map(str::to_owned);
        }
        p
    }
}

/// Names other frameworks use for helico's keys, so `learning_rate` finds `lr`.
const ALIASES: &[(&str, &str)] = &[
    ("learning_rate", "lr"),
    ("num_layers", "n_layers"),
    ("num_heads", "n_heads"),
    ("hidden_size", "d_model"),
    ("d_hidden", "d_model"),
    ("max_steps", "steps"),
    ("num_steps", "steps"),
    ("warmup", "warmup_steps"),
    ("grad_clip", "clip_grad_norm"),
    ("max_grad_norm", "clip_grad_norm"),
    ("gradient_accumulation_steps", "grad_accum"),
    ("seq_len", "window"),
    ("max_len", "window"),
];

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    if let Some(alias) =
        ALIASES.iter().find(|(from, _)| *from == word).and_then(|(_, to)| candidates.iter().find(|c| *c == to))
    {
        return Some(alias);
    }
    // A candidate that contains the word (`cosine` in `warmup_cosine`) is as good as a near miss.
    let score = |c: &str| {
        let contains = word.len() >= 3 && (c.contains(word) || word.contains(c));
        strsim::jaro_winkler(word, c).max(if contains { 0.85 } else { 0.0 })
    };
    candidates
        .into_iter()
        .map(|c| (score(c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_prefer_the_nearest_plausible_key() {
        assert_eq!(did_you_mean("n_layer", ["n_heads", "n_layers", "d_model"]), Some("n_layers"));
        assert_eq!(did_you_mean("stpes", ["steps", "seed"]), Some("steps"));
        assert_eq!(did_you_mean("zzz", ["steps", "seed"]), None);
        assert_eq!(did_you_mean("cosine", ["constant", "warmup_cosine", "warmup_linear"]), Some("warmup_cosine"));
        assert_eq!(did_you_mean("learning_rate", ["betas", "lr", "eps"]), Some("lr"));
    }
}
