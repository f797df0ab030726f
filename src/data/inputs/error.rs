//! The one error type of `data/inputs/`, and [`Problem`]: one thing wrong with an input,
//! with where (file, line and column of the offending value, or the `--sequences` entry),
//! which field, what is wrong and what to do. Content problems are all reported at once.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::data::DataError;

/// Everything that can go wrong reading an inference input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The input file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// A file whose name says no format helico reads as an input.
    #[error(
        "{path}: unknown input format; expected .yaml or .yml (Boltz), .json (AlphaFold 3 or Protenix) or \
         .cif, .mmcif, .bcif, optionally gzipped (mmCIF)"
    )]
    UnknownFormat { path: PathBuf },

    /// An mmCIF/BinaryCIF input that does not parse or lacks a required category.
    #[error(transparent)]
    Cif(#[from] DataError),

    /// The content is wrong: every problem found, in file order.
    #[error("{}", render(.0))]
    Invalid(Vec<Problem>),
}

/// One thing wrong with an input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The input file, or `--sequences`.
    pub file: String,
    /// 1-based line of the offending value, when the format has lines.
    pub line: Option<u64>,
    /// 1-based column (in characters) of the offending value.
    pub column: Option<u64>,
    /// The field, as a path (`sequences[1].protein.modifications[0].ptmPosition`), a CIF
    /// category and row, or a `--sequences` entry; empty for the document as a whole.
    pub field: String,
    /// What is wrong, quoting the offending value.
    pub message: String,
    /// What to do about it; empty when the message says it.
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": ")?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.message)?;
        if !self.fix.is_empty() {
            write!(f, "; {}", self.fix)?;
        }
        Ok(())
    }
}

fn render(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(Problem::to_string).collect();
    let count = match problems.len() {
        1 => String::new(),
        n => format!("{n} problems:\n"),
    };
    format!("{count}{}", lines.join("\n"))
}
