//! The metrics part of `helico diff`: per metric and run the final value, the best value with
//! its step, the value at the last step every run logged, deltas against the baseline, and,
//! over seed replicas, mean ± sd with a verdict on whether a delta exceeds the seed noise.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::Options;
use crate::config::schema::Schema;
use crate::run::compare::{Replicas, RunView, replicas, series};

/// The noise rule as the output states it.
pub const NOISE_RULE: &str = "a delta exceeds seed noise when |Δ of seed means| > 2 × pooled sd; seed replicas are finished runs under the runs directory whose semantic config differs only in `seed`";

#[derive(Debug, Clone, Serialize)]
pub struct MetricsDiff {
    pub noise_rule: &'static str,
    /// Each run's seed replicas, in run order.
    pub replicas: Vec<Replicas>,
    pub rows: Vec<MetricRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricRow {
    /// `split/name`, e.g. `eval/loss`.
    pub metric: String,
    pub higher_is_better: bool,
    /// The last step every run logged this metric at.
    pub matched_step: Option<u64>,
    pub cells: Vec<MetricCell>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MetricCell {
    #[serde(rename = "final")]
    pub last: Option<Point>,
    pub best: Option<Point>,
    pub at_matched: Option<f64>,
    /// Against the baseline; `None` in the baseline's own cell.
    pub delta_final: Option<Delta>,
    pub delta_matched: Option<Delta>,
    /// Over this run's seed replicas (final values).
    pub seeds: Option<SeedStats>,
    /// Against the baseline's seed replicas.
    pub noise: Option<Noise>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Point {
    pub step: u64,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Delta {
    pub abs: f64,
    /// Relative to the baseline; `None` when the baseline is 0.
    pub rel: Option<f64>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct SeedStats {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1); `None` for one seed.
    pub sd: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Noise {
    Beyond {
        delta: f64,
        pooled_sd: f64,
    },
    Within {
        delta: f64,
        pooled_sd: f64,
    },
    /// One run per side: no estimate of the seed noise.
    NoReplicas,
}

/// One run's curve of one metric, for `--plot`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub run: String,
    pub metric: String,
    pub points: Vec<(u64, f64)>,
}

/// Whether larger values are better: accuracies and throughputs; losses, perplexities and
/// norms are better smaller.
pub fn higher_is_better(metric: &str) -> bool {
    metric.contains("accuracy") || metric.ends_with("_per_s")
}

/// The metrics shown by default: the training loss and every evaluation metric.
fn shown(metric: &str, all: bool) -> bool {
    all || metric == "train/loss" || metric.starts_with("eval/")
}

pub fn metrics_diff(views: &[RunView], opts: &Options, schema: &Schema) -> MetricsDiff {
    let curves: Vec<BTreeMap<String, Vec<(u64, f64)>>> = views.iter().map(|v| series(&v.metrics)).collect();
    let reps: Vec<Replicas> = views.iter().map(|v| replicas(&opts.root, v, schema)).collect();
    let names: BTreeSet<&String> = curves.iter().flat_map(|c| c.keys()).filter(|k| shown(k, opts.all)).collect();
    let mut rows = Vec::new();
    for name in names {
        let higher = higher_is_better(name);
        let pts: Vec<&[(u64, f64)]> = curves.iter().map(|c| c.get(name).map_or(&[][..], Vec::as_slice)).collect();
        let common: Option<BTreeSet<u64>> =
            pts.iter().map(|p| p.iter().map(|x| x.0).collect::<BTreeSet<u64>>()).reduce(|a, b| &a & &b);
        let matched_step = common.and_then(|c| c.last().copied());
        let value_at = |p: &[(u64, f64)], s: u64| p.iter().find(|x| x.0 == s).map(|x| x.1);
        let stats: Vec<Option<SeedStats>> = reps.iter().map(|r| seed_stats(r, name)).collect();
        let any_replicas = stats.iter().flatten().any(|s| s.n >= 2);
        let mut cells: Vec<MetricCell> = Vec::new();
        for (i, p) in pts.iter().enumerate() {
            let best = p.iter().filter(|x| x.1.is_finite()).copied().reduce(|a, b| {
                let better = if higher { b.1 > a.1 } else { b.1 < a.1 };
                if better { b } else { a }
            });
            let mut cell = MetricCell {
                last: p.last().map(|x| Point { step: x.0, value: x.1 }),
                best: best.map(|x| Point { step: x.0, value: x.1 }),
                at_matched: matched_step.and_then(|s| value_at(p, s)),
                seeds: stats[i].filter(|_| any_replicas),
                ..MetricCell::default()
            };
            if i > 0 {
                let base = &cells[0];
                cell.delta_final = delta(base.last.map(|x| x.value), cell.last.map(|x| x.value));
                cell.delta_matched = delta(base.at_matched, cell.at_matched);
                cell.noise = any_replicas.then(|| noise(stats[0], stats[i]));
            }
            cells.push(cell);
        }
        rows.push(MetricRow { metric: name.clone(), higher_is_better: higher, matched_step, cells });
    }
    MetricsDiff { noise_rule: NOISE_RULE, replicas: reps, rows }
}

fn delta(base: Option<f64>, other: Option<f64>) -> Option<Delta> {
    let (a, b) = (base?, other?);
    Some(Delta { abs: b - a, rel: (a != 0.0).then(|| (b - a) / a.abs()) })
}

/// Mean and sample sd of a metric's final values over a run's replicas.
fn seed_stats(r: &Replicas, metric: &str) -> Option<SeedStats> {
    let xs: Vec<f64> = r.finals.iter().filter_map(|f| f.get(metric).copied()).collect();
    if xs.is_empty() {
        return None;
    }
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let sd = (n >= 2).then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
    Some(SeedStats { n, mean, sd })
}

/// The verdict of [`NOISE_RULE`]: the pooled sd weighs each group's variance by its degrees of
/// freedom, so a side with one run adds none and the other side's sd stands alone.
pub fn noise(base: Option<SeedStats>, other: Option<SeedStats>) -> Noise {
    let (Some(a), Some(b)) = (base, other) else { return Noise::NoReplicas };
    let dof = a.n + b.n - 2;
    if dof == 0 {
        return Noise::NoReplicas;
    }
    let ss = |s: SeedStats| s.sd.map_or(0.0, |sd| sd * sd * (s.n - 1) as f64);
    let pooled_sd = ((ss(a) + ss(b)) / dof as f64).sqrt();
    let delta = b.mean - a.mean;
    if delta.abs() > 2.0 * pooled_sd { Noise::Beyond { delta, pooled_sd } } else { Noise::Within { delta, pooled_sd } }
}

/// The curves `--plot` overlays: every shown metric of every run.
pub fn plot_series(views: &[RunView], all: bool) -> Vec<Series> {
    let mut out = Vec::new();
    for v in views {
        for (metric, points) in series(&v.metrics) {
            if shown(&metric, all) {
                out.push(Series { run: v.info.id.clone(), metric, points });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(xs: &[f64]) -> Option<SeedStats> {
        let r = Replicas {
            runs: xs.iter().map(|_| String::new()).collect(),
            seeds: (0..xs.len() as u64).collect(),
            finals: xs.iter().map(|x| BTreeMap::from([("eval/loss".to_owned(), *x)])).collect(),
        };
        seed_stats(&r, "eval/loss")
    }

    #[test]
    fn seed_statistics_and_the_noise_verdict_follow_the_stated_rule() {
        let a = stats(&[1.0, 1.2]).expect("stats");
        assert!((a.mean - 1.1).abs() < 1e-12);
        // sample sd of {1.0, 1.2} = 0.1414…
        assert!((a.sd.expect("sd") - 0.02f64.sqrt()).abs() < 1e-12);
        // Pooled sd of two groups of two with equal sd is that sd; 2 × 0.1414 = 0.283.
        let Noise::Beyond { delta, pooled_sd } = noise(Some(a), stats(&[1.5, 1.7])) else { panic!("beyond") };
        assert!((delta - 0.5).abs() < 1e-12 && (pooled_sd - 0.02f64.sqrt()).abs() < 1e-12);
        assert!(matches!(noise(Some(a), stats(&[1.2, 1.4])), Noise::Within { .. }), "Δ 0.2 < 0.283");
        assert_eq!(noise(stats(&[1.0]), stats(&[2.0])), Noise::NoReplicas);
        // One side with one run: the other side's sd alone (dof 1).
        let Noise::Within { pooled_sd, .. } = noise(Some(a), stats(&[1.3])) else { panic!("within") };
        assert!((pooled_sd - 0.02f64.sqrt()).abs() < 1e-12);
    }
}
