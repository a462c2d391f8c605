//! Labelled synthetic series for calibrating the detector: each family mimics a shape real
//! soak tests produce (GC sawtooth, cache warm-up, step leaks, slow leaks in autocorrelated
//! noise, FD blips, sampling gaps), with or without a leak of a known rate. Seeded, so tests and
//! the calibration bench (`cargo bench --bench calibrate`) are repeatable.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

/// A family of series shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Flat level plus white noise (MiB).
    White,
    /// AR(1) noise with a correlation time of 1–5 minutes and 2–20 MiB marginal spread: slow
    /// wander that a naive slope mistakes for a trend.
    Ar1Heavy,
    /// Garbage-collector sawtooth: period 15–120 s, 10–80 MiB of garbage per cycle.
    Sawtooth,
    /// Cache warm-up: exponential approach to a plateau (time constant 2–15 min), then flat.
    Warmup,
    /// Allocator steps: occasional jumps up and down around a level; the leak adds a step
    /// every few minutes.
    Steps,
    /// FD count: a base with connections that come and go (blips); the leak keeps one open
    /// at the leak rate.
    FdBlips,
    /// White noise with sampling gaps (the sentinel paused, a host suspended): about one pause
    /// of 1–20 minutes an hour.
    Gaps,
    /// A bounded collector sawtooth slower than the check interval: period 3–15 minutes,
    /// 20–120 MiB per cycle (a JVM old generation, a Go heap at a low GOGC pace).
    SlowSawtooth,
    /// JVM-like heap expansion: the committed heap grows in 3–6 steps whose size halves each
    /// time and whose spacing doubles (first after 2–10 minutes), then stays: bounded growth
    /// that settles.
    HeapSteps,
    /// A leak that repeats in steps: +X every T, X = rate·T, flat between (a nightly batch, a
    /// cache that never evicts one key per cycle); T is 1/18 to 1/2.4 of the series (20–150
    /// minutes in a standard run), so every profile sees at least two steps. Clean: flat with
    /// noise.
    RepeatingSteps,
    /// A leak that pauses: grows at the rate for the first 30 % of the series (2 hours of a
    /// standard run), then flat. Clean: flat with noise.
    PausedLeak,
}

impl Family {
    /// Every family, in report order.
    pub const ALL: [Family; 11] = [
        Family::White,
        Family::Ar1Heavy,
        Family::Sawtooth,
        Family::Warmup,
        Family::Steps,
        Family::FdBlips,
        Family::Gaps,
        Family::SlowSawtooth,
        Family::HeapSteps,
        Family::RepeatingSteps,
        Family::PausedLeak,
    ];

    /// Families whose leak hides in a way that made older rules pass it: a run on them must
    /// fail or end inconclusive, never pass.
    pub const FALSE_PASS: [Family; 2] = [Family::RepeatingSteps, Family::PausedLeak];

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Family::White => "white-noise",
            Family::Ar1Heavy => "ar1-heavy-noise",
            Family::Sawtooth => "gc-sawtooth",
            Family::Warmup => "warmup-plateau",
            Family::Steps => "step-leak/steps",
            Family::FdBlips => "fd-blips",
            Family::Gaps => "gaps",
            Family::SlowSawtooth => "slow-sawtooth",
            Family::HeapSteps => "heap-expansion",
            Family::RepeatingSteps => "repeating-steps",
            Family::PausedLeak => "paused-leak",
        }
    }

    /// The metric's smallest step (1 for counts).
    pub fn quantum(self) -> f64 {
        if self == Family::FdBlips { 1.0 } else { 0.0 }
    }
}

/// How long a recording a replayed run of `family` needs: warm-up and duration, and for the
/// family with sampling gaps half as long again, since unwatched time does not count toward the
/// clean streak (a live run goes on until the streak reaches the duration).
pub fn recording_len(family: Family, warmup_s: f64, duration_s: f64) -> f64 {
    let extra = if family == Family::Gaps { 0.5 } else { 0.0 };
    warmup_s + (1.0 + extra) * duration_s
}

/// One generated series.
#[derive(Debug, Clone)]
pub struct Series {
    /// Sample times, seconds from 0.
    pub t: Vec<f64>,
    /// Values (MiB for memory families, a count for FDs).
    pub y: Vec<f64>,
}

