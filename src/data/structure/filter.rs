//! Training-set filters on whole structures (AF3 supplement §2.5.4), each failure a typed
//! reason so that preprocessing can record why every rejected entry was left out.

use std::fmt;

use chrono::NaiveDate;

use super::Structure;

/// Which structures to keep. `Default` holds AF3's training values where AF3 gives one.
#[derive(Debug, Clone, PartialEq)]
pub struct Filters {
    /// Å; structures without a resolution (NMR, models) fail too. AF3 §2.5.4: 9 Å.
    pub max_resolution: Option<f32>,
    /// Keep entries released on or before this day. AF3 §2.5.4 trains on entries released
    /// before 2021-09-30; `None` by default so that recent test data is not silently dropped.
    pub released_by: Option<NaiveDate>,
    /// Keep entries released on or after this day (evaluation sets use the cutoff from below).
    pub released_from: Option<NaiveDate>,
    /// Tokens after tokenization; `None` keeps everything (AF3 crops instead).
    pub max_tokens: Option<usize>,
    /// Require at least one polymer chain with a resolved atom (AF3 §2.5.4; Protenix
    /// `no_polymer_remain`).
    pub require_polymer: bool,
}

/// AF3 supplement §2.5.4: "resolution of 9 Å or less".
pub const AF3_MAX_RESOLUTION: f32 = 9.0;

impl Default for Filters {
    fn default() -> Filters {
        Filters {
            max_resolution: Some(AF3_MAX_RESOLUTION),
            released_by: None,
            released_from: None,
            max_tokens: None,
            require_polymer: true,
        }
    }
}

/// Why a structure was left out.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// Worse than the limit, or no resolution at all (`got: None`).
    Resolution {
        got: Option<f32>,
        max: f32,
    },
    /// Released after `released_by`, or no release date (`got: None`).
    ReleasedAfter {
        got: Option<NaiveDate>,
        cutoff: NaiveDate,
    },
    /// Released before `released_from`, or no release date (`got: None`).
    ReleasedBefore {
        got: Option<NaiveDate>,
        cutoff: NaiveDate,
    },
    TooManyTokens {
        got: usize,
        max: usize,
    },
    /// No polymer chain has a resolved atom.
    NoPolymer,
}

impl Rejection {
    /// A short label for summaries ("resolution").
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::Resolution { .. } => "resolution",
            Rejection::ReleasedAfter { .. } => "released after cutoff",
            Rejection::ReleasedBefore { .. } => "released before cutoff",
            Rejection::TooManyTokens { .. } => "too many tokens",
            Rejection::NoPolymer => "no polymer",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Resolution { got: Some(got), max } => write!(f, "resolution {got} Å is worse than {max} Å"),
            Rejection::Resolution { got: None, max } => write!(f, "no resolution reported (limit {max} Å)"),
            Rejection::ReleasedAfter { got: Some(got), cutoff } => write!(f, "released {got}, after {cutoff}"),
            Rejection::ReleasedBefore { got: Some(got), cutoff } => write!(f, "released {got}, before {cutoff}"),
            Rejection::ReleasedAfter { got: None, cutoff } | Rejection::ReleasedBefore { got: None, cutoff } => {
                write!(f, "no release date (cutoff {cutoff})")
            }
            Rejection::TooManyTokens { got, max } => write!(f, "{got} tokens, more than {max}"),
            Rejection::NoPolymer => write!(f, "no polymer chain with a resolved atom"),
        }
    }
}

impl Filters {
    /// Every reason to reject `structure` with `n_tokens` tokens; empty means keep it.
    pub fn check(&self, structure: &Structure, n_tokens: usize) -> Vec<Rejection> {
        let mut out = Vec::new();
        let meta = &structure.metadata;
        if let Some(max) = self.max_resolution
            && meta.resolution.is_none_or(|r| r > max)
        {
            out.push(Rejection::Resolution { got: meta.resolution, max });
        }
        if let Some(cutoff) = self.released_by
            && meta.release_date.is_none_or(|d| d > cutoff)
        {
            out.push(Rejection::ReleasedAfter { got: meta.release_date, cutoff });
        }
        if let Some(cutoff) = self.released_from
            && meta.release_date.is_none_or(|d| d < cutoff)
        {
            out.push(Rejection::ReleasedBefore { got: meta.release_date, cutoff });
        }
        if let Some(max) = self.max_tokens
            && n_tokens > max
        {
            out.push(Rejection::TooManyTokens { got: n_tokens, max });
        }
        if self.require_polymer && structure.resolved_polymer_chains() == 0 {
            out.push(Rejection::NoPolymer);
        }
        out
    }
}
