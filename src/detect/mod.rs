//! The leak detector: a pure function from timestamped samples of one metric to a verdict
//! (`leak` / `clean` / `inconclusive`) with the growth rate per minute, its confidence interval
//! and the evidence behind it. No I/O, no clock: live runs, `analyze`, reports and the fleet scan
//! all call [`judge`] with values.
//!
//! How a series is judged:
//! 1. Drop the warm-up; split the rest into time blocks (about [`TARGET_BLOCKS`], longer than
//!    twice the collector period when the series is a sawtooth) and summarise each block by its
//!    median, or by its minimum for a sawtooth (the floor is what a leak lifts).
//! 2. Fit Sen's slope to the block summaries; bound it with the Mann–Kendall interval whose
//!    variance is inflated for autocorrelation (Hamed–Rao). Samples seconds apart are far from
//!    independent; blocks plus the correction keep the interval honest (see the calibration
//!    figures in the README, produced by `cargo bench --bench calibrate`).
//! 3. `leak` when the lower bound exceeds the threshold (and, for counts, the fitted rise spans at
//!    least [`MIN_RISE_QUANTA`] units); `clean` when the upper bound is within it; else
//!    `inconclusive`.
//! 4. Bounded growth: when the recent part of the span (≥ `plateau_fraction`) is by itself
//!    proven clean, growth has stopped — judge that part. Growth that slows down significantly
//!    (second half's interval wholly below the first half's) is judged on the second half.

pub mod envelope;
pub mod stats;
pub mod steps;
pub mod synth;

use envelope::{EnvelopeKind, Sawtooth, blocks, detect_sawtooth};
use serde::Serialize;

/// Number of blocks aimed for: enough for the rank statistics, few enough for O(m²) pairs.
pub const TARGET_BLOCKS: usize = 120;
/// Growth counts as settling when the later half of the span grows at less than this share of
/// the earlier half's rate (and the two intervals are apart): an exponential approach with time
/// constant τ gives `exp(−span/2τ)`, 0.51 for a 20-minute span and τ = 15 min, while a
/// sustained leak gives 1.
pub const SETTLING_RATIO: f64 = 2.0 / 3.0;
/// Settled growth slows all along: the earlier half of a fill's growth has its later quarter
/// under this share of its first quarter's rate (see `head_settled`).
pub const SLOWING_QUARTER_RATIO: f64 = 0.9;
/// A `clean` verdict needs the last blocks to sit where the rest of the span does: a rise of
/// the level in the last few blocks larger than this many robust standard deviations of the
/// blocks (and than the threshold allows over the span) makes it `inconclusive`.
pub const LATE_RISE_SIGMAS: f64 = 3.0;
/// Fewer blocks than this and nothing is decided.
pub const MIN_BLOCKS: usize = 10;
/// For integer-valued metrics, a leak must have grown by at least this many units over the
/// judged span: one new socket or thread is not yet evidence of a leak.
pub const MIN_RISE_QUANTA: f64 = 3.0;
/// For memory, a leak must have grown by at least this many MiB over the judged span: 256
/// pages, well above RSS's 4 KiB granularity and the allocator's arena and page-cache jitter
/// of a few hundred KiB, as [`MIN_RISE_QUANTA`] is for counts. At the default threshold
/// (0.1 MiB/min) it is reached in 10 minutes, less than the shortest span a run may fail on.
pub const MIN_MEMORY_RISE_MIB: f64 = 1.0;

/// The verdict on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Proven: sustained growth is within the threshold.
    Clean,
    /// Not enough evidence either way yet.
    Inconclusive,
    /// Confident that sustained growth exceeds the threshold.
    Leak,
}

