//! The numbers behind the report: quantiles, within-round ratios, and the two-mode test.
//!
//! Quantiles use linear interpolation between order statistics (Hyndman & Fan type 7, what
//! numpy and R use by default): for sorted `x[0..n]` and `p` in [0, 1], `h = (n − 1)·p` and
//! `q = x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋ + 1] − x[⌊h⌋])`. Every median, p25 and p75 in the report is
//! this one function, so a median of an even count is the mean of the middle two.

use std::collections::BTreeMap;

/// A run count share below which a cluster is an outlier group, not a mode.
pub const MODE_MIN_SHARE: f64 = 0.2;
/// Fewer runs than this in a cluster is never a mode, whatever the share: the quartiles of
/// three runs say little, and with them a unimodal sample of 8–12 runs splits "cleanly" often.
pub const MODE_MIN_RUNS: usize = 4;
/// The faster mode's median must be at least this many times the slower one's.
pub const MODE_MIN_STEP: f64 = 1.25;
/// The empty gap between the clusters must exceed this many times the wider cluster's
/// interquartile range. The IQR, not the range (max − min), because a cluster's range keeps
/// growing as runs are added while the gap between two real clusters does not, so a range rule
/// stops seeing real modes at 40 runs; in simulation this rule flagged under 1% of unimodal
/// 20-run samples (normal, uniform ±30%, exponential tail) and most two-cluster ones.
pub const MODE_GAP_OVER_IQR: f64 = 2.0;

/// The `p` quantile of `values` (any order), by linear interpolation; `None` when empty.
pub fn quantile(values: &[f64], p: f64) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile_sorted(&sorted, p)
}

fn quantile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = last as f64 * p.clamp(0.0, 1.0);
    let below = h.floor() as usize;
    let above = (below + 1).min(last);
    Some(sorted[below] + (h - below as f64) * (sorted[above] - sorted[below]))
}

/// The median of `values`; `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    quantile(values, 0.5)
}

/// Median with the interquartile range: how a set of per-round ratios is reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub p25: f64,
    pub p75: f64,
}

impl Summary {
    /// Summarises `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Summary> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Summary {
            median: quantile_sorted(&sorted, 0.5)?,
            p25: quantile_sorted(&sorted, 0.25)?,
            p75: quantile_sorted(&sorted, 0.75)?,
        })
    }
}

/// `value / reference` for every `(round, value)` whose round has a reference value.
///
/// Pairing by round is the point: a machine that is slow for a while slows every contender in
/// the rounds it covers, and a ratio taken within a round cancels that, where a ratio of two
/// medians taken over different stretches of time would not.
pub fn within_round(reference: &BTreeMap<u32, f64>, values: &[(u32, f64)]) -> Vec<f64> {
    values
        .iter()
        .filter_map(|&(round, value)| {
            let base = *reference.get(&round)?;
            (base > 0.0).then(|| value / base)
        })
        .collect()
}

/// One of two clusters of runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mode {
    pub runs: usize,
    pub median: f64,
}

/// The slower and the faster cluster of a bimodal set of runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Modes {
    pub low: Mode,
    pub high: Mode,
}

/// The rule [`modes`] applies, in words, for the report's header.
pub fn mode_rule() -> String {
    format!(
        "sort a contender's per-run throughputs, take logarithms, and split them in two where \
         the within-group sum of squares is least (exact 1-D 2-means: every split is tried). \
         The runs are bimodal when each group holds at least {:.0}% of the runs and at least \
         {MODE_MIN_RUNS} runs, the faster group's median is at least {MODE_MIN_STEP}× the \
         slower one's, and the empty gap between the groups is more than {MODE_GAP_OVER_IQR}× \
         the wider group's interquartile range (all in log space)",
        MODE_MIN_SHARE * 100.0
    )
}