/// Generates `duration_s` seconds sampled every `dt_s` seconds of `family`, with a sustained
/// leak of `leak_per_min` units per minute added (0 for a clean series).
pub fn generate(
    family: Family,
    leak_per_min: f64,
    duration_s: f64,
    dt_s: f64,
    seed: u64,
) -> Series {
    let mut rng = StdRng::seed_from_u64(seed ^ (family as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let n = (duration_s / dt_s).floor() as usize + 1;
    let mut t = Vec::with_capacity(n);
    let mut y = Vec::with_capacity(n);
    let gauss = |rng: &mut StdRng| -> f64 { rng.sample(StandardNormal) };
    let base = 50.0 + 200.0 * rng.random::<f64>();
    let leak = |ts: f64| leak_per_min * ts / 60.0;
    match family {
        Family::White => {
            let sigma = 0.2 + 4.0 * rng.random::<f64>();
            for i in 0..n {
                let ts = i as f64 * dt_s;
                t.push(ts);
                y.push(base + leak(ts) + sigma * gauss(&mut rng));
            }
        }
        Family::Ar1Heavy => {
            let tau = 60.0 + 240.0 * rng.random::<f64>();
            let phi: f64 = (-dt_s / tau).exp();
            let spread = 2.0 + 18.0 * rng.random::<f64>();
            let innov = spread * (1.0 - phi * phi).sqrt();
            let mut e = spread * gauss(&mut rng);
            for i in 0..n {
                let ts = i as f64 * dt_s;
                e = phi * e + innov * gauss(&mut rng);
                t.push(ts);
                y.push(base + leak(ts) + e);
            }
        }
        Family::Sawtooth => {
            let period = 15.0 + 105.0 * rng.random::<f64>();
            let amp = 10.0 + 70.0 * rng.random::<f64>();
            let mut phase = rng.random::<f64>() * period;
            let mut this_period = period;
            let mut last = 0.0;
            for i in 0..n {
                let ts = i as f64 * dt_s;
                phase += ts - last;
                last = ts;
                if phase >= this_period {
                    phase -= this_period;
                    // Collections are not perfectly regular.
                    this_period = period * (0.7 + 0.6 * rng.random::<f64>());
                }
                let garbage = amp * (phase / this_period).min(1.0);
                t.push(ts);
                y.push(base + leak(ts) + garbage + 0.3 * gauss(&mut rng));
            }
        }
        Family::Warmup => {
            let tau = 120.0 + 780.0 * rng.random::<f64>();
            let amp = 20.0 + 80.0 * rng.random::<f64>();
            let sigma = 0.1 + 1.0 * rng.random::<f64>();
            for i in 0..n {
                let ts = i as f64 * dt_s;
                t.push(ts);
                y.push(base + amp * (1.0 - (-ts / tau).exp()) + leak(ts) + sigma * gauss(&mut rng));
            }
        }
        Family::Steps => {
            // Level jumps by ±0.5–4 MiB at random moments (mean-reverting: bounded), and a leak
            // arrives as steps every 2–10 minutes of leak_per_min·interval each.
            let every = 120.0 + 480.0 * rng.random::<f64>();
            let jump_rate = 1.0 / (300.0 + 900.0 * rng.random::<f64>());
            let mut level = 0.0f64;
            let mut leaked = 0.0;
            let mut next_step = every * rng.random::<f64>();
            for i in 0..n {
                let ts = i as f64 * dt_s;
                if rng.random::<f64>() < jump_rate * dt_s {
                    let size = 0.5 + 3.5 * rng.random::<f64>();
                    // Drift back towards the base level.
                    level += if level > 0.0 { -size } else { size };
                }
                while ts >= next_step {
                    leaked += leak_per_min * every / 60.0;
                    next_step += every;
                }
                t.push(ts);
                y.push(base + level + leaked + 0.05 * gauss(&mut rng));
            }
        }
        Family::FdBlips => {
            // Short-lived connections: each second a burst may open 1–4 FDs for 1–20 s.
            let base = (5.0 + 40.0 * rng.random::<f64>()).round();
            let burst_p = 0.02 + 0.2 * rng.random::<f64>();
            let mut open: Vec<f64> = Vec::new();
            let mut leaked = 0.0;
            let mut acc = 0.0;
            for i in 0..n {
                let ts = i as f64 * dt_s;
                open.retain(|until| *until > ts);
                if rng.random::<f64>() < burst_p {
                    let k = rng.random_range(1..=4);
                    for _ in 0..k {
                        open.push(ts + 1.0 + 19.0 * rng.random::<f64>());
                    }
                }
                acc += leak_per_min * dt_s / 60.0;
                while acc >= 1.0 {
                    leaked += 1.0;
                    acc -= 1.0;
                }
                t.push(ts);
                y.push(base + open.len() as f64 + leaked);
            }
        }
        Family::Gaps => {
            let sigma = 0.2 + 3.0 * rng.random::<f64>();
            let mut ts = 0.0;
            while ts <= duration_s {
                // About one pause of 1–20 minutes an hour, whatever the sampling interval.
                if rng.random::<f64>() < dt_s / 3600.0 {
                    ts += 60.0 + 1140.0 * rng.random::<f64>();
                    continue;
                }
                t.push(ts);
                y.push(base + leak(ts) + sigma * gauss(&mut rng));
                ts += dt_s;
            }
        }
        Family::SlowSawtooth => {
            let period = 180.0 + 720.0 * rng.random::<f64>();
            let amp = 20.0 + 100.0 * rng.random::<f64>();
            let sigma = 0.1 + 0.5 * rng.random::<f64>();
            let phase0 = rng.random::<f64>() * period;
            for i in 0..n {
                let ts = i as f64 * dt_s;
                let phase = ((ts + phase0) % period) / period;
                t.push(ts);
                y.push(base + leak(ts) + amp * phase + sigma * gauss(&mut rng));
            }
        }
        Family::HeapSteps => {
            let first = 120.0 + 480.0 * rng.random::<f64>();
            let size0 = 10.0 + 60.0 * rng.random::<f64>();
            let steps = rng.random_range(3..=6);
            let sigma = 0.05 + 0.5 * rng.random::<f64>();
            let mut at = Vec::with_capacity(steps);
            let (mut when, mut size) = (first, size0);
            for _ in 0..steps {
                at.push((when, size));
                when += first * 2f64.powi(at.len() as i32);
                size /= 2.0;
            }
            for i in 0..n {
                let ts = i as f64 * dt_s;
                let heap: f64 = at.iter().filter(|(w, _)| ts >= *w).map(|(_, s)| s).sum();
                t.push(ts);
                y.push(base + heap + leak(ts) + sigma * gauss(&mut rng));
            }
        }
        Family::RepeatingSteps => {
            // 2.4–18 steps over the series (20–150 min in a standard run's 6.5 h).
            let every =
                duration_s / 18.0 + (duration_s / 2.4 - duration_s / 18.0) * rng.random::<f64>();
            let first = every * rng.random::<f64>();
            let sigma = 0.1 + 1.0 * rng.random::<f64>();
            for i in 0..n {
                let ts = i as f64 * dt_s;
                let k = if ts >= first {
                    ((ts - first) / every).floor() + 1.0
                } else {
                    0.0
                };
                t.push(ts);
                y.push(base + k * leak_per_min * every / 60.0 + sigma * gauss(&mut rng));
            }
        }
        Family::PausedLeak => {
            let sigma = 0.1 + 2.0 * rng.random::<f64>();
            // Two hours into a standard run's 6.5 h: 30 % of the series.
            let pause_at = 0.3 * duration_s;
            for i in 0..n {
                let ts = i as f64 * dt_s;
                t.push(ts);
                y.push(base + leak(ts.min(pause_at)) + sigma * gauss(&mut rng));
            }
        }
    }
    Series { t, y }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_repeatable_and_sorted() {
        for f in Family::ALL {
            let a = generate(f, 0.5, 3600.0, 5.0, 7);
            let b = generate(f, 0.5, 3600.0, 5.0, 7);
            assert_eq!(a.y, b.y, "{}", f.name());
            assert!(a.t.windows(2).all(|w| w[1] > w[0]), "{}", f.name());
            assert!(a.t.len() > 100);
        }
    }
}