impl Verdict {
    /// The word used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Leak => "leak",
            Verdict::Clean => "clean",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    /// Overall verdict of several metrics: leak if any leaks, clean if all are clean.
    pub fn combine(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        let mut any = false;
        let mut all_clean = true;
        let mut leak = false;
        for v in verdicts {
            any = true;
            leak |= v == Verdict::Leak;
            all_clean &= v == Verdict::Clean;
        }
        if leak {
            Verdict::Leak
        } else if any && all_clean {
            Verdict::Clean
        } else {
            Verdict::Inconclusive
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the detector is asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Largest acceptable sustained growth, in the metric's unit per minute.
    pub threshold_per_min: f64,
    /// Seconds from the first sample that are warm-up and not judged.
    pub warmup_s: f64,
    /// Two-sided confidence of the interval (0.95 by default).
    pub confidence: f64,
    /// Share of the judged span that must be flat at the end for growth to count as bounded.
    pub plateau_fraction: f64,
    /// Smallest step the metric can take (1 for counts such as FDs; 0 for continuous values).
    pub quantum: f64,
    /// Smallest total rise over the judged span, in the metric's unit, that may be a `leak`
    /// (0 = none); for memory [`MIN_MEMORY_RISE_MIB`].
    pub min_rise: f64,
}

impl Params {
    /// Defaults for a threshold: 95 %, no warm-up, plateau 30 %, continuous metric.
    pub fn new(threshold_per_min: f64) -> Self {
        Params {
            threshold_per_min,
            warmup_s: 0.0,
            confidence: 0.95,
            plateau_fraction: 0.3,
            quantum: 0.0,
            min_rise: 0.0,
        }
    }
}

/// Why the verdict is what it is, and what the report can show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// Start of the span the verdict rests on, seconds (same clock as the input).
    pub judged_from_s: f64,
    /// End of that span, seconds.
    pub judged_to_s: f64,
    /// Raw samples inside that span.
    pub samples: usize,
    /// Envelope the trend was fitted to.
    pub envelope: EnvelopeKind,
    /// Block length, seconds.
    pub block_s: f64,
    /// Non-empty blocks fitted.
    pub blocks: usize,
    /// Effective number of independent blocks after the autocorrelation correction.
    pub effective_blocks: f64,
    /// Mann–Kendall variance inflation applied (1 = none).
    pub autocorrelation_inflation: f64,
    /// The sawtooth found, when one was.
    pub sawtooth: Option<Sawtooth>,
    /// Start of the flat final part, seconds, when growth was found to have stopped.
    pub plateau_from_s: Option<f64>,
    /// True when growth slowed significantly and only the later half was judged.
    pub decelerating: bool,
    /// Smallest leak rate (unit/min) this data would flag with ~97.5 % power.
    pub min_detectable_per_min: Option<f64>,
    /// Rough extra time (seconds) the run needs to decide, while inconclusive.
    pub more_time_needed_s: Option<f64>,
    /// One-sided standardised evidence that the growth exceeds the threshold (a Kendall-type
    /// z of the pairwise slopes against the threshold, autocorrelation-corrected). The verdict
    /// is `leak` at confidence `c` when it is ≥ `z_{(1+c)/2}`; the run's check gate asks for more
    /// early in a run (see `gate`).
    pub z_vs_threshold: Option<f64>,
    /// For a `leak`: the growth over the stretch just before the judged span (see
    /// [`GrowthBefore`]), when the warm-up had enough data.
    pub growth_before: Option<GrowthBefore>,
    /// The staircase found when the growth came in repeating steps (`+X every T`).
    pub step_leak: Option<steps::StepLeak>,
    /// The block summaries `(t seconds, value)` the trend was fitted to (for charts).
    #[serde(skip)]
    pub envelope_points: Vec<(f64, f64)>,
}

/// The growth over the stretch just before the judged span (inside the warm-up), as long as
/// the judged span: the run-level rule lets a check fail before its minimum span only when a
/// leak was already growing there at the same pace.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GrowthBefore {
    /// Start of the stretch, seconds (it ends where the judged span starts).
    pub from_s: f64,
    /// Its growth, unit per minute.
    pub slope_per_min: f64,
    /// Lower bound of its interval, unit per minute.
    pub ci_low: f64,
    /// Upper bound of its interval, unit per minute.
    pub ci_high: f64,
    /// The net change per minute over this stretch and the judged span together (medians of
    /// the first and last tenth).
    pub net_per_min: f64,
}

impl GrowthBefore {
    /// Whether `j` (a `leak`) continues this growth at the same pace: it was itself above the
    /// threshold (lower bound), and the judged rate is within 2/3–3/2 of it, the two intervals
    /// overlapping, and the net change over both at least 2/3 of the faster. A fill's tail
    /// (slower now), a step after a flat stretch (faster now) or a collector's ramps cut by a
    /// drop (the net change far below the ramps' slope) is not steady.
    pub fn steady(&self, j: &Judgement) -> bool {
        let (a, b) = (j.slope_per_min, self.slope_per_min);
        self.ci_low > j.threshold_per_min
            && b > 0.0
            && a >= SETTLING_RATIO * b
            && a * SETTLING_RATIO <= b
            && j.ci_low <= self.ci_high
            && self.ci_low <= j.ci_high
            && self.net_per_min >= SETTLING_RATIO * a.max(b)
    }
}

/// The detector's answer for one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judgement {
    /// leak / clean / inconclusive.
    pub verdict: Verdict,
    /// Estimated sustained growth, unit per minute.
    pub slope_per_min: f64,
    /// Lower bound of the interval, unit per minute (very negative when unbounded).
    pub ci_low: f64,
    /// Upper bound of the interval, unit per minute (very large when unbounded).
    pub ci_high: f64,
    /// The threshold judged against, unit per minute.
    pub threshold_per_min: f64,
    /// Confidence of the interval.
    pub confidence: f64,
    /// One sentence for people.
    pub reason: String,
    /// Supporting detail.
    pub evidence: Evidence,
}

impl Judgement {
    fn undecided(p: &Params, reason: String, from: f64, to: f64, samples: usize) -> Self {
        Judgement {
            verdict: Verdict::Inconclusive,
            slope_per_min: 0.0,
            ci_low: f64::MIN,
            ci_high: f64::MAX,
            threshold_per_min: p.threshold_per_min,
            confidence: p.confidence,
            reason,
            evidence: Evidence {
                judged_from_s: from,
                judged_to_s: to,
                samples,
                envelope: EnvelopeKind::Median,
                block_s: 0.0,
                blocks: 0,
                effective_blocks: 0.0,
                autocorrelation_inflation: 1.0,
                sawtooth: None,
                plateau_from_s: None,
                decelerating: false,
                min_detectable_per_min: None,
                more_time_needed_s: None,
                z_vs_threshold: None,
                growth_before: None,
                step_leak: None,
                envelope_points: Vec::new(),
            },
        }
    }

