//! The leak detector: a pure function from timestamped samples of one metric to a verdict
//! (`leak` / `clean` / `inconclusive`) with the growth rate per minute, its confidence interval
//! and the evidence behind it. No I/O, no clock: live runs, `analyze`, reports and the fleet scan
//! all call [`judge`] with values.
//!
//! ## The rule
//! A leak is growth that persists across the span at a time scale longer than the series' own
//! fluctuation. So the detector
//! 1. drops the warm-up and summarises the rest in about [`FINE_BLOCKS`] time blocks (the
//!    median of each, or its minimum when the series is a collector's sawtooth, whose floor is
//!    what a leak lifts; blocks then span two collections or more);
//! 2. reads the series' own **fluctuation scale** from the autocorrelation of the blocks'
//!    residuals about Sen's line ([`stats::fluctuation_scale`]): the length of its cycle when
//!    it has one (a load cycle, an arena trimmed and regrown, repeating steps), else the lag at
//!    which the autocorrelation first reaches zero; a series that has not come back once (half
//!    a slow cycle, a rise that stopped) has the whole span as its scale;
//! 3. cuts the span into **batches** of that length (batch means: Conway 1963, Schmeiser 1982)
//!    and takes the mean of each batch's block summaries: batches this long are nearly
//!    independent, whatever the shape inside them (the blocks' medians already shed spikes; a
//!    batch's median would jump between the two levels of a square wave or the two ends of
//!    an arena's sawtooth as the share of each in the batch crosses one half);
//! 4. fits a line through the batches and bounds its slope with Student's t on `batches − 2`
//!    degrees of freedom (widened by the batch residuals' AR(1) factor, and for counts by the
//!    whole counts' rounding): an interval that is always finite and widens honestly when the span
//!    holds few of the series' own fluctuations;
//! 5. decides only with at least [`MIN_BATCHES`] batches: `leak` when the lower bound exceeds
//!    the threshold, the later half still grows faster than the threshold and the rise exceeds
//!    the metric's minimum; `clean` when the upper bound is within it (and the last blocks have
//!    not just risen to a level the span has not held); else `inconclusive`;
//! 6. names settling: a `leak` whose growth decelerates significantly (a quadratic through the
//!    batches bends down, at 90 % one-sided, and the rate at the end is under
//!    [`SETTLING_RATIO`] of the rate at the start) is `inconclusive — still settling`, unless
//!    the later half by itself proves a leak (a steady leak under a fill).
//!
//! The run-level part (which check may fail, against which boundary) is in `gate`.

pub mod envelope;
pub mod stats;
pub mod synth;

use envelope::{EnvelopeKind, Sawtooth, blocks, detect_sawtooth};
use serde::Serialize;

