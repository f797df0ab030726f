//! Throughput benchmarks (`helico bench`): measured as METHOD.md and perf_anchors.md §5 ask
//! (warm-up, synchronised timing of ≥ 20 iterations, mean and p90, peak memory, the FLOP
//! model beside the measurement), written as JSON and markdown under `bench/results/`.

pub mod d3pm;
pub mod loader;
pub mod parse;

use serde::Serialize;

/// Mean and 90th percentile of per-iteration times, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timing {
    pub mean_secs: f64,
    pub p90_secs: f64,
}

impl Timing {
    /// p90 by the nearest-rank method (the ⌈0.9·n⌉-th smallest time).
    pub fn of(secs: &[f64]) -> Timing {
        assert!(!secs.is_empty(), "timing needs at least one iteration");
        let mut sorted = secs.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = ((0.9 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        Timing { mean_secs: secs.iter().sum::<f64>() / secs.len() as f64, p90_secs: sorted[rank - 1] }
    }
}

/// Dense bf16 peak of an H100/H200 SXM (FA3 paper App. C.1): the MFU basis of perf_anchors.md.
pub const PEAK_BF16_FLOPS: f64 = 989e12;
/// bf16 GEMM rate measured on this workplace's H100 and H200 machines (8192³, random data):
/// the practical ceiling perf_anchors.md reports against.
pub const MEASURED_BF16_GEMM_FLOPS: f64 = 790e12;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p90_is_the_nearest_rank() {
        let secs: Vec<f64> = (1..=20).map(f64::from).collect();
        let t = Timing::of(&secs);
        assert_eq!(t.p90_secs, 18.0);
        assert_eq!(t.mean_secs, 10.5);
        assert_eq!(Timing::of(&[3.0]).p90_secs, 3.0);
    }
}