    /// Whether the interval is bounded on both sides.
    pub fn bounded(&self) -> bool {
        self.ci_low > f64::MIN && self.ci_high < f64::MAX
    }
}

/// Judges one metric. `t` are sample times in seconds (ascending), `y` the values in the unit the
/// threshold is expressed in (MiB for memory). Non-finite values are ignored.
pub fn judge(t: &[f64], y: &[f64], p: &Params) -> Judgement {
    let mut j = judge_span(t, y, p);
    if j.verdict == Verdict::Leak {
        j.evidence.growth_before = growth_before(t, y, p, &j);
    }
    j
}

/// The growth over the stretch just before the judged span, as long as the judged span (at
/// least half as long) and inside the warm-up: whether a leak was already growing at the same
/// pace before the span started, or the span sees the tail of faster growth (a fill, a
/// warm-up that overran) or the ramp of a collector cycle whose drop fell before it.
fn growth_before(t: &[f64], y: &[f64], p: &Params, j: &Judgement) -> Option<GrowthBefore> {
    let (from, to) = (j.evidence.judged_from_s, j.evidence.judged_to_s);
    let len = to - from;
    let n = t.len().min(y.len());
    let first = t[..n].iter().copied().find(|v| v.is_finite())?;
    let start = (from - len).max(first);
    if from - start < 0.5 * len || len <= 0.0 {
        return None;
    }
    // The whole stretch, before and judged; the part before `from` is judged on its own.
    let (st, sy): (Vec<f64>, Vec<f64>) = t[..n]
        .iter()
        .zip(&y[..n])
        .filter(|(a, b)| a.is_finite() && b.is_finite() && **a >= start && **a <= to)
        .map(|(a, b)| (*a, *b))
        .unzip();
    let k = st.partition_point(|v| *v < from);
    let q = Params {
        warmup_s: 0.0,
        ..*p
    };
    let b = judge_segment(&st[..k], &sy[..k], &q);
    // The net change over the whole stretch, from the medians of its first and last tenth: a
    // drop inside (a collector cycle) takes back what Sen's slope, robust to a single drop,
    // still reports.
    let tenth = (to - start) / 10.0;
    let mut head: Vec<f64> = (st.iter().zip(&sy))
        .filter(|(a, _)| **a < start + tenth)
        .map(|(_, v)| *v)
        .collect();
    let mut tail: Vec<f64> = (st.iter().zip(&sy))
        .filter(|(a, _)| **a > to - tenth)
        .map(|(_, v)| *v)
        .collect();
    let net = stats::median_in_place(&mut tail)? - stats::median_in_place(&mut head)?;
    b.bounded().then_some(GrowthBefore {
        from_s: start,
        slope_per_min: b.slope_per_min,
        ci_low: b.ci_low,
        ci_high: b.ci_high,
        net_per_min: net / (0.9 * (to - start)) * 60.0,
    })
}

