//! Leaks in steps: `+X every T`, flat between (a nightly batch that keeps a little, a cache that
//! never evicts one key per cycle). Sen's slope over such a staircase is right but its interval
//! is not: the residuals around the line are a slow deterministic sawtooth, which the
//! autocorrelation correction rightly treats as few independent blocks, so a run with two or
//! three steps never got past `inconclusive`. Here the steps themselves are the evidence: each
//! is a rise far above the block-to-block noise, none comes back down, and the rate is what
//! the steps add per unit of time, `X/T`.

use super::stats::median_in_place;
use serde::Serialize;

/// Block-to-block differences above this many robust standard deviations belong to a step.
const RUN_SIGMAS: f64 = 3.0;
/// A step is a run of such differences adding up to at least this many standard deviations.
const STEP_SIGMAS: f64 = 8.0;
/// A fall larger than this share of the typical step makes the series bounded, not a staircase.
const MAX_FALL_SHARE: f64 = 0.3;
/// A repeating pattern: steps within this factor of each other in size, and intervals between
/// them within this factor of each other (a heap expanding in halving steps at doubling
/// intervals, or a bounded level that happened to jump up twice, is not "+X every T").
const MAX_SPREAD: f64 = 2.0;
/// Steps needed: two intervals to see that the pattern repeats.
const MIN_STEPS: usize = 3;
/// Between two steps the level is flat for at least this many blocks (a fill's continuous rise
/// cut into pieces by the noise is not a staircase).
const MIN_FLAT_BLOCKS: f64 = 4.0;

/// A staircase found in a series' block envelope.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StepLeak {
    /// Steps found.
    pub steps: usize,
    /// Mean step size, in the metric's unit.
    pub mean_step: f64,
    /// Mean time between steps, seconds.
    pub mean_period_s: f64,
    /// Time of the first step, seconds.
    pub first_step_s: f64,
    /// `X/T`: mean step over mean period, unit per minute.
    pub rate_per_min: f64,
    /// What the steps after the first add per minute from the first step to the end of the
    /// span (the flat time since the last step counted against them), unit per minute.
    pub low_per_min: f64,
    /// The standardised evidence that `low_per_min` exceeds the threshold, against the noise
    /// of the flat levels.
    pub z_vs_threshold: f64,
}