/// The two modes of `values` (positive, any order) when they form two clusters by the rule of
/// [`mode_rule`]; `None` when they do not.
pub fn modes(values: &[f64]) -> Option<Modes> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| *v > 0.0).collect();
    sorted.sort_by(f64::total_cmp);
    let logs: Vec<f64> = sorted.iter().map(|v| v.ln()).collect();
    let n = logs.len();
    let least = MODE_MIN_RUNS.max((MODE_MIN_SHARE * n as f64).ceil() as usize);
    if n < 2 * least {
        return None;
    }
    // Prefix sums make each split's sum of squares O(1): Σ(x − mean)² = Σx² − (Σx)²/k.
    let mut sum = vec![0.0; n + 1];
    let mut squares = vec![0.0; n + 1];
    for (i, x) in logs.iter().enumerate() {
        sum[i + 1] = sum[i] + x;
        squares[i + 1] = squares[i] + x * x;
    }
    let sse = |from: usize, to: usize| {
        let k = (to - from) as f64;
        let s = sum[to] - sum[from];
        (squares[to] - squares[from]) - s * s / k
    };
    let split = (1..n).min_by(|&a, &b| {
        let cost = |s: usize| sse(0, s) + sse(s, n);
        cost(a).total_cmp(&cost(b))
    })?;
    let (low, high) = (&logs[..split], &logs[split..]);
    if low.len() < least || high.len() < least {
        return None;
    }
    let iqr = |group: &[f64]| Some(quantile_sorted(group, 0.75)? - quantile_sorted(group, 0.25)?);
    let gap = high[0] - low[low.len() - 1];
    let low_median = median(&sorted[..split])?;
    let high_median = median(&sorted[split..])?;
    if high_median < MODE_MIN_STEP * low_median
        || gap <= MODE_GAP_OVER_IQR * iqr(low)?.max(iqr(high)?)
    {
        return None;
    }
    Some(Modes {
        low: Mode {
            runs: low.len(),
            median: low_median,
        },
        high: Mode {
            runs: high.len(),
            median: high_median,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_linearly() {
        let values = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&values, 0.0), Some(1.0));
        assert_eq!(quantile(&values, 1.0), Some(4.0));
        assert_eq!(median(&values), Some(2.5));
        assert_eq!(quantile(&values, 0.25), Some(1.75));
        assert_eq!(quantile(&values, 0.75), Some(3.25));
        let five = [10.0, 20.0, 30.0, 40.0, 50.0];
        assert_eq!(
            Summary::of(&five),
            Some(Summary {
                median: 30.0,
                p25: 20.0,
                p75: 40.0
            })
        );
        assert_eq!(quantile(&[7.0], 0.25), Some(7.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn ratios_pair_values_with_their_own_round() {
        let reference = BTreeMap::from([(0, 2.0), (1, 5.0), (3, 4.0)]);
        // Round 2 has no reference run, so it gives no ratio.
        let values = [(0, 3.0), (1, 5.0), (2, 9.0), (3, 2.0)];
        assert_eq!(within_round(&reference, &values), vec![1.5, 1.0, 0.5]);
    }

    /// `n` values around `centre`, at most ±`spread` off and bell-shaped (the mean of three
    /// uniform draws, from a small LCG), as run-to-run timing noise is; no random crate needed.
    fn noisy(n: usize, centre: f64, spread: f64, seed: u64) -> Vec<f64> {
        let mut state = seed;
        let mut unit = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let bell = (unit() + unit() + unit()) / 3.0;
                centre * (1.0 + spread * (2.0 * bell - 1.0))
            })
            .collect()
    }

    #[test]
    fn two_clusters_are_bimodal() {
        let mut runs = noisy(9, 2100.0, 0.05, 1);
        runs.extend(noisy(11, 4900.0, 0.05, 2));
        let modes = modes(&runs).expect("two clusters");
        assert_eq!((modes.low.runs, modes.high.runs), (9, 11));
        assert!((modes.low.median / 2100.0 - 1.0).abs() < 0.05, "{modes:?}");
        assert!((modes.high.median / 4900.0 - 1.0).abs() < 0.05, "{modes:?}");
    }

    #[test]
    fn one_noisy_cluster_is_not_bimodal() {
        // Noise up to ±40% (a standard deviation near 13%): wide, but one mode.
        for seed in 0..100 {
            let runs = noisy(20, 3000.0, 0.4, seed);
            assert_eq!(modes(&runs), None, "seed {seed}: {runs:?}");
        }
        // A lone outlier is not a second mode.
        let mut outlier = noisy(19, 3000.0, 0.05, 7);
        outlier.push(9000.0);
        assert_eq!(modes(&outlier), None);
        // Two close clusters are noise, not modes.
        let mut close = noisy(10, 3000.0, 0.01, 3);
        close.extend(noisy(10, 3300.0, 0.01, 4));
        assert_eq!(modes(&close), None);
    }
}