/// Judges the span after warm-up (see [`judge`]).
fn judge_span(t: &[f64], y: &[f64], p: &Params) -> Judgement {
    let n = t.len().min(y.len());
    let (tt, yy): (Vec<f64>, Vec<f64>) = t[..n]
        .iter()
        .zip(&y[..n])
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(a, b)| (*a, *b))
        .unzip();
    if tt.is_empty() {
        return Judgement::undecided(p, "no samples".into(), 0.0, 0.0, 0);
    }
    let start = tt[0] + p.warmup_s.max(0.0);
    let first = tt.partition_point(|v| *v < start);
    let (tt, yy) = (&tt[first..], &yy[first..]);
    if tt.len() < MIN_BLOCKS {
        let (from, to) = (start, tt.last().copied().unwrap_or(start));
        return Judgement::undecided(
            p,
            format!(
                "only {} after warm-up; at least {MIN_BLOCKS} needed",
                plural(tt.len(), "sample")
            ),
            from,
            to,
            tt.len(),
        );
    }
    let full = judge_segment(tt, yy, p);
    if full.verdict != Verdict::Leak {
        if let Some(j) = step_leak(&full, tt[tt.len() - 1], p) {
            return j;
        }
    }
    if full.verdict == Verdict::Clean {
        // The whole span's rate is within the threshold, but that must not hide a leak that
        // ran for a while and then stopped (a rate averaged over a long flat stretch).
        return paused_leak(tt, yy, p, &full).unwrap_or(full);
    }
    // Bounded growth: the longest recent part (≥ plateau_fraction of the span) that is by itself
    // proven clean. Only a few candidate lengths, so the search costs little confidence.
    let span = tt[tt.len() - 1] - tt[0];
    let mut fracs = [0.7, 0.5, p.plateau_fraction];
    fracs.sort_by(|a, b| b.total_cmp(a));
    for frac in fracs {
        if frac < p.plateau_fraction || frac >= 1.0 {
            continue;
        }
        let from = tt[tt.len() - 1] - frac * span;
        let k = tt.partition_point(|v| *v < from);
        if tt.len() - k < 3 * MIN_BLOCKS || k < MIN_BLOCKS {
            continue;
        }
        let tail = judge_segment(&tt[k..], &yy[k..], p);
        // Growth that stopped: the part before the plateau rose. A flat stretch after a drop
        // (a jumpy, bounded series caught in a quiet phase) is no proof of anything.
        if tail.verdict != Verdict::Clean {
            continue;
        }
        let head = judge_segment(&tt[..k], &yy[..k], p);
        if head.slope_per_min > 0.0 {
            // The whole judged span must support `clean`, not only its tail: growth that
            // settled (its rate fell off before the plateau — a cache fill, a warm-up that
            // overran) is bounded; growth that went on at a steady rate and then stopped is a
            // leak that paused (or a leak in steps), so the verdict is `inconclusive` and the
            // run cannot pass on it. Judged on the head's halves: settling when the later half
            // grew at less than half the rate of the earlier one.
            // Settled growth may pass only when the flat part is at least half the span: a
            // warm-up that overran is over early, while a leak in steps whose previous step
            // fell in the warm-up shows one step and a shorter flat stretch after it.
            let settled = frac >= 0.5 && head_settled(&tt[..k], &yy[..k], p);
            let mut j = tail;
            j.evidence.plateau_from_s = Some(tt[k]);
            if settled {
                j.reason = format!(
                    "growth stopped: flat for the last {} ({:.0} % of the span) after settling growth; {}",
                    human_secs(tt[tt.len() - 1] - tt[k]),
                    frac * 100.0,
                    j.reason
                );
            } else {
                let rise = head.slope_per_min * (tt[k] - tt[0]) / 60.0;
                j.verdict = Verdict::Inconclusive;
                j.ci_high = j.ci_high.max(head.ci_high);
                j.reason = format!(
                    "grew {rise:.3} at a steady {:.3}/min until {}, then flat for {}: a leak that paused is not proof of none",
                    head.slope_per_min,
                    human_secs(tt[k]),
                    human_secs(tt[tt.len() - 1] - tt[k]),
                );
            }
            return j;
        }
    }
    if full.verdict == Verdict::Leak {
        if let Some((first, second)) = settling(tt, yy, p) {
            // Settling growth (a cache fill's tail, V8 old space, heap expansion) is not yet a
            // leak: `inconclusive` while it settles. A leak beneath a fill (d11) is caught once
            // the fill's tail no longer dominates the earlier half: the halves then grow alike.
            // (Judging the later half alone when it "looks steady" was tried and removed: on
            // warm-up tails it failed 5 % of clean standard runs.)
            let mut j = full;
            j.verdict = Verdict::Inconclusive;
            j.evidence.decelerating = true;
            j.reason = format!(
                "growth slowing: {:.3} → {:.3}/min (first and second half of {}); not a leak while it settles",
                first.slope_per_min,
                second.slope_per_min,
                human_secs(span)
            );
            return j;
        }
    }
    full
}

/// A `leak` in repeating steps (see [`steps`]) over the blocks `full` was fitted to, when the
/// steps add more than the threshold per minute and the rise is more than the minimum.
fn step_leak(full: &Judgement, end_s: f64, p: &Params) -> Option<Judgement> {
    if full.evidence.envelope != EnvelopeKind::Median {
        return None;
    }
    let (bt, by): (Vec<f64>, Vec<f64>) = full.evidence.envelope_points.iter().copied().unzip();
    let min_step = p.min_rise.max(MIN_RISE_QUANTA * p.quantum);
    let st = steps::staircase(&bt, &by, end_s, min_step, p.threshold_per_min)?;
    if st.low_per_min <= p.threshold_per_min {
        return None;
    }
    let mut j = full.clone();
    j.verdict = Verdict::Leak;
    j.slope_per_min = st.rate_per_min;
    j.ci_low = st.low_per_min;
    j.ci_high = j.ci_high.max(st.rate_per_min);
    j.evidence.z_vs_threshold = Some(st.z_vs_threshold);
    j.evidence.step_leak = Some(st);
    j.reason = format!(
        "growing in steps: +{:.3} every {} ({} steps since {}), {:.3}/min (≥ {:.3} counting the flat time since), above {}/min",
        st.mean_step,
        human_secs(st.mean_period_s),
        st.steps,
        human_secs(st.first_step_s),
        st.rate_per_min,
        st.low_per_min,
        p.threshold_per_min
    );
    Some(j)
}

/// `(t, y)` split at the middle of its time span, each half judged with 80 % intervals: the
/// slowing tests only ever keep a verdict from `leak` or `clean` (a check that waits), so they
/// may be liberal; at 95 % an exponential tail with τ = 10–15 min judged over 15 minutes was
/// rarely told apart (16 % of clean warm-up runs failed). Returns the split index too.
fn halves80(t: &[f64], y: &[f64], p: &Params) -> (usize, Judgement, Judgement) {
    let p80 = Params {
        confidence: p.confidence.min(0.8),
        ..*p
    };
    let mid = t.partition_point(|v| *v < t[0] + (t[t.len() - 1] - t[0]) / 2.0);
    (
        mid,
        judge_segment(&t[..mid], &y[..mid], &p80),
        judge_segment(&t[mid..], &y[mid..], &p80),
    )
}

