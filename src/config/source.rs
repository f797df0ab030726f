//! Where a configuration value came from: a file position, an environment variable, a
//! command-line argument, or the registry default.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The role a TOML file plays among the layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    /// Named in an `extends` list.
    Extends,
    /// The experiment file itself.
    Experiment,
    /// Passed with `--set-file`.
    SetFile,
}

/// The origin of one setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// The registry default of the key.
    Default,
    /// Implied by the inputs rather than written (the experiment name from its file name).
    Implied { reason: String },
    /// A key in a TOML file; line and column are 1-based.
    File { path: PathBuf, line: usize, col: usize, role: FileRole },
    /// A `HELICO__A__B` environment variable.
    Env { var: String },
    /// The N-th (1-based) override on the command line.
    Cli { index: usize, arg: String },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::Implied { reason } => write!(f, "implied by {reason}"),
            Source::File { path, line, col, role } => {
                let prefix = if *role == FileRole::SetFile { "--set-file " } else { "" };
                write!(f, "{prefix}{}:{line}:{col}", path.display())
            }
            Source::Env { var } => write!(f, "env {var}"),
            Source::Cli { index, arg } => write!(f, "cli argument {index} `{arg}`"),
        }
    }
}

impl Source {
    /// Orders sources as the layers apply them, so problems read in input order.
    pub fn order(&self) -> (u8, String, usize, usize) {
        match self {
            Source::Default => (0, String::new(), 0, 0),
            Source::Implied { .. } => (1, String::new(), 0, 0),
            Source::File { path, line, col, role } => (2 + *role as u8, path.display().to_string(), *line, *col),
            Source::Env { var } => (5, var.clone(), 0, 0),
            Source::Cli { index, .. } => (6, String::new(), *index, 0),
        }
    }
}

/// Line and column (1-based, in characters) of a byte offset into `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let text = "a = 1\n[b]\nc = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, text.find('c').expect("c")), (3, 1));
        assert_eq!(line_col(text, text.find('2').expect("2")), (3, 5));
    }
}
