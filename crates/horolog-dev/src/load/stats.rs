//! Latency distributions: nearest-rank percentiles over a sample of durations.

use serde::Serialize;

/// A summary of a sample of durations, in seconds. Every field but `count` is absent for an
/// empty sample, so "no data" never reads as "zero delay".
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Distribution {
    /// How many values the sample has.
    pub count: usize,
    /// Median, in seconds.
    pub p50: Option<f64>,
    /// 90th percentile, in seconds.
    pub p90: Option<f64>,
    /// 99th percentile, in seconds.
    pub p99: Option<f64>,
    /// Largest value, in seconds.
    pub max: Option<f64>,
}

impl Distribution {
    /// The distribution of `seconds` (any order; NaN values are dropped).
    pub fn of(seconds: &[f64]) -> Self {
        let mut sorted: Vec<f64> = seconds.iter().copied().filter(|v| !v.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        Distribution {
            count: sorted.len(),
            p50: percentile(&sorted, 50.0),
            p90: percentile(&sorted, 90.0),
            p99: percentile(&sorted, 99.0),
            max: sorted.last().copied(),
        }
    }
}

/// The nearest-rank percentile `p` (0..=100) of an ascending sample: the smallest value with at
/// least p% of the sample at or below it. Nearest rank, not interpolation, so every reported
/// percentile is a delay that really happened.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_the_nearest_rank() {
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        let cases: [(&[f64], f64, Option<f64>); 9] = [
            (&[], 50.0, None),
            (&[7.0], 0.0, Some(7.0)),
            (&[7.0], 99.0, Some(7.0)),
            (&[1.0, 2.0], 50.0, Some(1.0)),
            (&[1.0, 2.0], 51.0, Some(2.0)),
            (&hundred, 50.0, Some(50.0)),
            (&hundred, 90.0, Some(90.0)),
            (&hundred, 99.0, Some(99.0)),
            (&hundred, 100.0, Some(100.0)),
        ];
        for (sample, p, want) in cases {
            assert_eq!(percentile(sample, p), want, "p{p} of {} values", sample.len());
        }
    }

    #[test]
    fn p99_of_a_small_sample_is_its_maximum() {
        let d = Distribution::of(&[0.1, 0.2, 5.0]);
        assert_eq!(d.p99, Some(5.0));
        assert_eq!(d.max, Some(5.0));
    }

    #[test]
    fn distribution_sorts_its_input_and_drops_nan() {
        let d = Distribution::of(&[3.0, f64::NAN, 1.0, 2.0]);
        assert_eq!(
            d,
            Distribution {
                count: 3,
                p50: Some(2.0),
                p90: Some(3.0),
                p99: Some(3.0),
                max: Some(3.0)
            }
        );
    }

    #[test]
    fn empty_sample_reports_no_values_rather_than_zero() {
        assert_eq!(Distribution::of(&[]), Distribution::default());
    }
}