/// The two halves of `(t, y)` when growth is slowing: the later half's interval wholly below
/// the earlier half's (statistically apart) and its rate under [`SETTLING_RATIO`] of it.
fn settling(t: &[f64], y: &[f64], p: &Params) -> Option<(Judgement, Judgement)> {
    if t.len() < 2 * MIN_BLOCKS {
        return None;
    }
    let (_, first, second) = halves80(t, y, p);
    (first.bounded()
        && second.bounded()
        && second.ci_high < first.ci_low
        && second.slope_per_min < SETTLING_RATIO * first.slope_per_min)
        .then_some((first, second))
}

/// Whether the growth over `(t, y)` settled: its later half rose at less than
/// [`SETTLING_RATIO`] of the rate of its earlier half, their 80 % intervals apart (and the
/// earlier half rose at all), and
/// the earlier half was itself slowing (its later quarter under [`SLOWING_QUARTER_RATIO`] of
/// its first, their 80 % intervals apart). A fill slows all along (an exponential approach whose halves differ by 2/3 has
/// quarters that differ by √(2/3) ≈ 0.82); a leak that ran at a steady rate and then stopped
/// has halves that differ (the stop falls in the later one) but a steady earlier half.
fn head_settled(t: &[f64], y: &[f64], p: &Params) -> bool {
    if t.len() < 2 * MIN_BLOCKS {
        return true;
    }
    // Apart, not merely different estimates.
    let (mid, first, second) = halves80(t, y, p);
    let (a, b) = (first.slope_per_min, second.slope_per_min);
    if !(a > 0.0 && b < SETTLING_RATIO * a && second.ci_high < first.ci_low) {
        return false;
    }
    if mid < 2 * MIN_BLOCKS {
        return true;
    }
    let (_, q1, q2) = halves80(&t[..mid], &y[..mid], p);
    q1.slope_per_min > 0.0
        && q2.slope_per_min < SLOWING_QUARTER_RATIO * q1.slope_per_min
        && q2.ci_high < q1.ci_low
}

/// A `clean` verdict over the whole span re-examined for a leak that paused: when an earlier
/// part (the span before its last 70, 50 or 30 %) was by itself a `leak` whose growth had not
/// settled, the verdict is `inconclusive` and says so — a run cannot pass on a leak that
/// stopped ("grew 60 MiB at a steady 0.5/min until 2h 10m, then flat for 3h 50m").
fn paused_leak(t: &[f64], y: &[f64], p: &Params, full: &Judgement) -> Option<Judgement> {
    let span = t[t.len() - 1] - t[0];
    for frac in [0.3, 0.5, 0.7] {
        let k = t.partition_point(|v| *v < t[t.len() - 1] - frac * span);
        if k < 2 * MIN_BLOCKS || t.len() - k < MIN_BLOCKS {
            continue;
        }
        let head = judge_segment(&t[..k], &y[..k], p);
        if head.verdict != Verdict::Leak || head_settled(&t[..k], &y[..k], p) {
            continue;
        }
        let mut j = full.clone();
        let rise = head.slope_per_min * (t[k] - t[0]) / 60.0;
        j.verdict = Verdict::Inconclusive;
        j.ci_high = j.ci_high.max(head.ci_high);
        j.evidence.plateau_from_s = Some(t[k]);
        j.reason = format!(
            "grew {rise:.3} at a steady {:.3}/min until {}, then flat for {}: a leak that paused is not proof of none",
            head.slope_per_min,
            human_secs(t[k]),
            human_secs(t[t.len() - 1] - t[k]),
        );
        return Some(j);
    }
    None
}