/// Finds a staircase in block values `(t, y)` (ascending times, seconds) ending at `end_s`:
/// at least [`MIN_STEPS`] up-steps of at least `min_step` (and [`STEP_SIGMAS`] noise
/// deviations), sizes and intervals each within [`MAX_SPREAD`] of each other, flat for at least
/// [`MIN_FLAT_BLOCKS`] blocks between steps, and no fall of more than [`MAX_FALL_SHARE`] of a
/// step.
pub fn staircase(
    t: &[f64],
    y: &[f64],
    end_s: f64,
    min_step: f64,
    threshold_per_min: f64,
) -> Option<StepLeak> {
    let n = t.len().min(y.len());
    if n < 4 {
        return None;
    }
    let d: Vec<f64> = y[..n].windows(2).map(|w| w[1] - w[0]).collect();
    let mut tmp = d.clone();
    let mid = median_in_place(&mut tmp)?;
    let mut dev: Vec<f64> = d.iter().map(|v| (v - mid).abs()).collect();
    let sigma = 1.4826 * median_in_place(&mut dev)?;
    let run = RUN_SIGMAS * sigma;
    let big = (STEP_SIGMAS * sigma).max(min_step);
    if big <= 0.0 {
        return None;
    }
    let (mut ups, mut worst_fall) = (Vec::new(), 0.0f64);
    let mut i = 0;
    while i < d.len() {
        let up = d[i] > run;
        let down = d[i] < -run;
        if !up && !down {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut sum = 0.0;
        while j < d.len() && ((up && d[j] > run) || (down && d[j] < -run)) {
            sum += d[j];
            j += 1;
        }
        if up && sum >= big {
            ups.push(((t[i] + t[j]) / 2.0, sum));
        } else if down {
            worst_fall = worst_fall.max(-sum);
        }
        i = j;
    }
    let k = ups.len();
    if k < MIN_STEPS {
        return None;
    }
    let spread = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        lo > 0.0 && hi <= MAX_SPREAD * lo
    };
    let mut sizes: Vec<f64> = ups.iter().map(|u| u.1).collect();
    let periods: Vec<f64> = ups.windows(2).map(|w| w[1].0 - w[0].0).collect();
    if !spread(&sizes) || !spread(&periods) {
        return None;
    }
    let typical = median_in_place(&mut sizes)?;
    if worst_fall > MAX_FALL_SHARE * typical {
        return None;
    }
    let (first, last) = (ups[0].0, ups[k - 1].0);
    let block_s = (t[n - 1] - t[0]) / (n - 1) as f64;
    if end_s <= last || periods.iter().any(|p| *p < MIN_FLAT_BLOCKS * block_s) {
        return None;
    }
    let total: f64 = ups.iter().map(|u| u.1).sum();
    let mean_step = total / k as f64;
    let mean_period_s = (last - first) / (k - 1) as f64;
    let after_first: f64 = ups[1..].iter().map(|u| u.1).sum();
    let low_per_min = after_first / (end_s - first) * 60.0;
    // The rise after the first step is a difference of two flat levels, each known to about
    // the noise of one block difference.
    let noise_per_min = (sigma * std::f64::consts::SQRT_2).max(1e-12) / (end_s - first) * 60.0;
    Some(StepLeak {
        steps: k,
        mean_step,
        mean_period_s,
        first_step_s: first,
        rate_per_min: mean_step / mean_period_s * 60.0,
        low_per_min,
        z_vs_threshold: ((low_per_min - threshold_per_min) / noise_per_min).min(1e6),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stairs(every: f64, size: f64, n: usize, noise: f64) -> (Vec<f64>, Vec<f64>) {
        let t: Vec<f64> = (0..n).map(|i| i as f64 * 60.0).collect();
        let y = t
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let wiggle = noise * (((i * 7919) % 13) as f64 / 6.0 - 1.0);
                100.0 + size * ((v + 30.0) / every).floor() + wiggle
            })
            .collect();
        (t, y)
    }

    #[test]
    fn repeating_steps_are_a_leak_at_x_over_t() {
        // +30 every 100 min for 6 h, 1-minute blocks: 0.3/min.
        let (t, y) = stairs(6000.0, 30.0, 360, 0.2);
        let s = staircase(&t, &y, t[t.len() - 1], 1.0, 0.1).expect("a staircase");
        assert_eq!(s.steps, 3);
        assert!((s.rate_per_min - 0.3).abs() < 0.02, "{s:?}");
        assert!(
            s.low_per_min > 0.1 && s.low_per_min <= s.rate_per_min,
            "{s:?}"
        );
        assert!(s.z_vs_threshold > 7.0, "{s:?}");
    }

    #[test]
    fn one_step_halving_steps_and_up_and_down_are_not_a_staircase() {
        // A single step then flat.
        let (t, y) = stairs(1e9, 30.0, 360, 0.2);
        let y: Vec<f64> = y
            .iter()
            .enumerate()
            .map(|(i, v)| v + if i > 100 { 30.0 } else { 0.0 })
            .collect();
        assert!(staircase(&t, &y, t[t.len() - 1], 1.0, 0.1).is_none());
        // Heap expansion: each step half the one before.
        let y: Vec<f64> = t
            .iter()
            .map(|v| {
                let mut h = 0.0;
                for (at, size) in [(600.0, 40.0), (3000.0, 20.0), (9000.0, 10.0)] {
                    if *v >= at {
                        h += size;
                    }
                }
                100.0 + h
            })
            .collect();
        assert!(staircase(&t, &y, t[t.len() - 1], 1.0, 0.1).is_none());
        // Steps that come back down (a bounded cache filled and flushed).
        let y: Vec<f64> = t
            .iter()
            .map(|v| {
                100.0
                    + if (v / 3000.0).floor() as i64 % 2 == 1 {
                        25.0
                    } else {
                        0.0
                    }
            })
            .collect();
        assert!(staircase(&t, &y, t[t.len() - 1], 1.0, 0.1).is_none());
    }
}
