//! Turns raw samples into the few hundred block summaries the trend statistics run on:
//! time blocks (robust to gaps and to any sample count), a median envelope for ordinary
//! series and a floor (lower) envelope for garbage-collector sawtooth, whose troughs — not its
//! peaks — show what is really retained.

use super::stats::quantile_in_place;
use serde::Serialize;

/// Which summary of each block the trend was fitted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeKind {
    /// Median of each block: ordinary noisy series.
    Median,
    /// Minimum of each block (the lower envelope): sawtooth series.
    Floor,
}

/// What the sawtooth detector found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sawtooth {
    /// Number of sharp drops (collections) seen in the judged span.
    pub drops: usize,
    /// Mean time between drops, seconds.
    pub period_s: f64,
    /// Median size of a drop, in the metric's unit.
    pub amplitude: f64,
}

/// Detects a garbage-collector sawtooth: slow rises cut by sharp drops. A drop is a step down
/// larger than both 6× the median absolute step and 20 % of the series' 5–95 % range; the
/// series is a sawtooth when at least 3 such drops occur and sharp rises of the same size are
/// at most a third as many (a symmetric pattern is blips or noise, not collections).
pub fn detect_sawtooth(t: &[f64], y: &[f64]) -> Option<Sawtooth> {
    if y.len() < 8 {
        return None;
    }
    let diffs: Vec<f64> = y.windows(2).map(|w| w[1] - w[0]).collect();
    let mut abs: Vec<f64> = diffs.iter().map(|d| d.abs()).collect();
    let med_step = quantile_in_place(&mut abs, 0.5)?;
    let mut vals = y.to_vec();
    let p5 = quantile_in_place(&mut vals, 0.05)?;
    let p95 = quantile_in_place(&mut vals, 0.95)?;
    let big = (6.0 * med_step).max(0.2 * (p95 - p5));
    if big <= 0.0 {
        return None;
    }
    let mut drops = Vec::new();
    let mut rises = 0usize;
    for d in &diffs {
        if *d < -big {
            drops.push(-*d);
        } else if *d > big {
            rises += 1;
        }
    }
    if drops.len() < 3 || rises * 3 > drops.len() {
        return None;
    }
    let span = t[t.len() - 1] - t[0];
    let n_drops = drops.len();
    let amplitude = quantile_in_place(&mut drops, 0.5)?;
    Some(Sawtooth {
        drops: n_drops,
        period_s: span / n_drops as f64,
        amplitude,
    })
}

/// Block summaries of a series: one point per non-empty time block.
#[derive(Debug, Clone, Default)]
pub struct Blocks {
    /// Block length, seconds.
    pub block_s: f64,
    /// Mean sample time of each non-empty block, seconds.
    pub t: Vec<f64>,
    /// The envelope value of each block, in the metric's unit.
    pub y: Vec<f64>,
}

/// Splits `(t, y)` into consecutive blocks of `block_s` seconds from `t[0]` and summarises each
/// by its median or minimum. Empty blocks (gaps) are skipped. O(n).
pub fn blocks(t: &[f64], y: &[f64], block_s: f64, kind: EnvelopeKind) -> Blocks {
    let mut out = Blocks {
        block_s,
        ..Blocks::default()
    };
    if t.is_empty() || block_s <= 0.0 {
        return out;
    }
    let t0 = t[0];
    let mut start = 0;
    let mut buf = Vec::new();
    while start < t.len() {
        let idx = ((t[start] - t0) / block_s).floor();
        let mut end = start + 1;
        while end < t.len() && ((t[end] - t0) / block_s).floor() == idx {
            end += 1;
        }
        let tm = t[start..end].iter().sum::<f64>() / (end - start) as f64;
        let v = match kind {
            EnvelopeKind::Floor => y[start..end].iter().copied().fold(f64::INFINITY, f64::min),
            EnvelopeKind::Median => {
                buf.clear();
                buf.extend_from_slice(&y[start..end]);
                quantile_in_place(&mut buf, 0.5).unwrap_or(f64::NAN)
            }
        };
        out.t.push(tm);
        out.y.push(v);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_skip_gaps_and_summarise() {
        let t = [0.0, 1.0, 2.0, 3.0, 10.0, 11.0];
        let y = [1.0, 5.0, 3.0, 2.0, 7.0, 9.0];
        let b = blocks(&t, &y, 2.0, EnvelopeKind::Floor);
        assert_eq!(b.t, vec![0.5, 2.5, 10.5]);
        assert_eq!(b.y, vec![1.0, 2.0, 7.0]);
        let b = blocks(&t, &y, 2.0, EnvelopeKind::Median);
        assert_eq!(b.y, vec![3.0, 2.5, 8.0]);
    }

    #[test]
    fn sawtooth_found_and_blips_ignored() {
        // Rise 1/s for 29 s, drop by 29: a collector every 30 s.
        let t: Vec<f64> = (0..600).map(f64::from).collect();
        let y: Vec<f64> = t.iter().map(|v| 100.0 + (v % 30.0)).collect();
        let s = detect_sawtooth(&t, &y).expect("a sawtooth");
        assert_eq!(s.drops, 19);
        assert!((s.amplitude - 29.0).abs() < 1e-9);
        // Symmetric blips (a connection that comes and goes) are not a sawtooth.
        let y: Vec<f64> = t
            .iter()
            .map(|v| if (*v as i64) % 50 == 7 { 13.0 } else { 9.0 })
            .collect();
        assert!(detect_sawtooth(&t, &y).is_none());
        // A staircase (a step leak) is not a sawtooth either.
        let y: Vec<f64> = t.iter().map(|v| (v / 60.0).floor()).collect();
        assert!(detect_sawtooth(&t, &y).is_none());
    }
}