/// Judges one contiguous span with no warm-up or plateau logic.
fn judge_segment(t: &[f64], y: &[f64], p: &Params) -> Judgement {
    let n = t.len();
    let (from, to) = (
        t.first().copied().unwrap_or(0.0),
        t.last().copied().unwrap_or(0.0),
    );
    if n < MIN_BLOCKS {
        return Judgement::undecided(p, format!("only {}", plural(n, "sample")), from, to, n);
    }
    let span = to - from;
    let sawtooth = detect_sawtooth(t, y);
    let mut dts: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    let typical_dt = stats::median_in_place(&mut dts).unwrap_or(0.0);
    let mut block_s = (span / TARGET_BLOCKS as f64).max(typical_dt);
    let kind = match sawtooth {
        Some(s) => {
            block_s = block_s.max(2.0 * s.period_s);
            EnvelopeKind::Floor
        }
        None => EnvelopeKind::Median,
    };
    // A hair over the nominal length so a regular sampling grid does not split on rounding.
    let b = blocks(t, y, block_s * (1.0 + 1e-9), kind);
    let mut j = Judgement::undecided(p, String::new(), from, to, n);
    j.evidence.envelope = kind;
    j.evidence.block_s = block_s;
    j.evidence.blocks = b.t.len();
    j.evidence.sawtooth = sawtooth;
    j.evidence.envelope_points = b.t.iter().copied().zip(b.y.iter().copied()).collect();
    if b.t.len() < MIN_BLOCKS {
        j.reason = format!(
            "{} of {} in the span; at least {MIN_BLOCKS} needed{}",
            plural(b.t.len(), "block"),
            human_secs(block_s),
            if sawtooth.is_some() {
                " (a sawtooth needs blocks longer than its period)"
            } else {
                ""
            }
        );
        return j;
    }
    let Some(sen) = stats::sen_slope(&b.t, &b.y, p.confidence, p.threshold_per_min / 60.0) else {
        j.reason = "no usable pairs of blocks".into();
        return j;
    };
    let per_min = 60.0;
    j.slope_per_min = sen.slope * per_min;
    j.ci_low = sen.low.map_or(f64::MIN, |v| v * per_min);
    j.ci_high = sen.high.map_or(f64::MAX, |v| v * per_min);
    j.evidence.effective_blocks = sen.effective_n;
    j.evidence.autocorrelation_inflation = sen.inflation;
    j.evidence.z_vs_threshold = Some(sen.z_vs_reference);
    // Ties: when most pairwise slopes are exactly zero (a count flat at 9) Gilbert's ranks all
    // land on zero and the interval collapses to [0, 0] even though the data moved (+3 FDs in
    // the last 20 s). A zero-width interval over data that moved gets its upper bound raised
    // to the steepest slope into the last block, so a late rise is `inconclusive`, never
    // "proven ≤ 0.000/min" (the lower bound is left alone: this guards `clean` only).
    if j.ci_low == j.ci_high {
        let (tl, yl) = (b.t[b.t.len() - 1], b.y[b.y.len() - 1]);
        let moved = b.y.iter().any(|v| *v != yl);
        if moved {
            for (ti, yi) in b.t.iter().zip(&b.y) {
                if *ti < tl {
                    j.ci_high = j.ci_high.max((yl - yi) / (tl - ti) * per_min);
                }
            }
        }
    }
    let thr = p.threshold_per_min;
    let rise = j.slope_per_min * span / 60.0;
    let rise_enough =
        (p.quantum <= 0.0 || rise >= MIN_RISE_QUANTA * p.quantum) && rise >= p.min_rise;
    let judged = human_secs(span);
    if j.ci_low > thr && rise_enough {
        j.verdict = Verdict::Leak;
        j.reason = format!(
            "growing at {:.3}/min (≥ {:.3} at {:.0} %) over {judged}, above {thr}/min",
            j.slope_per_min,
            j.ci_low,
            p.confidence * 100.0
        );
    } else if j.ci_high <= thr {
        j.verdict = Verdict::Clean;
        j.reason = format!(
            "growth ≤ {:.3}/min at {:.0} % over {judged}, within {thr}/min",
            j.ci_high,
            p.confidence * 100.0
        );
        if let Some((shift, since)) = late_rise(&b.t, &b.y, thr, span, p) {
            // Sen's slope is robust to the last few blocks, which is what a step that just
            // happened (the next step of a leak in steps) is: not proof of `clean`.
            j.verdict = Verdict::Inconclusive;
            j.ci_high = j.ci_high.max(shift / span.max(1.0) * per_min);
            j.reason = format!(
                "rose {shift:.3} in the last {}; growth ≤ {:.3}/min over the rest of {judged} is no proof while the level moves",
                human_secs(to - since),
                j.ci_high,
            );
        }
    } else if j.ci_low > thr {
        j.reason = format!(
            "rising at {:.3}/min but only {rise:.1} units over {judged}; waiting for more",
            j.slope_per_min
        );
    } else {
        j.reason = format!(
            "{:.3}/min, interval [{}, {}] straddles {thr}/min after {judged}",
            j.slope_per_min,
            fmt_bound(j.ci_low),
            fmt_bound(j.ci_high)
        );
    }
    if j.bounded() {
        let half = (j.ci_high - j.ci_low) / 2.0;
        j.evidence.min_detectable_per_min = Some(thr.max(0.0) + 2.0 * half);
        if j.verdict == Verdict::Inconclusive {
            // The interval narrows roughly as span^-3/2 (slope error of a trend in stationary
            // noise), so the span needed for it to clear the threshold is
            // span·(half / |slope − thr|)^(2/3).
            let gap = (j.slope_per_min - thr).abs();
            if gap > 0.0 && span > 0.0 {
                let needed = span * (half / gap).powf(2.0 / 3.0);
                j.evidence.more_time_needed_s = Some((needed - span).clamp(0.0, 100.0 * span));
            }
        }
    }
    j
}