/// Number of fine blocks aimed for: the resolution at which the fluctuation scale is read.
pub const FINE_BLOCKS: usize = 240;
/// Fewest batches (each as long as the series' fluctuation scale) for a `leak` or `clean`
/// verdict: growth must be seen across at least two of the series' own fluctuations (with
/// two, the interval has one degree of freedom and is wide accordingly).
pub const MIN_BATCHES: usize = 2;
/// Growth counts as settling when the rate at the end of the span is under this share of the
/// rate at its start (and the bend is significant): an exponential approach with time constant
/// τ judged over a span `S` gives `exp(−S/τ)`, while a sustained leak gives 1.
pub const SETTLING_RATIO: f64 = 0.5;
/// One-sided confidence that the growth bends down, for `still settling`: it only ever turns a
/// `leak` into `inconclusive` (a check that waits), so it may be liberal.
pub const SETTLING_CONFIDENCE: f64 = 0.9;
/// Fewer samples or blocks than this and nothing is decided.
pub const MIN_BLOCKS: usize = 10;
/// For integer-valued metrics, a leak must have grown by at least this many units over the
/// judged span: one new socket or thread is not yet evidence of a leak.
pub const MIN_RISE_QUANTA: f64 = 3.0;
/// For memory, a leak must have grown by at least this many MiB over the judged span: 256
/// pages, well above RSS's 4 KiB granularity and the allocator's arena and page-cache jitter
/// of a few hundred KiB, as [`MIN_RISE_QUANTA`] is for counts.
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
    /// Summary of each block: median, or floor for a sawtooth.
    pub envelope: EnvelopeKind,
    /// Fine block length, seconds.
    pub block_s: f64,
    /// Non-empty fine blocks.
    pub blocks: usize,
    /// The series' own fluctuation scale (the batch length), seconds.
    pub scale_s: f64,
    /// True when that scale is a cycle the series repeats (else its decorrelation time).
    pub cycle: bool,
    /// Batches of that length the slope was fitted to.
    pub batches: usize,
    /// Degrees of freedom of the slope's interval (batches − 2).
    pub degrees_of_freedom: usize,
    /// The sawtooth found, when one was.
    pub sawtooth: Option<Sawtooth>,
    /// Growth that decelerates: the rate at the start and at the end of the span, unit per
    /// minute (set when it kept a `leak` from being called).
    pub settling: Option<(f64, f64)>,
    /// Smallest leak rate (unit/min) this data would flag with ~97.5 % power.
    pub min_detectable_per_min: Option<f64>,
    /// Rough extra time (seconds) the run needs to decide, while inconclusive.
    pub more_time_needed_s: Option<f64>,
    /// One-sided standardised evidence that the growth exceeds the threshold: the batches'
    /// t statistic of the slope against the threshold, as the normal z with the same tail
    /// probability. The verdict is `leak` at confidence `c` when the lower bound clears the
    /// threshold; the run's check gate asks for more early in a run (see `gate`).
    pub z_vs_threshold: Option<f64>,
    /// The block summaries `(t seconds, value)` the scale was read from (for charts).
    #[serde(skip)]
    pub envelope_points: Vec<(f64, f64)>,
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
                scale_s: 0.0,
                cycle: false,
                batches: 0,
                degrees_of_freedom: 0,
                sawtooth: None,
                settling: None,
                min_detectable_per_min: None,
                more_time_needed_s: None,
                z_vs_threshold: None,
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
    judge_span(tt, yy, p)
}