/// A rise of the level in the last blocks that a `clean` fit over `(t, y)` (block times and
/// values) would hide: the median of the last `k` blocks (3 up to a sixth of them) above the
/// median of the blocks before by more than [`LATE_RISE_SIGMAS`] robust standard deviations of
/// those blocks, more than the threshold allows over the span, and more than the minimum rise.
/// Returns the rise and the time the raised part starts.
fn late_rise(
    t: &[f64],
    y: &[f64],
    thr_per_min: f64,
    span_s: f64,
    p: &Params,
) -> Option<(f64, f64)> {
    let n = y.len();
    if n < MIN_BLOCKS {
        return None;
    }
    let allowed = (thr_per_min.max(0.0) * span_s / 60.0)
        .max(p.min_rise)
        .max(MIN_RISE_QUANTA * p.quantum);
    let mut best: Option<(f64, f64)> = None;
    for k in 3..=(n / 6).max(3) {
        let (before, after) = y.split_at(n - k);
        let mut b = before.to_vec();
        let level = stats::median_in_place(&mut b)?;
        let mut dev: Vec<f64> = before.iter().map(|v| (v - level).abs()).collect();
        let sigma = 1.4826 * stats::median_in_place(&mut dev)?;
        let mut a = after.to_vec();
        let shift = stats::median_in_place(&mut a)? - level;
        if shift > allowed
            && shift > LATE_RISE_SIGMAS * sigma
            && best.is_none_or(|(s, _)| shift > s)
        {
            best = Some((shift, t[n - k]));
        }
    }
    best
}

/// `1 sample`, `2 samples`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// An interval bound for people: `-∞`/`+∞` when the data could not bound it, else 3 decimals.
pub fn fmt_bound(v: f64) -> String {
    if v <= f64::MIN {
        "-∞".into()
    } else if v >= f64::MAX {
        "+∞".into()
    } else {
        format!("{v:.3}")
    }
}

/// `5400` → "1h 30m", `95` → "1m 35s".
pub fn human_secs(s: f64) -> String {
    if s > 0.0 && s < 1.0 {
        return format!("{:.0}ms", s * 1000.0);
    }
    let s = s.max(0.0).round() as u64;
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{sec}s"),
        (0, _) => format!("{m}m {sec}s"),
        _ => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize, dt: f64, slope_per_min: f64) -> (Vec<f64>, Vec<f64>) {
        let t: Vec<f64> = (0..n).map(|i| i as f64 * dt).collect();
        let y = t.iter().map(|v| 100.0 + slope_per_min * v / 60.0).collect();
        (t, y)
    }

    #[test]
    fn empty_constant_one_point() {
        let p = Params::new(0.1);
        assert_eq!(judge(&[], &[], &p).verdict, Verdict::Inconclusive);
        assert_eq!(judge(&[1.0], &[5.0], &p).verdict, Verdict::Inconclusive);
        let (t, _) = line(600, 1.0, 0.0);
        let j = judge(&t, &vec![7.0; 600], &p);
        assert_eq!(j.verdict, Verdict::Clean);
        assert_eq!(j.slope_per_min, 0.0);
    }

    #[test]
    fn exact_ramp_is_leak_with_exact_rate() {
        let (t, y) = line(3600, 1.0, 1.5);
        let j = judge(&t, &y, &Params::new(0.1));
        assert_eq!(j.verdict, Verdict::Leak);
        assert!((j.slope_per_min - 1.5).abs() < 1e-9);
    }

    #[test]
    fn warmup_is_dropped() {
        // Steep for 10 minutes, flat after: with a 10-minute warm-up it is clean.
        let t: Vec<f64> = (0..3600).map(f64::from).collect();
        let y: Vec<f64> = t.iter().map(|v| v.min(600.0) / 60.0).collect();
        let mut p = Params::new(0.1);
        p.warmup_s = 600.0;
        assert_eq!(judge(&t, &y, &p).verdict, Verdict::Clean);
    }

    #[test]
    fn settled_growth_then_plateau_is_bounded() {
        // An exponential approach (time constant 5 min) then flat: bounded, clean.
        let t: Vec<f64> = (0..3600).map(f64::from).collect();
        let y: Vec<f64> = t
            .iter()
            .map(|v| 100.0 + 30.0 * (1.0 - (-v / 300.0).exp()))
            .collect();
        let j = judge(&t, &y, &Params::new(0.1));
        assert_eq!(j.verdict, Verdict::Clean, "{}", j.reason);
        assert!(j.evidence.plateau_from_s.is_some());
    }

    #[test]
    fn a_leak_that_paused_is_not_clean() {
        // 0.5/min at a steady rate for the first 40 %, then flat: the tail alone is clean,
        // the whole span is not; inconclusive, and the reason says when it stopped.
        let t: Vec<f64> = (0..3600).map(f64::from).collect();
        let y: Vec<f64> = t.iter().map(|v| 0.5 * v.min(1440.0) / 60.0).collect();
        let j = judge(&t, &y, &Params::new(0.1));
        assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.reason);
        assert!(j.reason.contains("then flat"), "{}", j.reason);
    }

    #[test]
    fn settling_growth_is_inconclusive_not_leak() {
        // A fill whose tail is still visible (time constant 10 min, judged 10–25 min): growing
        // well above the threshold but slowing down.
        let t: Vec<f64> = (0..1500).map(f64::from).collect();
        let y: Vec<f64> = t
            .iter()
            .map(|v| 20.0 + 40.0 * (1.0 - (-v / 600.0).exp()))
            .collect();
        let mut p = Params::new(0.1);
        p.warmup_s = 600.0;
        let j = judge(&t, &y, &p);
        assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.reason);
        assert!(j.reason.starts_with("growth slowing"), "{}", j.reason);
        // The same fill with a steady 0.4/min leak beneath, judged long enough after the
        // fill: a leak.
        let t: Vec<f64> = (0..5400).map(f64::from).collect();
        let y: Vec<f64> = t
            .iter()
            .map(|v| 20.0 + 40.0 * (1.0 - (-v / 120.0).exp()) + 0.4 * v / 60.0)
            .collect();
        let j = judge(&t, &y, &p);
        assert_eq!(j.verdict, Verdict::Leak, "{}", j.reason);
    }

    #[test]
    fn step_leak_is_leak() {
        // +1 every 3 minutes, flat between: 0.33/min.
        let t: Vec<f64> = (0..7200).map(f64::from).collect();
        let y: Vec<f64> = t.iter().map(|v| 10.0 + (v / 180.0).floor()).collect();
        let mut p = Params::new(0.1);
        p.quantum = 1.0;
        let j = judge(&t, &y, &p);
        assert_eq!(j.verdict, Verdict::Leak, "{}", j.reason);
    }

    #[test]
    fn one_new_connection_is_not_a_leak() {
        // A single extra FD half way: not three quanta of rise.
        let t: Vec<f64> = (0..300).map(f64::from).collect();
        let y: Vec<f64> = t
            .iter()
            .map(|v| if *v < 150.0 { 9.0 } else { 10.0 })
            .collect();
        let mut p = Params::new(0.1);
        p.quantum = 1.0;
        assert_ne!(judge(&t, &y, &p).verdict, Verdict::Leak);
    }

    #[test]
    fn sawtooth_floor_is_judged() {
        // Collector every 40 s with 50 units of garbage; floor flat → clean; floor rising → leak.
        let t: Vec<f64> = (0..7200).map(f64::from).collect();
        let saw = |v: f64| 50.0 * (v % 40.0) / 40.0;
        let y: Vec<f64> = t.iter().map(|v| 100.0 + saw(*v)).collect();
        let j = judge(&t, &y, &Params::new(0.1));
        assert_eq!(j.evidence.envelope, EnvelopeKind::Floor);
        assert_eq!(j.verdict, Verdict::Clean, "{}", j.reason);
        let y: Vec<f64> = t.iter().map(|v| 100.0 + saw(*v) + v / 60.0).collect();
        let j = judge(&t, &y, &Params::new(0.1));
        assert_eq!(j.verdict, Verdict::Leak, "{}", j.reason);
        assert!((j.slope_per_min - 1.0).abs() < 0.05);
    }

    #[test]
    fn gaps_are_tolerated() {
        let (mut t, mut y) = line(7200, 1.0, 0.5);
        t.drain(2000..4000);
        y.drain(2000..4000);
        let j = judge(&t, &y, &Params::new(0.1));
        assert_eq!(j.verdict, Verdict::Leak);
        assert!((j.slope_per_min - 0.5).abs() < 1e-6);
    }

    #[test]
    fn inconclusive_reports_time_needed() {
        // A gentle slope under heavy noise for a short time.
        let t: Vec<f64> = (0..240).map(f64::from).collect();
        let y: Vec<f64> = t
            .iter()
            .map(|v| 100.0 + 0.1 * v / 60.0 + 3.0 * ((v * 1.7).sin() + (v * 0.31).cos()))
            .collect();
        let j = judge(&t, &y, &Params::new(0.1));
        assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.reason);
        assert!(j.evidence.min_detectable_per_min.is_some());
    }

    #[test]
    fn a_late_rise_of_a_flat_count_is_not_proven_clean() {
        // FDs flat at 9 for 10 minutes, then 12 for the last 20 s.
        let t: Vec<f64> = (0..600).map(f64::from).collect();
        let y: Vec<f64> = t
            .iter()
            .map(|v| if *v < 580.0 { 9.0 } else { 12.0 })
            .collect();
        let mut p = Params::new(0.1);
        p.quantum = 1.0;
        let j = judge(&t, &y, &p);
        assert_ne!(j.verdict, Verdict::Clean, "{}", j.reason);
        assert!(j.ci_high > 0.1, "{}", j.ci_high);
        // Flat with a blip that came back: still clean.
        let y: Vec<f64> = t
            .iter()
            .map(|v| {
                if (300.0..320.0).contains(v) {
                    12.0
                } else {
                    9.0
                }
            })
            .collect();
        assert_eq!(judge(&t, &y, &p).verdict, Verdict::Clean);
    }

    #[test]
    fn memory_needs_a_minimum_rise() {
        // 0.5 MiB/min for 60 s: a clean line, but half a MiB is no evidence of a leak.
        let (t, y) = line(60, 1.0, 0.5);
        let mut p = Params::new(0.1);
        assert_eq!(judge(&t, &y, &p).verdict, Verdict::Leak);
        p.min_rise = MIN_MEMORY_RISE_MIB;
        assert_eq!(judge(&t, &y, &p).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn combine_rules() {
        use Verdict::*;
        assert_eq!(Verdict::combine([Clean, Leak]), Leak);
        assert_eq!(Verdict::combine([Clean, Clean]), Clean);
        assert_eq!(Verdict::combine([Clean, Inconclusive]), Inconclusive);
        assert_eq!(Verdict::combine([]), Inconclusive);
    }
}