/// Judges the span after warm-up (see the module's rule).
fn judge_span(t: &[f64], y: &[f64], p: &Params) -> Judgement {
    let n = t.len();
    let (from, to) = (t[0], t[n - 1]);
    let span = to - from;
    let sawtooth = detect_sawtooth(t, y);
    let mut dts: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    let typical_dt = stats::median_in_place(&mut dts).unwrap_or(0.0);
    let mut block_s = (span / FINE_BLOCKS as f64).max(typical_dt);
    // A collector's sawtooth is summarised by its floor when blocks two periods long still
    // leave a quarter of the fine blocks; a slower one (an arena trimmed every hour) is a
    // fluctuation like any other, which the batches below measure.
    let sawtooth = sawtooth.filter(|s| 2.0 * s.period_s <= 4.0 * block_s);
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
    let Some(fine) = (b.t.len() >= MIN_BLOCKS)
        .then(|| stats::line_fit(&b.t, &b.y))
        .flatten()
    else {
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
    };
    // The series' own fluctuation scale, and batches that long; a leak is growth that persists:
    // above the threshold over the whole span (its lower bound) and still above it over the
    // later half (its estimate: a rise that stopped half way is not growing now).
    let n_b = b.t.len();
    let late_from = n_b / 2;
    let (g, cycle) = scale_of(&b.t, &b.y);
    let whole = batch_fit(&b.t, &b.y, (g, cycle), &fine, p.quantum);
    let per_min = 60.0;
    let thr = p.threshold_per_min;
    let bounds = |f: &BatchFit| {
        let half = stats::student_t_quantile(0.5 + p.confidence / 2.0, f.df) * f.se * per_min;
        (f.slope * per_min - half, f.slope * per_min + half)
    };
    let z_of = |f: &BatchFit| {
        let t_vs = if f.se > 0.0 {
            (f.slope - thr / per_min) / f.se
        } else if f.slope * per_min > thr {
            1e6
        } else {
            -1e6
        };
        stats::t_as_z(t_vs, f.df)
    };
    // The later half is judged as a series of its own: its own fluctuation scale (a fill's
    // curve that set the whole span's scale may be gone from it) and its own line. Only a span
    // that proves growth asks it (a second Sen's slope is most of a check's cost).
    let late = (whole.m >= MIN_BATCHES && bounds(&whole).0 > thr).then(|| {
        let (late_t, late_y) = (&b.t[late_from..], &b.y[late_from..]);
        let late_fine = stats::line_fit(late_t, late_y).unwrap_or(fine);
        let scale = scale_of(late_t, late_y);
        batch_fit(late_t, late_y, scale, &late_fine, p.quantum)
    });
    let persists = late.as_ref().is_some_and(|l| l.slope * per_min > thr);
    let chosen = &whole;
    let (m, df, slope) = (chosen.m, chosen.df, chosen.slope);
    let (bt, by) = (&chosen.bt, &chosen.by);
    j.evidence.scale_s = g as f64 * block_s;
    j.evidence.cycle = cycle;
    j.evidence.batches = m;
    j.evidence.degrees_of_freedom = df;
    let (low, high) = bounds(chosen);
    let half = (high - low) / 2.0;
    j.slope_per_min = slope * per_min;
    j.ci_low = low;
    j.ci_high = high;
    j.evidence.z_vs_threshold = Some(z_of(&whole));
    let rise = j.slope_per_min * span / 60.0;
    let rise_enough =
        (p.quantum <= 0.0 || rise >= MIN_RISE_QUANTA * p.quantum) && rise >= p.min_rise;
    let judged = human_secs(span);
    let scale_words = if cycle {
        format!("a cycle of {}", human_secs(j.evidence.scale_s))
    } else {
        format!("decorrelates over {}", human_secs(j.evidence.scale_s))
    };
    if m < MIN_BATCHES {
        j.reason = if g >= b.t.len() {
            format!(
                "{:.3}/min, interval [{}, {}] over {judged}, but the series has not come back once: a rise that may yet stop or turn (a slow cycle, a fill) is not yet told from a leak",
                j.slope_per_min,
                fmt_bound(j.ci_low),
                fmt_bound(j.ci_high)
            )
        } else {
            format!(
                "{:.3}/min, interval [{}, {}] over {judged}; the series fluctuates on a longer scale ({scale_words}): a verdict needs {MIN_BATCHES} such stretches, the span holds {m}",
                j.slope_per_min,
                fmt_bound(j.ci_low),
                fmt_bound(j.ci_high)
            )
        };
    } else if persists && rise_enough {
        j.verdict = Verdict::Leak;
        j.reason = format!(
            "growing at {:.3}/min (≥ {:.3} at {:.0} %) over {judged}, above {thr}/min",
            j.slope_per_min,
            j.ci_low,
            p.confidence * 100.0
        );
        // Growth that bends down significantly: the rates at the start and the end of the
        // batches.
        let bends_down = |bt: &[f64], by: &[f64]| {
            let bend = stats::bend(bt, by)?;
            let down = bend.t_curvature < -stats::student_t_quantile(SETTLING_CONFIDENCE, bend.df);
            down.then_some((bend.rate_first * per_min, bend.rate_last * per_min))
        };
        let settling = bends_down(bt, by).filter(|(r0, r1)| *r0 > 0.0 && *r1 < SETTLING_RATIO * r0);
        if let Some((r0, r1)) = settling {
            // Unless the later half by itself proves steady growth above the threshold: a
            // steady leak under a fill that settled (or arrived) in the span still fails, a
            // fill whose later half still slows down does not.
            let late_leaks = late.as_ref().is_some_and(|late| {
                late.m >= 3 && bounds(late).0 > thr && bends_down(&late.bt, &late.by).is_none()
            });
            if !late_leaks {
                j.verdict = Verdict::Inconclusive;
                j.evidence.settling = Some((r0, r1));
                j.reason = format!(
                    "still settling ({r0:.3} → {r1:.3}/min over {judged}): growth that slows down is not yet a leak; a longer warm-up (--warmup) lets it settle first"
                );
            }
        }
    } else if j.ci_high <= thr {
        j.verdict = Verdict::Clean;
        j.reason = format!(
            "growth ≤ {:.3}/min at {:.0} % over {judged} ({m} stretches; the series {scale_words}), within {thr}/min",
            j.ci_high,
            p.confidence * 100.0
        );
        if let Some((shift, since)) = late_rise(&b.t, &b.y, thr, span, p) {
            // Medians of long batches are robust to the last few blocks, which is what a step
            // that just happened (the next step of a leak in steps) is: not proof of `clean`.
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
    j.evidence.min_detectable_per_min = Some(thr.max(0.0) + 2.0 * half);
    if j.verdict == Verdict::Inconclusive && span > 0.0 {
        // The interval narrows roughly as span^-3/2 (slope error of a trend in stationary
        // noise), and the span must hold MIN_BATCHES stretches of the series' scale.
        let gap = (j.slope_per_min - thr).abs();
        let mut needed = if gap > 0.0 {
            span * (half / gap).powf(2.0 / 3.0)
        } else {
            f64::MAX
        };
        if m < MIN_BATCHES {
            needed = needed.max(MIN_BATCHES as f64 * j.evidence.scale_s);
        }
        // Capped at 100 spans, then said only when it is at least a minute: "needs roughly 0s
        // more" (a cap of a tiny span) is no advice.
        let more = (needed - span).min(100.0 * span);
        j.evidence.more_time_needed_s = (more >= 60.0).then_some(more);
    }
    j
}

/// The fluctuation scale of blocks `(t, y)` (in blocks), from their residuals about Sen's
/// line, which a one-time shape (a fill's tail, a step) does not tilt; see
/// [`stats::fluctuation_scale`].
fn scale_of(t: &[f64], y: &[f64]) -> (usize, bool) {
    let Some(sen) = stats::sen_slope(t, y) else {
        return (t.len().max(1), false);
    };
    let resid: Vec<f64> = t.iter().zip(y).map(|(t, y)| y - sen * t).collect();
    stats::fluctuation_scale(&resid)
}

/// Fewest batches whose residuals' lag-1 autocorrelation is read (fewer: too noisy to use).
const MIN_PREWHITEN: usize = 5;

/// A line through batches of `g` blocks.
struct BatchFit {
    /// Batches.
    m: usize,
    /// Slope, unit per second.
    slope: f64,
    /// Its standard error.
    se: f64,
    /// Degrees of freedom of the interval.
    df: usize,
    /// Batch times and means.
    bt: Vec<f64>,
    by: Vec<f64>,
}

/// Cuts blocks `(t, y)` into as many batches of at least `g` blocks as they hold, takes the
/// mean of each (of its blocks' summaries) and fits a line through them. With fewer than three
/// batches the slope and its error come from `fine` (the line through every block of the span)
/// with the error scaled to the `g` blocks each independent stretch holds, on one degree of
/// freedom. For counts (`quantum` above 0) each batch mean carries a rounding error of variance
/// q²/12 (Sheppard): whole numbers, few of them can lie exactly on a line.
fn batch_fit(
    t: &[f64],
    y: &[f64],
    (g, cycle): (usize, bool),
    fine: &stats::LineFit,
    quantum: f64,
) -> BatchFit {
    let g = g.max(1);
    let m = t.len() / g;
    // A cycle's batches are exactly one cycle long, aligned to the latest block (the oldest
    // part of a cycle is left out: a batch of a cycle and a bit is biased by where the bit
    // falls, and the bias drifts along the span). Otherwise m batches cover every block (each
    // g or g + 1 blocks long): none of the span is left out.
    let skip = t.len() - m * g;
    let edge = |k: usize| {
        if cycle {
            skip + k * g
        } else {
            k * t.len() / m.max(1)
        }
    };
    let (bt, by): (Vec<f64>, Vec<f64>) = (0..m)
        .map(|k| {
            let r = edge(k)..edge(k + 1);
            let tm = t[r.clone()].iter().sum::<f64>() / r.len() as f64;
            let v = &y[r];
            (tm, v.iter().sum::<f64>() / v.len() as f64)
        })
        .unzip();
    let (slope, mut se, df) = match stats::line_fit(&bt, &by) {
        Some(f) => {
            // Batches one decorrelation time long are not quite independent: what correlation
            // is left between neighbours widens the error by the AR(1) variance factor
            // (1 + ρ₁)/(1 − ρ₁) of the batch residuals (prewhitening; never narrows it).
            let resid: Vec<f64> = bt.iter().zip(&by).map(|(t, y)| y - f.at(*t)).collect();
            let r1 = if resid.len() >= MIN_PREWHITEN {
                stats::lag1_autocorrelation(&resid).clamp(0.0, 0.9)
            } else {
                0.0
            };
            (f.slope, f.se * ((1.0 + r1) / (1.0 - r1)).sqrt(), f.df)
        }
        None => (fine.slope, fine.se * (g as f64).sqrt(), 1),
    };
    if quantum > 0.0 && bt.len() >= 2 {
        let mean = bt.iter().sum::<f64>() / bt.len() as f64;
        let sxx: f64 = bt.iter().map(|v| (v - mean) * (v - mean)).sum();
        if sxx > 0.0 {
            se = (se * se + quantum * quantum / 12.0 / sxx).sqrt();
        }
    }
    BatchFit {
        m,
        slope,
        se,
        df,
        bt,
        by,
    }
}

/// A rise of the level in the last blocks that a `clean` fit over `(t, y)` (block times and
/// values) would hide: the median of the last `k` blocks (3 up to a sixth of them) above every
/// block before — a level the series has not held in the span, where a load that switched up
/// again returns to one it has held — and above the median of the blocks before by more than
/// the threshold allows over the span and the minimum rise. Returns the rise over that median
/// and the time the raised part starts.
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
        let highest = before.iter().copied().fold(f64::MIN, f64::max);
        let mut b = before.to_vec();
        let level = stats::median_in_place(&mut b)?;
        let mut a = after.to_vec();
        let now = stats::median_in_place(&mut a)?;
        let shift = now - level;
        if now > highest && shift > allowed && best.is_none_or(|(s, _)| shift > s) {
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
        // An exponential approach (time constant 5 min) then flat: with a warm-up of three time
        // constants, clean.
        let t: Vec<f64> = (0..3600).map(f64::from).collect();
        let y: Vec<f64> = t
            .iter()
            .map(|v| 100.0 + 30.0 * (1.0 - (-v / 300.0).exp()))
            .collect();
        let mut p = Params::new(0.1);
        p.warmup_s = 900.0;
        let j = judge(&t, &y, &p);
        assert_eq!(j.verdict, Verdict::Clean, "{}", j.reason);
    }

    #[test]
    fn a_leak_that_paused_is_not_clean() {
        // 0.5/min at a steady rate for the first 40 %, then flat: the tail alone is clean,
        // the whole span is not: not proven clean, and not a leak now.
        let t: Vec<f64> = (0..3600).map(f64::from).collect();
        let y: Vec<f64> = t.iter().map(|v| 0.5 * v.min(1440.0) / 60.0).collect();
        let j = judge(&t, &y, &Params::new(0.1));
        assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.reason);
        assert!(j.ci_high > 0.1, "{}", j.reason);
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
        assert!(j.reason.starts_with("still settling ("), "{}", j.reason);
        assert!(j.reason.contains("--warmup"), "{}", j.reason);
        let (from, to) = j.evidence.settling.expect("settling rates");
        assert!(from > 2.0 * to && to > 0.0, "{from} → {to}");
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
    fn a_load_that_switched_up_again_at_the_end_is_clean() {
        // A square load: 50 min at 100 MiB, 20 min at 150, for 6 h, ending 4 min into a high
        // stretch, with ±0.5 MiB of noise. The last blocks sit 50 MiB above the median of the
        // rest, far more than its robust spread (most blocks are at the low level) and than
        // the threshold allows over the span (33 MiB), but at a level the series has held five
        // times before: that is its fluctuation, not a step.
        let t: Vec<f64> = (0..4320).map(|i| f64::from(i) * 5.0).collect();
        let end = t[t.len() - 1];
        let y: Vec<f64> = t
            .iter()
            .enumerate()
            .map(|(i, v)| {
                // Phase so that the series ends 4 min into a high stretch.
                let phase = (v - end + 4.0 * 60.0).rem_euclid(70.0 * 60.0);
                let level = if phase < 20.0 * 60.0 { 150.0 } else { 100.0 };
                level + 0.5 * ((i * 7919 % 1000) as f64 / 500.0 - 1.0)
            })
            .collect();
        let j = judge(&t, &y, &Params::new(0.1));
        assert_eq!(j.verdict, Verdict::Clean, "{}", j.reason);
        // The same ending at a level never held before (50 MiB above every earlier block) is
        // a step that just happened: no proof of `clean`.
        let n = y.len();
        let mut stepped = y.clone();
        for v in &mut stepped[n - 48..] {
            *v += 50.0;
        }
        let j = judge(&t, &stepped, &Params::new(0.1));
        assert_ne!(j.verdict, Verdict::Clean, "{}", j.reason);
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
